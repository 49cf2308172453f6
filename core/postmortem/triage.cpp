// Crash log -> verdict (triage.h). docs/triage.md describes the algorithm.

#include "core/postmortem/triage.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

namespace gort::core::postmortem {

const char* const kAdviceSingle =
    "the log holds only the crashing goroutine (GOTRACEBACK=single, the default): rerun with "
    "GOTRACEBACK=crash (or all), or call debug.SetTraceback(\"all\") in main, to get every goroutine; "
    "the other writer is then in the log";
const char* const kAdviceUnavailable =
    "the other goroutine was running on another thread and its stack was not printed "
    "(\"goroutine running on other thread; stack unavailable\"): rerun with GOTRACEBACK=crash, which "
    "makes the runtime signal every thread so their stacks are printed (or call "
    "debug.SetTraceback(\"crash\") in main)";
const char* const kAdviceHiddenRuntime =
    "the log hides runtime frames (GOTRACEBACK=single or all), so no goroutine shows the map operation "
    "it is in: the goroutines listed as \"candidate\" were running; rerun with GOTRACEBACK=crash (or "
    "system) to see runtime.mapassign* frames with the map pointer";
const char* const kAdviceTruncated =
    "the log is cut short: the goroutines after the cut are missing; capture the whole standard "
    "error of the crashed program (the runtime writes the dump there)";
const char* const kAdviceRaceWindow =
    "no other goroutine was inside a map operation when the runtime printed the stacks: the other "
    "writer had finished its write; the goroutines that were running are listed as \"candidate\". "
    "Rerun (the race is timing-dependent), or use gort record to catch both writers as they write";
const char* const kAdviceFreePointer =
    "the garbage collector found a pointer to an object it had already freed: a pointer kept where the "
    "GC does not see it (a uintptr, memory from syscall.Mmap or C) and turned back into a pointer after "
    "the object died. The stack above is where the GC noticed, not where the pointer was made: build "
    "with -gcflags=all=-d=checkptr or -race to catch the conversion";
const char* const kAdviceFault =
    "the program touched an address that is not mapped: memory released with syscall.Munmap, a "
    "dangling unsafe.Pointer, or a bad uintptr conversion; the goroutine above did the access";

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string op_by_method(std::string_view m) {
  auto low = [&](std::string_view p) {
    return starts_with(m, p) || (m.size() >= p.size() && m[0] == static_cast<char>(p[0] - 'a' + 'A') &&
                                 m.substr(1, p.size() - 1) == p.substr(1));
  };
  if (low("put") || low("assign")) return "assign";
  if (low("delete")) return "delete";
  if (low("clear")) return "clear";
  if (low("get") || low("lookup")) return "access";
  if (low("clone")) return "clone";
  if (low("iter")) return "iterate";
  return "";
}

std::optional<MapOp> runtime_named(std::string_view n) {
  if (starts_with(n, "mapassign")) return MapOp{"assign", 1};
  if (starts_with(n, "mapaccess")) return MapOp{"access", 1};
  if (starts_with(n, "mapdelete")) return MapOp{"delete", 1};
  if (starts_with(n, "mapclear")) return MapOp{"clear", 1};
  if (starts_with(n, "mapclone")) return MapOp{"clone", 1};
  if (starts_with(n, "mapiterinit") || starts_with(n, "mapIterStart")) return MapOp{"iterate", 1};
  if (starts_with(n, "mapiternext") || starts_with(n, "mapIterNext")) return MapOp{"iterate", -1};
  return std::nullopt;
}

struct Parsed {
  const LogGoroutine* g = nullptr;
  bool has_throw = false;
  std::optional<MapOp> op;
  std::string function;            // the map entry point (outermost map frame)
  std::optional<uint64_t> map;
  bool map_certain = false;        // printed without '?'
};

std::optional<uint64_t> arg_value(const LogFrame& f, int idx, bool& certain) {
  if (idx < 0) return std::nullopt;
  auto words = split_args(f.args);
  if (static_cast<size_t>(idx) >= words.size()) return std::nullopt;
  std::string_view w = words[static_cast<size_t>(idx)];
  certain = true;
  if (!w.empty() && w.back() == '?') {
    certain = false;
    w.remove_suffix(1);
  }
  if (!starts_with(w, "0x")) return std::nullopt;
  uint64_t v = 0;
  for (char c : w.substr(2)) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0 || v > (UINT64_MAX >> 4)) return std::nullopt;
    v = v * 16 + static_cast<uint64_t>(d);
  }
  if (v < 0x1000) return std::nullopt;  // 0x0, small ints: not a map pointer
  return v;
}

