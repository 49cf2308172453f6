// Decoding, printing and logging of break/watch hits, and the sampling perf sets of
// `--continue` (hits.h). Moved from the LLDB plugin's ProbeSession so the GDB extension
// shares it. Facts it rests on (../shared/reference/platform.md): per-CPU sample rings
// are drained by our own thread; closing the fds removes the probes.

#include "core/front/hits.h"

#include "core/front/probe_select.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace gort::core::front {
namespace {

// Sample stack bytes first, then the live process: a watch hit's caller ([RBP+8]) is read
// from the sample, so it survives samples drained after the process exited.
class SampleMemory final : public Memory {
 public:
  SampleMemory(uint64_t rsp, const std::vector<uint8_t>& stack, const Memory& live)
      : rsp_(rsp), stack_(stack), live_(live) {}
  Result<void> read(RemoteAddr addr, std::span<uint8_t> out) const override {
    if (addr.value() >= rsp_ && addr.value() + out.size() <= rsp_ + stack_.size()) {
      std::memcpy(out.data(), stack_.data() + (addr.value() - rsp_), out.size());
      return {};
    }
    return live_.read(addr, out);
  }

 private:
  uint64_t rsp_;
  const std::vector<uint8_t>& stack_;
  const Memory& live_;
};

}  // namespace

HitReporter::~HitReporter() {
  stop_poller();
  std::lock_guard lock(mu_);
  sets_.clear();
  if (log_) fclose(log_);
  log_ = nullptr;
}

Result<void> HitReporter::load(const std::string& path) {
  if (bin_ && path == exe_) return {};
  GORT_TRY(auto bin, GoBinary::open(path));
  GORT_TRY(auto plan, build_probe_plan(*bin));
  GORT_TRY(auto code, CallerCode::create(CallerCode::from_binary(*bin)));
  caller_code_ = std::move(code);
  bin_ = std::move(bin);
  plan_ = std::move(plan);
  exe_ = path;
  return {};
}

Result<void> HitReporter::open_log(const std::string& path) {
  FILE* f = fopen(path.c_str(), "w");
  if (!f) return make_error(ErrorKind::kIo, "cannot open log file {}: {}", path, strerror(errno));
  std::lock_guard lock(mu_);
  if (log_) fclose(log_);
  log_ = f;
  return {};
}

void HitReporter::write_line(const std::string& line) {
  fprintf(stdout, "%s\n", line.c_str());
  fflush(stdout);
}

void HitReporter::say(const std::string& line) {
  std::lock_guard lock(out_mu_);
  write_line(line);
}

// One hit: its text line to the debugger's output (when PRINT) and its JSON line to the log.
template <typename Event>
void HitReporter::write_event(const Event& e, bool print) {
  std::string json;
  if (log_) json = to_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (print) say("gort: " + to_text(e));
  std::lock_guard lock(mu_);
  if (log_) {
    fprintf(log_, "%s\n", json.c_str());
    if (!poller_.joinable()) fflush(log_);
  }
}

void HitReporter::emit(const WbEvent& e, bool print) { write_event(e, print); }

bool HitReporter::emit(const MapWriteEvent& e, bool print) {
  if (map_filter && e.map.value() != *map_filter) return false;
  write_event(e, print);
  return true;
}

