// Finds the instructions that set and clear a Go map's writing flag.
//
// Facts (../shared/reference/go-runtime.md section 2):
//  * hmap (1.21-1.23, noswissmap 1.24/1.25): `h.flags ^= hashWriting` (set) and
//    `h.flags &^= hashWriting` (clear), hmap.flags at +0x08, hashWriting = 4
//    (runtime/map.go@go1.23.5). Compiled: MOVZX 0x8(R),X; XORL $4,X / ANDL $-5,X; MOVB X,0x8(R).
//    Other flag updates in the same functions (`&^= sameSizeGrow` in mapclear, `|= iterator`
//    in mapiterinit) leave bit 4 alone and are not matched.
//  * swiss (1.24-1.26): `m.writing ^= 1` for both set and clear, Map.writing at +0x22
//    (internal/runtime/maps/map.go@go1.24.4). The same instruction shape for both, so the
//    role comes from control flow: the first toggle on any path from the entry sets, the
//    next one clears.
//
// Matching tracks, per register, "this holds the flag byte loaded from d(R), transformed by
// f(x) = ((x & a) | o) ^ x", through copies and unrelated instructions, until the register
// or R is overwritten, a call, or a jump target (a control-flow join) intervenes.

#include "core/disasm/map_sites.h"

#include <array>
#include <optional>
#include <unordered_map>

namespace gort::core {

FlagSpec default_flag_spec(MapImpl impl) {
  if (impl == MapImpl::kSwiss) return FlagSpec{MapImpl::kSwiss, 0x22, 0x01};
  return FlagSpec{MapImpl::kHmap, 0x08, 0x04};
}

namespace {

constexpr size_t kRegs = static_cast<size_t>(Reg::kOther) + 1;

// The flag byte as loaded from disp(base), after f(x) = ((x & and_m) | or_m) ^ xor_m.
struct Tracked {
  Reg base = Reg::kNone;
  int64_t disp = 0;
  RemoteAddr load;
  uint8_t and_m = 0xff, or_m = 0, xor_m = 0;

  void apply_and(uint8_t m) { and_m &= m; or_m &= m; xor_m &= m; }
  void apply_or(uint8_t m) { or_m |= m; xor_m &= static_cast<uint8_t>(~m); }
  void apply_xor(uint8_t m) { xor_m ^= m; }

