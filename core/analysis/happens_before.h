#pragma once
// Unsynchronized map accesses from a gort trace: a vector-clock happens-before (HB) analysis
// over the synchronization `gort record --sync` records (mutexes, RWMutexes, channels,
// selects, WaitGroups, Once, goroutine creation; trace::kSyncOps defines what each event
// means) and the map writes (and, with --reads, reads) it records. Two accesses of one map
// by different goroutines, at least one a write, with no HB edge between them is a data
// race by the Go memory model, whether or not they ever overlapped in time.
// docs/report.md, "Unsynchronized map writes (happens-before)".
//
// Model (TSan / FastTrack style):
//  - Each goroutine G has a vector clock C_G (dense, indexed by a slot number given to each
//    goroutine as it first appears, grown lazily). Identity is the goid, or the g pointer,
//    or the thread when neither is known, as in ConcurrentWrites.
//  - Each sync object has two clocks W and R (R only for RWMutex readers). acquire(X):
//    C_G = C_G join X. release(X): X = X join C_G, then C_G[G] ticks.
//  - Fork: a kGoCreate on thread T then the next kGoStart on T: the child's clock is a
//    copy of the parent's, and the parent ticks. A kGoStart without a pending create
//    (a goroutine that existed before recording) starts a fresh clock.
//  - A write is the opening event of a write window (kWriteBegin, or kEntry of a map
//    function without flag sites); a read is a kMapRead. Per map and goroutine the last
//    write and the last read are kept as (epoch = the goroutine's own clock component at
//    the access, stack, locks held, ...). A write by G races every other goroutine H's
//    last write or read whose epoch > C_G[H]; a read races H's last write so. A pair
//    where H's write window is still open at G's access is skipped: that is a time
//    overlap, which ConcurrentWrites reports as a definite concurrent write.
//
// Complexity: a sync operation is O(goroutines) (a clock join or copy); a map access is
// O(goroutines that accessed that map). Memory is O(goroutines x goroutines) for the
// clocks of live goroutines and sync objects (an exited goroutine's clock is freed), plus
// O(maps x goroutines) access records. Stacks are interned as they are seen.

#include "core/analysis/concurrent_writes.h"
#include "core/trace/trace.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gort::core::analysis {

/// Two writes of one map with no HB edge between them.
inline constexpr const char* kUnsyncMapWrite = "unsynchronized-map-write";
/// A read and a write of one map with no HB edge between them.
inline constexpr const char* kUnsyncMapReadWrite = "unsynchronized-map-read-write";

/// Stack index meaning "no stack".
inline constexpr uint32_t kNoStack = ~0u;

enum class LockMode : uint8_t {
  kMutex,    ///< sync.Mutex
  kRwRead,   ///< sync.RWMutex held for reading (RLock)
  kRwWrite,  ///< sync.RWMutex held for writing (Lock)
};
/// "mutex", "rwmutex-read", "rwmutex-write"
const char* to_string(LockMode m);

/// A lock a goroutine held at an access, and where it took it.
struct HeldLock {
  uint64_t object = 0;   ///< the sync.Mutex / sync.RWMutex
  LockMode mode = LockMode::kMutex;
  uint64_t time_ns = 0;  ///< when the acquire completed
  uint64_t site_pc = 0;  ///< runtime pc of the acquiring site (kAcquire or kSyncReturn)
  /// Index into HappensBeforeResult::stacks, or kNoStack. The stack starts with site_pc + 1
  /// (so that symbolize_stack, which takes every PC as a return address, lands on the site
  /// itself: the Lock inlined into the caller, or lockSlow's RET) followed by the event's
  /// return addresses.
  uint32_t stack = kNoStack;
};

/// One side of a finding: Access's fields (start_ns = end_ns = the time of a read; for a
/// write the window), plus the locks held.
struct HbAccess : Access {
  bool read = false;
  std::vector<HeldLock> locks;  ///< in acquisition order
};

struct HbFinding {
  std::string kind = kUnsyncMapWrite;
  uint64_t map = 0;             ///< the map of the first occurrence
  std::vector<uint64_t> maps;   ///< every map this stack pair raced on (first-seen order)
  uint64_t count = 0;           ///< occurrences (unordered access pairs)
  uint64_t first_ns = 0;        ///< the later access of the first occurrence
  uint64_t last_ns = 0;         ///< the same for the last occurrence
  HbAccess a, b;                ///< the first occurrence: A the earlier access, B the later one
  std::string established_by;   ///< one line: how the analysis concluded
  /// The creation of the first occurrence's map, when the trace holds it (map_lifetimes.h).
  std::optional<MapOrigin> created;
  /// Caveats: lost events or unprobed sync that could hide an edge, an unknown goroutine
  /// identity, events out of order.
  std::vector<std::string> notes;
};

