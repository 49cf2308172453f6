#pragma once
// The gort trace: what `gort record` captures and `gort report` / `gort dump` read.
// File format: docs/trace-format.md (versioned; kVersion below). This header is the one
// in-memory model shared by the writer (recorder), the reader (report, dump) and tests.
//
// Times are CLOCK_MONOTONIC nanoseconds (the clock of `perf record -k CLOCK_MONOTONIC`).
// PCs are runtime addresses in the target; Header::slide converts them to link-time
// addresses for the binary's pclntab (link = runtime - slide).

#include "core/util/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gort::core::trace {

/// 2: kMapCreate sites and Event::stack_map (event flag 0x80). Readers take 1 and 2.
inline constexpr uint32_t kVersion = 2;

/// What a probe site is, for the analysis.
enum class SiteKind : uint8_t {
  kEntry = 1,       ///< function entry (a map-write window opens; used where no flag site exists)
  kWriteBegin = 2,  ///< the instruction that sets the map's writing flag (window opens)
  kWriteEnd = 3,    ///< the instruction that clears it (window closes)
  kReturn = 4,      ///< a RET (window closes; used where no flag site exists)
  kThrow = 5,       ///< runtime.fatal / runtime.throw entry: the goroutine is about to die
  kGoStart = 6,     ///< a goroutine got its goid (event.g = the new g, event.goid set)
  kGoExit = 7,      ///< a goroutine exits (event.g = the dying g)
  // Synchronization, recorded by `gort record --sync` (docs/happens-before.md). For these
  // Event::map holds the sync object's address (the sync.Mutex / RWMutex / WaitGroup /
  // Once, or the channel's hchan) and Site::op says what the object is and which operation
  // it is (the kSyncOps table below). Acquires are recorded after the atomic instruction
  // that performs them, releases before theirs, so that time order never puts an acquire
  // before the release it observed.
  kAcquire = 8,     ///< an acquire completed (e.g. the instruction after Lock's LOCK CMPXCHG)
  kRelease = 9,     ///< a release is about to happen (Unlock's LOCK XADD, a send's entry)
  kSyncCall = 10,   ///< entry of a sync function whose acquire completes when it returns
  /// A RET of a kSyncCall function: the acquire on the object of the same goroutine's
  /// latest pending kSyncCall of the same op completes now (Event::map is 0 here).
  kSyncReturn = 11,
  /// runtime.newproc1's entry: event.g is the creating goroutine's g. The next kGoStart on
  /// the same thread (event.tid) is the goroutine it creates (newproc1 runs on the system
  /// stack of that thread, so nothing else runs there in between).
  kGoCreate = 12,
  /// A map read begins (a runtime.mapaccess* entry; `gort record --reads`): a point in
  /// time, Event::map = the map, Site::op = "read".
  kMapRead = 13,
  /// runtime.gcMarkTermination's entry (`gort record --dangling`): a GC cycle's marking is
  /// complete, the world is stopped. The recorder scans the heap right after it.
  kGcMarkTermination = 14,
  /// A conversion of an integer back to a pointer (`gort record --dangling`): the entry of
  /// runtime.checkptrArithmetic (checkptr builds) or of a function the user named
  /// (--convert-hook); Event::key = the integer converted, Site::op = "convert".
  kConvert = 15,
  /// Events were lost just before this point (a full ring; `gort record --backend inproc`):
  /// any window open now may have lost its end, and a window's begin may be missing.
  kLost = 16,
  /// A map was created (a RET of runtime.makemap / makemap_small, or of swiss
  /// internal/runtime/maps.NewMap / (*Map).Clone): Event::map = the new map's address,
  /// Site::op = "create". A map at an address is a new map from here on, even if an older
  /// one was freed there (docs/report.md, "Map identity"). Version 2.
  kMapCreate = 17,
};
/// "entry", "write-begin", "write-end", "return", "throw", "go-start", "go-exit",
/// "acquire", "release", "sync-call", "sync-return", "go-create", "map-read",
/// "gc-mark-termination", "convert", "lost", "map-create"
const char* to_string(SiteKind k);
/// The inverse of to_string(SiteKind); nullopt for an unknown name.
std::optional<SiteKind> parse_site_kind(std::string_view name);

