// find_moduledata: locate runtime.firstmoduledata and decode the fields gort uses.
//
// Three ways in, tried in order (../shared/reference/go-runtime.md section 6.4):
//   1. the .symtab symbol runtime.firstmoduledata (unstripped binaries);
//   2. the .go.module section, which holds exactly firstmoduledata since Go 1.26
//      (cmd/link/internal/ld/data.go:1948@go1.26.10);
//   3. stripped 1.19-1.25: scan .noptrdata, then every writable PT_LOAD segment, for the
//      8-byte little-endian address of .gopclntab (moduledata.pcHeader is field 0) and keep
//      the candidate whose text/etext/minpc/ftab fields agree with .text and the pcHeader.
//
// PIE (ET_DYN): addresses in the file are link-time vaddrs. The Go internal linker writes
// the link-time pointer values into the data *and* emits an R_X86_64_RELATIVE relocation
// with the same addend for each (checked on go1.21/go1.26 -buildmode=pie). Other linkers
// (lld without --apply-dynamic-relocs) leave zeros in the file, so pointer fields are read
// through the RELATIVE relocations whenever one covers the field: the addend is the
// link-time value in either case.

#include "core/binary/moduledata.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

namespace gort::core {

namespace {

// runtime.moduledata field offsets. The first 256 bytes are the same in 1.19-1.26
// ([EXP DWARF], reference section 6.4); the tail moved when 1.20 added covctrs/ecovctrs.
struct ModuleDataLayout {
  uint32_t end, types, etypes, rodata, gofunc;
  uint32_t size;  // bytes that must be readable (sizeof(moduledata) in that version)
};
constexpr uint32_t kPcHeader = 0, kFuncnametab = 8, kCutab = 32, kFiletab = 56, kPctab = 80,
                   kPclntable = 104, kFtab = 128, kFindfunctab = 152, kMinpc = 160, kMaxpc = 168,
                   kText = 176, kEtext = 184, kNoptrdata = 192, kEnoptrdata = 200, kData = 208,
                   kEdata = 216, kBss = 224, kEbss = 232, kNoptrbss = 240, kEnoptrbss = 248;
constexpr uint32_t kNoField = 0xffffffffu;

ModuleDataLayout layout_for(const GoVersion& v) {
  // Go 1.19: no covctrs; end at 256, gofunc at 304, sizeof 552.
  // Go 1.18 had no gofunc (funcdata were absolute pointers): leave it out.
  if (v.major == 1 && v.minor <= 18) return {256, 280, 288, 296, kNoField, 552};
  if (v.major == 1 && v.minor == 19) return {256, 280, 288, 296, 304, 552};
  // Go 1.20+ inserted covctrs/ecovctrs at 256; sizeof is 584 in 1.23-1.25, 592 otherwise.
  // 584 is the smallest, and every field we read lies below it.
  return {272, 296, 304, 312, 320, 584};
}

// RELATIVE relocations (PIE) keyed by the address they patch.
class Relocs {
 public:
  explicit Relocs(const ElfFile& elf) {
    if (!elf.is_pie()) return;
    for (auto& s : elf.sections()) {
      if (s.type != SHT_RELA) continue;
      auto data = elf.section_data(s);
      if (!data) continue;
      for (size_t off = 0; off + sizeof(Elf64_Rela) <= data->size(); off += sizeof(Elf64_Rela)) {
        Elf64_Rela r;
        std::memcpy(&r, data->data() + off, sizeof r);
        if (ELF64_R_TYPE(r.r_info) == R_X86_64_RELATIVE) by_addr_[r.r_offset] = uint64_t(r.r_addend);
      }
    }
  }
  std::optional<uint64_t> at(uint64_t addr) const {
    auto it = by_addr_.find(addr);
    if (it == by_addr_.end()) return std::nullopt;
    return it->second;
  }
  /// Addresses of relocated words whose link-time value is VALUE (scan fallback when the
  /// file holds zeros instead of pointer values).
  std::vector<uint64_t> sites_of(uint64_t value) const {
    std::vector<uint64_t> out;
    for (auto& [a, v] : by_addr_)
      if (v == value) out.push_back(a);
    return out;
  }

