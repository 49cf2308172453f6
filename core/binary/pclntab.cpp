// Pclntab: Go's runtime symbol table (.gopclntab), decoded straight from the mapped file.
//
// Facts it rests on (../shared/reference/go-runtime.md 6.2-6.3):
//  * pcHeader (72 bytes): magic 0xfffffff1 (1.20+) or 0xfffffff0 (1.18/1.19), minLC,
//    ptrSize, nfunc, nfiles, textStart (0 in 1.26: the text base comes from
//    moduledata.text instead), then offsets of funcnametab, cutab, filetab, pctab and
//    pclntable, all relative to the header (runtime/symtab.go, internal/abi/symtab.go).
//  * pclntable starts with nfunc+1 functab{entryoff, funcoff} pairs; the last entryoff is
//    the end of the text. _func is 44 bytes in 1.20+ (startLine at 36), 40 in 1.18/1.19.
//  * pcvalue tables: zig-zag value delta / pc delta uvarint pairs, value starts at -1.
//  * Inlining: FUNCDATA_InlTree (3) is an offset from moduledata.gofunc to an array of
//    inlinedCall (16 bytes in 1.20+, 20 in 1.19); PCDATA_InlTreeIndex (2) gives the
//    innermost entry at a PC. The runtime (inlineUnwinder, runtime/symtab.go@go1.21+)
//    walks outwards by re-evaluating PCDATA_InlTreeIndex at entry+parentPc, and takes each
//    frame's file:line from the function's pcfile/pcln at that frame's PC. We do the same,
//    so our frames match runtime.CallersFrames.
//
// Every offset taken from the file is bounds-checked: corrupt input yields kBadInput
// naming the offset. The per-PC path allocates nothing: names and files are string_views
// into the mapped file.

#include "core/binary/pclntab.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace gort::core {

namespace {

constexpr uint32_t kMagic118 = 0xfffffff0u;  // Go 1.18, 1.19
constexpr uint32_t kMagic120 = 0xfffffff1u;  // Go 1.20+
constexpr size_t kHeaderSize = 72;
constexpr uint32_t kPcdataInlTreeIndex = 2;
constexpr uint32_t kFuncdataInlTree = 3;
constexpr uint32_t kNoFuncdata = 0xffffffffu;
constexpr int kMaxInlineDepth = 1024;  // guards against parent cycles in corrupt tables

// Adds a pcvalue table's zig-zag value delta UV to VAL with int32 wrap-around, as the Go
// runtime's int32 arithmetic does (a corrupt table can step past INT32_MAX; in C++ that
// would be signed overflow).
inline int32_t add_zigzag(int32_t val, uint32_t uv) {
  return int32_t(uint32_t(val) + (uint32_t(-(uv & 1)) ^ (uv >> 1)));
}

// Reads a uvarint of at most 32 bits; false on overrun.
inline bool uvarint32(const uint8_t*& p, const uint8_t* end, uint32_t& out) {
  uint32_t v = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    if (p >= end) return false;
    uint8_t c = *p++;
    v |= uint32_t(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      out = v;
      return true;
    }
  }
  return false;
}

std::string_view cstring_at(Bytes tab, uint64_t off) {
  if (off >= tab.size()) return {};
  const char* s = reinterpret_cast<const char*>(tab.data() + off);
  return std::string_view(s, strnlen(s, tab.size() - off));
}

}  // namespace

PcValue decode_pcvalue(Bytes pctab, uint32_t off, uint64_t entry, uint64_t target, uint32_t quantum) {
  PcValue r;
  if (off == 0) return r;  // no table
  if (off >= pctab.size()) return {PcValue::kCorrupt, -1, off};
  const uint8_t* p = pctab.data() + off;
  const uint8_t* end = pctab.data() + pctab.size();
  int32_t val = -1;
  uint64_t pc = entry;
  for (bool first = true;; first = false) {
    if (p >= end) return {PcValue::kCorrupt, -1, size_t(p - pctab.data())};
    if (*p == 0 && !first) return r;  // end of table before TARGET: -1, like the runtime
    uint32_t uv, pcdelta;
    if (!uvarint32(p, end, uv) || !uvarint32(p, end, pcdelta))
      return {PcValue::kCorrupt, -1, size_t(p - pctab.data())};
    val = add_zigzag(val, uv);
    pc += uint64_t(pcdelta) * quantum;
    if (target < pc) {
      r.value = val;
      return r;
    }
  }
}

