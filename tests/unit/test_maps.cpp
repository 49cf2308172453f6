// Map decoding (core/goruntime/maps.cpp) against synthetic hmaps and swiss maps laid out
// in FakeMemory exactly as the runtime does (go-runtime.md sections 3.1, 3.2): an hmap with
// an overflow bucket, an hmap in the middle of a doubling grow, a small swiss map and a
// large swiss map whose directory has 4 entries over 2 tables.

#include "core/goruntime/layouts.h"
#include "core/goruntime/maps.h"
#include "core/target/memory.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

using namespace gort::core;

namespace {

RuntimeLayouts layouts(int minor, MapImpl impl) {
  auto v = GoVersion::parse(fmt::format("go1.{}.1", minor));
  REQUIRE(v.has_value());
  auto r = layouts_from_table(*v, impl);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return *r;
}

// A little-endian byte image under construction.
struct Image {
  std::vector<uint8_t> b;
  explicit Image(size_t n) : b(n, 0) {}
  template <typename T>
  void put(size_t off, T v) {
    REQUIRE(off + sizeof v <= b.size());
    std::memcpy(b.data() + off, &v, sizeof v);
  }
};

constexpr RemoteAddr kKeyType{0x500000}, kElemType{0x500100}, kMapType{0x500200};

// abi.Type: Size_@0, Kind_@23 (go-runtime.md 3.1).
void add_type(FakeMemory& m, RemoteAddr at, uint64_t size, GoKind kind) {
  Image t(48);
  t.put<uint64_t>(0, size);
  t.put<uint8_t>(23, static_cast<uint8_t>(kind));
  m.add(at, t.b);
}

// *abi.MapType for map[int64]int64 (hmap): Key@48 Elem@56 KeySize@80 ValueSize@81
// BucketSize@82 Flags@84.
void add_hmap_type_i64(FakeMemory& m) {
  add_type(m, kKeyType, 8, GoKind::kInt64);
  add_type(m, kElemType, 8, GoKind::kInt64);
  Image t(88);
  t.put<uint64_t>(0, 8);
  t.put<uint8_t>(23, static_cast<uint8_t>(GoKind::kMap));
  t.put<uint64_t>(48, kKeyType.value());
  t.put<uint64_t>(56, kElemType.value());
  t.put<uint8_t>(80, 8);
  t.put<uint8_t>(81, 8);
  t.put<uint16_t>(82, 144);
  t.put<uint32_t>(84, 4);  // reflexive key
  m.add(kMapType, t.b);
}

// A 144-byte bmap for int64->int64: tophash[8], keys[8], elems[8], overflow.
Image bucket(std::vector<std::pair<int, std::pair<int64_t, int64_t>>> cells, uint64_t overflow = 0,
             uint8_t fill_top = 0) {
  Image b(144);
  for (int i = 0; i < 8; i++) b.put<uint8_t>(i, fill_top);
  for (auto& [i, kv] : cells) {
    b.put<uint8_t>(i, 0x40 + i);  // >= minTopHash
    b.put<int64_t>(8 + 8 * i, kv.first);
    b.put<int64_t>(72 + 8 * i, kv.second);
  }
  b.put<uint64_t>(136, overflow);
  return b;
}

// hmap@1.23: count@0 flags@8 B@9 noverflow@10 hash0@12 buckets@16 oldbuckets@24 nevacuate@32.
Image hmap_header(uint64_t count, uint8_t flags, uint8_t b, uint64_t buckets, uint64_t oldbuckets) {
  Image h(48);
  h.put<uint64_t>(0, count);
  h.put<uint8_t>(8, flags);
  h.put<uint8_t>(9, b);
  h.put<uint64_t>(16, buckets);
  h.put<uint64_t>(24, oldbuckets);
  return h;
}

std::vector<std::string> pairs(const MapContents& c) {
  std::vector<std::string> out;
  for (auto& e : c.entries) out.push_back(e.key + "=" + e.elem);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("hmap: two buckets and an overflow bucket") {
  auto l = layouts(23, MapImpl::kHmap);
  FakeMemory m;
  add_hmap_type_i64(m);
  const RemoteAddr hdr{0xc000010000}, buckets{0xc000020000}, ovf{0xc000030000};
  m.add(hdr, hmap_header(5, 0, 1, buckets.value(), 0).b);
  Image bk(288);
  auto b0 = bucket({{0, {1, 10}}, {3, {2, 20}}}, ovf.value());
  auto b1 = bucket({{7, {-3, -30}}});
  b1.put<uint8_t>(1, 1);  // emptyOne
  std::copy(b0.b.begin(), b0.b.end(), bk.b.begin());
  std::copy(b1.b.begin(), b1.b.end(), bk.b.begin() + 144);
  m.add(buckets, bk.b);
  m.add(ovf, bucket({{0, {4, 40}}, {1, {5, 50}}}).b);

  auto h = read_map_header(m, l, MapImpl::kHmap, hdr);
  REQUIRE_MESSAGE(h.ok(), h.error().message);
  CHECK(h->count == 5);
  CHECK(h->b == 1);
  CHECK_FALSE(h->writing);
  CHECK_FALSE(h->growing());
  auto t = read_map_type(m, l, MapImpl::kHmap, kMapType);
  REQUIRE_MESSAGE(t.ok(), t.error().message);
  CHECK(t->bucket_size == 144);
  CHECK_FALSE(t->indirect_key);
  auto c = read_map_entries(m, *h, *t, 20);
  REQUIRE(c.ok());
  CHECK(c->found == 5);
  CHECK(c->warnings.empty());
  CHECK(pairs(*c) == std::vector<std::string>{"-3=-30", "1=10", "2=20", "4=40", "5=50"});
  CHECK(c->entries[2].where == "bucket 0 overflow 1");

  SUBCASE("limit formats fewer but counts all") {
    auto c2 = read_map_entries(m, *h, *t, 2);
    REQUIRE(c2.ok());
    CHECK(c2->entries.size() == 2);
    CHECK(c2->found == 5);
  }
  SUBCASE("size hints give the same geometry") {
    auto hint = map_type_from_sizes(MapImpl::kHmap, 8, 8);
    CHECK(hint.bucket_size == 144);
    auto c3 = read_map_entries(m, *h, hint, 20);
    REQUIRE(c3.ok());
    CHECK(c3->found == 5);
    // Unknown kinds of an integer's size print as that integer (little-endian), not bytes.
    CHECK(c3->entries[0].key == "1");
  }
}

TEST_CASE("hmap: growth keeps entries of unevacuated old buckets, skips evacuated ones") {
  auto l = layouts(23, MapImpl::kHmap);
  FakeMemory m;
  add_hmap_type_i64(m);
  const RemoteAddr hdr{0xc000010000}, buckets{0xc000020000}, old{0xc000040000};
  // Doubling from B=1 to B=2; old bucket 0 evacuated into new buckets 0 and 2, old 1 not.
  m.add(hdr, hmap_header(4, 4 /*hashWriting*/, 2, buckets.value(), old.value()).b);
  Image bk(4 * 144);
  auto n0 = bucket({{0, {1, 10}}});
  auto n2 = bucket({{0, {2, 20}}});
  std::copy(n0.b.begin(), n0.b.end(), bk.b.begin());
  std::copy(n2.b.begin(), n2.b.end(), bk.b.begin() + 2 * 144);
  m.add(buckets, bk.b);
  Image ob(2 * 144);
  auto o0 = bucket({{0, {1, 10}}, {1, {2, 20}}});
  for (int i = 0; i < 8; i++) o0.put<uint8_t>(i, i < 2 ? 2 : 4);  // evacuatedX / evacuatedEmpty
  auto o1 = bucket({{2, {3, 30}}, {5, {7, 70}}});
  std::copy(o0.b.begin(), o0.b.end(), ob.b.begin());
  std::copy(o1.b.begin(), o1.b.end(), ob.b.begin() + 144);
  m.add(old, ob.b);

  auto h = read_map_header(m, l, MapImpl::kHmap, hdr);
  REQUIRE(h.ok());
  CHECK(h->growing());
  CHECK(h->writing);
  auto t = read_map_type(m, l, MapImpl::kHmap, kMapType);
  REQUIRE(t.ok());
  auto c = read_map_entries(m, *h, *t, 20);
  REQUIRE(c.ok());
  CHECK(c->found == 4);
  CHECK(pairs(*c) == std::vector<std::string>{"1=10", "2=20", "3=30", "7=70"});
  CHECK(c->entries[2].where == "oldbucket 1");
}

namespace {

// *abi.MapType (1.26) / SwissMapType: Key@48 Elem@56 GroupSize@80 SlotSize@88 ElemOff@96 Flags@104.
void add_swiss_type(FakeMemory& m, uint64_t ks, GoKind kk, uint64_t es, GoKind ek, uint64_t slot, uint64_t elem_off,
                    uint32_t flags = 0) {
  add_type(m, kKeyType, ks, kk);
  add_type(m, kElemType, es, ek);
  Image t(112);
  t.put<uint64_t>(0, 8);
  t.put<uint8_t>(23, static_cast<uint8_t>(GoKind::kMap));
  t.put<uint64_t>(48, kKeyType.value());
  t.put<uint64_t>(56, kElemType.value());
  t.put<uint64_t>(80, 8 + 8 * slot);
  t.put<uint64_t>(88, slot);
  t.put<uint64_t>(96, elem_off);
  t.put<uint32_t>(104, flags);
  m.add(kMapType, t.b);
}

// maps.Map: used@0 seed@8 dirPtr@16 dirLen@24 globalDepth@32 globalShift@33 writing@34.
Image swiss_header(uint64_t used, uint64_t dir_ptr, int64_t dir_len, uint8_t depth, uint8_t writing) {
  Image h(48);
  h.put<uint64_t>(0, used);
  h.put<uint64_t>(16, dir_ptr);
  h.put<int64_t>(24, dir_len);
  h.put<uint8_t>(32, depth);
  h.put<uint8_t>(34, writing);
  return h;
}

}  // namespace

TEST_CASE("swiss: small map[string]int is one group") {
  auto l = layouts(26, MapImpl::kSwiss);
  FakeMemory m;
  add_swiss_type(m, 16, GoKind::kString, 8, GoKind::kInt, 24, 16);
  const RemoteAddr hdr{0xc000010000}, grp{0xc000020000}, strs{0xc000030000};
  m.add(hdr, swiss_header(3, grp.value(), 0, 0, 0).b);
  std::string long_key(100, 'x');
  Image s(256);
  std::memcpy(s.b.data(), "alpha", 5);
  std::memcpy(s.b.data() + 8, "be\"ta", 5);
  std::memcpy(s.b.data() + 16, long_key.data(), long_key.size());
  m.add(strs, s.b);
  Image g(8 + 8 * 24);
  uint8_t ctrl[8] = {0x80, 0x11, 0x80, 0x22, 0x80, 0x80, 0x33, 0x80};
  std::memcpy(g.b.data(), ctrl, 8);
  auto slot = [&](int i, uint64_t p, uint64_t n, int64_t v) {
    g.put<uint64_t>(8 + 24 * i, p);
    g.put<uint64_t>(8 + 24 * i + 8, n);
    g.put<int64_t>(8 + 24 * i + 16, v);
  };
  slot(1, strs.value(), 5, 1);
  slot(3, strs.value() + 8, 5, -2);
  slot(6, strs.value() + 16, 100, 3);
  m.add(grp, g.b);

  auto h = read_map_header(m, l, MapImpl::kSwiss, hdr);
  REQUIRE_MESSAGE(h.ok(), h.error().message);
  CHECK(h->small());
  CHECK(h->count == 3);
  CHECK(h->tables.empty());
  auto t = read_map_type(m, l, MapImpl::kSwiss, kMapType);
  REQUIRE_MESSAGE(t.ok(), t.error().message);
  CHECK(t->slot_size == 24);
  CHECK(t->elem_off == 16);
  auto c = read_map_entries(m, *h, *t, 20);
  REQUIRE(c.ok());
  CHECK(c->warnings.empty());
  REQUIRE(c->entries.size() == 3);
  CHECK(c->entries[0].key == "\"alpha\"");
  CHECK(c->entries[0].elem == "1");
  CHECK(c->entries[1].key == "\"be\\\"ta\"");
  CHECK(c->entries[1].elem == "-2");
  CHECK(c->entries[2].key == "\"" + std::string(64, 'x') + "\"... (len 100)");
  CHECK(c->entries[2].where == "group slot 6");

  auto hint = map_type_from_sizes(MapImpl::kSwiss, 16, 8);
  CHECK(hint.slot_size == 24);
  CHECK(hint.elem_off == 16);
  CHECK(hint.group_size == 200);
}

TEST_CASE("swiss: large map, directory of 4 entries over 2 tables, deleted slots skipped") {
  auto l = layouts(26, MapImpl::kSwiss);
  FakeMemory m;
  add_swiss_type(m, 8, GoKind::kInt64, 1, GoKind::kUint8, 16, 8);
  const RemoteAddr hdr{0xc000010000}, dir{0xc000020000}, t0{0xc000030000}, t1{0xc000030100},
      g0{0xc000040000}, g1{0xc000050000};
  m.add(hdr, swiss_header(5, dir.value(), 4, 2, 1).b);
  Image d(32);
  for (int i = 0; i < 4; i++) d.put<uint64_t>(8 * i, (i < 2 ? t0 : t1).value());
  m.add(dir, d.b);
  // maps.table: used@0 capacity@2 growthLeft@4 localDepth@6 index@8 groups.data@16 lengthMask@24.
  auto table = [&](RemoteAddr at, uint16_t used, int64_t index, RemoteAddr groups) {
    Image t(32);
    t.put<uint16_t>(0, used);
    t.put<uint16_t>(2, 16);
    t.put<uint8_t>(6, 1);
    t.put<int64_t>(8, index);
    t.put<uint64_t>(16, groups.value());
    t.put<uint64_t>(24, 1);  // 2 groups
    m.add(at, t.b);
  };
  table(t0, 3, 0, g0);
  table(t1, 2, 2, g1);
  const size_t gs = 8 + 8 * 16;
  auto groups = [&](RemoteAddr at, std::vector<std::tuple<int, int, int64_t>> full, int deleted_group) {
    Image g(2 * gs);
    for (int gi = 0; gi < 2; gi++)
      for (int i = 0; i < 8; i++) g.put<uint8_t>(gi * gs + i, gi == deleted_group && i == 7 ? 0xfe : 0x80);
    for (auto [gi, i, k] : full) {
      g.put<uint8_t>(gi * gs + i, 0x05);
      g.put<int64_t>(gi * gs + 8 + 16 * i, k);
      g.put<uint8_t>(gi * gs + 8 + 16 * i + 8, static_cast<uint8_t>(k * 2));
    }
    m.add(at, g.b);
  };
  groups(g0, {{0, 0, 100}, {0, 5, 101}, {1, 2, 102}}, 0);
  groups(g1, {{1, 0, 200}, {1, 7, 201}}, 1);

  auto h = read_map_header(m, l, MapImpl::kSwiss, hdr);
  REQUIRE_MESSAGE(h.ok(), h.error().message);
  CHECK_FALSE(h->small());
  CHECK(h->writing);
  CHECK(h->dir_len == 4);
  REQUIRE(h->tables.size() == 2);
  CHECK(h->tables[0].used == 3);
  CHECK(h->tables[1].ngroups == 2);
  auto t = read_map_type(m, l, MapImpl::kSwiss, kMapType);
  REQUIRE(t.ok());
  auto c = read_map_entries(m, *h, *t, 20);
  REQUIRE(c.ok());
  CHECK(c->found == 5);
  CHECK(c->warnings.empty());
  CHECK(pairs(*c) == std::vector<std::string>{"100=200", "101=202", "102=204", "200=144", "201=146"});
  CHECK(c->entries[4].where == "table 1 group 1 slot 7");
}

TEST_CASE("map decoding rejects what is not a map") {
  auto l = layouts(26, MapImpl::kSwiss);
  FakeMemory m;
  add_type(m, kMapType, 8, GoKind::kInt64);
  auto t = read_map_type(m, l, MapImpl::kSwiss, kMapType);
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().message.find("not a map type descriptor") != std::string::npos);
  CHECK_FALSE(read_map_header(m, l, MapImpl::kSwiss, RemoteAddr()).ok());
  m.add(RemoteAddr{0x1000}, swiss_header(1, 0x2000, 3, 1, 0).b);  // dirLen != 1<<globalDepth
  CHECK_FALSE(read_map_header(m, l, MapImpl::kSwiss, RemoteAddr{0x1000}).ok());
}

TEST_CASE("format_value: integer widths and signedness, bool, pointers") {
  FakeMemory m;
  m.add(RemoteAddr{0x100}, {0xff, 0xff, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00});
  CHECK(format_value(m, {RemoteAddr(), 1, GoKind::kInt8}, RemoteAddr{0x100}) == "-1");
  CHECK(format_value(m, {RemoteAddr(), 1, GoKind::kUint8}, RemoteAddr{0x100}) == "255");
  CHECK(format_value(m, {RemoteAddr(), 4, GoKind::kInt32}, RemoteAddr{0x100}) == "131071");
  CHECK(format_value(m, {RemoteAddr(), 1, GoKind::kBool}, RemoteAddr{0x102}) == "true");
  CHECK(format_value(m, {RemoteAddr(), 8, GoKind::kPointer}, RemoteAddr{0x100}) == "0x1ffff");
  CHECK(format_value(m, {RemoteAddr(), 3, GoKind::kArray}, RemoteAddr{0x100}) == "0xffff01");
  CHECK(format_value(m, {RemoteAddr(), 8, GoKind::kInt64}, RemoteAddr{0x900}).find("unreadable") != std::string::npos);
}
