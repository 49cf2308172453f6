// gort: the command-line front end. Dispatches to one subcommand per file.

#include "recorder/cli.h"

#include <fmt/core.h>

#include <cstdio>
#include <cstring>

namespace gort::recorder {

const std::vector<Command>& commands() {
  static const std::vector<Command> c = {kInspectCommand, kSymbolizeCommand, kLayoutsCommand, kProbeCommand,
                                         kRecordCommand, kDumpCommand, kReportCommand, kTriageCommand,
                                         kPostmortemCommand, kHeapCommand};
  return c;
}

int report_error(const core::Error& e, std::string_view who) {
  fmt::print(stderr, "{}: {}\n", who, e.message);
  switch (e.kind) {
    case core::ErrorKind::kBadInput:
    case core::ErrorKind::kUnsupported:
    case core::ErrorKind::kNotFound:
      return kExitUsage;
    default:
      return kExitFailure;
  }
}

int usage_error(const Command& c, std::string_view message) {
  fmt::print(stderr, "gort {}: {}\nTry 'gort help {}'.\n", c.name, message, c.name);
  return kExitUsage;
}

bool OptionParser::next(std::string& tok) {
  has_pending_ = false;
  if (i_ >= args_.size()) return false;
  tok = args_[i_++];
  if (rest_positional_) return true;
  if (tok == "--") {
    rest_positional_ = true;
    return next(tok);
  }
  if (tok.rfind("--", 0) == 0) {
    auto eq = tok.find('=');
    if (eq != std::string::npos) {
      pending_value_ = tok.substr(eq + 1);
      has_pending_ = true;
      tok = tok.substr(0, eq);
    }
  }
  return true;
}

bool OptionParser::value(std::string& out) {
  if (has_pending_) {
    out = pending_value_;
    has_pending_ = false;
    return true;
  }
  if (i_ >= args_.size()) return false;
  out = args_[i_++];
  return true;
}

namespace {
void print_overview() {
  fmt::print(
      "gort: debug Go programs at the level of the Go runtime (Go 1.{}-1.{}, linux/amd64)\n\n"
      "Usage: gort <command> [options]\n\nCommands:\n",
      21, 26);
  for (auto& c : commands()) fmt::print("  {:<12} {}\n", c.name, c.summary);
  fmt::print("  {:<12} {}\n", "help", "show help for a command: gort help <command>");
  fmt::print("\nThe LLDB plugin: `plugin load <build>/lib/libgort-lldb.so`, then `help gort`.\n");
}
}  // namespace

}  // namespace gort::recorder

int main(int argc, char** argv) {
  using namespace gort::recorder;
  if (argc < 2) {
    print_overview();
    return kExitUsage;
  }
  std::string name = argv[1];
  Args rest(argv + 2, argv + argc);
  if (name == "help" || name == "--help" || name == "-h") {
    if (!rest.empty()) {
      for (auto& c : commands())
        if (rest[0] == c.name) { fmt::print("{}", c.usage); return kExitOk; }
      fmt::print(stderr, "gort: no command '{}'. Commands: ", rest[0]);
      for (auto& c : commands()) fmt::print(stderr, "{} ", c.name);
      fmt::print(stderr, "\n");
      return kExitUsage;
    }
    print_overview();
    return kExitOk;
  }
  if (name == "--version" || name == "version") {
    fmt::print("gort 0.1.0\n");
    return kExitOk;
  }
  for (auto& c : commands()) {
    if (name != c.name) continue;
    for (auto& a : rest)
      if (a == "--help" || a == "-h") { fmt::print("{}", c.usage); return kExitOk; }
      else if (a == "--") break;
    return c.run(rest);
  }
  fmt::print(stderr, "gort: unknown command '{}'. Run 'gort help' for the list.\n", name);
  return kExitUsage;
}
