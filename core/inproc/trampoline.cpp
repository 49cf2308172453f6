// Patch planning, relocation and trampoline code for in-process probes. See trampoline.h.

#include "core/inproc/trampoline.h"

#include "core/binary/go_binary.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace gort::core::inproc {
namespace {

constexpr uint8_t kJmpLen = 5;

// x86-64 register numbers as the encoding uses them.
enum R : uint8_t { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

/// A tiny assembler for the handful of instructions a trampoline needs. Memory operands
/// are always [base + disp32].
class Asm {
 public:
  std::vector<uint8_t> b;
  uint64_t at = 0;  // runtime address of b[0]

  size_t pos() const { return b.size(); }
  void byte(uint8_t x) { b.push_back(x); }
  void u32(uint32_t x) { for (int i = 0; i < 4; i++) b.push_back(static_cast<uint8_t>(x >> (8 * i))); }
  void u64(uint64_t x) { for (int i = 0; i < 8; i++) b.push_back(static_cast<uint8_t>(x >> (8 * i))); }
  void rex(bool w, uint8_t reg, uint8_t base, bool force = false) {
    uint8_t r = static_cast<uint8_t>(0x40 | (w ? 8 : 0) | ((reg >> 3) << 2) | (base >> 3));
    if (r != 0x40 || force) byte(r);
  }
  void mem(uint8_t reg, uint8_t base, int32_t disp) {  // mod=10: [base + disp32]
    byte(static_cast<uint8_t>(0x80 | ((reg & 7) << 3) | (base & 7)));
    if ((base & 7) == RSP) byte(0x24);  // SIB: base only
    u32(static_cast<uint32_t>(disp));
  }
  void rr(uint8_t reg, uint8_t rm) { byte(static_cast<uint8_t>(0xc0 | ((reg & 7) << 3) | (rm & 7))); }

  void store(uint8_t base, int32_t disp, uint8_t src) { rex(true, src, base); byte(0x89); mem(src, base, disp); }
  void store32(uint8_t base, int32_t disp, uint8_t src) { rex(false, src, base); byte(0x89); mem(src, base, disp); }
  void load(uint8_t dst, uint8_t base, int32_t disp) { rex(true, dst, base); byte(0x8b); mem(dst, base, disp); }
  void lea(uint8_t dst, uint8_t base, int32_t disp) { rex(true, dst, base); byte(0x8d); mem(dst, base, disp); }
  void sub_load(uint8_t dst, uint8_t base, int32_t disp) { rex(true, dst, base); byte(0x2b); mem(dst, base, disp); }
  void mov(uint8_t dst, uint8_t src) { rex(true, src, dst); byte(0x89); rr(src, dst); }
  void add(uint8_t dst, uint8_t src) { rex(true, src, dst); byte(0x01); rr(src, dst); }
  void or_(uint8_t dst, uint8_t src) { rex(true, src, dst); byte(0x09); rr(src, dst); }
  void cmp(uint8_t a, uint8_t b2) { rex(true, b2, a); byte(0x39); rr(b2, a); }  // flags of a - b
  void test(uint8_t a) { rex(true, a, a); byte(0x85); rr(a, a); }
  void xor32(uint8_t r) { rex(false, r, r); byte(0x31); rr(r, r); }
  void alu_imm(uint8_t ext, uint8_t r, int32_t imm) { rex(true, 0, r); byte(0x81); rr(ext, r); u32(static_cast<uint32_t>(imm)); }
  void cmp_imm(uint8_t r, int32_t imm) { alu_imm(7, r, imm); }
  void and_imm(uint8_t r, int32_t imm) { alu_imm(4, r, imm); }
  void add_imm(uint8_t r, int32_t imm) { alu_imm(0, r, imm); }
  void shl(uint8_t r, uint8_t n) { rex(true, 0, r); byte(0xc1); rr(4, r); byte(n); }
  void mov_imm64(uint8_t r, uint64_t imm) { rex(true, 0, r); byte(static_cast<uint8_t>(0xb8 | (r & 7))); u64(imm); }
  void mov_imm32(uint8_t r, uint32_t imm) { rex(false, 0, r); byte(static_cast<uint8_t>(0xb8 | (r & 7))); u32(imm); }
  void store_imm(uint8_t base, int32_t disp, int32_t imm) {
    rex(true, 0, base);
    byte(0xc7);
    mem(0, base, disp);
    u32(static_cast<uint32_t>(imm));
  }
  void lock_xadd(uint8_t base, int32_t disp, uint8_t src) {
    byte(0xf0); rex(true, src, base); byte(0x0f); byte(0xc1); mem(src, base, disp);
  }
  void lock_cmpxchg(uint8_t base, int32_t disp, uint8_t src) {
    byte(0xf0); rex(true, src, base); byte(0x0f); byte(0xb1); mem(src, base, disp);
  }
  void lock_inc(uint8_t base, int32_t disp) { byte(0xf0); rex(true, 0, base); byte(0xff); mem(0, base, disp); }
  void push(uint8_t r) { if (r >= 8) byte(0x41); byte(static_cast<uint8_t>(0x50 | (r & 7))); }
  void pop(uint8_t r) { if (r >= 8) byte(0x41); byte(static_cast<uint8_t>(0x58 | (r & 7))); }
  void rdtscp() { byte(0x0f); byte(0x01); byte(0xf9); }

