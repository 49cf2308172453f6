// The dangling integer-held pointer scan. See dangling.h.

#include "core/analysis/dangling.h"

#include "core/goruntime/unwind.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <set>
#include <unordered_map>

namespace gort::core::analysis {

namespace {

constexpr uint64_t kChunk = 4u << 20;  // bytes read at once

// A global of the runtime itself: it keeps addresses in uintptr fields by design (page
// allocator, guintptr/puintptr, write-barrier buffers).
bool runtime_global(const std::string& name) {
  return name.rfind("runtime.", 0) == 0 || name.rfind("internal/runtime/", 0) == 0;
}

struct Scanner {
  const Memory& mem;
  const GoBinary& bin;
  int64_t slide;
  const Heap& heap;
  const ScanOptions& opts;
  ScanResult& out;
  SpanIndex index;
  GlobalIndex globals;
  std::vector<std::optional<Heap::SpanBits>> bits;  // per index span, read on demand
  std::vector<uint8_t> bits_failed;
  uint64_t total = 0, done = 0, next_progress = 0;
  bool limit_noted = false;
  RemoteAddr mheap_lo, mheap_hi;                      // runtime.mheap_
  std::vector<std::pair<uint64_t, uint64_t>> gs;      // g structs [lo, hi), sorted

  Scanner(const Memory& m, const GoBinary& b, int64_t s, const Heap& h, const ScanOptions& o, ScanResult& r,
          std::vector<SpanInfo> spans)
      : mem(m), bin(b), slide(s), heap(h), opts(o), out(r), index(std::move(spans)), globals(b, s) {
    bits.resize(index.spans().size());
    bits_failed.resize(index.spans().size());
  }

  const Heap::SpanBits* bits_of(const SpanInfo& s) {
    size_t k = static_cast<size_t>(&s - index.spans().data());
    if (bits[k]) return &*bits[k];
    if (bits_failed[k]) return nullptr;
    auto b = heap.bits(s);
    if (!b) {
      bits_failed[k] = 1;
      out.stats.unreadable++;
      return nullptr;
    }
    bits[k] = std::move(*b);
    return &*bits[k];
  }

  bool in_arena(uint64_t v) {
    auto r = heap.in_arena(RemoteAddr(v));  // cached per arena by Heap
    return r.ok() && *r;
  }

  // The target of value V when it is a heap address the GC did not keep; nullopt otherwise.
  std::optional<DanglingTarget> dangling_target(uint64_t v) {
    if (const SpanInfo* s = index.find(v)) {
      out.stats.heap_words++;
      uint64_t i = (v - s->base.value()) / s->elemsize;
      if (i >= s->nelems) return std::nullopt;
      const Heap::SpanBits* b = bits_of(*s);
      if (!b || heap.live(*s, *b, i)) return std::nullopt;
      DanglingTarget t;
      t.value = RemoteAddr(v);
      t.base = s->base + static_cast<int64_t>(i * s->elemsize);
      t.size = s->elemsize;
      t.state = b->allocated(*s, i) ? "garbage (unmarked, not yet swept)" : "free";
      t.sizeclass = s->sizeclass();
      t.noscan = s->noscan();
      return t;
    }
    if (!in_arena(v)) return std::nullopt;
    out.stats.heap_words++;
    auto span = heap.span_of(RemoteAddr(v));
    if (!span.ok()) return std::nullopt;
    // Stacks and runtime structures live in manual spans; an in-use span missing from the
    // index appeared after allspans was read.
    if (*span && (*span)->state != SpanState::kDead) return std::nullopt;
    DanglingTarget t;
    t.value = RemoteAddr(v);
    t.state = "freed pages (no span in use)";
    return t;
  }

  void progress(uint64_t n) {
    done += n;
    out.stats.bytes_scanned += n;
    if (opts.progress && done >= next_progress) {
      opts.progress(done, total);
      next_progress = done + (64u << 20);
    }
  }

