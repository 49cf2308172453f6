#pragma once
// WbEvent: one hit at the entry of runtime.gcWriteBarrierN (Go 1.21+), decoded from the
// registers there, the return address ([rsp]) and target memory: the goroutine (R14 -> g
// -> goid), the Go caller (ret-1, innermost inlined first), and the pointer stores the
// call guards, recovered from the caller's instruction stream by resolve_wb_hit
// (core/disasm/wb_sites.h). ../shared/reference/go-runtime.md 4.2-4.3 (barrier
// conventions, caller code shapes), 5 (g, goid).

#include "core/disasm/decoder.h"
#include "core/disasm/probe_plan.h"
#include "core/disasm/wb_sites.h"
#include "core/goruntime/map_event.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace gort::core {

/// The callers of write barriers, decoded once per function. Thread-safe: LLDB breakpoint
/// callbacks and the sample poller share one cache.
class CallerCode {
 public:
  /// The function containing a link-time PC: its link-time entry and machine code.
  using Fetch = std::function<Result<std::pair<RemoteAddr, std::vector<uint8_t>>>(RemoteAddr link_pc)>;
  /// FETCH through BIN's pclntab and ELF (BIN must outlive the cache).
  static Fetch from_binary(const GoBinary& bin);

  static Result<std::unique_ptr<CallerCode>> create(Fetch fetch);

  /// The decoded function containing runtime PC, decoded at its runtime addresses
  /// (link + SLIDE) so that RIP-relative operands and the return address match.
  /// The vector stays valid for the cache's lifetime.
  Result<const std::vector<Insn>*> function_at(RemoteAddr pc, int64_t slide);

 private:
  CallerCode(Fetch fetch, Decoder d) : fetch_(std::move(fetch)), decoder_(std::move(d)) {}
  Fetch fetch_;
  Decoder decoder_;
  std::mutex mu_;
  std::map<uint64_t, std::vector<Insn>> by_entry_;  ///< runtime entry -> instructions
  std::map<std::pair<uint64_t, int64_t>, uint64_t> entry_of_pc_;  ///< (link pc, slide) -> runtime entry
};

struct WbEvent {
  uint64_t goroutine = 0;         ///< 0 when g could not be read
  uint64_t thread = 0;            ///< OS thread id
  std::string function;           ///< "runtime.gcWriteBarrier2"
  std::vector<CallerFrame> caller;  ///< the calling code's source frames, innermost inlined first
  std::vector<WbWrite> writes;    ///< slots (runtime addresses) and new values, in store order
  std::string note;               ///< why the writes are missing or partial, or ""
  uint64_t time_ns = 0;
};

/// Decodes a hit at PROBE's entry (a kWriteBarrier probe). RETURN_ADDR is [rsp] at the
/// entry (from a sample's stack bytes; 0: read from ctx.mem). ctx.mem also serves the
/// caller's stack spills, so in sample mode it should read the sampled stack first.
/// Unknown caller code leaves `writes` empty with a note; errors only for a non-barrier probe.
Result<WbEvent> decode_wb_hit(const Probe& probe, const ThreadRegs& regs, uint64_t return_addr, const DecodeContext& ctx,
                              CallerCode& code, uint64_t time_ns);

/// The `--log` JSON line: {"goroutine", "thread", "op": "write-barrier", "function",
/// "caller": {function, file, line} | null, "inlined_into": [...], "writes": [{"slot": "0x..",
/// "value": "0x.." | null}], "note"?, "time_ns"}.
nlohmann::json to_json(const WbEvent& e);

/// "goroutine 7 thread 3601 write-barrier gcWriteBarrier2 from main.storePtr at /src/x.go:71:
/// *0xc000012340 = 0xc000056780" (writes comma-separated, `?` for an unknown value).
std::string to_text(const WbEvent& e);

}  // namespace gort::core