 private:
  std::unordered_map<uint64_t, uint64_t> by_addr_;
};

struct TextRange {
  uint64_t lo = 0, hi = 0;
};

TextRange text_range(const ElfFile& elf) {
  if (auto* s = elf.section(".text"); s && s->size) return {s->addr.value(), s->addr.value() + s->size};
  // No section headers: the executable PT_LOAD segment.
  for (auto& seg : elf.segments())
    if (seg.type == PT_LOAD && (seg.flags & PF_X)) return {seg.vaddr.value(), seg.vaddr.value() + seg.memsz};
  return {};
}

/// Where .gopclntab starts: its section (".data.rel.ro.gopclntab" in 1.21-1.25 PIE
/// builds), the runtime.pclntab symbol, or a magic search when section headers are gone.
std::optional<uint64_t> find_pclntab_addr(const ElfFile& elf) {
  for (const char* name : {".gopclntab", ".data.rel.ro.gopclntab"})
    if (auto* s = elf.section(name); s && s->addr.value()) return s->addr.value();
  if (auto sym = elf.find_symbol("runtime.pclntab")) return sym->value.value();
  // sstrip'ed / packed binaries (reference 6.4, UNVERIFIED there): magic, pad=0,
  // minLC=1, ptrSize=8, at an 8-aligned address in a non-executable segment.
  for (auto& seg : elf.segments()) {
    if (seg.type != PT_LOAD || (seg.flags & PF_X)) continue;
    auto b = elf.read_to_segment_end(seg.vaddr);
    if (!b) continue;
    for (size_t off = 0; off + 72 <= b->size(); off += 8) {
      uint32_t m = load_le<uint32_t>(b->data() + off);
      if ((m == 0xfffffff1u || m == 0xfffffff0u) && b->data()[off + 4] == 0 && b->data()[off + 5] == 0 &&
          b->data()[off + 6] == 1 && b->data()[off + 7] == 8)
        return seg.vaddr.value() + off;
    }
  }
  return std::nullopt;
}

struct Decoder {
  const ElfFile& elf;
  const Relocs& relocs;
  Bytes raw;      // the moduledata bytes
  uint64_t base;  // their address

