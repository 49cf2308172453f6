// Map decoding: headers, type descriptors and live entries of Go maps, read through Memory.
//
// Facts it rests on (../shared/reference/go-runtime.md section 3):
// * hmap (runtime/map.go@go1.23, map_noswiss.go@go1.24/1.25): 1<<B buckets of
//   {tophash[8]; keys[8]; elems[8]; overflow *bmap}; tophash >= 5 is a full cell; a bucket
//   with tophash[0] in 2..4 has been evacuated. While growing, old buckets not yet
//   evacuated hold live entries and their new buckets are still empty (growWork
//   evacuates before mapassign inserts), so new + unevacuated old counts each entry once.
// * swiss (internal/runtime/maps@go1.24-1.26): dirLen == 0: dirPtr is one group; else
//   dirPtr is [dirLen]*table, a table filling consecutive entries. A group is an 8-byte
//   control word then 8 slots; control byte with the top bit clear = full slot.
// * Map type flags: hmap 1 indirect key, 2 indirect elem (abi/type.go@go1.23);
//   swiss 4 indirect key, 8 indirect elem (abi/map.go@go1.26).

#include "core/goruntime/maps.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <unordered_set>

namespace gort::core {
namespace {

constexpr int kSlots = 8;              // abi.MapBucketCount / abi.MapGroupSlots
constexpr uint64_t kMaxInline = 128;   // MapMaxKeyBytes / MapMaxElemBytes
constexpr size_t kMaxStringShown = 64;
constexpr uint64_t kMaxBuckets = 1ull << 24;  // sanity bound on 1<<B and table groups
constexpr int kMaxOverflowChain = 1 << 16;

Result<void> need(const RuntimeLayouts& l, std::initializer_list<uint32_t> fields, const char* what) {
  for (auto f : fields)
    if (!l.has(f)) return make_error(ErrorKind::kUnsupported, "the runtime layouts lack a field of {}", what);
  return {};
}

template <typename T>
Result<T> rd(const Memory& m, RemoteAddr base, uint32_t off) {
  return m.read_value<T>(base + off);
}

Result<GoTypeInfo> read_type(const Memory& m, const RuntimeLayouts& l, RemoteAddr addr) {
  if (addr.is_null()) return make_error(ErrorKind::kBadInput, "nil *abi.Type");
  GORT_TRY(uint64_t size, rd<uint64_t>(m, addr, l.type_size));
  GORT_TRY(uint8_t kind, rd<uint8_t>(m, addr, l.type_kind));
  return GoTypeInfo{addr, size, static_cast<GoKind>(kind & 0x1f)};
}

uint64_t natural_align(uint64_t size) {
  uint64_t a = 8;
  while (a > 1 && size % a != 0) a >>= 1;
  return size == 0 ? 1 : a;
}
uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// A value of unknown kind (sizes from --key-size/--elem-size): an integer when it has an
// integer's size, else little-endian 8-byte words, else bytes.
std::string unknown_kind(const Memory& m, RemoteAddr addr, uint64_t size) {
  if (size == 1 || size == 2 || size == 4 || size == 8) {
    uint64_t raw = 0;
    if (!m.read(addr, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&raw), size))) return fmt::format("<unreadable at {}>", addr);
    return fmt::format("{}", raw);
  }
  if (size % 8 == 0 && size <= 64) {
    std::string out = "{";
    for (uint64_t off = 0; off < size; off += 8) {
      auto w = m.read_u64(addr + off);
      if (!w) return fmt::format("<unreadable at {}>", addr + off);
      out += fmt::format("{}{:#x}", off ? ", " : "", *w);
    }
    return out + "}";
  }
  return {};
}

std::string hex_bytes(const Memory& m, RemoteAddr addr, uint64_t size) {
  uint64_t n = std::min<uint64_t>(size, kMaxStringShown);
  std::vector<uint8_t> b(n);
  if (n && !m.read(addr, b)) return fmt::format("<unreadable at {}>", addr);
  std::string out = "0x";
  for (auto c : b) out += fmt::format("{:02x}", c);
  if (n < size) out += fmt::format("... ({} bytes)", size);
  return n ? out : "{}";
}

// The value of a slot, following the pointer if the slot is indirect.
RemoteAddr value_addr(const Memory& m, RemoteAddr slot, bool indirect) {
  if (!indirect) return slot;
  auto p = m.read_ptr(slot);
  return p ? *p : RemoteAddr();
}

}  // namespace

