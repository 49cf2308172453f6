// gort postmortem BIN CORE [--json]: the goroutines that wrote one map at the same time,
// from a core file of a Go program that died of "fatal error: concurrent map writes" (or
// another map fatal error), without LLDB: ELF core reader (core/target/core_file.h), then
// the shared memory analysis (core/postmortem/memory_analysis.h) into the shared verdict
// (core/postmortem/verdict.h; `gort crash` in LLDB prints the same).

#include "core/binary/go_binary.h"
#include "core/goruntime/heap.h"
#include "core/postmortem/memory_analysis.h"
#include "core/postmortem/verdict.h"
#include "core/target/core_file.h"
#include "core/util/strings.h"
#include "recorder/cli.h"
#include "recorder/target_open.h"

#include <fmt/core.h>

#include <cstring>

namespace gort::recorder {
namespace {

constexpr const char* kUsage = R"(Usage: gort postmortem BIN CORE [--json] [--ptr ADDR]...

Read a core file of a Go program that died of a map fatal error ("concurrent map writes",
"concurrent map read and map write", ...) and name the goroutines that used the map at
the same time, with their stacks: the one that threw, and every other goroutine that was
inside a write to the same map. BIN is the executable the core came from (its build ID
must match the core's).

How it reads the core: every thread's registers (NT_PRSTATUS); for a thread stopped in
Go's signal handler (GOTRACEBACK=crash), the interrupted registers the kernel saved in its
signal frame; every goroutine from runtime.allgs (parked ones from g.sched); the map
pointer from the map function's argument spill slot; the map header (count, writing flag).

To get a core (docs/postmortem.md):
  ulimit -c unlimited
  GOTRACEBACK=crash ./server          # the runtime aborts with SIGABRT and dumps core
  cat /proc/sys/kernel/core_pattern   # where the kernel writes it ('core' = the cwd;
                                      # '|systemd-coredump': coredumpctl dump -o core PID)

Options:
  --ptr ADDR  say what ADDR is instead (repeatable): a heap object (base, size, allocated
           or free, marked), a global (symbol+offset), a goroutine stack (goroutine,
           frame), code, or nothing known. `gort heap ptr` does the same on a live process
  --json   {"fatal", "map", "writers": [{"goroutine", "state", "role", "op", "function",
           "map", "thread", "stack": [{"function", "file", "line", "pc"}]}], "complete",
           "advice", "notes"}

Examples:
  gort postmortem ./server core.12345
  gort postmortem ./server core.12345 --json | jq '.writers[].stack[0].function'

Exit status: 0 when the analysis ran (whatever it found); 2 when BIN or CORE is missing,
CORE is not a core file or is truncated, or CORE is not from BIN; 1 when the core's
memory cannot be read as this Go program's.
)";

int run_postmortem(const Args& args) {
  std::vector<std::string> pos;
  bool json = false;
  std::vector<core::RemoteAddr> ptrs;
  OptionParser p(args);
  std::string tok, val;
  while (p.next(tok)) {
    if (tok == "--json") json = true;
    else if (tok == "--ptr") {
      uint64_t x = 0;
      if (!p.value(val)) return usage_error(kPostmortemCommand, "--ptr needs an address");
      if (!core::parse_u64(val, x, 0)) return usage_error(kPostmortemCommand, fmt::format("'{}' is not an address", val));
      ptrs.emplace_back(x);
    }
    else if (p.is_option(tok)) return usage_error(kPostmortemCommand, fmt::format("unknown option '{}'", tok));
    else pos.push_back(tok);
  }
  if (pos.size() != 2) {
    return usage_error(kPostmortemCommand, pos.empty() ? "missing BIN and CORE (the executable and its core file)"
                                           : pos.size() == 1 ? "missing CORE (the core file of BIN)"
                                                             : "give one BIN and one CORE");
  }
  const std::string& bin_path = pos[0];
  const std::string& core_path = pos[1];
  const char* who = "gort postmortem";
  auto t = open_core_target(bin_path, core_path);
  if (!t) return report_error(t.error(), who);
  if (!ptrs.empty()) {
    auto heap = core::Heap::open(t->memory(), *t->bin, t->slide);
    if (!heap) return report_error(heap.error().with_context(t->name), who);
    return print_addresses(*t, *heap, all_goroutines(*t), ptrs, json, who);
  }
  core::postmortem::MemoryEvidence ev{t->bin.get(), t->core.get(), t->threads, t->slide, "core file"};
  auto v = core::postmortem::analyze_memory(ev);
  if (!v) return report_error(v.error().with_context(fmt::format("{}", core_path)), who);
  if (t->core->signal()) {
    v->notes.push_back(fmt::format("the process died of {}", core::signal_name(t->core->signal())));
  }
  if (json) fmt::print("{}\n", core::postmortem::to_json(*v).dump(2));
  else fmt::print("{}", core::postmortem::to_text(*v));
  return kExitOk;
}

}  // namespace

const Command kPostmortemCommand{"postmortem", "the goroutines that wrote one map at once, from a core file", kUsage,
                                 run_postmortem};

}  // namespace gort::recorder
