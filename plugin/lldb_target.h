#pragma once
// Adapters from LLDB's SB types to core's target interfaces: memory (a live process
// through /proc/PID/mem, a core file through SBProcess::ReadMemory), threads' registers,
// and the load slide of a PIE executable. ../shared/reference/platform.md: SBProcess::
// ReadMemory costs ~28 us uncached, a /proc/PID/mem pread ~1.5 us.

#include "core/binary/go_binary.h"
#include "core/front/commands.h"
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

/// The selected target of an LLDB debugger, as core's front-end commands see it
/// (core/front/commands.h): `gort info/goroutines/bt/map/ptr/heap/crash` run there.
class LldbDebuggee final : public core::front::Debuggee {
 public:
  explicit LldbDebuggee(lldb::SBDebugger d) : debugger_(d), target_(d.GetSelectedTarget()) {}
  std::string executable(std::string& why) override;
  core::front::ProcState state(std::string& detail) override;
  int pid() override { return static_cast<int>(target_.GetProcess().GetProcessID()); }
  std::unique_ptr<core::Memory> debugger_memory() override;
  core::Result<std::vector<core::ThreadRegs>> threads() override;
  std::optional<core::ThreadRegs> selected_thread() override;
  std::optional<core::ThreadRegs> selected_frame() override;
  std::optional<uint64_t> evaluate(const std::string& expr) override;
  int64_t slide() override;
  void opened() override;
  const core::front::Hints& hints() const override;

 private:
  lldb::SBDebugger debugger_;
  lldb::SBTarget target_;
};

/// An LLDB command that runs core::front::run(NAME, args) and prints its reply.
class FrontCommand final : public lldb::SBCommandPluginInterface {
 public:
  explicit FrontCommand(std::string name) : name_(std::move(name)) {}
  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override;

 private:
  std::string name_;
};

}  // namespace gort::plugin
