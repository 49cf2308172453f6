// PerfProbeSet: hardware breakpoints / watchpoints and uprobes through perf_event_open.
//
// Kernel facts this rests on (../shared/reference/platform.md, measured on Linux 6.x;
// kernel/events/core.c, kernel/events/hw_breakpoint.c):
// - perf_event_open(pid = TID) covers that one thread; inherit = 1 adds threads it creates
//   later. A running Go program already has several threads, so every probe is opened on
//   every thread listed in /proc/PID/task (as `perf record -p` does), re-listed until no
//   new thread shows up.
// - kSample: per-CPU events (cpu >= 0) because a per-task inherited event cannot be
//   mmapped (EINVAL). One ring per CPU, owned by a dummy software event; every probe event
//   on that CPU is redirected to it with PERF_EVENT_IOC_SET_OUTPUT (same CPU, same clock).
//   Inherited children write into their parent's ring. Samples name their event through
//   PERF_SAMPLE_IDENTIFIER, which for an inherited child is the parent's id
//   (primary_event_id), so one PERF_EVENT_IOC_ID per opened fd maps samples to probes.
// - A task-bound breakpoint takes one of the four debug-register slots of that task on
//   each CPU it is opened for; the fifth gives ENOSPC (so do LLDB watchpoints, which are
//   perf breakpoints inside the kernel too).
// - Uprobe PMU events must not inherit on Go (the child re-reads config1, a pointer into
//   our address space: "newosproc errno=14"), so they are per-CPU with pid = -1 and
//   poll() drops samples of other processes.
// - Events with sample_period = 1 are never throttled (perf_swevent_event overflows
//   with throttle = 0), so counts are exact unless the ring fills (PERF_RECORD_LOST).
// - Closing every fd removes every probe; a killed gort leaves the target unharmed.

#include "core/probes/perf_probes.h"

#include "core/probes/perf_ring.h"
#include "core/util/scoped_fd.h"

#include <dirent.h>

#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

namespace gort::core {

const char* to_string(ProbeBackend b) {
  switch (b) {
    case ProbeBackend::kHwBreakpoint: return "hw";
    case ProbeBackend::kUprobe: return "uprobe";
    case ProbeBackend::kInproc: return "inproc";
    default: return "none";
  }
}

namespace {

// ---- Layer 1: thin syscall wrappers, -errno on failure. --------------------------------

int sys_perf_event_open(perf_event_attr& attr, int pid, int cpu, int group_fd) {
  long r = ::syscall(SYS_perf_event_open, &attr, pid, cpu, group_fd, PERF_FLAG_FD_CLOEXEC);
  return r < 0 ? -errno : static_cast<int>(r);
}

int sys_ioctl(int fd, unsigned long req, unsigned long arg) { return ::ioctl(fd, req, arg) < 0 ? -errno : 0; }

class ScopedMmap {
 public:
  ScopedMmap() = default;
  ScopedMmap(void* p, size_t len) : p_(p), len_(len) {}
  ScopedMmap(ScopedMmap&& o) noexcept : p_(std::exchange(o.p_, nullptr)), len_(o.len_) {}
  ScopedMmap& operator=(ScopedMmap&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
      len_ = o.len_;
    }
    return *this;
  }
  ~ScopedMmap() { reset(); }
  void reset() {
    if (p_) ::munmap(p_, len_);
    p_ = nullptr;
  }
  uint8_t* get() const { return static_cast<uint8_t*>(p_); }

