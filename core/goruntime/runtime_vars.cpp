// Where runtime.mheap_, runtime.gcphase and runtime.memstats are linked. With .symtab, the
// symbol. Without it (-ldflags=-s -w), from one RIP-relative reference in a runtime
// function whose code has the same shape in Go 1.21-1.26 (checked with go tool objdump
// against the symbols, builds of every toolchain):
//   mheap_    runtime.mallocinit calls mheap_.init(): `lea rax, [rip+mheap_]` right before
//             the only `call runtime.(*mheap).init` (the receiver is in RAX, ABIInternal).
//   memstats  runtime.(*mcache).refill brackets its stats update with
//             memstats.heapStats.acquire()/release(): `lea rax, [rip+memstats]` before
//             `call runtime.(*consistentHeapStats).acquire` and `.release`. heapStats is the
//             first field of runtime.mstats in every version (mstats.go), so the receiver
//             is memstats itself; both calls must agree.
//   gcphase   runtime.gcStart inlines setGCPhase(_GCmark): atomic.Store(&gcphase, x) as
//             `lea R, [rip+gcphase]; xchg dword [R], r32`, then gcphase is read back at once
//             (`mov r32, dword [rip+gcphase]`) for writeBarrier.enabled. Store and reload of
//             the same 4-byte variable is the shape; there is one in gcStart. Built with
//             -gcflags=all=-N -l, setGCPhase is a function of its own with the same shape.
// Every address is the decoded instruction's next address plus its displacement.

#include "core/goruntime/runtime_vars.h"

#include "core/disasm/decoder.h"

#include <fmt/format.h>

#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace gort::core {