struct Pclntab::Impl {
  // Regions, all within tab.
  Bytes tab, funcnametab, cutab, filetab, pctab, pclntable, gofunc;
  uint32_t magic = 0, quantum = 1;
  uint64_t nfunc = 0;
  uint64_t text = 0;
  size_t func_size = 44;        // sizeof(_func): 40 in 1.18/1.19
  size_t inl_size = 16;         // sizeof(inlinedCall): 20 in 1.19
  size_t inl_nameoff_at = 4;    // inlinedCall.nameOff: 12 (func_) in 1.19
  size_t inl_parentpc_at = 8;   // inlinedCall.parentPc: 16 in 1.19
  bool has_inline = true;
  const uint8_t* ftab = nullptr;  // nfunc+1 pairs, bounds checked at load

  mutable std::once_flag name_once;
  mutable std::unordered_map<std::string_view, uint32_t> by_name;

  uint64_t entry(size_t i) const { return text + load_le<uint32_t>(ftab + 8 * i); }
  uint32_t funcoff(size_t i) const { return load_le<uint32_t>(ftab + 8 * i + 4); }

  // Index of the function containing PC, or -1.
  int64_t find_index(uint64_t pc) const {
    if (nfunc == 0 || pc < entry(0) || pc >= entry(nfunc)) return -1;
    size_t lo = 0, hi = nfunc;  // entry(lo) <= pc < entry(hi)
    while (hi - lo > 1) {
      size_t mid = lo + (hi - lo) / 2;
      if (entry(mid) <= pc) lo = mid;
      else hi = mid;
    }
    return int64_t(lo);
  }

  struct RawFunc {
    uint32_t off;  // of _func within pclntable
    uint64_t entry;
    int32_t nameoff;
    uint32_t pcsp, pcfile, pcln, npcdata, cu_offset;
    uint8_t nfuncdata;
  };

  Result<RawFunc> raw_func(size_t i) const {
    uint32_t off = funcoff(i);
    if (off > pclntable.size() || pclntable.size() - off < func_size)
      return make_error(ErrorKind::kBadInput, "corrupt pclntab: _func of function #{} at pclntable offset {:#x} lies "
                        "outside the {}-byte table", i, off, pclntable.size());
    const uint8_t* p = pclntable.data() + off;
    RawFunc f;
    f.off = off;
    f.entry = text + load_le<uint32_t>(p);
    f.nameoff = load_le<int32_t>(p + 4);
    f.pcsp = load_le<uint32_t>(p + 16);
    f.pcfile = load_le<uint32_t>(p + 20);
    f.pcln = load_le<uint32_t>(p + 24);
    f.npcdata = load_le<uint32_t>(p + 28);
    f.cu_offset = load_le<uint32_t>(p + 32);
    f.nfuncdata = p[func_size - 1];
    size_t tail = (uint64_t(f.npcdata) + f.nfuncdata) * 4;
    if (f.npcdata > (1u << 16) || pclntable.size() - off - func_size < tail)
      return make_error(ErrorKind::kBadInput, "corrupt pclntab: function #{} at pclntable offset {:#x} has {} pcdata "
                        "and {} funcdata entries running past the table", i, off, f.npcdata, f.nfuncdata);
    if (f.entry != entry(i))
      return make_error(ErrorKind::kBadInput, "corrupt pclntab: function #{}: _func at offset {:#x} says entry {:#x} "
                        "but the function table says {:#x}", i, off, f.entry, entry(i));
    return f;
  }

