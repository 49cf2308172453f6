// libFuzzer target for Go's own symbol table and the struct that points at it: the
// pclntab decoder (Pclntab: header, function table, names, file:line, SP deltas, inline
// trees, every query symbolize / gort inspect / gort report make) and find_moduledata
// (runtime.firstmoduledata by symbol, .go.module or the data-segment scan, PIE
// relocations). The table is the largest structure gort trusts from a binary and is
// decoded lazily per query, so the queries are where a bad offset would be read.
//
// Two input forms:
//   "\x7fELF..."  an executable: find_moduledata (version from its build info, else
//                 go1.22), Pclntab::load, then the queries;
//   otherwise     a bare table: byte 0 picks the Go version (go1.(18 + b0 % 9)), bytes
//                 1-4 (u32 LE) how many of the remaining bytes are the pclntab, the rest
//                 is the gofunc data holding the inline trees; text at 0x401000.
// Queries are capped (64 functions, 4 PCs each) so one input stays well under a
// millisecond.
//
// Seeds: tests/fuzz/corpus/pclntab/ (written by tests/fuzz/make_seeds.py: synthetic
// go1.20+ and go1.18/1.19 tables with inline trees, as tests/unit/synthetic_pclntab.h
// builds them, and small synthetic Go ELF executables; crash-* inputs once failed), plus
// at test time (tests/e2e/test_fuzz.py) from the mapcount sample built with the newest
// Go: 48 consecutive functions of its pclntab with their names, files, pcvalue tables and
// inline trees re-linked into a 20 KB table (make_seeds.compact_pclntab), bare and in an
// executable. Its whole 700 KB table and the stripped binary run once, unmutated.
#include "core/binary/buildinfo.h"
#include "core/binary/elf_file.h"
#include "core/binary/moduledata.h"
#include "core/binary/pclntab.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

using namespace gort::core;

namespace {
volatile uint64_t g_sink;
void use(uint64_t v) { g_sink = g_sink + v; }

constexpr uint64_t kText = 0x401000;

void exercise(const Pclntab& pt) {
  use(pt.magic() + pt.text_start().value() + pt.text_end().value());
  std::vector<SourceFrame> frames;
  size_t n = pt.num_funcs();
  size_t step = n > 64 ? n / 64 : 1;
  for (size_t i = 0; i < n; i += step) {
    FuncInfo f = pt.func(i);
    use(f.name.size());
    uint64_t len = f.end.value() - f.entry.value();
    for (uint64_t pc : {f.entry.value(), f.entry.value() + len / 2, f.end.value() - 1, f.entry.value() + 1}) {
      if (pt.symbolize_into(RemoteAddr(pc), frames).ok()) use(frames.size());
      if (auto sp = pt.sp_delta(RemoteAddr(pc))) use(uint64_t(*sp));
    }
    if (auto l = pt.line_at(f.entry)) use(uint64_t(l->line));
    if (auto r = pt.inlined_ranges(f)) use(r->size());
    if (auto g = pt.find_func(f.name)) use(g->index);
    if (auto g = pt.find_func(f.entry)) use(g->index);
  }
  use(pt.find_func(RemoteAddr(0)).has_value() + pt.find_func(RemoteAddr(~uint64_t(0))).has_value());
  use(pt.find_func("main.main").has_value());
  (void)pt.symbolize(RemoteAddr(pt.text_end().value()));
}

void from_elf(Bytes bytes) {
  auto elf = ElfFile::from_bytes(bytes, "fuzz-input");
  if (!elf) return;
  GoVersion v = *GoVersion::parse("go1.22.0");
  if (auto bi = read_buildinfo(**elf)) v = bi->version;
  auto md = find_moduledata(**elf, v);
  if (!md) return;
  use(md->addr.value() + md->ftab_len + md->found_by.size());
  auto pt = Pclntab::load(**elf, *md, v);
  if (pt) exercise(**pt);
}

void from_table(Bytes bytes) {
  if (bytes.size() < 5) return;
  std::string version = "go1." + std::to_string(18 + bytes[0] % 9) + ".0";
  uint32_t split;
  std::memcpy(&split, bytes.data() + 1, 4);
  Bytes rest = bytes.subspan(5);
  split = std::min<uint32_t>(split, uint32_t(rest.size()));
  ModuleData md;
  md.text = RemoteAddr(kText);
  if (bytes[0] & 0x80) md.text = RemoteAddr(0);  // the pcHeader's textStart (Go <= 1.25)
  auto pt = Pclntab::from_bytes(rest.first(split), md, *GoVersion::parse(version), rest.subspan(split));
  if (pt) exercise(**pt);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes bytes(data, size);
  if (size >= 4 && std::memcmp(data, "\x7f" "ELF", 4) == 0)
    from_elf(bytes);
  else
    from_table(bytes);
  return 0;
}
