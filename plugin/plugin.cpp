// libgort-lldb.so: `plugin load libgort-lldb.so` registers the `gort` command tree.
// PluginInitialize and the tree root live here; one file per command (cmd_*.cpp).
// The commands are thin: they adapt SB types to core/ and print.

#include "plugin/commands.h"

namespace lldb {
__attribute__((visibility("default"))) bool PluginInitialize(lldb::SBDebugger debugger) {
  lldb::SBCommandInterpreter interp = debugger.GetCommandInterpreter();
  lldb::SBCommand gort = interp.AddMultiwordCommand(
      "gort", "Go runtime-aware debugging (gort): Go binary info now; goroutines, maps and map-write breakpoints next.");
  if (!gort.IsValid()) return false;
  gort::plugin::register_commands(gort);
  return true;
}
}  // namespace lldb
