#pragma once
// The Go heap through Memory, for Go 1.21-1.26 (both GC designs: the classic mark bitmap
// and Go 1.26's Green Tea, whose small spans keep their mark bits inline):
// address -> arena -> span -> object base, size class, allocated or free, marked or not,
// span state and sweep generation. ../shared/reference/go-runtime.md section 7.
//
// Two ways in: span_of()/object_of() follow the runtime's own chain (mheap_.arenas ->
// heapArena.spans), for one address; spans() reads mheap_.allspans once and then answers
// "which span holds this word" from a sorted index, for scans of the whole heap.

#include "core/binary/go_binary.h"
#include "core/target/memory.h"
#include "core/util/remote_addr.h"
#include "core/util/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace gort::core {

/// mspan.state (mheap.go): 1 = in use for the GC'd heap, 2 = manual (stacks, ...).
enum class SpanState : uint8_t { kDead = 0, kInUse = 1, kManual = 2 };
const char* to_string(SpanState s);

/// Where a span is in the sweep cycle, from s.sweepgen against h = mheap_.sweepgen
/// (the comment on mspan.sweepgen in mheap.go).
enum class SweepState : uint8_t {
  kNeedsSweep,      ///< h-2: its gcmarkBits hold the last mark; unmarked objects are garbage
  kSweeping,        ///< h-1
  kSwept,           ///< h: allocBits hold the last mark plus what was allocated since
  kCachedUnswept,   ///< h+1: cached in an mcache before the sweep began
  kCachedSwept,     ///< h+3
  kUnknown,
};
const char* to_string(SweepState s);

/// GC phase (runtime.gcphase).
enum class GcPhase : uint32_t { kOff = 0, kMark = 1, kMarkTermination = 2 };
const char* to_string(GcPhase p);

struct SpanInfo {
  RemoteAddr addr;              ///< the mspan struct
  RemoteAddr base, limit;       ///< objects live in [base, limit)
  uint64_t npages = 0;
  uint64_t elemsize = 0;
  uint64_t nelems = 0;
  uint64_t freeindex = 0;       ///< slots below it have been handed out
  uint8_t spanclass = 0;
  uint8_t sizeclass() const { return spanclass >> 1; }
  bool noscan() const { return spanclass & 1; }
  SpanState state = SpanState::kDead;
  uint32_t sweepgen = 0;
  SweepState sweep = SweepState::kUnknown;
  RemoteAddr alloc_bits, gcmark_bits;
  bool inline_marks = false;    ///< Go 1.26 Green Tea: marks at base + 8192 - 128 + 64
};

struct HeapObject {
  SpanInfo span;
  uint64_t index = 0;
  RemoteAddr base;
  uint64_t size = 0;            ///< the slot size (elemsize)
  bool allocated = false;       ///< handed out and not freed by a sweep
  /// The mark bit (gcmarkBits, or the span's inline marks): this cycle's marks while a
  /// GC is marking or the span is unswept, stale otherwise.
  bool marked = false;
  /// Survives what the heap says now: allocated, and marked when the span still waits for
  /// the sweep of a completed cycle.
  bool live = false;
  std::string state() const;    ///< "live", "free", "garbage (unmarked, not yet swept)"
};

/// Heap-wide state.
struct HeapState {
  RemoteAddr mheap;
  uint32_t sweepgen = 0;        ///< mheap_.sweepgen
  GcPhase phase = GcPhase::kOff;
  bool phase_known = false;     ///< runtime.gcphase found and read (else taken as off)
  uint32_t numgc = 0;           ///< completed GC cycles (memstats.numgc)
  bool green_tea = false;       ///< mark bits of small spans inline (Go 1.26 default)
};

class Heap {
 public:
  /// Reads the heap's globals in MEM (a process or core of BIN loaded at SLIDE).
  static Result<Heap> open(const Memory& mem, const GoBinary& bin, int64_t slide);

  const HeapState& state() const { return state_; }
  /// Whether P lies in a heap arena at all (mapped for the heap, whatever its use now).
  Result<bool> in_arena(RemoteAddr p) const;
  /// P is the first byte of a heap arena (64 MiB aligned on linux/amd64): what the
  /// runtime's arena bookkeeping (mheap_.curArena, arenaHints) holds as integers.
  static bool is_arena_start(RemoteAddr p);
  /// The span holding P, through the arena index, as spanOf does: nullopt when P is not
  /// in a heap arena or its page has no span; the span may be of any state.
  Result<std::optional<SpanInfo>> span_of(RemoteAddr p) const;
  /// The heap object holding P (in an in-use span); nullopt otherwise.
  Result<std::optional<HeapObject>> object_of(RemoteAddr p) const;
  /// The object of index I in S.
  Result<HeapObject> object_in(const SpanInfo& s, uint64_t i) const;

  /// Every in-use span of mheap_.allspans, sorted by base.
  Result<std::vector<SpanInfo>> spans() const;

  /// Allocation and mark bits of S, one bool per slot (for scans: read once per span).
  struct SpanBits {
    std::vector<uint8_t> alloc, mark;  ///< bitmaps, bit i = slot i
    bool allocated(const SpanInfo& s, uint64_t i) const {
      return i < s.freeindex || (i / 8 < alloc.size() && (alloc[i / 8] >> (i % 8)) & 1);
    }
    bool marked(uint64_t i) const { return i / 8 < mark.size() && (mark[i / 8] >> (i % 8)) & 1; }
  };
  Result<SpanBits> bits(const SpanInfo& s) const;
  /// Liveness of slot I of S with BITS (see HeapObject::live).
  bool live(const SpanInfo& s, const SpanBits& b, uint64_t i) const;
  /// Whether the last completed cycle marked slot I (GC off): its mark bits while S waits
  /// for (or is in) its sweep; its allocation bits once swept (the sweep made them that
  /// cycle's marks: objects allocated since are counted by freeindex only). An object
  /// allocated after the cycle was not reached. While the GC runs: live().
  bool reached(const SpanInfo& s, const SpanBits& b, uint64_t i) const;
  /// The object of index I in S, given S's BITS (object_in reads them itself).
  HeapObject object_at(const SpanInfo& s, const SpanBits& b, uint64_t i) const;

  const Memory& memory() const { return *mem_; }

 private:
  Result<SpanInfo> read_span(RemoteAddr mspan) const;
  Result<RemoteAddr> arena(uint64_t index) const;

  const Memory* mem_ = nullptr;
  const GoBinary* bin_ = nullptr;
  HeapState state_;
  RemoteAddr l2_;               ///< mheap_.arenas[0]: *[1<<22]*heapArena
  uint32_t index_width_ = 2;    ///< bytes of mspan.freeindex/nelems
  mutable std::unordered_map<uint64_t, RemoteAddr> arenas_;
};

/// A sorted index of spans: which one holds an address (binary search).
class SpanIndex {
 public:
  explicit SpanIndex(std::vector<SpanInfo> spans);
  const SpanInfo* find(uint64_t p) const;
  const std::vector<SpanInfo>& spans() const { return spans_; }
  uint64_t lo() const { return lo_; }
  uint64_t hi() const { return hi_; }

 private:
  std::vector<SpanInfo> spans_;
  uint64_t lo_ = 0, hi_ = 0;
};

}  // namespace gort::core