  // Jumps: rel32, to a label bound later (or an absolute runtime address).
  struct Fixup { size_t at; int label; };
  std::vector<Fixup> fixups;
  std::vector<std::optional<size_t>> labels;
  int label() { labels.emplace_back(); return static_cast<int>(labels.size() - 1); }
  void bind(int l) { labels[static_cast<size_t>(l)] = pos(); }
  void jmp(int l) { byte(0xe9); fixups.push_back({pos(), l}); u32(0); }
  void jcc(uint8_t cc, int l) { byte(0x0f); byte(static_cast<uint8_t>(0x80 | cc)); fixups.push_back({pos(), l}); u32(0); }
  Result<void> jmp_abs(uint64_t target) { byte(0xe9); return rel32_to(target); }
  Result<void> jcc_abs(uint8_t cc, uint64_t target) { byte(0x0f); byte(static_cast<uint8_t>(0x80 | cc)); return rel32_to(target); }
  Result<void> rel32_to(uint64_t target) {
    int64_t rel = static_cast<int64_t>(target - (at + pos() + 4));
    if (rel < std::numeric_limits<int32_t>::min() || rel > std::numeric_limits<int32_t>::max())
      return make_error(ErrorKind::kUnsupported, "jump from {:#x} to {:#x} does not fit in 32 bits", at + pos(), target);
    u32(static_cast<uint32_t>(static_cast<int32_t>(rel)));
    return {};
  }
  void resolve() {
    for (auto& f : fixups) {
      auto rel = static_cast<int32_t>(static_cast<int64_t>(*labels[static_cast<size_t>(f.label)]) -
                                      static_cast<int64_t>(f.at + 4));
      std::memcpy(b.data() + f.at, &rel, 4);
    }
  }
};

std::optional<uint8_t> reg_number(std::string_view name) {
  static constexpr std::pair<std::string_view, uint8_t> kNames[] = {
      {"rax", RAX}, {"rcx", RCX}, {"rdx", RDX}, {"rbx", RBX}, {"rsp", RSP}, {"rbp", RBP}, {"rsi", RSI}, {"rdi", RDI},
      {"r8", R8},   {"r9", R9},   {"r10", R10}, {"r11", R11}, {"r12", R12}, {"r13", R13}, {"r14", R14}, {"r15", R15}};
  for (auto [n, r] : kNames)
    if (n == name) return r;
  return std::nullopt;
}

constexpr uint8_t kJae = 0x3, kJb = 0x2, kJa = 0x7, kJbe = 0x6, kJe = 0x4, kJne = 0x5;

/// The condition code of a Jcc from its bytes (0x7X rel8 or 0x0F 0x8X rel32), or none.
std::optional<uint8_t> jcc_condition(Bytes raw) {
  size_t i = 0;
  while (i < raw.size() && (raw[i] == 0x2e || raw[i] == 0x3e)) i++;  // branch hints
  if (i < raw.size() && raw[i] >= 0x70 && raw[i] <= 0x7f) return raw[i] & 0xf;
  if (i + 1 < raw.size() && raw[i] == 0x0f && raw[i + 1] >= 0x80 && raw[i + 1] <= 0x8f) return raw[i + 1] & 0xf;
  return std::nullopt;
}

bool rip_relative(const Insn& in) {
  for (uint8_t i = 0; i < in.op_count; i++)
    if (in.ops[i].is_mem() && in.ops[i].base == Reg::kRip) return true;
  return false;
}

/// Why IN cannot run at another address, or "" when it can (copied, or rewritten).
std::string not_relocatable(const Insn& in, Bytes raw) {
  if (in.invalid) return "undecodable bytes";
  if (in.is_call()) return "a CALL (its return address would point into the trampoline)";
  if (in.mnem == Mnem::kInt3 || in.mnem == Mnem::kUd2) return "a trap instruction";
  if (in.is_jump()) {
    if (!in.target) return "an indirect jump";
    if (in.mnem == Mnem::kJcc && !jcc_condition(raw)) return "a JRCXZ/LOOP-style branch";
  }
  if (rip_relative(in) && (in.disp_offset == 0 || in.disp_size != 4)) return "a RIP-relative operand without disp32";
  return "";
}

/// IN (whose bytes are RAW) re-encoded to run at A's current position.
Result<void> relocate(Asm& a, const Insn& in, Bytes raw, int64_t slide) {
  if (in.is_jump()) {
    uint64_t target = in.target->value() + static_cast<uint64_t>(slide);
    if (in.mnem == Mnem::kJmp) return a.jmp_abs(target);
    return a.jcc_abs(*jcc_condition(raw), target);
  }
  size_t start = a.pos();
  a.b.insert(a.b.end(), raw.begin(), raw.end());
  if (rip_relative(in)) {
    int32_t disp;
    std::memcpy(&disp, raw.data() + in.disp_offset, 4);
    uint64_t target = in.next().value() + static_cast<uint64_t>(slide) + static_cast<uint64_t>(static_cast<int64_t>(disp));
    int64_t nd = static_cast<int64_t>(target - (a.at + start + in.size));
    if (nd < std::numeric_limits<int32_t>::min() || nd > std::numeric_limits<int32_t>::max())
      return make_error(ErrorKind::kUnsupported, "RIP-relative operand at {:#x} out of reach from the trampoline",
                        in.addr.value());
    auto d = static_cast<int32_t>(nd);
    std::memcpy(a.b.data() + start + in.disp_offset, &d, 4);
  }
  return {};
}

/// Go's stack check at a function entry: `CMP SP|R12, 16(R14)` (after `LEA -N(SP), R12` for
/// frames over StackSmall) then `JBE|JLS morestack`. Returns how many instructions it spans.
size_t stack_check_length(const std::vector<Insn>& insns) {
  size_t i = 0;
  if (i < insns.size() && insns[i].mnem == Mnem::kLea && insns[i].ops[0].is_reg() && insns[i].ops[0].reg == Reg::kR12 &&
      insns[i].ops[1].is_mem() && insns[i].ops[1].base == Reg::kRsp)
    i++;
  if (i >= insns.size() || insns[i].mnem != Mnem::kCmp || !insns[i].ops[1].is_mem() ||
      insns[i].ops[1].base != Reg::kR14)
    return 0;
  i++;
  if (i >= insns.size() || insns[i].mnem != Mnem::kJcc) return 0;
  return i + 1;
}

}  // namespace

Result<SitePatch> plan_patch(const Decoder& dec, Bytes func_code, RemoteAddr func_entry, RemoteAddr site) {
  auto insns = dec.decode(func_code, func_entry);
  auto it = std::find_if(insns.begin(), insns.end(), [&](const Insn& i) { return i.addr == site; });
  if (it == insns.end())
    return make_error(ErrorKind::kUnsupported, "{:#x} is not an instruction boundary of its function", site.value());
  const size_t k = static_cast<size_t>(it - insns.begin());
  auto raw_of = [&](const Insn& in) {
    return func_code.subspan(static_cast<size_t>(in.addr.value() - func_entry.value()), in.size);
  };
  std::optional<Error> indirect;
  for (const Insn& in : insns)
    if (in.is_jump() && !in.target && !indirect)
      indirect = Error{ErrorKind::kUnsupported,
                       fmt::format("the function has an indirect jump at {:#x} (a jump table could land inside the patch)",
                                   in.addr.value())};
  if (indirect) return *indirect;
  // The JMP over instructions FROM.., the first BEFORE of them (ending just before SITE)
  // run before the record.
  auto try_range = [&](size_t from, size_t before) -> Result<SitePatch> {
    size_t n = 0, len = 0;
    while (len < kJmpLen || n < before || from + n <= k) {  // 5 bytes, the BEFORE ones, SITE
      if (from + n >= insns.size())
        return make_error(ErrorKind::kUnsupported, "fewer than {} bytes before the function's end", kJmpLen);
      len += insns[from + n].size;
      n++;
    }
    for (size_t i = 0; i < n; i++) {
      const Insn& in = insns[from + i];
      std::string why = not_relocatable(in, raw_of(in));
      if (!why.empty())
        return make_error(ErrorKind::kUnsupported, "cannot move the instruction at {:#x}: {}", in.addr.value(), why);
      // Control leaves at a JMP or RET: bytes after it in the range belong to code reached
      // some other way.
      if ((in.mnem == Mnem::kJmp || in.is_ret()) && i + 1 < n)
        return make_error(ErrorKind::kUnsupported, "a {} at {:#x} inside the patched bytes",
                          in.is_ret() ? "RET" : "JMP", in.addr.value());
    }
    RemoteAddr lo = insns[from].addr, hi = lo + len;
    for (const Insn& in : insns)
      if (in.target && *in.target > lo && *in.target < hi)
        return make_error(ErrorKind::kUnsupported, "the branch at {:#x} lands inside the bytes to patch ({:#x})",
                          in.addr.value(), in.target->value());
    SitePatch p;
    p.site = site;
    p.start = lo;
    p.length = static_cast<uint8_t>(len);
    p.before = before;
    const Insn& at = insns[k];
    p.flags_dead = (site == func_entry && before > 0) || at.is_ret() || at.mnem == Mnem::kXor ||
                   at.mnem == Mnem::kOr || at.mnem == Mnem::kAnd || at.mnem == Mnem::kCmp || at.mnem == Mnem::kTest;
    p.displaced.assign(insns.begin() + static_cast<std::ptrdiff_t>(from),
                       insns.begin() + static_cast<std::ptrdiff_t>(from + n));
    auto raw = func_code.subspan(static_cast<size_t>(lo.value() - func_entry.value()), len);
    p.original.assign(raw.begin(), raw.end());
    return p;
  };
  if (site == func_entry)
    if (size_t check = stack_check_length(insns); check > 0) return try_range(k, check);
  auto forward = try_range(k, 0);
  if (forward) return forward;
  // Back up over up to 3 instructions of the same block before SITE.
  for (size_t b = 1; b <= 3 && b <= k; b++) {
    const Insn& prev = insns[k - b];
    if (prev.is_jump() || prev.is_call() || prev.is_ret() || prev.invalid) break;
    auto back = try_range(k - b, b);
    if (back) return back;
  }
  return forward.error();
}

Result<std::vector<uint8_t>> build_trampoline(const SitePatch& patch, const TrampolineParams& prm, uint64_t at) {
  using namespace ring;
  if (prm.slots == 0 || (prm.slots & (prm.slots - 1)) || prm.slots > (1u << 24))
    return make_error(ErrorKind::kInternal, "ring slots {} not a power of two up to 2^24", prm.slots);
  if (prm.regs.size() > static_cast<size_t>(kRegWords))
    return make_error(ErrorKind::kUnsupported, "{} registers to record, a record holds {}", prm.regs.size(), kRegWords);
  Asm a;
  a.at = at;
  auto raw_of = [&](const Insn& in) {
    return Bytes(patch.original).subspan(static_cast<size_t>(in.addr.value() - patch.start.value()), in.size);
  };
  auto displaced = [&](size_t from, size_t to) -> Result<void> {
    for (size_t i = from; i < to; i++) GORT_TRY_VOID(relocate(a, patch.displaced[i], raw_of(patch.displaced[i]), prm.slide));
    return {};
  };
  GORT_TRY_VOID(displaced(0, patch.before));

  // 64 bytes at most below the site's rsp: Go keeps at least StackSmall (128) bytes free below any
  // SP in a function's body (../shared/reference/platform.md, "In-process probes").
  const uint8_t saved[] = {R11, R12, R13, RAX, RBX, RCX, RDX};  // pushed in this order
  for (uint8_t r : saved) a.push(r);
  // Live flags: the arithmetic ones through LAHF and SETO (POPFQ is slow), restored by
  // ADD AL,0x7F (OF) and SAHF. DF is clear in Go code; nothing here changes the others.
  const int32_t flags_slot = patch.flags_dead ? 0 : 8;
  if (!patch.flags_dead) {
    a.byte(0x9f);                               // lahf
    a.byte(0x0f), a.byte(0x90), a.byte(0xc0);   // seto al
    a.push(RAX);
  }
  const int32_t kPushed = 56 + flags_slot;
  auto saved_at = [&](uint8_t r) -> std::optional<int32_t> {  // rsp offset of a pushed register
    for (int i = 0; i < 7; i++)
      if (saved[i] == r) return static_cast<int32_t>(flags_slot + 8 * (6 - i));
    return std::nullopt;
  };
  // DST = the value register NAME had at the site (pushed ones are read back from the stack).
  auto load_site_reg = [&](uint8_t dst, const std::string& name, const char* what) -> Result<void> {
    auto r = reg_number(name);
    if (!r) return make_error(ErrorKind::kInternal, "no register '{}' to {}", name, what);
    if (auto off = saved_at(*r)) a.load(dst, RSP, *off);
    else if (*r == RSP) a.lea(dst, RSP, kPushed);
    else a.mov(dst, *r);
    return {};
  };
  int full = a.label(), done = a.label(), retry = a.label();
  a.mov_imm64(R12, prm.ring);
  // Reserve index head only while the ring has room (CMPXCHG loop): a dropped hit never
  // takes an index, so every index taken gets published and the reader never waits on one.
  a.load(RAX, R12, kHead);
  a.bind(retry);
  a.mov(R11, RAX);
  a.sub_load(R11, R12, kTail);
  a.cmp_imm(R11, static_cast<int32_t>(prm.slots));
  a.jcc(kJae, full);  // not read yet: drop
  a.lea(R11, RAX, 1);  // r11 = head + 1, the seq to publish
  a.lock_cmpxchg(R12, kHead, R11);  // head == rax ? head = r11 : rax = head
  a.jcc(kJne, retry);
  a.mov(R13, RAX);
  a.and_imm(R13, static_cast<int32_t>(prm.slots - 1));
  static_assert(kRecord == 128);
  a.shl(R13, 7);
  a.add(R13, R12);
  a.add_imm(R13, static_cast<int32_t>(kDataOffset));  // r13 = the record
  // The site's registers, as they were at the site.
  for (size_t i = 0; i < prm.regs.size(); i++) {
    GORT_TRY_VOID(load_site_reg(RAX, prm.regs[i], "record"));
    a.store(R13, kRegs + static_cast<int32_t>(8 * i), RAX);
  }
  a.load(RAX, RSP, kPushed), a.store(R13, kStack, RAX);
  if (prm.gather_base) a.lea(RAX, RSP, kPushed);  // the site's rsp: where the gathered words sit
  else a.load(RAX, RSP, kPushed + static_cast<int32_t>(prm.stack_word));
  a.store(R13, kStack + 8, RAX);
  a.store_imm(R13, kCookie, static_cast<int32_t>(prm.cookie));  // also zeroes kCpu
  if (prm.on_stack_reg) {
    // The register in [site rsp, g.stack.hi): the cookie again with bit 31 (the imm32 is
    // sign-extended into kCpu, which is written below).
    int off_stack = a.label();
    GORT_TRY_VOID(load_site_reg(RAX, *prm.on_stack_reg, "test"));
    a.lea(RCX, RSP, kPushed);
    a.cmp(RAX, RCX);
    a.jcc(kJb, off_stack);
    a.load(RCX, R14, static_cast<int32_t>(prm.g_stack_hi));
    a.cmp(RAX, RCX);
    a.jcc(kJae, off_stack);
    a.store_imm(R13, kCookie, static_cast<int32_t>(prm.cookie | 0x80000000u));
    a.bind(off_stack);
  }
  a.xor32(RAX);
  if (prm.g_m && prm.m_procid) {
    int no_m = a.label();
    a.load(RAX, R14, static_cast<int32_t>(*prm.g_m));
    a.test(RAX);
    a.jcc(kJe, no_m);
    a.load(RAX, RAX, static_cast<int32_t>(*prm.m_procid));
    a.bind(no_m);
  }
  a.store32(R13, kTid, RAX);
  a.load(RAX, R12, kDrops);
  a.store32(R13, kDropsSeen, RAX);
  a.xor32(RAX);
  for (int k = 0; k < kChainWords; k++) a.store(R13, kChain + 8 * k, RAX);
  // Jumps to END unless [RCX, RCX + WIDTH) lies within [RDX, RBX] (a stack's bounds).
  auto within = [&](int32_t width, int end) {
    a.cmp(RCX, RDX);
    a.jcc(kJb, end);
    a.lea(RAX, RCX, width);
    a.cmp(RAX, RBX);
    a.jcc(kJa, end);
  };
  if (prm.gather_base) {
    // Words at [base + i*stride + offset], while inside [site rsp, g.stack.hi).
    int end = a.label();
    GORT_TRY_VOID(load_site_reg(RCX, *prm.gather_base, "gather from"));
    a.add_imm(RCX, static_cast<int32_t>(prm.gather_offset));
    a.lea(RDX, RSP, kPushed);
    a.load(RBX, R14, static_cast<int32_t>(prm.g_stack_hi));
    for (int k = 0; k < kGatherWords; k++) {
      within(8, end);
      a.load(RAX, RCX, 0);
      a.store(R13, kChain + 8 * k, RAX);
      a.store_imm(R13, kChain + 8 * kGatherWords, k + 1);  // how many were read
      a.add_imm(RCX, static_cast<int32_t>(prm.gather_stride));
    }
    a.bind(end);
  } else if (prm.chain) {
    // Walk saved frame pointers from rbp while they stay inside the g's stack and go up.
    int end = a.label();
    a.mov(RCX, RBP);
    a.load(RDX, R14, static_cast<int32_t>(prm.g_stack_lo));
    a.load(RBX, R14, static_cast<int32_t>(prm.g_stack_hi));
    for (int k = 0; k < kChainWords; k++) {
      within(16, end);
      a.load(RAX, RCX, 8);
      a.store(R13, kChain + 8 * k, RAX);
      a.load(RAX, RCX, 0);
      a.cmp(RAX, RCX);
      a.jcc(kJbe, end);
      a.mov(RCX, RAX);
    }
    a.bind(end);
  }
  a.rdtscp();  // edx:eax = TSC, ecx = TSC_AUX (the CPU number on Linux)
  a.shl(RDX, 32);
  a.or_(RAX, RDX);
  a.store(R13, kTsc, RAX);
  a.store32(R13, kCpu, RCX);
  a.store(R13, kSeq, R11);  // publish (x86 keeps the stores above in order before it)
  a.bind(done);
  if (!patch.flags_dead) {
    a.pop(RAX);
    a.byte(0x04), a.byte(0x7f);  // add al, 0x7f: OF = the saved SETO bit
    a.byte(0x9e);                // sahf
  }
  for (int i = 6; i >= 0; i--) a.pop(saved[i]);
  GORT_TRY_VOID(displaced(patch.before, patch.displaced.size()));
  GORT_TRY_VOID(a.jmp_abs(patch.start.value() + static_cast<uint64_t>(prm.slide) + patch.length));
  a.bind(full);
  a.lock_inc(R12, kDrops);
  a.jmp(done);
  a.resolve();
  return a.b;
}

Result<std::vector<uint8_t>> jump_bytes(const SitePatch& patch, int64_t slide, uint64_t trampoline) {
  Asm a;
  a.at = patch.start.value() + static_cast<uint64_t>(slide);
  GORT_TRY_VOID(a.jmp_abs(trampoline));
  while (a.b.size() < patch.length) a.byte(0xcc);
  return a.b;
}

Result<RemoteAddr> find_syscall_insn(const GoBinary& bin, const Decoder& dec) {
  for (const char* name : {"runtime.usleep.abi0", "runtime.usleep", "runtime.futex.abi0", "runtime.futex",
                           "runtime.osyield.abi0", "runtime.osyield", "internal/runtime/syscall.Syscall6",
                           "runtime/internal/syscall.Syscall6", "runtime.getpid.abi0", "runtime.getpid"}) {
    auto f = bin.func(name);
    if (!f) continue;
    auto code = bin.code(*f);
    if (!code) continue;
    for (const Insn& in : dec.decode(*code, f->entry)) {
      size_t off = static_cast<size_t>(in.addr.value() - f->entry.value());
      if (in.size == 2 && (*code)[off] == 0x0f && (*code)[off + 1] == 0x05) return in.addr;
    }
  }
  return make_error(ErrorKind::kUnsupported, "no SYSCALL instruction found in the runtime (runtime.usleep, futex)");
}

}  // namespace gort::core::inproc
