// gort triage [CRASHLOG|-] [--binary BIN] [--json]: read a Go crash output, recognise the
// fatal error, and name the goroutines that took part: the one that threw and every other
// one inside a map operation on the same map (the other writer). docs/triage.md.

#include "core/binary/go_binary.h"
#include "core/postmortem/crashlog.h"
#include "core/postmortem/triage.h"
#include "core/disasm/go_statement.h"
#include "recorder/cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace gort::recorder {
namespace {

namespace pm = core::postmortem;

constexpr const char* kUsage = R"(Usage: gort triage [CRASHLOG|-] [--binary BIN] [--json]

Read what a Go program printed when it crashed (its standard error, or a log collector's
copy of it: per-line prefixes such as timestamps are recognised and stripped), recognise
the fatal error, and name the goroutines that took part:

  concurrent map writes, concurrent map read and map write, concurrent map iteration and
  map write, concurrent map clone and map write: the goroutine that threw, the map pointer
  from its runtime.mapassign*/mapaccess*/mapdelete*/... frame, and every other goroutine
  inside a map operation on that map (the other writer), each with its stack from the
  user's caller down;
  found pointer to free object / found bad pointer in Go heap, unexpected fault address:
  the goroutine that crashed, the signal, and what usually causes it.

When the log cannot contain the other writer (GOTRACEBACK=single, the default, or
"goroutine running on other thread; stack unavailable", or a log cut short), the report
says so ("complete: no") and how to get it next time: run with GOTRACEBACK=crash.

Every traceback format of Go 1.21-1.26 is read (GOTRACEBACK=single, all, system, crash).

Options:
  --binary BIN   the crashed program's executable: file:line (and inlined frames) from its
                 pclntab for frames the log prints without them
  --json         {"fatal":..,"map":"0x..","writers":[{"goroutine":18,"state":"running",
                 "role":"threw"|"other"|"candidate","op":..,"function":..,"stack":[{"function":..,
                 "file":..,"line":..}]}],"complete":bool,"advice":..,"notes":[..]}

CRASHLOG is a file; '-' or nothing reads standard input.

Examples:
  GOTRACEBACK=crash ./server 2> crash.log; gort triage crash.log
  kubectl logs pod/server --previous | gort triage - --binary ./server --json

Exit status: 0 when a verdict was produced (even an incomplete one); 2 when the input is
unreadable or not a Go crash output.
)";

constexpr size_t kMaxInput = size_t(1) << 30;

core::Result<std::string> read_input(const std::string& path) {
  std::string data;
  if (path.empty() || path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    data = ss.str();
  } else {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      return core::make_error(core::ErrorKind::kBadInput, "{}: no such file", path);
    if (std::filesystem::is_directory(path, ec))
      return core::make_error(core::ErrorKind::kBadInput, "{}: is a directory, not a crash log", path);
    std::ifstream in(path, std::ios::binary);
    if (!in) return core::make_error(core::ErrorKind::kBadInput, "{}: cannot open for reading", path);
    data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (data.size() > kMaxInput)
    return core::make_error(core::ErrorKind::kBadInput, "input is {} bytes: more than 1 GiB is not a crash log",
                            data.size());
  return data;
}

int run_triage(const Args& args) {
  std::string path, binary;
  bool json = false, have_path = false;
  OptionParser p(args);
  std::string tok;
  while (p.next(tok)) {
    if (tok == "--json") json = true;
    else if (tok == "--binary") {
      if (!p.value(binary) || binary.empty()) return usage_error(kTriageCommand, "--binary needs a path to the executable");
    } else if (p.is_option(tok)) return usage_error(kTriageCommand, fmt::format("unknown option '{}'", tok));
    else if (!have_path) {
      path = tok;
      have_path = true;
    } else return usage_error(kTriageCommand, fmt::format("one crash log at a time (got '{}' and '{}')", path, tok));
  }
  if (!have_path && isatty(STDIN_FILENO))
    return usage_error(kTriageCommand, "missing CRASHLOG (a file, or '-' with the log on standard input)");

  std::unique_ptr<core::GoBinary> bin;
  if (!binary.empty()) {
    auto b = core::GoBinary::open(binary);
    if (!b.ok()) return report_error(b.error().with_context(binary), "gort triage");
    bin = std::move(b.value());
  }
  auto text = read_input(path);
  if (!text.ok()) return report_error(text.error(), "gort triage");
  auto log = pm::parse_crashlog(*text);
  if (!log.ok()) return report_error(log.error().with_context(path.empty() || path == "-" ? "stdin" : path), "gort triage");

  pm::TriageOptions opts;
  if (bin) {
    const core::Pclntab& tab = bin->pclntab();
    opts.symbolize_pc = [&tab](uint64_t pc) {
      std::vector<pm::Frame> out;
      auto r = tab.symbolize(core::RemoteAddr(pc));
      if (r.ok())
        for (const auto& sf : *r) out.push_back(pm::Frame{std::string(sf.function), std::string(sf.file), sf.line, 0, sf.inlined});
      return out;
    };
    opts.function_entry = [&tab](std::string_view name) -> std::optional<pm::Frame> {
      auto fi = tab.find_func(name);
      if (!fi) return std::nullopt;
      auto r = tab.line_at(fi->entry);
      if (!r.ok()) return std::nullopt;
      return pm::Frame{std::string(r->function), std::string(r->file), r->line, fi->entry.value(), false};
    };
  }
  if (bin) {
    const core::GoBinary& b = *bin;
    opts.go_start = [&b](std::string_view creator, uint64_t offset) {
      auto r = core::go_statement_start(b, creator, offset);
      return r.ok() ? *r : std::vector<std::string>{};
    };
  }
  auto verdict = pm::triage(*log, opts);
  if (json) fmt::print("{}\n", pm::to_json(verdict).dump(2));
  else fmt::print("{}", pm::to_text(verdict));
  return kExitOk;
}

}  // namespace

const Command kTriageCommand{"triage", "name both goroutines of a concurrent-map crash from its log", kUsage,
                             run_triage};

}  // namespace gort::recorder
