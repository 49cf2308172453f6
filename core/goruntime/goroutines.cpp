// Reading the goroutine list: runtime.allgs ([]*g) and the g/m fields gort shows.
// Facts (../shared/reference/go-runtime.md section 5): allgs keeps dead gs for reuse;
// goid is never reused; status values in runtime2.go (1.26 adds _Gleaked=10 and
// _Gdeadextra=11); the current g is in TLS at %fs:-8 and in R14 in Go code; a g that is
// its M's g0 or gsignal runs the system stack on behalf of m.curg.
// Stripped binaries: runtime.forEachG (proc.go, every version 1.21-1.26) reads
// `for _, gp := range allgs` right after lock(&allglock), i.e. two RIP-relative 8-byte
// loads of allgs and allgs+8; that pair is the only one of its kind in the function.

#include "core/goruntime/goroutines.h"

#include "core/disasm/decoder.h"

#include <fmt/format.h>

namespace gort::core {

namespace {
constexpr const char* kStatusNames[] = {
    "idle", "runnable", "running", "syscall", "waiting", "moribund", "dead",
    "enqueue", "copystack", "preempted", "leaked", "deadextra",
};

template <typename T>
Result<T> read_field(const Memory& mem, RemoteAddr base, uint32_t off, const char* name) {
  if (off == kAbsentField) return make_error(ErrorKind::kInternal, "layout has no offset for {}", name);
  auto r = mem.read_value<T>(base + off);
  if (!r) return r.error().with_context(fmt::format("reading {} of {}", name, base));
  return *r;
}
}  // namespace

std::string g_status_name(uint32_t status) {
  uint32_t base = status & ~static_cast<uint32_t>(kGscan);
  std::string name = base < std::size(kStatusNames) ? kStatusNames[base] : fmt::format("status({})", base);
  return (status & kGscan) ? "scan|" + name : name;
}

bool g_status_is_dead(uint32_t status) {
  uint32_t base = status & ~static_cast<uint32_t>(kGscan);
  return base == kGdead || base == kGdeadextra;
}

Result<AllgsLocation> find_allgs_in_code(const GoBinary& bin) {
  auto f = bin.func("runtime.forEachG");
  if (!f) return make_error(ErrorKind::kNotFound, "stripped binary: allgs not found (no runtime.forEachG in pclntab)");
  GORT_TRY(Bytes code, bin.code(*f));
  GORT_TRY(Decoder dec, Decoder::create());
  auto insns = dec.decode(code, f->entry);
  std::vector<uint64_t> loads;  // RIP-relative 8-byte loads, in order
  for (const Insn& in : insns) {
    if (in.mnem != Mnem::kMov || in.op_count != 2) continue;
    const Operand& src = in.ops[1];
    if (!in.ops[0].is_reg() || !src.is_mem() || src.base != Reg::kRip || src.size != 8) continue;
    loads.push_back(in.next().value() + static_cast<uint64_t>(src.disp));
  }
  for (size_t i = 0; i + 1 < loads.size(); ++i) {
    if (loads[i + 1] == loads[i] + 8) return AllgsLocation{RemoteAddr(loads[i]), "decoded from runtime.forEachG"};
  }
  return make_error(ErrorKind::kNotFound,
                    "stripped binary: allgs not found (runtime.forEachG at {} has no load pair of allgs/allgs+8; "
                    "an unknown code shape: please report it with the Go version)",
                    f->entry);
}

Result<AllgsLocation> find_allgs(const GoBinary& bin) {
  if (auto s = bin.elf().find_symbol("runtime.allgs")) return AllgsLocation{s->value, "symtab"};
  return find_allgs_in_code(bin);
}

Result<Goroutine> read_goroutine(const Memory& mem, const RuntimeLayouts& l, const GoVersion& v, RemoteAddr g) {
  Goroutine out;
  out.g = g;
  GORT_TRY(out.goid, read_field<uint64_t>(mem, g, l.g_goid, "g.goid"));
  GORT_TRY(out.status, read_field<uint32_t>(mem, g, l.g_atomicstatus, "g.atomicstatus"));
  GORT_TRY(out.wait_reason, read_field<uint8_t>(mem, g, l.g_waitreason, "g.waitreason"));
  GORT_TRY(uint64_t m, read_field<uint64_t>(mem, g, l.g_m, "g.m"));
  out.m = RemoteAddr(m);
  GORT_TRY(uint64_t pc, read_field<uint64_t>(mem, g, l.g_sched_pc, "g.sched.pc"));
  GORT_TRY(uint64_t sp, read_field<uint64_t>(mem, g, l.g_sched_sp, "g.sched.sp"));
  GORT_TRY(uint64_t bp, read_field<uint64_t>(mem, g, l.g_sched_bp, "g.sched.bp"));
  GORT_TRY(uint64_t gopc, read_field<uint64_t>(mem, g, l.g_gopc, "g.gopc"));
  GORT_TRY(uint64_t startpc, read_field<uint64_t>(mem, g, l.g_startpc, "g.startpc"));
  GORT_TRY(uint64_t lo, read_field<uint64_t>(mem, g, l.g_stack_lo, "g.stack.lo"));
  GORT_TRY(uint64_t hi, read_field<uint64_t>(mem, g, l.g_stack_hi, "g.stack.hi"));
  out.sched_pc = RemoteAddr(pc);
  out.sched_sp = RemoteAddr(sp);
  out.sched_bp = RemoteAddr(bp);
  out.gopc = RemoteAddr(gopc);
  out.startpc = RemoteAddr(startpc);
  out.stack_lo = RemoteAddr(lo);
  out.stack_hi = RemoteAddr(hi);
  // The runtime keeps the last reason after a goroutine wakes up; show it only while waiting.
  uint32_t base = out.status & ~static_cast<uint32_t>(kGscan);
  if (base == kGwaiting || base == kGleaked) {
    auto name = wait_reason_name(v, out.wait_reason);
    out.wait_reason_name = name ? std::string(*name) : fmt::format("waitreason({})", out.wait_reason);
  }
  if (!out.m.is_null()) {
    GORT_TRY(out.thread_id, read_field<uint64_t>(mem, out.m, l.m_procid, "m.procid"));
  }
  return out;
}

Result<std::vector<Goroutine>> read_goroutines(const Memory& mem, const RuntimeLayouts& l, const GoVersion& v,
                                               RemoteAddr allgs, GoroutineListOptions opts) {
  auto ptr = mem.read_ptr(allgs);
  auto len = mem.read_u64(allgs + 8);
  if (!ptr || !len) {
    return make_error(ErrorKind::kIo, "cannot read runtime.allgs at {}: wrong load slide, or the process is gone?",
                      allgs);
  }
  if (*len > opts.max) {
    return make_error(ErrorKind::kBadInput, "runtime.allgs at {} has length {} (> {}): wrong address or corrupt memory",
                      allgs, *len, opts.max);
  }
  std::vector<uint64_t> gptrs(*len);
  if (*len) {
    auto r = mem.read(*ptr, std::span<uint8_t>(reinterpret_cast<uint8_t*>(gptrs.data()), gptrs.size() * 8));
    if (!r) return r.error().with_context(fmt::format("reading {} g pointers of runtime.allgs", *len));
  }
  std::vector<Goroutine> out;
  for (uint64_t gp : gptrs) {
    if (gp == 0) continue;
    GORT_TRY(Goroutine g, read_goroutine(mem, l, v, RemoteAddr(gp)));
    if (!opts.include_dead && g_status_is_dead(g.status)) continue;
    out.push_back(std::move(g));
  }
  return out;
}

void classify_system(const Pclntab& pcln, int64_t slide, std::vector<Goroutine>& gs) {
  for (Goroutine& g : gs) {
    auto f = pcln.find_func(g.startpc - slide);
    if (!f) continue;
    std::string_view n = f->name;
    // runtime/traceback.go isSystemGoroutine: runtime.main and user code are not; runfinq
    // is unless it is running a user finalizer (not distinguished here).
    g.system = n.starts_with("runtime.") && n != "runtime.main";
  }
}

Result<RemoteAddr> thread_g(const Memory& mem, const ThreadRegs& regs) {
  if (regs.fs_base != 0) {
    auto g = mem.read_ptr(RemoteAddr(regs.fs_base - 8));
    if (g && !g->is_null()) return *g;
  }
  if (regs.r14 != 0) return RemoteAddr(regs.r14);
  return make_error(ErrorKind::kNotFound, "thread {} has no g (fs_base {:#x}, r14 0): not a Go thread?", regs.tid,
                    regs.fs_base);
}

Result<RemoteAddr> user_g(const Memory& mem, const RuntimeLayouts& l, RemoteAddr g) {
  GORT_TRY(uint64_t m, read_field<uint64_t>(mem, g, l.g_m, "g.m"));
  if (m == 0) return g;
  GORT_TRY(uint64_t g0, read_field<uint64_t>(mem, RemoteAddr(m), l.m_g0, "m.g0"));
  GORT_TRY(uint64_t gsignal, read_field<uint64_t>(mem, RemoteAddr(m), l.m_gsignal, "m.gsignal"));
  if (g.value() != g0 && g.value() != gsignal) return g;
  GORT_TRY(uint64_t curg, read_field<uint64_t>(mem, RemoteAddr(m), l.m_curg, "m.curg"));
  return RemoteAddr(curg);
}

}  // namespace gort::core
