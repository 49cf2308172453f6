#pragma once
// `gort record start/stop`, independent of the debugger that hosts it: the recorder of
// `gort record` (core/record) on the debugger's live process, drained by a thread of
// ours while the program runs, until `gort record stop`, detach or quit. The LLDB plugin
// (plugin/cmd_record.cpp) and the GDB extension find the process and print the text, so
// both print the same lines.

#include "core/inproc/inproc_probes.h"
#include "core/util/result.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace gort::core::front {

struct RecordStartRequest {
  int pid = 0;
  std::string executable;         ///< path of the Go binary
  int64_t slide = 0;
  std::vector<std::string> args;  ///< the user's arguments after `gort record start`
  /// Stops the world for --backend inproc; empty => inproc refused with INPROC_UNAVAILABLE_WHY.
  std::function<core::Result<std::unique_ptr<core::inproc::World>>()> stop_world;
  std::string inproc_unavailable_why;  ///< e.g. "under GDB ..."; used when stop_world is empty and inproc is asked
  /// Non-empty: there is no live process to record; refused with "gort record start: " +
  /// this, after the arguments are checked. (An empty EXECUTABLE is refused after the
  /// "already recording" check.)
  std::string target_error;
};

/// Starts a recording for KEY (one per debugger/session). Returns the lines to print
/// (start line + warnings), or an error message beginning "gort record start: ...".
core::Result<std::string> start_recording(uint64_t key, const RecordStartRequest& r);
/// Stops KEY's recording and writes its summary (REASON unless the target exited): the
/// summary line(s) to print, or "" when not recording.
std::string stop_recording(uint64_t key, const std::string& reason);
extern const char* const kRecordStartUsage;

}  // namespace gort::core::front
