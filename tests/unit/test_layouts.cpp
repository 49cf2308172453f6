// Runtime layout tables (core/goruntime/layouts_table.cpp) and the DWARF loader's
// behaviour on binaries without DWARF. The DWARF-vs-table agreement for every field is
// checked against real toolchains in tests/e2e/test_layouts.py.

#include "core/goruntime/layouts.h"
#include "core/goruntime/layouts_table.h"

#include <doctest/doctest.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

using namespace gort::core;

namespace {

GoVersion go(int minor, int patch = 0) {
  auto v = GoVersion::parse(fmt::format("go1.{}.{}", minor, patch));
  REQUIRE(v.has_value());
  return *v;
}

RuntimeLayouts table(int minor, MapImpl map) {
  auto r = layouts_from_table(go(minor), map);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return *r;
}

}  // namespace

TEST_CASE("goid moves with syscallbp (1.23) and gobuf.ret removal (1.25)") {
  CHECK(table(21, MapImpl::kHmap).g_goid == 0x98);
  CHECK(table(22, MapImpl::kHmap).g_goid == 0x98);
  CHECK(table(23, MapImpl::kHmap).g_goid == 0xa0);
  CHECK(table(24, MapImpl::kSwiss).g_goid == 0xa0);
  CHECK(table(24, MapImpl::kHmap).g_goid == 0xa0);
  CHECK(table(25, MapImpl::kSwiss).g_goid == 0x98);
  CHECK(table(26, MapImpl::kSwiss).g_goid == 0x98);
  // atomicstatus sits 8 bytes before goid in every version.
  for (int minor = kMinGoMinor; minor <= kMaxGoMinor; ++minor) {
    auto l = table(minor, minor >= 24 ? MapImpl::kSwiss : MapImpl::kHmap);
    CAPTURE(minor);
    CHECK(l.g_atomicstatus + 8 == l.g_goid);
  }
}

TEST_CASE("g.syscallbp exists from 1.23; g.sched.bp loses 8 bytes in 1.25") {
  CHECK_FALSE(table(21, MapImpl::kHmap).has(table(21, MapImpl::kHmap).g_syscallbp));
  CHECK_FALSE(table(22, MapImpl::kHmap).has(table(22, MapImpl::kHmap).g_syscallbp));
  CHECK(table(23, MapImpl::kHmap).g_syscallbp == 0x80);
  CHECK(table(25, MapImpl::kSwiss).g_syscallbp == 0x78);
  CHECK(table(24, MapImpl::kSwiss).g_sched_bp == 0x68);
  CHECK(table(25, MapImpl::kSwiss).g_sched_bp == 0x60);
  CHECK(table(25, MapImpl::kSwiss).m_procid == 0x40);  // m.morebuf is a gobuf too
  CHECK(table(24, MapImpl::kSwiss).m_procid == 0x48);
}

TEST_CASE("swiss Map.writing is 0x22 in every swiss version") {
  for (int minor : {24, 25, 26}) {
    CAPTURE(minor);
    auto l = table(minor, MapImpl::kSwiss);
    CHECK(l.smap_writing == 0x22);
    CHECK(l.smap_used == 0);
    CHECK(l.smap_size == 48);
    CHECK(l.stable_groups_data == 16);
    CHECK(l.smaptype_elem_off == 96);
  }
  CHECK_FALSE(table(24, MapImpl::kSwiss).has(table(24, MapImpl::kSwiss).smap_tombstone_possible));
  CHECK(table(25, MapImpl::kSwiss).smap_tombstone_possible == 35);
}

TEST_CASE("hmap.flags is at 8; noswissmap 1.24/1.25 add clearSeq before extra") {
  for (int minor : {21, 22, 23, 24, 25}) {
    CAPTURE(minor);
    auto l = table(minor, MapImpl::kHmap);
    CHECK(l.hmap_flags == 8);
    CHECK(l.hmap_count == 0);
    CHECK(l.hmap_writing_bit == 4);
    CHECK(l.hmaptype_flags == 84);
    CHECK(l.hmap_extra == (minor >= 24 ? 48u : 40u));
    CHECK(l.hmap_size == (minor >= 24 ? 56u : 48u));
  }
}

TEST_CASE("the other map implementation's fields stay absent") {
  for (int minor = kMinGoMinor; minor <= kMaxGoMinor; ++minor) {
    for (MapImpl map : {MapImpl::kHmap, MapImpl::kSwiss}) {
      auto r = layouts_from_table(go(minor), map);
      if (!r.ok()) continue;  // impossible combinations, checked below
      CAPTURE(minor);
      CAPTURE(to_string(map));
      for (auto& d : runtime_field_descs()) {
        auto impl = map_impl_of_field(d.ptr);
        if (impl && *impl != map) {
          CAPTURE(d.member);
          CHECK((*r).*d.ptr == kAbsentField);
        }
      }
    }
  }
  CHECK(table(26, MapImpl::kSwiss).smap_writing == 0x22);
  CHECK(table(26, MapImpl::kSwiss).hmap_flags == kAbsentField);
  CHECK(table(23, MapImpl::kHmap).smap_writing == kAbsentField);
}

