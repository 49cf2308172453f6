#pragma once
// The recording engine behind `gort record` and the plugin's `gort record start/stop`:
// perf probes (hardware breakpoints where the four debug registers allow, uprobes
// elsewhere) on the write_begin / write_end sites of the probe plan (entries and RETs
// where a function has no flag site), on runtime.fatal (a goroutine about to throw
// "concurrent map writes"), and on goroutine creation and exit; every hit becomes one
// trace::Event written without stopping the program. docs/record.md.
//
// The front end owns the process (launch or attach) and the loop: start(), then pump()
// until it wants to stop or target_gone(), then finish().

#include "core/binary/go_binary.h"
#include "core/disasm/probe_plan.h"
#include "core/inproc/inproc_probes.h"
#include "core/probes/perf_probes.h"
#include "core/target/memory.h"
#include "core/target/process.h"
#include "core/trace/trace.h"
#include "core/util/result.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <deque>
#include <vector>

namespace gort::core::record {

struct RecordOptions {
  std::string output;                ///< trace file path
  uint32_t stack_depth = 32;         ///< PCs per event stack; 0 = no stacks
  std::vector<uint64_t> maps;        ///< keep only these maps' events (runtime addresses); empty = all
  /// Functions whose sites get the debug registers first (the rest fall back to uprobes).
  /// Empty: the default order (kDefaultHwOrder).
  std::vector<std::string> hw_first;
  /// Debug registers to use at most (0-4); kAutoHw: 4 on bare metal, 0 (uprobes only)
  /// under a hypervisor, where a hardware breakpoint hit can reach an untraced program as
  /// a stray SIGTRAP (docs/record.md, "Hardware breakpoints in virtual machines").
  int max_hw = kAutoHw;
  static constexpr int kAutoHw = -1;
  bool allow_uprobes = true;
  uint32_t ring_pages = 1024;        ///< per CPU (4 MiB): a few ms of a map-heavy program
  std::vector<std::string> command;  ///< argv when gort launched the target (for the header)
  /// Also record synchronization (core/disasm/sync_sites.h): mutexes, channels, select,
  /// WaitGroups, Once, goroutine creation, for the happens-before analysis.
  bool sync = false;
  bool reads = false;                ///< with sync: also map reads (runtime.mapaccess*)
  /// Also probe runtime.gcMarkTermination (SiteKind::kGcMarkTermination), so that the front
  /// end can scan the heap after each GC cycle (take_gc_marks(), add_heap_scan()), and the
  /// conversions of integers back to pointers (kConvert): runtime.checkptrArithmetic when
  /// the program has it, and CONVERT_HOOKS.
  bool dangling = false;
  /// "FUNC" or "FUNC:REG": functions whose entry converts an integer back to a pointer;
  /// REG holds the integer (default rax, the first integer argument of Go's register ABI).
  std::vector<std::string> convert_hooks;
  /// kPerf: perf events (hardware breakpoints, uprobes). kInproc: patched jumps to
  /// trampolines in the program (core/inproc, docs/inproc.md), perf for the sites that
  /// cannot be patched safely; needs STOP_WORLD.
  enum class Backend { kPerf, kInproc };
  Backend backend = Backend::kPerf;
  inproc::StopWorld stop_world;
  uint64_t inproc_ring_bytes = 32u << 20;  ///< 262144 records of 128 bytes
};

/// True when the CPU says it runs under a hypervisor (the "hypervisor" flag in
/// /proc/cpuinfo).
bool under_hypervisor();

/// Map-write functions whose probes get debug registers first by default: the ones
/// ordinary Go code calls most.
extern const std::vector<std::string> kDefaultHwOrder;

/// One probed instruction and how to read an event from the registers there.
struct PlannedSite {
  trace::Site site;
  RemoteAddr link_addr;        ///< link-time address
  std::string map_reg;         ///< register holding the map ("" : none)
  std::string key_reg;         ///< integer key register at an entry ("" : none)
  std::string g_reg = "r14";   ///< register holding the g (the new g at kGoStart)
  std::string goid_reg;        ///< kGoStart: register holding the new goid
  bool ret_at_rsp = false;     ///< [rsp] is the caller's return address (entry, RET)
  // Sync sites (the object goes to Event::map):
  std::string obj_reg;         ///< object = obj_reg + obj_off ...
  int64_t obj_off = 0;
  std::optional<uint64_t> obj_link;  ///< ... or this link-time address (+ slide)
  std::optional<int64_t> obj_rsp_slot;  ///< ... or the stack word at rsp + this, + obj_off
  std::string acquired_if_zero;      ///< keep the event only when this reg's low 32 bits are 0
  bool select_entry = false;   ///< runtime.selectgo: one event per case from the stack bytes
  bool probed = true;          ///< false: a site events are written for, without a probe of its own
  /// Sites at the same instruction (e.g. a RET that ends a map clone and returns the new
  /// map): one probe serves them all, and each hit writes one event per site. Set by
  /// Recorder::start on the first of them; the others are not probed.
  std::vector<uint32_t> also;
  /// The register the probe tests against the goroutine's stack at the hit (in-process:
  /// ProbeSpec::on_stack_reg): this site's map_reg, or that of a site in ALSO.
  std::string on_stack_reg;
  /// The key register holds a signed value; a negative one means "none" (selectgo's -1).
  bool key_signed_none = false;
};

/// The sites to probe in BIN, in debug-register priority order. WARNINGS gets what could
/// not be planned (no newproc1 goid store found, ...): the recording still works.
/// SYNC / READS add the synchronization and map-read sites (RecordOptions::sync, reads)
/// after the map sites: they get debug registers only when the map sites leave some.
Result<std::vector<PlannedSite>> plan_sites(const GoBinary& bin, const std::vector<std::string>& hw_first,
                                            std::vector<std::string>& warnings, bool sync = false,
                                            bool reads = false, bool dangling = false,
                                            const std::vector<std::string>& convert_hooks = {});

struct RecordStats {
  uint64_t events = 0;    ///< written to the trace
  uint64_t lost = 0;      ///< dropped by the kernel (ring full)
  uint64_t filtered = 0;  ///< dropped by --maps
  uint64_t bytes = 0;     ///< trace bytes so far
  uint64_t elapsed_ns = 0;
};

class Recorder {
 public:
  /// Places the probes on PID (running BIN at SLIDE) and opens the trace. Goroutines that
  /// already exist are written as kGoStart events first (read from the target's allgs).
  static Result<std::unique_ptr<Recorder>> start(int pid, std::unique_ptr<GoBinary> bin, int64_t slide,
                                                 const RecordOptions& opts);
  ~Recorder();

