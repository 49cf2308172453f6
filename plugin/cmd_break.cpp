// `gort break maps`, `gort break wb`, `gort break clear`, `gort watch map`, and the
// stop-hook's `gort hit`: breakpoints on the map-write entries or the gcWriteBarrierN
// entries of the probe plan (hardware through perf_event_open, or LLDB software
// breakpoints at the exact entry address), a one-byte hardware write watchpoint on one
// map's writing flag, and their removal. Each map hit prints/logs the goroutine, thread,
// operation, map, key and the Go caller (map_event.h); each barrier hit the goroutine,
// caller, and the slots and new values it guards (wb_event.h).
// ../shared/reference/platform.md: LLDB 19 cannot place hardware execution breakpoints;
// perf sigtrap stops arrive as SIGTRAP, which must never reach the Go program.

#include "core/front/probe_select.h"
#include "core/goruntime/map_event.h"
#include "plugin/commands.h"
#include "plugin/go_setup.h"
#include "plugin/probe_session.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <string>
#include <vector>

namespace gort::plugin {
namespace {

/// "2 hardware (SIGTRAP stops)", "1 hardware (sampling, non-stop)", or "0 hardware".
std::string hardware_count(size_t hw, core::ProbeMode mode) {
  if (hw == 0) return "0 hardware";
  return fmt::format("{} hardware ({})", hw, mode == core::ProbeMode::kSample ? "sampling, non-stop" : "SIGTRAP stops");
}

std::vector<std::string> args_of(char** command) {
  std::vector<std::string> a;
  for (char** p = command; p && *p; ++p) a.emplace_back(*p);
  return a;
}

// A number (0x... or decimal), or $REG: that register of the selected thread's frame 0
// (at a map-write stop, `$rbx` is the map).
bool parse_addr(const std::string& s, uint64_t& out, lldb::SBDebugger* debugger = nullptr) {
  if (s.size() > 1 && s[0] == '$' && debugger) {
    lldb::SBFrame f = debugger->GetSelectedTarget().GetProcess().GetSelectedThread().GetFrameAtIndex(0);
    lldb::SBValue v = f.IsValid() ? f.FindRegister(s.c_str() + 1) : lldb::SBValue();
    if (!v.IsValid()) return false;
    lldb::SBError err;
    out = v.GetValueAsUnsigned(err, 0);
    return err.Success();
  }
  try {
    size_t used = 0;
    out = std::stoull(s, &used, 0);
    return used == s.size();
  } catch (...) {
    return false;
  }
}

bool process_live(lldb::SBProcess p) {
  if (!p.IsValid()) return false;
  lldb::StateType st = p.GetState();
  return st == lldb::eStateStopped || st == lldb::eStateRunning || st == lldb::eStateStepping || st == lldb::eStateSuspended;
}

void fail(lldb::SBCommandReturnObject& result, const std::string& msg) { result.SetError(msg.c_str()); }

struct Placed {
  size_t hw = 0, sw = 0;
};

// Places PROBES (in debug-register priority order): with HW the first 4 on perf hardware
// breakpoints (deferred to runtime.rt0_go without a process) and the rest, or any the
// kernel refuses, on LLDB software breakpoints. Prints one line per probe.
Placed place(lldb::SBDebugger debugger, lldb::SBTarget target, ProbeSession& s, const std::vector<core::Probe>& probes,
             bool hw, core::ProbeMode mode, lldb::SBCommandReturnObject& result) {
  std::vector<core::Probe> hw_probes, sw_probes;
  if (hw) {
    for (size_t i = 0; i < probes.size(); ++i) (i < 4 ? hw_probes : sw_probes).push_back(probes[i]);
  } else {
    sw_probes = probes;
  }
  if (!hw_probes.empty()) {
    if (mode == core::ProbeMode::kSigtrap) configure_sigtrap(debugger, target);
    lldb::SBProcess process = target.GetProcess();
    if (process_live(process)) {
      auto st = s.add_perf(static_cast<int>(process.GetProcessID()), load_slide(target), hw_probes, mode);
      if (!st) {
        result.Printf("gort: hardware breakpoints unavailable (%s); using software breakpoints\n", st.error().message.c_str());
        sw_probes.insert(sw_probes.begin(), hw_probes.begin(), hw_probes.end());
        hw_probes.clear();
      } else {
        std::vector<core::Probe> placed;
        for (size_t i = 0; i < st->size(); ++i) {
          const auto& ps = (*st)[i];
          if (ps.backend == core::ProbeBackend::kNone) {
            result.Printf("gort: %s: no debug register (%s): software breakpoint instead\n",
                          hw_probes[i].function.c_str(), ps.error.c_str());
            sw_probes.push_back(hw_probes[i]);
          } else {
            placed.push_back(hw_probes[i]);
          }
        }
        hw_probes = placed;
      }
    } else {
      s.defer_perf_until_launch(target, hw_probes, mode);
      result.Printf("gort: no process yet: hardware breakpoints are placed when it starts (at runtime.rt0_go)\n");
    }
    if (mode == core::ProbeMode::kSigtrap && !hw_probes.empty()) s.ensure_stop_hook(debugger, target);
  }
  for (auto& p : hw_probes)
    result.Printf("%s\n", fmt::format("gort: hardware  {} {} at {:#x}", core::front::probe_label(p), p.function,
                                      p.entry.value()).c_str());
  size_t sw_ok = 0;
  for (auto& p : sw_probes) {
    lldb::SBBreakpoint bp = s.add_sw_break(target, p, mode == core::ProbeMode::kSigtrap);
    if (!bp.IsValid()) {
      result.Printf("%s\n", fmt::format("gort: {}: LLDB could not create a breakpoint", p.function).c_str());
      continue;
    }
    ++sw_ok;
    result.Printf("%s\n", fmt::format("gort: software  {} {} at {:#x} (breakpoint {})", core::front::probe_label(p), p.function,
                                      p.entry.value(), bp.GetID()).c_str());
  }
  return Placed{hw_probes.size(), sw_ok};
}

class BreakMapsCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override {
    try {
      return run(debugger, args_of(command), result);
    } catch (const std::exception& e) {
      fail(result, fmt::format("gort break maps: internal error: {}", e.what()));
      return false;
    }
  }