const char* to_string(GoKind k) {
  static const char* const names[] = {
      "invalid", "bool",    "int",     "int8",      "int16",      "int32",  "int64",  "uint",  "uint8",
      "uint16",  "uint32",  "uint64",  "uintptr",   "float32",    "float64", "complex64", "complex128",
      "array",   "chan",    "func",    "interface", "map",        "ptr",    "slice",  "string", "struct",
      "unsafe.Pointer"};
  auto i = static_cast<size_t>(k);
  return i < std::size(names) ? names[i] : "invalid";
}

std::string format_value(const Memory& m, const GoTypeInfo& t, RemoteAddr a) {
  if (a.is_null()) return "<nil indirect slot>";
  auto bad = [&] { return fmt::format("<unreadable at {}>", a); };
  switch (t.kind) {
    case GoKind::kBool: {
      auto v = m.read_u8(a);
      return v ? (*v ? "true" : "false") : bad();
    }
    case GoKind::kInt: case GoKind::kInt8: case GoKind::kInt16: case GoKind::kInt32: case GoKind::kInt64:
    case GoKind::kUint: case GoKind::kUint8: case GoKind::kUint16: case GoKind::kUint32: case GoKind::kUint64:
    case GoKind::kUintptr: {
      if (t.size == 0 || t.size > 8 || (t.size & (t.size - 1))) break;
      uint64_t raw = 0;
      if (!m.read(a, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&raw), t.size))) return bad();
      bool is_signed = t.kind >= GoKind::kInt && t.kind <= GoKind::kInt64;
      if (is_signed) {
        int shift = 64 - static_cast<int>(t.size * 8);
        return fmt::format("{}", static_cast<int64_t>(raw << shift) >> shift);
      }
      return fmt::format("{}", raw);
    }
    case GoKind::kFloat32: {
      auto v = m.read_value<float>(a);
      return v ? fmt::format("{}", *v) : bad();
    }
    case GoKind::kFloat64: {
      auto v = m.read_value<double>(a);
      return v ? fmt::format("{}", *v) : bad();
    }
    case GoKind::kString: {
      auto p = m.read_ptr(a);
      auto n = m.read_u64(a + 8);
      if (!p || !n) return bad();
      if (*n == 0) return "\"\"";
      if (*n > (1ull << 40)) return fmt::format("<bad string len {} at {}>", *n, a);
      std::string s(std::min<uint64_t>(*n, kMaxStringShown), '\0');
      if (!m.read(*p, std::span<uint8_t>(reinterpret_cast<uint8_t*>(s.data()), s.size())))
        return fmt::format("<unreadable string data at {}, len {}>", *p, *n);
      return *n > s.size() ? fmt::format("{}... (len {})", quote(s), *n) : quote(s);
    }
    case GoKind::kPointer: case GoKind::kUnsafePointer: case GoKind::kChan: case GoKind::kMap:
    case GoKind::kFunc: {
      auto p = m.read_ptr(a);
      return p ? fmt::format("{}", *p) : bad();
    }
    case GoKind::kInvalid: {
      std::string v = unknown_kind(m, a, t.size);
      if (!v.empty()) return v;
      break;
    }
    default: break;
  }
  return hex_bytes(m, a, t.size);
}