  // Scans the words of BYTES at ADDR; HOLDER(word address) describes the holder.
  template <typename H>
  void scan_words(RemoteAddr addr, std::span<const uint8_t> bytes, H&& holder) {
    size_t n = bytes.size() / 8;
    const uint8_t* p = bytes.data();
    const uint64_t lo = index.lo();
    for (size_t k = 0; k < n; k++) {
      uint64_t v;
      std::memcpy(&v, p + k * 8, 8);
      // The cheap filter: below the lowest span and not in an arena (small integers, ...).
      // Go allocates every object 8-byte aligned (tiny blocks 16): an unaligned value is a
      // tagged or packed integer, not an object's address kept as one.
      if (v < 4096 || (v & 7) != 0) continue;
      if (v < lo && !in_arena(v)) continue;
      auto t = dangling_target(v);
      if (!t) continue;
      if (out.findings.size() >= opts.max_findings) {
        if (!limit_noted) out.notes.push_back(fmt::format("stopped reporting after {} findings", opts.max_findings));
        limit_noted = true;
        return;
      }
      DanglingFinding f;
      f.holder = holder(addr + static_cast<int64_t>(k * 8));
      f.target = *t;
      f.gc_cycle = out.heap.numgc;
      out.findings.push_back(std::move(f));
    }
    out.stats.words += n;
  }

  std::vector<std::pair<GlobalIndex::Range, std::vector<uint8_t>>> roots;

  void scan_globals() {
    for (auto& r : globals.ranges()) {
      std::vector<uint8_t> b(static_cast<size_t>(r.hi - r.lo));
      if (!mem.read(r.lo, b)) {
        out.stats.unreadable++;
        out.notes.push_back(fmt::format("{} [{}, {}) unreadable: not scanned", r.section, r.lo, r.hi));
        continue;
      }
      out.stats.roots_bytes += b.size();
      scan_words(r.lo, b, [&](RemoteAddr w) {
        DanglingHolder h;
        h.kind = AddrInfo::Kind::kGlobal;
        h.addr = w;
        auto hit = globals.find(w);
        h.text = hit ? GlobalIndex::text(*hit) : fmt::format("{}", w);
        return h;
      });
      progress(b.size());
      roots.emplace_back(r, std::move(b));
    }
  }

  void scan_heap() {
    std::vector<uint8_t> buf;
    for (const SpanInfo& s : index.spans()) {
      out.stats.spans++;
      if (s.elemsize < 8) continue;
      const Heap::SpanBits* b = bits_of(s);
      if (!b) continue;
      uint64_t span_bytes = s.nelems * s.elemsize;
      // Read in chunks of whole objects (a large object in 4 MiB pieces).
      for (uint64_t off = 0; off < span_bytes;) {
        uint64_t len = std::min<uint64_t>(kChunk, span_bytes - off);
        if (s.elemsize <= kChunk) len = std::max<uint64_t>(len / s.elemsize, 1) * s.elemsize;
        uint64_t first = off / s.elemsize, last = (off + len - 1) / s.elemsize;
        bool any = false;
        auto holder = [&](uint64_t i) {
          return opts.reached_holders_only ? heap.reached(s, *b, i) : heap.live(s, *b, i);
        };
        for (uint64_t i = first; i <= last && !any; i++) any = holder(i);
        if (!any) {
          off += len;
          continue;
        }
        buf.resize(len);
        if (!mem.read(s.base + static_cast<int64_t>(off), buf)) {
          out.stats.unreadable++;
          off += len;
          continue;
        }
        for (uint64_t i = first; i <= last; i++) {
          if (!holder(i)) continue;
          uint64_t obj_off = i * s.elemsize;
          uint64_t from = std::max(obj_off, off), to = std::min(obj_off + s.elemsize, off + len);
          if (from == obj_off) out.stats.objects_scanned++;
          RemoteAddr base = s.base + static_cast<int64_t>(obj_off);
          scan_words(s.base + static_cast<int64_t>(from),
                     std::span<const uint8_t>(buf.data() + (from - off), to - from), [&](RemoteAddr w) {
                       DanglingHolder h;
                       h.kind = AddrInfo::Kind::kHeap;
                       h.addr = w;
                       h.object = heap.object_at(s, *b, i);
                       h.text = fmt::format("heap object {} [{} B{}] +{:#x}", base, s.elemsize,
                                            s.noscan() ? ", noscan" : "", static_cast<uint64_t>(w - base));
                       return h;
                     });
        }
        progress(len);
        off += len;
      }
    }
  }

