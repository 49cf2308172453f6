// Frame-pointer unwinder for goroutine stacks (Go on amd64 keeps frame pointers since 1.7;
// prologue PUSHQ BP; MOVQ SP,BP in 1.21+, so [BP] = caller's BP, [BP+8] = return address:
// go-runtime.md section 10). The innermost frame may be mid-prologue or frameless, so its
// caller comes from the pcsp table instead (runtime/symtab.go funcspdelta). Caller PCs are
// return addresses and are symbolized at PC-1 (runtime/traceback.go symPC), except right
// after an injected call (asyncPreempt, sigpanic), where the caller PC is the faulting one.

#include "core/goruntime/unwind.h"

#include <fmt/format.h>

namespace gort::core {

namespace {
bool is_goexit(std::string_view n) { return n == "runtime.goexit" || n == "runtime.goexit.abi0"; }
bool is_injected(std::string_view n) {
  return n == "runtime.asyncPreempt" || n == "runtime.asyncPreempt.abi0" || n == "runtime.sigpanic";
}
}  // namespace

Result<Unwound> unwind(const Memory& mem, const Pclntab& pcln, int64_t slide, UnwindStart start, UnwindOptions opts) {
  Unwound out;
  RemoteAddr pc = start.pc, sp = start.sp, bp = start.bp;
  bool return_address = start.pc_is_return_address;
  for (size_t i = 0;; ++i) {
    if (i >= opts.max_frames) {
      out.stop_reason = "frame limit";
      break;
    }
    RemoteAddr link_pc = pc - slide;
    auto f = pcln.find_func(link_pc);
    if (!f) {
      out.frames.push_back(StackFrame{pc, sp, {}});
      out.stop_reason = fmt::format("pc {} in no Go function", pc);
      break;
    }
    RemoteAddr sym_pc = (return_address && link_pc > f->entry) ? link_pc - 1 : link_pc;
    StackFrame frame{pc, sp, {}};
    GORT_TRY_VOID(pcln.symbolize_into(sym_pc, frame.sources));
    out.frames.push_back(std::move(frame));
    if (is_goexit(f->name)) {
      out.stop_reason = "runtime.goexit";
      break;
    }
    RemoteAddr ret, caller_sp, caller_bp;
    if (i == 0) {
      // pcsp gives the frame size at PC (0 at entry and in frameless leaves).
      auto delta = pcln.sp_delta(link_pc);
      if (!delta || *delta < 0) {
        out.stop_reason = fmt::format("no pcsp value at {}", pc);
        break;
      }
      RemoteAddr cfa = sp + *delta + 8;
      auto r = mem.read_ptr(cfa - 8);
      if (!r) {
        out.stop_reason = fmt::format("cannot read return address at {}", cfa - 8);
        break;
      }
      ret = *r;
      caller_sp = cfa;
      if (*delta >= 8) {
        // The frame has pushed BP (the first thing a function with a frame does).
        auto b = mem.read_ptr(cfa - 16);
        if (!b) {
          out.stop_reason = fmt::format("cannot read saved bp at {}", cfa - 16);
          break;
        }
        caller_bp = *b;
      } else {
        caller_bp = bp;
      }
    } else {
      if (bp.is_null() || bp < sp) {
        out.stop_reason = fmt::format("bp {}", bp);
        break;
      }
      auto b = mem.read_ptr(bp);
      auto r = mem.read_ptr(bp + 8);
      if (!b || !r) {
        out.stop_reason = fmt::format("cannot read frame at bp {}", bp);
        break;
      }
      ret = *r;
      caller_sp = bp + 16;
      caller_bp = *b;
    }
    if (ret.is_null()) {
      out.stop_reason = "return address 0";
      break;
    }
    return_address = !is_injected(f->name);
    pc = ret;
    sp = caller_sp;
    bp = caller_bp;
  }
  return out;
}

UnwindStart unwind_start_for(const Memory& mem, const Goroutine& g, const std::vector<ThreadRegs>& threads,
                             uint64_t* thread_out) {
  if (thread_out) *thread_out = 0;
  uint32_t st = g.status & ~static_cast<uint32_t>(kGscan);
  if (st == kGrunning && !g.m.is_null()) {
    for (const ThreadRegs& t : threads) {
      if (t.tid != g.thread_id) continue;
      auto tg = thread_g(mem, t);
      if (tg && *tg == g.g) {
        if (thread_out) *thread_out = t.tid;
        return {RemoteAddr(t.rip), RemoteAddr(t.rsp), RemoteAddr(t.rbp), false};
      }
    }
  }
  return {g.sched_pc, g.sched_sp, g.sched_bp, true};
}

bool is_stdlib_function(std::string_view name) {
  std::string_view n = name.substr(0, name.find('['));  // type arguments may hold any path
  size_t slash = n.rfind('/');
  size_t last = slash == std::string_view::npos ? 0 : slash + 1;
  std::string_view pkg = n.substr(0, last + n.substr(last).find('.'));
  if (pkg == "main") return false;
  return pkg.substr(0, pkg.find('/')).find('.') == std::string_view::npos;
}

const StackFrame* frame_holding(const Unwound& u, RemoteAddr addr, RemoteAddr stack_hi) {
  for (size_t i = 0; i < u.frames.size(); i++) {
    RemoteAddr hi = i + 1 < u.frames.size() ? u.frames[i + 1].sp : stack_hi;
    if (addr >= u.frames[i].sp && addr < hi) return u.frames[i].sources.empty() ? nullptr : &u.frames[i];
  }
  return nullptr;
}

const SourceFrame* innermost_user_frame(const Unwound& u) {
  const SourceFrame* not_runtime = nullptr;
  for (const StackFrame& f : u.frames) {
    for (const SourceFrame& s : f.sources) {
      if (!is_stdlib_function(s.function)) return &s;
      if (!not_runtime && !s.function.starts_with("runtime.")) not_runtime = &s;
    }
  }
  if (not_runtime) return not_runtime;
  if (!u.frames.empty() && !u.frames[0].sources.empty()) return &u.frames[0].sources[0];
  return nullptr;
}

}  // namespace gort::core
