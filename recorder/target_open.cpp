// Opening a core with its executable, or a live process held stopped. See target_open.h.

#include "recorder/target_open.h"

#include "core/target/process.h"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <set>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace gort::recorder {
namespace {

std::string hexdump_id(std::string_view s) {
  std::string out;
  for (char c : s) out += (c >= 0x20 && c < 0x7f) ? std::string(1, c) : fmt::format("\\x{:02x}", uint8_t(c));
  return out;
}

// The core is BIN's: its entry point where auxv says, and its Go build ID note (in the
// first page of the text segment, which the kernel dumps) equal to BIN's.
core::Result<void> check_core_of(const core::GoBinary& bin, const core::CoreFile& c, int64_t slide,
                                 const std::string& bin_path, const std::string& core_path) {
  auto mismatch = [&](std::string why) {
    return core::make_error(core::ErrorKind::kBadInput, "{} is not a core of {}: {}; give the executable that crashed",
                            core_path, bin_path, why);
  };
  if (!bin.elf().is_pie() && slide != 0) {
    return mismatch(fmt::format("the core's entry point {:#x} is not the binary's {}", *c.auxv_entry(), bin.elf().entry()));
  }
  const auto* sec = bin.elf().section(".note.go.buildid");
  auto want = bin.elf().section_data(".note.go.buildid");
  if (sec && want && !want->empty()) {
    std::vector<uint8_t> got(want->size());
    if (c.read(sec->addr + slide, got)) {
      if (std::memcmp(got.data(), want->data(), got.size()) != 0) {
        return mismatch(fmt::format("Go build ID {} in the binary, other bytes in the core", hexdump_id(bin.build_id())));
      }
      return {};
    }
  }
  // No build ID in the core (not dumped): compare .go.buildinfo (writable data, dumped).
  const auto* bi = bin.elf().section(".go.buildinfo");
  auto bid = bin.elf().section_data(".go.buildinfo");
  if (bi && bid && !bid->empty()) {
    size_t n = std::min<size_t>(bid->size(), 4096);
    std::vector<uint8_t> got(n);
    if (c.read(bi->addr + slide, got) && std::memcmp(got.data(), bid->data(), n) != 0) {
      return mismatch("its .go.buildinfo (Go version, module, build settings) differs");
    }
  }
  return {};
}

std::set<int> task_ids(int pid) { return numeric_entries(fmt::format("/proc/{}/task", pid)); }

}  // namespace

std::set<int> numeric_entries(const std::string& dir) {
  std::set<int> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') out.insert(std::atoi(e->d_name));
  }
  closedir(d);
  return out;
}

core::Result<std::unique_ptr<ProcessFreeze>> ProcessFreeze::stop(int pid) {
  if (pid <= 0 || kill(pid, 0) != 0) {
    if (errno == EPERM)
      return core::make_error(core::ErrorKind::kBadInput, "no permission to read process {}: run gort as root (or as its user with ptrace allowed)", pid);
    return core::make_error(core::ErrorKind::kBadInput, "no process {} (it exited, or the pid is wrong)", pid);
  }
  std::unique_ptr<ProcessFreeze> f(new ProcessFreeze);
  f->pid_ = pid;
  // Seize every thread, again until no new one appears (a thread may start meanwhile).
  for (int round = 0; round < 100; round++) {
    bool added = false;
    for (int tid : task_ids(pid)) {
      if (std::find(f->tids_.begin(), f->tids_.end(), tid) != f->tids_.end()) continue;
      if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
        if (errno == ESRCH) continue;  // exited meanwhile
        int e = errno;
        return core::make_error(core::ErrorKind::kBadInput,
                                "cannot stop thread {} of process {}: {}{}", tid, pid, std::strerror(e),
                                e == EPERM ? " (another debugger attached? not root? kernel.yama.ptrace_scope?)" : "");
      }
      f->tids_.push_back(tid);
      f->sigs_.push_back(0);
      ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr);
      int st = 0;
      pid_t w;
      while ((w = waitpid(tid, &st, __WALL)) < 0 && errno == EINTR) {
      }
      if (w == tid) {
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
          f->tids_.pop_back();
          f->sigs_.pop_back();
        } else if (WIFSTOPPED(st) && (st >> 16) != PTRACE_EVENT_STOP) {
          // A signal arrived first (a Go program gets SIGURG, SIGPROF, ...): the thread is
          // in its signal-delivery stop. The signal goes back to it at the detach.
          f->sigs_.back() = WSTOPSIG(st);
        }
      }
      added = true;
    }
    if (!added) break;
  }
  if (f->tids_.empty()) return core::make_error(core::ErrorKind::kBadInput, "process {} has no thread left to stop", pid);
  for (int tid : f->tids_) {
    user_regs_struct r{};
    if (ptrace(PTRACE_GETREGS, tid, nullptr, &r) != 0) continue;
    core::ThreadRegs t;
    t.tid = static_cast<uint64_t>(tid);
    t.rip = r.rip, t.rsp = r.rsp, t.rbp = r.rbp, t.rax = r.rax, t.rbx = r.rbx, t.rcx = r.rcx, t.rdx = r.rdx;
    t.rsi = r.rsi, t.rdi = r.rdi, t.r8 = r.r8, t.r9 = r.r9, t.r10 = r.r10, t.r11 = r.r11, t.r12 = r.r12;
    t.r13 = r.r13, t.r14 = r.r14, t.r15 = r.r15, t.fs_base = r.fs_base;
    f->regs_.push_back(t);
    Thread th;
    th.tid = tid;
    th.regs = t;
    size_t i = static_cast<size_t>(std::find(f->tids_.begin(), f->tids_.end(), tid) - f->tids_.begin());
    th.in_signal_handler = core::all_signals_blocked(pid, tid);
    th.usable_for_syscalls = f->sigs_[i] == 0 && !th.in_signal_handler;
    f->threads_.push_back(th);
  }
  return f;
}

