// go_statement_start (go_statement.h). The shapes, 1.21-1.26 amd64:
//   LEAQ main.main.gowrap1(SB), CX ; ... (closure object built) ... CALL runtime.newproc
//   LEAQ main.f·f(SB), AX (a funcval in rodata: its first word is main.f) ; CALL runtime.newproc
// and the wrapper calls the user function directly.
#include "core/disasm/go_statement.h"

#include "core/disasm/decoder.h"

#include <cstring>

namespace gort::core {
namespace {

bool is_runtime(std::string_view fn) {
  return fn.starts_with("runtime.") || fn.starts_with("internal/") || fn.starts_with("sync.") ||
         fn.starts_with("sync/atomic.");
}

/// A function entry at ADDR, or at the pointer stored at ADDR (a funcval).
std::optional<FuncInfo> function_value(const GoBinary& bin, RemoteAddr addr) {
  if (auto f = bin.pclntab().find_func(addr); f && f->entry == addr) return f;
  auto word = bin.elf().read(addr, 8);
  if (!word || word->size() < 8) return std::nullopt;
  uint64_t p;
  std::memcpy(&p, word->data(), 8);
  if (auto f = bin.pclntab().find_func(RemoteAddr(p)); f && f->entry == RemoteAddr(p)) return f;
  return std::nullopt;
}

}  // namespace

Result<std::vector<std::string>> go_statement_start(const GoBinary& bin, std::string_view creator, uint64_t offset) {
  auto fn = bin.func(creator);
  if (!fn) return make_error(ErrorKind::kNotFound, "{} is not in the binary", creator);
  RemoteAddr ret = fn->entry + offset;
  GORT_TRY(auto dec, Decoder::create());
  GORT_TRY(auto code, bin.code(*fn));
  auto insns = dec.decode(code, fn->entry);
  size_t call = insns.size();
  for (size_t i = 0; i < insns.size(); i++)
    if (insns[i].is_call() && insns[i].next() == ret) call = i;
  if (call == insns.size()) return make_error(ErrorKind::kNotFound, "no call returns to {}+{:#x}", creator, offset);
  // The closest function value loaded before the call, not past the previous newproc.
  std::optional<FuncInfo> started;
  for (size_t k = call; k-- > 0 && call - k <= 64 && !started;) {
    const Insn& in = insns[k];
    if (in.is_call() && in.target) {
      auto callee = bin.pclntab().find_func(*in.target);
      if (callee && callee->name == "runtime.newproc") break;
    }
    if (in.mnem == Mnem::kLea && in.op_count == 2 && in.ops[1].is_mem() && in.ops[1].base == Reg::kRip)
      started = function_value(bin, in.next() + in.ops[1].disp);
  }
  if (!started) return make_error(ErrorKind::kNotFound, "no function value before the go statement at {}+{:#x}", creator, offset);
  std::vector<std::string> out{std::string(started->name)};
  // A compiler wrapper calls the user's function with the saved arguments.
  std::string_view name = started->name;
  auto last = name.substr(name.rfind('.') + 1);
  bool wrapper = last.starts_with("gowrap") || last.starts_with("func");
  if (wrapper) {
    GORT_TRY(auto wcode, bin.code(*started));
    std::vector<std::string> callees;
    for (auto& in : dec.decode(wcode, started->entry)) {
      if (!in.is_call() || !in.target) continue;
      auto callee = bin.pclntab().find_func(*in.target);
      if (callee && !is_runtime(callee->name)) callees.emplace_back(callee->name);
    }
    if (callees.size() == 1 && (last.starts_with("gowrap") || callees[0] != out[0])) out.push_back(callees[0]);
  }
  return out;
}

}  // namespace gort::core
