// In-process probes: install, read, remove. See inproc_probes.h and docs/inproc.md.

#include "core/inproc/inproc_probes.h"

#include "core/binary/go_binary.h"
#include "core/goruntime/map_event.h"
#include "core/target/process.h"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <x86intrin.h>

namespace gort::core::inproc {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kTrampolineMax = 1024;  // bytes reserved per trampoline (~560 used)
constexpr uint64_t kMapFixedNoreplace = 0x100000;
constexpr uint64_t kStallNs = 500'000'000;  // a reserved slot unpublished this long is given up

/// PID has exited (no such process, or a zombie whose memory is gone).
bool process_gone(int pid) {
  FILE* f = fopen(fmt::format("/proc/{}/stat", pid).c_str(), "r");
  if (!f) return true;
  char buf[512];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char* close_paren = strrchr(buf, ')');  // the state follows "(comm) "
  return !close_paren || close_paren[1] == 0 || close_paren[2] == 'Z' || close_paren[2] == 'X';
}

/// PID runs under a seccomp filter ("Seccomp: 2" in /proc/PID/status).
bool seccomp_filtered(int pid) { return status_field(fmt::format("/proc/{}/status", pid), "Seccomp") == "2"; }

uint64_t page_up(uint64_t x) { return (x + kPage - 1) & ~(kPage - 1); }

}  // namespace

bool in_patched_range(uint64_t pc, const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
  for (auto [lo, hi] : ranges)
    if (pc > lo && pc < hi) return true;  // at lo itself is fine: the JMP starts there
  return false;
}

