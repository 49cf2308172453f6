#pragma once
// The gort command: a table of subcommands, one file each (cmd_*.cpp).

#include "core/util/result.h"

#include <string>
#include <string_view>
#include <vector>

namespace gort::recorder {

using Args = std::vector<std::string>;

struct Command {
  const char* name;
  const char* summary;  ///< one line for `gort help`
  const char* usage;    ///< full help text for `gort help NAME` / `gort NAME --help`
  int (*run)(const Args& args);
};

/// Exit codes: 0 success, 1 the analysis ran and failed (e.g. target died), 2 bad input/usage.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

/// Prints "<WHO>: <message>" to stderr ("gort: ...", "gort dump: ..."); returns the exit
/// code for E's kind (2 for bad input, unsupported or missing things, 1 otherwise).
int report_error(const core::Error& e, std::string_view who = "gort");
/// Prints "gort NAME: <message>\n<usage hint>" and returns kExitUsage.
int usage_error(const Command& c, std::string_view message);

const std::vector<Command>& commands();

// Registered subcommands.
extern const Command kInspectCommand;
extern const Command kSymbolizeCommand;
extern const Command kLayoutsCommand;
extern const Command kProbeCommand;
extern const Command kRecordCommand;
extern const Command kDumpCommand;
extern const Command kReportCommand;
extern const Command kTriageCommand;
extern const Command kPostmortemCommand;
extern const Command kHeapCommand;

/// Tiny option scanner shared by the subcommands: --flag, --key=value, --key value.
class OptionParser {
 public:
  explicit OptionParser(const Args& args) : args_(args) {}
  /// Next token; false at the end.
  bool next(std::string& tok);
  /// The value for an option just returned (from "--key=value" or the next token).
  bool value(std::string& out);
  bool is_option(const std::string& tok) const { return tok.size() > 1 && tok[0] == '-' && tok != "-"; }

 private:
  const Args& args_;
  size_t i_ = 0;
  std::string pending_value_;
  bool has_pending_ = false;
  bool rest_positional_ = false;
};

}  // namespace gort::recorder