bool HitReporter::report_wb(const Probe& probe, const ThreadRegs& regs, const std::vector<uint8_t>* stack,
                            DecodeContext ctx, uint64_t time_ns, bool print) {
  if (probe.role != ProbeRole::kWriteBarrier || !caller_code_) return false;
  uint64_t ret = 0;
  std::optional<SampleMemory> sm;
  if (stack) {
    // Stack spills the caller reloads after the CALL are read from the sample: by the
    // time the ring is drained the goroutine has moved on.
    if (stack->size() >= 8) std::memcpy(&ret, stack->data(), 8);
    sm.emplace(regs.rsp, *stack, *ctx.mem);
    ctx.mem = &*sm;
  }
  auto e = decode_wb_hit(probe, regs, ret, ctx, *caller_code_, time_ns);
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

bool HitReporter::report_entry_hit(const Probe& probe, const ThreadRegs& regs, const DecodeContext& ctx,
                                   uint64_t time_ns, bool print) {
  if (report_wb(probe, regs, nullptr, ctx, time_ns, print)) return true;
  auto e = decode_map_write(probe, regs, 0, ctx, time_ns);
  if (!e) {
    say(fmt::format("gort: {}: {}", probe.function, e.error().message));
    return true;
  }
  return emit(*e, print);
}

bool HitReporter::report_watch_hit(const FlagWatch& w, const ThreadRegs& regs, const DecodeContext& ctx,
                                   uint64_t time_ns, bool print) {
  auto flag = ctx.mem->read_u8(w.flag);
  uint8_t mask = bin_->map_impl() == MapImpl::kHmap ? bin_->layouts().hmap_writing_bit : 0xff;
  auto e = decode_watch_hit(w.map, regs, flag ? *flag : 0, mask, ctx, time_ns);
  if (!e) return false;
  std::string op = watch_op(plan_, regs.rip - static_cast<uint64_t>(ctx.slide));
  if (!op.empty()) e->op = op;
  return emit(*e, print);
}

std::optional<DecodeContext> HitReporter::context(int pid, int64_t slide) {
  std::lock_guard lock(mu_);
  if (!bin_) return std::nullopt;
  if (!mem_ || mem_->pid() != pid) {
    auto m = ProcMemory::open(pid);
    if (!m) return std::nullopt;
    mem_ = std::move(m).value();
  }
  return DecodeContext::of(*bin_, *mem_, slide);
}

Result<std::vector<ProbeStatus>> HitReporter::add_perf(int pid, int64_t slide, std::vector<Probe> probes,
                                                       ProbeMode mode) {
  std::vector<ProbeSpec> specs;
  for (size_t i = 0; i < probes.size(); ++i) {
    ProbeSpec s;
    s.addr = probes[i].entry + slide;
    s.kind = ProbeKind::kExec;
    s.cookie = static_cast<uint32_t>(i);
    specs.push_back(s);
  }
  ProbeOptions opts;
  opts.mode = mode;
  opts.allow_uprobes = false;  // where the debug registers run out, the debugger's breakpoints take over
  // A write-barrier caller may reload the new value from its frame after the CALL
  // (0x38(SP) in main.putPointerValue): sample enough of the stack to cover small frames.
  bool wb = std::any_of(probes.begin(), probes.end(), [](auto& p) { return p.role == ProbeRole::kWriteBarrier; });
  opts.stack_bytes = wb ? 512 : 16;
  opts.ring_pages = 256;  // ~4000 samples per CPU between two drains
  GORT_TRY(auto set, PerfProbeSet::create(pid, specs, opts));
  std::vector<ProbeStatus> st = set->status();
  {
    std::lock_guard lock(mu_);
    sets_.push_back(PerfSet{std::move(set), mode, std::move(probes), std::nullopt, pid, slide});
  }
  if (mode == ProbeMode::kSample) start_poller();
  return st;
}

Result<std::vector<ProbeStatus>> HitReporter::add_perf_watch(int pid, int64_t slide, const FlagWatch& w,
                                                             ProbeMode mode) {
  ProbeSpec s;
  s.addr = w.flag;
  s.kind = ProbeKind::kWrite1;
  ProbeOptions opts;
  opts.mode = mode;
  opts.stack_bytes = 1024;  // mid-function: covers [RBP+8] of the runtime function's frame
  opts.allow_uprobes = false;
  GORT_TRY(auto set, PerfProbeSet::create(pid, {s}, opts));
  std::vector<ProbeStatus> st = set->status();
  {
    std::lock_guard lock(mu_);
    sets_.push_back(PerfSet{std::move(set), mode, {}, w, pid, slide});
  }
  if (mode == ProbeMode::kSample) start_poller();
  return st;
}

const Probe* HitReporter::sigtrap_probe_at(uint64_t rip) {
  std::lock_guard lock(mu_);
  for (auto& ps : sets_) {
    if (ps.mode != ProbeMode::kSigtrap) continue;
    for (auto& p : ps.probes)
      if (p.entry.value() + static_cast<uint64_t>(ps.slide) == rip) return &p;
  }
  return nullptr;
}

std::pair<size_t, uint64_t> HitReporter::close_sets() {
  stop_poller();
  uint64_t lost_samples = lost();
  std::lock_guard lock(mu_);
  size_t n = sets_.size();
  sets_.clear();  // closes every perf fd: removes the probes
  if (log_) fclose(log_);
  log_ = nullptr;
  return {n, lost_samples};
}

bool HitReporter::has_sets() {
  std::lock_guard lock(mu_);
  return !sets_.empty();
}

void HitReporter::start_poller() {
  if (poller_.joinable()) return;
  stop_ = false;
  poller_ = std::thread([this] {
    while (!stop_) {
      size_t n = drain();
      {
        std::lock_guard lock(mu_);
        if (log_) fflush(log_);
      }
      if (n == 0) wait_for_samples(2);
    }
  });
}

void HitReporter::stop_poller() {
  if (!poller_.joinable()) return;
  stop_ = true;
  poller_.join();
  drain();
  std::lock_guard lock(mu_);
  if (log_) fflush(log_);
}

// Sleeps until the first sampling set has a sample (and handles those), at most TIMEOUT_MS.
// Each sample wakes the poll (wakeup after every sample), so a hit is decoded while its
// key and goroutine can still be read, not up to a sleep later: a hit drained after the
// program exited cannot read them (MapWriteEvent::undecoded says so).
void HitReporter::wait_for_samples(int timeout_ms) {
  PerfProbeSet* set = nullptr;
  size_t index = 0;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < sets_.size() && !set; ++i)
      if (sets_[i].mode == ProbeMode::kSample) set = sets_[index = i].set.get();
  }
  // After the target exited poll() returns at once: sleep then, not spin.
  if (set && !set->exited()) set->poll([&](const ProbeSample& s) { on_sample(index, s); }, timeout_ms);
  else std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
}

