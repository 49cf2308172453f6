#pragma once
// A Go crash output (what the runtime writes to stderr when it throws or panics) parsed
// into a model: the fatal message, signal lines, goroutines with their frames, thread
// dumps. Every traceback format of Go 1.21-1.26 (GOTRACEBACK=single/all/system/crash),
// with or without a per-line prefix added by a log collector (timestamps, syslog, pod
// names). Never throws, never hangs, memory linear in the input: it is fuzzed
// (tests/fuzz/fuzz_crashlog.cpp).

#include "core/util/result.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gort::core::postmortem {

struct LogFrame {
  std::string function;       ///< "runtime.mapassign_fast64", "main.(*T).m", "maps.Clone[...]"
  std::string args;           ///< the text between the parentheses, as printed
  std::string file;           ///< "" when the log has no file line for it
  int32_t line = 0;
  uint64_t offset = 0;        ///< the "+0x57"
  uint64_t pc = 0;            ///< the "pc=0x..." (GOTRACEBACK=system/crash), else 0
  size_t log_line = 0;        ///< 1-based line of the function line in the input
};

struct LogGoroutine {
  uint64_t id = 0;
  std::string status;         ///< the whole bracket: "chan receive, 2 minutes, locked to thread"
  std::string state;          ///< its first part: "running", "runnable", "chan receive", ...
  uint64_t gp = 0, mp = 0;    ///< "gp=0x.. mp=0x.." (Go 1.23+ at GOTRACEBACK=system/crash)
  int64_t m = -1;             ///< "m=N", -1 for "m=nil" or absent
  std::vector<LogFrame> frames;  ///< innermost first
  std::string created_by;     ///< "main.main"
  std::string created_file;   ///< the go statement: "/src/main.go" of "created by"'s next line
  int32_t created_line = 0;
  uint64_t created_offset = 0;  ///< its "+0xbc": the return address after the newproc call
  uint64_t created_in = 0;    ///< "in goroutine N"
  bool stack_unavailable = false;  ///< "goroutine running on other thread; stack unavailable"
  uint64_t elided_frames = 0; ///< "...N frames elided..."
  bool truncated = false;     ///< the input ended inside this goroutine
  size_t log_line = 0;        ///< 1-based line of its header
};

struct LogSignal {
  std::string text;           ///< "SIGSEGV: segmentation violation code=0x1 addr=0x.. pc=0x.."
  std::string name;           ///< "SIGSEGV"
  uint64_t addr = 0, pc = 0, code = 0;
};

/// A thread dump at GOTRACEBACK=crash: "SIGQUIT: quit" / "PC=0x.. m=N sigcode=N" and registers.
struct LogThread {
  std::string signal;         ///< "SIGQUIT: quit"
  uint64_t pc = 0;
  int64_t m = -1;
  std::vector<std::pair<std::string, uint64_t>> registers;  ///< ("rax", 0x..)
};

struct CrashLog {
  std::vector<std::string> fatal_messages;  ///< every "fatal error: X" (X), in order
  std::string panic_message;                ///< the first "panic: X" (X), if any
  uint64_t fault_address = 0;               ///< "unexpected fault address 0x.."
  bool has_fault_address = false;
  std::vector<LogSignal> signals;           ///< "[signal ...]"
  std::vector<LogThread> threads;
  std::vector<LogGoroutine> goroutines;     ///< in print order (duplicates kept)
  std::string prefix;                       ///< the prefix found on the first marker line ("" if none)
  size_t lines = 0;                         ///< lines in the input
  bool truncated = false;                   ///< the input ends inside a goroutine
  std::vector<std::string> notes;

  /// The message a human would call the crash: "concurrent map writes", "unexpected fault
  /// address 0x..", the panic message.
  std::string headline() const;
};

/// Parses TEXT. Fails (kBadInput) only when no "fatal error:" / "panic:" /
/// "unexpected fault address" line is found.
Result<CrashLog> parse_crashlog(std::string_view text);

/// Splits "0x4b3340?, 0xc000012345, {0x1, 0x2}, ..." into flat words: braces flattened,
/// "..." dropped. Each word keeps its '?' suffix.
std::vector<std::string> split_args(std::string_view args);

}  // namespace gort::core::postmortem
