#pragma once
// gort's inspection commands, independent of the debugger that hosts them: `gort info`,
// `gort goroutines`, `gort bt`, `gort map`, `gort ptr` / `gort heap ptr`, `gort heap scan`
// and `gort crash`. The LLDB plugin (plugin/) and the GDB extension (gdb/, through a C
// ABI) adapt their debugger to `Debuggee` and print the Reply, so both print the same
// text and JSON (docs/gdb.md). Only the hints that name a debugger command differ; they
// come from the front end (`Hints`).

#include "core/target/memory.h"
#include "core/util/result.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gort::core::front {

/// What to type in the host debugger, for error hints.
struct Hints {
  std::string no_target;   ///< e.g. "create one first (`target create ./prog`, `process attach -p PID`)"
  std::string no_process;  ///< e.g. "run the program to a stop first (...), or open a core (...)"
  std::string interrupt;   ///< e.g. "interrupt it first (`process interrupt`)"
  std::string map_break;   ///< e.g. "`breakpoint set -s PROG -a <entry of runtime.mapassign_faststr>`"
  std::string debugger;    ///< "LLDB", "GDB": the evidence source named by `gort crash`
};

enum class ProcState { kNone, kStopped, kRunning, kCore };

/// A debugger's view of the selected target, as gort's commands need it.
class Debuggee {
 public:
  virtual ~Debuggee() = default;
  /// The executable's path; "" when there is no target (then `why` says so, or is empty
  /// for "no target").
  virtual std::string executable(std::string& why) = 0;
  /// The process state; DETAIL names a state that is neither stopped nor a core.
  virtual ProcState state(std::string& detail) = 0;
  /// Live process id (kStopped/kRunning).
  virtual int pid() = 0;
  /// Memory through the debugger (used for cores, or when /proc/PID/mem is refused).
  virtual std::unique_ptr<Memory> debugger_memory() = 0;
  /// Every thread's registers at frame 0.
  virtual Result<std::vector<ThreadRegs>> threads() = 0;
  /// The selected thread's registers at frame 0; nullopt when there is none.
  virtual std::optional<ThreadRegs> selected_thread() = 0;
  /// The selected frame's registers (pc, rax, rbx, ...): the map-function entry check.
  virtual std::optional<ThreadRegs> selected_frame() = 0;
  /// A register ($rbx), variable, expression or symbol evaluated in the selected frame.
  virtual std::optional<uint64_t> evaluate(const std::string& expr) = 0;
  /// Runtime minus link-time address of the executable (PIE), 0 otherwise.
  virtual int64_t slide() = 0;
  /// Called when a command opens the target (configures SIGURG handling).
  virtual void opened() {}
  virtual const Hints& hints() const = 0;
};

struct Reply {
  bool ok = true;
  std::string out;    ///< printed as the command's output
  std::string error;  ///< "gort CMD: message", when !ok
};

/// Runs `gort NAME ARGS...` (NAME: "info", "goroutines", "bt", "map", "ptr", "heap ptr",
/// "heap scan", "crash"). Never throws.
Reply run(Debuggee& d, std::string_view name, const std::vector<std::string>& args);

/// "PATH go1.26.8 (swiss maps, layouts from dwarf)": what a front end says when gort is
/// loaded with a target; or why PATH is not a Go binary gort supports.
Result<std::string> describe_binary(const std::string& path);

/// An address argument: hex (0x...) or decimal, else D.evaluate(S); kBadInput with a hint.
Result<RemoteAddr> eval_address(Debuggee& d, const std::string& s);

}  // namespace gort::core::front
