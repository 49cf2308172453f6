// resolve_wb_hit: see wb_sites.h. A deliberately small evaluator: MOV/LEA/XOR-zero on
// 64-bit registers, 8-byte loads and stores with base+disp addressing, JMP. Anything else
// that writes a register makes it unknown; a store through an unknown base ends the walk.

#include "core/disasm/wb_sites.h"

#include <algorithm>
#include <array>
#include <set>

namespace gort::core {
namespace {

struct Val {
  bool known = false;
  uint64_t v = 0;
  std::optional<uint64_t> loaded_from;  ///< the address this value was loaded from
};

struct Machine {
  std::array<Val, 18> r{};
  Val& operator[](Reg x) { return r[static_cast<size_t>(x)]; }
};

std::optional<uint64_t> addr_of(Machine& m, const Operand& o, RemoteAddr next_pc) {
  if (!o.is_mem() || o.index != Reg::kNone) return std::nullopt;
  if (o.base == Reg::kRip) return next_pc.value() + o.disp;
  if (o.base == Reg::kNone || o.base == Reg::kOther) return std::nullopt;
  Val b = m[o.base];
  if (!b.known) return std::nullopt;
  return b.v + o.disp;
}

bool tracked(Reg r) { return r != Reg::kNone && r != Reg::kOther && r != Reg::kRip; }

void clobber(Machine& m, const Insn& in) {
  for (unsigned i = 1; i < m.r.size(); i++)
    if (in.writes(static_cast<Reg>(i))) m.r[i] = Val{};
}

/// Executes one non-branch instruction. Returns false if it is a store through an
/// unknown address (the walk cannot continue soundly).
void step(Machine& m, const Insn& in, const ReadU64& read) {
  const Operand& d = in.ops[0];
  const Operand& s = in.ops[1];
  if (in.mnem == Mnem::kMov && d.is_reg() && d.size == 8 && tracked(d.reg)) {
    Val v;
    if (s.is_reg() && s.size == 8 && tracked(s.reg)) v = m[s.reg];
    else if (s.is_imm()) v = Val{true, static_cast<uint64_t>(s.imm), std::nullopt};
    else if (s.is_mem() && s.size == 8) {
      if (auto a = addr_of(m, s, in.next())) {
        v.loaded_from = *a;
        if (auto x = read(RemoteAddr(*a))) { v.known = true; v.v = *x; }
      }
    }
    m[d.reg] = v;
    return;
  }
  if (in.mnem == Mnem::kLea && d.is_reg() && d.size == 8 && tracked(d.reg)) {
    Val v;
    if (auto a = addr_of(m, s, in.next())) v = Val{true, *a, std::nullopt};
    m[d.reg] = v;
    return;
  }
  if (in.mnem == Mnem::kXor && d.is_reg() && s.is_reg() && d.reg == s.reg && tracked(d.reg)) {
    m[d.reg] = Val{true, 0, std::nullopt};
    return;
  }
  clobber(m, in);
}

bool is_store8(const Insn& in) {
  return in.mnem == Mnem::kMov && in.ops[0].is_mem() && in.ops[0].size == 8 &&
         (in.ops[1].is_reg() || in.ops[1].is_imm());
}

}  // namespace

Result<WbHit> resolve_wb_hit(const std::vector<Insn>& fn, RemoteAddr ret, const ThreadRegs& regs, const ReadU64& read) {
  auto it = std::find_if(fn.begin(), fn.end(), [&](const Insn& i) { return i.next() == ret; });
  if (it == fn.end() || !it->is_call())
    return make_error(ErrorKind::kNotFound, "return address {} does not follow a CALL in its function", ret);
  const size_t call = it - fn.begin();

  Machine m;
  const uint64_t vals[] = {0, regs.rax, regs.rbx, regs.rcx, regs.rdx, regs.rsi, regs.rdi, regs.rbp, regs.rsp + 8,
                           regs.r8, regs.r9, regs.r10, 0, regs.r12, regs.r13, regs.r14, regs.r15};
  for (unsigned i = 1; i <= 16; i++) m.r[i] = Val{true, vals[i], std::nullopt};
  m[Reg::kR11] = Val{};  // the barrier returns the buffer pointer in R11

  // Old values loaded before the CALL (1.25+): trace each register back to its load, as
  // long as neither the register nor the load's base changed before the CALL.
  for (size_t k = call; k-- > 0;) {
    const Insn& in = fn[k];
    if (in.is_jump() || in.is_call() || in.is_ret()) break;
    const Operand& d = in.ops[0];
    if (in.mnem != Mnem::kMov || !d.is_reg() || d.size != 8 || !tracked(d.reg) || !in.ops[1].is_mem()) continue;
    bool reg_changed_after = false, base_changed_after = false;
    for (size_t j = k + 1; j < call; j++) {
      reg_changed_after |= fn[j].writes(d.reg);
      if (in.ops[1].base != Reg::kNone) base_changed_after |= fn[j].writes(in.ops[1].base);
    }
    if (reg_changed_after || base_changed_after || m[d.reg].loaded_from) continue;
    if (auto a = addr_of(m, in.ops[1], in.next())) m[d.reg].loaded_from = *a;
  }

  // Run forward from the return address: the buffer fill, then the real stores.
  WbHit hit;
  std::set<uint64_t> new_values, old_slots;
  size_t pc = call + 1;
  bool in_dowrite = false;
  int budget = 64;
  while (pc < fn.size() && budget-- > 0) {
    const Insn& in = fn[pc];
    if (in.mnem == Mnem::kJmp && in.target) {
      auto t = std::find_if(fn.begin(), fn.end(), [&](const Insn& i) { return i.addr == *in.target; });
      if (t == fn.end()) break;
      pc = t - fn.begin();
      continue;
    }
    if (in.is_jump() || in.is_call() || in.is_ret() || in.invalid) break;
    if (is_store8(in)) {
      const Operand& d = in.ops[0];
      Val v = in.ops[1].is_imm() ? Val{true, static_cast<uint64_t>(in.ops[1].imm), std::nullopt}
                                 : (tracked(in.ops[1].reg) ? m[in.ops[1].reg] : Val{});
      if (!in_dowrite && d.base == Reg::kR11) {  // buffer entry: a new value or an old one
        hit.buffer_entries++;
        if (v.loaded_from) old_slots.insert(*v.loaded_from);
        if (v.known) new_values.insert(v.v);
        pc++;
        continue;
      }
      in_dowrite = true;
      auto slot = addr_of(m, d, in.next());
      if (!slot) {
        hit.note = fmt::format("store at {} goes through a register gort could not follow", in.addr);
        break;
      }
      bool guarded = old_slots.count(*slot) || (v.known && new_values.count(v.v));
      if (guarded || old_slots.empty())
        hit.writes.push_back(WbWrite{RemoteAddr(*slot), v.known ? std::optional<uint64_t>(v.v) : std::nullopt, in.addr});
      if (hit.writes.size() >= hit.buffer_entries) break;
      pc++;
      continue;
    }
    if (in_dowrite && in.ops[0].is_mem()) break;  // some other store: the pointer stores are done
    step(m, in, read);
    pc++;
  }
  if (hit.writes.empty() && hit.note.empty()) hit.note = "no pointer store found after the barrier call";
  return hit;
}

}  // namespace gort::core