size_t HitReporter::drain() {
  size_t total = 0;
  for (size_t i = 0;; ++i) {
    PerfProbeSet* set;
    {
      std::lock_guard lock(mu_);
      if (i >= sets_.size()) break;
      if (sets_[i].mode != ProbeMode::kSample) continue;
      set = sets_[i].set.get();
    }
    while (size_t n = set->poll([&](const ProbeSample& s) { on_sample(i, s); }, 0)) total += n;
  }
  return total;
}

uint64_t HitReporter::lost() {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  for (auto& ps : sets_) n += ps.set->lost();
  return n;
}

void HitReporter::on_sample(size_t i, const ProbeSample& s) {
  const PerfSet* ps;
  {
    std::lock_guard lock(mu_);
    ps = &sets_[i];
  }
  auto ctx = context(ps->pid, ps->slide);
  if (!ctx) return;
  ThreadRegs regs = s.regs;
  if (!regs.tid) regs.tid = s.tid;
  if (ps->watch) {
    SampleMemory sm(regs.rsp, s.stack, *ctx->mem);
    auto flag = ctx->mem->read_u8(ps->watch->flag);
    ctx->mem = &sm;
    uint8_t mask = bin_->map_impl() == MapImpl::kHmap ? bin_->layouts().hmap_writing_bit : 0xff;
    auto e = decode_watch_hit(ps->watch->map, regs, flag ? *flag : 0, mask, *ctx, s.time_ns);
    if (!e) return;
    std::string op = watch_op(plan_, regs.rip - static_cast<uint64_t>(ps->slide));
    if (!op.empty()) e->op = op;
    emit(*e, !has_log());
    return;
  }
  if (s.cookie >= ps->probes.size()) return;
  if (report_wb(ps->probes[s.cookie], regs, &s.stack, *ctx, s.time_ns, !has_log())) return;
  uint64_t ret = 0;
  if (s.stack.size() >= 8) std::memcpy(&ret, s.stack.data(), 8);
  auto e = decode_map_write(ps->probes[s.cookie], regs, ret, *ctx, s.time_ns);
  if (!e) return;
  // Samples drained after the process exited cannot read g any more: use the goid seen
  // for this g earlier (a g struct is only reused after its goroutine exits).
  if (e->goroutine) {
    goid_of_g_[regs.r14] = e->goroutine;
  } else if (auto it = goid_of_g_.find(regs.r14); it != goid_of_g_.end()) {
    e->goroutine = it->second;
    std::erase_if(e->undecoded, [](const std::string& u) { return u.starts_with("goroutine: "); });
  }
  emit(*e, !has_log());
}

}  // namespace gort::core::front