Result<MapTypeInfo> read_map_type(const Memory& m, const RuntimeLayouts& l, MapImpl impl, RemoteAddr addr) {
  MapTypeInfo t;
  t.impl = impl;
  t.addr = addr;
  auto ctx = [&](const Error& e) { return e.with_context(fmt::format("reading map type at {}", addr)); };
  GORT_TRY(GoTypeInfo self, read_type(m, l, addr));
  if (self.kind != GoKind::kMap)
    return make_error(ErrorKind::kBadInput,
                      "{} is not a map type descriptor (kind {} = {}); pass the RAX of runtime.mapassign* "
                      "or the address of a `type:map[K]V` symbol",
                      addr, static_cast<int>(self.kind), to_string(self.kind));
  // The key and elem abi.Types, the same in both implementations.
  auto key_elem = [&](RemoteAddr key, RemoteAddr elem) -> Result<void> {
    auto kt = read_type(m, l, key);
    auto et = read_type(m, l, elem);
    if (!kt) return ctx(kt.error());
    if (!et) return ctx(et.error());
    t.key = *kt;
    t.elem = *et;
    return {};
  };
  if (impl == MapImpl::kHmap) {
    GORT_TRY_VOID(need(l, {l.hmaptype_key, l.hmaptype_elem, l.hmaptype_keysize, l.hmaptype_valuesize,
                           l.hmaptype_bucketsize, l.hmaptype_flags}, "the hmap map type"));
    auto key = m.read_ptr(addr + l.hmaptype_key);
    auto elem = m.read_ptr(addr + l.hmaptype_elem);
    auto ks = rd<uint8_t>(m, addr, l.hmaptype_keysize);
    auto es = rd<uint8_t>(m, addr, l.hmaptype_valuesize);
    auto bs = rd<uint16_t>(m, addr, l.hmaptype_bucketsize);
    auto fl = rd<uint32_t>(m, addr, l.hmaptype_flags);
    if (!key || !elem || !ks || !es || !bs || !fl) return ctx(make_error(ErrorKind::kIo, "unreadable fields"));
    GORT_TRY_VOID(key_elem(*key, *elem));
    t.indirect_key = *fl & 1;   // abi.OldMapType.IndirectKey
    t.indirect_elem = *fl & 2;  // IndirectElem
    t.key_slot = *ks;
    t.elem_slot = *es;
    t.bucket_size = *bs;
    if (t.bucket_size != 8 + kSlots * (t.key_slot + t.elem_slot) + 8)
      return ctx(make_error(ErrorKind::kBadInput, "bucket size {} does not match key size {} and elem size {}",
                            t.bucket_size, t.key_slot, t.elem_slot));
  } else {
    GORT_TRY_VOID(need(l, {l.smaptype_key, l.smaptype_elem, l.smaptype_group_size, l.smaptype_slot_size,
                           l.smaptype_elem_off, l.smaptype_flags}, "the swiss map type"));
    auto key = m.read_ptr(addr + l.smaptype_key);
    auto elem = m.read_ptr(addr + l.smaptype_elem);
    auto gs = rd<uint64_t>(m, addr, l.smaptype_group_size);
    auto ss = rd<uint64_t>(m, addr, l.smaptype_slot_size);
    auto eo = rd<uint64_t>(m, addr, l.smaptype_elem_off);
    auto fl = rd<uint32_t>(m, addr, l.smaptype_flags);
    if (!key || !elem || !gs || !ss || !eo || !fl) return ctx(make_error(ErrorKind::kIo, "unreadable fields"));
    GORT_TRY_VOID(key_elem(*key, *elem));
    t.indirect_key = *fl & 4;   // abi.MapIndirectKey (swiss numbering)
    t.indirect_elem = *fl & 8;  // abi.MapIndirectElem
    t.group_size = *gs;
    t.slot_size = *ss;
    t.elem_off = *eo;
    t.key_slot = t.indirect_key ? 8 : t.key.size;
    t.elem_slot = t.indirect_elem ? 8 : t.elem.size;
    if (t.group_size != 8 + kSlots * t.slot_size || t.elem_off + t.elem_slot > t.slot_size ||
        t.key_slot > t.elem_off)
      return ctx(make_error(ErrorKind::kBadInput, "group size {}, slot size {}, elem offset {} are inconsistent",
                            t.group_size, t.slot_size, t.elem_off));
  }
  return t;
}

MapTypeInfo map_type_from_sizes(MapImpl impl, uint64_t key_size, uint64_t elem_size) {
  MapTypeInfo t;
  t.impl = impl;
  t.key.size = key_size;
  t.elem.size = elem_size;
  t.indirect_key = key_size > kMaxInline;
  t.indirect_elem = elem_size > kMaxInline;
  t.key_slot = t.indirect_key ? 8 : key_size;
  t.elem_slot = t.indirect_elem ? 8 : elem_size;
  if (impl == MapImpl::kHmap) {
    t.bucket_size = 8 + kSlots * (t.key_slot + t.elem_slot) + 8;
  } else {
    uint64_t ka = t.indirect_key ? 8 : natural_align(key_size);
    uint64_t ea = t.indirect_elem ? 8 : natural_align(elem_size);
    t.elem_off = align_up(t.key_slot, ea);
    t.slot_size = align_up(t.elem_off + t.elem_slot, std::max(ka, ea));
    t.group_size = 8 + kSlots * t.slot_size;
  }
  return t;
}

