#pragma once
// The answer of gort's postmortem tools (issue 5), whichever the evidence: a crash log
// (`gort triage`, core/postmortem/crashlog.h) or memory (`gort postmortem BIN CORE`, and
// `gort crash` in LLDB on a core). One model, one JSON shape, one text rendering, so the
// front ends agree to the letter.
//
// JSON: {"fatal": "concurrent map writes", "map": "0x...", "writers": [{"goroutine": 18,
//   "state": "running", "role": "threw", "function": "runtime.mapassign_fast64",
//   "stack": [{"function": "...", "file": "...", "line": 12}]}, ...],
//   "advice": "...", "complete": true, "notes": [...]}

#include "core/util/result.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gort::core::postmortem {

/// The fatal errors gort recognises (the runtime's wording, without "fatal error: ").
enum class FatalKind {
  kUnknown,
  kConcurrentMapWrites,          ///< "concurrent map writes"
  kConcurrentMapReadWrite,       ///< "concurrent map read and map write"
  kConcurrentMapIterationWrite,  ///< "concurrent map iteration and map write"
  kConcurrentMapCloneWrite,      ///< "concurrent map clone and map write"
  kPointerToFreeObject,          ///< "found pointer to free object" / "found bad pointer in Go heap"
  kUnexpectedFaultAddress,       ///< "unexpected fault address"
};
const char* to_string(FatalKind k);          ///< the runtime's message
FatalKind fatal_kind_of(std::string_view message);  ///< from "concurrent map writes" etc.
bool is_map_fatal(FatalKind k);

struct Frame {
  std::string function;
  std::string file;     ///< "" when unknown (a stripped log line, no --binary)
  int32_t line = 0;
  uint64_t pc = 0;      ///< when known
  bool inlined = false; ///< an inlined frame expanded from pclntab
};

/// A goroutine that took part: the one that threw, and every other one inside a map
/// operation on the same map (or any map write when the map is unknown).
struct Writer {
  uint64_t goroutine = 0;
  std::string state;        ///< "running", "runnable", "waiting", "syscall", ... as the runtime says
  std::string role;         ///< "threw" (the runtime caught it), "other" (found inside a map op)
  std::string op;           ///< "assign", "access", "delete", "clear", "iterate", "clone"
  std::string function;     ///< the runtime map function it is in ("runtime.mapassign_faststr")
  std::optional<uint64_t> map;  ///< the map it operates on, when known
  std::vector<Frame> stack; ///< innermost first, from the user caller down (runtime frames dropped)
  uint64_t thread = 0;      ///< OS thread, when known
};

struct Verdict {
  FatalKind fatal = FatalKind::kUnknown;
  std::string fatal_message;         ///< as printed
  std::optional<uint64_t> map;       ///< the map involved
  std::vector<Writer> writers;       ///< threw first
  /// False when the evidence cannot contain the other writer (GOTRACEBACK=single, "stack
  /// unavailable", a truncated log, no signal frames): ADVICE says how to get it next time.
  bool complete = true;
  std::string advice;
  std::vector<std::string> notes;    ///< what was skipped or guessed, one line each
};

nlohmann::json to_json(const Verdict& v);
/// The human report: fatal, map, each writer with its stack (like Go's traceback), advice.
std::string to_text(const Verdict& v);

}  // namespace gort::core::postmortem
