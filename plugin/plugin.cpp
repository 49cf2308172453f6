// libgort-lldb.so: `plugin load libgort-lldb.so` registers the `gort` command tree,
// configures Go's signals for the selected target (or the dummy target, for targets
// created later) and says what it found. One file per command (cmd_*.cpp).

#include "plugin/commands.h"
#include "plugin/go_setup.h"
#include "plugin/probe_session.h"

#include <string>

namespace lldb {
__attribute__((visibility("default"))) bool PluginInitialize(lldb::SBDebugger debugger) {
  lldb::SBCommandInterpreter interp = debugger.GetCommandInterpreter();
  lldb::SBCommand gort = interp.AddMultiwordCommand(
      "gort", "Go runtime-aware debugging (gort): goroutines, maps, the heap, map-write and write-barrier breakpoints.");
  if (!gort.IsValid()) return false;
  gort::plugin::register_commands(gort);
  gort::plugin::install_leave_guards(debugger);
  std::string line = gort::plugin::describe_and_configure(debugger) + "\n";
  lldb::SBFile out = debugger.GetOutputFile();
  if (out.IsValid()) {
    size_t written = 0;
    out.Write(reinterpret_cast<const uint8_t*>(line.data()), line.size(), &written);
    out.Flush();
  }
  return true;
}
}  // namespace lldb
