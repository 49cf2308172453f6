// What an address is. See addr_info.h.

#include "core/goruntime/addr_info.h"

#include "core/goruntime/unwind.h"

#include <fmt/format.h>

#include <algorithm>
#include <elf.h>

namespace gort::core {

GlobalIndex::GlobalIndex(const GoBinary& bin, int64_t slide) {
  const ModuleData& md = bin.moduledata();
  auto add = [&](RemoteAddr lo, RemoteAddr hi, const char* name) {
    if (!lo.is_null() && hi > lo) ranges_.push_back(Range{lo + slide, hi + slide, name});
  };
  add(md.noptrdata, md.enoptrdata, ".noptrdata");
  add(md.data, md.edata, ".data");
  add(md.bss, md.ebss, ".bss");
  add(md.noptrbss, md.enoptrbss, ".noptrbss");
  for (auto& s : bin.elf().symbols()) {
    if (s.type != STT_OBJECT || s.value.is_null()) continue;
    syms_.push_back(Sym{s.value.value() + static_cast<uint64_t>(slide), s.size, std::string(s.name)});
  }
  std::sort(syms_.begin(), syms_.end(), [](const Sym& a, const Sym& b) { return a.lo < b.lo; });
}

std::optional<GlobalIndex::Hit> GlobalIndex::find(RemoteAddr addr) const {
  const Range* r = nullptr;
  for (auto& x : ranges_)
    if (addr >= x.lo && addr < x.hi) r = &x;
  if (!r) return std::nullopt;
  Hit h;
  h.section = r->section;
  auto it = std::upper_bound(syms_.begin(), syms_.end(), addr.value(),
                             [](uint64_t v, const Sym& s) { return v < s.lo; });
  if (it != syms_.begin()) {
    --it;
    if (addr.value() < it->lo + std::max<uint64_t>(it->size, 1)) {
      h.name = it->name;
      h.offset = addr.value() - it->lo;
      h.size = it->size;
      return h;
    }
  }
  h.name = r->section;
  h.offset = static_cast<uint64_t>(addr - r->lo);
  return h;
}

std::string GlobalIndex::text(const Hit& h) {
  if (h.name == h.section) return fmt::format("{}+{:#x}", h.section, h.offset);
  return fmt::format("{}{} ({})", h.name, h.offset ? fmt::format("+{:#x}", h.offset) : "", h.section);
}

const char* to_string(AddrInfo::Kind k) {
  switch (k) {
    case AddrInfo::Kind::kHeap: return "heap";
    case AddrInfo::Kind::kFreedHeap: return "freed-heap";
    case AddrInfo::Kind::kGlobal: return "global";
    case AddrInfo::Kind::kStack: return "stack";
    case AddrInfo::Kind::kCode: return "code";
    case AddrInfo::Kind::kUnknown: return "unknown";
  }
  return "unknown";
}

Result<AddrInfo> describe_address(const Memory& mem, const GoBinary& bin, int64_t slide, const Heap& heap,
                                  const GlobalIndex& globals, const std::vector<Goroutine>& goroutines,
                                  const std::vector<ThreadRegs>& threads, RemoteAddr addr) {
  AddrInfo a;
  a.addr = addr;
  // A goroutine stack first: stacks live in heap arenas, in manual spans.
  for (auto& g : goroutines) {
    if (addr < g.stack_lo || addr >= g.stack_hi || g_status_is_dead(g.status)) continue;
    a.kind = AddrInfo::Kind::kStack;
    a.goid = g.goid;
    a.g = g.g;
    UnwindStart st = unwind_start_for(mem, g, threads);
    a.summary = fmt::format("stack of goroutine {} [{}, {})", g.goid, g.stack_lo, g.stack_hi);
    if (addr.value() < st.sp.value()) {
      a.summary += fmt::format(", below its stack pointer {} (no live frame)", st.sp);
      return a;
    }
    auto u = unwind(mem, bin.pclntab(), slide, st);
    if (const StackFrame* fr = u.ok() ? frame_holding(*u, addr, g.stack_hi) : nullptr) {
      const SourceFrame& f = fr->sources.back();
      a.frame_function = std::string(f.function);
      a.frame_file = std::string(f.file);
      a.frame_line = f.line;
      a.summary += fmt::format(", in the frame of {} ({}:{}) at sp+{:#x}", f.function, f.file, f.line,
                               static_cast<uint64_t>(addr - fr->sp));
    }
    return a;
  }
  if (auto hit = globals.find(addr)) {
    a.kind = AddrInfo::Kind::kGlobal;
    a.global = hit;
    a.summary = fmt::format("global {}", GlobalIndex::text(*hit));
    return a;
  }
  const ModuleData& md = bin.moduledata();
  if (addr >= md.text + slide && addr < md.etext + slide) {
    a.kind = AddrInfo::Kind::kCode;
    auto fr = bin.pclntab().symbolize(addr - slide);
    if (fr.ok() && !fr->empty()) a.function = std::string(fr->back().function);
    a.summary = a.function.empty() ? "code" : fmt::format("code of {}", a.function);
    return a;
  }
  GORT_TRY(auto span, heap.span_of(addr));
  if (span && span->state == SpanState::kInUse) {
    a.span = span;
    GORT_TRY(auto obj, heap.object_of(addr));
    if (obj) {
      a.kind = AddrInfo::Kind::kHeap;
      a.object = obj;
      a.summary = fmt::format("heap object {} [{} B, size class {}{}] +{:#x}: {}{}", obj->base, obj->size,
                              span->sizeclass(), span->noscan() ? ", noscan" : "", static_cast<uint64_t>(addr - obj->base),
                              obj->state(), obj->marked ? ", marked" : ", unmarked");
    } else {
      a.kind = AddrInfo::Kind::kHeap;
      a.summary = fmt::format("heap span {} [{}, {}) past its last object", span->addr, span->base, span->limit);
    }
    return a;
  }
  if (span && span->state == SpanState::kManual) {
    a.span = span;
    a.kind = AddrInfo::Kind::kUnknown;
    a.summary = fmt::format("runtime-managed memory (span {} [{}, {}): a stack or runtime structure, no goroutine's)",
                            span->addr, span->base, span->limit);
    return a;
  }
  GORT_TRY(bool arena, heap.in_arena(addr));
  if (arena) {
    a.kind = AddrInfo::Kind::kFreedHeap;
    a.span = span;
    a.summary = "heap arena memory with no span in use: freed (a freed large object, or free pages)";
    return a;
  }
  a.summary = "not the Go heap, a goroutine stack, a global or Go code (C memory, a mapping, or no memory)";
  return a;
}

namespace {
std::string hex(RemoteAddr a) { return fmt::format("{:#x}", a.value()); }
nlohmann::json span_json(const SpanInfo& s) {
  return {{"addr", hex(s.addr)},          {"base", hex(s.base)},           {"limit", hex(s.limit)},
          {"npages", s.npages},           {"elemsize", s.elemsize},        {"nelems", s.nelems},
          {"sizeclass", s.sizeclass()},   {"noscan", s.noscan()},          {"state", to_string(s.state)},
          {"sweepgen", s.sweepgen},       {"sweep", to_string(s.sweep)},   {"freeindex", s.freeindex},
          {"inline_marks", s.inline_marks}};
}
}  // namespace

nlohmann::json to_json(const AddrInfo& a) {
  nlohmann::json j = {{"addr", hex(a.addr)}, {"kind", to_string(a.kind)}, {"summary", a.summary}};
  if (a.object) {
    const HeapObject& o = *a.object;
    j["object"] = {{"base", hex(o.base)},        {"size", o.size},           {"offset", a.addr - o.base},
                   {"sizeclass", o.span.sizeclass()}, {"noscan", o.span.noscan()}, {"index", o.index},
                   {"allocated", o.allocated},   {"marked", o.marked},       {"live", o.live},
                   {"state", o.state()}};
  }
  if (a.span) j["span"] = span_json(*a.span);
  if (a.global) j["global"] = {{"name", a.global->name}, {"offset", a.global->offset}, {"section", a.global->section}};
  if (a.kind == AddrInfo::Kind::kStack) {
    j["goroutine"] = a.goid;
    j["g"] = hex(a.g);
    if (!a.frame_function.empty())
      j["frame"] = {{"function", a.frame_function}, {"file", a.frame_file}, {"line", a.frame_line}};
  }
  if (!a.function.empty()) j["function"] = a.function;
  return j;
}

std::string to_text(const AddrInfo& a, const HeapState& hs) {
  std::string out = fmt::format("{}: {}\n", a.addr, a.summary);
  if (a.object || (a.span && a.kind != AddrInfo::Kind::kStack)) {
    const SpanInfo& s = a.object ? a.object->span : *a.span;
    out += fmt::format("  span {} [{}, {}) {} page(s), {} x {} B, {}, sweepgen {} (heap {}: {})\n", s.addr, s.base,
                       s.limit, s.npages, s.nelems, s.elemsize, to_string(s.state), s.sweepgen, hs.sweepgen,
                       to_string(s.sweep));
  }
  if (a.object)
    out += fmt::format("  GC: {} completed cycle(s), phase {}; mark bits from {}\n", hs.numgc,
                       hs.phase_known ? to_string(hs.phase) : "unknown (runtime.gcphase not found)",
                       a.object->span.inline_marks ? "the span's inline marks (Green Tea)" : "gcmarkBits");
  return out;
}

}  // namespace gort::core
