#pragma once
// Opening the program a read-only command looks at: a core file with its executable, or a
// live process, stopped for as long as the command reads it (ptrace policy lives here, in
// the front end, not in core/).

#include "core/binary/go_binary.h"
#include "core/goruntime/goroutines.h"
#include "core/goruntime/heap.h"
#include "core/inproc/inproc_probes.h"
#include "core/target/core_file.h"
#include "core/target/memory.h"
#include "core/util/result.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace gort::recorder {

/// Every thread of a live process held in a ptrace stop (PTRACE_SEIZE + INTERRUPT) while
/// this lives; the destructor detaches them all, running again. If gort dies, the kernel
/// detaches them the same way: the target never stays stopped. Also the stopped world
/// in which in-process probes are installed (system calls run by a thread, single steps).
class ProcessFreeze final : public core::inproc::World {
 public:
  static core::Result<std::unique_ptr<ProcessFreeze>> stop(int pid);
  /// A single-threaded program gort launched and already holds stopped (its tracer): the
  /// same operations, and no detach at the end (the launcher lets it go).
  static core::Result<std::unique_ptr<ProcessFreeze>> adopt(int pid);
  ~ProcessFreeze() override;
  const std::vector<Thread>& stopped_threads() const override { return threads_; }
  core::Result<int64_t> syscall(int tid, uint64_t syscall_at, uint64_t nr, const std::array<uint64_t, 6>& args) override;
  core::Result<void> write(uint64_t addr, core::Bytes bytes) override;
  core::Result<void> step_out(int tid, const std::vector<std::pair<uint64_t, uint64_t>>& ranges) override;
  ProcessFreeze(const ProcessFreeze&) = delete;
  ProcessFreeze& operator=(const ProcessFreeze&) = delete;
  /// The registers of every stopped thread.
  const std::vector<core::ThreadRegs>& threads() const { return regs_; }

 private:
  ProcessFreeze() = default;
  int pid_ = 0;
  std::vector<int> tids_;
  std::vector<int> sigs_;  ///< a signal each thread was stopped delivering, passed on at the detach
  std::vector<core::ThreadRegs> regs_;
  std::vector<Thread> threads_;
  int mem_fd_ = -1;
  bool adopted_ = false;
  /// Waits for TID's next stop after a single step; a signal that stops it first is kept
  /// to be delivered at the detach.
  core::Result<void> wait_step(int tid);
};

/// A program to read: its binary, memory, threads and PIE slide.
struct OpenTarget {
  std::unique_ptr<core::GoBinary> bin;
  std::unique_ptr<core::CoreFile> core;        ///< a core file, or ...
  std::unique_ptr<core::Memory> proc;          ///< ... a live process's memory
  std::unique_ptr<ProcessFreeze> freeze;       ///< ... held stopped
  std::vector<core::ThreadRegs> threads;
  int64_t slide = 0;
  std::string name;                            ///< "core file core.123" / "process 123"
  const core::Memory& memory() const { return core ? static_cast<const core::Memory&>(*core) : *proc; }
};

/// The numeric names in directory DIR: /proc/PID/task's thread ids, /proc/self/fd's fds.
std::set<int> numeric_entries(const std::string& dir);

/// BIN and CORE: checks the core is BIN's (build ID, entry point) and attaches BIN's code.
core::Result<OpenTarget> open_core_target(const std::string& bin_path, const std::string& core_path);
/// Live process PID (its /proc/PID/exe, or BIN_PATH when given), stopped.
core::Result<OpenTarget> open_live_target(int pid, const std::string& bin_path = "");

}  // namespace gort::recorder

namespace gort::recorder {
/// Every goroutine of T, dead ones included (cmd_heap.cpp).
std::vector<core::Goroutine> all_goroutines(const OpenTarget& t);
std::vector<core::Goroutine> all_goroutines(const core::Memory& mem, const core::GoBinary& bin, int64_t slide);
/// `gort heap ptr` and `gort postmortem --ptr`: what each of ADDRS is (cmd_heap.cpp).
int print_addresses(const OpenTarget& t, const core::Heap& heap, const std::vector<core::Goroutine>& gs,
                    const std::vector<core::RemoteAddr>& addrs, bool json, const char* who);
}  // namespace gort::recorder
