// The Go heap through Memory. Facts: ../shared/reference/go-runtime.md section 7
// (malloc.go, mheap.go, mbitmap.go, mgcsweep.go, mgcmark_greenteagc.go at 1.21-1.26).

#include "core/goruntime/heap.h"

#include "core/goruntime/runtime_vars.h"

#include <fmt/format.h>

#include <algorithm>

namespace gort::core {

namespace {

// linux/amd64 (malloc.go): 64 MiB arenas, one L1 entry, 2^22 L2 entries.
constexpr uint64_t kArenaBaseOffset = 0xffff800000000000ull;
constexpr unsigned kLogHeapArenaBytes = 26;
constexpr uint64_t kArenaL2Entries = 1ull << 22;
constexpr uint64_t kPageSize = 8192;
constexpr uint64_t kPagesPerArena = (1ull << kLogHeapArenaBytes) / kPageSize;
// Green Tea (mgcmark_greenteagc.go): spanInlineMarkBits{scans [63]u8, owned u8, marks
// [63]u8, class u8} at the end of the span's first page, for 16 <= elemsize <= 512
// (gcUsesSpanInlineMarkBits: heapBitsInSpan(size) && size >= 16).
constexpr uint64_t kInlineMarkBitsSize = 128;
constexpr uint64_t kInlineMarksOffset = 64;
constexpr uint64_t kInlineMarksBytes = 63;
constexpr uint64_t kMinSizeForMallocHeader = 512;

bool uses_inline_marks(bool green_tea, uint64_t elemsize) {
  return green_tea && elemsize >= 16 && elemsize <= kMinSizeForMallocHeader;
}

SweepState sweep_state(uint32_t s, uint32_t h) {
  if (s == h - 2) return SweepState::kNeedsSweep;
  if (s == h - 1) return SweepState::kSweeping;
  if (s == h) return SweepState::kSwept;
  if (s == h + 1) return SweepState::kCachedUnswept;
  if (s == h + 3) return SweepState::kCachedSwept;
  return SweepState::kUnknown;
}

bool unswept(SweepState s) { return s == SweepState::kNeedsSweep || s == SweepState::kCachedUnswept; }

}  // namespace

const char* to_string(SpanState s) {
  switch (s) {
    case SpanState::kDead: return "dead";
    case SpanState::kInUse: return "in use";
    case SpanState::kManual: return "manual";
  }
  return "unknown";
}

const char* to_string(SweepState s) {
  switch (s) {
    case SweepState::kNeedsSweep: return "needs sweeping";
    case SweepState::kSweeping: return "being swept";
    case SweepState::kSwept: return "swept";
    case SweepState::kCachedUnswept: return "cached, needs sweeping";
    case SweepState::kCachedSwept: return "swept, cached";
    case SweepState::kUnknown: return "unknown";
  }
  return "unknown";
}

const char* to_string(GcPhase p) {
  switch (p) {
    case GcPhase::kOff: return "off";
    case GcPhase::kMark: return "mark";
    case GcPhase::kMarkTermination: return "mark termination";
  }
  return "unknown";
}

std::string HeapObject::state() const {
  if (!allocated) return "free";
  if (!live) return "garbage (unmarked, not yet swept)";
  return "live";
}

Result<Heap> Heap::open(const Memory& mem, const GoBinary& bin, int64_t slide) {
  const RuntimeLayouts& L = bin.layouts();
  for (uint32_t f : {L.mheap_sweepgen, L.mheap_allspans, L.mheap_arenas, L.heaparena_spans, L.mspan_start_addr,
                     L.mspan_npages, L.mspan_freeindex, L.mspan_nelems, L.mspan_alloc_bits, L.mspan_gcmark_bits,
                     L.mspan_sweepgen, L.mspan_spanclass, L.mspan_state, L.mspan_elemsize, L.mspan_limit,
                     L.mstats_numgc})
    if (!L.has(f))
      return make_error(ErrorKind::kUnsupported, "no heap layout for {}: cannot read the heap", bin.version().raw);
  Heap h;
  h.mem_ = &mem;
  h.bin_ = &bin;
  // mspan.freeindex and nelems: uintptr in 1.21, uint16 from 1.22 (mheap.go).
  h.index_width_ = bin.version().at_least(1, 22) ? 2 : 8;
  // Green Tea's span queues exist only when its mark bits are inline (1.26 default,
  // GOEXPERIMENT=greenteagc in 1.25): the code tells, whatever the version string says.
  h.state_.green_tea = bin.func("runtime.(*spanQueue).put").has_value();
  GORT_TRY(auto mheap, find_mheap(bin));
  h.state_.mheap = mheap.addr + slide;
  auto at = [&](uint32_t off) { return h.state_.mheap + static_cast<int64_t>(off); };
  auto sg = mem.read_u32(at(L.mheap_sweepgen));
  if (!sg)
    return make_error(ErrorKind::kIo, "cannot read runtime.mheap_ at {}: {} (is this memory the program's?)",
                      h.state_.mheap, sg.error().message);
  h.state_.sweepgen = *sg;
  GORT_TRY(h.l2_, mem.read_ptr(at(L.mheap_arenas)));
  if (auto ph = find_gcphase(bin); ph.ok()) {
    if (auto v = mem.read_u32(ph->addr + slide); v.ok() && *v <= 2) {
      h.state_.phase = static_cast<GcPhase>(*v);
      h.state_.phase_known = true;
    }
  }
  if (auto ms = find_memstats(bin); ms.ok()) {
    if (auto v = mem.read_u32(ms->addr + slide + static_cast<int64_t>(L.mstats_numgc)); v.ok()) h.state_.numgc = *v;
  }
  return h;
}

Result<RemoteAddr> Heap::arena(uint64_t ri) const {
  if (auto it = arenas_.find(ri); it != arenas_.end()) return it->second;
  RemoteAddr ha;
  if (!l2_.is_null()) {
    GORT_TRY(ha, mem_->read_ptr(l2_ + static_cast<int64_t>(ri * 8)));
  }
  arenas_.emplace(ri, ha);
  return ha;
}

bool Heap::is_arena_start(RemoteAddr p) {
  return ((p.value() - kArenaBaseOffset) & ((1ull << kLogHeapArenaBytes) - 1)) == 0;
}

Result<bool> Heap::in_arena(RemoteAddr p) const {
  uint64_t ri = (p.value() - kArenaBaseOffset) >> kLogHeapArenaBytes;
  if (ri >= kArenaL2Entries) return false;
  GORT_TRY(auto ha, arena(ri));
  return !ha.is_null();
}

Result<std::optional<SpanInfo>> Heap::span_of(RemoteAddr p) const {
  uint64_t ri = (p.value() - kArenaBaseOffset) >> kLogHeapArenaBytes;
  if (ri >= kArenaL2Entries) return std::optional<SpanInfo>{};
  GORT_TRY(auto ha, arena(ri));
  if (ha.is_null()) return std::optional<SpanInfo>{};
  const RuntimeLayouts& L = bin_->layouts();
  uint64_t page = (p.value() / kPageSize) % kPagesPerArena;
  GORT_TRY(auto s, mem_->read_ptr(ha + static_cast<int64_t>(L.heaparena_spans + page * 8)));
  if (s.is_null()) return std::optional<SpanInfo>{};
  GORT_TRY(auto info, read_span(s));
  if (p < info.base || p.value() >= info.base.value() + info.npages * kPageSize) return std::optional<SpanInfo>{};
  return std::optional<SpanInfo>(info);
}

Result<SpanInfo> Heap::read_span(RemoteAddr ms) const {
  const RuntimeLayouts& L = bin_->layouts();
  std::vector<uint8_t> b(L.mspan_size != kAbsentField ? L.mspan_size : 256);
  GORT_TRY_VOID(mem_->read(ms, b));
  auto u64 = [&](uint32_t off) {
    uint64_t v = 0;
    if (off + 8 <= b.size()) std::memcpy(&v, b.data() + off, 8);
    return v;
  };
  auto idx = [&](uint32_t off) {
    if (index_width_ == 8) return u64(off);
    uint16_t v = 0;
    if (off + 2 <= b.size()) std::memcpy(&v, b.data() + off, 2);
    return uint64_t(v);
  };
  SpanInfo s;
  s.addr = ms;
  s.base = RemoteAddr(u64(L.mspan_start_addr));
  s.npages = u64(L.mspan_npages);
  s.limit = RemoteAddr(u64(L.mspan_limit));
  s.elemsize = u64(L.mspan_elemsize);
  s.nelems = idx(L.mspan_nelems);
  s.freeindex = idx(L.mspan_freeindex);
  s.spanclass = b[L.mspan_spanclass];
  s.state = static_cast<SpanState>(b[L.mspan_state]);
  std::memcpy(&s.sweepgen, b.data() + L.mspan_sweepgen, 4);
  s.sweep = sweep_state(s.sweepgen, state_.sweepgen);
  s.alloc_bits = RemoteAddr(u64(L.mspan_alloc_bits));
  s.gcmark_bits = RemoteAddr(u64(L.mspan_gcmark_bits));
  s.inline_marks = uses_inline_marks(state_.green_tea, s.elemsize) && s.npages == 1;
  // A span is sane when its geometry is: anything else is not an mspan (or torn memory).
  if (s.npages == 0 || s.npages > (1ull << 31) || s.elemsize == 0 || s.nelems > s.npages * kPageSize ||
      s.base.value() % kPageSize != 0)
    return make_error(ErrorKind::kBadInput, "{} is not a valid mspan (base {}, {} pages, elemsize {}, nelems {})", ms,
                      s.base, s.npages, s.elemsize, s.nelems);
  if (s.limit < s.base || s.limit.value() > s.base.value() + s.npages * kPageSize)
    s.limit = s.base + static_cast<int64_t>(s.nelems * s.elemsize);
  return s;
}

Result<Heap::SpanBits> Heap::bits(const SpanInfo& s) const {
  SpanBits b;
  uint64_t n = (s.nelems + 7) / 8;
  b.alloc.resize(n);
  b.mark.resize(n);
  if (!s.alloc_bits.is_null() && n) GORT_TRY_VOID(mem_->read(s.alloc_bits, b.alloc));
  if (s.inline_marks) {
    b.mark.resize(std::min<uint64_t>(n, kInlineMarksBytes));
    GORT_TRY_VOID(mem_->read(s.base + static_cast<int64_t>(kPageSize - kInlineMarkBitsSize + kInlineMarksOffset),
                             b.mark));
  } else if (!s.gcmark_bits.is_null() && n) {
    GORT_TRY_VOID(mem_->read(s.gcmark_bits, b.mark));
  }
  return b;
}

bool Heap::live(const SpanInfo& s, const SpanBits& b, uint64_t i) const {
  if (!b.allocated(s, i)) return false;
  // A completed mark whose sweep has not reached this span: unmarked objects are garbage.
  // While marking (or being swept) the mark bits are not final: allocated counts as live.
  if (unswept(s.sweep) && state_.phase == GcPhase::kOff) return b.marked(i);
  return true;
}

bool Heap::reached(const SpanInfo& s, const SpanBits& b, uint64_t i) const {
  if (state_.phase != GcPhase::kOff) return live(s, b, i);
  if (unswept(s.sweep)) return b.marked(i);
  // Mid-sweep the marks move into allocBits (and 1.26's inline marks are cleared) before
  // sweepgen says so: either bitmap may hold them.
  if (s.sweep == SweepState::kSweeping)
    return b.marked(i) || (i / 8 < b.alloc.size() && (b.alloc[i / 8] >> (i % 8)) & 1);
  if (s.sweep == SweepState::kSwept || s.sweep == SweepState::kCachedSwept)
    return i / 8 < b.alloc.size() && (b.alloc[i / 8] >> (i % 8)) & 1;
  return live(s, b, i);
}

Result<HeapObject> Heap::object_in(const SpanInfo& s, uint64_t i) const {
  GORT_TRY(auto b, bits(s));
  return object_at(s, b, i);
}

HeapObject Heap::object_at(const SpanInfo& s, const SpanBits& b, uint64_t i) const {
  HeapObject o;
  o.span = s;
  o.index = i;
  o.base = s.base + static_cast<int64_t>(i * s.elemsize);
  o.size = s.elemsize;
  o.allocated = b.allocated(s, i);
  o.marked = b.marked(i);
  o.live = live(s, b, i);
  return o;
}

Result<std::optional<HeapObject>> Heap::object_of(RemoteAddr p) const {
  GORT_TRY(auto s, span_of(p));
  if (!s || s->state != SpanState::kInUse || p >= s->limit) return std::optional<HeapObject>{};
  uint64_t i = static_cast<uint64_t>(p - s->base) / s->elemsize;
  if (i >= s->nelems) return std::optional<HeapObject>{};
  GORT_TRY(auto o, object_in(*s, i));
  return std::optional<HeapObject>(o);
}

Result<std::vector<SpanInfo>> Heap::spans() const {
  const RuntimeLayouts& L = bin_->layouts();
  RemoteAddr hdr = state_.mheap + static_cast<int64_t>(L.mheap_allspans);
  GORT_TRY(auto ptr, mem_->read_ptr(hdr));
  GORT_TRY(auto len, mem_->read_u64(hdr + 8));
  if (len > (1ull << 28))
    return make_error(ErrorKind::kBadInput, "mheap_.allspans has {} entries: not a heap (corrupt memory?)", len);
  std::vector<uint64_t> ptrs(len);
  if (len) GORT_TRY_VOID(mem_->read(ptr, std::span<uint8_t>(reinterpret_cast<uint8_t*>(ptrs.data()), len * 8)));
  std::vector<SpanInfo> out;
  out.reserve(len);
  for (uint64_t p : ptrs) {
    if (!p) continue;
    auto s = read_span(RemoteAddr(p));
    if (!s || s->state != SpanState::kInUse) continue;
    out.push_back(*s);
  }
  std::sort(out.begin(), out.end(), [](const SpanInfo& a, const SpanInfo& b) { return a.base < b.base; });
  return out;
}

SpanIndex::SpanIndex(std::vector<SpanInfo> spans) : spans_(std::move(spans)) {
  if (!spans_.empty()) {
    lo_ = spans_.front().base.value();
    for (auto& s : spans_) hi_ = std::max(hi_, s.limit.value());
  }
}

const SpanInfo* SpanIndex::find(uint64_t p) const {
  if (p < lo_ || p >= hi_) return nullptr;
  auto it = std::upper_bound(spans_.begin(), spans_.end(), p,
                             [](uint64_t v, const SpanInfo& s) { return v < s.base.value(); });
  if (it == spans_.begin()) return nullptr;
  --it;
  return p < it->limit.value() ? &*it : nullptr;
}

}  // namespace gort::core