namespace {

Result<std::vector<Insn>> decode_func(const GoBinary& bin, const FuncInfo& f) {
  GORT_TRY(Bytes code, bin.code(f));
  GORT_TRY(Decoder dec, Decoder::create());
  return dec.decode(code, f.entry);
}

/// The RIP-relative address IN computes or reads through its source operand, if any.
std::optional<uint64_t> rip_target(const Insn& in, size_t op) {
  if (in.op_count <= op) return std::nullopt;
  const Operand& o = in.ops[op];
  if (!o.is_mem() || o.base != Reg::kRip || o.index != Reg::kNone) return std::nullopt;
  return in.next().value() + static_cast<uint64_t>(o.disp);
}

/// For every direct CALL to CALLEE in INSNS: the `lea rax, [rip+X]` that last set RAX
/// before it (within a few instructions of straight-line code), as X. A call whose
/// receiver was not set that way gets no entry; CALLS counts the calls seen.
std::vector<uint64_t> receivers_of_calls(const std::vector<Insn>& insns, RemoteAddr callee, size_t& calls) {
  constexpr size_t kLookBack = 6;
  std::vector<uint64_t> out;
  calls = 0;
  for (size_t i = 0; i < insns.size(); ++i) {
    if (!insns[i].is_call() || insns[i].target != callee) continue;
    ++calls;
    for (size_t k = 1; k <= kLookBack && k <= i; ++k) {
      const Insn& p = insns[i - k];
      if (p.is_call() || p.is_jump() || p.is_ret()) break;
      if (!p.writes(Reg::kRax)) continue;
      if (p.mnem == Mnem::kLea && p.op_count == 2 && p.ops[0].is_reg() && p.ops[0].reg == Reg::kRax &&
          p.ops[0].size == 8)
        if (auto x = rip_target(p, 1)) out.push_back(*x);
      break;
    }
  }
  return out;
}

Error not_found(std::string_view var, std::string_view tried) {
  return make_error(ErrorKind::kNotFound,
                    "stripped binary: runtime.{} not found ({}); please report it with the Go version",
                    var, tried);
}

/// The one receiver passed in RAX to CALLEE (or to each of CALLEES) from CALLER.
Result<RuntimeVar> receiver_in_code(const GoBinary& bin, std::string_view var, std::string_view caller,
                                    std::initializer_list<std::string_view> callees) {
  auto f = bin.func(caller);
  if (!f) return not_found(var, fmt::format("no {} in pclntab", caller));
  GORT_TRY(std::vector<Insn> insns, decode_func(bin, *f));
  std::set<uint64_t> found;
  for (std::string_view callee : callees) {
    auto c = bin.func(callee);
    if (!c) return not_found(var, fmt::format("no {} in pclntab", callee));
    size_t calls = 0;
    auto xs = receivers_of_calls(insns, c->entry, calls);
    if (xs.empty())
      return not_found(var, fmt::format("{} at {} has {} calls to {}, none with a `lea rax, [rip+X]` receiver: "
                                        "an unknown code shape",
                                        caller, f->entry, calls, callee));
    found.insert(xs.begin(), xs.end());
  }
  if (found.size() != 1) {
    std::string names;
    for (std::string_view callee : callees) names += (names.empty() ? "" : " and ") + std::string(callee);
    return not_found(var, fmt::format("{} at {} passes {} different RIP-relative receivers to {}: an unknown code "
                                      "shape",
                                      caller, f->entry, found.size(), names));
  }
  return RuntimeVar{RemoteAddr(*found.begin()), fmt::format("decoded from {}", caller)};
}

Result<RuntimeVar> gcphase_in_code(const GoBinary& bin) {
  // setGCPhase itself when it was not inlined (-gcflags=all=-N -l), else its inlined copy.
  std::string_view caller = "runtime.setGCPhase";
  auto f = bin.func(caller);
  if (!f) f = bin.func(caller = "runtime.gcStart");
  if (!f) return not_found("gcphase", "no runtime.setGCPhase or runtime.gcStart in pclntab");
  GORT_TRY(std::vector<Insn> insns, decode_func(bin, *f));
  std::set<uint64_t> found;
  for (size_t i = 0; i + 2 < insns.size(); ++i) {
    const Insn& lea = insns[i];
    if (lea.mnem != Mnem::kLea || lea.op_count != 2 || !lea.ops[0].is_reg() || lea.ops[0].size != 8) continue;
    auto x = rip_target(lea, 1);
    if (!x) continue;
    const Reg r = lea.ops[0].reg;
    // xchg dword [R], r32: the atomic store (either operand order).
    const Insn& xchg = insns[i + 1];
    if (xchg.mnem != Mnem::kXchg || xchg.op_count != 2) continue;
    bool store = false;
    for (int m = 0; m < 2; ++m) {
      const Operand& mem = xchg.ops[m];
      const Operand& val = xchg.ops[1 - m];
      if (mem.is_mem() && mem.base == r && mem.index == Reg::kNone && mem.disp == 0 && mem.size == 4 && val.is_reg())
        store = true;
    }
    if (!store) continue;
    // mov r32, dword [rip+X]: the reload, within the next few instructions.
    for (size_t k = i + 2; k < insns.size() && k <= i + 4; ++k) {
      const Insn& ld = insns[k];
      if (ld.mnem == Mnem::kMov && ld.op_count == 2 && ld.ops[0].is_reg() && ld.ops[1].size == 4 &&
          rip_target(ld, 1) == x) {
        found.insert(*x);
        break;
      }
      if (ld.is_call() || ld.is_jump() || ld.is_ret()) break;
    }
  }
  if (found.size() != 1)
    return not_found("gcphase", fmt::format("{} at {} has setGCPhase-shaped stores (lea/xchg dword/reload of "
                                            "one RIP-relative variable) to {} variables, expected 1: an unknown "
                                            "code shape",
                                            caller, f->entry, found.size()));
  return RuntimeVar{RemoteAddr(*found.begin()), fmt::format("decoded from {}", caller)};
}

std::optional<RuntimeVar> from_symtab(const GoBinary& bin, std::string_view name) {
  if (auto s = bin.elf().find_symbol(name)) return RuntimeVar{s->value, "symtab"};
  return std::nullopt;
}

}  // namespace

Result<RuntimeVar> find_mheap(const GoBinary& bin) {
  if (auto v = from_symtab(bin, "runtime.mheap_")) return *v;
  return receiver_in_code(bin, "mheap_", "runtime.mallocinit", {"runtime.(*mheap).init"});
}

Result<RuntimeVar> find_gcphase(const GoBinary& bin) {
  if (auto v = from_symtab(bin, "runtime.gcphase")) return *v;
  return gcphase_in_code(bin);
}

Result<RuntimeVar> find_memstats(const GoBinary& bin) {
  if (auto v = from_symtab(bin, "runtime.memstats")) return *v;
  return receiver_in_code(bin, "memstats", "runtime.(*mcache).refill",
                          {"runtime.(*consistentHeapStats).acquire", "runtime.(*consistentHeapStats).release"});
}

}  // namespace gort::core