TEST_CASE("fields every build has are present in every version") {
  for (int minor = kMinGoMinor; minor <= kMaxGoMinor; ++minor) {
    auto l = table(minor, minor >= 24 ? MapImpl::kSwiss : MapImpl::kHmap);
    CAPTURE(minor);
    for (uint32_t v : {l.g_stack_lo, l.g_stack_hi, l.g_m, l.g_sched_sp, l.g_sched_pc, l.g_sched_bp, l.g_goid,
                       l.g_atomicstatus, l.g_size, l.m_curg, l.m_procid, l.m_g0, l.type_kind, l.mspan_limit,
                       l.mspan_state, l.mheap_arenas, l.heaparena_spans})
      CHECK(v != kAbsentField);
    CHECK(l.g_stack_hi == 8);
    CHECK(l.g_m == 48);
    CHECK(l.type_kind == 23);
  }
}

TEST_CASE("heap layouts: allocation headers (1.22) moved heapArena.spans to 0") {
  CHECK(table(21, MapImpl::kHmap).heaparena_spans == 0x104000);
  CHECK(table(21, MapImpl::kHmap).mspan_nelems == 56);
  for (int minor = 22; minor <= kMaxGoMinor; ++minor) {
    auto l = table(minor, minor >= 24 ? MapImpl::kSwiss : MapImpl::kHmap);
    CAPTURE(minor);
    CHECK(l.heaparena_spans == 0);
    CHECK(l.mspan_nelems == 50);
    CHECK(l.mspan_size == 160);
    CHECK(l.mheap_arenas == 66008);
  }
}

TEST_CASE("versions outside 1.21-1.26 and impossible map implementations are refused") {
  for (const char* s : {"go1.20.14", "go1.19.8", "go1.27.1"}) {
    auto v = GoVersion::parse(s);
    REQUIRE(v.has_value());
    CAPTURE(s);
    auto r = layouts_from_table(*v, MapImpl::kSwiss);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::kUnsupported);
  }
  auto no_hmap = layouts_from_table(go(26), MapImpl::kHmap);
  REQUIRE_FALSE(no_hmap.ok());
  CHECK(no_hmap.error().kind == ErrorKind::kUnsupported);
  auto no_swiss = layouts_from_table(go(23), MapImpl::kSwiss);
  REQUIRE_FALSE(no_swiss.ok());
  CHECK(no_swiss.error().kind == ErrorKind::kUnsupported);
  // Patch releases share their minor's table.
  CHECK(layouts_from_table(go(22, 12), MapImpl::kHmap)->g_goid == layouts_from_table(go(22, 0), MapImpl::kHmap)->g_goid);
}

TEST_CASE("field descriptors: one per member, unique names, dotted paths") {
  const auto& descs = runtime_field_descs();
  REQUIRE(descs.size() > 50);
  std::set<std::string> names;
  for (auto& d : descs) {
    CAPTURE(d.member);
    CHECK(names.insert(d.member).second);
    CHECK(std::strlen(d.structs) > 0);
    CHECK(d.ptr != nullptr);
  }
  bool found = false;
  for (auto& d : descs)
    if (std::string(d.member) == "stable_groups_data") {
      found = true;
      CHECK(std::string(d.field) == "groups.data");
      CHECK(std::string(d.structs) == "internal/runtime/maps.table");
    }
  CHECK(found);
}

TEST_CASE("load_layouts on an ELF without DWARF takes the table and says so") {
  // Smallest valid x86-64 ELF: header only, no sections, no DWARF.
  std::vector<uint8_t> img(64, 0);
  const uint8_t ident[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
  std::memcpy(img.data(), ident, sizeof ident);
  img[16] = 2;     // ET_EXEC
  img[18] = 0x3e;  // EM_X86_64
  img[20] = 1;     // EV_CURRENT
  img[52] = 64;    // e_ehsize
  auto elf = ElfFile::from_bytes(Bytes(img.data(), img.size()), "tiny");
  REQUIRE_MESSAGE(elf.ok(), elf.error().message);
  REQUIRE_FALSE((*elf)->has_dwarf());

  auto r = load_layouts(**elf, go(25), MapImpl::kSwiss);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(r->source == LayoutSource::kTable);
  CHECK(r->layouts.g_goid == 0x98);
  CHECK(r->layouts.smap_writing == 0x22);
  CHECK(r->layouts.hmap_flags == kAbsentField);
  REQUIRE_FALSE(r->notes.empty());
  CHECK(r->notes.front().find("no DWARF") != std::string::npos);

  auto unsupported = load_layouts(**elf, go(20), MapImpl::kHmap);
  REQUIRE_FALSE(unsupported.ok());
  CHECK(unsupported.error().kind == ErrorKind::kUnsupported);
}