/// Site::op of the sync sites, and what each means for happens-before (HB). "W" and "R"
/// are two clocks per object (TSan's model of RWMutex; mutexes, channels, WaitGroups and
/// Onces use W only). The kind says when it happens; the op says to what.
///   op                kinds                     meaning
///   "mutex.lock"      kAcquire, kSyncCall/Ret   acquire W[obj]; the goroutine holds obj
///                                               (kSyncCall/Ret: lockSlow, the contended path)
///   "mutex.unlock"    kRelease                  release into W[obj]; obj no longer held
///   "rwmutex.rlock"   kAcquire, kSyncCall/Ret   acquire W[obj]; holds obj for reading
///                                               (kSyncCall/Ret: waiting for a writer)
///   "rwmutex.runlock" kRelease                  release into R[obj]
///   "rwmutex.lock"    kSyncCall/Ret             at the return: acquire W[obj] and R[obj]; holds obj
///   "rwmutex.unlock"  kRelease                  release into W[obj]
///   "chan.send"       kSyncCall/Ret             at the call: release into W[obj]; at the return:
///                                               acquire W[obj] (an unbuffered send completes
///                                               after the receive)
///   "chan.recv"       kSyncCall/Ret             at the call: release into W[obj] (an
///                                               unbuffered send completes after it); at
///                                               the return: acquire W[obj]
///   "chan.close"      kRelease                  release into W[obj]
///   "select.send"     kRelease                  a select's send case: release into W[obj]
///                                               (every send case, at the select's entry)
///   "select"          kSyncCall/Ret             one kSyncCall per receive case: obj = the
///                                               channel, Event::key = the case index; the
///                                               return's Event::key = the chosen case index
///                                               (absent: none / default): acquire W[obj] of
///                                               that receive case. Each receive case
///                                               releases into its channel at the call.
///   "wg.add"          kRelease                  WaitGroup.Add(delta), Event::key = delta as
///                                               two's complement: a negative delta (Done)
///                                               releases into W[obj]; a positive one nothing
///   "wg.wait"         kSyncCall/Ret             at the return: acquire W[obj]
///   "once.do"         kAcquire                  Once.Do's fast-path load of done: acquire W[obj]
///   "once.done"       kRelease                  doSlow's store of done = 1: release into W[obj]
/// Goroutine creation (kGoCreate then kGoStart) orders the parent before the child.
inline constexpr const char* kSyncOps[] = {
    "mutex.lock", "mutex.unlock", "rwmutex.rlock", "rwmutex.runlock", "rwmutex.lock", "rwmutex.unlock",
    "chan.send",  "chan.recv",    "chan.close",    "select.send",     "select",       "wg.add",
    "wg.wait",    "once.do",      "once.done",
};

/// One probed instruction. Events refer to it by index in Header::sites.
struct Site {
  SiteKind kind = SiteKind::kEntry;
  std::string function;  ///< e.g. "runtime.mapassign_faststr"
  std::string op;        ///< map sites: "assign", "delete", "clear", "clone", "read";
                         ///< sync sites: one of kSyncOps; "" for the others
  uint64_t pc = 0;       ///< runtime address of the probed instruction
  std::string backend;   ///< "hw", "uprobe"
  bool operator==(const Site&) const = default;
};

struct Header {
  uint32_t version = kVersion;
  std::string executable;    ///< absolute path of the target's binary when recorded
  std::string build_id;      ///< Go build ID (or ""), to check a --binary override
  std::string go_version;    ///< "go1.26.8"
  std::string map_impl;      ///< "swiss" or "hmap"
  int64_t slide = 0;         ///< runtime - link address of the executable (PIE), else 0
  int32_t pid = 0;
  std::vector<std::string> command;  ///< argv when launched by gort record, else empty
  uint64_t start_ns = 0;     ///< CLOCK_MONOTONIC when probes were armed
  uint32_t stack_depth = 0;  ///< max PCs per event stack (0: no stacks)
  /// Recorded with --dangling (heap scans after GC cycles). Version 1 traces had a
  /// gc-mark-termination site only then, which is what a version 1 reader takes it from.
  bool dangling = false;
  std::vector<Site> sites;
  bool operator==(const Header&) const = default;
};

/// One probe hit.
struct Event {
  uint64_t time_ns = 0;
  uint32_t site = 0;          ///< index into Header::sites
  uint32_t tid = 0;
  uint32_t cpu = 0;
  uint64_t g = 0;             ///< g pointer (R14 in ABIInternal code), 0 if unknown
  uint64_t goid = 0;          ///< goroutine id: known at kGoStart, else 0 (the reader's
                              ///< resolve_goids() fills it from kGoStart/kGoExit and g)
  uint64_t map = 0;           ///< map pointer for map sites; the object for sync sites; else 0
  std::optional<uint64_t> key;  ///< integer key (fast32/fast64 variants) when cheap; sync
                                ///< sites: see kSyncOps ("select" case index, "wg.add" delta)
  /// User stack, innermost first: runtime PCs. For map sites stack[0] is the probed
  /// site's pc and stack[1] the return address into the caller (also at entry sites,
  /// where the frame-pointer chain alone would skip it).
  std::vector<uint64_t> stack;
  /// Map events: the map lies on the accessing goroutine's own stack (between its rsp and
  /// g.stack.hi), so no other goroutine can reach it (a stack-allocated map never escapes).
  /// False also when that could not be told. Version 2 (event flag 0x80).
  bool stack_map = false;
  bool operator==(const Event&) const = default;
};

