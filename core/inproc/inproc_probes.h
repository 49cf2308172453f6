#pragma once
// InprocProbeSet: in-process probes on a running Go program (docs/inproc.md). Installed
// with the world stopped (by the front end: ptrace in `gort record`), read while the
// program runs, removed with the world stopped again. Hits arrive as ProbeSample, like the
// perf backend's, so the recorder decodes both the same way.
//
// If gort dies, the patches stay and keep writing into a ring nobody reads: once it is full
// each hit counts a drop and the program runs on (tens of ns per hit).

#include "core/inproc/trampoline.h"
#include "core/probes/perf_probes.h"
#include "core/target/memory.h"
#include "core/util/result.h"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace gort::core {
class GoBinary;
}

namespace gort::core::inproc {

/// A program with every thread stopped, as the front end holds it. Destroying it lets the
/// program run again.
class World {
 public:
  virtual ~World() = default;
  struct Thread {
    int tid = 0;
    ThreadRegs regs;
    /// All signals blocked: most likely inside a signal handler, with the interrupted PC in
    /// a signal frame rather than in regs.
    bool in_signal_handler = false;
    bool usable_for_syscalls = false;  ///< stopped cleanly (not delivering a signal)
  };
  virtual const std::vector<Thread>& stopped_threads() const = 0;
  /// System call NR(ARGS) run by thread TID at the SYSCALL instruction at SYSCALL_AT
  /// (runtime address); the thread's registers and signal mask are restored after.
  /// Returns the raw result (negative errno on failure).
  virtual Result<int64_t> syscall(int tid, uint64_t syscall_at, uint64_t nr, const std::array<uint64_t, 6>& args) = 0;
  /// Writes BYTES at ADDR, also into read-only (code) pages.
  virtual Result<void> write(uint64_t addr, Bytes bytes) = 0;
  /// Single-steps TID until its pc is outside every [lo, hi) of RANGES.
  virtual Result<void> step_out(int tid, const std::vector<std::pair<uint64_t, uint64_t>>& ranges) = 0;
};
using StopWorld = std::function<Result<std::unique_ptr<World>>()>;

/// PC must be stepped out of one of RANGES before the bytes there change: it is past the
/// start of [lo, hi) and before its end (at lo itself the new JMP simply runs). Both
/// World::step_out implementations stop stepping once this is false.
bool in_patched_range(uint64_t pc, const std::vector<std::pair<uint64_t, uint64_t>>& ranges);

struct InprocOptions {
  uint64_t ring_bytes = 4u << 20;  ///< rounded down to a power-of-two number of records
  bool chain = true;               ///< frame-pointer call chains (up to ring::kChainWords)
};

class InprocProbeSet {
 public:
  /// Patches every site of PROBES (runtime addresses, kExec only) it can on PID (running
  /// BIN at SLIDE). status() says, per probe, "inproc" or why not (the caller falls back to
  /// the perf backend for those). Fails only if nothing could be set up at all.
  static Result<std::unique_ptr<InprocProbeSet>> create(const StopWorld& stop, int pid, const GoBinary& bin,
                                                        int64_t slide, const std::vector<ProbeSpec>& probes,
                                                        const InprocOptions& opts);
  ~InprocProbeSet();
  InprocProbeSet(const InprocProbeSet&) = delete;
  InprocProbeSet& operator=(const InprocProbeSet&) = delete;

  /// One per probe given to create(): backend kInproc, or kNone with the reason.
  const std::vector<ProbeStatus>& status() const { return status_; }
  /// Reads the ring, calling FN per record (in publication order), at most MAX_RECORDS;
  /// sleeps up to TIMEOUT_MS when empty. Returns the number of records.
  size_t poll(const std::function<void(const ProbeSample&)>& fn, int timeout_ms, size_t max_records = SIZE_MAX);
  /// Hits dropped because the ring was full, plus records given up on (a thread that
  /// reserved a slot and never published it).
  uint64_t lost() const { return drops_ + abandoned_; }
  /// Hits were dropped after the last record read (no later record says so).
  bool lost_since_last_record() const { return static_cast<uint32_t>(drops_) != drops_seen_ || pending_loss_; }
  bool exited() const { return exited_; }
  /// Restores every patched byte (world stopped again) and unmaps the code page and the
  /// ring from the program, unless a thread is inside a signal handler (its signal frame
  /// may hold a trampoline PC): then they stay. Called by the destructor if needed.
  Result<void> remove();
  /// remove() unmapped the page and the ring (false: they stay in the program).
  bool unmapped() const { return unmapped_; }
  /// Why remove() left them mapped ("" when it did not, or never ran).
  const std::string& kept_why() const { return kept_why_; }
  /// Nanoseconds the world was stopped to install / to remove.
  uint64_t install_pause_ns() const { return install_ns_; }
  uint64_t remove_pause_ns() const { return remove_ns_; }

 private:
  InprocProbeSet() = default;
  struct Site {
    SitePatch patch;
    uint64_t trampoline = 0;  ///< runtime address
    uint32_t cookie = 0;
    uint32_t stack_bytes = 0;
    std::vector<uint64_t ThreadRegs::*> regs;  ///< what each record's register words are
    std::vector<std::string> reg_names;        ///< the same, by name (for the trampoline)
    std::optional<ProbeSpec::Gather> gather;
    uint64_t ThreadRegs::*gather_base = nullptr;
    std::string on_stack_reg;                  ///< ProbeSpec::on_stack_reg
  };
  uint64_t tsc_to_ns(uint64_t tsc) const;
  /// STOP's world with no thread inside a signal handler (QUIET), or after 50 tries the
  /// last one (QUIET false).
  static Result<std::unique_ptr<World>> stop_quiet(const StopWorld& stop, bool& quiet);
  void emit(const uint8_t* record, const std::function<void(const ProbeSample&)>& fn);
  void calibrate();

  StopWorld stop_;
  int pid_ = 0;
  uint8_t* local_ = nullptr;  ///< gort's own mapping of the ring
  uint64_t local_size_ = 0;
  ProbeSample sample_;        ///< reused per record
  int64_t slide_ = 0;
  std::vector<ProbeStatus> status_;
  std::vector<Site> sites_;
  std::vector<uint32_t> site_of_cookie_;
  uint64_t ring_ = 0, slots_ = 0, code_ = 0, code_size_ = 0, syscall_at_ = 0;
  bool unmapped_ = false;  ///< remove() unmapped the page and the ring from the program
  std::string kept_why_;
  uint64_t tail_ = 0, drops_ = 0, abandoned_ = 0;
  uint64_t stall_since_ns_ = 0;
  uint32_t drops_seen_ = 0;  ///< the drop count the last record carried
  bool pending_loss_ = false;  ///< a slot was given up on since the last record
  bool exited_ = false, removed_ = false;
  uint64_t install_ns_ = 0, remove_ns_ = 0;
  // TSC -> CLOCK_MONOTONIC: ns = ns0 + (tsc - tsc0) * ns_per_tsc.
  uint64_t tsc0_ = 0, ns0_ = 0;
  double ns_per_tsc_ = 1.0;
  uint64_t calib_tsc_ = 0, calib_ns_ = 0;
};

}  // namespace gort::core::inproc