  uint32_t pcdata_off(const RawFunc& f, uint32_t k) const {
    if (k >= f.npcdata) return 0;
    return load_le<uint32_t>(pclntable.data() + f.off + func_size + 4 * k);
  }
  uint32_t funcdata_off(const RawFunc& f, uint32_t k) const {
    if (k >= f.nfuncdata) return kNoFuncdata;
    return load_le<uint32_t>(pclntable.data() + f.off + func_size + 4 * (f.npcdata + k));
  }

  std::string_view name(int32_t nameoff) const {
    if (nameoff < 0) return {};
    return cstring_at(funcnametab, uint32_t(nameoff));
  }

  Result<int32_t> value(const RawFunc& f, uint32_t table, uint64_t pc, const char* what) const {
    PcValue v = decode_pcvalue(pctab, table, f.entry, pc, quantum);
    if (v.status != PcValue::kOk)
      return make_error(ErrorKind::kBadInput, "corrupt pclntab: {} table of {} at pctab offset {:#x} overruns the "
                        "{}-byte pctab (at {:#x})", what, name(f.nameoff), table, pctab.size(), v.bad_offset);
    return v.value;
  }

  // File and line at PC from the function's own pcfile/pcln tables; "?"/0 when absent,
  // as runtime.funcline1 does.
  Result<void> file_line(const RawFunc& f, uint64_t pc, SourceFrame& out) const {
    GORT_TRY(int32_t fileno, value(f, f.pcfile, pc, "pcfile"));
    GORT_TRY(int32_t line, value(f, f.pcln, pc, "pcln"));
    out.line = line < 0 ? 0 : line;
    out.file = "?";
    if (fileno < 0 || line < 0) return {};
    uint64_t k = uint64_t(f.cu_offset) + uint32_t(fileno);
    if (k >= cutab.size() / 4)
      return make_error(ErrorKind::kBadInput, "corrupt pclntab: {} file index {} + cu {} is past the {}-entry cutab",
                        name(f.nameoff), fileno, f.cu_offset, cutab.size() / 4);
    uint32_t foff = load_le<uint32_t>(cutab.data() + 4 * k);
    if (foff == 0xffffffffu) return {};
    if (foff >= filetab.size())
      return make_error(ErrorKind::kBadInput, "corrupt pclntab: file name offset {:#x} (cutab[{}]) is past the "
                        "{}-byte filetab", foff, k, filetab.size());
    out.file = cstring_at(filetab, foff);
    return {};
  }

  // The inline tree of F (nullptr if none) and its size in bytes available.
  const uint8_t* inl_tree(const RawFunc& f, size_t& avail) const {
    if (!has_inline) return nullptr;
    uint32_t off = funcdata_off(f, kFuncdataInlTree);
    if (off == kNoFuncdata || off >= gofunc.size()) return nullptr;
    avail = gofunc.size() - off;
    return gofunc.data() + off;
  }

  Result<const uint8_t*> inl_entry(const RawFunc& f, const uint8_t* tree, size_t avail, int32_t ix) const {
    if (uint64_t(ix) * inl_size + inl_size > avail)
      return make_error(ErrorKind::kBadInput, "corrupt pclntab: inline tree index {} of {} runs past the gofunc data "
                        "({} bytes left at gofunc+{:#x})", ix, name(f.nameoff), avail, funcdata_off(f, kFuncdataInlTree));
    return tree + size_t(ix) * inl_size;
  }

  FuncInfo info(size_t i) const {
    FuncInfo fi;
    fi.index = uint32_t(i);
    fi.entry = RemoteAddr(entry(i));
    fi.end = RemoteAddr(entry(i + 1));
    uint32_t off = funcoff(i);
    if (off <= pclntable.size() && pclntable.size() - off >= func_size)
      fi.name = name(load_le<int32_t>(pclntable.data() + off + 4));
    return fi;
  }
};

