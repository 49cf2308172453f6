// libgort-lldb.so: `plugin load libgort-lldb.so` registers the `gort` command tree.
// Commands arrive in later issues; this file holds PluginInitialize and the tree root.

#include <lldb/API/LLDB.h>

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
}  // namespace gort::plugin

namespace lldb {
__attribute__((visibility("default"))) bool PluginInitialize(lldb::SBDebugger debugger) {
  lldb::SBCommandInterpreter interp = debugger.GetCommandInterpreter();
  lldb::SBCommand gort = interp.AddMultiwordCommand("gort", "Go runtime-aware debugging: goroutines, maps, map-write breakpoints.");
  if (!gort.IsValid()) return false;
  gort.AddCommand("version", new gort::plugin::VersionCommand(), "Print the gort plugin version.");
  return true;
}
}  // namespace lldb
