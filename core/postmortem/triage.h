#pragma once
// gort triage: a parsed crash log (crashlog.h) -> the shared verdict (verdict.h). Which
// goroutine threw, which map, which other goroutines are inside a map operation on it,
// and, when the log cannot hold the other writer, how to get it next time.

#include "core/postmortem/crashlog.h"
#include "core/postmortem/verdict.h"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace gort::core::postmortem {

/// The advice texts (docs/triage.md quotes them).
extern const char* const kAdviceSingle;
extern const char* const kAdviceUnavailable;
extern const char* const kAdviceHiddenRuntime;
extern const char* const kAdviceTruncated;

/// What a runtime function is doing to a map: op ("assign", "access", "delete", "clear",
/// "iterate", "clone") and which flat argument word is the map (-1 when none is printed).
struct MapOp {
  std::string op;
  int map_arg = -1;
};
std::optional<MapOp> map_op_of(std::string_view function);
bool is_write_op(std::string_view op);
bool is_throw_function(std::string_view function);
bool is_runtime_function(std::string_view function);

/// When set (gort triage --binary: from the binary's pclntab), frames the log prints
/// without file:line get them: SYMBOLIZE_PC for a frame with a pc= (innermost first,
/// inlined frames included), FUNCTION_ENTRY for a function name only (its first line).
/// Functions, not a Pclntab, so the parser and analysis link without core/binary (fuzzing).
struct TriageOptions {
  std::function<std::vector<Frame>(uint64_t pc)> symbolize_pc;
  std::function<std::optional<Frame>(std::string_view function)> function_entry;
  /// The function a `go` statement starts, from the creator function and the "+0x.."
  /// offset of its "created by" line (core/disasm/go_statement.h); empty when unknown.
  /// Names a goroutine whose stack the runtime did not print ("stack unavailable").
  std::function<std::vector<std::string>(std::string_view creator, uint64_t offset)> go_start;
};

Verdict triage(const CrashLog& log, const TriageOptions& opts = {});

}  // namespace gort::core::postmortem