  uint64_t word(uint32_t off) const {
    if (off == kNoField || off + 8 > raw.size()) return 0;
    if (auto r = relocs.at(base + off)) return *r;
    return load_le<uint64_t>(raw.data() + off);
  }
  uint64_t scalar(uint32_t off) const {  // lengths: never relocated
    return off + 8 <= raw.size() ? load_le<uint64_t>(raw.data() + off) : 0;
  }
};

Result<ModuleData> decode_at(const ElfFile& elf, const Relocs& relocs, uint64_t addr, const ModuleDataLayout& L,
                             std::string found_by) {
  GORT_TRY(Bytes raw, elf.read(RemoteAddr(addr), L.size));
  Decoder d{elf, relocs, raw, addr};
  ModuleData md;
  md.addr = RemoteAddr(addr);
  md.found_by = std::move(found_by);
  md.pc_header = RemoteAddr(d.word(kPcHeader));
  md.funcnametab = RemoteAddr(d.word(kFuncnametab));
  md.funcnametab_len = d.scalar(kFuncnametab + 8);
  md.cutab = RemoteAddr(d.word(kCutab));
  md.cutab_len = d.scalar(kCutab + 8);
  md.filetab = RemoteAddr(d.word(kFiletab));
  md.filetab_len = d.scalar(kFiletab + 8);
  md.pctab = RemoteAddr(d.word(kPctab));
  md.pctab_len = d.scalar(kPctab + 8);
  md.pclntable = RemoteAddr(d.word(kPclntable));
  md.pclntable_len = d.scalar(kPclntable + 8);
  md.ftab = RemoteAddr(d.word(kFtab));
  md.ftab_len = d.scalar(kFtab + 8);
  md.findfunctab = RemoteAddr(d.word(kFindfunctab));
  md.minpc = RemoteAddr(d.word(kMinpc));
  md.maxpc = RemoteAddr(d.word(kMaxpc));
  md.text = RemoteAddr(d.word(kText));
  md.etext = RemoteAddr(d.word(kEtext));
  md.noptrdata = RemoteAddr(d.word(kNoptrdata));
  md.enoptrdata = RemoteAddr(d.word(kEnoptrdata));
  md.data = RemoteAddr(d.word(kData));
  md.edata = RemoteAddr(d.word(kEdata));
  md.bss = RemoteAddr(d.word(kBss));
  md.ebss = RemoteAddr(d.word(kEbss));
  md.noptrbss = RemoteAddr(d.word(kNoptrbss));
  md.enoptrbss = RemoteAddr(d.word(kEnoptrbss));
  md.end = RemoteAddr(d.word(L.end));
  md.types = RemoteAddr(d.word(L.types));
  md.etypes = RemoteAddr(d.word(L.etypes));
  md.rodata = RemoteAddr(d.word(L.rodata));
  md.gofunc = RemoteAddr(d.word(L.gofunc));
  return md;
}

/// Does MD look like the real firstmoduledata? Empty string = yes, else why not.
std::string check(const ElfFile& elf, const ModuleData& md, std::optional<uint64_t> pclntab, TextRange text) {
  if (pclntab && md.pc_header.value() != *pclntab)
    return fmt::format("pcHeader {:#x} is not .gopclntab {:#x}", md.pc_header.value(), *pclntab);
  if (text.hi) {
    // External linking can put C code before runtime.text, so text need not equal .text.
    if (md.text.value() < text.lo || md.text.value() >= text.hi)
      return fmt::format("text {:#x} is outside .text [{:#x}, {:#x})", md.text.value(), text.lo, text.hi);
    if (md.etext < md.text || md.etext.value() > text.hi)
      return fmt::format("etext {:#x} is outside .text [{:#x}, {:#x})", md.etext.value(), md.text.value(), text.hi);
  }
  if (md.minpc < md.text || md.minpc > md.etext || md.maxpc < md.minpc)
    return fmt::format("minpc/maxpc {:#x}/{:#x} disagree with text [{:#x}, {:#x})", md.minpc.value(),
                       md.maxpc.value(), md.text.value(), md.etext.value());
  // The slices must point into the pclntab, after the header, with sane lengths.
  auto hdr = elf.read(md.pc_header, 72);
  if (!hdr) return "pcHeader is not readable";
  uint64_t funcname_off = load_le<uint64_t>(hdr->data() + 32), pcln_off = load_le<uint64_t>(hdr->data() + 64);
  if (md.funcnametab.value() != md.pc_header.value() + funcname_off)
    return fmt::format("funcnametab {:#x} is not pcHeader+funcnameOffset {:#x}", md.funcnametab.value(),
                       md.pc_header.value() + funcname_off);
  if (md.pclntable.value() != md.pc_header.value() + pcln_off)
    return fmt::format("pclntable {:#x} is not pcHeader+pclnOffset {:#x}", md.pclntable.value(),
                       md.pc_header.value() + pcln_off);
  if (md.ftab_len == 0 || md.ftab_len > (1u << 26)) return fmt::format("ftab length {} is implausible", md.ftab_len);
  return {};
}

}  // namespace

Result<ModuleData> find_moduledata(const ElfFile& elf, const GoVersion& version) {
  const ModuleDataLayout L = layout_for(version);
  const Relocs relocs(elf);
  const auto pclntab = find_pclntab_addr(elf);
  const TextRange text = text_range(elf);
  std::vector<std::string> tried;

  auto try_at = [&](uint64_t addr, const char* how) -> std::optional<ModuleData> {
    auto md = decode_at(elf, relocs, addr, L, how);
    if (!md) {
      tried.push_back(fmt::format("{} at {:#x}: {}", how, addr, md.error().message));
      return std::nullopt;
    }
    std::string why = check(elf, *md, pclntab, text);
    if (!why.empty()) {
      tried.push_back(fmt::format("{} at {:#x}: {}", how, addr, why));
      return std::nullopt;
    }
    return std::move(md).value();
  };

  if (auto sym = elf.find_symbol("runtime.firstmoduledata"))
    if (auto md = try_at(sym->value.value(), "symbol")) return *md;
  // Go 1.26+: the linker gives firstmoduledata its own section.
  if (auto* s = elf.section(".go.module"); s && s->addr.value())
    if (auto md = try_at(s->addr.value(), ".go.module")) return *md;

  if (!pclntab)
    return make_error(ErrorKind::kBadInput,
                      "{}: no .gopclntab section, no runtime.pclntab symbol and no pclntab magic found: not a Go "
                      "binary, or a truncated one",
                      elf.path());

  // Stripped 1.19-1.25: scan for the pointer to .gopclntab (moduledata.pcHeader).
  std::vector<uint64_t> cands;
  auto scan = [&](RemoteAddr lo, Bytes b) {
    for (size_t off = 0; off + 8 <= b.size(); off += 8)
      if (load_le<uint64_t>(b.data() + off) == *pclntab) cands.push_back(lo.value() + off);
  };
  if (auto* s = elf.section(".noptrdata"); s && s->addr.value())
    if (auto b = elf.section_data(*s); b) scan(s->addr, *b);
  for (auto a : relocs.sites_of(*pclntab)) cands.push_back(a);
  for (auto& c : cands)
    if (auto md = try_at(c, "scan")) return *md;
  cands.clear();
  for (auto& seg : elf.segments()) {
    if (seg.type != PT_LOAD || !(seg.flags & PF_W)) continue;
    if (auto b = elf.read_to_segment_end(seg.vaddr); b) scan(seg.vaddr, *b);
  }
  for (auto& c : cands)
    if (auto md = try_at(c, "scan")) return *md;

  std::string detail;
  for (auto& t : tried) detail += "; " + t;
  return make_error(ErrorKind::kBadInput,
                    "{}: runtime.firstmoduledata not found (tried the .symtab symbol, .go.module and a scan of the "
                    "data segments for the .gopclntab address {:#x}{})",
                    elf.path(), *pclntab, tried.empty() ? std::string("; no candidate") : detail);
}

}  // namespace gort::core
