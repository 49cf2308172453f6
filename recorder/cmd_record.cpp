// gort record: records every map write of a Go program without stopping it
// (core/record/recorder.h), launched (`-- CMD ARGS`) or attached (`-p PID`), into a trace
// that `gort report` analyses. The target is never stopped after the probes are placed,
// and never harmed when gort is killed: closing the perf fds removes every probe.
//
// Launching: the child stops itself (PTRACE_TRACEME + SIGSTOP) so that the exec is
// reported as a PTRACE_EVENT_EXEC stop rather than a SIGTRAP; gort places the probes
// while the new image is stopped (a PIE's load address is known only then), then
// detaches. If gort dies before that, PTRACE_O_EXITKILL... is not used: a tracer that
// dies at an event stop simply lets the child run on.

#include "core/analysis/dangling.h"
#include "core/binary/go_binary.h"
#include "core/goruntime/heap.h"
#include "core/goruntime/map_event.h"
#include "core/target/process.h"
#include "core/record/recorder.h"
#include "core/util/strings.h"
#include "recorder/cli.h"
#include "recorder/target_open.h"

#include <fmt/core.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_set>

namespace gort::recorder {
namespace {

constexpr const char* kUsage = R"(Usage: gort record [-p PID | -- CMD ARGS...] [-o TRACE] [--duration SECONDS]
                   [--maps ADDR,...] [--stack-depth N] [--hw FUNC,...] [--perf PERF.DATA]
                   [--backend perf|inproc]
                   [--sync [--reads]] [--dangling [--convert-hook FUNC[:REG],...]]

Record every map write of a Go program without stopping it, into TRACE (default
gort.trace), for `gort report`. Hardware breakpoints (perf_event_open, the CPU's four
debug registers) go on the map-write functions Go code calls most, uprobes on the rest:
the instructions that set and clear each map's "writing" flag, runtime.fatal (a
goroutine about to throw "concurrent map writes"), goroutine creation and exit, map
creation and GC cycles (a map freed and another made at its address is another map).
Each hit records time (CLOCK_MONOTONIC), thread, CPU, goroutine, map and the user stack.

The program runs on unstopped; it ends the recording by exiting (or crashing), as do
Ctrl-C and --duration. Killing gort (even with kill -9) leaves it running unharmed.

Options:
  -p, --pid PID        record a running process
  -- CMD ARGS...       launch CMD and record it from its first instruction
  -o, --output TRACE   the trace file (default gort.trace)
  --duration SECONDS   stop recording after this long (the program runs on)
  --maps ADDR,...      keep only writes to these maps (hex addresses, as `gort report`
                       or the program prints them)
  --stack-depth N      user stack frames per event (default 32; 0: none, smallest trace)
  --hw FUNC,...        give the debug registers to these functions' sites first
                       (default: runtime.mapassign_faststr, runtime.mapassign_fast64, ...)
  --max-hw N           use at most N debug registers (0-4; 0 = uprobes only). Default: 4
                       on bare metal, 0 in a virtual machine, where a hardware breakpoint
                       hit can reach the program as a stray SIGTRAP (docs/record.md)
  --ring-pages N       ring buffer pages per CPU (power of two; default 1024: 4 MiB). The
                       in-process backend has one ring: 32 MiB, or N pages times the CPUs
  --backend perf|inproc
                       perf (default): perf events, 10-17 us a hit. inproc: patch each
                       probe site with a jump to a trampoline gort maps into the program,
                       which appends to a ring there: tens of ns a hit, exact counts; the
                       program is stopped ~ms to install and to remove; sites that cannot
                       be patched safely get perf probes (docs/inproc.md)
  --perf PERF.DATA     also run `perf record -k CLOCK_MONOTONIC` (scheduler switches and
                       CPU samples) on the program, for `gort report --perf`
  --sync               also record synchronization: sync.Mutex and RWMutex lock/unlock
                       (inlined fast paths included), channel send/receive/close and
                       select, WaitGroup Add/Done/Wait, Once, goroutine creation; `gort
                       report` then names map writers no happens-before edge orders
                       (docs/happens-before.md)
  --reads              with --sync: also map reads, for unsynchronized read/write pairs
  --dangling           also find integer-held (uintptr) heap addresses whose object the GC
                       did not keep: after each GC cycle's mark termination gort holds the
                       program stopped (ptrace) while it scans globals and the live heap
                       (the pause grows with the heap: about 1 s per GiB), then lets it
                       run; `gort report` lists them as dangling-pointer findings
                       (docs/heap.md). Conversions back to pointers are recorded with
                       their stacks in checkptr builds (-gcflags=all=-d=checkptr, -race)
  --convert-hook FUNC[:REG],...
                       with --dangling: functions that turn an integer back into a pointer
                       (a handle lookup); REG holds the integer at the entry (default rax,
                       the first argument). E.g. --convert-hook main.lookup
  -q, --quiet          no progress line

Needs root (or CAP_PERFMON + CAP_SYS_PTRACE). Example:
  gort record -o race.trace -- ./server --port 8080
  gort report race.trace
  gort record --dangling --convert-hook main.fromHandle -p $(pidof server))";

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