struct HappensBeforeStats {
  uint64_t events = 0;             ///< events analyzed
  uint64_t sync_events = 0;        ///< events of sync sites (acquire .. go-create)
  uint64_t acquires = 0;           ///< clock joins into a goroutine
  uint64_t releases = 0;           ///< clock joins into an object
  uint64_t forks = 0;              ///< go-create matched with its go-start
  uint64_t goroutines = 0;         ///< goroutine identities seen (slots)
  uint64_t maps = 0;               ///< distinct maps accessed
  uint64_t writes = 0;             ///< map writes checked
  uint64_t reads = 0;              ///< map reads checked
  uint64_t accesses_checked = 0;   ///< writes + reads
  uint64_t overlaps_skipped = 0;   ///< unordered pairs skipped: the other write window was still open
  uint64_t unmatched_returns = 0;  ///< sync returns with no pending call of that op
  uint64_t unmatched_ends = 0;     ///< write-end / return events with no open window
  uint64_t out_of_order = 0;       ///< events earlier than the one before
  uint64_t sync_objects = 0;       ///< distinct sync objects
};

struct HappensBeforeResult {
  std::vector<HbFinding> findings;            ///< by first occurrence
  /// Stacks (runtime PCs, return addresses): map accesses' event.stack[1..]; lock stacks
  /// as HeldLock::stack says.
  std::vector<std::vector<uint64_t>> stacks;
  HappensBeforeStats stats;
  MapLifetimeStats lifetimes;
};

struct HappensBeforeOptions {
  /// Events the recording lost (the trace summary's count): a lost sync event could order
  /// a pair that looks unordered. Nonzero: every finding gets a note.
  uint64_t lost_events = 0;
  /// The trace was cut short (no summary): how many events were lost is unknown (a note).
  bool lost_unknown = false;
  /// Sync sites the recorder could not probe (count_unprobed_sync_sites): a note.
  uint64_t unprobed_sync_sites = 0;
  /// What the trace tells of map lifetimes; read at construction (unset: from the header
  /// alone, as for a complete trace that lost nothing).
  std::optional<MapLifetimeBasis> lifetimes;
};

/// The single-pass analyzer. add() every event in time order (goid 0 is resolved here from
/// kGoStart/kGoExit as ConcurrentWrites does), then finish().
class HappensBefore {
 public:
  explicit HappensBefore(const trace::Header& h, HappensBeforeOptions opts = {});
  ~HappensBefore();
  HappensBefore(HappensBefore&&) noexcept;
  HappensBefore& operator=(HappensBefore&&) noexcept;

  void add(const trace::Event& e);
  /// The options used for the notes at finish() (lost_events is known only at the end of
  /// a streamed trace).
  HappensBeforeOptions& options();
  /// Returns the findings (not yet merged by symbolized stacks). The analyzer is spent.
  HappensBeforeResult finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Convenience: analyze in-memory events (time-ordered).
HappensBeforeResult find_unsynchronized_accesses(const trace::Header& h, const std::vector<trace::Event>& events,
                                                 HappensBeforeOptions opts = {});

/// kAcquire .. kGoCreate (the kinds `gort record --sync` adds; kMapRead is not one).
bool is_sync_kind(trace::SiteKind k);
/// The header has a site of a sync kind: the trace was recorded with --sync.
bool has_sync_sites(const trace::Header& h);
/// Sync sites whose backend is "none" (placed in the header, not probed), plus summary
/// warnings that mention synchronization (a sync function the recorder could not probe).
uint64_t count_unprobed_sync_sites(const trace::Header& h, const trace::Summary* summary);

/// merge_by_symbolized_stacks for HB findings: the same kind and unordered pair of
/// symbolized access stacks (SYM[stack index]) is one finding; counts add, maps join,
/// first/last widen, the earliest occurrence stays; notes join. Order: by first occurrence.
void merge_hb_by_symbolized_stacks(std::vector<HbFinding>& findings, const std::vector<std::vector<StackFrame>>& sym);

}  // namespace gort::core::analysis