Result<MapHeader> read_map_header(const Memory& m, const RuntimeLayouts& l, MapImpl impl, RemoteAddr addr) {
  if (addr.is_null()) return make_error(ErrorKind::kBadInput, "nil map (address 0): a nil map has no header");
  MapHeader h;
  h.impl = impl;
  h.addr = addr;
  auto ctx = [&](const Error& e) { return e.with_context(fmt::format("reading map header at {}", addr)); };
  if (impl == MapImpl::kHmap) {
    GORT_TRY_VOID(need(l, {l.hmap_count, l.hmap_flags, l.hmap_b, l.hmap_buckets, l.hmap_oldbuckets,
                           l.hmap_nevacuate}, "runtime.hmap"));
    auto count = rd<uint64_t>(m, addr, l.hmap_count);
    if (!count) return ctx(count.error());
    h.count = *count;
    auto flags = rd<uint8_t>(m, addr, l.hmap_flags);
    auto b = rd<uint8_t>(m, addr, l.hmap_b);
    auto bk = m.read_ptr(addr + l.hmap_buckets);
    auto ob = m.read_ptr(addr + l.hmap_oldbuckets);
    auto ne = rd<uint64_t>(m, addr, l.hmap_nevacuate);
    if (!flags || !b || !bk || !ob || !ne) return ctx(make_error(ErrorKind::kIo, "unreadable field"));
    h.flags = *flags;
    h.b = *b;
    h.buckets = *bk;
    h.oldbuckets = *ob;
    h.nevacuate = *ne;
    h.writing = h.flags & l.hmap_writing_bit;
    if (l.has(l.hmap_noverflow)) h.noverflow = rd<uint16_t>(m, addr, l.hmap_noverflow).value_or(0);
    if (h.b > 24)
      return ctx(make_error(ErrorKind::kBadInput, "B = {} is implausible: not an hmap?", h.b));
    return h;
  }
  GORT_TRY_VOID(need(l, {l.smap_used, l.smap_dir_ptr, l.smap_dir_len, l.smap_global_depth, l.smap_writing,
                         l.stable_used, l.stable_capacity, l.stable_groups_data, l.stable_groups_mask},
                     "internal/runtime/maps.Map"));
  auto used = rd<uint64_t>(m, addr, l.smap_used);
  if (!used) return ctx(used.error());
  h.count = *used;
  auto dp = m.read_ptr(addr + l.smap_dir_ptr);
  auto dl = rd<int64_t>(m, addr, l.smap_dir_len);
  auto gd = rd<uint8_t>(m, addr, l.smap_global_depth);
  auto wr = rd<uint8_t>(m, addr, l.smap_writing);
  if (!dp || !dl || !gd || !wr) return ctx(make_error(ErrorKind::kIo, "unreadable field"));
  h.dir_ptr = *dp;
  h.dir_len = *dl;
  h.global_depth = *gd;
  h.writing_byte = *wr;
  h.writing = *wr != 0;
  if (h.dir_len < 0 || h.dir_len > (1 << 20) || (h.dir_len && h.dir_len != (int64_t{1} << h.global_depth)))
    return ctx(make_error(ErrorKind::kBadInput, "dirLen {} with globalDepth {} is implausible: not a swiss map?",
                          h.dir_len, h.global_depth));
  if (h.dir_len > 0) {
    // A table fills the consecutive directory entries it owns; count it once.
    std::unordered_set<uint64_t> seen;
    for (int64_t i = 0; i < h.dir_len; i++) {
      auto t = m.read_ptr(h.dir_ptr + i * 8);
      if (!t) return ctx(t.error().with_context(fmt::format("directory entry {}", i)));
      if (t->is_null() || !seen.insert(t->value()).second) continue;
      MapHeader::Table tab;
      tab.addr = *t;
      auto data = m.read_ptr(*t + l.stable_groups_data);
      auto mask = rd<uint64_t>(m, *t, l.stable_groups_mask);
      auto used = rd<uint16_t>(m, *t, l.stable_used);
      auto cap = rd<uint16_t>(m, *t, l.stable_capacity);
      if (!data || !mask || !used || !cap) return ctx(make_error(ErrorKind::kIo, "cannot read table {} at {}", i, *t));
      if (*mask >= kMaxBuckets)
        return ctx(make_error(ErrorKind::kBadInput, "table at {} has implausible lengthMask {:#x}", *t, *mask));
      tab.groups = *data;
      tab.ngroups = *mask + 1;
      tab.used = *used;
      tab.capacity = *cap;
      h.tables.push_back(tab);
    }
  }
  return h;
}

namespace {

class Walker {
 public:
  Walker(const Memory& m, const MapTypeInfo& t, size_t limit, MapContents& out)
      : m_(m), t_(t), limit_(limit), out_(out) {}