core::Result<void> ProcessFreeze::wait_step(int tid) {
  for (;;) {
    int st = 0;
    pid_t w;
    while ((w = waitpid(tid, &st, __WALL)) < 0 && errno == EINTR) {
    }
    if (w != tid) return core::make_error(core::ErrorKind::kIo, "thread {}: waitpid: {}", tid, std::strerror(errno));
    if (WIFEXITED(st) || WIFSIGNALED(st)) return core::make_error(core::ErrorKind::kIo, "thread {} exited", tid);
    if (WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP) return {};
    // Another signal (its mask is full, so SIGSTOP or a synchronous fault): keep it for
    // the detach and say the step did not complete.
    size_t i = static_cast<size_t>(std::find(tids_.begin(), tids_.end(), tid) - tids_.begin());
    if (i < sigs_.size() && WIFSTOPPED(st)) sigs_[i] = WSTOPSIG(st);
    return core::make_error(core::ErrorKind::kIo, "thread {} stopped with signal {} during a single step", tid,
                            WIFSTOPPED(st) ? WSTOPSIG(st) : 0);
  }
}

core::Result<int64_t> ProcessFreeze::syscall(int tid, uint64_t syscall_at, uint64_t nr,
                                             const std::array<uint64_t, 6>& a) {
  user_regs_struct saved{};
  if (ptrace(PTRACE_GETREGS, tid, nullptr, &saved) != 0)
    return core::make_error(core::ErrorKind::kIo, "thread {}: cannot read registers: {}", tid, std::strerror(errno));
  uint64_t old_mask = 0, all = ~0ull;
  ptrace(PTRACE_GETSIGMASK, tid, reinterpret_cast<void*>(sizeof old_mask), &old_mask);
  ptrace(PTRACE_SETSIGMASK, tid, reinterpret_cast<void*>(sizeof all), &all);
  user_regs_struct r = saved;
  r.rip = syscall_at;
  r.rax = nr;
  r.orig_rax = static_cast<unsigned long long>(-1);  // no system call to restart
  r.rdi = a[0], r.rsi = a[1], r.rdx = a[2], r.r10 = a[3], r.r8 = a[4], r.r9 = a[5];
  core::Result<int64_t> out = int64_t{0};
  user_regs_struct after{};
  if (ptrace(PTRACE_SETREGS, tid, nullptr, &r) != 0) {
    out = core::make_error(core::ErrorKind::kIo, "thread {}: cannot run a system call: {}", tid, std::strerror(errno));
  } else {
    // A thread stopped inside a system call of its own (the exec stop of a launched
    // program) reports the first single step at that call's exit, before running any
    // instruction: step again while the pc has not moved.
    for (int step = 0; step < 3 && out; step++) {
      if (ptrace(PTRACE_SINGLESTEP, tid, nullptr, nullptr) != 0)
        out = core::make_error(core::ErrorKind::kIo, "thread {}: single step: {}", tid, std::strerror(errno));
      else if (auto w = wait_step(tid); !w)
        out = w.error();
      else if (ptrace(PTRACE_GETREGS, tid, nullptr, &after) == 0 && after.rip != syscall_at)
        break;
    }
  }
  if (out) {
    if (after.rip != syscall_at + 2)
      out = core::make_error(core::ErrorKind::kIo, "thread {}: the system call did not complete (pc {:#x})", tid,
                             static_cast<uint64_t>(after.rip));
    else
      out = static_cast<int64_t>(after.rax);
  }
  ptrace(PTRACE_SETREGS, tid, nullptr, &saved);
  ptrace(PTRACE_SETSIGMASK, tid, reinterpret_cast<void*>(sizeof old_mask), &old_mask);
  return out;
}