Result<std::unique_ptr<InprocProbeSet>> InprocProbeSet::create(const StopWorld& stop, int pid, const GoBinary& bin,
                                                               int64_t slide, const std::vector<ProbeSpec>& probes,
                                                               const InprocOptions& opts) {
  std::unique_ptr<InprocProbeSet> s(new InprocProbeSet());
  s->stop_ = stop;
  s->pid_ = pid;
  s->slide_ = slide;
  GORT_TRY(auto dec, Decoder::create());
  // Plan every site first: nothing is touched for a site that cannot be patched safely.
  for (const ProbeSpec& spec : probes) {
    ProbeStatus st{spec, ProbeBackend::kNone, ""};
    auto refuse = [&](std::string why) {
      st.error = std::move(why);
      s->status_.push_back(st);
    };
    if (spec.kind != ProbeKind::kExec) {
      refuse("in-process probes are execution probes only");
      continue;
    }
    if (spec.regs.size() > static_cast<size_t>(ring::kRegWords)) {
      refuse(fmt::format("needs {} registers, a record holds {}", spec.regs.size(), ring::kRegWords));
      continue;
    }
    std::vector<uint64_t ThreadRegs::*> members;
    for (auto& name : spec.regs) members.push_back(reg_member(name));
    if (std::find(members.begin(), members.end(), nullptr) != members.end()) {
      refuse("a register the event needs is not a general register");
      continue;
    }
    if (spec.stack_bytes > 4096 && !spec.gather) {
      refuse(fmt::format("needs {} stack bytes, a record holds 2 words", spec.stack_bytes));
      continue;
    }
    RemoteAddr link = spec.addr - static_cast<uint64_t>(slide);
    auto f = bin.pclntab().find_func(link);
    if (!f) {
      refuse("not inside a Go function");
      continue;
    }
    auto code = bin.code(*f);
    if (!code) {
      refuse(code.error().message);
      continue;
    }
    auto patch = plan_patch(dec, *code, f->entry, link);
    if (!patch) {
      refuse(patch.error().message);
      continue;
    }
    bool dup = false;
    for (auto& other : s->sites_)
      if (other.patch.start < patch->start + patch->length && patch->start < other.patch.start + other.patch.length)
        dup = true;
    if (dup) {
      refuse("overlaps another in-process probe's patched bytes");
      continue;
    }
    st.backend = ProbeBackend::kInproc;
    s->status_.push_back(st);
    uint64_t ThreadRegs::*gather_base = nullptr;
    if (spec.gather) {
      gather_base = reg_member(spec.gather->base_reg);
      if (!gather_base || std::find(members.begin(), members.end(), gather_base) == members.end()) {
        s->status_.back().backend = ProbeBackend::kNone;
        s->status_.back().error = "gathers from a register it does not record";
        continue;
      }
    }
    s->sites_.push_back({std::move(*patch), 0, spec.cookie, spec.stack_bytes, std::move(members), spec.regs,
                         spec.gather, gather_base, spec.on_stack_reg});
  }
  if (s->sites_.empty()) return s;  // nothing to install: every probe falls back

  if (seccomp_filtered(pid))
    return make_error(ErrorKind::kUnsupported,
                      "process {} runs under a seccomp filter: the system calls gort would make in it (mmap, openat) "
                      "could be refused or kill it; use --backend perf",
                      pid);
  s->calibrate();  // before the program is stopped: it takes 20 ms
  GORT_TRY(auto syscall_link, find_syscall_insn(bin, dec));
  uint64_t syscall_at = syscall_link.value() + static_cast<uint64_t>(slide);
  s->syscall_at_ = syscall_at;
  s->slots_ = 1;
  while (s->slots_ * 2 * ring::kRecord <= opts.ring_bytes) s->slots_ *= 2;
  s->slots_ = std::max<uint64_t>(s->slots_, 64);
  uint64_t ring_size = ring::kDataOffset + s->slots_ * ring::kRecord;
  s->code_size_ = page_up(s->sites_.size() * kTrampolineMax);

  GORT_TRY(auto mem, ProcMemory::open(pid));

  auto t0 = monotonic_ns();
  bool quiet = false;
  GORT_TRY(auto world, stop_quiet(stop, quiet));
  if (!quiet)
    return make_error(ErrorKind::kIo, "a thread of process {} is inside a signal handler (still after 50 tries); "
                      "let the program run a moment and try again", pid);
  const World::Thread* injector = nullptr;
  for (auto& t : world->stopped_threads())
    if (t.usable_for_syscalls) {
      injector = &t;
      break;
    }
  if (!injector)
    return make_error(ErrorKind::kIo, "no thread of process {} can run a system call for gort (each one is stopped "
                      "with a signal to take); let the program run a moment and try again", pid);
  int itid = injector->tid;
  auto sys = [&](uint64_t nr, std::array<uint64_t, 6> a) { return world->syscall(itid, syscall_at, nr, a); };

  // The code page within a rel32 jump of the text: just below it, else just above.
  uint64_t text_lo = bin.pclntab().text_start().value() + static_cast<uint64_t>(slide);
  uint64_t text_hi = bin.pclntab().text_end().value() + static_cast<uint64_t>(slide);
  int64_t code = -1;
  for (int i = 1; i <= 64 && code < 0; i++) {
    uint64_t below = (text_lo & ~(kPage - 1)) - static_cast<uint64_t>(i) * (s->code_size_ + kPage * 16);
    uint64_t above = page_up(text_hi) + static_cast<uint64_t>(i) * 0x100000;
    for (uint64_t hint : {below, above}) {
      GORT_TRY(int64_t r, sys(SYS_mmap, {hint, s->code_size_, PROT_READ | PROT_EXEC,
                                         MAP_PRIVATE | MAP_ANONYMOUS | kMapFixedNoreplace, static_cast<uint64_t>(-1), 0}));
      if (r >= 0 && static_cast<uint64_t>(r) == hint) {
        code = r;
        break;
      }
      if (r >= 0) GORT_TRY_VOID(sys(SYS_munmap, {static_cast<uint64_t>(r), s->code_size_, 0, 0, 0, 0}));
    }
  }
  if (code < 0) return make_error(ErrorKind::kIo, "no room for gort's code page within 2 GB of the program's text");
  s->code_ = static_cast<uint64_t>(code);
  // The ring is shared memory (a memfd both processes map): what the program wrote before
  // it exited can still be read, and reading costs no system call.
  int mfd = static_cast<int>(::syscall(SYS_memfd_create, "gort-inproc-ring", 1u /*MFD_CLOEXEC*/));
  if (mfd < 0) return make_error(ErrorKind::kIo, "memfd_create: {}", std::strerror(errno));
  struct CloseFd {
    int fd;
    ~CloseFd() { close(fd); }
  } close_mfd{mfd};
  if (ftruncate(mfd, static_cast<off_t>(ring_size)) != 0)
    return make_error(ErrorKind::kIo, "cannot size a {} MiB ring: {}", ring_size >> 20, std::strerror(errno));
  void* local = mmap(nullptr, ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, mfd, 0);
  if (local == MAP_FAILED) return make_error(ErrorKind::kIo, "cannot map the ring: {}", std::strerror(errno));
  s->local_ = static_cast<uint8_t*>(local);
  s->local_size_ = ring_size;
  // The program opens it by path: written at the end of the (not yet filled) code page.
  std::string path = fmt::format("/proc/{}/fd/{}", getpid(), mfd);
  uint64_t path_at = s->code_ + s->code_size_ - 256;
  GORT_TRY_VOID(world->write(path_at, Bytes(reinterpret_cast<const uint8_t*>(path.c_str()), path.size() + 1)));
  GORT_TRY(int64_t tfd, sys(SYS_openat, {static_cast<uint64_t>(AT_FDCWD), path_at, O_RDWR | O_CLOEXEC, 0, 0, 0}));
  if (tfd < 0)
    return make_error(ErrorKind::kIo, "the program could not open gort's ring ({}): {} (is it in another PID namespace?)",
                      path, std::strerror(static_cast<int>(-tfd)));
  GORT_TRY(int64_t ring, sys(SYS_mmap, {0, ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                                        static_cast<uint64_t>(tfd), 0}));
  GORT_TRY_VOID(sys(SYS_close, {static_cast<uint64_t>(tfd), 0, 0, 0, 0, 0}));
  if (ring < 0)
    return make_error(ErrorKind::kIo, "the program could not map a {} MiB ring: {}", ring_size >> 20,
                      std::strerror(static_cast<int>(-ring)));
  s->ring_ = static_cast<uint64_t>(ring);
  std::memcpy(s->local_ + ring::kMagic, &ring::kMagicValue, 8);
  std::memcpy(s->local_ + ring::kSlots, &s->slots_, 8);

  const RuntimeLayouts& L = bin.layouts();
  std::vector<uint8_t> page(s->code_size_, 0xcc);
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (size_t i = 0; i < s->sites_.size(); i++) {
    Site& site = s->sites_[i];
    site.trampoline = s->code_ + i * kTrampolineMax;
    TrampolineParams p;
    p.ring = s->ring_;
    p.slots = s->slots_;
    p.cookie = site.cookie;
    p.slide = slide;
    if (L.g_m != kAbsentField && L.m_procid != kAbsentField) p.g_m = L.g_m, p.m_procid = L.m_procid;
    p.g_stack_lo = L.g_stack_lo;
    p.g_stack_hi = L.g_stack_hi;
    p.chain = opts.chain;
    p.stack_word = ring::second_stack_word(site.stack_bytes);
    if (site.gather) {
      p.gather_base = site.gather->base_reg;
      p.gather_stride = site.gather->stride;
      p.gather_offset = site.gather->offset;
    }
    p.regs = site.reg_names;
    if (!site.on_stack_reg.empty()) p.on_stack_reg = site.on_stack_reg;
    GORT_TRY(auto t, build_trampoline(site.patch, p, site.trampoline));
    if (t.size() > kTrampolineMax) return make_error(ErrorKind::kInternal, "trampoline of {} bytes", t.size());
    std::copy(t.begin(), t.end(), page.begin() + static_cast<std::ptrdiff_t>(i * kTrampolineMax));
    uint64_t at = site.patch.start.value() + static_cast<uint64_t>(slide);
    ranges.push_back({at, at + site.patch.length});
  }
  GORT_TRY_VOID(world->write(s->code_, page));
  // No thread may be stopped between a patched site's first and last byte.
  for (auto& t : world->stopped_threads())
    if (in_patched_range(t.regs.rip, ranges)) GORT_TRY_VOID(world->step_out(t.tid, ranges));
  // Patch, checking each site still holds the bytes planned from the file (another tool's
  // breakpoint would show here).
  for (auto& site : s->sites_) {
    uint64_t at = site.patch.start.value() + static_cast<uint64_t>(slide);
    std::vector<uint8_t> now(site.patch.length);
    if (!mem->read(RemoteAddr(at), now) || now != site.patch.original) {
      for (auto& st : s->status_)
        if (st.spec.cookie == site.cookie && st.backend == ProbeBackend::kInproc) {
          st.backend = ProbeBackend::kNone;
          st.error = "the code at the site differs from the file (another breakpoint there?)";
        }
      site.trampoline = 0;
      continue;
    }
    GORT_TRY(auto jmp, jump_bytes(site.patch, slide, site.trampoline));
    GORT_TRY_VOID(world->write(at, jmp));
  }
  std::erase_if(s->sites_, [](const Site& x) { return x.trampoline == 0; });
  for (size_t i = 0; i < s->sites_.size(); i++) {
    uint32_t c = s->sites_[i].cookie;
    if (c >= s->site_of_cookie_.size()) s->site_of_cookie_.resize(c + 1, UINT32_MAX);
    s->site_of_cookie_[c] = static_cast<uint32_t>(i);
  }
  world.reset();  // the program runs again
  s->install_ns_ = monotonic_ns() - t0;
  return s;
}