 private:
  void* p_ = nullptr;
  size_t len_ = 0;
};

// ---- Helpers reading /proc and /sys. --------------------------------------------------

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// Online CPUs from /sys/devices/system/cpu/online ("0-3,5").
std::vector<int> online_cpus() {
  std::vector<int> cpus;
  std::stringstream ss(read_file("/sys/devices/system/cpu/online"));
  std::string part;
  while (std::getline(ss, part, ',')) {
    int a = 0, b = -1;
    if (std::sscanf(part.c_str(), "%d-%d", &a, &b) == 2)
      for (int c = a; c <= b; c++) cpus.push_back(c);
    else if (std::sscanf(part.c_str(), "%d", &a) == 1)
      cpus.push_back(a);
  }
  if (cpus.empty())
    for (long c = 0; c < ::sysconf(_SC_NPROCESSORS_ONLN); c++) cpus.push_back(static_cast<int>(c));
  return cpus;
}

std::vector<int> list_tids(int pid) {
  std::vector<int> tids;
  std::string dir = fmt::format("/proc/{}/task", pid);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return tids;
  while (dirent* e = ::readdir(d))
    if (int t = std::atoi(e->d_name); t > 0) tids.push_back(t);
  ::closedir(d);
  std::sort(tids.begin(), tids.end());
  return tids;
}

/// The uprobe PMU's dynamic type, or -errno.
int uprobe_pmu_type() {
  std::string s = read_file("/sys/bus/event_source/devices/uprobe/type");
  if (s.empty()) return -ENOENT;
  return std::atoi(s.c_str());
}

/// The file and file offset mapped at ADDR in PID (for a uprobe), from /proc/PID/maps.
Result<std::pair<std::string, uint64_t>> file_offset_at(int pid, RemoteAddr addr) {
  std::ifstream f(fmt::format("/proc/{}/maps", pid));
  std::string line;
  while (std::getline(f, line)) {
    unsigned long lo, hi, off;
    char perms[8];
    int path_at = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx %7s %lx %*s %*s %n", &lo, &hi, perms, &off, &path_at) < 4) continue;
    if (addr.value() < lo || addr.value() >= hi) continue;
    std::string path = path_at > 0 ? line.substr(path_at) : "";
    if (path.empty() || path[0] != '/')
      return make_error(ErrorKind::kBadInput, "{} in process {} is not in a file mapping ('{}')", addr, pid, line);
    if (path.ends_with(" (deleted)"))
      return make_error(ErrorKind::kBadInput, "{} lies in {}, which was deleted: no uprobe possible", addr, path);
    return std::make_pair(path, addr.value() - lo + off);
  }
  return make_error(ErrorKind::kBadInput, "{} is not mapped in process {}", addr, pid);
}

std::string paranoid_hint() {
  std::string v = read_file("/proc/sys/kernel/perf_event_paranoid");
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return fmt::format(
      "perf_event_open is not permitted (kernel.perf_event_paranoid = {}): run gort as root, give it "
      "CAP_PERFMON (and CAP_SYS_PTRACE), or lower /proc/sys/kernel/perf_event_paranoid",
      v.empty() ? "?" : v);
}

bool is_permission(int err) { return err == -EACCES || err == -EPERM; }

}  // namespace

// ---- The set. --------------------------------------------------------------------------

struct PerfProbeSet::Impl {
  struct Ring {
    int cpu = -1;
    ScopedFd owner;  // dummy event owning the buffer
    ScopedMmap map;
    uint64_t data_size = 0;
    perf_event_mmap_page* meta() const { return reinterpret_cast<perf_event_mmap_page*>(map.get()); }
  };

