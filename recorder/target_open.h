#pragma once
// Opening the program a read-only command looks at: a core file with its executable, or a
// live process, stopped for as long as the command reads it (ptrace policy lives here, in
// the front end, not in core/).

#include "core/binary/go_binary.h"
#include "core/goruntime/goroutines.h"
#include "core/goruntime/heap.h"
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
/// detaches them the same way: the target never stays stopped.
class ProcessFreeze {
 public:
  static core::Result<std::unique_ptr<ProcessFreeze>> stop(int pid);
  ~ProcessFreeze();
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
