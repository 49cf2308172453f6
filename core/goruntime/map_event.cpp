// Decodes map-write probe hits (see map_event.h). Facts used, from
// ../shared/reference/go-runtime.md:
//  * 1.3: at the entry of runtime.map{assign,delete}* the map type is in RAX, the map in
//    RBX, the key in RCX (string: ptr RCX, len RDI; generic: RCX points at the key);
//    (*maps.Map) methods take the receiver in RAX and the type in RBX. R14 = g.
//  * 1.3 / 10: at the entry [RSP] is the return address and RBP still the caller's frame
//    pointer; after the prologue [RBP] = caller's BP, [RBP+8] = return address.
//  * 5.2: goid is at g + layouts.g_goid (0x98 / 0xa0 by version).
//  * abi.Type.Kind_ low 5 bits: the reflect.Kind (internal/abi/type.go, 1.21-1.26).

#include "core/goruntime/map_event.h"

#include "core/binary/go_binary.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

namespace gort::core {
namespace {

// reflect.Kind values (internal/abi/type.go).
enum : uint8_t {
  kKindInt = 2, kKindInt8, kKindInt16, kKindInt32, kKindInt64,
  kKindUint, kKindUint8, kKindUint16, kKindUint32, kKindUint64, kKindUintptr,
  kKindPointer = 22, kKindString = 24, kKindUnsafePointer = 26,
};

uint64_t reg_by_name(const ThreadRegs& r, std::string_view name) { return reg_value(r, name); }

bool is_runtime_frame(std::string_view fn) {
  return fn.starts_with("runtime.") || fn.starts_with("internal/runtime/");
}

std::vector<CallerFrame> frames_at(const DecodeContext& ctx, RemoteAddr link_pc) {
  std::vector<CallerFrame> out;
  if (!ctx.pclntab) return out;
  auto frames = ctx.pclntab->symbolize(link_pc);
  if (!frames) return out;
  for (auto& f : *frames) out.push_back({std::string(f.function), std::string(f.file), f.line});
  return out;
}

// The first non-runtime caller: symbolize RET-1; while its physical function is a runtime
// function (a map helper called by another, e.g. swiss mapdelete_fast64 -> (*Map).Delete),
// climb the frame-pointer chain from BP.
std::vector<CallerFrame> user_caller(const DecodeContext& ctx, uint64_t ret, uint64_t bp) {
  std::vector<CallerFrame> frames;
  for (int hop = 0; hop < 8 && ret != 0; ++hop) {
    frames = frames_at(ctx, RemoteAddr(ret - 1 - static_cast<uint64_t>(ctx.slide)));
    if (frames.empty() || !is_runtime_frame(frames.back().function) || bp == 0) break;
    auto next_ret = ctx.mem->read_u64(RemoteAddr(bp + 8));
    auto next_bp = ctx.mem->read_u64(RemoteAddr(bp));
    if (!next_ret || !next_bp || *next_bp <= bp) break;
    ret = *next_ret;
    bp = *next_bp;
  }
  return frames;
}

// The goroutine id of G; 0 when there is no g (R14 is not g here) or no goid offset, an
// error when g could not be read.
Result<uint64_t> read_goid(const DecodeContext& ctx, uint64_t g) {
  const auto& L = ctx.layouts;
  if (g == 0 || !L.has(L.g_goid)) return uint64_t{0};
  return ctx.mem->read_u64(RemoteAddr(g + L.g_goid));
}

// Fills E.goroutine from G, or says in E.undecoded why it could not.
void set_goroutine(MapWriteEvent& e, const DecodeContext& ctx, uint64_t g) {
  auto id = read_goid(ctx, g);
  if (id) e.goroutine = *id;
  else e.undecoded.push_back("goroutine: " + id.error().message);
}

Result<std::string> read_string(const Memory& mem, uint64_t ptr, uint64_t len, bool& truncated) {
  truncated = len > kMaxKeyBytes;
  size_t n = truncated ? kMaxKeyBytes : static_cast<size_t>(len);
  std::string s(n, '\0');
  if (n == 0) return s;
  GORT_TRY_VOID(mem.read(RemoteAddr(ptr), std::span<uint8_t>(reinterpret_cast<uint8_t*>(s.data()), n)));
  return s;
}

using KeyType = std::optional<std::pair<uint8_t, uint64_t>>;

// The key type's (kind, size) from the map type MAPTYPE; nullopt when there is none to
// read (no map type, layouts without the offsets), an error when memory was unreadable.
Result<KeyType> key_type(const DecodeContext& ctx, uint64_t maptype) {
  const auto& L = ctx.layouts;
  uint32_t key_off = ctx.map_impl == MapImpl::kHmap ? L.hmaptype_key : L.smaptype_key;
  if (maptype == 0 || !L.has(key_off) || !L.has(L.type_kind) || !L.has(L.type_size)) return KeyType{};
  GORT_TRY(uint64_t kt, ctx.mem->read_u64(RemoteAddr(maptype + key_off)));
  if (kt == 0) return KeyType{};
  GORT_TRY(uint8_t kind, ctx.mem->read_u8(RemoteAddr(kt + L.type_kind)));
  GORT_TRY(uint64_t size, ctx.mem->read_u64(RemoteAddr(kt + L.type_size)));
  return KeyType(std::make_pair(static_cast<uint8_t>(kind & 0x1f), size));
}

std::optional<MapKey> int_key(uint8_t kind, uint64_t raw, uint64_t size) {
  MapKey k;
  if (size < 8) raw &= (uint64_t{1} << (size * 8)) - 1;
  if (kind >= kKindInt && kind <= kKindInt64) {
    k.kind = MapKey::Kind::kInt;
    int shift = static_cast<int>(64 - size * 8);
    k.i = static_cast<int64_t>(raw << shift) >> shift;  // sign-extend
  } else if (kind >= kKindUint && kind <= kKindUintptr) {
    k.kind = MapKey::Kind::kUint;
    k.u = raw;
  } else if (kind == kKindPointer || kind == kKindUnsafePointer) {
    k.kind = MapKey::Kind::kPointer;
    k.u = raw;
  } else {
    return std::nullopt;
  }
  return k;
}

// The key of a hit at P's entry: nullopt when P has no key (clear, clone) or the key's
// type is one gort does not print; an error when its bytes could not be read.
Result<std::optional<MapKey>> decode_key(const Probe& p, const ThreadRegs& r, const DecodeContext& ctx) {
  if (p.key_reg.empty() || p.key_kind.empty()) return std::optional<MapKey>{};
  uint64_t key = reg_by_name(r, p.key_reg);
  // The map type: RAX for runtime.map*, RBX for (*maps.Map) methods (receiver in RAX).
  uint64_t maptype = p.map_reg == "rax" ? r.rbx : r.rax;
  // The key's type refines register keys (u32/u64: signed or not) and is needed for
  // indirect ones; register keys do without it.
  auto kt_read = key_type(ctx, maptype);
  KeyType kt = kt_read ? *kt_read : KeyType{};
  if (p.key_kind == "u32" || p.key_kind == "u64") {
    uint64_t size = p.key_kind == "u32" ? 4 : 8;
    uint8_t kind = kt && kt->second == size ? kt->first : uint8_t(size == 4 ? kKindUint32 : kKindUint64);
    auto k = int_key(kind, key, size);
    return k ? k : int_key(size == 4 ? kKindUint32 : kKindUint64, key, size);  // e.g. a [8]byte key
  }
  if (p.key_kind == "ptr") return int_key(kKindPointer, key, 8);
  if (p.key_kind == "str") {
    MapKey k;
    k.kind = MapKey::Kind::kString;
    GORT_TRY(k.s, read_string(*ctx.mem, key, r.rdi, k.truncated));
    return std::optional<MapKey>(std::move(k));
  }
  if (p.key_kind == "indirect" && key != 0) {
    if (!kt_read) return kt_read.error();
    if (!kt) return std::optional<MapKey>{};
    auto [kind, size] = *kt;
    if (kind == kKindString) {
      GORT_TRY(uint64_t ptr, ctx.mem->read_u64(RemoteAddr(key)));
      GORT_TRY(uint64_t len, ctx.mem->read_u64(RemoteAddr(key + 8)));
      MapKey k;
      k.kind = MapKey::Kind::kString;
      GORT_TRY(k.s, read_string(*ctx.mem, ptr, len, k.truncated));
      return std::optional<MapKey>(std::move(k));
    }
    if (size == 0 || size > 8) return std::optional<MapKey>{};
    uint64_t raw = 0;
    GORT_TRY_VOID(ctx.mem->read(RemoteAddr(key), std::span<uint8_t>(reinterpret_cast<uint8_t*>(&raw), size)));
    return int_key(kind, raw, size);
  }
  return std::optional<MapKey>{};
}

void set_key(MapWriteEvent& e, const Probe& p, const ThreadRegs& r, const DecodeContext& ctx) {
  auto k = decode_key(p, r, ctx);
  if (k) e.key = std::move(k).value();
  else e.undecoded.push_back("key: " + k.error().message);
}

}  // namespace

void put_caller_json(nlohmann::json& j, const std::vector<CallerFrame>& caller) {
  auto frame = [](const CallerFrame& f) {
    return nlohmann::json{{"function", f.function}, {"file", f.file}, {"line", f.line}};
  };
  if (caller.empty()) {
    j["caller"] = nullptr;
    return;
  }
  j["caller"] = frame(caller.front());
  auto arr = nlohmann::json::array();
  for (size_t i = 1; i < caller.size(); ++i) arr.push_back(frame(caller[i]));
  j["inlined_into"] = std::move(arr);
}

DecodeContext DecodeContext::of(const GoBinary& bin, const Memory& mem, int64_t slide) {
  DecodeContext c;
  c.pclntab = &bin.pclntab();
  c.layouts = bin.layouts();
  c.map_impl = bin.map_impl();
  c.mem = &mem;
  c.slide = slide;
  return c;
}

std::string MapKey::text() const {
  switch (kind) {
    case Kind::kInt: return fmt::format("{}", i);
    case Kind::kUint: return fmt::format("{}", u);
    case Kind::kPointer: return fmt::format("{:#x}", u);
    case Kind::kString: return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + (truncated ? "..." : "");
  }
  return "?";
}

const char* map_op(ProbeRole role) {
  switch (role) {
    case ProbeRole::kMapAssign: return "assign";
    case ProbeRole::kMapDelete: return "delete";
    case ProbeRole::kMapClear: return "clear";
    case ProbeRole::kMapClone: return "clone";
    case ProbeRole::kMapCreate: return "create";
    default: return "other";
  }
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

Result<MapWriteEvent> decode_map_write(const Probe& probe, const ThreadRegs& regs, uint64_t return_addr,
                                       const DecodeContext& ctx, uint64_t time_ns) {
  if (probe.map_reg.empty()) {
    return make_error(ErrorKind::kBadInput, "{}: the probe plan names no map register", probe.function);
  }
  MapWriteEvent e;
  e.thread = regs.tid;
  e.op = map_op(probe.role);
  e.map = RemoteAddr(reg_by_name(regs, probe.map_reg));
  e.function = probe.function;
  e.time_ns = time_ns;
  set_goroutine(e, ctx, regs.r14);
  set_key(e, probe, regs, ctx);
  if (return_addr == 0) {
    auto ra = ctx.mem->read_u64(RemoteAddr(regs.rsp));
    if (ra) return_addr = *ra;
  }
  e.caller = user_caller(ctx, return_addr, regs.rbp);
  return e;
}

Result<MapWriteEvent> decode_watch_hit(RemoteAddr map, const ThreadRegs& regs, uint8_t flag_now, uint8_t writing_mask,
                                       const DecodeContext& ctx, uint64_t time_ns) {
  MapWriteEvent e;
  e.thread = regs.tid;
  e.map = map;
  e.time_ns = time_ns;
  set_goroutine(e, ctx, regs.r14);
  e.op = (flag_now & writing_mask) ? "write-begin" : "write-end";
  auto at = frames_at(ctx, RemoteAddr(regs.rip - static_cast<uint64_t>(ctx.slide)));
  if (!at.empty()) e.function = at.front().function;
  // Mid-function: the prologue has run, so [RBP+8] is this function's return address.
  auto ret = ctx.mem->read_u64(RemoteAddr(regs.rbp + 8));
  auto bp = ctx.mem->read_u64(RemoteAddr(regs.rbp));
  if (ret && bp) e.caller = user_caller(ctx, *ret, *bp);
  return e;
}

nlohmann::json to_json(const MapWriteEvent& e) {
  nlohmann::json j;
  j["goroutine"] = e.goroutine;
  j["thread"] = e.thread;
  j["op"] = e.op;
  j["map"] = fmt::format("{}", e.map);
  if (e.key) {
    switch (e.key->kind) {
      case MapKey::Kind::kInt: j["key"] = e.key->i; break;
      case MapKey::Kind::kUint: j["key"] = e.key->u; break;
      case MapKey::Kind::kPointer: j["key"] = fmt::format("{:#x}", e.key->u); break;
      case MapKey::Kind::kString: j["key"] = e.key->s; break;
    }
  } else if (std::any_of(e.undecoded.begin(), e.undecoded.end(), [](auto& u) { return u.starts_with("key: "); })) {
    j["key"] = nullptr;
  }
  j["function"] = e.function;
  put_caller_json(j, e.caller);
  j["time_ns"] = e.time_ns;
  if (!e.undecoded.empty()) j["undecoded"] = e.undecoded;
  return j;
}

std::string to_text(const MapWriteEvent& e) {
  std::string s = fmt::format("goroutine {} thread {} {} map {}", e.goroutine, e.thread, e.op, e.map);
  if (e.key) s += fmt::format(" key {}", e.key->text());
  s += fmt::format(" in {}", e.function);
  if (!e.caller.empty()) {
    const auto& c = e.caller.front();
    s += fmt::format(" from {} at {}:{}", c.function, c.file, c.line);
    for (size_t i = 1; i < e.caller.size(); ++i) s += fmt::format(" (inlined into {} at {}:{})", e.caller[i].function, e.caller[i].file, e.caller[i].line);
  }
  for (const auto& u : e.undecoded) s += fmt::format(" [not decoded: {}]", u);
  return s;
}

}  // namespace gort::core
