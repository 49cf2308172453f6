#pragma once
// MapWriteEvent: one hit of a map-write probe, decoded from the registers at the probed
// function's entry (or at a writing-flag watchpoint), the return address, and target
// memory (goid from g, string keys, generic keys through the map type). The same decoder
// serves LLDB breakpoint callbacks, perf sigtrap stops and perf samples.
// ../shared/reference/go-runtime.md 1.2-1.3 (registers at entry), 5 (g, goid), 10 (frame
// pointers).

#include "core/binary/pclntab.h"
#include "core/disasm/probe_plan.h"
#include "core/goruntime/layouts.h"
#include "core/target/memory.h"
#include "core/util/remote_addr.h"
#include "core/util/result.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gort::core {

class GoBinary;

/// One source-level frame (function, file, line), owned.
struct CallerFrame {
  std::string function;
  std::string file;
  int32_t line = 0;
};

struct MapKey {
  enum class Kind { kInt, kUint, kString, kPointer } kind = Kind::kUint;
  int64_t i = 0;        ///< kInt
  uint64_t u = 0;       ///< kUint, kPointer
  std::string s;        ///< kString (at most kMaxKeyBytes bytes)
  bool truncated = false;
  std::string text() const;  ///< 42, -1, "abc", 0xc000010000
};

inline constexpr size_t kMaxKeyBytes = 256;

struct MapWriteEvent {
  uint64_t goroutine = 0;       ///< 0 when g could not be read
  uint64_t thread = 0;          ///< OS thread id
  std::string op;               ///< "assign", "delete", "clear" (watch hits: "write-begin", "write-end")
  RemoteAddr map;
  std::optional<MapKey> key;
  std::string function;         ///< the runtime function probed (or at the PC, for watch hits)
  /// The user-level caller's source frames at the call PC, innermost inlined function
  /// first (what Go's tracebacks print), then the functions it was inlined into.
  std::vector<CallerFrame> caller;
  uint64_t time_ns = 0;         ///< CLOCK_MONOTONIC
  /// Fields the decoder could not fill, each "field: why" ("key: cannot read 4 bytes at
  /// 0xc000012345: process 8120 has exited"): a sampled hit is decoded after
  /// the fact, when the program may have moved on or exited. Shown, never dropped.
  std::vector<std::string> undecoded;
};

/// What a decode needs besides registers: the binary's pclntab (null: no callers), its
/// layouts and map implementation, the load slide (runtime - link address) and memory.
struct DecodeContext {
  const Pclntab* pclntab = nullptr;
  RuntimeLayouts layouts;
  MapImpl map_impl = MapImpl::kHmap;
  const Memory* mem = nullptr;
  int64_t slide = 0;
  static DecodeContext of(const GoBinary& bin, const Memory& mem, int64_t slide);
};

/// Decodes a hit at PROBE's entry from REGS. RETURN_ADDR is [rsp] at the entry (from a perf
/// sample's stack bytes; when 0 it is read from memory). Fails only when nothing sensible
/// can be said (the map register is missing); an unreadable g or key leaves that field
/// empty and says why in MapWriteEvent::undecoded.
Result<MapWriteEvent> decode_map_write(const Probe& probe, const ThreadRegs& regs, uint64_t return_addr,
                                       const DecodeContext& ctx, uint64_t time_ns);

/// Decodes a write-watchpoint hit on MAP's writing flag (the store already happened):
/// REGS at the instruction after the store. The function is the one at rip (innermost
/// inlined); the caller comes from the frame-pointer chain, skipping runtime frames.
/// FLAG_NOW is the flag byte after the store (nonzero with WRITING_MASK: a write begins).
Result<MapWriteEvent> decode_watch_hit(RemoteAddr map, const ThreadRegs& regs, uint8_t flag_now, uint8_t writing_mask,
                                       const DecodeContext& ctx, uint64_t time_ns);

/// The op name for a probe role: "assign", "delete", "clear", "clone".
const char* map_op(ProbeRole role);

/// The JSON line of the `--log` format:
/// {"goroutine", "thread", "op", "map", "key"?, "function", "caller": {function, file, line},
///  "inlined_into": [{function, file, line}...], "time_ns", "undecoded"?: ["field: why"]};
/// a key that could not be read is "key": null with its reason in "undecoded".
nlohmann::json to_json(const MapWriteEvent& e);
/// Sets j["caller"] (innermost frame, or null) and j["inlined_into"] (the rest): the
/// caller part shared by every hit's JSON line.
void put_caller_json(nlohmann::json& j, const std::vector<CallerFrame>& caller);

/// One human line: "goroutine 7 thread 3601 assign map 0xc000072150 key 42 in
/// runtime.mapassign_fast64 from main.writerA at /src/main.go:30 (inlined into ...)".
std::string to_text(const MapWriteEvent& e);

/// CLOCK_MONOTONIC now, in nanoseconds.
uint64_t monotonic_ns();

}  // namespace gort::core