std::string describe_status(int st) {
  if (WIFEXITED(st)) {
    int code = WEXITSTATUS(st);
    return code == 2 ? "target exited with status 2 (a Go fatal error or panic)"
                     : fmt::format("target exited with status {}", code);
  }
  if (WIFSIGNALED(st)) return fmt::format("target killed by signal {} ({})", WTERMSIG(st), strsignal(WTERMSIG(st)));
  return "target ended";
}

struct Options {
  int pid = 0;
  std::vector<std::string> command;
  core::record::RecordOptions rec;
  double duration = 0;
  std::string perf_out;
  bool quiet = false;
  bool ring_pages_given = false;
};

/// --dangling: what the scans after each GC cost and found.
struct HeapScans {
  uint64_t scans = 0, failed = 0, marks = 0;
  std::vector<uint64_t> pauses_ns;
  size_t last_findings = SIZE_MAX;
  std::string last_error;
  /// "holder:value" of the findings written in full by an earlier scan: later scans list
  /// them in "seen" only (docs/trace-format.md), so a long recording of a program with many
  /// stale handles and frequent GCs does not rewrite every finding at every cycle.
  std::unordered_set<std::string> written;
};

/// Read end of a pipe whose write end only gort's main process holds: it reads EOF once
/// gort dies. Created before any perf fd, so that a killed gort closes it first: its perf
/// fds (uprobes) take the kernel seconds to close, and a scan must not hold the program
/// stopped that long.
int g_death_fd = -1, g_death_wfd = -1;

