// Per-debugger state of gort's map-write breakpoints and watchpoints (probe_session.h).
// Facts it rests on (../shared/reference/platform.md):
//  * `breakpoint set -n` skips the Go prologue: software breakpoints go on the exact entry
//    address from pclntab, section-relative so LLDB slides them for a PIE.
//  * An SB breakpoint callback returning false auto-continues (no stop is reported).
//  * A perf sigtrap breakpoint stops the hitting thread with SIGTRAP at the exact address;
//    several threads can be stopped that way at once (every thread is checked).
//  * Per-CPU sample rings are drained by our own thread; closing the fds removes the probes.

#include "plugin/probe_session.h"

#include "core/front/probe_select.h"

#include "plugin/go_setup.h"
#include "plugin/lldb_target.h"
#include "plugin/recording.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <signal.h>

namespace gort::plugin {
namespace {

std::mutex g_sessions_mu;
// Destroyed at exit (lldb -b ends with exit()): each session's destructor drains the
// sample rings one last time and flushes the log, so nothing recorded is lost.
std::unordered_map<uint64_t, std::unique_ptr<ProbeSession>>& sessions() {
  static std::unordered_map<uint64_t, std::unique_ptr<ProbeSession>> m;
  return m;
}

bool on_break(void* baton, lldb::SBProcess& process, lldb::SBThread& thread, lldb::SBBreakpointLocation&) {
  auto* b = static_cast<BreakBaton*>(baton);
  ProbeSession* s = b->session;
  if (!s || b->generation != s->generation()) return false;
  try {
    uint64_t t = core::monotonic_ns();
    core::ThreadRegs r = LldbThreads::regs_of(thread);
    auto ctx = s->context(static_cast<int>(process.GetProcessID()), load_slide(process.GetTarget()));
    if (!ctx) return b->stop;
    bool kept = s->report_entry_hit(b->probe, r, *ctx, t, b->stop || !s->has_log());
    return kept && b->stop;
  } catch (const std::exception& ex) {
    s->say(fmt::format("gort: breakpoint callback: internal error: {}", ex.what()));
    return b->stop;
  }
}

struct LaunchBaton {
  ProbeSession* session = nullptr;
  std::vector<core::Probe> probes;
  core::ProbeMode mode = core::ProbeMode::kSample;
  uint64_t generation = 0;
  bool done = false;
};
std::deque<std::unique_ptr<LaunchBaton>> g_launch_batons;

bool on_launch(void* baton, lldb::SBProcess& process, lldb::SBThread&, lldb::SBBreakpointLocation&) {
  auto* b = static_cast<LaunchBaton*>(baton);
  ProbeSession* s = b->session;
  if (!s || b->done || b->generation != s->generation()) return false;
  b->done = true;
  try {
    auto st = s->add_perf(static_cast<int>(process.GetProcessID()), load_slide(process.GetTarget()), b->probes, b->mode);
    if (!st) {
      s->say(fmt::format("gort: could not place hardware breakpoints at launch: {}", st.error().message));
      return false;
    }
    for (auto& p : *st) {
      s->say(p.backend == core::ProbeBackend::kNone
                 ? fmt::format("gort: {:#x}: no hardware breakpoint ({}); not covered", p.spec.addr.value(), p.error)
                 : fmt::format("gort: {:#x}: hardware breakpoint placed", p.spec.addr.value()));
    }
  } catch (const std::exception& ex) {
    s->say(fmt::format("gort: launch hook: internal error: {}", ex.what()));
  }
  return false;
}

}  // namespace

int64_t load_slide(lldb::SBTarget target) {
  lldb::SBModule mod = target.FindModule(target.GetExecutable());
  lldb::SBSection text = mod.IsValid() ? mod.FindSection(".text") : lldb::SBSection();
  if (!text.IsValid()) return 0;
  lldb::addr_t load = text.GetLoadAddress(target);
  return load == LLDB_INVALID_ADDRESS ? 0 : static_cast<int64_t>(load - text.GetFileAddress());
}

ProbeSession& ProbeSession::of(lldb::SBDebugger debugger) {
  std::lock_guard lock(g_sessions_mu);
  auto& s = sessions()[debugger.GetID()];
  if (!s) {
    s = std::make_unique<ProbeSession>();
    s->debugger = debugger;
  }
  return *s;
}

ProbeSession* ProbeSession::find(uint64_t debugger_id) {
  std::lock_guard lock(g_sessions_mu);
  auto it = sessions().find(debugger_id);
  return it == sessions().end() ? nullptr : it->second.get();
}

// Stops the poller while this object is whole: it calls write_line, which is ours.
ProbeSession::~ProbeSession() { close_sets(); }

core::Result<void> ProbeSession::load(lldb::SBTarget target) {
  std::string err;
  std::string path = target_executable(target, err);
  if (path.empty()) return core::make_error(core::ErrorKind::kBadInput, "{}", err);
  return HitReporter::load(path);
}

void ProbeSession::write_line(const std::string& line) {
  FILE* out = debugger.IsValid() ? debugger.GetOutputFileHandle() : nullptr;
  if (!out) out = stdout;
  fprintf(out, "%s\n", line.c_str());
  fflush(out);
}

lldb::SBBreakpoint ProbeSession::add_sw_break(lldb::SBTarget target, const core::Probe& probe, bool stop) {
  lldb::SBModule mod = target.FindModule(target.GetExecutable());
  lldb::SBAddress addr = mod.ResolveFileAddress(probe.entry.value());
  lldb::SBBreakpoint bp = target.BreakpointCreateBySBAddress(addr);
  if (!bp.IsValid()) return bp;
  auto baton = std::make_unique<BreakBaton>();
  baton->session = this;
  baton->probe = probe;
  baton->stop = stop;
  baton->generation = generation_;
  bp.SetCallback(on_break, baton.get());
  batons_.push_back(std::move(baton));
  breaks_.push_back(bp.GetID());
  hook_target_ = target;
  return bp;
}

void ProbeSession::defer_perf_until_launch(lldb::SBTarget target, std::vector<core::Probe> probes, core::ProbeMode mode) {
  auto rt0 = bin().func("runtime.rt0_go");
  lldb::SBModule mod = target.FindModule(target.GetExecutable());
  if (!rt0 || !mod.IsValid()) {
    say("gort: runtime.rt0_go not found: start the process first (`process launch --stop-at-entry`)");
    return;
  }
  lldb::SBAddress addr = mod.ResolveFileAddress(rt0->entry.value());
  lldb::SBBreakpoint bp = target.BreakpointCreateBySBAddress(addr);
  if (!bp.IsValid()) return;
  auto baton = std::make_unique<LaunchBaton>();
  baton->session = this;
  baton->probes = std::move(probes);
  baton->mode = mode;
  baton->generation = generation_;
  bp.SetCallback(on_launch, baton.get());
  g_launch_batons.push_back(std::move(baton));
  breaks_.push_back(bp.GetID());
  hook_target_ = target;
}

void ProbeSession::ensure_stop_hook(lldb::SBDebugger dbg, lldb::SBTarget target) {
  if (stop_hook_ >= 0) return;
  lldb::SBTarget previous = dbg.GetSelectedTarget();
  dbg.SetSelectedTarget(target);
  lldb::SBCommandReturnObject ro;
  dbg.GetCommandInterpreter().HandleCommand("target stop-hook add -o \"gort hit\"", ro);
  if (previous.IsValid()) dbg.SetSelectedTarget(previous);
  const char* out = ro.GetOutput();
  const char* hash = out ? strchr(out, '#') : nullptr;
  if (ro.Succeeded() && hash) stop_hook_ = atoi(hash + 1);
  hook_target_ = target;
}

size_t ProbeSession::report_stops(lldb::SBProcess process) {
  size_t n = 0;
  int64_t slide = load_slide(process.GetTarget());
  auto ctx = context(static_cast<int>(process.GetProcessID()), slide);
  if (!ctx) return 0;
  uint64_t t = core::monotonic_ns();
  for (uint32_t i = 0; i < process.GetNumThreads(); ++i) {
    lldb::SBThread th = process.GetThreadAtIndex(i);
    lldb::StopReason why = th.GetStopReason();
    if (why == lldb::eStopReasonSignal && th.GetStopReasonDataAtIndex(0) == SIGTRAP) {
      core::ThreadRegs r = LldbThreads::regs_of(th);
      if (const core::Probe* hit = sigtrap_probe_at(r.rip); hit && report_entry_hit(*hit, r, *ctx, t, true)) ++n;
    } else if (why == lldb::eStopReasonWatchpoint) {
      auto id = static_cast<lldb::watch_id_t>(th.GetStopReasonDataAtIndex(0));
      for (auto& w : lldb_watches_) {
        if (w.lldb_id != id) continue;
        core::ThreadRegs r = LldbThreads::regs_of(th);
        if (report_watch_hit(core::front::FlagWatch{w.map, w.flag}, r, *ctx, t, true)) ++n;
      }
    }
  }
  return n;
}

std::string ProbeSession::clear(lldb::SBDebugger dbg) {
  auto [nsets, lost_samples] = close_sets();
  size_t nbreaks = 0, nwatch = 0;
  ++generation_;  // callbacks still queued in LLDB become no-ops
  lldb::SBTarget target = hook_target_.IsValid() ? hook_target_ : dbg.GetSelectedTarget();
  if (target.IsValid()) {
    for (auto id : breaks_) nbreaks += target.BreakpointDelete(id) ? 1 : 0;
    for (auto& w : lldb_watches_) nwatch += target.DeleteWatchpoint(w.lldb_id) ? 1 : 0;
  }
  breaks_.clear();
  lldb_watches_.clear();
  bool hook = false;
  if (stop_hook_ >= 0 && target.IsValid()) {
    lldb::SBTarget previous = dbg.GetSelectedTarget();
    dbg.SetSelectedTarget(target);
    lldb::SBCommandReturnObject ro;
    dbg.GetCommandInterpreter().HandleCommand(fmt::format("target stop-hook delete {}", stop_hook_).c_str(), ro);
    if (previous.IsValid()) dbg.SetSelectedTarget(previous);
    hook = ro.Succeeded();
  }
  stop_hook_ = -1;
  map_filter.reset();
  continue_mode = false;
  std::string lost_note = lost_samples ? fmt::format(" ({} samples lost: ring full)", lost_samples) : "";
  return fmt::format("{} perf probe set(s) closed, {} breakpoint(s) and {} watchpoint(s) deleted{}", nsets, nbreaks, nwatch,
                     hook ? ", stop-hook removed" : "") + lost_note;
}

namespace {

// LLDB 19 leaves hardware watchpoints in the debug registers of a program it detaches
// from (also plain `watchpoint set`): the next write to the watched bytes sends SIGTRAP to
// a program nobody traces, and Go dies of it. Deleting them first is what detach means.
size_t delete_all_watchpoints(lldb::SBTarget target) {
  size_t n = target.GetNumWatchpoints();
  return n && target.DeleteAllWatchpoints() ? n : 0;
}

// LINE on DBG's output, outside any command's result (the leave guards run around LLDB's
// own commands).
void print_line(lldb::SBDebugger dbg, const std::string& line) {
  lldb::SBFile out = dbg.GetOutputFile();
  size_t written = 0;
  if (out.IsValid()) {
    out.Write(reinterpret_cast<const uint8_t*>(line.data()), line.size(), &written);
    out.Flush();
  }
}

// Runs before `process detach` (and its alias `detach`): returning false lets LLDB run the
// command. The detach may be typed while the program runs: closing the perf fds first
// means no SIGTRAP can be raised after this returns.
bool before_detach(void* baton, const char**) {
  lldb::SBDebugger dbg = lldb::SBDebugger::FindDebuggerWithID(static_cast<int>(reinterpret_cast<uintptr_t>(baton)));
  if (!dbg.IsValid()) return false;
  lldb::SBTarget target = dbg.GetSelectedTarget();
  if (!target.IsValid() || !target.GetProcess().IsValid()) return false;
  std::string what = stop_recording(dbg.GetID(), "detached");
  if (ProbeSession* s = ProbeSession::find(dbg.GetID()); s && s->armed())
    what += (what.empty() ? "" : "; ") + s->clear(dbg);
  if (size_t n = delete_all_watchpoints(target)) {
    what += fmt::format("{}{} more watchpoint(s) deleted (LLDB 19 would leave them armed)", what.empty() ? "" : "; ", n);
  }
  if (!what.empty()) print_line(dbg, fmt::format("gort: before detaching: {}\n", what));
  return false;
}

// Quit, or the end of `lldb -b`: LLDB detaches from attached processes after this.
void on_destroy(lldb::user_id_t id, void*) {
  std::string rec = stop_recording(id, "debugger exited");
  lldb::SBDebugger dbg = lldb::SBDebugger::FindDebuggerWithID(static_cast<int>(id));
  // The recording's summary (and any warning) is the last thing the user sees.
  if (!rec.empty() && dbg.IsValid()) print_line(dbg, fmt::format("gort: at exit: {}\n", rec));
  if (ProbeSession* s = ProbeSession::find(id)) {
    if (dbg.IsValid()) {
      s->clear(dbg);
    } else {
      s->close_probes();
    }
  }
  if (dbg.IsValid()) {
    for (uint32_t i = 0; i < dbg.GetNumTargets(); ++i) delete_all_watchpoints(dbg.GetTargetAtIndex(i));
  }
}

}  // namespace

void install_leave_guards(lldb::SBDebugger debugger) {
  void* baton = reinterpret_cast<void*>(static_cast<uintptr_t>(debugger.GetID()));
  debugger.GetCommandInterpreter().SetCommandOverrideCallback("process detach", before_detach, baton);
  debugger.AddDestroyCallback(on_destroy, nullptr);
}

}  // namespace gort::plugin
