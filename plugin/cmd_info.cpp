// `gort info`: what gort knows about the selected target's executable (the same model
// `gort inspect` prints): Go version, map implementation, layout source, probe counts.
// `gort version`: the plugin's version.

#include "core/binary/go_binary.h"
#include "core/disasm/probe_plan.h"
#include "plugin/commands.h"

#include <fmt/core.h>

#include <exception>

namespace gort::plugin {
namespace {

class InfoCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override {
    try {
      lldb::SBTarget target = debugger.GetSelectedTarget();
      if (!target.IsValid()) {
        result.SetError("gort info: no target; create one first (`target create ./prog`, `process attach -p PID`)");
        return false;
      }
      char path[4096];
      lldb::SBFileSpec exe = target.GetExecutable();
      if (!exe.IsValid() || exe.GetPath(path, sizeof path) == 0) {
        result.SetError("gort info: the target has no executable file");
        return false;
      }
      auto bin = core::GoBinary::open(path);
      if (!bin) {
        result.SetError(fmt::format("gort info: {}\n", bin.error().message).c_str());
        return false;
      }
      const auto& b = **bin;
      result.Printf("%s\n", fmt::format("binary   {}{}{}", path, b.elf().is_pie() ? " (PIE)" : "",
                                        b.stripped() ? " (stripped)" : "").c_str());
      result.Printf("%s\n", fmt::format("go       {}", b.version().raw).c_str());
      result.Printf("%s\n", fmt::format("maps     {}", core::to_string(b.map_impl())).c_str());
      result.Printf("%s\n", fmt::format("layouts  {}", core::to_string(b.layout_source())).c_str());
      auto plan = core::build_probe_plan(b);
      if (plan) {
        size_t maps = 0, wb = 0;
        for (auto& p : plan->probes) (p.role == core::ProbeRole::kWriteBarrier ? wb : maps)++;
        result.Printf("%s\n", fmt::format("probes   {} map-write functions, {} write-barrier entries", maps, wb).c_str());
      } else {
        result.Printf("%s\n", fmt::format("probes   unavailable: {}", plan.error().message).c_str());
      }
      result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
      return true;
    } catch (const std::exception& e) {
      result.SetError(fmt::format("gort info: internal error: {}", e.what()).c_str());
      return false;
    }
  }
};

class VersionCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger, char**, lldb::SBCommandReturnObject& result) override {
    result.Printf("gort 0.1.0 (LLDB plugin)\n");
    result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
    return true;
  }
};

}  // namespace

void register_info_commands(lldb::SBCommand& root) {
  root.AddCommand("info", new InfoCommand(),
                  "Show the target's Go version, map implementation, layout source and probe plan size.",
                  "gort info");
  root.AddCommand("version", new VersionCommand(), "Print the gort plugin version.", "gort version");
}

}  // namespace gort::plugin
