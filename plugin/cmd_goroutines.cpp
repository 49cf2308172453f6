// `gort goroutines [--all] [--json]`: the goroutine list of the stopped target (allgs).
// `gort bt [GOID] [--json]`: one goroutine's stack, by frame pointers, with inlined frames.
// The current goroutine is the selected thread's g (TLS g at fs_base-8, else R14), or
// m.curg when that thread is on its system stack (g0/gsignal).
// Core does the work (core/goruntime/goroutines.h, unwind.h); this file adapts and prints.

#include "core/goruntime/goroutines.h"
#include "core/goruntime/unwind.h"
#include "plugin/commands.h"
#include "plugin/lldb_target.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <exception>
#include <string>
#include <vector>

namespace gort::plugin {
namespace {

std::vector<std::string> args_of(char** command) {
  std::vector<std::string> out;
  for (; command && *command; ++command) out.emplace_back(*command);
  return out;
}

struct Listing {
  GoTarget t;
  core::AllgsLocation allgs;
  std::vector<core::Goroutine> gs;
  std::vector<core::ThreadRegs> regs;
};

core::Result<Listing> list(lldb::SBDebugger& debugger, bool include_dead) {
  GORT_TRY(GoTarget t, open_go_target(debugger));
  GORT_TRY(core::AllgsLocation loc, core::find_allgs(*t.bin));
  GORT_TRY(auto gs, core::read_goroutines(*t.mem, t.bin->layouts(), t.bin->version(), loc.addr + t.slide,
                                          {.include_dead = include_dead}));
  core::classify_system(t.bin->pclntab(), t.slide, gs);
  GORT_TRY(auto regs, t.threads->threads());
  return Listing{std::move(t), std::move(loc), std::move(gs), std::move(regs)};
}

core::Result<core::Unwound> stack_of(const Listing& l, const core::Goroutine& g, uint64_t* tid) {
  auto start = core::unwind_start_for(*l.t.mem, g, l.regs, tid);
  return core::unwind(*l.t.mem, l.t.bin->pclntab(), l.t.slide, start);
}

std::string where(const core::SourceFrame* f) {
  if (!f) return "?";
  return fmt::format("{} at {}:{}", f->function, f->file, f->line);
}

// The selected thread's user goroutine, or an error saying why there is none.
core::Result<core::RemoteAddr> selected_g(const Listing& l) {
  lldb::SBThread th = l.t.process.GetSelectedThread();
  if (!th.IsValid()) return core::make_error(core::ErrorKind::kNotFound, "no selected thread");
  core::ThreadRegs r = LldbThreads::regs_of(th);
  GORT_TRY(core::RemoteAddr g, core::thread_g(*l.t.mem, r));
  GORT_TRY(core::RemoteAddr ug, core::user_g(*l.t.mem, l.t.bin->layouts(), g));
  if (ug.is_null()) {
    return core::make_error(core::ErrorKind::kNotFound,
                            "thread {} runs no goroutine (system stack, m.curg is nil); give a GOID: `gort bt GOID`",
                            r.tid);
  }
  return ug;
}

nlohmann::json frames_json(const core::Unwound& u, int64_t slide) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& f : u.frames) {
    for (const auto& s : f.sources) {
      a.push_back({{"pc", fmt::format("{}", f.pc)}, {"link_pc", fmt::format("{}", f.pc - slide)},
                   {"function", std::string(s.function)}, {"file", std::string(s.file)}, {"line", s.line},
                   {"inlined", s.inlined}});
    }
    if (f.sources.empty()) a.push_back({{"pc", fmt::format("{}", f.pc)}, {"function", nullptr}});
  }
  return a;
}

class GoroutinesCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override {
    try {
      bool all = false, json = false;
      for (const auto& a : args_of(command)) {
        if (a == "--all" || a == "-a") all = true;
        else if (a == "--json") json = true;
        else {
          result.SetError(fmt::format("gort goroutines: unknown argument '{}'; usage: gort goroutines [--all] [--json]", a).c_str());
          return false;
        }
      }
      auto l = list(debugger, all);
      if (!l) {
        result.SetError(fmt::format("gort goroutines: {}", l.error().message).c_str());
        return false;
      }
      core::RemoteAddr current = selected_g(*l).value_or(core::RemoteAddr());
      size_t hidden = 0;
      nlohmann::json j = nlohmann::json::array();
      std::string text = fmt::format("  {:>6}  {:<10} {:<22} {:>8}  {}\n", "GOID", "STATUS", "WAIT REASON", "THREAD", "WHERE");
      for (const auto& g : l->gs) {
        if (g.system && !all) {
          ++hidden;
          continue;
        }
        uint64_t tid = 0;
        auto u = stack_of(*l, g, &tid);
        const core::SourceFrame* f = u ? core::innermost_user_frame(*u) : nullptr;
        std::string loc = u ? where(f) : fmt::format("? ({})", u.error().message);
        std::string thread = g.thread_id ? fmt::format("{}", g.thread_id) : "";
        if (json) {
          nlohmann::json e = {{"goid", g.goid}, {"g", fmt::format("{}", g.g)}, {"status", core::g_status_name(g.status)},
                              {"wait_reason", g.wait_reason_name}, {"system", g.system}, {"current", g.g == current}};
          e["thread"] = g.thread_id ? nlohmann::json(g.thread_id) : nlohmann::json(nullptr);
          if (f) e["where"] = {{"function", std::string(f->function)}, {"file", std::string(f->file)}, {"line", f->line}};
          j.push_back(std::move(e));
        } else {
          text += fmt::format("{} {:>6}  {:<10} {:<22} {:>8}  {}{}\n", g.g == current ? '*' : ' ', g.goid,
                              core::g_status_name(g.status), g.wait_reason_name, thread, loc,
                              g.system ? " (system)" : "");
        }
      }
      if (json) {
        result.Printf("%s\n", j.dump(2).c_str());
      } else {
        result.Printf("%s", text.c_str());
        result.Printf("%s\n", fmt::format("{} goroutines{}", l->gs.size() - hidden,
                                          hidden ? fmt::format(" ({} runtime goroutines hidden; --all shows them and dead ones)", hidden)
                                                 : std::string())
                                  .c_str());
      }
      result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
      return true;
    } catch (const std::exception& e) {
      result.SetError(fmt::format("gort goroutines: internal error: {}", e.what()).c_str());
      return false;
    }
  }
};

class BtCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override {
    try {
      bool json = false;
      std::optional<uint64_t> goid;
      for (const auto& a : args_of(command)) {
        if (a == "--json") {
          json = true;
          continue;
        }
        try {
          size_t used = 0;
          goid = std::stoull(a, &used, 0);
          if (used != a.size()) throw std::invalid_argument(a);
        } catch (const std::logic_error&) {
          result.SetError(fmt::format("gort bt: '{}' is not a goroutine id; usage: gort bt [GOID] [--json]", a).c_str());
          return false;
        }
      }
      auto l = list(debugger, false);
      if (!l) {
        result.SetError(fmt::format("gort bt: {}", l.error().message).c_str());
        return false;
      }
      const core::Goroutine* g = nullptr;
      if (goid) {
        for (const auto& x : l->gs) if (x.goid == *goid) g = &x;
        if (!g) {
          result.SetError(fmt::format("gort bt: no live goroutine {}; `gort goroutines --all` lists them", *goid).c_str());
          return false;
        }
      } else {
        auto cur = selected_g(*l);
        if (!cur) {
          result.SetError(fmt::format("gort bt: {}", cur.error().message).c_str());
          return false;
        }
        for (const auto& x : l->gs) if (x.g == *cur) g = &x;
        if (!g) {
          result.SetError(fmt::format("gort bt: the selected thread's g {} is not in runtime.allgs", *cur).c_str());
          return false;
        }
      }
      uint64_t tid = 0;
      auto u = stack_of(*l, *g, &tid);
      if (!u) {
        result.SetError(fmt::format("gort bt: goroutine {}: {}", g->goid, u.error().message).c_str());
        return false;
      }
      if (json) {
        nlohmann::json j = {{"goid", g->goid}, {"status", core::g_status_name(g->status)},
                            {"wait_reason", g->wait_reason_name}, {"frames", frames_json(*u, l->t.slide)},
                            {"stop_reason", u->stop_reason}};
        j["thread"] = g->thread_id ? nlohmann::json(g->thread_id) : nlohmann::json(nullptr);
        result.Printf("%s\n", j.dump(2).c_str());
      } else {
        std::string state = core::g_status_name(g->status);
        if (!g->wait_reason_name.empty()) state += ", " + g->wait_reason_name;
        if (g->thread_id) state += fmt::format(", thread {}", g->thread_id);
        std::string text = fmt::format("goroutine {} [{}]:\n", g->goid, state);
        size_t n = 0;
        for (const auto& f : u->frames) {
          if (f.sources.empty()) text += fmt::format("#{:<3} {:#018x} ?\n", n++, f.pc.value());
          for (const auto& s : f.sources) {
            text += fmt::format("#{:<3} {:#018x} {}{} at {}:{}\n", n++, f.pc.value(), s.function,
                                s.inlined ? " (inlined)" : "", s.file, s.line);
          }
        }
        if (u->stop_reason != "runtime.goexit") text += fmt::format("(unwinding stopped: {})\n", u->stop_reason);
        result.Printf("%s", text.c_str());
      }
      result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
      return true;
    } catch (const std::exception& e) {
      result.SetError(fmt::format("gort bt: internal error: {}", e.what()).c_str());
      return false;
    }
  }
};

}  // namespace

void register_goroutine_commands(lldb::SBCommand& root) {
  root.AddCommand("goroutines", new GoroutinesCommand(),
                  "List the goroutines of the stopped Go program: id, status, wait reason, thread if running, "
                  "and the innermost user-code frame. '*' marks the selected thread's goroutine. Runtime "
                  "goroutines and dead ones are hidden unless --all.",
                  "gort goroutines [--all] [--json]");
  root.AddCommand("bt", new BtCommand(),
                  "Backtrace of one goroutine (default: the selected thread's), by frame pointers, with inlined "
                  "frames, from the thread's registers if it runs, else from its saved g.sched.",
                  "gort bt [GOID] [--json]");
}

}  // namespace gort::plugin