  // What the composed function does to BIT; nullopt: leaves it unchanged.
  std::optional<FlagEffect> effect(uint8_t bit) const {
    bool x = xor_m & bit;
    if (!(and_m & bit) || (or_m & bit)) {
      bool constant = ((or_m & bit) != 0) ^ x;
      return constant ? FlagEffect::kSet : FlagEffect::kClear;
    }
    if (x) return FlagEffect::kToggle;
    return std::nullopt;
  }
};

size_t idx(Reg r) { return static_cast<size_t>(r); }

bool trackable_base(Reg r) { return r != Reg::kNone && r != Reg::kRip && r != Reg::kRsp && r != Reg::kOther; }

// Memory operand that names the flag: disp(base) with no index.
bool is_flag_mem(const Operand& o, const FlagSpec& spec) {
  return o.is_mem() && o.size == 1 && o.index == Reg::kNone && o.disp == static_cast<int64_t>(spec.disp) &&
         trackable_base(o.base);
}

// A mask for BTS/BTR/BTC with an immediate bit number, within the low byte.
std::optional<uint8_t> bit_mask(const Operand& o) {
  if (!o.is_imm() || o.imm < 0 || o.imm > 7) return std::nullopt;
  return static_cast<uint8_t>(1u << o.imm);
}

}  // namespace

std::vector<FlagStore> match_flag_stores(const std::vector<Insn>& insns, const FlagSpec& spec) {
  std::vector<FlagStore> out;
  if (insns.empty()) return out;

  // Jump targets inside the function: the state is unknown where paths join.
  const RemoteAddr lo = insns.front().addr, hi = insns.back().next();
  std::unordered_map<uint64_t, bool> labels;
  for (const Insn& in : insns)
    if (in.is_jump() && in.target && *in.target >= lo && *in.target < hi) labels[in.target->value()] = true;

  std::array<std::optional<Tracked>, kRegs> st{};
  auto reset = [&] { st.fill(std::nullopt); };
  auto kill_written = [&](const Insn& in) {
    for (size_t r = 0; r < kRegs; ++r) {
      if (!st[r]) continue;
      if (in.writes(static_cast<Reg>(r)) || in.writes(st[r]->base)) st[r].reset();
    }
  };

  for (const Insn& in : insns) {
    if (labels.count(in.addr.value())) reset();
    const Operand& d = in.ops[0];
    const Operand& s = in.ops[1];
    bool two = in.op_count == 2;

    // One-instruction read-modify-write of the flag byte: XORB/ANDB/ORB $imm, d(R).
    if (two && d.kind == Operand::Kind::kMem && is_flag_mem(d, spec) && s.is_imm() &&
        (in.mnem == Mnem::kXor || in.mnem == Mnem::kAnd || in.mnem == Mnem::kOr)) {
      Tracked t;
      uint8_t m = static_cast<uint8_t>(s.imm);
      if (in.mnem == Mnem::kXor) t.apply_xor(m);
      if (in.mnem == Mnem::kAnd) t.apply_and(m);
      if (in.mnem == Mnem::kOr) t.apply_or(m);
      if (auto e = t.effect(spec.bit))
        out.push_back(FlagStore{in.addr, in.size, d.base, spec.disp, *e, in.addr});
      kill_written(in);
      continue;
    }

    // The store: MOVB r8, d(R) with r8 holding the transformed flag of the same d(R).
    if (two && in.mnem == Mnem::kMov && is_flag_mem(d, spec) && s.is_reg()) {
      const auto& t = st[idx(s.reg)];
      if (t && t->base == d.base && t->disp == d.disp) {
        if (auto e = t->effect(spec.bit))
          out.push_back(FlagStore{in.addr, in.size, d.base, spec.disp, *e, t->load});
      }
      continue;  // a store writes no register
    }

    std::optional<Tracked> next;  // new state of the destination register, if any
    bool handled = false;
    if (two && d.is_reg() && (in.mnem == Mnem::kMovzx || (in.mnem == Mnem::kMov && d.size == 1)) &&
        is_flag_mem(s, spec)) {
      next = Tracked{s.base, s.disp, in.addr};
      handled = true;
    } else if (two && d.is_reg() && s.is_reg() && in.mnem == Mnem::kMov && st[idx(s.reg)]) {
      next = st[idx(s.reg)];
      handled = true;
    } else if (two && d.is_reg() && s.is_imm() && st[idx(d.reg)] &&
               (in.mnem == Mnem::kXor || in.mnem == Mnem::kAnd || in.mnem == Mnem::kOr)) {
      next = st[idx(d.reg)];
      uint8_t m = static_cast<uint8_t>(s.imm);
      if (in.mnem == Mnem::kXor) next->apply_xor(m);
      if (in.mnem == Mnem::kAnd) next->apply_and(m);
      if (in.mnem == Mnem::kOr) next->apply_or(m);
      handled = true;
    } else if (two && d.is_reg() && st[idx(d.reg)] &&
               (in.mnem == Mnem::kBts || in.mnem == Mnem::kBtr || in.mnem == Mnem::kBtc)) {
      if (auto m = bit_mask(s)) {
        next = st[idx(d.reg)];
        if (in.mnem == Mnem::kBts) next->apply_or(*m);
        if (in.mnem == Mnem::kBtr) next->apply_and(static_cast<uint8_t>(~*m));
        if (in.mnem == Mnem::kBtc) next->apply_xor(*m);
        handled = true;
      }
    }

    if (in.is_call() || in.mnem == Mnem::kJmp || in.is_ret() || in.invalid) {
      reset();  // callee clobbers everything; after JMP/RET only a label can continue
      continue;
    }
    kill_written(in);
    if (handled && trackable_base(next->base) && next->base != d.reg) st[idx(d.reg)] = next;
  }
  return out;
}

namespace {

// Held-state lattice: bit 0 = "may be clear here", bit 1 = "may be held here".
constexpr uint8_t kClearBit = 1, kHeldBit = 2;

uint8_t transfer(uint8_t in, FlagEffect e) {
  switch (e) {
    case FlagEffect::kSet: return in ? kHeldBit : 0;
    case FlagEffect::kClear: return in ? kClearBit : 0;
    case FlagEffect::kToggle: return static_cast<uint8_t>(((in & kClearBit) ? kHeldBit : 0) | ((in & kHeldBit) ? kClearBit : 0));
  }
  return in;
}

}  // namespace

FlagSites find_flag_sites(const std::vector<Insn>& insns, const FlagSpec& spec) {
  FlagSites out;
  std::vector<FlagStore> stores = match_flag_stores(insns, spec);
  if (stores.empty()) return out;

  const RemoteAddr lo = insns.front().addr, hi = insns.back().next();
  std::unordered_map<uint64_t, size_t> at;  // address -> instruction index
  for (size_t i = 0; i < insns.size(); ++i) at[insns[i].addr.value()] = i;
  std::unordered_map<size_t, const FlagStore*> site_at;
  for (const FlagStore& f : stores) site_at[at.at(f.addr.value())] = &f;

  // Forward data flow from the entry over instruction-level control flow. Calls fall
  // through (a CALL to a no-return fatal falls into code reached with the same state in
  // the runtime's shapes, see the file comment); jumps out of the function end a path.
  std::vector<uint8_t> state_in(insns.size(), 0);
  std::vector<size_t> work{0};
  state_in[0] = kClearBit;
  while (!work.empty()) {
    size_t i = work.back();
    work.pop_back();
    const Insn& in = insns[i];
    uint8_t s = state_in[i];
    if (auto it = site_at.find(i); it != site_at.end()) s = transfer(s, it->second->effect);
    auto flow = [&](size_t j) {
      uint8_t merged = state_in[j] | s;
      if (merged != state_in[j]) { state_in[j] = merged; work.push_back(j); }
    };
    bool falls = !(in.mnem == Mnem::kJmp || in.is_ret() || in.invalid || in.mnem == Mnem::kInt3 ||
                   in.mnem == Mnem::kUd2);
    if (falls && i + 1 < insns.size()) flow(i + 1);
    if (in.is_jump() && in.target && *in.target >= lo && *in.target < hi)
      if (auto t = at.find(in.target->value()); t != at.end()) flow(t->second);
  }

  for (const FlagStore& f : stores) {
    uint8_t s = state_in[at.at(f.addr.value())];
    FlagEffect e = f.effect;
    if (e == FlagEffect::kToggle) {
      if (s == kClearBit) e = FlagEffect::kSet;
      else if (s == kHeldBit) e = FlagEffect::kClear;
      else if (spec.impl == MapImpl::kHmap) e = FlagEffect::kSet;  // `^= hashWriting` is only ever the set
      else { out.ambiguous.push_back(f); continue; }
    }
    (e == FlagEffect::kSet ? out.begin : out.end).push_back(f);
  }
  return out;
}

std::vector<RemoteAddr> find_returns(const std::vector<Insn>& insns) {
  std::vector<RemoteAddr> out;
  for (const Insn& in : insns)
    if (in.is_ret()) out.push_back(in.addr);
  return out;
}

}  // namespace gort::core
