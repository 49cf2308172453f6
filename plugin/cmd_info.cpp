// `gort info`: what gort knows about the selected target's executable (the same model
// `gort inspect` prints): Go version, map implementation, layout source, probe counts.
// `gort version`: the plugin's version.

#include "plugin/commands.h"
#include "plugin/lldb_target.h"

#include <fmt/core.h>

#include <exception>

namespace gort::plugin {
namespace {

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
  root.AddCommand("info", new FrontCommand("info"),
                  "Show the target's Go version, map implementation, layout source and probe plan size.",
                  "gort info");
  root.AddCommand("version", new VersionCommand(), "Print the gort plugin version.", "gort version");
}

}  // namespace gort::plugin