Pclntab::Pclntab(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pclntab::~Pclntab() = default;

Result<std::unique_ptr<Pclntab>> Pclntab::load(const ElfFile& elf, const ModuleData& md, const GoVersion& v) {
  // The table runs to the end of its section when there is one, else of its segment.
  GORT_TRY(Bytes tab, elf.read_to_segment_end(md.pc_header));
  if (const auto* s = elf.section_at(md.pc_header); s && s->addr == md.pc_header && s->size <= tab.size())
    tab = tab.first(s->size);
  Bytes gofunc;
  if (!md.gofunc.is_null())
    if (auto g = elf.read_to_segment_end(md.gofunc)) gofunc = *g;
  auto r = from_bytes(tab, md, v, gofunc);
  if (!r) return r.error().with_context(fmt::format("pclntab at {:#x}", md.pc_header.value()));
  return r;
}

Result<std::unique_ptr<Pclntab>> Pclntab::from_bytes(Bytes tab, const ModuleData& md, const GoVersion& v,
                                                     Bytes gofunc) {
  if (tab.size() < kHeaderSize)
    return make_error(ErrorKind::kBadInput, "truncated pcHeader: {} bytes, need {}", tab.size(), kHeaderSize);
  auto im = std::make_unique<Impl>();
  Impl& t = *im;
  t.tab = tab;
  const uint8_t* h = tab.data();
  t.magic = load_le<uint32_t>(h);
  if (t.magic == kMagic118) {
    // Go 1.18/1.19: 40-byte _func (no startLine); 20-byte inlinedCall
    // {parent i16, funcID u8, _ u8, file i32, line i32, func_ i32, parentPc i32}.
    if (v.major == 1 && v.minor >= 20)
      return make_error(ErrorKind::kBadInput, "pclntab magic {:#x} is the Go 1.18/1.19 format, but the binary says {}",
                        t.magic, v.raw);
    t.func_size = 40;
    t.inl_size = 20;
    t.inl_nameoff_at = 12;
    t.inl_parentpc_at = 16;
  } else if (t.magic != kMagic120) {
    return make_error(ErrorKind::kUnsupported,
                      "pclntab magic {:#x} at offset 0 is not a Go 1.18+ table (0xfffffff0/0xfffffff1); gort supports "
                      "Go 1.21-1.26", t.magic);
  }
  if (h[4] != 0 || h[5] != 0 || (h[6] != 1) || h[7] != 8)
    return make_error(ErrorKind::kBadInput, "corrupt pcHeader: pad {}/{}, minLC {}, ptrSize {} (want 0/0, 1, 8)", h[4],
                      h[5], h[6], h[7]);
  t.quantum = h[6];
  t.nfunc = load_le<uint64_t>(h + 8);
  uint64_t offs[5];  // funcname, cu, filetab, pctab, pcln
  for (int i = 0; i < 5; i++) {
    offs[i] = load_le<uint64_t>(h + 32 + 8 * i);
    if (offs[i] < kHeaderSize || offs[i] > tab.size())
      return make_error(ErrorKind::kBadInput, "corrupt pcHeader: table offset {:#x} (header field at {}) is outside "
                        "the {}-byte pclntab", offs[i], 32 + 8 * i, tab.size());
  }
  // Each region: from its offset, with the moduledata slice length when known, else up
  // to the next region (the linker writes them in this order).
  uint64_t lens[5] = {md.funcnametab_len, md.cutab_len * 4, md.filetab_len, md.pctab_len, md.pclntable_len};
  Bytes* regions[5] = {&t.funcnametab, &t.cutab, &t.filetab, &t.pctab, &t.pclntable};
  for (int i = 0; i < 5; i++) {
    uint64_t len = lens[i];
    if (len == 0) {
      uint64_t next = tab.size();
      for (int j = 0; j < 5; j++)
        if (offs[j] > offs[i]) next = std::min(next, offs[j]);
      len = next - offs[i];
    }
    if (len > tab.size() - offs[i])
      return make_error(ErrorKind::kBadInput, "truncated pclntab: region at offset {:#x} needs {} bytes, only {} "
                        "are there", offs[i], len, tab.size() - offs[i]);
    *regions[i] = tab.subspan(offs[i], len);
  }
  if (t.nfunc == 0 || t.nfunc >= t.pclntable.size() / 8)  // nfunc+1 functab pairs
    return make_error(ErrorKind::kBadInput, "corrupt pcHeader: nfunc {} does not fit the {}-byte function table at "
                      "offset {:#x}", t.nfunc, t.pclntable.size(), offs[4]);
  t.ftab = t.pclntable.data();
  // pcHeader.textStart is 0 in Go 1.26 (symtab.go:384-388@go1.26.10): moduledata.text
  // is the base in every version.
  t.text = md.text.value();
  if (t.text == 0) t.text = load_le<uint64_t>(h + 24);
  for (size_t i = 0; i < t.nfunc; i++)
    if (load_le<uint32_t>(t.ftab + 8 * i) > load_le<uint32_t>(t.ftab + 8 * (i + 1)))
      return make_error(ErrorKind::kBadInput, "corrupt pclntab: function table not sorted at entry {} (pclntable "
                        "offset {:#x})", i + 1, offs[4] + 8 * (i + 1));
  t.gofunc = gofunc;
  t.has_inline = !gofunc.empty();
  return std::unique_ptr<Pclntab>(new Pclntab(std::move(im)));
}

uint32_t Pclntab::magic() const { return impl_->magic; }
size_t Pclntab::num_funcs() const { return impl_->nfunc; }
RemoteAddr Pclntab::text_start() const { return RemoteAddr(impl_->entry(0)); }
RemoteAddr Pclntab::text_end() const { return RemoteAddr(impl_->entry(impl_->nfunc)); }

FuncInfo Pclntab::func(size_t index) const {
  if (index >= impl_->nfunc) return {};
  return impl_->info(index);
}

std::optional<FuncInfo> Pclntab::find_func(RemoteAddr pc) const {
  int64_t i = impl_->find_index(pc.value());
  if (i < 0) return std::nullopt;
  return impl_->info(size_t(i));
}

std::optional<FuncInfo> Pclntab::find_func(std::string_view name) const {
  const Impl& t = *impl_;
  std::call_once(t.name_once, [&t] {
    t.by_name.reserve(t.nfunc);
    for (size_t i = 0; i < t.nfunc; i++) {
      auto fi = t.info(i);
      if (!fi.name.empty()) t.by_name.emplace(fi.name, uint32_t(i));  // first wins
    }
  });
  auto it = t.by_name.find(name);
  if (it == t.by_name.end()) return std::nullopt;
  return t.info(it->second);
}

Result<void> Pclntab::symbolize_into(RemoteAddr pc_addr, std::vector<SourceFrame>& out) const {
  out.clear();
  const Impl& t = *impl_;
  uint64_t pc = pc_addr.value();
  int64_t i = t.find_index(pc);
  if (i < 0) return {};
  GORT_TRY(Impl::RawFunc f, t.raw_func(size_t(i)));
  size_t avail = 0;
  const uint8_t* tree = t.inl_tree(f, avail);
  uint32_t inl_table = tree ? t.pcdata_off(f, kPcdataInlTreeIndex) : 0;
  int32_t ix = -1;
  if (inl_table) {
    GORT_TRY(ix, t.value(f, inl_table, pc, "inline tree index"));
  }
  while (ix >= 0) {
    if (out.size() >= kMaxInlineDepth)
      return make_error(ErrorKind::kBadInput, "corrupt pclntab: inline tree of {} is deeper than {} (a cycle?)",
                        t.name(f.nameoff), kMaxInlineDepth);
    GORT_TRY(const uint8_t* ic, t.inl_entry(f, tree, avail, ix));
    SourceFrame fr;
    fr.function = t.name(load_le<int32_t>(ic + t.inl_nameoff_at));
    fr.inlined = true;
    GORT_TRY_VOID(t.file_line(f, pc, fr));
    out.push_back(fr);
    pc = f.entry + uint32_t(load_le<int32_t>(ic + t.inl_parentpc_at));
    GORT_TRY(ix, t.value(f, inl_table, pc, "inline tree index"));
  }
  SourceFrame fr;
  fr.function = t.name(f.nameoff);
  GORT_TRY_VOID(t.file_line(f, pc, fr));
  out.push_back(fr);
  return {};
}

Result<std::vector<SourceFrame>> Pclntab::symbolize(RemoteAddr pc) const {
  std::vector<SourceFrame> out;
  GORT_TRY_VOID(symbolize_into(pc, out));
  return out;
}

Result<SourceFrame> Pclntab::line_at(RemoteAddr pc) const {
  const Impl& t = *impl_;
  int64_t i = t.find_index(pc.value());
  if (i < 0) return make_error(ErrorKind::kNotFound, "PC {:#x} is in no Go function", pc.value());
  GORT_TRY(Impl::RawFunc f, t.raw_func(size_t(i)));
  SourceFrame fr;
  fr.function = t.name(f.nameoff);
  GORT_TRY_VOID(t.file_line(f, pc.value(), fr));
  return fr;
}

Result<int32_t> Pclntab::sp_delta(RemoteAddr pc) const {
  const Impl& t = *impl_;
  int64_t i = t.find_index(pc.value());
  if (i < 0) return make_error(ErrorKind::kNotFound, "PC {:#x} is in no Go function", pc.value());
  GORT_TRY(Impl::RawFunc f, t.raw_func(size_t(i)));
  if (f.pcsp == 0) return 0;
  GORT_TRY(int32_t d, t.value(f, f.pcsp, pc.value(), "pcsp"));
  return d < 0 ? 0 : d;
}

Result<std::vector<InlinedRange>> Pclntab::inlined_ranges(const FuncInfo& fi) const {
  const Impl& t = *impl_;
  std::vector<InlinedRange> out;
  if (fi.index >= t.nfunc) return make_error(ErrorKind::kNotFound, "no function #{}", fi.index);
  GORT_TRY(Impl::RawFunc f, t.raw_func(fi.index));
  size_t avail = 0;
  const uint8_t* tree = t.inl_tree(f, avail);
  uint32_t table = tree ? t.pcdata_off(f, kPcdataInlTreeIndex) : 0;
  if (!table) return out;
  if (table >= t.pctab.size())
    return make_error(ErrorKind::kBadInput, "corrupt pclntab: inline index table of {} at pctab offset {:#x} is past "
                      "the {}-byte pctab", fi.name, table, t.pctab.size());
  // Walk the runs of the PCDATA_InlTreeIndex table.
  const uint8_t* p = t.pctab.data() + table;
  const uint8_t* end = t.pctab.data() + t.pctab.size();
  int32_t val = -1;
  uint64_t pc = f.entry, fend = t.entry(fi.index + 1);
  for (bool first = true; pc < fend; first = false) {
    if (p >= end) return make_error(ErrorKind::kBadInput, "corrupt pclntab: inline index table of {} overruns", fi.name);
    if (*p == 0 && !first) break;
    uint32_t uv, pcdelta;
    if (!uvarint32(p, end, uv) || !uvarint32(p, end, pcdelta))
      return make_error(ErrorKind::kBadInput, "corrupt pclntab: inline index table of {} overruns at pctab offset {:#x}",
                        fi.name, p - t.pctab.data());
    val = add_zigzag(val, uv);
    uint64_t lo = pc;
    pc += uint64_t(pcdelta) * t.quantum;
    if (val < 0 || pc == lo) continue;
    GORT_TRY(const uint8_t* ic, t.inl_entry(f, tree, avail, val));
    InlinedRange r;
    r.lo = RemoteAddr(lo);
    r.hi = RemoteAddr(std::min(pc, fend));
    r.callee = t.name(load_le<int32_t>(ic + t.inl_nameoff_at));
    // Depth: how many inlinedCall frames from here out to the physical function.
    int32_t ix = val;
    while (ix >= 0 && r.depth < kMaxInlineDepth) {
      r.depth++;
      GORT_TRY(const uint8_t* e, t.inl_entry(f, tree, avail, ix));
      GORT_TRY(ix, t.value(f, table, f.entry + uint32_t(load_le<int32_t>(e + t.inl_parentpc_at)), "inline tree index"));
    }
    if (!out.empty() && out.back().hi == r.lo && out.back().callee == r.callee && out.back().depth == r.depth)
      out.back().hi = r.hi;
    else
      out.push_back(r);
  }
  return out;
}

}  // namespace gort::core
