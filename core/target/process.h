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

/// Thread TID of PID blocks every signal it can (SigBlk): most likely it runs a signal
/// handler (Go's handlers run with all signals blocked), so its interrupted PC sits in a
/// signal frame, not in its registers. False when the status file cannot be read.
bool all_signals_blocked(int pid, int tid);

/// The system call thread TID of PID is stopped in (/proc/PID/task/TID/syscall): its
/// number (orig_rax), -1 when it is stopped in user code, nullopt when unknown (running,
/// gone, or no permission).
std::optional<int64_t> stopped_syscall(int pid, int tid);

/// x86-64 Linux: RAX is one of the kernel's -ERESTART* codes, which a thread stopped in an
/// interrupted system call holds until it resumes.
bool is_restart_code(uint64_t rax);

/// What the kernel does when a thread stopped inside interrupted system call NR (its
/// orig_rax) with RAX resumes without a signal: the call starts again, at the SYSCALL two
/// bytes back, with rax = NR (or restart_syscall for -ERESTART_RESTARTBLOCK). Returns that
/// rax, or nullopt when nothing restarts. A debugger that cannot write orig_rax (LLDB)
/// applies this itself before it resumes a thread it ran a system call on: the kernel would
/// otherwise restart the injected call, whose number orig_rax then holds.
std::optional<uint64_t> restarted_rax(uint64_t rax, int64_t nr);

}  // namespace gort::core