InprocProbeSet::~InprocProbeSet() {
  if (!removed_) (void)remove();
  if (local_) munmap(local_, local_size_);
}

void InprocProbeSet::calibrate() {
  // Two (TSC, CLOCK_MONOTONIC) pairs 20 ms apart, each taken between two TSC reads.
  auto pair = [](uint64_t& tsc, uint64_t& ns) {
    unsigned aux;
    uint64_t a = __rdtscp(&aux);
    ns = monotonic_ns();
    uint64_t b = __rdtscp(&aux);
    tsc = a + (b - a) / 2;
  };
  pair(tsc0_, ns0_);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  pair(calib_tsc_, calib_ns_);
  if (calib_tsc_ > tsc0_) ns_per_tsc_ = static_cast<double>(calib_ns_ - ns0_) / static_cast<double>(calib_tsc_ - tsc0_);
}

uint64_t InprocProbeSet::tsc_to_ns(uint64_t tsc) const {
  auto d = static_cast<double>(static_cast<int64_t>(tsc - tsc0_)) * ns_per_tsc_;
  return static_cast<uint64_t>(static_cast<int64_t>(ns0_) + static_cast<int64_t>(d));
}

size_t InprocProbeSet::poll(const std::function<void(const ProbeSample&)>& fn, int timeout_ms, size_t max_records) {
  if (sites_.empty()) {
    if (timeout_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    return 0;
  }
  size_t n = 0;
  auto deadline = monotonic_ns() + static_cast<uint64_t>(std::max(timeout_ms, 0)) * 1'000'000;
  auto* head_p = reinterpret_cast<std::atomic<uint64_t>*>(local_ + ring::kHead);
  auto* tail_p = reinterpret_cast<std::atomic<uint64_t>*>(local_ + ring::kTail);
  auto* drops_p = reinterpret_cast<std::atomic<uint64_t>*>(local_ + ring::kDrops);
  for (;;) {
    // head is read once per pass: the producers' CMPXCHG on that line is what a reader
    // polling it per record would slow down.
    uint64_t head = head_p->load(std::memory_order_acquire);
    drops_ = drops_p->load(std::memory_order_relaxed);
    if (head == tail_) {
      if (!exited_ && kill(pid_, 0) != 0 && errno == ESRCH) exited_ = true;
      if (n > 0 || exited_ || monotonic_ns() >= deadline) return n;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      continue;
    }
    bool stalled = false;
    while (tail_ != head && n < max_records) {
      const uint8_t* r = local_ + ring::kDataOffset + (tail_ & (slots_ - 1)) * ring::kRecord;
      uint64_t seq = reinterpret_cast<const std::atomic<uint64_t>*>(r + ring::kSeq)->load(std::memory_order_acquire);
      if (seq != tail_ + 1) {
        stalled = true;
        break;
      }
      emit(r, fn);
      n++;
      tail_++;
      if ((tail_ & 1023) == 0) tail_p->store(tail_, std::memory_order_release);
    }
    tail_p->store(tail_, std::memory_order_release);
    if (!stalled) {
      stall_since_ns_ = 0;
      if (n >= max_records) return n;
      continue;
    }
    // The oldest slot is reserved but not published: its thread is between the two, or
    // died there (or the program did: a fatal error kills threads mid-record). Wait, then
    // give up on it; at once when the program is gone (a zombie counts: nothing will run).
    uint64_t now = monotonic_ns();
    if (stall_since_ns_ == 0) stall_since_ns_ = now;
    if (!exited_ && process_gone(pid_)) exited_ = true;
    if (exited_ || now - stall_since_ns_ > kStallNs) {
      tail_++;
      abandoned_++;
      pending_loss_ = true;
      stall_since_ns_ = 0;
      tail_p->store(tail_, std::memory_order_release);
      continue;
    }
    if (n > 0 || now >= deadline) return n;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void InprocProbeSet::emit(const uint8_t* r, const std::function<void(const ProbeSample&)>& fn) {
  auto u64 = [&](int32_t off) {
    uint64_t v;
    std::memcpy(&v, r + off, 8);
    return v;
  };
  uint32_t cookie, cpu;
  std::memcpy(&cookie, r + ring::kCookie, 4);
  std::memcpy(&cpu, r + ring::kCpu, 4);
  ProbeSample& smp = sample_;
  smp.on_stack.reset();
  bool on_stack = cookie & 0x80000000u;
  cookie &= 0x7fffffffu;
  smp.cookie = cookie;
  smp.time_ns = tsc_to_ns(u64(ring::kTsc));
  smp.pid = static_cast<uint32_t>(pid_);
  uint32_t tid, drops_seen;
  std::memcpy(&tid, r + ring::kTid, 4);
  std::memcpy(&drops_seen, r + ring::kDropsSeen, 4);
  smp.tid = tid;
  smp.after_loss = drops_seen != drops_seen_ || pending_loss_;
  pending_loss_ = false;
  drops_seen_ = drops_seen;
  smp.cpu = cpu & 0xfff;
  ThreadRegs& g = smp.regs;
  g = ThreadRegs{};
  g.tid = smp.tid;
  uint32_t stack_bytes = 8;
  if (cookie < site_of_cookie_.size() && site_of_cookie_[cookie] != UINT32_MAX) {
    const Site& st = sites_[site_of_cookie_[cookie]];
    g.rip = st.patch.site.value() + static_cast<uint64_t>(slide_);
    stack_bytes = std::max<uint32_t>(st.stack_bytes, 8);
    if (!st.on_stack_reg.empty()) smp.on_stack = on_stack;
    for (size_t i = 0; i < st.regs.size(); i++) g.*st.regs[i] = u64(ring::kRegs + static_cast<int32_t>(8 * i));
  }
  smp.callchain.clear();
  smp.callchain.push_back(g.rip);
  const Site* site = cookie < site_of_cookie_.size() && site_of_cookie_[cookie] != UINT32_MAX
                         ? &sites_[site_of_cookie_[cookie]] : nullptr;
  if (site && site->gather) {
    // [rsp], then the gathered words where a read of the stack bytes expects them.
    const ProbeSpec::Gather& G = *site->gather;
    g.rsp = u64(ring::kStack + 8);
    uint64_t base = g.*site->gather_base + G.offset;
    smp.stack.assign(8, 0);
    std::memcpy(smp.stack.data(), r + ring::kStack, 8);
    if (base >= g.rsp && base - g.rsp < (1u << 16)) {
      uint64_t first = base - g.rsp;
      uint64_t read = std::min<uint64_t>(u64(ring::kChain + 8 * ring::kGatherWords), ring::kGatherWords);
      for (uint64_t k = 0; k < read && k < G.count; k++) {
        uint64_t v = u64(ring::kChain + static_cast<int32_t>(8 * k));
        uint64_t at = first + k * G.stride;
        if (smp.stack.size() < at + 8) smp.stack.resize(at + 8, 0);
        std::memcpy(smp.stack.data() + at, &v, 8);
      }
    }
    fn(smp);
    return;
  }
  // [rsp] and the one other word the site needs, at its offset (TrampolineParams::stack_word).
  uint32_t word = ring::second_stack_word(stack_bytes);
  smp.stack.assign(std::max<uint32_t>(stack_bytes, 16), 0);
  std::memcpy(smp.stack.data(), r + ring::kStack, 8);
  std::memcpy(smp.stack.data() + word, r + ring::kStack + 8, 8);
  for (int k = 0; k < ring::kChainWords; k++) {
    uint64_t pc = u64(ring::kChain + 8 * k);
    if (pc == 0) break;
    smp.callchain.push_back(pc);
  }
  fn(smp);
}

Result<void> InprocProbeSet::remove() {
  if (removed_ || sites_.empty()) {
    removed_ = true;
    return {};
  }
  removed_ = true;
  if (exited_) return {};
  auto t0 = monotonic_ns();
  bool quiet = false;
  auto world = stop_quiet(stop_, quiet);
  if (!world) {
    exited_ = true;
    if (process_gone(pid_)) return {};  // nothing left to restore
    return make_error(world.error().kind, "restoring the patched code: {}", world.error().message);
  }
  for (auto& site : sites_) {
    uint64_t at = site.patch.start.value() + static_cast<uint64_t>(slide_);
    GORT_TRY_VOID((*world)->write(at, site.patch.original));
  }
  // Unmap the trampolines and the ring only when nothing can run them again: no thread in
  // a signal handler (whose signal frame could hold a trampoline PC), and the threads
  // stopped inside a trampoline stepped out of it (into the restored code).
  if (!quiet) kept_why_ = "a thread stayed inside a signal handler, whose frame may return into a trampoline";
  if (quiet) {
    std::vector<std::pair<uint64_t, uint64_t>> page = {{code_ - 1, code_ + code_size_}};
    for (auto& t : (*world)->stopped_threads()) {
      if (t.regs.rip < code_ || t.regs.rip >= code_ + code_size_) continue;
      if (auto st = (*world)->step_out(t.tid, page); !st && kept_why_.empty())
        kept_why_ = fmt::format("thread {} was not stepped out of a trampoline: {}", t.tid, st.error().message);
    }
    const World::Thread* injector = nullptr;
    for (auto& t : (*world)->stopped_threads())
      if (t.usable_for_syscalls && !injector) injector = &t;  // the first, as create() takes
    if (!injector && kept_why_.empty()) kept_why_ = "no thread could run munmap for gort";
    if (kept_why_.empty()) {
      auto unmap = [&](uint64_t addr, uint64_t len) {
        auto r = (*world)->syscall(injector->tid, syscall_at_, SYS_munmap, {addr, len, 0, 0, 0, 0});
        if (!r) kept_why_ = fmt::format("munmap: {}", r.error().message);
        else if (*r != 0) kept_why_ = fmt::format("munmap returned {}", *r);
        return r && *r == 0;
      };
      unmapped_ = unmap(code_, code_size_) && unmap(ring_, local_size_);
    }
  }
  world->reset();
  remove_ns_ = monotonic_ns() - t0;
  return {};
}

Result<std::unique_ptr<World>> InprocProbeSet::stop_quiet(const StopWorld& stop, bool& quiet) {
  // A thread inside a signal handler has its real PC in a signal frame, which gort cannot
  // see: let it finish and stop again.
  for (int attempt = 0;; attempt++) {
    GORT_TRY(auto world, stop());
    quiet = true;
    for (auto& t : world->stopped_threads()) quiet &= !t.in_signal_handler;
    if (quiet || attempt == 50) return world;
    world.reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace gort::core::inproc