  void scan_stacks(const std::vector<Goroutine>& gs, const std::vector<ThreadRegs>& threads) {
    for (auto& g : gs) {
      if (g_status_is_dead(g.status)) continue;  // no live frames
      UnwindStart st = unwind_start_for(mem, g, threads);
      RemoteAddr lo = st.sp;
      if (lo < g.stack_lo || lo >= g.stack_hi) lo = g.stack_lo;
      std::vector<uint8_t> b(static_cast<size_t>(g.stack_hi - lo));
      if (b.empty() || !mem.read(lo, b)) continue;
      out.stats.stack_bytes += b.size();
      std::optional<Unwound> frames;
      scan_words(lo, b, [&](RemoteAddr w) {
        DanglingHolder h;
        h.kind = AddrInfo::Kind::kStack;
        h.addr = w;
        h.goid = g.goid;
        if (!frames) {
          auto u = unwind(mem, bin.pclntab(), slide, st);
          frames = u.ok() ? std::move(*u) : Unwound{};
        }
        if (const StackFrame* fr = frame_holding(*frames, w, g.stack_hi)) {
          auto& sf = fr->sources.back();
          h.frame = fmt::format("{} ({}:{})", sf.function, sf.file, sf.line);
        }
        h.text = fmt::format("stack of goroutine {}{}", g.goid, h.frame.empty() ? "" : ", frame " + h.frame);
        return h;
      });
      progress(b.size());
    }
  }

  // The globals whose words point into each heap holder: who owns the holding object.
  void attribute_holders() {
    std::unordered_map<uint64_t, std::vector<std::string>> by_base;
    for (auto& f : out.findings)
      if (f.holder.object) by_base.emplace(f.holder.object->base.value(), std::vector<std::string>{});
    if (by_base.empty()) return;
    std::vector<std::pair<uint64_t, uint64_t>> objs;  // (base, size), sorted
    for (auto& f : out.findings)
      if (f.holder.object) objs.emplace_back(f.holder.object->base.value(), f.holder.object->size);
    std::sort(objs.begin(), objs.end());
    objs.erase(std::unique(objs.begin(), objs.end()), objs.end());
    for (auto& [r, b] : roots) {
      for (size_t k = 0; k + 8 <= b.size(); k += 8) {
        uint64_t v;
        std::memcpy(&v, b.data() + k, 8);
        auto it = std::upper_bound(objs.begin(), objs.end(), std::make_pair(v, UINT64_MAX));
        if (it == objs.begin()) continue;
        --it;
        if (v >= it->first + it->second) continue;
        auto hit = globals.find(r.lo + static_cast<int64_t>(k));
        auto& list = by_base[it->first];
        std::string name = hit ? GlobalIndex::text(*hit) : fmt::format("{}", r.lo + static_cast<int64_t>(k));
        if (list.size() < 8 && std::find(list.begin(), list.end(), name) == list.end()) {
          list.push_back(name);
          ref_words[it->first].push_back(r.lo + static_cast<int64_t>(k));
        }
      }
    }
    for (auto& f : out.findings)
      if (f.holder.object) f.holder.referenced_from = by_base[f.holder.object->base.value()];
  }
  std::unordered_map<uint64_t, std::vector<RemoteAddr>> ref_words;  // heap holder base -> referencing global words

