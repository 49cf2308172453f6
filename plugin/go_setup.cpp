// Signal policy for Go targets and the plugin's greeting. `process handle` is issued
// through the command interpreter: with no target it lands on LLDB's dummy target, which
// every target created later inherits (checked with lldb-19).

#include "plugin/go_setup.h"

#include "core/front/commands.h"

#include <fmt/core.h>

namespace gort::plugin {
namespace {

bool handle(lldb::SBDebugger& debugger, lldb::SBTarget target, const char* cmd) {
  lldb::SBCommandInterpreter interp = debugger.GetCommandInterpreter();
  lldb::SBTarget previous = debugger.GetSelectedTarget();
  if (target.IsValid()) debugger.SetSelectedTarget(target);
  lldb::SBCommandReturnObject ro;
  interp.HandleCommand(cmd, ro);
  if (previous.IsValid()) debugger.SetSelectedTarget(previous);
  return ro.Succeeded();
}

}  // namespace

bool configure_sigurg(lldb::SBDebugger& debugger, lldb::SBTarget target) {
  return handle(debugger, target, "process handle SIGURG --notify false --pass true --stop false");
}

bool configure_sigtrap(lldb::SBDebugger& debugger, lldb::SBTarget target) {
  return handle(debugger, target, "process handle SIGTRAP --notify true --pass false --stop true");
}

std::string target_executable(lldb::SBTarget target, std::string& error) {
  if (!target.IsValid()) {
    error = "no target; create one first (`target create ./prog`, `process attach -p PID`)";
    return {};
  }
  lldb::SBFileSpec exe = target.GetExecutable();
  char path[4096];
  if (!exe.IsValid() || exe.GetPath(path, sizeof path) == 0) {
    error = "the target has no executable file";
    return {};
  }
  return path;
}

std::string describe_and_configure(lldb::SBDebugger& debugger) {
  lldb::SBTarget target = debugger.GetSelectedTarget();
  if (!target.IsValid()) {
    bool ok = configure_sigurg(debugger, target);
    return fmt::format("gort: loaded. {}Create a target and run `gort info`; `help gort` lists the commands.",
                       ok ? "Targets created from now on pass SIGURG (Go preemption) silently. " : "");
  }
  std::string err;
  std::string path = target_executable(target, err);
  if (path.empty()) return fmt::format("gort: loaded; {}", err);
  auto desc = core::front::describe_binary(path);
  if (!desc) return fmt::format("gort: loaded; {}. Nothing was changed.", desc.error().message);
  bool ok = configure_sigurg(debugger, target);
  return fmt::format("gort: {}{}", *desc,
                     ok ? "; SIGURG (Go preemption) passed silently" : "; could not set SIGURG handling");
}

}  // namespace gort::plugin