 private:
  bool run(lldb::SBDebugger debugger, const std::vector<std::string>& args, lldb::SBCommandReturnObject& result) {
    bool hw = true, cont = false;
    std::optional<uint64_t> map;
    std::string log;
    std::vector<std::string> funcs;
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      auto value = [&](const char* what) -> const std::string* {
        if (i + 1 >= args.size()) {
          fail(result, fmt::format("gort break maps: {} needs {}", a, what));
          return nullptr;
        }
        return &args[++i];
      };
      if (a == "--hw") hw = true;
      else if (a == "--sw") hw = false;
      else if (a == "--continue" || a == "-c") cont = true;
      else if (a == "--map") {
        auto v = value("a map address");
        uint64_t m;
        if (!v) return false;
        if (!parse_addr(*v, m, &debugger)) return fail(result, fmt::format("gort break maps: bad map address '{}'", *v)), false;
        map = m;
      } else if (a == "--log") {
        auto v = value("a file name");
        if (!v) return false;
        log = *v;
      } else if (a == "--func") {
        auto v = value("a function name");
        if (!v) return false;
        funcs.push_back(*v);
      } else {
        return fail(result, fmt::format("gort break maps: unknown argument '{}'; see `help gort break maps`", a)), false;
      }
    }
    lldb::SBTarget target = debugger.GetSelectedTarget();
    if (!target.IsValid()) return fail(result, "gort break maps: no target; create one first (`target create ./prog`)"), false;
    ProbeSession& s = ProbeSession::of(debugger);
    if (auto r = s.load(target); !r) return fail(result, fmt::format("gort break maps: {}", r.error().message)), false;

