#pragma once
// Probes the kernel fires for us: perf_event_open hardware execution breakpoints and
// write watchpoints (PERF_TYPE_BREAKPOINT), and uprobes where the four debug registers
// run out. Two modes (../shared/reference/platform.md, ../shared/design.md):
//   kSample   non-stop: each hit writes registers + a few stack bytes into a ring buffer;
//             per-CPU events with pid = target and inherit = 1 (threads created later are
//             covered; per-task inherited events cannot be mmapped).
//   kSigtrap  stop: sigtrap = 1, inherit = 1, inherit_thread = 1, remove_on_exec = 1 on the
//             target pid; the hitting thread gets a synchronous SIGTRAP (si_code TRAP_PERF)
//             that a ptrace tracer (lldb-server) sees and must not deliver.
// Closing the fds removes every probe: if gort dies, the target keeps running unharmed.
// Uprobe PMU events must never use inherit=1 on Go (kills the program): per-CPU, pid=-1,
// filtered by pid.

#include "core/target/memory.h"
#include "core/util/remote_addr.h"
#include "core/util/result.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gort::core {

enum class ProbeKind {
  kExec,    ///< execution breakpoint at addr
  kWrite1,  ///< 1-byte write watchpoint at addr (fires after the store)
};

enum class ProbeMode { kSample, kSigtrap };

struct ProbeSpec {
  RemoteAddr addr;           ///< runtime address in the target (load slide applied)
  ProbeKind kind = ProbeKind::kExec;
  uint32_t cookie = 0;       ///< caller's id, returned in each Sample
  /// For uprobe fallback (kExec only): the ELF file and the file offset of the instruction.
  std::string file;
  uint64_t file_offset = 0;
  /// kSample: stack bytes for this probe (0: ProbeOptions::stack_bytes), e.g. to read a
  /// callee's arguments that live in its caller's frame.
  uint32_t stack_bytes = 0;
  /// In-process probes (core/inproc) record only these registers (at most 4; r14, the g,
  /// first); perf samples every register anyway.
  std::vector<std::string> regs;
  /// In-process probes: words the event needs from memory, [BASE + i*STRIDE + OFFSET] for
  /// i < COUNT, handed to the consumer at those addresses in ProbeSample::stack (whose
  /// start is regs.rsp), as a perf sample's stack bytes would have them (runtime.selectgo's
  /// cases, in its caller's frame). Perf reads stack_bytes instead.
  struct Gather {
    std::string base_reg;
    uint32_t stride = 0, offset = 0, count = 0;
  };
  std::optional<Gather> gather;
  /// In-process probes: at each hit, whether this register's value lies in [the site's
  /// rsp, g.stack.hi) (a map on the goroutine's own stack), told in ProbeSample::on_stack.
  /// Perf cannot read the g at the hit: the consumer works it out from the sample.
  std::string on_stack_reg;
};

/// kInproc: a patched jump to a trampoline in the program (core/inproc), not a perf event.
enum class ProbeBackend { kNone, kHwBreakpoint, kUprobe, kInproc };
const char* to_string(ProbeBackend b);  ///< "none", "hw", "uprobe", "inproc"

struct ProbeStatus {
  ProbeSpec spec;
  ProbeBackend backend = ProbeBackend::kNone;
  std::string error;  ///< why it could not be placed (backend == kNone)
};

struct ProbeOptions {
  ProbeMode mode = ProbeMode::kSample;
  bool allow_uprobes = true;       ///< fall back to uprobes when debug registers run out (kExec)
  uint32_t stack_bytes = 16;       ///< PERF_SAMPLE_STACK_USER bytes (>= 8: [rsp] = return address at entry)
  uint32_t ring_pages = 64;        ///< per ring buffer, power of two
  int max_hw = 4;                  ///< debug registers to use at most
  /// kSample: wake poll() after this many bytes of samples; 0 = after every sample. Waking
  /// the reader per sample more than doubled the per-hit cost on a 2-vCPU VM (~35 us vs
  /// ~16 us): pass ring_bytes/16 or so when latency does not matter, and poll with a timeout.
  uint32_t wakeup_bytes = 0;
  /// kSample: also record the user call chain (the kernel walks the frame pointers: Go
  /// keeps them), at most this many entries; 0 = none. The chain starts at the sample's
  /// ip; at a function's entry (and at a RET) it skips the caller whose return address
  /// is at [rsp] (rbp still belongs to the caller): take it from the stack bytes.
  uint32_t callchain_depth = 0;
};

/// One hit, decoded from a PERF_RECORD_SAMPLE.
struct ProbeSample {
  uint32_t cookie = 0;
  uint64_t time_ns = 0;   ///< CLOCK_MONOTONIC
  uint32_t pid = 0, tid = 0, cpu = 0;
  ThreadRegs regs;        ///< user registers at the hit (tid filled)
  std::vector<uint8_t> stack;  ///< stack_bytes bytes from rsp upward
  std::vector<uint64_t> callchain;  ///< user PCs, innermost (ip) first; empty unless asked
  bool after_loss = false;  ///< samples were dropped just before this one (in-process ring)
  /// ProbeSpec::on_stack_reg's answer, taken at the hit (in-process probes only).
  std::optional<bool> on_stack;
};

class PerfProbeSet {
 public:
  /// Places every probe it can on PID. Never fails because one probe could not be placed
  /// (see status()); fails if PID is gone or perf_event_open is not permitted at all.
  static Result<std::unique_ptr<PerfProbeSet>> create(int pid, const std::vector<ProbeSpec>& probes,
                                                      const ProbeOptions& opts);
  ~PerfProbeSet();  ///< closes every fd: removes every probe
  PerfProbeSet(const PerfProbeSet&) = delete;
  PerfProbeSet& operator=(const PerfProbeSet&) = delete;

  const std::vector<ProbeStatus>& status() const;
  /// kSample: drains every ring buffer, calling FN per sample (in time order within a ring);
  /// waits up to TIMEOUT_MS for data when none is ready. Returns the number of samples.
  size_t poll(const std::function<void(const ProbeSample&)>& fn, int timeout_ms);
  /// Samples the kernel dropped because a ring was full (PERF_RECORD_LOST).
  uint64_t lost() const;
  /// True once the target has exited (its events hung up); poll() then returns at once.
  bool exited() const;
  /// Uprobe samples from other processes running the same file, dropped by poll().
  uint64_t foreign() const;
  /// Enables/disables every event (PERF_EVENT_IOC_ENABLE/DISABLE).
  Result<void> set_enabled(bool on);
  /// Closes everything now (the destructor does the same). Closing a uprobe event waits
  /// for the kernel (~85 ms each here, serialized under its event_mutex: 130 uprobes take
  /// 11 s).
  void close();
  /// For a target that has exited (exited() is true): a child process closes the probes
  /// while the caller goes on at once; otherwise the same as close(). Not used by the
  /// recorder: while the child removes its uprobes, a new recording of the same file on
  /// this kernel (6.18) lost most of its hits (5 of 452 map writes seen).
  void close_after_exit();

  struct Impl;
 private:
  explicit PerfProbeSet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};


}  // namespace gort::core
