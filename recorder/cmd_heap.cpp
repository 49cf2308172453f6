// gort heap scan|ptr: the Go heap of a stopped process or a core. `scan` finds integer-held
// heap addresses (dangling pointers, core/analysis/dangling.h); `ptr` says what addresses
// are (core/goruntime/addr_info.h).

#include "core/analysis/dangling.h"
#include "core/goruntime/addr_info.h"
#include "core/goruntime/goroutines.h"
#include "core/goruntime/heap.h"
#include "core/util/strings.h"
#include "recorder/cli.h"
#include "recorder/target_open.h"

#include <fmt/core.h>

#include <climits>
#include <unistd.h>

namespace gort::recorder {
namespace {

constexpr const char* kUsage = R"(Usage: gort heap scan (-p PID | BIN CORE) [--stacks] [--json] [--fail-on-findings]
       gort heap ptr  (-p PID | BIN CORE) ADDR... [--json]

scan: find integer-held heap addresses: words in memory the GC keeps (globals, live heap
objects including pointer-free ones such as a []uintptr's array) whose value points into
a heap object the GC did not keep: a free slot, an object the last completed GC cycle did
not mark, or freed pages. A pointer the GC knew of would have kept its target alive, so
such a word is an integer (a uintptr, a handle) whose object is gone or about to go:
reading it back through unsafe.Pointer reads whatever reuses the memory.

Each finding names the holder (a global symbol+offset, or the heap object and the
globals that reference it), the target object (address, size, state), the GC cycle, and
how it was established. A live process is held stopped (ptrace) only while it is read,
then runs on; a core is judged against its last completed GC cycle.

ptr: what each ADDR is: a heap object (base, size, size class, allocated or free,
marked), a global (symbol+offset), a goroutine's stack (goroutine, frame), code, or
nothing gort knows.

Options:
  -p, --pid PID        a live process (root, or ptrace permission)
  --stacks             scan goroutine stacks too; gort does not read stack maps yet, so a
                       dead pointer slot in a live frame can be reported (off by default)
  --json               machine-readable output (docs/heap.md has the schema)
  --fail-on-findings   exit 3 when a dangling pointer is found

Examples:
  gort heap scan -p $(pidof server)
  gort heap scan ./server core.1234 --json | jq '.findings[].holder.text'
  gort heap ptr -p 4242 0xc000123450

Exit status: 0 when the command ran; 3 with --fail-on-findings and a finding; 2 for bad
input (no such process, not a Go program, a core of another binary); 1 when the heap
cannot be read.
)";

}  // namespace

int print_addresses(const OpenTarget& t, const core::Heap& heap, const std::vector<core::Goroutine>& gs,
                    const std::vector<core::RemoteAddr>& addrs, bool json, const char* who) {
  core::GlobalIndex globals(*t.bin, t.slide);
  nlohmann::json out = nlohmann::json::array();
  for (auto a : addrs) {
    auto info = core::describe_address(t.memory(), *t.bin, t.slide, heap, globals, gs, t.threads, a);
    if (!info) return report_error(info.error(), who);
    if (json) out.push_back(core::to_json(*info));
    else fmt::print("{}", core::to_text(*info, heap.state()));
  }
  if (json) fmt::print("{}\n", out.dump(2));
  return kExitOk;
}

std::vector<core::Goroutine> all_goroutines(const core::Memory& mem, const core::GoBinary& bin, int64_t slide) {
  std::vector<core::Goroutine> gs;
  if (auto loc = core::find_allgs(bin); loc.ok()) {
    core::GoroutineListOptions lo;
    lo.include_dead = true;  // dead gs' structs are runtime holders too
    if (auto r = core::read_goroutines(mem, bin.layouts(), bin.version(), loc->addr + slide, lo); r.ok()) gs = *r;
  }
  return gs;
}

std::vector<core::Goroutine> all_goroutines(const OpenTarget& t) { return all_goroutines(t.memory(), *t.bin, t.slide); }

namespace {

int run_heap(const Args& args) {
  const char* who = "gort heap";
  std::vector<std::string> pos;
  bool json = false, stacks = false, fail = false;
  int pid = 0;
  OptionParser p(args);
  std::string tok, v;
  while (p.next(tok)) {
    if (tok == "--json") json = true;
    else if (tok == "--stacks") stacks = true;
    else if (tok == "--fail-on-findings") fail = true;
    else if (tok == "-p" || tok == "--pid") {
      uint64_t n = 0;
      if (!p.value(v)) return usage_error(kHeapCommand, "-p needs a process id");
      if (!core::parse_u64(v, n) || n == 0 || n > INT32_MAX)
        return usage_error(kHeapCommand, fmt::format("'{}' is not a process id", v));
      pid = static_cast<int>(n);
    } else if (p.is_option(tok)) return usage_error(kHeapCommand, fmt::format("unknown option '{}'", tok));
    else pos.push_back(tok);
  }
  if (pos.empty() || (pos[0] != "scan" && pos[0] != "ptr"))
    return usage_error(kHeapCommand, pos.empty() ? "missing subcommand: scan or ptr" : "unknown subcommand '" + pos[0] + "'");
  const std::string sub = pos[0];
  pos.erase(pos.begin());
  std::vector<std::string> addrs;
  if (pid == 0) {
    if (pos.size() < 2) return usage_error(kHeapCommand, "give -p PID, or BIN and CORE");
    addrs.assign(pos.begin() + 2, pos.end());
  } else {
    addrs = pos;
  }
  if (sub == "scan" && !addrs.empty()) return usage_error(kHeapCommand, fmt::format("unexpected '{}'", addrs[0]));
  if (sub == "ptr" && addrs.empty()) return usage_error(kHeapCommand, "ptr needs at least one ADDR");
  std::vector<core::RemoteAddr> parsed;
  for (auto& a : addrs) {
    uint64_t x = 0;
    if (!core::parse_u64(a, x, 0))
      return usage_error(kHeapCommand, fmt::format("'{}' is not an address (0x... or decimal)", a));
    parsed.emplace_back(x);
  }

  auto t = pid ? open_live_target(pid) : open_core_target(pos[0], pos[1]);
  if (!t) return report_error(t.error(), who);
  const core::GoBinary& bin = *t->bin;
  const core::Memory& mem = t->memory();
  auto heap = core::Heap::open(mem, bin, t->slide);
  if (!heap) return report_error(heap.error().with_context(t->name), who);
  std::vector<core::Goroutine> gs = all_goroutines(*t);
  if (sub == "ptr") return print_addresses(*t, *heap, gs, parsed, json, who);

  core::analysis::ScanOptions so;
  so.stacks = stacks;
  bool tty = !json && isatty(2);
  if (tty)
    so.progress = [](uint64_t done, uint64_t total) {
      fmt::print(stderr, "\rscanning: {} / {} MB", done >> 20, total >> 20);
    };
  auto r = core::analysis::scan_dangling(mem, bin, t->slide, *heap, gs, t->threads, so);
  if (tty) fmt::print(stderr, "\r\033[K");
  t->freeze.reset();  // the process runs again before we print
  if (json) fmt::print("{}\n", core::analysis::to_json(r).dump(2));
  else fmt::print("{}", core::analysis::to_text(r));
  return fail && !r.findings.empty() ? 3 : kExitOk;
}

}  // namespace

const Command kHeapCommand{"heap", "find integer-held dangling heap addresses; say what an address is", kUsage,
                           run_heap};

}  // namespace gort::recorder