    auto selected = core::front::select_map_probes(s.plan(), funcs);
    if (!selected) return fail(result, fmt::format("gort break maps: {}", selected.error().message)), false;
    std::vector<core::Probe> probes = std::move(*selected);

    if (!log.empty()) {
      if (auto r = s.open_log(log); !r) return fail(result, fmt::format("gort break maps: {}", r.error().message)), false;
    }
    s.map_filter = map;
    s.continue_mode = cont;
    configure_sigurg(debugger, target);
    // A perf breakpoint cannot filter by map: stop mode with --map needs callbacks.
    if (hw && map && !cont) {
      result.Printf("gort: --map in stop mode uses software breakpoints (a hardware breakpoint cannot skip other maps)\n");
      hw = false;
    }

    core::ProbeMode mode = cont ? core::ProbeMode::kSample : core::ProbeMode::kSigtrap;
    Placed placed = place(debugger, target, s, probes, hw, mode, result);
    result.Printf("%s\n", fmt::format("gort: {} map-write function(s): {}, {} software; {}{}{}",
                                      placed.hw + placed.sw, hardware_count(placed.hw, mode),
                                      placed.sw, cont ? "hits are logged, the program keeps running" : "each hit stops",
                                      map ? fmt::format("; only map {:#x}", *map) : "",
                                      log.empty() ? "" : fmt::format("; log {}", log)).c_str());
    result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
    return true;
  }
};

class BreakWbCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override {
    try {
      return run(debugger, args_of(command), result);
    } catch (const std::exception& e) {
      fail(result, fmt::format("gort break wb: internal error: {}", e.what()));
      return false;
    }
  }

 private:
  bool run(lldb::SBDebugger debugger, const std::vector<std::string>& args, lldb::SBCommandReturnObject& result) {
    bool hw = true, cont = false;
    std::string log;
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a == "--hw") hw = true;
      else if (a == "--sw") hw = false;
      else if (a == "--continue" || a == "-c") cont = true;
      else if (a == "--log" && i + 1 < args.size()) log = args[++i];
      else if (a == "--log") return fail(result, "gort break wb: --log needs a file name"), false;
      else return fail(result, fmt::format("gort break wb: unknown argument '{}'; see `help gort break wb`", a)), false;
    }
    lldb::SBTarget target = debugger.GetSelectedTarget();
    if (!target.IsValid()) return fail(result, "gort break wb: no target; create one first (`target create ./prog`)"), false;
    ProbeSession& s = ProbeSession::of(debugger);
    if (auto r = s.load(target); !r) return fail(result, fmt::format("gort break wb: {}", r.error().message)), false;
    auto selected = core::front::select_wb_probes(s.plan());
    if (!selected) return fail(result, fmt::format("gort break wb: {}", selected.error().message)), false;
    std::vector<core::Probe> probes = std::move(*selected);
    if (!log.empty()) {
      if (auto r = s.open_log(log); !r) return fail(result, fmt::format("gort break wb: {}", r.error().message)), false;
    }
    s.continue_mode = cont;
    configure_sigurg(debugger, target);
    core::ProbeMode mode = cont ? core::ProbeMode::kSample : core::ProbeMode::kSigtrap;
    Placed placed = place(debugger, target, s, probes, hw, mode, result);
    result.Printf("%s\n", fmt::format("gort: {} write-barrier entr{}: {}, {} software; {}{}",
                                      placed.hw + placed.sw, placed.hw + placed.sw == 1 ? "y" : "ies",
                                      hardware_count(placed.hw, mode), placed.sw,
                                      cont ? "hits are logged, the program keeps running" : "each hit stops",
                                      log.empty() ? "" : fmt::format("; log {}", log)).c_str());
    result.Printf("gort: write barriers run only while the GC is marking: hits come in bursts during GC cycles\n");
    result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
    return true;
  }
};

class BreakClearCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char**, lldb::SBCommandReturnObject& result) override {
    try {
      std::string summary = ProbeSession::of(debugger).clear(debugger);
      result.Printf("gort: %s\n", summary.c_str());
      result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
      return true;
    } catch (const std::exception& e) {
      fail(result, fmt::format("gort break clear: internal error: {}", e.what()));
      return false;
    }
  }
};

class WatchMapCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override {
    try {
      return run(debugger, args_of(command), result);
    } catch (const std::exception& e) {
      fail(result, fmt::format("gort watch map: internal error: {}", e.what()));
      return false;
    }
  }

 private:
  bool run(lldb::SBDebugger debugger, const std::vector<std::string>& args, lldb::SBCommandReturnObject& result) {
    std::optional<uint64_t> map;
    bool cont = false;
    std::string log;
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--continue" || args[i] == "-c") cont = true;
      else if (args[i] == "--log" && i + 1 < args.size()) log = args[++i];
      else if (uint64_t m; !map && parse_addr(args[i], m, &debugger)) map = m;
      else return fail(result, fmt::format("gort watch map: unexpected argument '{}'; usage: gort watch map ADDR [--continue] [--log FILE]", args[i])), false;
    }
    if (!map) return fail(result, "gort watch map: which map? usage: gort watch map ADDR [--continue] [--log FILE]"), false;
    lldb::SBTarget target = debugger.GetSelectedTarget();
    if (!target.IsValid()) return fail(result, "gort watch map: no target"), false;
    lldb::SBProcess process = target.GetProcess();
    if (!process_live(process)) return fail(result, "gort watch map: no process; run the program to where the map exists first"), false;
    ProbeSession& s = ProbeSession::of(debugger);
    if (auto r = s.load(target); !r) return fail(result, fmt::format("gort watch map: {}", r.error().message)), false;
    const auto& L = s.bin().layouts();
    uint32_t off = s.bin().map_impl() == core::MapImpl::kHmap ? L.hmap_flags : L.smap_writing;
    if (!L.has(off)) return fail(result, "gort watch map: the writing flag's offset is unknown for this Go version"), false;
    WatchInfo w;
    w.map = core::RemoteAddr(*map);
    w.flag = core::RemoteAddr(*map + off);
    if (!log.empty()) {
      if (auto r = s.open_log(log); !r) return fail(result, fmt::format("gort watch map: {}", r.error().message)), false;
    }
    configure_sigurg(debugger, target);
    if (cont) {
      auto st = s.add_perf_watch(static_cast<int>(process.GetProcessID()), load_slide(target), w, core::ProbeMode::kSample);
      if (!st) return fail(result, fmt::format("gort watch map: {}", st.error().message)), false;
      if (st->empty() || (*st)[0].backend == core::ProbeBackend::kNone) {
        return fail(result, fmt::format("gort watch map: no debug register for {:#x}: {}", w.flag.value(),
                                        st->empty() ? "?" : (*st)[0].error)), false;
      }
    } else {
      lldb::SBWatchpointOptions opts;
      opts.SetWatchpointTypeWrite(lldb::eWatchpointWriteTypeAlways);
      lldb::SBError err;
      lldb::SBWatchpoint wp = target.WatchpointCreateByAddress(w.flag.value(), 1, opts, err);
      if (err.Fail() || !wp.IsValid()) {
        return fail(result, fmt::format("gort watch map: LLDB could not watch {:#x}: {}", w.flag.value(),
                                        err.GetCString() ? err.GetCString() : "?")), false;
      }
      w.lldb_id = wp.GetID();
      s.add_lldb_watch(w);
      s.ensure_stop_hook(debugger, target);
    }
    result.Printf("%s\n", fmt::format("gort: watching map {:#x}: 1-byte write watchpoint on its writing flag at {:#x}; {}",
                                      w.map.value(), w.flag.value(),
                                      cont ? "hits are logged, the program keeps running" : "each write stops").c_str());
    result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
    return true;
  }
};

class HitCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char**, lldb::SBCommandReturnObject& result) override {
    try {
      lldb::SBProcess process = debugger.GetSelectedTarget().GetProcess();
      if (process.IsValid() && process.GetState() == lldb::eStateStopped) ProbeSession::of(debugger).report_stops(process);
      result.SetStatus(lldb::eReturnStatusSuccessFinishNoResult);
      return true;
    } catch (const std::exception& e) {
      fail(result, fmt::format("gort hit: internal error: {}", e.what()));
      return false;
    }
  }
};

}  // namespace

void register_break_commands(lldb::SBCommand& root) {
  lldb::SBCommand brk = root.AddMultiwordCommand("break", "Breakpoints on every map write or GC write barrier (gort break maps, gort break wb, gort break clear).");
  brk.AddCommand(
      "maps", new BreakMapsCommand(),
      "Break on the entries of the map-write runtime functions (assign, delete, clear). Each hit prints goroutine, "
      "thread, operation, map, key and the calling Go function with file:line (innermost inlined first). "
      "--hw (default): hardware breakpoints through perf_event_open on up to 4 entries, software breakpoints on the "
      "rest (it says which got what). --sw: LLDB software breakpoints at the exact entries. --continue: log and keep "
      "running (works in `lldb -b`); with --log the hits go only to the file. --log FILE: one JSON object a line. "
      "--map ADDR: only that map's writes (ADDR may be $rbx: a register of the selected frame). --func NAME (repeatable): only those functions. Without a process the "
      "hardware breakpoints are placed when it starts. Remove with `gort break clear`.",
      "gort break maps [--hw|--sw] [--map ADDR] [--continue] [--log FILE] [--func NAME]...");
  brk.AddCommand(
      "wb", new BreakWbCommand(),
      "Break on the GC write-barrier entries runtime.gcWriteBarrier1..8 (Go 1.21+). Each hit prints goroutine, thread, "
      "the barrier, the calling Go function with file:line, and the pointer stores the call guards: slot address and "
      "new value, recovered from the caller's instructions (`?` when the value cannot be told). Write barriers only "
      "run while the GC is marking (writeBarrier.enabled during _GCmark/_GCmarktermination), so hits come in bursts "
      "during GC cycles; GOGC=1 or runtime.GC() in the program makes them frequent. --hw (default): hardware "
      "breakpoints through perf_event_open on 4 entries (gcWriteBarrier2, 1, 4, 3 first), software breakpoints on the "
      "rest (it says which got what). --sw: LLDB software breakpoints only. --continue: log and keep running; with "
      "--log the hits go only to the file. --log FILE: one JSON object a line. Remove with `gort break clear`.",
      "gort break wb [--hw|--sw] [--continue] [--log FILE]");
  brk.AddCommand("clear", new BreakClearCommand(),
                 "Remove every breakpoint, watchpoint, perf event and stop-hook gort made; the program then runs normally.",
                 "gort break clear");
  lldb::SBCommand watch = root.AddMultiwordCommand("watch", "Hardware watchpoints on Go runtime state (gort watch map).");
  watch.AddCommand("map", new WatchMapCommand(),
                   "Watch one map's writing flag (1-byte hardware write watchpoint): every write to that map, by any runtime "
                   "path, stops (or is logged with --continue) with its goroutine, the runtime function and the Go caller. "
                   "ADDR may be a register ($rbx at a map-write stop). Needs a running process. Remove with `gort break clear`.",
                   "gort watch map ADDR [--continue] [--log FILE]");
  root.AddCommand("hit", new HitCommand(),
                  "Internal (run by gort's stop-hook): report threads stopped by a gort hardware breakpoint or watchpoint.",
                  "gort hit");
}

}  // namespace gort::plugin
