// Postmortem analysis from memory (memory_analysis.h).
//
// rt_sigframe (x86-64, arch/x86/include/asm/sigframe.h): at the handler's entry RSP points
// at {pretcode (the sa_restorer), struct ucontext uc, struct siginfo info, fp state}.
// Kernel ucontext: uc_flags @0, uc_link @8, uc_stack {ss_sp @16, ss_flags @24, ss_size @32},
// uc_mcontext (struct sigcontext, 256 bytes) @40: r8 r9 r10 r11 r12 r13 r14 r15 rdi rsi rbp
// rbx rdx rax rcx rsp rip eflags ..., then a 64-bit uc_sigmask: 304 bytes, so info (si_signo
// first) is at pretcode + 8 + 304.

#include "core/postmortem/memory_analysis.h"

#include "core/disasm/decoder.h"
#include "core/goruntime/goroutines.h"
#include "core/goruntime/maps.h"
#include "core/goruntime/unwind.h"
#include "core/target/core_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <optional>

namespace gort::core::postmortem {

namespace {

constexpr size_t kSignalScanBytes = 64 * 1024;
constexpr uint64_t kUcMcontext = 40;
constexpr uint64_t kSiginfoAfterPretcode = 8 + 304;

std::string_view strip_abi0(std::string_view n) {
  if (n.ends_with(".abi0")) n.remove_suffix(5);
  return n;
}

bool is_signal_frame_function(std::string_view n) {
  n = strip_abi0(n);
  return n == "runtime.sigtramp" || n == "runtime.sigtrampgo" || n == "runtime.sighandler" ||
         n == "runtime.cgoSigtramp" || n == "runtime.sigfwdgo" || n == "runtime.sigreturn__sigaction";
}

bool is_fatal_function(std::string_view n) {
  n = strip_abi0(n);
  return n == "runtime.fatal" || n == "runtime.throw" || n == "internal/runtime/maps.fatal" ||
         n == "runtime.fatalthrow" || n == "runtime.fatalpanic";
}

bool in_runtime(std::string_view n) {
  return n.starts_with("runtime.") || n.starts_with("internal/runtime/");
}

/// The map operation a physical function performs, "" if it is not a map function.
/// ARG_SLOT: which 8-byte argument spill slot holds the map (1 for runtime.map*(t, m, ...),
/// 0 for a (*maps.Map) method's receiver).
struct MapFunc {
  std::string op;
  int arg_slot = 1;
};
std::optional<MapFunc> map_function(std::string_view n) {
  auto op_of = [](std::string_view s) -> std::string {
    if (s.find("mapassign") != s.npos || s.find("PutSlot") != s.npos) return "assign";
    if (s.find("mapdelete") != s.npos || s.ends_with(".Delete")) return "delete";
    if (s.find("mapclear") != s.npos || s.ends_with(".Clear")) return "clear";
    if (s.find("mapaccess") != s.npos || s.ends_with(".Get") || s.find("getWith") != s.npos) return "access";
    if (s.find("mapiter") != s.npos || s.find("(*Iter).") != s.npos) return "iterate";
    if (s.find("mapclone") != s.npos || s.ends_with(".Clone")) return "clone";
    return "";
  };
  if (n.starts_with("runtime.map") || n.starts_with("internal/runtime/maps.runtime_map")) {
    std::string op = op_of(n);
    if (op.empty()) return std::nullopt;
    return MapFunc{op, 1};
  }
  if (n.starts_with("internal/runtime/maps.(*Map).")) {
    std::string op = op_of(n);
    if (op.empty()) return std::nullopt;
    return MapFunc{op, 0};
  }
  if (n.starts_with("internal/runtime/maps.(*Iter).Next")) return MapFunc{"iterate", -1};
  return std::nullopt;
}

bool is_write_op(std::string_view op) { return op == "assign" || op == "delete" || op == "clear"; }

std::string fatal_for_op(std::string_view op) {
  if (is_write_op(op)) return "concurrent map writes";
  if (op == "access") return "concurrent map read and map write";
  if (op == "iterate") return "concurrent map iteration and map write";
  if (op == "clone") return "concurrent map clone and map write";
  return "";
}

struct Analyzed {
  const Goroutine* g = nullptr;
  Unwound u;
  uint64_t thread = 0;
  std::string start;  ///< "registers", "signal context", "g.sched"
  std::vector<bool> ret_addr;  ///< per frame: PC is a return address
  int fatal_frame = -1;        ///< innermost fatal function frame
  int map_frame = -1;          ///< outermost map function frame
  MapFunc map_func;
  std::optional<uint64_t> map;
};

bool stack_contains(const Goroutine& g, uint64_t sp) {
  return sp >= g.stack_lo.value() && sp < g.stack_hi.value();
}

}  // namespace

Result<SignalContext> recover_signal_context(const GoBinary& bin, const Memory& mem, int64_t slide,
                                             const ThreadRegs& thread) {
  std::optional<FuncInfo> restorer = bin.func("runtime.sigreturn__sigaction");
  if (!restorer) restorer = bin.func("runtime.sigreturn__sigaction.abi0");
  if (!restorer) return make_error(ErrorKind::kNotFound, "no runtime.sigreturn__sigaction in the binary");
  // Only threads that are in Go's signal path: their first frames name it.
  auto u = unwind(mem, bin.pclntab(), slide, {RemoteAddr(thread.rip), RemoteAddr(thread.rsp), RemoteAddr(thread.rbp), false},
                  {.max_frames = 16});
  bool in_handler = false;
  if (u) {
    for (const auto& f : u->frames) in_handler = in_handler || is_signal_frame_function(f.function());
  }
  if (!in_handler) return make_error(ErrorKind::kNotFound, "thread {} is not in a signal handler", thread.tid);
  uint64_t want = restorer->entry.value() + static_cast<uint64_t>(slide);
  uint64_t sp = thread.rsp & ~uint64_t(7);
  std::vector<uint64_t> words(512);
  for (uint64_t base = sp, page_end = 0; base < sp + kSignalScanBytes; base = page_end) {
    // Page by page, so the first unmapped page ends the scan, not the whole read.
    page_end = (base | 0xfff) + 1;
    size_t n = static_cast<size_t>((page_end - base) / 8);
    std::span<uint8_t> out(reinterpret_cast<uint8_t*>(words.data()), n * 8);
    if (!mem.read(RemoteAddr(base), out)) break;
    for (size_t i = 0; i < n; ++i) {
      if (words[i] != want) continue;
      uint64_t at = base + i * 8;
      uint64_t uc = at + 8;
      std::array<uint64_t, 17> g{};
      std::span<uint8_t> gb(reinterpret_cast<uint8_t*>(g.data()), sizeof g);
      if (!mem.read(RemoteAddr(uc + kUcMcontext), gb)) continue;
      auto flags = mem.read_u64(RemoteAddr(uc));
      auto link = mem.read_u64(RemoteAddr(uc + 8));
      auto signo = mem.read_u32(RemoteAddr(at + kSiginfoAfterPretcode));
      if (!flags || *flags > 0xffff || !link || *link != 0 || !signo || *signo == 0 || *signo > 64) continue;
      if (g[15] == 0 || g[16] == 0) continue;  // rsp, rip
      SignalContext c;
      c.ucontext = RemoteAddr(uc);
      ThreadRegs& r = c.regs;
      r.tid = thread.tid;
      r.fs_base = thread.fs_base;
      r.r8 = g[0]; r.r9 = g[1]; r.r10 = g[2]; r.r11 = g[3]; r.r12 = g[4]; r.r13 = g[5]; r.r14 = g[6];
      r.r15 = g[7]; r.rdi = g[8]; r.rsi = g[9]; r.rbp = g[10]; r.rbx = g[11]; r.rdx = g[12]; r.rax = g[13];
      r.rcx = g[14]; r.rsp = g[15]; r.rip = g[16];
      r.stop_reason = "interrupted by " + signal_name(static_cast<int>(*signo));
      return c;
    }
  }
  return make_error(ErrorKind::kNotFound, "thread {} is in a signal handler but no signal frame was found above rsp {:#x}",
                    thread.tid, thread.rsp);
}

Result<Verdict> analyze_memory(const MemoryEvidence& ev) {
  const GoBinary& bin = *ev.bin;
  const Memory& mem = *ev.mem;
  const Pclntab& pcln = bin.pclntab();
  Verdict v;

  GORT_TRY(AllgsLocation loc, find_allgs(bin));
  GORT_TRY(auto gs, read_goroutines(mem, bin.layouts(), bin.version(), loc.addr + ev.slide));
  classify_system(pcln, ev.slide, gs);

  // Signal contexts of threads stopped in Go's signal handling.
  std::map<uint64_t, SignalContext> sigctx;
  for (const ThreadRegs& t : ev.threads) {
    auto c = recover_signal_context(bin, mem, ev.slide, t);
    if (c) sigctx.emplace(t.tid, std::move(*c));
  }

  std::vector<Analyzed> all;
  for (const Goroutine& g : gs) {
    Analyzed a;
    a.g = &g;
    UnwindStart start{g.sched_pc, g.sched_sp, g.sched_bp, true};
    a.start = "g.sched";
    uint32_t st = g.status & ~static_cast<uint32_t>(kGscan);
    if (st == kGrunning && g.thread_id != 0) {
      for (const ThreadRegs& t : ev.threads) {
        if (t.tid != g.thread_id) continue;
        auto c = sigctx.find(t.tid);
        if (c != sigctx.end() && stack_contains(g, c->second.regs.rsp)) {
          const ThreadRegs& r = c->second.regs;
          start = {RemoteAddr(r.rip), RemoteAddr(r.rsp), RemoteAddr(r.rbp), false};
          a.start = "signal context";
          a.thread = t.tid;
        } else if (stack_contains(g, t.rsp)) {
          start = {RemoteAddr(t.rip), RemoteAddr(t.rsp), RemoteAddr(t.rbp), false};
          a.start = "registers";
          a.thread = t.tid;
        }
      }
    }
    if (a.thread == 0 && g.thread_id != 0) a.thread = g.thread_id;
    if (start.pc.is_null()) continue;  // never ran
    auto u = unwind(mem, pcln, ev.slide, start);
    if (!u) {
      v.notes.push_back(fmt::format("goroutine {}: cannot unwind: {}", g.goid, u.error().message));
      continue;
    }
    a.u = std::move(*u);
    bool ret = start.pc_is_return_address;
    for (size_t i = 0; i < a.u.frames.size(); ++i) {
      a.ret_addr.push_back(ret);
      std::string_view fn = a.u.frames[i].function();
      ret = !(strip_abi0(fn) == "runtime.asyncPreempt" || fn == "runtime.sigpanic");
      if (a.fatal_frame < 0 && is_fatal_function(fn)) a.fatal_frame = static_cast<int>(i);
      if (auto mf = map_function(fn)) {
        a.map_frame = static_cast<int>(i);
        a.map_func = *mf;
      }
    }
    // The map pointer from the outermost map function's argument spill slot.
    if (a.map_frame >= 0 && a.map_func.arg_slot >= 0) {
      const StackFrame& f = a.u.frames[static_cast<size_t>(a.map_frame)];
      RemoteAddr link_pc = f.pc - ev.slide;
      if (a.ret_addr[static_cast<size_t>(a.map_frame)]) link_pc = link_pc - 1;
      auto delta = pcln.sp_delta(link_pc);
      if (delta && *delta >= 0) {
        RemoteAddr cfa = f.sp + static_cast<uint64_t>(*delta) + 8;
        auto m = mem.read_u64(cfa + 8 * static_cast<uint64_t>(a.map_func.arg_slot));
        if (m && *m != 0 && read_map_header(mem, bin.layouts(), bin.map_impl(), RemoteAddr(*m))) a.map = *m;
      }
    }
    all.push_back(std::move(a));
  }
  if (!sigctx.empty()) {
    std::vector<std::string> ts;
    for (const auto& [tid, c] : sigctx) ts.push_back(fmt::format("{} ({})", tid, c.regs.stop_reason));
    v.notes.push_back(fmt::format("signal frames found on threads {}: their interrupted registers were used",
                                  fmt::join(ts, ", ")));
  }

  // The thrower: a goroutine in runtime.fatal/throw; a running one first.
  const Analyzed* thrower = nullptr;
  for (const Analyzed& a : all) {
    if (a.fatal_frame < 0) continue;
    bool running = (a.g->status & ~static_cast<uint32_t>(kGscan)) == kGrunning;
    if (!thrower || (running && (thrower->g->status & ~static_cast<uint32_t>(kGscan)) != kGrunning)) thrower = &a;
  }

  // The fatal message, from the string argument of runtime.fatal / runtime.throw.
  if (thrower) {
    for (size_t i = 0; i < thrower->u.frames.size() && v.fatal_message.empty(); ++i) {
      const StackFrame& f = thrower->u.frames[i];
      std::string_view fn = strip_abi0(f.function());
      if (fn != "runtime.fatal" && fn != "runtime.throw" && fn != "internal/runtime/maps.fatal") continue;
      RemoteAddr link_pc = f.pc - ev.slide;
      if (thrower->ret_addr[i]) link_pc = link_pc - 1;
      auto delta = pcln.sp_delta(link_pc);
      if (!delta || *delta < 0) continue;
      RemoteAddr cfa = f.sp + static_cast<uint64_t>(*delta) + 8;
      // The string's pointer spill slot is reliable; its length's is not in every version
      // (Go 1.23 leaves it stale), so the runtime's own messages are matched by their bytes.
      auto p = mem.read_u64(cfa);
      auto n = mem.read_u64(cfa + 8);
      if (!p || *p == 0) continue;
      auto bytes_at = [&](size_t len) -> std::optional<std::string> {
        std::string s(len, '\0');
        std::span<uint8_t> sb(reinterpret_cast<uint8_t*>(s.data()), s.size());
        if (!mem.read(RemoteAddr(*p), sb)) {
          // The message is in .rodata, which a core does not hold: read it from the binary.
          auto b = bin.elf().read(RemoteAddr(*p) - ev.slide, s.size());
          if (!b) return std::nullopt;
          std::copy(b->begin(), b->end(), sb.begin());
        }
        return s;
      };
      for (const char* known : {"concurrent map read and map write", "concurrent map iteration and map write",
                                "concurrent map clone and map write", "concurrent map writes"}) {
        auto s = bytes_at(std::strlen(known));
        if (s && *s == known) {
          v.fatal_message = known;
          break;
        }
      }
      if (!v.fatal_message.empty() || !n || *n < 4 || *n > 512) continue;
      auto s = bytes_at(*n);
      if (s && std::all_of(s->begin(), s->end(), [](char c) { return c >= 0x20 && c < 0x7f; })) v.fatal_message = *s;
    }
    if (v.fatal_message.empty() && thrower->map_frame >= 0) {
      v.fatal_message = fatal_for_op(thrower->map_func.op);
      v.notes.push_back("the fatal message was not readable from runtime.fatal's argument; inferred from " +
                        std::string(thrower->u.frames[static_cast<size_t>(thrower->map_frame)].function()));
    }
  } else {
    v.notes.push_back("no goroutine is in runtime.fatal or runtime.throw: this core is not from a Go fatal error "
                      "(a signal, or a core taken with gcore?)");
  }
  v.fatal = fatal_kind_of(v.fatal_message);
  if (thrower && thrower->map) v.map = thrower->map;

  auto writer_of = [&](const Analyzed& a, const char* role) {
    Writer w;
    w.goroutine = a.g->goid;
    w.state = g_status_name(a.g->status);
    if (!a.g->wait_reason_name.empty()) w.state += ", " + a.g->wait_reason_name;
    w.role = role;
    w.thread = a.thread;
    w.map = a.map;
    size_t first_user = 0;
    if (a.map_frame >= 0) {
      w.op = a.map_func.op;
      w.function = std::string(strip_abi0(a.u.frames[static_cast<size_t>(a.map_frame)].function()));
      first_user = static_cast<size_t>(a.map_frame) + 1;
    } else if (a.fatal_frame >= 0) {
      first_user = static_cast<size_t>(a.fatal_frame) + 1;
    }
    for (size_t i = first_user; i < a.u.frames.size(); ++i) {
      const StackFrame& f = a.u.frames[i];
      if (f.sources.empty()) {
        w.stack.push_back(Frame{"?", "", 0, f.pc.value(), false});
        continue;
      }
      for (const SourceFrame& s : f.sources) {
        if (in_runtime(s.function)) continue;
        w.stack.push_back(Frame{std::string(s.function), std::string(s.file), s.line, f.pc.value(), s.inlined});
      }
    }
    return w;
  };

  if (thrower) v.writers.push_back(writer_of(*thrower, "threw"));
  size_t unknown_map = 0;
  for (const Analyzed& a : all) {
    if (&a == thrower || a.map_frame < 0 || a.g->system) continue;
    bool write = is_write_op(a.map_func.op);
    // The other side of a read/iterate/clone fatal is a writer; of a write fatal, a writer too.
    if (!write && !(thrower == nullptr && a.map)) continue;
    if (v.map && a.map && *a.map != *v.map) {
      v.notes.push_back(fmt::format("goroutine {} writes another map ({:#x}): not counted", a.g->goid, *a.map));
      continue;
    }
    if (!a.map) ++unknown_map;
    v.writers.push_back(writer_of(a, "other"));
  }
  // Fewer than two inside a map write: the other writer may have been between two writes
  // when the world stopped (its thread was preempted in its own loop). A goroutine that was
  // running (not parked) in a user function that calls a map write is named, as a guess.
  size_t inside = 0;
  for (const Writer& w : v.writers) inside += w.op.empty() ? 0 : 1;
  if (thrower && thrower->map_frame >= 0 && is_write_op(thrower->map_func.op) && inside < 2) {
    auto dec = Decoder::create();
    for (const Analyzed& a : all) {
      if (!dec || &a == thrower || a.map_frame >= 0 || a.g->system) continue;
      uint32_t st = a.g->status & ~static_cast<uint32_t>(kGscan);
      if (st != kGrunning && st != kGrunnable && st != kGpreempted) continue;
      size_t user = 0;
      while (user < a.u.frames.size() && (a.u.frames[user].sources.empty() || in_runtime(a.u.frames[user].function())))
        ++user;
      if (user >= a.u.frames.size()) continue;
      auto f = pcln.find_func(a.u.frames[user].pc - ev.slide);
      if (!f) continue;
      auto code = bin.code(*f);
      if (!code) continue;
      std::string callee;
      for (const Insn& in : dec->decode(*code, f->entry)) {
        if (!in.is_call() || !in.target) continue;
        auto cf = pcln.find_func(*in.target);
        if (!cf || cf->entry != *in.target) continue;
        auto mf = map_function(cf->name);
        if (mf && is_write_op(mf->op)) {
          callee = std::string(cf->name);
          break;
        }
      }
      if (callee.empty()) continue;
      Analyzed guess = a;
      guess.map_frame = static_cast<int>(user) - 1;  // the stack starts at the user frame
      Writer w = writer_of(guess, "other");
      w.op = map_function(callee)->op;
      w.function.clear();
      v.writers.push_back(std::move(w));
      v.notes.push_back(fmt::format(
          "goroutine {} was not inside a map write when the world stopped, but was running {}, which calls {}: "
          "named as the other writer (a guess: no map pointer to compare)",
          a.g->goid, a.u.frames[user].function(), callee));
    }
  }
  if (!v.map) {
    for (const Writer& w : v.writers)
      if (w.map) { v.map = w.map; break; }
  }
  if (unknown_map) {
    v.notes.push_back(fmt::format("{} writer(s) with no readable map pointer in their map function's frame: counted as "
                                  "writers of this map",
                                  unknown_map));
  }

  // The map header.
  if (v.map) {
    auto h = read_map_header(mem, bin.layouts(), bin.map_impl(), RemoteAddr(*v.map));
    if (h) {
      if (h->impl == MapImpl::kSwiss) {
        v.notes.push_back(fmt::format("map {:#x} (swiss): {} entries, {}, writing={} ({})", *v.map, h->count,
                                      h->small() ? "small (one group)" : fmt::format("{} tables", h->tables.size()),
                                      h->writing_byte,
                                      h->writing ? "a writer was inside it when the process died" : "no writer inside"));
      } else {
        v.notes.push_back(fmt::format("map {:#x} (hmap): {} entries, B={}, flags={:#x} ({})", *v.map, h->count, h->b,
                                      h->flags,
                                      h->writing ? "hashWriting set: a writer was inside it when the process died"
                                                 : "hashWriting clear"));
      }
    } else {
      v.notes.push_back(fmt::format("map {:#x}: header unreadable: {}", *v.map, h.error().message));
    }
  }

  size_t writers_in_map = 0;
  for (const Writer& w : v.writers) writers_in_map += w.function.empty() ? 0 : 1;
  if (is_map_fatal(v.fatal)) {
    v.complete = writers_in_map >= 2;
    if (v.complete) {
      v.advice = fmt::format(
          "these goroutines use map {} at the same time: guard every access to it with one sync.Mutex (or "
          "sync.RWMutex for many readers), or give each goroutine its own map; a -race build confirms the fix",
          v.map ? fmt::format("{:#x}", *v.map) : std::string("(unknown)"));
    } else {
      v.advice =
          "only the goroutine that threw is inside a map operation: the other one had left it before the runtime "
          "stopped the world. Rerun with GOTRACEBACK=crash for another core, or record the writes as they happen "
          "with `gort record -- PROGRAM` and `gort report` (docs/record.md)";
    }
  } else {
    v.complete = thrower != nullptr;
    v.advice = thrower ? "not a map fatal error: the goroutine that threw is shown; `gort bt` in LLDB shows any other"
                       : "no Go fatal error in this core; open it in LLDB (`gort goroutines`, `gort bt`)";
  }
  return v;
}

}  // namespace gort::core::postmortem
