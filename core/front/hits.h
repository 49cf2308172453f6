#pragma once
// HitReporter: what `gort break maps`, `gort break wb` and `gort watch map` do with a hit,
// in any debugger: decode it (map_event.h, wb_event.h), print its line, append its JSON
// line to the --log file, apply the --map filter; and the perf probe sets of
// `--continue` (hardware breakpoints and watchpoints in sampling mode: the program never
// stops, and closing the fds removes them, also when the debugger is killed) with the
// thread that drains their rings. The LLDB plugin's ProbeSession and the GDB extension
// (gdb/capi.cpp) build on it, so both print and log the same.

#include "core/binary/go_binary.h"
#include "core/disasm/probe_plan.h"
#include "core/goruntime/map_event.h"
#include "core/goruntime/wb_event.h"
#include "core/probes/perf_probes.h"
#include "core/target/memory.h"

#include <atomic>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace gort::core::front {

/// A perf watchpoint on one map's writing flag.
struct FlagWatch {
  RemoteAddr map;
  RemoteAddr flag;  ///< the watched byte
};

class HitReporter {
 public:
  HitReporter() = default;
  HitReporter(const HitReporter&) = delete;
  HitReporter& operator=(const HitReporter&) = delete;
  virtual ~HitReporter();

  /// Loads PATH's binary, probe plan and write-barrier caller cache (once per path).
  Result<void> load(const std::string& path);
  bool loaded() const { return bin_ != nullptr; }
  const GoBinary& bin() const { return *bin_; }
  const ProbePlan& plan() const { return plan_; }

  // Options of the current `gort break maps` / `gort watch map`.
  std::optional<uint64_t> map_filter;
  bool continue_mode = false;
  Result<void> open_log(const std::string& path);
  bool has_log() const { return log_ != nullptr; }

  /// Prints (when PRINT) and logs one event; thread-safe. False when --map drops it.
  bool emit(const MapWriteEvent& e, bool print);
  void emit(const WbEvent& e, bool print);
  /// Decodes a write-barrier hit (STACK: a sample's stack bytes at rsp, or null) and
  /// prints/logs it. False when the probe is not a write barrier.
  bool report_wb(const Probe& probe, const ThreadRegs& regs, const std::vector<uint8_t>* stack, DecodeContext ctx,
                 uint64_t time_ns, bool print);
  /// Decodes a hit of a map-write or write-barrier PROBE at its entry (REGS of the stopped
  /// thread) and prints/logs it, or prints why it cannot be decoded. False only when the
  /// --map filter drops it.
  bool report_entry_hit(const Probe& probe, const ThreadRegs& regs, const DecodeContext& ctx, uint64_t time_ns,
                        bool print);
  /// Decodes a watchpoint hit on W (REGS after the store) and prints/logs it.
  bool report_watch_hit(const FlagWatch& w, const ThreadRegs& regs, const DecodeContext& ctx, uint64_t time_ns,
                        bool print);
  /// Prints one line (thread-safe).
  void say(const std::string& line);

  /// Decode context for the live process PID (opens /proc/PID/mem when PID changes).
  std::optional<DecodeContext> context(int pid, int64_t slide);

  /// Perf probes at PROBES' entries (+ SLIDE) on PID; sample mode is drained by our
  /// thread, sigtrap mode is reported by the front end (sigtrap_probe_at). Returns the
  /// set's status lines (a probe the kernel refused has backend kNone).
  Result<std::vector<ProbeStatus>> add_perf(int pid, int64_t slide, std::vector<Probe> probes, ProbeMode mode);
  Result<std::vector<ProbeStatus>> add_perf_watch(int pid, int64_t slide, const FlagWatch& w, ProbeMode mode);
  /// The sigtrap-mode probe whose runtime entry is RIP, or null.
  const Probe* sigtrap_probe_at(uint64_t rip);

  /// Closes every perf set (removing the probes) and the log; returns how many sets were
  /// closed and the samples the kernel dropped (ring full).
  std::pair<size_t, uint64_t> close_sets();
  bool has_sets();

 protected:
  /// Where say() writes (a debugger's output); stdout by default.
  virtual void write_line(const std::string& line);
  void stop_poller();

 private:
  template <typename Event>
  void write_event(const Event& e, bool print);
  void start_poller();
  size_t drain();   ///< polls every sample-mode set until empty; returns the samples seen
  void wait_for_samples(int timeout_ms);
  uint64_t lost();  ///< samples the kernel dropped (ring full), over every set
  void on_sample(size_t set, const ProbeSample& s);

  struct PerfSet {
    std::unique_ptr<PerfProbeSet> set;
    ProbeMode mode;
    std::vector<Probe> probes;       ///< by cookie (exec probes)
    std::optional<FlagWatch> watch;  ///< a write watchpoint set
    int pid = 0;
    int64_t slide = 0;
  };

  std::string exe_;
  std::unique_ptr<GoBinary> bin_;
  ProbePlan plan_;
  std::unique_ptr<CallerCode> caller_code_;  ///< write-barrier callers, decoded once
  std::mutex mu_;    // guards log_, mem_, sets_ while polling
  std::mutex out_mu_;
  FILE* log_ = nullptr;
  std::unique_ptr<ProcMemory> mem_;
  std::deque<PerfSet> sets_;  // a deque: the poller keeps references across push_back
  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::unordered_map<uint64_t, uint64_t> goid_of_g_;  ///< poller thread only
};

}  // namespace gort::core::front
