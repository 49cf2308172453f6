#pragma once
// Adapters from LLDB's SB types to core's target interfaces: memory (a live process
// through /proc/PID/mem, a core file through SBProcess::ReadMemory), threads' registers,
// and the load slide of a PIE executable. ../shared/reference/platform.md: SBProcess::
// ReadMemory costs ~28 us uncached, a /proc/PID/mem pread ~1.5 us.

#include "core/binary/go_binary.h"
#include "core/target/memory.h"

#include <lldb/API/LLDB.h>

#include <memory>
#include <string>

namespace gort::plugin {

/// Reads through SBProcess::ReadMemory (core files, or when /proc/PID/mem is refused).
class LldbMemory final : public core::Memory {
 public:
  explicit LldbMemory(lldb::SBProcess p) : p_(p) {}
  core::Result<void> read(core::RemoteAddr addr, std::span<uint8_t> out) const override;

 private:
  mutable lldb::SBProcess p_;
};

/// Each thread's registers from its frame 0 (rip/rsp/rbp/..., r14, fs_base).
class LldbThreads final : public core::Threads {
 public:
  explicit LldbThreads(lldb::SBProcess p) : p_(p) {}
  core::Result<std::vector<core::ThreadRegs>> threads() const override;
  static core::ThreadRegs regs_of(lldb::SBThread t);

 private:
  mutable lldb::SBProcess p_;
};

/// Everything a goroutine command needs about the selected, stopped Go target.
struct GoTarget {
  lldb::SBTarget target;
  lldb::SBProcess process;
  std::unique_ptr<core::GoBinary> bin;
  std::unique_ptr<core::Memory> mem;  ///< ProcMemory for a live process, else LldbMemory
  std::unique_ptr<LldbThreads> threads;
  int64_t slide = 0;  ///< runtime - link-time address (PIE); 0 for a fixed-address binary
};

/// Opens the selected target's executable and its stopped process. Also configures
/// SIGURG (pass silently) on the target, so the next `continue` is not stopped by Go's
/// preemption signals. Errors are one line with a hint.
core::Result<GoTarget> open_go_target(lldb::SBDebugger& debugger);

/// An address argument: hex (0x...) or decimal, a register of FRAME ($rbx), or a variable
/// or expression LLDB can evaluate in FRAME. kBadInput with a hint otherwise.
core::Result<core::RemoteAddr> eval_address(lldb::SBFrame frame, const std::string& s);

}  // namespace gort::plugin