/// Written last by the recorder. A trace without one was cut short (recorder killed).
struct Summary {
  uint64_t end_ns = 0;
  uint64_t events = 0;        ///< events written
  uint64_t lost = 0;          ///< samples dropped (a full ring: the kernel's, or the in-process one)
  /// Of those, the ones no kLost event marks (the kernel's perf rings only count theirs).
  uint64_t lost_unmarked = 0;
  uint64_t filtered = 0;      ///< events dropped by --maps
  std::string end_reason;     ///< "duration", "interrupted", "target exited (status 0)",
                              ///< "target killed by signal 6", "stopped"
  std::vector<std::string> warnings;  ///< e.g. "runtime.mapclone: no probe placed"
  bool operator==(const Summary&) const = default;
};

/// Not thread-safe: one thread (the recorder's drain thread) adds, flushes and finishes.
class Writer {
 public:
  static Result<Writer> create(const std::string& path, const Header& h);
  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;
  ~Writer();  ///< flushes; a Writer destroyed without finish() leaves a trace without summary
  Result<void> add(const Event& e);
  /// Writes the events buffered so far as a complete block, so that a trace cut short
  /// later (recorder killed) still holds them. Blocks are written when they fill (64 KiB);
  /// the recorder calls this periodically (e.g. every second) to bound what a kill loses.
  Result<void> flush();
  /// Writes a heap scan record (a JSON document, `gort record --dangling`; the schema is
  /// docs/trace-format.md "Heap scans") after the events added so far, flushed first.
  Result<void> add_heap_scan(const std::string& json);
  /// Writes the summary and closes the file. Summary::events is set to the number of
  /// events added (the count the reader checks against the blocks).
  Result<void> finish(const Summary& s);
  uint64_t bytes() const;   ///< bytes of the trace so far, including events not yet flushed
  uint64_t events() const;  ///< events added so far
 private:
  struct Impl;
  explicit Writer(Impl* impl);
  Impl* impl_ = nullptr;
};

class Reader {
 public:
  /// Opens PATH and reads its header. Corrupt or truncated input fails with a message
  /// naming the byte offset and the reason ("offset 4096: block checksum mismatch").
  /// PARTIAL: accept a trace cut short (no summary; a torn last block is dropped).
  static Result<Reader> open(const std::string& path, bool partial = false);
  Reader(Reader&&) noexcept;
  Reader& operator=(Reader&&) noexcept;
  ~Reader();
  const Header& header() const;
  /// Next event into E; false at the end of the events. Fails on corruption (offset, reason).
  Result<bool> next(Event& e);
  /// The summary once next() returned false; nullopt for a partial trace.
  const std::optional<Summary>& summary() const;
  /// Events in the blocks open() found (all of them unless a block turns out corrupt),
  /// known before reading them: for progress and reserve().
  uint64_t event_count() const;
  size_t block_count() const;
  /// What --partial skipped, one line each ("trace cut short at offset N: ..."); empty
  /// for a complete trace.
  const std::vector<std::string>& notes() const;
  /// The heap scan records (JSON texts, in file order), known at open().
  const std::vector<std::string>& heap_scans() const;
 private:
  struct Impl;
  explicit Reader(Impl* impl);
  Impl* impl_ = nullptr;
};

/// Fills Event::goid of EVENTS (time-ordered) from their kGoStart events and g pointers:
/// an event on g at time t belongs to the goroutine of g's latest kGoStart before t (not
/// ended by a kGoExit before t). Unknown stays 0.
void resolve_goids(const Header& h, std::vector<Event>& events);

/// resolve_goids one event at a time, for a reader streaming events in time order.
class GoidResolver {
 public:
  explicit GoidResolver(const Header& h);
  void apply(Event& e);  ///< fills e.goid if 0 and known; tracks kGoStart / kGoExit
 private:
  std::vector<SiteKind> kinds_;
  std::unordered_map<uint64_t, uint64_t> live_;  ///< g -> goid of its current goroutine
};

}  // namespace gort::core::trace
