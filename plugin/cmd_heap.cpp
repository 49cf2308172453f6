// `gort ptr ADDR... [--json]` (also `gort heap ptr`): what each address is, as `gort heap
// ptr`: a heap object (base, size, allocated or free, marked), a global, a goroutine's
// stack, code. `gort heap scan [--stacks] [--json]`: integer-held addresses of freed heap
// objects, as `gort heap scan`. Both read the stopped process or core through LLDB
// (lldb_target.h); the work is core's (core/goruntime/heap.h, addr_info.h,
// core/analysis/dangling.h), and the goroutines are read as recorder/cmd_heap.cpp does
// (dead ones included: their g structs are runtime holders too), so the answers match.

// Registered here, run by core/front/commands.cpp (shared with the GDB extension).

#include "plugin/commands.h"
#include "plugin/lldb_target.h"

#include <string>

namespace gort::plugin {
namespace {

constexpr const char* kPtrHelp =
    "What each address is, as `gort heap ptr`: a heap object (base, size, allocated or free, marked, its span), "
    "freed heap pages, a global, a goroutine's stack (goroutine, frame), code, or unknown. ADDR: hex, decimal, a "
    "register ($rbx), a symbol or an expression. The process must be stopped (LLDB holds a live one stopped) or be a "
    "core. --json: one object per ADDR.";
constexpr const char* kPtrSyntax = "ADDR... [--json]\n  e.g. gort ptr 0xc000123450 $rbx --json";

}  // namespace

void register_heap_commands(lldb::SBCommand& root) {
  root.AddCommand("ptr", new FrontCommand("ptr"), kPtrHelp, (std::string("gort ptr ") + kPtrSyntax).c_str());
  lldb::SBCommand heap = root.AddMultiwordCommand(
      "heap", "The Go heap of the stopped process or core (gort heap scan, gort heap ptr).");
  heap.AddCommand(
      "scan", new FrontCommand("heap scan"),
      "Find integer-held heap addresses, as `gort heap scan`: words in memory the GC keeps (globals, live heap objects "
      "including pointer-free ones such as a []uintptr's array) whose value points into a heap object the GC did not "
      "keep (a free slot, an object the last completed GC cycle did not mark, freed pages): a uintptr or handle whose "
      "object is gone or about to go. Each finding names the holder, the target object and its state, the GC cycle and "
      "how it was established. The process must be stopped: a live one LLDB already holds stopped (nothing else stops "
      "it); a core is judged against its last completed GC cycle. --stacks: scan goroutine stacks too (no stack maps "
      "yet: a dead slot of a live frame can be reported). --json: the schema of docs/heap.md.",
      "gort heap scan [--stacks] [--json]");
  heap.AddCommand("ptr", new FrontCommand("heap ptr"), kPtrHelp,
                  (std::string("gort heap ptr ") + kPtrSyntax).c_str());
}

}  // namespace gort::plugin