  void slot(RemoteAddr key_slot, RemoteAddr elem_slot, std::string where) {
    out_.found++;
    if (out_.entries.size() >= limit_) return;
    RemoteAddr ka = value_addr(m_, key_slot, t_.indirect_key);
    RemoteAddr ea = value_addr(m_, elem_slot, t_.indirect_elem);
    out_.entries.push_back({ka, ea, format_value(m_, t_.key, ka), format_value(m_, t_.elem, ea), std::move(where)});
  }

  // One hmap bucket and its overflow chain.
  void bucket_chain(RemoteAddr b, const std::string& label) {
    for (int depth = 0; !b.is_null(); depth++) {
      if (depth > kMaxOverflowChain) {
        out_.warnings.push_back(fmt::format("{}: overflow chain longer than {}; stopped", label, kMaxOverflowChain));
        return;
      }
      std::vector<uint8_t> bytes(t_.bucket_size);
      if (!m_.read(b, bytes)) {
        out_.warnings.push_back(fmt::format("{}: cannot read bucket at {}", label, b));
        return;
      }
      for (int i = 0; i < kSlots; i++) {
        if (bytes[i] < 5) continue;  // emptyRest, emptyOne, evacuated*: minTopHash = 5
        slot(b + 8 + i * t_.key_slot, b + 8 + kSlots * t_.key_slot + i * t_.elem_slot,
             depth ? fmt::format("{} overflow {}", label, depth) : label);
      }
      uint64_t next;
      std::memcpy(&next, bytes.data() + t_.bucket_size - 8, 8);
      b = RemoteAddr(next);
    }
  }

  // One swiss group: control word then 8 slots.
  void group(RemoteAddr g, const std::string& label) {
    auto ctrl = m_.read_u64(g);
    if (!ctrl) {
      out_.warnings.push_back(fmt::format("{}: cannot read group at {}", label, g));
      return;
    }
    for (int i = 0; i < kSlots; i++) {
      uint8_t c = (*ctrl >> (8 * i)) & 0xff;
      if (c & 0x80) continue;  // ctrlEmpty 0x80, ctrlDeleted 0xfe
      RemoteAddr s = g + 8 + i * t_.slot_size;
      slot(s, s + t_.elem_off, fmt::format("{} slot {}", label, i));
    }
  }

 private:
  const Memory& m_;
  const MapTypeInfo& t_;
  size_t limit_;
  MapContents& out_;
};

}  // namespace

Result<MapContents> read_map_entries(const Memory& m, const MapHeader& h, const MapTypeInfo& t, size_t limit) {
  if (h.impl != t.impl)
    return make_error(ErrorKind::kInternal, "map is {} but its type was read as {}", to_string(h.impl),
                      to_string(t.impl));
  MapContents out;
  Walker w(m, t, limit, out);
  if (h.impl == MapImpl::kHmap) {
    if (h.buckets.is_null()) return out;  // lazily allocated: no entries yet
    uint64_t n = uint64_t{1} << h.b;
    for (uint64_t i = 0; i < n; i++) w.bucket_chain(h.buckets + i * t.bucket_size, fmt::format("bucket {}", i));
    if (h.growing()) {
      // Old array: half the size unless a same-size grow (flags & sameSizeGrow = 8).
      uint64_t old_n = (h.flags & 8) ? n : n / 2;
      for (uint64_t i = 0; i < old_n; i++) {
        RemoteAddr ob = h.oldbuckets + i * t.bucket_size;
        auto top0 = m.read_u8(ob);
        if (!top0) {
          out.warnings.push_back(fmt::format("cannot read old bucket {} at {}", i, ob));
          continue;
        }
        if (*top0 > 1 && *top0 < 5) continue;  // evacuated (runtime.evacuated)
        w.bucket_chain(ob, fmt::format("oldbucket {}", i));
      }
    }
  } else if (h.small()) {
    if (!h.dir_ptr.is_null()) w.group(h.dir_ptr, "group");
  } else {
    for (size_t ti = 0; ti < h.tables.size(); ti++) {
      const auto& tab = h.tables[ti];
      for (uint64_t g = 0; g < tab.ngroups; g++)
        w.group(tab.groups + g * t.group_size, fmt::format("table {} group {}", ti, g));
    }
  }
  if (out.found != h.count)
    out.warnings.push_back(fmt::format("found {} live entries but the header says {}{}", out.found, h.count,
                                       h.writing ? " (a write is in progress)" : ""));
  return out;
}

}  // namespace gort::core