Parsed analyse(const LogGoroutine& g) {
  Parsed p;
  p.g = &g;
  for (const auto& f : g.frames)
    if (is_throw_function(f.function)) p.has_throw = true;
  // Scan the runtime frames on top of the stack, down to the user's code.
  for (const auto& f : g.frames) {
    auto op = map_op_of(f.function);
    if (!op && !is_runtime_function(f.function)) break;
    if (!op) continue;
    p.op = op;  // outermost wins: the entry point the user's code called
    p.function = f.function;
    bool certain = false;
    auto v = arg_value(f, op->map_arg, certain);
    if (v && (!p.map || (certain && !p.map_certain))) {
      p.map = v;
      p.map_certain = certain;
    }
  }
  return p;
}

/// Goroutines printed more than once (a crash dump, then a thread's own dump; or two
/// throwing threads) merged by id: the copy with the most frames wins.
std::vector<const LogGoroutine*> unique_goroutines(const CrashLog& log) {
  std::vector<const LogGoroutine*> out;
  std::map<uint64_t, size_t> index;
  for (const auto& g : log.goroutines) {
    if (g.id == 0) continue;  // g0 of a thread (crash dumps): not a user goroutine
    auto it = index.find(g.id);
    if (it == index.end()) {
      index.emplace(g.id, out.size());
      out.push_back(&g);
    } else if (g.frames.size() > out[it->second]->frames.size()) {
      out[it->second] = &g;
    }
  }
  return out;
}

std::vector<Frame> user_stack(const LogGoroutine& g, const TriageOptions& opts, std::vector<std::string>& notes) {
  size_t first = 0;
  while (first < g.frames.size() &&
         (is_runtime_function(g.frames[first].function) || map_op_of(g.frames[first].function)))
    ++first;
  size_t last = g.frames.size();
  while (last > first && is_runtime_function(g.frames[last - 1].function)) --last;  // runtime.main, goexit
  if (first >= last) {
    first = 0;
    last = g.frames.size();
  }
  std::vector<Frame> out;
  bool entry_lines = false;
  for (size_t i = first; i < last; ++i) {
    const auto& lf = g.frames[i];
    Frame f{lf.function, lf.file, lf.line, lf.pc, false};
    if (f.file.empty() && lf.pc != 0 && opts.symbolize_pc) {
      // Return addresses (every frame but the innermost) point after the call.
      auto frames = opts.symbolize_pc(i == 0 ? lf.pc : lf.pc - 1);
      if (!frames.empty()) {
        for (auto& sf : frames) {
          if (!sf.inlined) sf.pc = lf.pc;
          out.push_back(std::move(sf));
        }
        continue;
      }
    } else if (f.file.empty() && lf.pc == 0 && opts.function_entry) {
      if (auto e = opts.function_entry(lf.function)) {
        f.file = e->file;
        f.line = e->line;
        entry_lines = true;
      }
    }
    out.push_back(std::move(f));
  }
  if (entry_lines)
    notes.push_back(fmt::format("goroutine {}: the log has no file:line; lines are the functions' first lines "
                                "(from --binary)", g.id));
  return out;
}

bool running_like(const LogGoroutine& g) {
  return g.state == "running" || g.state == "runnable" || g.state == "syscall" || starts_with(g.state, "running");
}

}  // namespace

bool is_throw_function(std::string_view f) {
  return f == "runtime.throw" || f == "runtime.fatal" || f == "runtime.fatalthrow" || f == "runtime.fatalpanic" ||
         f == "internal/runtime/maps.fatal" || f == "runtime.maps_fatal";
}

bool is_runtime_function(std::string_view f) {
  return starts_with(f, "runtime.") || starts_with(f, "internal/runtime/") || f == "maps.clone";
}

bool is_write_op(std::string_view op) { return op == "assign" || op == "delete" || op == "clear"; }

