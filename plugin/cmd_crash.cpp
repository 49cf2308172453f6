// `gort crash [--json] [--bt]`: on a core (or a stopped process), which goroutines used one
// map at the same time: the analysis of `gort postmortem` (core/postmortem/memory_analysis.h)
// through LLDB's memory and threads. LLDB gives each thread's registers at frame 0; for a
// thread inside Go's signal handler the analysis recovers the interrupted registers from
// the signal frame in memory, exactly as from a core file. Output: the shared verdict
// (core/postmortem/verdict.h), text or JSON; --bt adds `gort bt` of every writer.

#include "core/postmortem/memory_analysis.h"
#include "core/postmortem/verdict.h"
#include "plugin/commands.h"
#include "plugin/lldb_target.h"

#include <fmt/format.h>

#include <exception>
#include <string>

namespace gort::plugin {
namespace {

class CrashCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override {
    try {
      bool json = false, bt = false;
      for (; command && *command; ++command) {
        std::string a = *command;
        if (a == "--json") json = true;
        else if (a == "--bt") bt = true;
        else {
          result.SetError(fmt::format("gort crash: unknown argument '{}'; usage: gort crash [--json] [--bt]", a).c_str());
          return false;
        }
      }
      auto t = open_go_target(debugger);
      if (!t) {
        result.SetError(fmt::format("gort crash: {}", t.error().message).c_str());
        return false;
      }
      auto threads = t->threads->threads();
      if (!threads) {
        result.SetError(fmt::format("gort crash: {}", threads.error().message).c_str());
        return false;
      }
      core::postmortem::MemoryEvidence ev{t->bin.get(), t->mem.get(), std::move(*threads), t->slide, "LLDB"};
      auto v = core::postmortem::analyze_memory(ev);
      if (!v) {
        result.SetError(fmt::format("gort crash: {}", v.error().message).c_str());
        return false;
      }
      if (json) {
        result.Printf("%s\n", core::postmortem::to_json(*v).dump(2).c_str());
      } else {
        result.Printf("%s", core::postmortem::to_text(*v).c_str());
      }
      if (bt) {
        for (const auto& w : v->writers) {
          lldb::SBCommandReturnObject r;
          debugger.GetCommandInterpreter().HandleCommand(fmt::format("gort bt {}", w.goroutine).c_str(), r);
          result.Printf("\n(gort bt %llu)\n%s%s", static_cast<unsigned long long>(w.goroutine),
                        r.GetOutput() ? r.GetOutput() : "", r.GetError() ? r.GetError() : "");
        }
      }
      result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
      return true;
    } catch (const std::exception& e) {
      result.SetError(fmt::format("gort crash: internal error: {}", e.what()).c_str());
      return false;
    }
  }
};

}  // namespace

void register_crash_commands(lldb::SBCommand& root) {
  root.AddCommand("crash", new CrashCommand(),
                  "On a core file of a Go program that died of a map fatal error (\"concurrent map writes\"): the "
                  "goroutine that threw and every other goroutine inside a write to the same map, with their stacks, "
                  "the map and its header; the same verdict as `gort postmortem BIN CORE`. --bt adds `gort bt` of "
                  "each writer. Threads stopped in Go's signal handler are unwound from their signal frames.",
                  "gort crash [--json] [--bt]");
}

}  // namespace gort::plugin