  /// Drains the rings into the trace, waiting up to TIMEOUT_MS for data. Returns events.
  Result<size_t> pump(int timeout_ms);
  /// Installing / removing the in-process probes stopped the program this long (0: none).
  uint64_t inproc_install_ns() const { return inproc_ ? inproc_->install_pause_ns() : 0; }
  uint64_t inproc_remove_ns() const { return inproc_ ? inproc_->remove_pause_ns() : 0; }
  /// True once the target has exited (its probes hung up).
  bool target_gone() const;
  RecordStats stats() const;
  const std::vector<ProbeStatus>& probes() const;
  /// How the sites are probed, for the start line of either front end: "3 in-process
  /// (installed in 4.1 ms), 0 hardware, 1 uprobe", or with perf alone why it is the default.
  std::string backend_summary() const;
  const std::vector<PlannedSite>& sites() const { return sites_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  const trace::Header& header() const { return header_; }
  /// GC mark terminations seen since the last call (RecordOptions::dangling).
  uint64_t take_gc_marks() { return std::exchange(gc_marks_, 0); }
  /// CLOCK_MONOTONIC time of the latest GC mark termination seen (0: none yet).
  uint64_t last_gc_mark_ns() const { return last_gc_mark_ns_; }
  /// Writes a heap scan (JSON) into the trace, after the events recorded so far.
  Result<void> add_heap_scan(const std::string& json);
  const GoBinary& binary() const { return *bin_; }
  int64_t slide() const { return slide_; }
  /// Drains what is left, closes the probes, writes the summary. END_REASON: e.g.
  /// "duration", "interrupted", "target exited (status 2)".
  Result<trace::Summary> finish(const std::string& end_reason);

 private:
  Recorder() = default;
  void on_sample(const ProbeSample& s);
  void add_event(const ProbeSample& s, uint32_t site);
  bool on_own_stack(const ProbeSample& s, uint64_t g, uint64_t map);
  std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> stack_bounds_;  ///< g -> [stack.lo, stack.hi)
  std::unique_ptr<ProcMemory> mem_;
  bool mem_failed_ = false;
  void add_lost(uint64_t time_ns);  ///< a kLost event (in-process recordings)
  uint32_t lost_site_ = UINT32_MAX;
  void add_select_cases(const ProbeSample& s, const trace::Event& entry);
  Result<void> write_existing_goroutines();
  /// Writes the held-back events stamped before BEFORE_NS, in time order.
  Result<void> flush_batch(uint64_t before_ns);
  static constexpr uint64_t kReorderMarginNs = 2'000'000;
  /// Perf stack bytes at map sites: enough for the frames of the map function and of the
  /// caller that declared a stack map (Recorder::on_own_stack).
  static constexpr uint32_t kMapStackBytes = 512;
  static constexpr size_t kInprocChunk = 8192;
  uint64_t newest_ns_ = 0;  ///< the latest event time seen

  int pid_ = 0;
  int64_t slide_ = 0;
  std::unique_ptr<GoBinary> bin_;
  RecordOptions opts_;
  std::vector<PlannedSite> sites_;
  /// Each site's registers, resolved once (on_sample runs per event).
  struct SiteRegs {
    uint64_t ThreadRegs::*g, ThreadRegs::*goid, ThreadRegs::*map, ThreadRegs::*key, ThreadRegs::*obj,
        ThreadRegs::*acquired_if_zero;
  };
  std::vector<SiteRegs> site_regs_;
  std::vector<std::string> warnings_;
  trace::Header header_;
  std::unique_ptr<PerfProbeSet> probes_;           ///< null when every site is in-process
  std::unique_ptr<inproc::InprocProbeSet> inproc_;
  std::vector<ProbeStatus> status_;                ///< both backends' probes
  std::optional<trace::Writer> writer_;
  std::deque<trace::Event> batch_;  ///< held back for time order (front: oldest)
  size_t sorted_ = 0;  ///< batch_[0, sorted_) is in time order
  std::vector<std::vector<uint64_t>> spare_stacks_;  ///< written events' stack vectors, reused
  std::unordered_set<uint64_t> maps_;
  uint32_t select_send_site_ = UINT32_MAX;  ///< the unprobed "select.send" site
  uint64_t armed_ns_ = 0;                   ///< every probe enabled: earlier hits are dropped
  uint64_t before_armed_ = 0;               ///< hits dropped for that
  uint64_t objects_unread_ = 0;             ///< sync events whose stack-slot object was not read
  uint64_t selects_unread_ = 0;             ///< selects whose cases were not in the stack bytes
  uint64_t gc_marks_ = 0;                   ///< kGcMarkTermination hits not yet taken
  uint64_t last_gc_mark_ns_ = 0;
  uint64_t events_ = 0, filtered_ = 0, start_ns_ = 0;
  bool finished_ = false;
};

}  // namespace gort::core::record