/// Runs in the scan child: the heap scan of PID as JSON, written to OUT_FD.
[[noreturn]] void scan_child(const core::record::Recorder& r, int pid, int out_fd) {
  // Drop the inherited perf fds (and every other): if gort dies, this process's references
  // could be the last ones, and it would then remove every uprobe (seconds) in its exit
  // before the kernel detached it from the program it holds stopped.
  for (int fd : numeric_entries("/proc/self/fd"))
    if (fd > 2 && fd != out_fd && fd != g_death_fd) ::close(fd);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  auto write_all = [&](const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::write(out_fd, s.data() + off, s.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      off += size_t(n);
    }
  };
  auto gort_died = [] {
    pollfd p{g_death_fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  };
  auto fail = [&](const core::Error& e) {
    write_all(nlohmann::json{{"error", e.message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    ::_exit(1);
  };
  // Ctrl-C reaches this process too (same process group): die, which detaches.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  uint64_t t0 = core::monotonic_ns();
  if (gort_died()) ::_exit(1);
  auto freeze = ProcessFreeze::stop(pid);
  if (!freeze) fail(freeze.error());
  uint64_t t_stopped = core::monotonic_ns();
  auto mem = core::ProcMemory::open(pid);
  if (!mem) fail(mem.error());
  const core::GoBinary& bin = r.binary();
  auto heap = core::Heap::open(**mem, bin, r.slide());
  if (!heap) fail(heap.error());
  auto gs = all_goroutines(**mem, bin, r.slide());
  core::analysis::ScanOptions so;
  so.reached_holders_only = true;  // right after a cycle: what that cycle found reachable
  so.progress = [&](uint64_t, uint64_t) {
    if (gort_died()) {
      freeze->reset();  // let the program go now, not when the kernel is done with gort
      ::_exit(1);
    }
  };
  core::analysis::ScanResult res;
  try {
    res = core::analysis::scan_dangling(**mem, bin, r.slide(), *heap, gs, (*freeze)->threads(), so);
  } catch (const std::exception& e) {
    freeze->reset();
    fail(core::Error{core::ErrorKind::kInternal, std::string("heap scan failed: ") + e.what()});
  }
  freeze->reset();  // the program runs again
  uint64_t t1 = core::monotonic_ns();
  auto j = core::analysis::to_json(res);
  j["time_ns"] = t0;
  j["mark_ns"] = r.last_gc_mark_ns();
  j["pause_ns"] = t1 - t0;
  j["stop_ns"] = t_stopped - t0;
  write_all(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  ::_exit(0);
}

/// Holds PID stopped, scans its heap (core/analysis/dangling.h), lets it go, and writes the
/// scan into the trace with the pause it cost. The ptrace work runs in a child process:
/// if gort is killed, the child sees it (g_death_fd) and detaches at once.
void scan_after_gc(core::record::Recorder& r, int pid, HeapScans& hs, bool quiet) {
  auto fail = [&](const std::string& e) {
    hs.failed++;
    if (e != hs.last_error && !quiet) fmt::print(stderr, "\ngort record: heap scan skipped: {}\n", e);
    hs.last_error = e;
  };
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail(fmt::format("pipe: {}", std::strerror(errno)));
  std::fflush(stderr);
  pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return fail(fmt::format("fork: {}", std::strerror(errno)));
  }
  if (child == 0) {
    ::close(fds[0]);
    ::close(g_death_wfd);  // only gort's main process may hold it
    scan_child(r, pid, fds[1]);
  }
  ::close(fds[1]);
  std::string out;
  char buf[65536];
  bool interrupted = false;
  for (;;) {
    pollfd pf{fds[0], POLLIN, 0};
    int pr = ::poll(&pf, 1, 100);
    if (g_stop && !interrupted) {  // Ctrl-C: do not wait for the scan; killing it detaches
      ::kill(child, SIGKILL);
      interrupted = true;
    }
    if (pr < 0 && errno == EINTR) continue;
    if (pr == 0) continue;
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  ::close(fds[0]);
  int st = 0;
  while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  if (interrupted) return fail("interrupted");
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(fmt::format("the scan process ended without a result ({})", describe_status(st).substr(7)));
  if (j.contains("error")) return fail(j["error"].get<std::string>());
  uint64_t pause = j.value("pause_ns", uint64_t{0});
  hs.scans++;
  hs.pauses_ns.push_back(pause);
  size_t n = j["findings"].size();
  auto fresh = nlohmann::json::array(), seen = nlohmann::json::array();
  for (auto& f : j["findings"]) {
    std::string key = f["holder"].value("addr", "") + ":" + f["target"].value("value", "");
    if (hs.written.insert(key).second) fresh.push_back(std::move(f));
    else seen.push_back(key);
  }
  j["findings"] = std::move(fresh);
  j["seen"] = std::move(seen);
  if (auto w = r.add_heap_scan(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)); !w)
    return fail(w.error().message);
  if (!quiet && n != hs.last_findings)
    fmt::print(stderr, "\rgort record: GC cycle {}: {} dangling pointer{} ({:.1f} MB scanned, paused {:.1f} ms)\n",
               j["heap"].value("gc_cycles", 0u), n, n == 1 ? "" : "s",
               j["stats"].value("bytes_scanned", uint64_t{0}) / 1048576.0, pause / 1e6);
  hs.last_findings = n;
}

/// Launches CMD stopped right after its exec (see the file comment). Returns its pid.
core::Result<int> launch_stopped(const std::vector<std::string>& cmd) {
  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) return core::make_error(core::ErrorKind::kIo, "pipe: {}", std::strerror(errno));
  pid_t child = ::fork();
  if (child < 0) return core::make_error(core::ErrorKind::kIo, "fork: {}", std::strerror(errno));
  if (child == 0) {
    ::close(errpipe[0]);
    ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
    ::raise(SIGSTOP);
    std::vector<char*> argv;
    for (auto& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    int e = errno;
    (void)!::write(errpipe[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(errpipe[1]);
  int st = 0;
  auto fail = [&](std::string why) -> core::Result<int> {
    ::kill(child, SIGKILL);
    ::waitpid(child, &st, 0);
    ::close(errpipe[0]);
    return core::make_error(core::ErrorKind::kIo, "{}", why);
  };
  if (::waitpid(child, &st, 0) != child || !WIFSTOPPED(st)) return fail("the child did not stop before exec");
  ::ptrace(PTRACE_SETOPTIONS, child, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACEEXEC));
  ::ptrace(PTRACE_CONT, child, nullptr, nullptr);
  if (::waitpid(child, &st, 0) != child) return fail("waiting for the exec failed");
  if (WIFEXITED(st)) {
    int e = 0;
    bool got = ::read(errpipe[0], &e, sizeof e) == sizeof e;
    ::close(errpipe[0]);
    return core::make_error(core::ErrorKind::kBadInput, "cannot run '{}': {}", cmd[0],
                            got ? std::strerror(e) : "it exited before exec");
  }
  ::close(errpipe[0]);
  if (!(WIFSTOPPED(st) && (st >> 8) == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))))
    return fail(fmt::format("unexpected stop of '{}' before exec (status {:#x})", cmd[0], st));
  return child;
}

/// `perf record` on PID alongside, writing OUT. Returns perf's pid once it is running.
core::Result<int> start_perf(int pid, const std::string& out) {
  if (::access("/usr/bin/perf", X_OK) != 0 && ::system("command -v perf >/dev/null 2>&1") != 0)
    return core::make_error(core::ErrorKind::kNotFound, "--perf needs perf: apt install linux-perf");
  ::unlink(out.c_str());
  std::vector<std::string> args = {"perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "-e", "sched:sched_switch",
                                   "-e", "cpu-clock", "-F", "999", "-g", "-p", std::to_string(pid), "-o", out};
  pid_t p = ::fork();
  if (p < 0) return core::make_error(core::ErrorKind::kIo, "fork: {}", std::strerror(errno));
  if (p == 0) {
    ::setpgid(0, 0);  // Ctrl-C goes to gort, which stops perf itself
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp("perf", argv.data());
    ::_exit(127);
  }
  // perf writes its header once its events are open.
  for (int i = 0; i < 500; i++) {
    int st;
    if (::waitpid(p, &st, WNOHANG) == p)
      return core::make_error(core::ErrorKind::kIo, "perf record exited early ({})", describe_status(st).substr(7));
    struct stat sb;
    if (::stat(out.c_str(), &sb) == 0 && sb.st_size > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      return static_cast<int>(p);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(p, SIGKILL);
  return core::make_error(core::ErrorKind::kIo, "perf record did not start within 5 s");
}

void stop_perf(int perf_pid) {
  if (perf_pid <= 0) return;
  ::kill(perf_pid, SIGINT);
  int st;
  for (int i = 0; i < 1000; i++) {
    if (::waitpid(perf_pid, &st, WNOHANG) == perf_pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(perf_pid, SIGKILL);
  ::waitpid(perf_pid, &st, 0);
}

std::string human_bytes(uint64_t b) {
  if (b >= (1u << 20)) return fmt::format("{:.1f} MB", b / 1048576.0);
  if (b >= 1024) return fmt::format("{:.1f} KB", b / 1024.0);
  return fmt::format("{} bytes", b);
}

int record(Options& o) {
  bool launched = !o.command.empty();
  if (o.rec.dangling && g_death_fd < 0) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) g_death_fd = fds[0], g_death_wfd = fds[1];  // open until gort exits
  }
  int pid = o.pid;
  if (launched) {
    auto child = launch_stopped(o.command);
    if (!child) return report_error(child.error(), "gort record");
    pid = *child;
  } else if (::kill(pid, 0) != 0 && errno == ESRCH) {
    return report_error(core::make_error(core::ErrorKind::kBadInput, "no process {} (it exited, or the pid is wrong)", pid), "gort record");
  }
  // From here on a launched child is ptrace-stopped: every exit path lets it go.
  auto release = [&](bool kill_it) {
    if (!launched) return;
    if (kill_it) {
      ::kill(pid, SIGKILL);
      ::ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
      int st;
      ::waitpid(pid, &st, 0);
    } else {
      ::ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
    }
  };
  char exe[4096];
  ssize_t n = ::readlink(fmt::format("/proc/{}/exe", pid).c_str(), exe, sizeof exe - 1);
  if (n <= 0) {
    release(true);
    return report_error(core::make_error(core::ErrorKind::kIo,
                                         "cannot read /proc/{}/exe: {} (run gort as root, or as the program's user with CAP_SYS_PTRACE)",
                                         pid, std::strerror(errno)), "gort record");
  }
  std::string exe_path(exe, n);
  auto bin = core::GoBinary::open(exe_path);
  if (!bin) {
    release(true);
    return report_error(bin.error(), "gort record");
  }
  auto slide = core::load_slide(pid, **bin);
  if (!slide) {
    release(true);
    return report_error(slide.error(), "gort record");
  }
  std::string version = (*bin)->version().raw;
  std::string maps = (*bin)->map_impl() == core::MapImpl::kSwiss ? "swiss" : "hmap";
  int perf_pid = 0;
  if (!o.perf_out.empty()) {
    auto p = start_perf(pid, o.perf_out);
    if (!p) {
      release(true);
      return report_error(p.error(), "gort record");
    }
    perf_pid = *p;
  }
  o.rec.command = o.command;
  // The in-process ring: 32 MiB unless --ring-pages says (then what the perf rings would
  // take: N pages per CPU). A burst of ~250k events fits while gort catches up.
  if (o.ring_pages_given)
    o.rec.inproc_ring_bytes = std::max<uint64_t>(1u << 20, uint64_t{o.rec.ring_pages} * 4096 *
                                                               static_cast<uint64_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))));
  bool held = launched;  // a launched child stays ptrace-stopped by us until release()
  o.rec.stop_world = [&held, pid]() -> core::Result<std::unique_ptr<core::inproc::World>> {
    if (held) {
      GORT_TRY(auto f, ProcessFreeze::adopt(pid));
      return std::unique_ptr<core::inproc::World>(std::move(f));
    }
    GORT_TRY(auto f, ProcessFreeze::stop(pid));
    return std::unique_ptr<core::inproc::World>(std::move(f));
  };
  auto rec = core::record::Recorder::start(pid, std::move(*bin), *slide, o.rec);
  if (!rec) {
    stop_perf(perf_pid);
    release(true);
    return report_error(rec.error(), "gort record");
  }
  release(false);  // the program runs from here on, probes armed
  held = false;
  auto& r = **rec;

  fmt::print(stderr, "gort record: {} {} ({}, {} maps): {} sites, {}; writing {}{}\n",
             launched ? "launched" : "attached to", pid, version, maps, r.sites().size(), r.backend_summary(), o.rec.output,
             launched ? "" : " (Ctrl-C stops)");
  for (auto& w : r.warnings()) fmt::print(stderr, "gort record: warning: {}\n", w);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  bool tty = ::isatty(2) && !o.quiet;
  uint64_t start = core::monotonic_ns(), last_progress = start;
  std::string reason;
  int status = 0;
  HeapScans hs;
  // --dangling: a short poll, so that the heap is scanned within milliseconds of a GC
  // cycle's end, before the sweeper has freed (and the program reused) much of it.
  int poll_ms = o.rec.dangling ? 5 : 100;
  while (reason.empty()) {
    auto pumped = r.pump(poll_ms);
    if (!pumped) {
      reason = "error: " + pumped.error().message;
      break;
    }
    if (o.rec.dangling) {
      if (uint64_t marks = r.take_gc_marks(); marks > 0 && !g_stop) {
        hs.marks += marks;
        siginfo_t si{};
        bool alive = !r.target_gone() &&
                     (!launched || (::waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0));
        if (alive) scan_after_gc(r, pid, hs, o.quiet);
      }
    }
    uint64_t now = core::monotonic_ns();
    if (g_stop) reason = "interrupted";
    if (o.duration > 0 && now - start >= static_cast<uint64_t>(o.duration * 1e9)) reason = "duration";
    if (launched) {
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) reason = describe_status(status);
      else if (w < 0 && errno == ECHILD) reason = "target exited";  // reaped while a heap scan held it
    } else if (r.target_gone()) {
      reason = "target exited";
    }
    if (tty && now - last_progress > 1'000'000'000ull) {
      auto s = r.stats();
      fmt::print(stderr, "\rgort record: {} events, {} lost, {}, {:.0f} s   ", s.events, s.lost, human_bytes(s.bytes),
                 (now - start) / 1e9);
      last_progress = now;
    }
  }
  if (tty) fmt::print(stderr, "\r\033[K");
  stop_perf(perf_pid);
  {
    size_t uprobes = 0;
    for (auto& s : r.probes()) uprobes += s.backend == core::ProbeBackend::kUprobe;
    // The kernel removes uprobe events one at a time (one per site and CPU), ~85 ms each
    // on these machines.
    if (uprobes > 16 && !o.quiet)
      fmt::print(stderr, "gort record: removing {} uprobes (the kernel takes a while)...\n", uprobes);
  }
  auto sum = r.finish(reason);
  if (!sum) return report_error(sum.error(), "gort record");
  auto s = r.stats();
  double secs = (sum->end_ns - r.header().start_ns) / 1e9;
  fmt::print(stderr, "gort record: {} events ({} lost{}) in {:.2f} s, {} ({:.1f} bytes/event) -> {}\n", sum->events,
             sum->lost, sum->filtered ? fmt::format(", {} filtered by --maps", sum->filtered) : "", secs,
             human_bytes(s.bytes), sum->events ? double(s.bytes) / sum->events : 0.0, o.rec.output);
  fmt::print(stderr, "gort record: ended: {}\n", reason);
  if (o.rec.dangling) {
    auto p = hs.pauses_ns;
    std::sort(p.begin(), p.end());
    if (p.empty())
      fmt::print(stderr, "gort record: --dangling: {} GC cycle{} completed, no heap scanned{}\n", hs.marks,
                 hs.marks == 1 ? "" : "s", hs.failed ? " (" + hs.last_error + ")" : "");
    else
      fmt::print(stderr, "gort record: --dangling: {} GC cycles, {} heap scans, pause median {:.1f} ms, max {:.1f} ms{}\n",
                 hs.marks, hs.scans, p[p.size() / 2] / 1e6, p.back() / 1e6,
                 hs.failed ? fmt::format(", {} skipped", hs.failed) : "");
  }
  if (sum->lost)
    fmt::print(stderr,
               "gort record: warning: {} {} events (ring buffer full): a report may miss overlaps; "
               "rerun with a bigger --ring-pages{}\n",
               o.rec.backend == core::record::RecordOptions::Backend::kInproc ? "the in-process ring dropped"
                                                                                : "the kernel dropped",
               sum->lost,
               o.rec.backend == core::record::RecordOptions::Backend::kInproc
                   ? " (the program wrote faster than gort reads: `lost` events mark where)"
                   : "");
  if (launched && !reason.starts_with("target")) fmt::print(stderr, "gort record: the program (pid {}) runs on\n", pid);
  fmt::print(stderr, "next: gort report {}{}\n", o.rec.output, o.perf_out.empty() ? "" : " --perf " + o.perf_out);
  return reason.starts_with("error") ? kExitFailure : kExitOk;
}

int run_record(const Args& args) {
  Options o;
  o.rec.output = "gort.trace";
  Args opts_part;
  auto dash = std::find(args.begin(), args.end(), "--");
  opts_part.assign(args.begin(), dash);
  if (dash != args.end()) o.command.assign(dash + 1, args.end());
  OptionParser p(opts_part);
  std::string tok, v;
  while (p.next(tok)) {
    auto need = [&](const char* what) {
      if (!p.value(v)) {
        usage_error(kRecordCommand, fmt::format("{} needs {}", tok, what));
        return false;
      }
      return true;
    };
    uint64_t n = 0;
    if (tok == "-p" || tok == "--pid") {
      if (!need("a process id")) return kExitUsage;
      if (!core::parse_u64(v, n) || n == 0 || n > INT32_MAX) return usage_error(kRecordCommand, fmt::format("bad pid '{}'", v));
      o.pid = static_cast<int>(n);
    } else if (tok == "-o" || tok == "--output") {
      if (!need("a file name")) return kExitUsage;
      o.rec.output = v;
    } else if (tok == "--duration") {
      if (!need("seconds")) return kExitUsage;
      try {
        size_t used = 0;
        o.duration = std::stod(v, &used);
        if (used != v.size() || o.duration <= 0) throw 0;
      } catch (...) {
        return usage_error(kRecordCommand, fmt::format("bad --duration '{}' (seconds, e.g. 10 or 0.5)", v));
      }
    } else if (tok == "--maps") {
      if (!need("map addresses")) return kExitUsage;
      for (auto& a : core::split_list(v)) {
        if (!core::parse_hex(a, n) || n == 0) return usage_error(kRecordCommand, fmt::format("bad map address '{}'", a));
        o.rec.maps.push_back(n);
      }
    } else if (tok == "--stack-depth") {
      if (!need("a number") || !core::parse_u64(v, n) || n > 127)
        return usage_error(kRecordCommand, "--stack-depth takes 0-127");
      o.rec.stack_depth = static_cast<uint32_t>(n);
    } else if (tok == "--hw") {
      if (!need("function names")) return kExitUsage;
      o.rec.hw_first = core::split_list(v);
    } else if (tok == "--max-hw") {
      if (!need("a number") || !core::parse_u64(v, n) || n > 4) return usage_error(kRecordCommand, "--max-hw takes 0-4");
      o.rec.max_hw = static_cast<int>(n);
    } else if (tok == "--ring-pages") {
      if (!need("a power of two") || !core::parse_u64(v, n) || n == 0 || (n & (n - 1)) || n > (1u << 16))
        return usage_error(kRecordCommand, "--ring-pages takes a power of two up to 65536");
      o.rec.ring_pages = static_cast<uint32_t>(n);
      o.ring_pages_given = true;
    } else if (tok == "--perf") {
      if (!need("a perf.data path")) return kExitUsage;
      o.perf_out = v;
    } else if (tok == "--backend") {
      if (!need("perf or inproc")) return kExitUsage;
      if (v == "perf") o.rec.backend = core::record::RecordOptions::Backend::kPerf;
      else if (v == "inproc") o.rec.backend = core::record::RecordOptions::Backend::kInproc;
      else return usage_error(kRecordCommand, fmt::format("unknown --backend '{}': perf or inproc", v));
    } else if (tok == "--sync") {
      o.rec.sync = true;
    } else if (tok == "--reads") {
      o.rec.reads = true;
    } else if (tok == "--dangling") {
      o.rec.dangling = true;
    } else if (tok == "--convert-hook") {
      if (!need("function names")) return kExitUsage;
      // Split at commas outside [...]: a generic instantiation has commas of its own.
      std::string cur;
      int depth = 0;
      for (char c : v + ",") {
        if (c == '[') depth++;
        if (c == ']' && depth > 0) depth--;
        if (c == ',' && depth == 0) {
          if (!cur.empty()) o.rec.convert_hooks.push_back(cur);
          cur.clear();
        } else {
          cur += c;
        }
      }
    } else if (tok == "-q" || tok == "--quiet") {
      o.quiet = true;
    } else if (tok == "-h" || tok == "--help") {
      fmt::print("{}\n", kUsage);
      return kExitOk;
    } else {
      return usage_error(kRecordCommand, fmt::format("unexpected '{}'", tok));
    }
  }
  if (o.pid == 0 && o.command.empty()) return usage_error(kRecordCommand, "nothing to record: give -p PID or -- CMD ARGS");
  if (o.pid != 0 && !o.command.empty()) return usage_error(kRecordCommand, "give either -p PID or -- CMD, not both");
  return record(o);
}

}  // namespace

const Command kRecordCommand{"record", "record every map write of a Go program, without stopping it", kUsage,
                             run_record};

}  // namespace gort::recorder
