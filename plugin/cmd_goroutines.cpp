// `gort goroutines [--all] [--json]` and `gort bt [GOID] [--json]`: registered here, run
// by core/front/commands.cpp (shared with the GDB extension). The current goroutine is the
// selected thread's g (TLS g at fs_base-8, else R14), or m.curg on its system stack.

#include "plugin/commands.h"
#include "plugin/lldb_target.h"

namespace gort::plugin {

void register_goroutine_commands(lldb::SBCommand& root) {
  root.AddCommand("goroutines", new FrontCommand("goroutines"),
                  "List the goroutines of the stopped Go program: id, status, wait reason, thread if running, "
                  "and the innermost user-code frame. '*' marks the selected thread's goroutine. Runtime "
                  "goroutines and dead ones are hidden unless --all.",
                  "gort goroutines [--all] [--json]");
  root.AddCommand("bt", new FrontCommand("bt"),
                  "Backtrace of one goroutine (default: the selected thread's), by frame pointers, with inlined "
                  "frames, from the thread's registers if it runs, else from its saved g.sched.",
                  "gort bt [GOID] [--json]");
}

}  // namespace gort::plugin