core::Result<void> ProcessFreeze::write(uint64_t addr, core::Bytes bytes) {
  if (mem_fd_ < 0) mem_fd_ = open(fmt::format("/proc/{}/mem", pid_).c_str(), O_RDWR | O_CLOEXEC);
  if (mem_fd_ < 0 || pwrite(mem_fd_, bytes.data(), bytes.size(), static_cast<off_t>(addr)) !=
                         static_cast<ssize_t>(bytes.size()))
    return core::make_error(core::ErrorKind::kIo, "cannot write {} bytes at {:#x} in process {}: {}", bytes.size(), addr,
                            pid_, std::strerror(errno));
  return {};
}

core::Result<void> ProcessFreeze::step_out(int tid, const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  uint64_t old_mask = 0, all = ~0ull;
  ptrace(PTRACE_GETSIGMASK, tid, reinterpret_cast<void*>(sizeof old_mask), &old_mask);
  ptrace(PTRACE_SETSIGMASK, tid, reinterpret_cast<void*>(sizeof all), &all);
  core::Result<void> out;
  for (int step = 0;; step++) {
    user_regs_struct r{};
    ptrace(PTRACE_GETREGS, tid, nullptr, &r);
    if (!core::inproc::in_patched_range(r.rip, ranges)) break;
    if (step == 512) {
      out = core::make_error(core::ErrorKind::kIo, "thread {} did not leave {:#x} in 512 steps", tid,
                             static_cast<uint64_t>(r.rip));
      break;
    }
    if (ptrace(PTRACE_SINGLESTEP, tid, nullptr, nullptr) != 0) {
      out = core::make_error(core::ErrorKind::kIo, "thread {}: single step: {}", tid, std::strerror(errno));
      break;
    }
    if (auto w = wait_step(tid); !w) {
      out = w.error();
      break;
    }
  }
  ptrace(PTRACE_SETSIGMASK, tid, reinterpret_cast<void*>(sizeof old_mask), &old_mask);
  return out;
}

core::Result<std::unique_ptr<ProcessFreeze>> ProcessFreeze::adopt(int pid) {
  std::unique_ptr<ProcessFreeze> f(new ProcessFreeze);
  f->pid_ = pid;
  f->adopted_ = true;
  user_regs_struct r{};
  if (ptrace(PTRACE_GETREGS, pid, nullptr, &r) != 0)
    return core::make_error(core::ErrorKind::kIo, "cannot read the registers of process {}: {}", pid, std::strerror(errno));
  f->tids_.push_back(pid);
  f->sigs_.push_back(0);
  Thread th;
  th.tid = pid;
  th.regs.tid = static_cast<uint64_t>(pid);
  th.regs.rip = r.rip, th.regs.rsp = r.rsp, th.regs.rbp = r.rbp;
  th.usable_for_syscalls = true;
  f->threads_.push_back(th);
  return f;
}

ProcessFreeze::~ProcessFreeze() {
  if (mem_fd_ >= 0) close(mem_fd_);
  if (adopted_) return;
  for (size_t i = 0; i < tids_.size(); i++)
    ptrace(PTRACE_DETACH, tids_[i], nullptr, reinterpret_cast<void*>(static_cast<uintptr_t>(sigs_[i])));
}

core::Result<OpenTarget> open_core_target(const std::string& bin_path, const std::string& core_path) {
  OpenTarget t;
  GORT_TRY(t.bin, core::GoBinary::open(bin_path));
  GORT_TRY(t.core, core::CoreFile::open(core_path));
  if (t.core->auxv_entry()) t.slide = static_cast<int64_t>(*t.core->auxv_entry() - t.bin->elf().entry().value());
  else if (t.bin->elf().is_pie())
    return core::make_error(core::ErrorKind::kBadInput,
                            "{}: no NT_AUXV note: cannot tell where the PIE executable was loaded", core_path);
  GORT_TRY_VOID(check_core_of(*t.bin, *t.core, t.slide, bin_path, core_path));
  t.core->attach_executable(&t.bin->elf(), t.slide);
  GORT_TRY(t.threads, t.core->threads());
  t.name = "core file " + core_path;
  return t;
}

core::Result<OpenTarget> open_live_target(int pid, const std::string& bin_path) {
  OpenTarget t;
  std::string path = bin_path.empty() ? fmt::format("/proc/{}/exe", pid) : bin_path;
  if (bin_path.empty() && access(fmt::format("/proc/{}", pid).c_str(), F_OK) != 0)
    return core::make_error(core::ErrorKind::kBadInput, "no process {} (it exited, or the pid is wrong)", pid);
  GORT_TRY(t.bin, core::GoBinary::open(path));
  GORT_TRY(t.slide, core::load_slide(pid, *t.bin));
  GORT_TRY(auto mem, core::ProcMemory::open(pid));
  t.proc = std::move(mem);
  GORT_TRY(t.freeze, ProcessFreeze::stop(pid));
  t.threads = t.freeze->threads();
  t.name = fmt::format("process {}", pid);
  return t;
}

}  // namespace gort::recorder
