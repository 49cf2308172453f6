#pragma once
// ProbeSession: what `gort break maps` / `gort watch map` leave behind in one debugger:
// the perf probe sets, the `--log` file and the thread that drains sample rings (its base,
// core/front/hits.h, shared with the GDB extension), and the LLDB breakpoints and
// watchpoints gort created, with the stop-hook that reports perf SIGTRAP and watchpoint
// stops.
// `gort break clear` (or the debugger going away) tears all of it down; closing a perf fd
// removes its probe, so the target keeps running normally (../shared/design.md).

#include "core/disasm/probe_plan.h"
#include "core/front/hits.h"

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

class ProbeSession final : public core::front::HitReporter {
 public:
  /// The session of DEBUGGER (created on first use, kept until the plugin unloads).
  static ProbeSession& of(lldb::SBDebugger debugger);
  ~ProbeSession() override;

  /// Loads the target's binary and probe plan (once per executable path).
  core::Result<void> load(lldb::SBTarget target);

  /// An LLDB software breakpoint at PROBE's entry (section-relative: follows a PIE slide),
  /// with a callback that decodes, prints/logs and stops when STOP.
  lldb::SBBreakpoint add_sw_break(lldb::SBTarget target, const core::Probe& probe, bool stop);
  /// A perf watchpoint on W's flag (sample or sigtrap mode).
  core::Result<std::vector<core::ProbeStatus>> add_perf_watch(int pid, int64_t slide, const WatchInfo& w,
                                                              core::ProbeMode mode) {
    return HitReporter::add_perf_watch(pid, slide, core::front::FlagWatch{w.map, w.flag}, mode);
  }
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
  void close_probes() { close_sets(); }

  /// True while gort has perf probes, breakpoints or watchpoints set.
  bool armed() { return has_sets() || !breaks_.empty() || !lldb_watches_.empty(); }
  /// The session of the debugger with ID, or null (no gort command ran in it).
  static ProbeSession* find(uint64_t debugger_id);

  uint64_t generation() const { return generation_; }
  lldb::SBDebugger debugger;

 protected:
  void write_line(const std::string& line) override;

 private:
  std::vector<lldb::break_id_t> breaks_;
  std::vector<WatchInfo> lldb_watches_;
  int stop_hook_ = -1;
  lldb::SBTarget hook_target_;
  uint64_t generation_ = 1;
  std::deque<std::unique_ptr<BreakBaton>> batons_;
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
