#pragma once
// ProbeSession: what `gort break maps` / `gort watch map` leave behind in one debugger:
// the perf probe sets (hardware breakpoints and watchpoints, sample or sigtrap mode), the
// LLDB breakpoints and watchpoints gort created, the stop-hook that reports perf SIGTRAP
// and watchpoint stops, the `--log` file and the thread that drains sample rings.
// `gort break clear` (or the debugger going away) tears all of it down; closing a perf fd
// removes its probe, so the target keeps running normally (../shared/design.md).

#include "core/binary/go_binary.h"
#include "core/disasm/probe_plan.h"
#include "core/goruntime/map_event.h"
#include "core/goruntime/wb_event.h"
#include "core/probes/perf_probes.h"
#include "core/target/memory.h"

#include <lldb/API/LLDB.h>

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

namespace gort::plugin {

class ProbeSession;

/// Baton of one gort software breakpoint (never freed while the plugin is loaded: LLDB
/// may still run a callback after `gort break clear`; `session == nullptr` then).
struct BreakBaton {
  ProbeSession* session = nullptr;
  core::Probe probe;
  bool stop = true;           ///< return true (stop) from the callback
  uint64_t generation = 0;    ///< session generation it belongs to
};

/// What the stop-hook reports for a perf SIGTRAP at an address, or a watchpoint.
struct WatchInfo {
  core::RemoteAddr map;
  core::RemoteAddr flag;      ///< the watched byte
  lldb::watch_id_t lldb_id = LLDB_INVALID_WATCH_ID;
};

class ProbeSession {
 public:
  /// The session of DEBUGGER (created on first use, kept until the plugin unloads).
  static ProbeSession& of(lldb::SBDebugger debugger);
  ~ProbeSession();

  /// Loads the target's binary and probe plan (once per executable path).
  core::Result<void> load(lldb::SBTarget target);
  const core::GoBinary& bin() const { return *bin_; }
  const core::ProbePlan& plan() const { return plan_; }

  // Options of the current `gort break maps` / `gort watch map`.
  std::optional<uint64_t> map_filter;
  bool continue_mode = false;
  core::Result<void> open_log(const std::string& path);
  bool has_log() const { return log_ != nullptr; }

  /// Prints (stop mode, or no --log) and logs one event; thread-safe. False when the
  /// --map filter drops it.
  bool emit(const core::MapWriteEvent& e, bool print);
  void emit(const core::WbEvent& e, bool print);
  /// Decodes a write-barrier hit (STACK: a sample's stack bytes at rsp, or empty) and
  /// prints/logs it. False when the probe is not a write barrier.
  bool report_wb(const core::Probe& probe, const core::ThreadRegs& regs, const std::vector<uint8_t>* stack,
                 core::DecodeContext ctx, uint64_t time_ns, bool print);
  /// Prints one line to the debugger's output (thread-safe).
  void say(const std::string& line);

  /// Decode context for the live process PID (opens /proc/PID/mem when PID changes).
  std::optional<core::DecodeContext> context(int pid, int64_t slide);

  /// An LLDB software breakpoint at PROBE's entry (section-relative: follows a PIE slide),
  /// with a callback that decodes, prints/logs and stops when STOP.
  lldb::SBBreakpoint add_sw_break(lldb::SBTarget target, const core::Probe& probe, bool stop);
  /// Perf probes at runtime addresses on PID; remembered for the stop-hook (sigtrap) or
  /// drained by the poll thread (sample). Returns the set's status lines.
  core::Result<std::vector<core::ProbeStatus>> add_perf(int pid, int64_t slide, std::vector<core::Probe> probes,
                                                        core::ProbeMode mode);
  core::Result<std::vector<core::ProbeStatus>> add_perf_watch(int pid, int64_t slide, const WatchInfo& w,
                                                              core::ProbeMode mode);
  /// Creates perf probes once the process exists (a one-shot breakpoint at runtime.rt0_go).
  void defer_perf_until_launch(lldb::SBTarget target, std::vector<core::Probe> probes, core::ProbeMode mode);
  /// The stop-hook running `gort hit` (perf SIGTRAP and watchpoint stops).
  void ensure_stop_hook(lldb::SBDebugger debugger, lldb::SBTarget target);
  void add_lldb_watch(const WatchInfo& w) { lldb_watches_.push_back(w); }

  /// `gort hit`: reports every thread stopped by a gort perf SIGTRAP or watchpoint.
  size_t report_stops(lldb::SBProcess process);

  /// Removes everything gort made (perf fds, breakpoints, watchpoints, stop-hook, thread,
  /// log). Returns a summary ("2 perf sets, 5 breakpoints, ...").
  std::string clear(lldb::SBDebugger debugger);
  /// Closes the perf fds and the log only (the debugger is already gone).
  void close_probes();

  /// True while gort has perf probes, breakpoints or watchpoints set.
  bool armed() const { return !sets_.empty() || !breaks_.empty() || !lldb_watches_.empty(); }
  /// The session of the debugger with ID, or null (no gort command ran in it).
  static ProbeSession* find(uint64_t debugger_id);

  uint64_t generation() const { return generation_; }
  lldb::SBDebugger debugger;

 private:
  template <typename Event>
  void write_event(const Event& e, bool print);
  void start_poller();
  void stop_poller();
  size_t drain();   ///< polls every sample-mode set until empty; returns the samples seen
  uint64_t lost();  ///< samples the kernel dropped (ring full), over every set
  void on_sample(size_t set, const core::ProbeSample& s);

  struct PerfSet {
    std::unique_ptr<core::PerfProbeSet> set;
    core::ProbeMode mode;
    std::vector<core::Probe> probes;   ///< by cookie (exec probes)
    std::optional<WatchInfo> watch;     ///< a write watchpoint set
    int pid = 0;
    int64_t slide = 0;
  };

  std::string exe_;
  std::unique_ptr<core::GoBinary> bin_;
  core::ProbePlan plan_;
  std::unique_ptr<core::CallerCode> caller_code_;  ///< write-barrier callers, decoded once
  std::mutex mu_;                      // guards log_, output, mem_, sets_ while polling
  FILE* log_ = nullptr;
  std::unique_ptr<core::ProcMemory> mem_;
  std::deque<PerfSet> sets_;  // a deque: the poller keeps references across push_back
  std::vector<lldb::break_id_t> breaks_;
  std::vector<WatchInfo> lldb_watches_;
  int stop_hook_ = -1;
  lldb::SBTarget hook_target_;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  uint64_t generation_ = 1;
  std::deque<std::unique_ptr<BreakBaton>> batons_;
  std::unordered_map<uint64_t, uint64_t> goid_of_g_;  ///< poller thread only
};

/// Makes LLDB tear down everything gort armed before the program runs on without a
/// tracer: an override of `process detach` (LLDB has no pre-detach event; a SIGTRAP from a
/// perf breakpoint, or from a watchpoint LLDB 19 leaves in the debug registers, kills a
/// Go program that nobody traces) and a debugger-destroy callback (quit, end of `lldb -b`).
/// Called once per debugger from PluginInitialize.
void install_leave_guards(lldb::SBDebugger debugger);

/// Runtime minus link-time address of TARGET's executable (0 before launch or non-PIE).
int64_t load_slide(lldb::SBTarget target);

}  // namespace gort::plugin