  int pid = 0;
  ProbeOptions opts;
  std::vector<ProbeStatus> status;
  std::vector<std::string> uprobe_paths;  // config1 points into these while opening
  std::vector<std::pair<std::string, ScopedFd>> file_locks;  // lock_uprobe_file; released after the probes
  std::vector<Ring> rings;                // kSample: one per online CPU
  std::vector<std::vector<ScopedFd>> fds;  // per probe
  std::unordered_map<uint64_t, size_t> id_to_probe;
  std::vector<uint8_t> scratch;
  std::vector<int> cpus;
  std::set<int> covered_tids;
  uint64_t lost = 0, foreign = 0;
  bool hup = false;
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));

  perf_event_attr base_attr() const {
    perf_event_attr a;
    std::memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.sample_period = 1;
    a.disabled = 1;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    a.use_clockid = 1;
    a.clockid = CLOCK_MONOTONIC;
    if (opts.mode == ProbeMode::kSample) {
      a.sample_type = probe_sample_type(opts.callchain_depth > 0);
      if (opts.callchain_depth > 0) {
        a.exclude_callchain_kernel = 1;
        a.sample_max_stack = static_cast<uint16_t>(std::min<uint32_t>(opts.callchain_depth, 127));
      }
      a.sample_regs_user = probe_regs_mask();
      a.sample_stack_user = std::max<uint32_t>(8, (opts.stack_bytes + 7) & ~7u);
      if (opts.wakeup_bytes) {
        a.watermark = 1;
        a.wakeup_watermark = opts.wakeup_bytes;
      } else {
        a.wakeup_events = 1;
      }
    }
    return a;
  }

  /// base_attr() with the probe's own stack size, if it asks for one.
  perf_event_attr probe_attr(const ProbeSpec& s) const {
    perf_event_attr a = base_attr();
    if (opts.mode == ProbeMode::kSample && s.stack_bytes)
      a.sample_stack_user = std::max<uint32_t>(8, (s.stack_bytes + 7) & ~7u);
    return a;
  }

  perf_event_attr hw_attr(const ProbeSpec& s) const {
    perf_event_attr a = probe_attr(s);
    a.type = PERF_TYPE_BREAKPOINT;
    a.bp_addr = s.addr.value();
    if (s.kind == ProbeKind::kExec) {
      a.bp_type = HW_BREAKPOINT_X;
      a.bp_len = sizeof(long);  // the kernel requires sizeof(long) for execute breakpoints
    } else {
      a.bp_type = HW_BREAKPOINT_W;
      a.bp_len = HW_BREAKPOINT_LEN_1;
    }
    a.inherit = 1;
    if (opts.mode == ProbeMode::kSigtrap) {
      a.inherit_thread = 1;
      a.remove_on_exec = 1;
      a.sigtrap = 1;
      a.sig_data = s.cookie;
    }
    return a;
  }

  /// Opens the ring-owning dummy event and its buffer on every CPU.
  Result<void> open_rings() {
    uint32_t pages = std::max<uint32_t>(1, opts.ring_pages);
    if (pages & (pages - 1))
      return make_error(ErrorKind::kBadInput, "ring_pages must be a power of two (got {})", opts.ring_pages);
    for (int cpu : cpus) {
      perf_event_attr a = base_attr();
      a.type = PERF_TYPE_SOFTWARE;
      a.config = PERF_COUNT_SW_DUMMY;
      a.sample_period = 0;
      a.disabled = 0;
      int fd = sys_perf_event_open(a, pid, cpu, -1);
      if (fd == -ESRCH) return make_error(ErrorKind::kIo, "process {} is gone", pid);
      if (is_permission(fd)) return make_error(ErrorKind::kIo, "{}", paranoid_hint());
      if (fd < 0)
        return make_error(ErrorKind::kIo, "perf_event_open (dummy ring owner, cpu {}) failed: {}", cpu,
                          std::strerror(-fd));
      Ring r;
      r.cpu = cpu;
      r.owner = ScopedFd(fd);
      size_t len = (1 + pages) * page;
      void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (p == MAP_FAILED)
        return make_error(ErrorKind::kIo, "mmap of a {}-page perf ring (cpu {}) failed: {} (lower ring_pages?)", pages,
                          cpu, std::strerror(errno));
      r.map = ScopedMmap(p, len);
      r.data_size = uint64_t(pages) * page;
      rings.push_back(std::move(r));
    }
    return {};
  }

  /// Redirects FD's samples to CPU's ring and records its id. 0 or -errno.
  int attach_to_ring(int fd, int cpu, size_t probe) {
    auto it = std::find_if(rings.begin(), rings.end(), [&](const Ring& r) { return r.cpu == cpu; });
    if (it == rings.end()) return -EINVAL;
    if (int e = sys_ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, static_cast<unsigned long>(it->owner.get())); e < 0) return e;
    uint64_t id = 0;
    if (int e = sys_ioctl(fd, PERF_EVENT_IOC_ID, reinterpret_cast<unsigned long>(&id)); e < 0) return e;
    id_to_probe[id] = probe;
    return 0;
  }

  /// Opens probe I as a hardware breakpoint on the threads TIDS. 0, or the first -errno that
  /// is not a vanished thread (the fds opened so far stay in OUT; the caller drops them).
  int open_hw(size_t i, const std::vector<int>& tids, std::vector<ScopedFd>& out) {
    perf_event_attr a = hw_attr(status[i].spec);
    for (int tid : tids) {
      if (opts.mode == ProbeMode::kSigtrap) {
        int fd = sys_perf_event_open(a, tid, -1, -1);
        if (fd == -ESRCH) continue;  // the thread exited since we listed it
        if (fd < 0) return fd;
        out.emplace_back(fd);
        continue;
      }
      for (int cpu : cpus) {
        int fd = sys_perf_event_open(a, tid, cpu, -1);
        if (fd == -ESRCH) break;
        if (fd < 0) return fd;
        out.emplace_back(fd);
        if (int e = attach_to_ring(fd, cpu, i); e < 0) return e;
      }
    }
    return 0;
  }

  /// One gort at a time places uprobes on a file. Measured on kernel 6.18: while one
  /// session's uprobes on a binary were being removed, another session's uprobes on the
  /// same offsets of the same binary stopped firing (5 of 452 hits recorded). So a
  /// session holds an flock on /run/gort/uprobes-DEV-INO.lock from its first uprobe on
  /// FILE until its probes are closed; a second one waits for it (up to 30 s), then fails
  /// with a message naming the holder.
  int lock_uprobe_file(const std::string& file, std::string& why) {
    struct stat st;
    if (::stat(file.c_str(), &st) != 0) return 0;  // opening the uprobe will say what is wrong
    std::string key = fmt::format("{:x}-{}", st.st_dev, st.st_ino);
    for (auto& [k, fd] : file_locks)
      if (k == key) return 0;
    std::string dir = "/run/gort";
    ::mkdir(dir.c_str(), 0755);
    std::string path = fmt::format("{}/uprobes-{}.lock", dir, key);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return 0;  // no lock possible (read-only /run): go on unguarded
    ScopedFd lock(fd);
    bool told = false;
    for (int waited_ms = 0; ::flock(fd, LOCK_EX | LOCK_NB) != 0; waited_ms += 100) {
      char buf[32] = {};
      ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
      std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      if (waited_ms >= 30000) {
        why = fmt::format("another gort (pid {}) has uprobes on {}: two sessions probing one binary at once lose "
                          "each other's hits (kernel uprobes); wait for it to end ({})",
                          holder, file, path);
        return -EBUSY;
      }
      if (!told) {
        fmt::print(stderr, "gort: waiting for another gort (pid {}) to remove its uprobes from {}...\n", holder, file);
        told = true;
      }
      ::usleep(100'000);
    }
    std::string me = fmt::format("{}\n", ::getpid());
    if (::ftruncate(fd, 0) == 0 && ::pwrite(fd, me.data(), me.size(), 0) < 0) {
    }
    file_locks.emplace_back(key, std::move(lock));
    return 0;
  }

  /// Opens probe I as per-CPU uprobes (pid = -1, never inherit: see the file comment).
  int open_uprobe(size_t i, std::vector<ScopedFd>& out, std::string& why) {
    int type = uprobe_pmu_type();
    if (type < 0) {
      why = "no uprobe PMU (/sys/bus/event_source/devices/uprobe/type missing: kernel without CONFIG_UPROBES?)";
      return type;
    }
    ProbeSpec& s = status[i].spec;
    if (s.file.empty()) {
      auto fo = file_offset_at(pid, s.addr);
      if (!fo) {
        why = fo.error().message;
        return -EINVAL;
      }
      s.file = fo->first;
      s.file_offset = fo->second;
    }
    if (int e = lock_uprobe_file(s.file, why); e < 0) return e;
    uprobe_paths.push_back(s.file);
    perf_event_attr a = probe_attr(s);
    a.type = static_cast<uint32_t>(type);
    a.config = 0;  // bit 0 = retprobe: never on Go (uretprobes crash it)
    a.config1 = reinterpret_cast<uint64_t>(uprobe_paths.back().c_str());
    a.config2 = s.file_offset;
    for (int cpu : cpus) {
      int fd = sys_perf_event_open(a, -1, cpu, -1);
      if (fd < 0) {
        why = fmt::format("uprobe at {}+{:#x} failed: {}", s.file, s.file_offset, std::strerror(-fd));
        return fd;
      }
      out.emplace_back(fd);
      if (int e = attach_to_ring(fd, cpu, i); e < 0) {
        why = fmt::format("redirecting the uprobe's samples failed: {}", std::strerror(-e));
        return e;
      }
    }
    return 0;
  }

  /// Places every probe. Fatal only for a gone target or no permission at all.
  Result<void> place_all() {
    std::vector<int> tids = list_tids(pid);
    if (tids.empty()) return make_error(ErrorKind::kIo, "process {} is gone (no /proc/{}/task)", pid, pid);
    covered_tids.insert(tids.begin(), tids.end());
    int hw_used = 0;
    int opened = 0;
    for (size_t i = 0; i < status.size(); i++) {
      ProbeStatus& st = status[i];
      std::vector<ScopedFd> mine;
      int err = -ENOSPC;
      std::string hw_why;
      if (hw_used < opts.max_hw) {
        err = open_hw(i, tids, mine);
        if (err == 0 && mine.empty()) return make_error(ErrorKind::kIo, "process {} is gone", pid);
        if (err == 0) {
          st.backend = ProbeBackend::kHwBreakpoint;
          hw_used++;
        } else if (is_permission(err) && opened == 0) {
          return make_error(ErrorKind::kIo, "{}", paranoid_hint());
        } else {
          hw_why = err == -ENOSPC ? "no free debug register (4 per thread; LLDB watchpoints use them too)"
                                  : fmt::format("hardware breakpoint at {} failed: {}", st.spec.addr,
                                                std::strerror(-err));
        }
      } else {
        hw_why = fmt::format("max_hw = {} debug registers already used", opts.max_hw);
      }
      if (err != 0) {
        mine.clear();  // drop a partial placement before any fallback
        if (st.spec.kind != ProbeKind::kExec) {
          st.error = hw_why + " (watchpoints need a debug register; uprobes cannot watch data)";
        } else if (opts.mode == ProbeMode::kSigtrap) {
          st.error = hw_why + "; uprobes cannot stop the thread in sigtrap mode: use a software breakpoint";
        } else if (!opts.allow_uprobes) {
          st.error = hw_why + " (uprobe fallback disabled)";
        } else {
          std::string why;
          if (open_uprobe(i, mine, why) == 0) {
            st.backend = ProbeBackend::kUprobe;
          } else {
            mine.clear();
            st.error = hw_why + "; " + why;
          }
        }
      }
      if (st.backend != ProbeBackend::kNone) opened++;
      fds.push_back(std::move(mine));
    }
    cover_new_threads();
    return {};
  }

  /// Threads created while we were opening events, by a thread not yet covered, have no
  /// inherited copy: open the hardware probes on them. (A thread created by an already
  /// covered thread inherits the event; opening it again would count twice. The window
  /// is the few microseconds of the loop above: see the report of this file's commit.)
  void cover_new_threads() {
    for (int round = 0; round < 5; round++) {
      std::vector<int> fresh;
      for (int t : list_tids(pid))
        if (!covered_tids.count(t)) fresh.push_back(t);
      if (fresh.empty()) return;
      covered_tids.insert(fresh.begin(), fresh.end());
      for (size_t i = 0; i < status.size(); i++) {
        if (status[i].backend != ProbeBackend::kHwBreakpoint) continue;
        std::vector<ScopedFd> more;
        open_hw(i, fresh, more);
        for (auto& f : more) {
          sys_ioctl(f.get(), PERF_EVENT_IOC_ENABLE, 0);
          fds[i].push_back(std::move(f));
        }
      }
    }
  }

  size_t drain(const std::function<void(const ProbeSample&)>& fn) {
    size_t n = 0;
    ProbeSample s;
    for (auto& r : rings) {
      perf_event_mmap_page* m = r.meta();
      uint64_t head = __atomic_load_n(&m->data_head, __ATOMIC_ACQUIRE);
      uint64_t tail = m->data_tail;
      if (head == tail) continue;
      const uint8_t* data = r.map.get() + m->data_offset;
      tail = drain_ring(data, r.data_size, tail, head, scratch, [&](uint32_t type, std::span<const uint8_t> rec) {
        if (type == PERF_RECORD_LOST && rec.size() >= 24) {
          uint64_t k;
          std::memcpy(&k, rec.data() + 16, 8);
          lost += k;
        } else if (type == PERF_RECORD_LOST_SAMPLES && rec.size() >= 16) {
          uint64_t k;
          std::memcpy(&k, rec.data() + 8, 8);
          lost += k;
        } else if (type == PERF_RECORD_SAMPLE) {
          uint64_t id = 0;
          if (!decode_probe_sample(rec, s, id, opts.callchain_depth > 0)) return;
          auto it = id_to_probe.find(id);
          if (it == id_to_probe.end()) return;
          if (static_cast<int>(s.pid) != pid) {  // a per-CPU uprobe hit by another process
            foreign++;
            return;
          }
          s.cookie = status[it->second].spec.cookie;
          n++;
          fn(s);
        }
      });
      __atomic_store_n(&m->data_tail, tail, __ATOMIC_RELEASE);
    }
    return n;
  }

  int for_each_fd(unsigned long req) {
    int first_err = 0;
    for (auto& v : fds)
      for (auto& f : v)
        if (int e = sys_ioctl(f.get(), req, 0); e < 0 && !first_err) first_err = e;
    return first_err;
  }
};

