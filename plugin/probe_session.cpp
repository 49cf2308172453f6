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
    if (b->probe.role == core::ProbeRole::kWriteBarrier) {
      s->report_wb(b->probe, r, nullptr, *ctx, t, b->stop || !s->has_log());
      return b->stop;
    }
    auto e = core::decode_map_write(b->probe, r, 0, *ctx, t);
    if (!e) {
      s->say(fmt::format("gort: {}: {}", b->probe.function, e.error().message));
      return b->stop;
    }
    bool kept = s->emit(*e, b->stop || !s->has_log());
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

// Sample stack bytes first, then the live process: a watch hit's caller ([RBP+8]) is read
// from the sample, so it survives samples drained after the process exited.
class SampleMemory final : public core::Memory {
 public:
  SampleMemory(uint64_t rsp, const std::vector<uint8_t>& stack, const core::Memory& live)
      : rsp_(rsp), stack_(stack), live_(live) {}
  core::Result<void> read(core::RemoteAddr addr, std::span<uint8_t> out) const override {
    if (addr.value() >= rsp_ && addr.value() + out.size() <= rsp_ + stack_.size()) {
      std::memcpy(out.data(), stack_.data() + (addr.value() - rsp_), out.size());
      return {};
    }
    return live_.read(addr, out);
  }

 private:
  uint64_t rsp_;
  const std::vector<uint8_t>& stack_;
  const core::Memory& live_;
};


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

ProbeSession::~ProbeSession() { close_probes(); }

core::Result<void> ProbeSession::load(lldb::SBTarget target) {
  std::string err;
  std::string path = target_executable(target, err);
  if (path.empty()) return core::make_error(core::ErrorKind::kBadInput, "{}", err);
  if (bin_ && path == exe_) return {};
  GORT_TRY(auto bin, core::GoBinary::open(path));
  GORT_TRY(auto plan, core::build_probe_plan(*bin));
  GORT_TRY(auto code, core::CallerCode::create(core::CallerCode::from_binary(*bin)));
  caller_code_ = std::move(code);
  bin_ = std::move(bin);
  plan_ = std::move(plan);
  exe_ = path;
  return {};
}

core::Result<void> ProbeSession::open_log(const std::string& path) {
  FILE* f = fopen(path.c_str(), "w");
  if (!f) return core::make_error(core::ErrorKind::kIo, "cannot open log file {}: {}", path, strerror(errno));
  std::lock_guard lock(mu_);
  if (log_) fclose(log_);
  log_ = f;
  return {};
}

void ProbeSession::say(const std::string& line) {
  std::lock_guard lock(mu_);
  FILE* out = debugger.IsValid() ? debugger.GetOutputFileHandle() : nullptr;
  if (!out) out = stdout;
  fprintf(out, "%s\n", line.c_str());
  fflush(out);
}

// One hit: its text line to LLDB's output (when PRINT) and its JSON line to the log.
template <typename Event>
void ProbeSession::write_event(const Event& e, bool print) {
  std::string json;
  if (log_) json = core::to_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (print) say("gort: " + core::to_text(e));
  std::lock_guard lock(mu_);
  if (log_) {
    fprintf(log_, "%s\n", json.c_str());
    if (!poller_.joinable()) fflush(log_);
  }
}

void ProbeSession::emit(const core::WbEvent& e, bool print) { write_event(e, print); }

bool ProbeSession::report_wb(const core::Probe& probe, const core::ThreadRegs& regs, const std::vector<uint8_t>* stack,
                             core::DecodeContext ctx, uint64_t time_ns, bool print) {
  if (probe.role != core::ProbeRole::kWriteBarrier || !caller_code_) return false;
  uint64_t ret = 0;
  std::optional<SampleMemory> sm;
  if (stack) {
    // Stack spills the caller reloads after the CALL are read from the sample: by the
    // time the ring is drained the goroutine has moved on.
    if (stack->size() >= 8) std::memcpy(&ret, stack->data(), 8);
    sm.emplace(regs.rsp, *stack, *ctx.mem);
    ctx.mem = &*sm;
  }
  auto e = core::decode_wb_hit(probe, regs, ret, ctx, *caller_code_, time_ns);
  if (!e) {
    say(fmt::format("gort: {}: {}", probe.function, e.error().message));
    return true;
  }
  if (stack) {  // sample mode: g may be gone once the process exited (see on_sample)
    if (e->goroutine) goid_of_g_[regs.r14] = e->goroutine;
    else if (auto it = goid_of_g_.find(regs.r14); it != goid_of_g_.end()) e->goroutine = it->second;
  }
  emit(*e, print);
  return true;
}

