#pragma once
// The recording started by `gort record start` in one debugger (cmd_record.cpp).
#include <cstdint>
#include <string>

namespace gort::plugin {
/// Stops DEBUGGER_ID's recording, if any, and writes its summary (REASON unless the
/// target exited). Returns the line to show, or "" when nothing was recording.
std::string stop_recording(uint64_t debugger_id, const std::string& reason);
}  // namespace gort::plugin
