// `gort crash [--json] [--bt]`: on a core (or a stopped process), which goroutines used one
// map at the same time: the analysis of `gort postmortem` (core/postmortem/memory_analysis.h)
// through LLDB's memory and threads. LLDB gives each thread's registers at frame 0; for a
// thread inside Go's signal handler the analysis recovers the interrupted registers from
// the signal frame in memory, exactly as from a core file. Output: the shared verdict
// (core/postmortem/verdict.h), text or JSON; --bt adds `gort bt` of every writer.

// Registered here, run by core/front/commands.cpp (shared with the GDB extension).

#include "plugin/commands.h"
#include "plugin/lldb_target.h"

namespace gort::plugin {

void register_crash_commands(lldb::SBCommand& root) {
  root.AddCommand("crash", new FrontCommand("crash"),
                  "On a core file of a Go program that died of a map fatal error (\"concurrent map writes\"): the "
                  "goroutine that threw and every other goroutine inside a write to the same map, with their stacks, "
                  "the map and its header; the same verdict as `gort postmortem BIN CORE`. --bt adds `gort bt` of "
                  "each writer. Threads stopped in Go's signal handler are unwound from their signal frames.",
                  "gort crash [--json] [--bt]");
}

}  // namespace gort::plugin
