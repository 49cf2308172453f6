#pragma once
// What a Go target needs from LLDB, set once per target: SIGURG (goroutine preemption,
// thousands a second) passed to the program without stopping or printing; SIGTRAP from
// gort's perf breakpoints never delivered to the program (Go would crash on it).
// ../shared/reference/platform.md ("Debuggers", "perf_event_open").

#include <lldb/API/LLDB.h>

#include <string>

namespace gort::plugin {

/// SIGURG: pass, no stop, no notify. Applies to TARGET, or to the dummy target (inherited
/// by targets created later) when TARGET is invalid. Returns false if LLDB refused.
bool configure_sigurg(lldb::SBDebugger& debugger, lldb::SBTarget target);

/// SIGTRAP: do not pass to the program, stop and notify (a gort hardware breakpoint hit).
/// Call before creating sigtrap-mode perf breakpoints on TARGET's process.
bool configure_sigtrap(lldb::SBDebugger& debugger, lldb::SBTarget target);

/// The line PluginInitialize prints: what was found in the selected target (Go version,
/// map implementation) and what was configured; or why nothing was.
std::string describe_and_configure(lldb::SBDebugger& debugger);

/// The selected target's executable path, or "" (with ERROR set) when there is none.
std::string target_executable(lldb::SBTarget target, std::string& error);

}  // namespace gort::plugin
