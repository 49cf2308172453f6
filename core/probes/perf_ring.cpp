// Decoding PERF_RECORD_SAMPLE records for the sample_type PerfProbeSet asks for.
// Layout: include/uapi/linux/perf_event.h, "PERF_RECORD_SAMPLE" (fields in bit order).

#include "core/probes/perf_ring.h"

#include <asm/perf_regs.h>
#include <linux/perf_event.h>

namespace gort::core {

uint64_t probe_sample_type(bool callchain) {
  return PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU |
         PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER | (callchain ? PERF_SAMPLE_CALLCHAIN : 0);
}

uint64_t probe_regs_mask() {
  uint64_t m = 0;
  for (int r = PERF_REG_X86_AX; r <= PERF_REG_X86_IP; r++) m |= 1ull << r;
  for (int r = PERF_REG_X86_R8; r <= PERF_REG_X86_R15; r++) m |= 1ull << r;
  return m;
}

namespace {
struct Cursor {
  std::span<const uint8_t> b;
  size_t off = 8;  // past perf_event_header
  bool ok = true;
  uint64_t u64() {
    if (off + 8 > b.size()) { ok = false; return 0; }
    uint64_t v;
    std::memcpy(&v, b.data() + off, 8);
    off += 8;
    return v;
  }
};
}  // namespace

bool decode_probe_sample(std::span<const uint8_t> rec, ProbeSample& out, uint64_t& id, bool callchain) {
  Cursor c{rec};
  id = c.u64();
  uint64_t ip = c.u64();
  uint64_t pidtid = c.u64();
  out.pid = static_cast<uint32_t>(pidtid);
  out.tid = static_cast<uint32_t>(pidtid >> 32);
  out.time_ns = c.u64();
  out.cpu = static_cast<uint32_t>(c.u64());
  out.callchain.clear();
  if (callchain) {  // PERF_SAMPLE_CALLCHAIN comes after CPU (and PERIOD/READ, not asked for)
    uint64_t nr = c.u64();
    if (!c.ok || nr > (rec.size() - c.off) / 8) return false;
    for (uint64_t i = 0; i < nr; i++) {
      uint64_t pc = c.u64();
      if (pc < static_cast<uint64_t>(PERF_CONTEXT_MAX)) out.callchain.push_back(pc);
    }
  }
  out.regs = ThreadRegs{};
  out.regs.tid = out.tid;
  out.regs.rip = ip;
  uint64_t abi = c.u64();
  if (abi != PERF_SAMPLE_REGS_ABI_NONE) {
    // Bit order: AX BX CX DX SI DI BP SP IP, then R8..R15.
    uint64_t* order[] = {&out.regs.rax, &out.regs.rbx, &out.regs.rcx, &out.regs.rdx, &out.regs.rsi, &out.regs.rdi,
                         &out.regs.rbp, &out.regs.rsp, &out.regs.rip, &out.regs.r8,  &out.regs.r9,  &out.regs.r10,
                         &out.regs.r11, &out.regs.r12, &out.regs.r13, &out.regs.r14, &out.regs.r15};
    for (auto* r : order) *r = c.u64();
  }
  uint64_t size = c.u64();
  out.stack.clear();
  if (c.ok && size > 0) {
    if (c.off + size + 8 > rec.size()) return false;
    const uint8_t* data = rec.data() + c.off;
    c.off += size;
    uint64_t dyn = c.u64();
    out.stack.assign(data, data + std::min(dyn, size));
  }
  return c.ok;
}

}  // namespace gort::core