PerfProbeSet::PerfProbeSet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PerfProbeSet::~PerfProbeSet() { close(); }

Result<std::unique_ptr<PerfProbeSet>> PerfProbeSet::create(int pid, const std::vector<ProbeSpec>& probes,
                                                           const ProbeOptions& opts) {
  if (pid <= 0) return make_error(ErrorKind::kBadInput, "bad pid {}", pid);
  auto impl = std::make_unique<Impl>();
  impl->pid = pid;
  impl->opts = opts;
  impl->cpus = online_cpus();
  impl->uprobe_paths.reserve(probes.size());  // c_str() pointers must stay put while opening
  for (auto& p : probes) impl->status.push_back(ProbeStatus{p, ProbeBackend::kNone, ""});
  if (opts.mode == ProbeMode::kSample) GORT_TRY_VOID(impl->open_rings());
  GORT_TRY_VOID(impl->place_all());
  // Everything was opened disabled so that no sample is written before its redirection
  // to the ring; start them all now.
  if (int e = impl->for_each_fd(PERF_EVENT_IOC_ENABLE); e < 0 && e != -ESRCH)
    return make_error(ErrorKind::kIo, "enabling probes on process {} failed: {}", pid, std::strerror(-e));
  return std::unique_ptr<PerfProbeSet>(new PerfProbeSet(std::move(impl)));
}

