// LldbWorld (lldb_world.h): core/inproc's stopped world through the SB API.

#include "plugin/lldb_world.h"

#include "core/target/process.h"
#include "plugin/lldb_target.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

namespace gort::plugin {
namespace {

// Every general register, restored after each injected call: SYSCALL writes rcx and r11,
// and a signal that slips in moves rsp onto its frame. LLDB 19 has no orig_rax register:
// see syscall().
constexpr const char* kSaved[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8",
                                  "r9",  "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"};

uint64_t read_reg(lldb::SBThread t, const char* name, bool* ok = nullptr) {
  lldb::SBValue v = t.GetFrameAtIndex(0).FindRegister(name);
  if (ok) *ok = v.IsValid();
  return v.IsValid() ? v.GetValueAsUnsigned(0) : 0;
}

bool write_reg(lldb::SBThread t, const char* name, uint64_t value) {
  lldb::SBValue v = t.GetFrameAtIndex(0).FindRegister(name);
  if (!v.IsValid()) return false;
  lldb::SBError err;
  return v.SetValueFromCString(fmt::format("{:#x}", value).c_str(), err) && err.Success();
}

// Lets the threads of PROCESS (stopped) that are inside a signal handler run alone for a
// few ms, the others held where they are (the user's stop stays as it was), so that they
// can return from it: core stops the world again until no thread is in a handler.
void let_handlers_return(lldb::SBProcess process, lldb::SBDebugger debugger) {
  int pid = static_cast<int>(process.GetProcessID());
  std::vector<lldb::SBThread> held;
  bool any = false;
  for (uint32_t i = 0; i < process.GetNumThreads(); ++i) {
    lldb::SBThread t = process.GetThreadAtIndex(i);
    if (core::all_signals_blocked(pid, static_cast<int>(t.GetThreadID()))) {
      any = true;
    } else if (!t.IsSuspended()) {
      t.Suspend();
      held.push_back(t);
    }
  }
  if (any) {
    // A synchronous continue, returning at the stop an interrupter thread asks for every
    // 3 ms. (An asynchronous continue then Stop() raced: Stop() saw the process not yet
    // running, did nothing, and gort went on writing into a running program.)
    bool was_async = debugger.GetAsync();
    debugger.SetAsync(false);
    std::atomic<bool> stopped{false};
    std::thread interrupter([&] {
      while (!stopped) {
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
        if (!stopped) process.SendAsyncInterrupt();
      }
    });
    process.Continue();
    stopped = true;
    interrupter.join();
    debugger.SetAsync(was_async);
  }
  for (auto& t : held) t.Resume();  // runs again at the next continue
}

}  // namespace

core::Result<std::unique_ptr<LldbWorld>> LldbWorld::stop(lldb::SBProcess process) {
  std::unique_ptr<LldbWorld> w(new LldbWorld);
  w->process_ = process;
  w->debugger_ = process.GetTarget().GetDebugger();
  w->was_async_ = w->debugger_.GetAsync();
  lldb::StateType st = process.GetState();
  if (st == lldb::eStateRunning || st == lldb::eStateStepping) {
    lldb::SBError err = process.Stop();  // waits for the stop
    if (err.Fail() || process.GetState() != lldb::eStateStopped)
      return core::make_error(core::ErrorKind::kIo, "cannot interrupt process {}: {}", process.GetProcessID(),
                              err.GetCString() ? err.GetCString() : "it did not stop");
    w->resume_ = true;
  } else if (st != lldb::eStateStopped) {
    return core::make_error(core::ErrorKind::kIo, "process {} is {}, not stopped", process.GetProcessID(),
                            lldb::SBDebugger::StateAsCString(st));
  }
  let_handlers_return(process, w->debugger_);
  if (process.GetState() != lldb::eStateStopped)
    return core::make_error(core::ErrorKind::kIo, "process {} did not stop again", process.GetProcessID());
  w->debugger_.SetAsync(false);
  int pid = static_cast<int>(process.GetProcessID());
  for (uint32_t i = 0; i < process.GetNumThreads(); ++i) {
    lldb::SBThread t = process.GetThreadAtIndex(i);
    Thread th;
    th.tid = static_cast<int>(t.GetThreadID());
    th.regs = LldbThreads::regs_of(t);
    th.in_signal_handler = core::all_signals_blocked(pid, th.tid);
    // A thread stopped with a signal LLDB passes on gets it delivered when it next runs: a
    // single step would enter the handler instead of running gort's call. (The SIGSTOP of
    // an attach or a launch is not passed.)
    bool passes_signal = t.GetStopReason() == lldb::eStopReasonSignal &&
                         !process.GetUnixSignals().GetShouldSuppress(static_cast<int32_t>(t.GetStopReasonDataAtIndex(0)));
    // LLDB cannot write orig_rax, so after an injected call the kernel takes the thread to
    // be inside that call: a thread stopped in user code whose rax happens to look like a
    // pending restart would have the injected call run again when it resumes.
    auto in_call = core::stopped_syscall(pid, th.tid);
    bool restart_ambiguous = in_call && *in_call < 0 && core::is_restart_code(th.regs.rax);
    // (A signal pending for the thread is fine: step() lets its handler run first.)
    th.usable_for_syscalls = !passes_signal && !th.in_signal_handler && in_call && !restart_ambiguous;
    w->threads_.push_back(std::move(th));
  }
  // The selected thread last: the user looks at it, and an injected call leaves it an
  // "instruction step" stop reason.
  uint64_t selected = process.GetSelectedThread().GetThreadID();
  std::stable_partition(w->threads_.begin(), w->threads_.end(),
                        [&](const Thread& t) { return static_cast<uint64_t>(t.tid) != selected; });
  return w;
}

LldbWorld::~LldbWorld() {
  if (resume_ && process_.IsValid() && process_.GetState() == lldb::eStateStopped) {
    debugger_.SetAsync(true);  // a synchronous continue would wait for the next stop
    process_.Continue();
    // An asynchronous continue returns before LLDB's state thread has the process
    // running: until then GetState() still says stopped, and a gort command right after
    // this one (`gort record stop` 20 ms after `start`, in a script) would take the world
    // for stopped and write into a running program ("process is running"). Wait for the
    // state to leave stopped (it does within milliseconds; 2 s is a bound, not a delay).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (process_.GetState() == lldb::eStateStopped && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (debugger_.IsValid()) debugger_.SetAsync(was_async_);
}

core::Result<uint64_t> LldbWorld::step(lldb::SBThread thread) {
  int pid = static_cast<int>(process_.GetProcessID());
  int tid = static_cast<int>(thread.GetThreadID());
  // LLDB cannot block the thread's signals for the step (ptrace's SETSIGMASK): one that
  // arrives first is delivered, and the step ends at its handler, on a signal frame that
  // returns to BEFORE. Dropping that frame would leave every signal blocked; so the handler
  // runs (this thread alone) back to BEFORE, and the step is tried again.
  bool blocked_before = core::all_signals_blocked(pid, tid);
  uint64_t before = read_reg(thread, "rip");
  for (int attempt = 0;; attempt++) {
    lldb::SBError err;
    thread.StepInstruction(false, err);
    if (err.Fail())
      return core::make_error(core::ErrorKind::kIo, "thread {}: single step: {}", tid,
                              err.GetCString() ? err.GetCString() : "failed");
    lldb::StateType st = process_.GetState();
    if (st != lldb::eStateStopped)
      return core::make_error(core::ErrorKind::kIo, "thread {}: single step left the process {}", tid,
                              lldb::SBDebugger::StateAsCString(st));
    uint64_t pc = read_reg(thread, "rip");
    if (blocked_before || !core::all_signals_blocked(pid, tid)) return pc;
    if (attempt == 4)
      return core::make_error(core::ErrorKind::kIo, "thread {}: signals kept arriving while gort stepped it", tid);
    thread.RunToAddress(before, err);
    if (err.Fail() || process_.GetState() != lldb::eStateStopped || read_reg(thread, "rip") != before)
      return core::make_error(core::ErrorKind::kIo, "thread {}: its signal handler did not return to {:#x}", tid, before);
  }
}

core::Result<int64_t> LldbWorld::syscall(int tid, uint64_t syscall_at, uint64_t nr, const std::array<uint64_t, 6>& a) {
  lldb::SBThread t = process_.GetThreadByID(static_cast<lldb::tid_t>(tid));
  if (!t.IsValid()) return core::make_error(core::ErrorKind::kIo, "thread {} is gone", tid);
  int pid = static_cast<int>(process_.GetProcessID());
  // The thread may be stopped inside a call of its own that the kernel restarts when it
  // resumes, using orig_rax, which the injected call overwrites and LLDB cannot restore.
  // So gort does that restart itself below: rax = the call, pc back on its SYSCALL.
  auto own_call = core::stopped_syscall(pid, tid);
  if (!own_call) return core::make_error(core::ErrorKind::kIo, "thread {}: cannot read /proc/{}/task/{}/syscall", tid, pid, tid);
  std::vector<std::pair<const char*, uint64_t>> saved;
  for (const char* name : kSaved) {
    bool ok = false;
    uint64_t v = read_reg(t, name, &ok);
    if (!ok) return core::make_error(core::ErrorKind::kIo, "thread {}: LLDB has no register {}", tid, name);
    saved.emplace_back(name, v);
  }
  auto slot = [&](std::string_view name) -> uint64_t& {
    return std::find_if(saved.begin(), saved.end(), [&](auto& r) { return name == r.first; })->second;
  };
  if (*own_call < 0 && core::is_restart_code(slot("rax")))
    return core::make_error(core::ErrorKind::kIo, "thread {}: cannot run a system call for gort through LLDB", tid);
  if (auto restart = core::restarted_rax(slot("rax"), *own_call)) {
    slot("rax") = *restart;
    slot("rip") -= 2;
  }
  auto restore = [&] {
    bool ok = true;
    for (auto& [name, v] : saved) ok &= write_reg(t, name, v);
    return ok;
  };
  const std::pair<const char*, uint64_t> call[] = {{"rip", syscall_at}, {"rax", nr},    {"rdi", a[0]}, {"rsi", a[1]},
                                                   {"rdx", a[2]},       {"r10", a[3]},  {"r8", a[4]},  {"r9", a[5]}};
  for (auto& [name, v] : call) {
    if (!write_reg(t, name, v)) {
      restore();
      return core::make_error(core::ErrorKind::kIo, "thread {}: cannot set {} through LLDB", tid, name);
    }
  }
  core::Result<int64_t> out = int64_t{0};
  uint64_t pc = syscall_at;
  // A thread stopped inside a system call of its own can report the first step at that
  // call's exit without running an instruction: step again while the pc has not moved.
  for (int i = 0; i < 3 && pc == syscall_at; i++) {
    auto s = step(t);
    if (!s) {
      out = s.error();
      break;
    }
    pc = *s;
  }
  if (out) {
    if (pc != syscall_at + 2)
      out = core::make_error(core::ErrorKind::kIo, "thread {}: the system call did not complete (pc {:#x})", tid, pc);
    else
      out = static_cast<int64_t>(read_reg(t, "rax"));
  }
  if (!restore() && out)
    out = core::make_error(core::ErrorKind::kIo, "thread {}: cannot restore its registers through LLDB", tid);
  return out;
}

// One page at a time: LLDB splits a larger write into packets of 0x7fee bytes, so the
// second packet starts at an odd address; lldb-server writes a packet word by word from
// its start and reads the last, partial word whole, which past the end of a mapping (a
// 64 KiB trampoline page with nothing mapped after it) fails: "memory write failed".
// A write that starts at a page boundary, or stays inside one page, never reads past it.
core::Result<void> LldbWorld::write(uint64_t addr, core::Bytes bytes) {
  constexpr uint64_t kPage = 4096;
  for (size_t done = 0; done < bytes.size();) {
    uint64_t at = addr + done;
    size_t n = std::min<size_t>(bytes.size() - done, kPage - at % kPage);
    lldb::SBError err;
    size_t wrote = process_.WriteMemory(at, bytes.data() + done, n, err);
    if (err.Fail() || wrote != n)
      return core::make_error(core::ErrorKind::kIo, "cannot write {} bytes at {:#x} through LLDB: {}", bytes.size(),
                              addr, err.GetCString() ? err.GetCString() : "short write");
    done += n;
  }
  return {};
}

core::Result<void> LldbWorld::step_out(int tid, const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  lldb::SBThread t = process_.GetThreadByID(static_cast<lldb::tid_t>(tid));
  if (!t.IsValid()) return core::make_error(core::ErrorKind::kIo, "thread {} is gone", tid);
  uint64_t pc = read_reg(t, "rip");
  for (int i = 0; core::inproc::in_patched_range(pc, ranges); i++) {
    if (i == 512) return core::make_error(core::ErrorKind::kIo, "thread {} did not leave {:#x} in 512 steps", tid, pc);
    GORT_TRY(pc, step(t));
  }
  // Left by way of a signal handler: the interrupted pc, in a signal frame, is still inside.
  if (core::all_signals_blocked(static_cast<int>(process_.GetProcessID()), tid))
    return core::make_error(core::ErrorKind::kIo, "thread {} entered a signal handler while gort stepped it", tid);
  return {};
}

}  // namespace gort::plugin