  // "The code that filled it": the functions whose code stores to the global holding the
  // word (kGlobal) or to the globals referencing the holding object (kHeap). Static
  // (core/disasm/global_writers.h): one query per distinct global, only when a finding
  // needs it (a few ms on a 15 MB binary).
  void attribute_fillers() {
    auto t0 = std::chrono::steady_clock::now();
    std::optional<GlobalWriters> gw;
    std::unordered_map<std::string, std::vector<std::string>> by_global;
    bool failed = false;
    auto of_global = [&](RemoteAddr word) -> const std::vector<std::string>* {
      auto hit = globals.find(word);
      // stripped: the section's name, no symbol and no range to ask about
      if (!hit || hit->name == hit->section || hit->size == 0 || failed) return nullptr;
      if (auto it = by_global.find(hit->name); it != by_global.end()) return &it->second;
      if (!gw) gw.emplace(bin);
      uint64_t lo = (word - slide).value() - hit->offset;
      auto ws = gw->writers(lo, lo + hit->size);
      if (!ws) {
        failed = true;
        out.notes.push_back("cannot find the code that fills the holders: " + ws.error().message);
        return nullptr;
      }
      return &by_global.emplace(hit->name, GlobalWriters::summarize(*ws)).first->second;
    };
    auto add = [](std::vector<std::string>& to, const std::vector<std::string>* from) {
      if (!from) return;
      for (auto& s : *from)
        if (std::find(to.begin(), to.end(), s) == to.end()) to.push_back(s);
    };
    for (auto& f : out.findings) {
      if (f.holder.kind == AddrInfo::Kind::kGlobal) add(f.holder.filled_by, of_global(f.holder.addr));
      if (f.holder.kind == AddrInfo::Kind::kHeap && f.holder.object)
        if (auto it = ref_words.find(f.holder.object->base.value()); it != ref_words.end())
          for (RemoteAddr w : it->second) add(f.holder.filled_by, of_global(w));
    }
    out.stats.filled_by_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  bool in_g(uint64_t a) const {
    auto it = std::upper_bound(gs.begin(), gs.end(), std::make_pair(a, UINT64_MAX));
    return (it != gs.begin() && a < std::prev(it)->second) || runtime_bases.count(a);
  }
  std::set<uint64_t> runtime_bases;  // the runtime's own heap structs: every m, its g0 and gsignal, every p

  // runtime.allm (a list through m.alllink) and runtime.allp ([]*p), from .symtab.
  void find_runtime_structs() {
    const RuntimeLayouts& L = bin.layouts();
    if (auto s = bin.elf().find_symbol("runtime.allm"); s && L.has(L.m_alllink)) {
      auto m = mem.read_ptr(s->value + slide);
      for (int n = 0; m.ok() && !m->is_null() && n < 100000; n++) {
        runtime_bases.insert(m->value());
        for (uint32_t f : {L.m_g0, L.m_gsignal})
          if (L.has(f))
            if (auto g = mem.read_ptr(*m + static_cast<int64_t>(f)); g.ok()) runtime_bases.insert(g->value());
        m = mem.read_ptr(*m + static_cast<int64_t>(L.m_alllink));
      }
    }
    if (auto s = bin.elf().find_symbol("runtime.allp")) {
      auto ptr = mem.read_ptr(s->value + slide);
      auto len = mem.read_u64(s->value + slide + 16);  // cap: a shrunk GOMAXPROCS keeps its old ps there
      if (ptr.ok() && len.ok() && *len < 100000)
        for (uint64_t i = 0; i < *len; i++)
          if (auto p = mem.read_ptr(*ptr + static_cast<int64_t>(i * 8)); p.ok()) runtime_bases.insert(p->value());
    }
  }

  // The Go type name of a heap object with a malloc header (Go 1.22+, scan objects over
  // 512 B: the *abi.Type in the slot's first word), "" when unknown.
  std::string header_type(const HeapObject& o) {
    const RuntimeLayouts& L = bin.layouts();
    if (!bin.version().at_least(1, 22) || o.span.noscan() || o.size <= 512 || !L.has(L.type_str)) return "";
    auto t = mem.read_ptr(o.base);
    if (!t || t->is_null()) return "";
    auto str = mem.read_value<int32_t>(*t + static_cast<int64_t>(L.type_str));
    auto tflag = mem.read_u8(*t + static_cast<int64_t>(L.type_tflag));
    if (!str || !tflag) return "";
    RemoteAddr name = bin.moduledata().types + slide + *str;
    uint8_t hdr[3];
    if (!mem.read(name, hdr)) return "";
    uint64_t len = hdr[1], at = 2;  // flags byte, then a varint length
    if (hdr[1] & 0x80) len = (hdr[1] & 0x7f) | (uint64_t(hdr[2]) << 7), at = 3;
    if (len == 0 || len > 256) return "";
    std::string n(len, '\0');
    if (!mem.read(name + static_cast<int64_t>(at), std::span<uint8_t>(reinterpret_cast<uint8_t*>(n.data()), len)))
      return "";
    if ((*tflag & 2) && n[0] == '*') n.erase(0, 1);  // tflagExtraStar
    return n;
  }

  // The runtime's own holders out: mheap_, runtime globals (by name), g structs, and heap
  // objects that only runtime globals reference (a p, an m).
  /// The holder is a g's stack.hi (one past the stack's end, so it can land on the next
  /// span's first object) in a g gort has no list of: a stripped binary's g0 or gsignal
  /// (without runtime.allm). Recognised by its shape: a pointerful object of a g's size,
  /// the word at g.stack.hi, and g.stack.lo before it a power-of-two stack size below.
  bool g_stack_bound(const DanglingFinding& f) const {
    const RuntimeLayouts& L = bin.layouts();
    if (!L.has(L.g_size) || !L.has(L.g_stack_lo) || !L.has(L.g_stack_hi) || !f.holder.object) return false;
    const HeapObject& o = *f.holder.object;
    if (o.span.noscan() || o.size < L.g_size || o.size > L.g_size + L.g_size / 4) return false;
    if (f.holder.addr - o.base != L.g_stack_hi) return false;
    std::array<uint8_t, 8> lo_b{};
    if (!mem.read(o.base + static_cast<int64_t>(L.g_stack_lo), lo_b)) return false;
    uint64_t lo = 0;
    std::memcpy(&lo, lo_b.data(), 8);
    uint64_t size = f.target.value.value() - lo;
    return lo < f.target.value.value() && size >= 2048 && size <= (1ull << 30) && (size & (size - 1)) == 0;
  }

  /// The holder is a P's pageCache.base (p.pcache, right after p.m and p.mcache), a
  /// uintptr to a 64-page chunk. Without runtime.allp (stripped) and without malloc
  /// headers (Go 1.21) gort cannot list the Ps; CI saw such a base reported. Recognised by
  /// shape: the offset, the 512 KiB alignment, p.mcache pointing outside the heap, and a
  /// valid p.id and p.status.
  bool p_page_cache(const DanglingFinding& f) const {
    const RuntimeLayouts& L = bin.layouts();
    if (!L.has(L.p_m) || !L.has(L.p_id) || !L.has(L.p_status) || !f.holder.object) return false;
    const HeapObject& o = *f.holder.object;
    if (o.span.noscan() || f.holder.addr - o.base != L.p_m + 16) return false;
    if (f.target.value.value() % (64 * 8192) != 0) return false;
    auto mcache = mem.read_u64(o.base + static_cast<int64_t>(L.p_m + 8));
    auto id = mem.read_u32(o.base + static_cast<int64_t>(L.p_id));
    auto st = mem.read_u32(o.base + static_cast<int64_t>(L.p_status));
    return mcache.ok() && *mcache != 0 && !index.find(*mcache) && id.ok() && *id < 1024 && st.ok() && *st <= 4;
  }

  void drop_runtime_holders() {
    auto runtime_owned = [&](const DanglingFinding& f) {
      if (f.holder.kind == AddrInfo::Kind::kGlobal) {
        if (f.holder.addr >= mheap_lo && f.holder.addr < mheap_hi) return true;
        auto hit = globals.find(f.holder.addr);
        // A global gort cannot name (a stripped binary) holding an arena's first address:
        // the runtime's arena bookkeeping (curArena.base, arenaHints), an integer by design.
        // CI saw 0xc000000000 reported once when the heap's first object happened to be free.
        if (!hit && Heap::is_arena_start(f.target.value)) return true;
        return hit && runtime_global(hit->name);
      }
      if (f.holder.kind != AddrInfo::Kind::kHeap || !f.holder.object) return false;
      // (objects over 512 B begin after an 8-byte malloc header from Go 1.22: the struct's
      // address is inside the slot, not at its base)
      uint64_t b = f.holder.object->base.value();
      if (in_g(b)) return true;
      if (auto it = runtime_bases.lower_bound(b); it != runtime_bases.end() && *it < b + f.holder.object->size)
        return true;
      if (runtime_global(header_type(*f.holder.object))) return true;
      if (g_stack_bound(f)) return true;
      if (p_page_cache(f)) return true;
      auto& refs = f.holder.referenced_from;
      return !refs.empty() && std::all_of(refs.begin(), refs.end(), [](const std::string& r) {
        return runtime_global(r.substr(0, r.find_first_of(" +")));
      });
    };
    size_t before = out.findings.size();
    std::erase_if(out.findings, runtime_owned);
    out.stats.runtime_holders += before - out.findings.size();
  }
};

std::string established_by(const DanglingFinding& f, const HeapState& hs) {
  std::string where = f.holder.kind == AddrInfo::Kind::kGlobal ? "a global, which the GC scans as a root"
                      : f.holder.kind == AddrInfo::Kind::kStack
                          ? "a goroutine stack (gort does not read stack maps: a dead pointer slot looks the same)"
                          : fmt::format("a live heap object{}",
                                        f.holder.object && f.holder.object->span.noscan()
                                            ? " of a pointer-free (noscan) type, which the GC never reads"
                                            : "");
  std::string what;
  if (f.target.state == "free")
    what = "a free slot of an in-use span: the object was freed by a completed GC cycle while this word kept its "
           "address";
  else if (f.target.state.rfind("garbage", 0) == 0)
    what = fmt::format("an object GC cycle {} did not mark: the sweep will free it", hs.numgc);
  else
    what = "heap pages no span uses: a freed large object";
  return fmt::format(
      "the word's value points into {}; the word lies in {}. A pointer the GC knew of would have kept its target "
      "alive, so this is an integer (uintptr, handle) holding a heap address",
      what, where);
}

}  // namespace

ScanResult scan_dangling(const Memory& mem, const GoBinary& bin, int64_t slide, const Heap& heap,
                         const std::vector<Goroutine>& goroutines, const std::vector<ThreadRegs>& threads,
                         const ScanOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  ScanResult out;
  out.heap = heap.state();
  auto spans = heap.spans();
  if (!spans) {
    out.notes.push_back("cannot read mheap_.allspans: " + spans.error().message);
    return out;
  }
  Scanner sc(mem, bin, slide, heap, opts, out, std::move(*spans));
  for (auto& s : sc.index.spans()) sc.total += s.nelems * s.elemsize;
  for (auto& r : sc.globals.ranges()) sc.total += static_cast<uint64_t>(r.hi - r.lo);
  if (!heap.state().phase_known)
    out.notes.push_back(
        "runtime.gcphase not found: the GC is taken to be off; if it was marking, unmarked objects reported as "
        "garbage may still be marked in this cycle");
  if (heap.state().phase != GcPhase::kOff)
    out.notes.push_back(fmt::format(
        "the GC is in its {} phase: mark bits are not final (except at mark termination); objects that are allocated "
        "count as live, so only freed memory is reported",
        to_string(heap.state().phase)));
  sc.scan_globals();
  sc.scan_heap();
  if (opts.stacks) sc.scan_stacks(goroutines, threads);
  if (auto m = heap.state().mheap; !m.is_null()) {
    sc.mheap_lo = m;
    uint32_t size = bin.layouts().mheap_size;
    sc.mheap_hi = m + static_cast<int64_t>(bin.layouts().has(size) ? size : 0x18000);
  }
  for (auto& g : goroutines)
    if (bin.layouts().has(bin.layouts().g_size)) sc.gs.emplace_back(g.g.value(), g.g.value() + bin.layouts().g_size);
  std::sort(sc.gs.begin(), sc.gs.end());
  sc.find_runtime_structs();
  sc.attribute_holders();
  sc.drop_runtime_holders();
  sc.attribute_fillers();
  for (auto& f : out.findings) f.established_by = established_by(f, out.heap);
  out.stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

namespace {
std::string hx(RemoteAddr a) { return fmt::format("{:#x}", a.value()); }
}  // namespace

nlohmann::json to_json(const ScanResult& r) {
  auto fs = nlohmann::json::array();
  for (auto& f : r.findings) {
    nlohmann::json h = {{"kind", to_string(f.holder.kind)}, {"addr", hx(f.holder.addr)}, {"text", f.holder.text}};
    if (f.holder.object)
      h["object"] = {{"base", hx(f.holder.object->base)},
                     {"size", f.holder.object->size},
                     {"offset", f.holder.addr - f.holder.object->base},
                     {"noscan", f.holder.object->span.noscan()}};
    if (f.holder.kind == AddrInfo::Kind::kHeap) h["referenced_from"] = f.holder.referenced_from;
    if (f.holder.kind == AddrInfo::Kind::kHeap || f.holder.kind == AddrInfo::Kind::kGlobal)
      h["filled_by"] = f.holder.filled_by;
    if (f.holder.kind == AddrInfo::Kind::kStack) {
      h["goroutine"] = f.holder.goid;
      h["frame"] = f.holder.frame;
    }
    nlohmann::json t = {{"value", hx(f.target.value)}, {"size", f.target.size}, {"state", f.target.state},
                        {"sizeclass", f.target.sizeclass}, {"noscan", f.target.noscan}};
    t["base"] = f.target.base.is_null() ? nlohmann::json(nullptr) : nlohmann::json(hx(f.target.base));
    fs.push_back({{"kind", "dangling-pointer"},
                  {"holder", h},
                  {"target", t},
                  {"gc_cycle", f.gc_cycle},
                  {"established_by", f.established_by}});
  }
  const ScanStats& s = r.stats;
  return {{"heap",
           {{"gc_cycles", r.heap.numgc},
            {"phase", r.heap.phase_known ? to_string(r.heap.phase) : "unknown"},
            {"sweepgen", r.heap.sweepgen},
            {"green_tea", r.heap.green_tea}}},
          {"findings", fs},
          {"stats",
           {{"spans", s.spans},
            {"objects_scanned", s.objects_scanned},
            {"bytes_scanned", s.bytes_scanned},
            {"roots_bytes", s.roots_bytes},
            {"stack_bytes", s.stack_bytes},
            {"words", s.words},
            {"heap_words", s.heap_words},
            {"unreadable", s.unreadable},
            {"runtime_holders", s.runtime_holders},
            {"seconds", s.seconds},
            {"filled_by_seconds", s.filled_by_seconds},
            {"gb_per_s", s.gb_per_s()}}},
          {"notes", r.notes}};
}

std::string to_text(const ScanResult& r) {
  std::string out;
  for (size_t i = 0; i < r.findings.size(); i++) {
    const DanglingFinding& f = r.findings[i];
    out += fmt::format("dangling-pointer #{}: {} holds {}\n", i + 1, f.holder.text, f.target.value);
    out += fmt::format("  holder  {} at {}", to_string(f.holder.kind), f.holder.addr);
    if (!f.holder.referenced_from.empty()) {
      out += ", in the object referenced from ";
      for (size_t k = 0; k < f.holder.referenced_from.size(); k++)
        out += (k ? ", " : "") + f.holder.referenced_from[k];
    }
    out += "\n";
    if (!f.holder.filled_by.empty()) {
      out += "          filled by: ";
      for (size_t k = 0; k < f.holder.filled_by.size(); k++) out += (k ? ", " : "") + f.holder.filled_by[k];
      out += "\n";
    }
    if (f.target.base.is_null())
      out += fmt::format("  target  {}: {}\n", f.target.value, f.target.state);
    else
      out += fmt::format("  target  object {} [{} B, size class {}{}] +{:#x}: {}\n", f.target.base, f.target.size,
                         f.target.sizeclass, f.target.noscan ? ", noscan" : "",
                         static_cast<uint64_t>(f.target.value - f.target.base), f.target.state);
    out += fmt::format("  cycle   after GC cycle {}\n  why     {}\n\n", f.gc_cycle, f.established_by);
  }
  const ScanStats& s = r.stats;
  out += fmt::format(
      "{} dangling pointer(s). Scanned {:.1f} MB ({} live objects in {} spans, {} KB of globals{}) in {:.3f} s "
      "({:.2f} GB/s); GC cycles completed: {}, phase {}{}\n",
      r.findings.size(), double(s.bytes_scanned) / 1e6, s.objects_scanned, s.spans, s.roots_bytes / 1024,
      s.stack_bytes ? fmt::format(", {} KB of stacks", s.stack_bytes / 1024) : "", s.seconds, s.gb_per_s(),
      r.heap.numgc, r.heap.phase_known ? to_string(r.heap.phase) : "unknown", r.heap.green_tea ? " (Green Tea mark bits)" : "");
  for (auto& n : r.notes) out += "note: " + n + "\n";
  return out;
}

}  // namespace gort::core::analysis