const std::vector<ProbeStatus>& PerfProbeSet::status() const { return impl_->status; }

size_t PerfProbeSet::poll(const std::function<void(const ProbeSample&)>& fn, int timeout_ms) {
  if (!impl_ || impl_->rings.empty()) return 0;
  size_t n = impl_->drain(fn);
  if (n > 0 || timeout_ms == 0 || impl_->hup) return n;
  std::vector<pollfd> pfds;
  for (auto& r : impl_->rings) pfds.push_back(pollfd{r.owner.get(), POLLIN, 0});
  int k = ::poll(pfds.data(), pfds.size(), timeout_ms);
  if (k > 0)
    for (auto& p : pfds)
      if (p.revents & (POLLHUP | POLLERR)) impl_->hup = true;
  return impl_->drain(fn);
}

uint64_t PerfProbeSet::lost() const { return impl_ ? impl_->lost : 0; }
uint64_t PerfProbeSet::foreign() const { return impl_ ? impl_->foreign : 0; }

bool PerfProbeSet::exited() const {
  if (!impl_) return true;
  if (impl_->hup) return true;
  return ::kill(impl_->pid, 0) != 0 && errno == ESRCH;
}

Result<void> PerfProbeSet::set_enabled(bool on) {
  if (!impl_) return make_error(ErrorKind::kInternal, "probe set already closed");
  int e = impl_->for_each_fd(on ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE);
  if (e < 0) return make_error(ErrorKind::kIo, "{} probes failed: {}", on ? "enabling" : "disabling", std::strerror(-e));
  return {};
}

void PerfProbeSet::close_after_exit() {
  if (!impl_ || !exited()) return close();
  impl_->rings.clear();  // cheap: no uprobe behind them
  pid_t child = ::fork();
  if (child == 0) {
    // Async-signal-safe calls only. Let go of the caller's stdio first: whoever waits for
    // the caller's output must not wait for us.
    for (int fd = 0; fd <= 2; fd++) ::close(fd);
    for (auto& v : impl_->fds)
      for (auto& f : v) ::close(f.release());
    ::_exit(0);
  }
  if (child < 0) return close();  // no child: close them ourselves
  // Our copies: not the last reference to each event, so closing them is quick.
  impl_->fds.clear();
  // The child is not waited for: reparented to init when we exit.
}

void PerfProbeSet::close() {
  if (!impl_) return;
  // Removing a uprobe takes the kernel ~85 ms per event, serialized (closing from 64
  // threads at once was measured no faster): 130 uprobe events take 11 s.
  impl_->fds.clear();         // removes every breakpoint and uprobe (and their inherited copies)
  impl_->file_locks.clear();  // only now may another session probe the same files
  impl_->rings.clear();       // unmaps, then closes the ring owners
}

}  // namespace gort::core
