// gort postmortem BIN CORE [--json]: the goroutines that wrote one map at the same time,
// from a core file of a Go program that died of "fatal error: concurrent map writes" (or
// another map fatal error), without LLDB: ELF core reader (core/target/core_file.h), then
// the shared memory analysis (core/postmortem/memory_analysis.h) into the shared verdict
// (core/postmortem/verdict.h; `gort crash` in LLDB prints the same).

#include "core/binary/go_binary.h"
#include "core/postmortem/memory_analysis.h"
#include "core/postmortem/verdict.h"
#include "core/target/core_file.h"
#include "recorder/cli.h"

#include <fmt/core.h>

#include <cstring>

namespace gort::recorder {
namespace {

constexpr const char* kUsage = R"(Usage: gort postmortem BIN CORE [--json]

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

std::string hexdump_id(std::string_view s) {
  std::string out;
  for (char c : s) out += (c >= 0x20 && c < 0x7f) ? std::string(1, c) : fmt::format("\\x{:02x}", uint8_t(c));
  return out;
}

// The core is BIN's: its entry point where auxv says, and its Go build ID note (in the
// first page of the text segment, which the kernel dumps) equal to BIN's.
core::Result<void> check_core_of(const core::GoBinary& bin, const core::CoreFile& c, int64_t slide,
                                 const std::string& bin_path, const std::string& core_path) {
  auto mismatch = [&](std::string why) {
    return core::make_error(core::ErrorKind::kBadInput, "{} is not a core of {}: {}; give the executable that crashed",
                            core_path, bin_path, why);
  };
  if (!bin.elf().is_pie() && slide != 0) {
    return mismatch(fmt::format("the core's entry point {:#x} is not the binary's {}", *c.auxv_entry(), bin.elf().entry()));
  }
  const auto* sec = bin.elf().section(".note.go.buildid");
  auto want = bin.elf().section_data(".note.go.buildid");
  if (sec && want && !want->empty()) {
    std::vector<uint8_t> got(want->size());
    if (c.read(sec->addr + slide, got)) {
      if (std::memcmp(got.data(), want->data(), got.size()) != 0) {
        return mismatch(fmt::format("Go build ID {} in the binary, other bytes in the core", hexdump_id(bin.build_id())));
      }
      return {};
    }
  }
  // No build ID in the core (not dumped): compare .go.buildinfo (writable data, dumped).
  const auto* bi = bin.elf().section(".go.buildinfo");
  auto bid = bin.elf().section_data(".go.buildinfo");
  if (bi && bid && !bid->empty()) {
    size_t n = std::min<size_t>(bid->size(), 4096);
    std::vector<uint8_t> got(n);
    if (c.read(bi->addr + slide, got) && std::memcmp(got.data(), bid->data(), n) != 0) {
      return mismatch("its .go.buildinfo (Go version, module, build settings) differs");
    }
  }
  return {};
}

int run_postmortem(const Args& args) {
  std::vector<std::string> pos;
  bool json = false;
  OptionParser p(args);
  std::string tok;
  while (p.next(tok)) {
    if (tok == "--json") json = true;
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
  auto bin = core::GoBinary::open(bin_path);
  if (!bin) return report_error(bin.error(), who);
  auto c = core::CoreFile::open(core_path);
  if (!c) return report_error(c.error(), who);
  int64_t slide = 0;
  if ((*c)->auxv_entry()) slide = static_cast<int64_t>(*(*c)->auxv_entry() - (*bin)->elf().entry().value());
  else if ((*bin)->elf().is_pie())
    return report_error(core::make_error(core::ErrorKind::kBadInput,
                                         "{}: no NT_AUXV note: cannot tell where the PIE executable was loaded",
                                         core_path),
                        who);
  if (auto ok = check_core_of(**bin, **c, slide, bin_path, core_path); !ok) return report_error(ok.error(), who);
  (*c)->attach_executable(&(*bin)->elf(), slide);
  auto threads = (*c)->threads();
  core::postmortem::MemoryEvidence ev{bin->get(), c->get(), *threads, slide, "core file"};
  auto v = core::postmortem::analyze_memory(ev);
  if (!v) return report_error(v.error().with_context(fmt::format("{}", core_path)), who);
  if ((*c)->signal()) {
    v->notes.push_back(fmt::format("the process died of {}", core::signal_name((*c)->signal())));
  }
  if (json) fmt::print("{}\n", core::postmortem::to_json(*v).dump(2));
  else fmt::print("{}", core::postmortem::to_text(*v));
  return kExitOk;
}

}  // namespace

const Command kPostmortemCommand{"postmortem", "the goroutines that wrote one map at once, from a core file", kUsage,
                                 run_postmortem};

}  // namespace gort::recorder