bool ProbeSession::emit(const core::MapWriteEvent& e, bool print) {
  if (map_filter && e.map.value() != *map_filter) return false;
  write_event(e, print);
  return true;
}

std::optional<core::DecodeContext> ProbeSession::context(int pid, int64_t slide) {
  std::lock_guard lock(mu_);
  if (!bin_) return std::nullopt;
  if (!mem_ || mem_->pid() != pid) {
    auto m = core::ProcMemory::open(pid);
    if (!m) return std::nullopt;
    mem_ = std::move(m).value();
  }
  return core::DecodeContext::of(*bin_, *mem_, slide);
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

core::Result<std::vector<core::ProbeStatus>> ProbeSession::add_perf(int pid, int64_t slide, std::vector<core::Probe> probes,
                                                                    core::ProbeMode mode) {
  std::vector<core::ProbeSpec> specs;
  for (size_t i = 0; i < probes.size(); ++i) {
    core::ProbeSpec s;
    s.addr = probes[i].entry + slide;
    s.kind = core::ProbeKind::kExec;
    s.cookie = static_cast<uint32_t>(i);
    specs.push_back(s);
  }
  core::ProbeOptions opts;
  opts.mode = mode;
  opts.allow_uprobes = false;  // where the debug registers run out, LLDB breakpoints take over
  // A write-barrier caller may reload the new value from its frame after the CALL
  // (0x38(SP) in main.putPointerValue): sample enough of the stack to cover small frames.
  bool wb = std::any_of(probes.begin(), probes.end(), [](auto& p) { return p.role == core::ProbeRole::kWriteBarrier; });
  opts.stack_bytes = wb ? 512 : 16;
  opts.ring_pages = 256;  // ~4000 samples per CPU between two drains
  GORT_TRY(auto set, core::PerfProbeSet::create(pid, specs, opts));
  std::vector<core::ProbeStatus> st = set->status();
  {
    std::lock_guard lock(mu_);
    sets_.push_back(PerfSet{std::move(set), mode, std::move(probes), std::nullopt, pid, slide});
  }
  if (mode == core::ProbeMode::kSample) start_poller();
  return st;
}

core::Result<std::vector<core::ProbeStatus>> ProbeSession::add_perf_watch(int pid, int64_t slide, const WatchInfo& w,
                                                                          core::ProbeMode mode) {
  core::ProbeSpec s;
  s.addr = w.flag;
  s.kind = core::ProbeKind::kWrite1;
  core::ProbeOptions opts;
  opts.mode = mode;
  opts.stack_bytes = 1024;  // mid-function: covers [RBP+8] of the runtime function's frame
  opts.allow_uprobes = false;
  GORT_TRY(auto set, core::PerfProbeSet::create(pid, {s}, opts));
  std::vector<core::ProbeStatus> st = set->status();
  {
    std::lock_guard lock(mu_);
    sets_.push_back(PerfSet{std::move(set), mode, {}, w, pid, slide});
  }
  if (mode == core::ProbeMode::kSample) start_poller();
  return st;
}

void ProbeSession::defer_perf_until_launch(lldb::SBTarget target, std::vector<core::Probe> probes, core::ProbeMode mode) {
  auto rt0 = bin_->func("runtime.rt0_go");
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

void ProbeSession::start_poller() {
  if (poller_.joinable()) return;
  stop_ = false;
  poller_ = std::thread([this] {
    while (!stop_) {
      size_t n = drain();
      {
        std::lock_guard lock(mu_);
        if (log_) fflush(log_);
      }
      if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
}

void ProbeSession::stop_poller() {
  if (!poller_.joinable()) return;
  stop_ = true;
  poller_.join();
  drain();
  std::lock_guard lock(mu_);
  if (log_) fflush(log_);
}

size_t ProbeSession::drain() {
  size_t total = 0;
  for (size_t i = 0;; ++i) {
    core::PerfProbeSet* set;
    {
      std::lock_guard lock(mu_);
      if (i >= sets_.size()) break;
      if (sets_[i].mode != core::ProbeMode::kSample) continue;
      set = sets_[i].set.get();
    }
    while (size_t n = set->poll([&](const core::ProbeSample& s) { on_sample(i, s); }, 0)) total += n;
  }
  return total;
}

uint64_t ProbeSession::lost() {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  for (auto& ps : sets_) n += ps.set->lost();
  return n;
}

void ProbeSession::on_sample(size_t i, const core::ProbeSample& s) {
  const PerfSet* ps;
  {
    std::lock_guard lock(mu_);
    ps = &sets_[i];
  }
  auto ctx = context(ps->pid, ps->slide);
  if (!ctx) return;
  core::ThreadRegs regs = s.regs;
  if (!regs.tid) regs.tid = s.tid;
  if (ps->watch) {
    SampleMemory sm(regs.rsp, s.stack, *ctx->mem);
    auto flag = ctx->mem->read_u8(ps->watch->flag);
    ctx->mem = &sm;
    uint8_t mask = bin_->map_impl() == core::MapImpl::kHmap ? bin_->layouts().hmap_writing_bit : 0xff;
    auto e = core::decode_watch_hit(ps->watch->map, regs, flag ? *flag : 0, mask, *ctx, s.time_ns);
    if (!e) return;
    std::string op = core::front::watch_op(plan_, regs.rip - static_cast<uint64_t>(ps->slide));
    if (!op.empty()) e->op = op;
    emit(*e, !has_log());
    return;
  }
  if (s.cookie >= ps->probes.size()) return;
  if (report_wb(ps->probes[s.cookie], regs, &s.stack, *ctx, s.time_ns, !has_log())) return;
  uint64_t ret = 0;
  if (s.stack.size() >= 8) std::memcpy(&ret, s.stack.data(), 8);
  auto e = core::decode_map_write(ps->probes[s.cookie], regs, ret, *ctx, s.time_ns);
  if (!e) return;
  // Samples drained after the process exited cannot read g any more: use the goid seen
  // for this g earlier (a g struct is only reused after its goroutine exits).
  if (e->goroutine) goid_of_g_[regs.r14] = e->goroutine;
  else if (auto it = goid_of_g_.find(regs.r14); it != goid_of_g_.end()) e->goroutine = it->second;
  emit(*e, !has_log());
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
      const core::Probe* hit = nullptr;
      {
        std::lock_guard lock(mu_);
        for (auto& ps : sets_) {
          if (ps.mode != core::ProbeMode::kSigtrap) continue;
          for (auto& p : ps.probes)
            if (p.entry.value() + static_cast<uint64_t>(ps.slide) == r.rip) hit = &p;
        }
      }
      if (!hit) continue;
      if (report_wb(*hit, r, nullptr, *ctx, t, true)) {
        ++n;
        continue;
      }
      auto e = core::decode_map_write(*hit, r, 0, *ctx, t);
      if (e && emit(*e, true)) ++n;
    } else if (why == lldb::eStopReasonWatchpoint) {
      auto id = static_cast<lldb::watch_id_t>(th.GetStopReasonDataAtIndex(0));
      for (auto& w : lldb_watches_) {
        if (w.lldb_id != id) continue;
        core::ThreadRegs r = LldbThreads::regs_of(th);
        auto flag = ctx->mem->read_u8(w.flag);
        uint8_t mask = bin_->map_impl() == core::MapImpl::kHmap ? bin_->layouts().hmap_writing_bit : 0xff;
        auto e = core::decode_watch_hit(w.map, r, flag ? *flag : 0, mask, *ctx, t);
        if (!e) continue;
        std::string op = core::front::watch_op(plan_, r.rip - static_cast<uint64_t>(slide));
        if (!op.empty()) e->op = op;
        if (emit(*e, true)) ++n;
      }
    }
  }
  return n;
}

void ProbeSession::close_probes() {
  stop_poller();
  std::lock_guard lock(mu_);
  sets_.clear();
  if (log_) fclose(log_);
  log_ = nullptr;
}

std::string ProbeSession::clear(lldb::SBDebugger dbg) {
  stop_poller();
  uint64_t lost_samples = lost();
  size_t nsets, nbreaks = 0, nwatch = 0;
  {
    std::lock_guard lock(mu_);
    nsets = sets_.size();
    sets_.clear();  // closes every perf fd: removes the probes
    if (log_) fclose(log_);
    log_ = nullptr;
  }
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