std::optional<MapOp> map_op_of(std::string_view f) {
  if (starts_with(f, "runtime.")) return runtime_named(f.substr(8));
  if (starts_with(f, "reflect.")) return runtime_named(f.substr(8));
  if (starts_with(f, "internal/runtime/maps.runtime_")) return runtime_named(f.substr(30));
  if (f == "maps.clone") return MapOp{"clone", 1};
  constexpr std::string_view kMap = "internal/runtime/maps.(*Map).";
  if (starts_with(f, kMap)) {
    auto op = op_by_method(f.substr(kMap.size()));
    if (!op.empty()) return MapOp{op, 0};
    return std::nullopt;
  }
  constexpr std::string_view kIter = "internal/runtime/maps.(*Iter).";
  if (starts_with(f, kIter)) return MapOp{"iterate", -1};
  constexpr std::string_view kTable = "internal/runtime/maps.(*table).";
  if (starts_with(f, kTable)) {
    auto op = op_by_method(f.substr(kTable.size()));
    if (!op.empty()) return MapOp{op, -1};
  }
  return std::nullopt;
}

Verdict triage(const CrashLog& log, const TriageOptions& opts) {
  Verdict v;
  std::string headline = log.headline();
  v.fatal_message = headline;
  v.fatal = fatal_kind_of(headline);
  if (v.fatal == FatalKind::kUnknown)
    for (const auto& m : log.fatal_messages)
      if (auto k = fatal_kind_of(m); k != FatalKind::kUnknown) {
        v.fatal = k;
        v.fatal_message = m;
        break;
      }
  if (v.fatal_message.empty()) v.fatal_message = log.panic_message;

  auto gs = unique_goroutines(log);
  std::vector<Parsed> parsed;
  parsed.reserve(gs.size());
  for (const auto* g : gs) parsed.push_back(analyse(*g));
  bool map_fatal = is_map_fatal(v.fatal);

  // ---- the goroutine that threw
  const Parsed* thrower = nullptr;
  for (const auto& p : parsed)
    if (p.has_throw && (!map_fatal || p.op)) {
      thrower = &p;
      break;
    }
  if (!thrower)
    for (const auto& p : parsed)
      if (p.has_throw) {
        thrower = &p;
        break;
      }
  if (!thrower && !parsed.empty()) {
    thrower = &parsed.front();
    v.notes.push_back(fmt::format("no throw frame printed: goroutine {} is taken as the one that threw (the first "
                                  "goroutine after the fatal error)", thrower->g->id));
  }

  bool runtime_hidden = true;
  for (const auto* g : gs)
    for (const auto& f : g->frames)
      if (is_runtime_function(f.function) && f.function != "runtime.goexit") runtime_hidden = false;

  auto make_writer = [&](const Parsed& p, const char* role) {
    Writer w;
    w.goroutine = p.g->id;
    w.state = p.g->state;
    w.role = role;
    if (p.op) w.op = p.op->op;
    w.function = p.function;
    w.map = p.map;
    w.stack = user_stack(*p.g, opts, v.notes);
    return w;
  };

  if (!thrower) {
    v.complete = false;
    v.advice = log.truncated ? kAdviceTruncated : kAdviceSingle;
    v.notes.push_back("the log has no goroutine stacks");
    if (!map_fatal && v.fatal == FatalKind::kPointerToFreeObject) v.advice = kAdviceFreePointer;
    return v;
  }
  v.writers.push_back(make_writer(*thrower, "threw"));
  if (!map_fatal) {
    if (v.fatal == FatalKind::kPointerToFreeObject) v.advice = kAdviceFreePointer;
    else if (v.fatal == FatalKind::kUnexpectedFaultAddress) v.advice = kAdviceFault;
    for (const auto& s : log.signals) v.notes.push_back(fmt::format("signal: {}", s.text));
    if (log.truncated) {
      v.complete = false;
      v.notes.push_back("the log is cut short");
    }
    return v;
  }

  v.map = thrower->map;
  if (log.truncated && !log.goroutines.empty())
    v.notes.push_back(fmt::format("the log is cut short inside goroutine {} (line {}): goroutines after it are missing",
                                  log.goroutines.back().id, log.goroutines.back().log_line));
  if (!thrower->op)
    v.notes.push_back(runtime_hidden ? "the throwing goroutine's runtime frames are hidden: map pointer unknown"
                                     : "the throwing goroutine shows no map operation frame: map pointer unknown");
  else if (!thrower->map)
    v.notes.push_back(fmt::format("{} printed no map pointer", thrower->function));

  // ---- every other goroutine inside a map operation on the same map
  std::set<uint64_t> maps_seen;
  for (const auto& p : parsed) {
    if (&p == thrower) continue;
    if (!p.op) {
      // Threw the same fatal error with its map frames hidden (GOTRACEBACK=single/all
      // on Go 1.24+ shows internal/runtime/maps.fatal): it was in a map operation too.
      if (p.has_throw) v.writers.push_back(make_writer(p, "threw"));
      continue;
    }
    // Same map when both pointers are printed; otherwise any write (or another throw).
    bool same = (v.map && p.map) ? *p.map == *v.map : (is_write_op(p.op->op) || p.has_throw);
    if (!same) continue;
    if (!(v.map && p.map))
      v.notes.push_back(fmt::format("goroutine {}: {} in {} on a map whose pointer the log does not show", p.g->id,
                                    p.op->op, p.function));
    if (p.map) maps_seen.insert(*p.map);
    v.writers.push_back(make_writer(p, p.has_throw ? "threw" : "other"));
  }
  if (!v.map && maps_seen.size() == 1) {
    v.map = *maps_seen.begin();
    v.notes.push_back("map pointer taken from the other goroutine's frame");
  }
  if (v.writers.size() > 1) return v;

  // ---- no other writer in the log: say why, and how to get it next time
  v.complete = false;
  bool unavailable = false;
  for (const auto* g : gs)
    if (g != thrower->g && g->stack_unavailable && g->frames.empty()) unavailable = true;
  // At GOTRACEBACK=single/all only the throwing goroutine may show runtime frames (a
  // runtime throw prints them); the others' map frames are hidden.
  bool others_hidden = true;
  for (const auto* g : gs)
    if (g != thrower->g)
      for (const auto& f : g->frames)
        // internal/runtime/maps frames show at level all on Go 1.24+; runtime.* do not.
        if (starts_with(f.function, "runtime.") && f.function != "runtime.goexit") others_hidden = false;
  auto add_candidates = [&] {
    for (const auto& p : parsed)
      if (&p != thrower && running_like(*p.g) && !p.g->frames.empty()) v.writers.push_back(make_writer(p, "candidate"));
  };
  if (unavailable) {
    v.advice = kAdviceUnavailable;
    add_candidates();
    // Its stack is gone, but the "created by" line says which go statement started it:
    // with the binary, that names the function it runs (the likely other writer).
    for (const auto* g : gs) {
      if (g == thrower->g || !g->stack_unavailable || !g->frames.empty() || !opts.go_start || g->created_by.empty())
        continue;
      auto started = opts.go_start(g->created_by, g->created_offset);
      if (started.empty() || is_runtime_function(started.back())) continue;  // a runtime worker
      Writer w;
      w.goroutine = g->id;
      w.state = g->state;
      w.role = "started-as";
      for (auto it = started.rbegin(); it != started.rend(); ++it) {
        Frame f;
        f.function = *it;
        if (opts.function_entry)
          if (auto e = opts.function_entry(*it)) f = *e;
        w.stack.push_back(f);
      }
      w.function = w.stack.front().function;
      v.writers.push_back(w);
      v.notes.push_back(fmt::format(
          "goroutine {}: stack not printed (running on another thread); the go statement at {}:{} started it as {}: "
          "the likely other writer", g->id, g->created_file, g->created_line, w.function));
    }
  } else if (log.truncated) {
    v.advice = kAdviceTruncated;
    add_candidates();
  } else if (gs.size() <= 1) {
    v.advice = kAdviceSingle;
  } else if (others_hidden) {
    add_candidates();
    v.advice = v.writers.size() > 1 ? kAdviceHiddenRuntime : kAdviceSingle;
  } else {
    add_candidates();
    v.advice = kAdviceRaceWindow;
  }
  return v;
}

}  // namespace gort::core::postmortem
