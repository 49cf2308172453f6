#pragma once
// The stopped world in which in-process probes are installed and removed (core/inproc),
// held through LLDB: LLDB is the program's tracer, so gort cannot ptrace it itself.
// Registers are read and written through SBFrame, single steps are LLDB's own
// (SBThread::StepInstruction, the other threads held), writes go through SBProcess so
// LLDB's memory cache and breakpoint sites stay right. What LLDB cannot do that ptrace
// can (block a thread's signals, write orig_rax) is made up for in lldb_world.cpp.

#include "core/inproc/inproc_probes.h"

#include <lldb/API/LLDB.h>

#include <memory>
#include <string>
#include <vector>

namespace gort::plugin {

class LldbWorld final : public core::inproc::World {
 public:
  /// PROCESS stopped: as the user holds it, or interrupted here when it runs (and resumed
  /// when this is destroyed). Execution is synchronous while this lives.
  static core::Result<std::unique_ptr<LldbWorld>> stop(lldb::SBProcess process);
  ~LldbWorld() override;
  const std::vector<Thread>& stopped_threads() const override { return threads_; }
  core::Result<int64_t> syscall(int tid, uint64_t syscall_at, uint64_t nr, const std::array<uint64_t, 6>& args) override;
  core::Result<void> write(uint64_t addr, core::Bytes bytes) override;
  core::Result<void> step_out(int tid, const std::vector<std::pair<uint64_t, uint64_t>>& ranges) override;
  LldbWorld(const LldbWorld&) = delete;
  LldbWorld& operator=(const LldbWorld&) = delete;

 private:
  LldbWorld() = default;
  /// One instruction of THREAD (only it runs), after any signal handler that comes first
  /// has run and returned; its pc after.
  core::Result<uint64_t> step(lldb::SBThread thread);
  lldb::SBProcess process_;
  lldb::SBDebugger debugger_;
  std::vector<Thread> threads_;
  bool was_async_ = false;
  bool resume_ = false;  ///< interrupted here: continue at the end
};

}  // namespace gort::plugin
