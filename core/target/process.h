#pragma once
// Facts about a live process that front ends need before they probe it.
#include "core/binary/go_binary.h"
#include "core/util/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gort::core {

/// Runtime minus link-time address of BIN's executable in process PID: where the file's
/// offset-0 mapping starts (/proc/PID/maps) minus the link address of the PT_LOAD at
/// file offset 0. Zero for a non-PIE executable.
Result<int64_t> load_slide(int pid, const GoBinary& bin);

/// The value of FIELD ("SigBlk", "Seccomp", ...) in the status file PATH
/// (/proc/PID/status or /proc/PID/task/TID/status), blanks trimmed; nullopt when the
/// file or the field is missing.
std::optional<std::string> status_field(const std::string& path, std::string_view field);

}  // namespace gort::core
