// libFuzzer target for what every gort command reads first: the ELF file (ElfFile:
// headers, sections, segments, .symtab, reads by address), the Go build info
// (read_buildinfo on the ELF, parse_buildinfo_blob on the raw bytes: a bare
// .go.buildinfo section is a valid input too) and GoBinary as a whole (build info ->
// version gate -> moduledata -> pclntab -> map implementation -> layouts, DWARF
// included), with --force-version so that the version gate never stops it early.
// Any bytes: an error or an answer, never a crash, a hang or a leak.
//
// Seeds: tests/fuzz/corpus/elf/ (written by tests/fuzz/make_seeds.py: small synthetic Go
// ELF executables, go1.22-1.26, PIE and not, with and without section headers and .symtab,
// and bare build-info blobs), plus at test time (tests/e2e/test_fuzz.py) from the mapcount
// sample built with the newest Go: its .go.buildinfo section, and a 48 KB executable
// around 48 of its functions (make_seeds.compact_pclntab). The sample itself (1.7 MB
// stripped, 2.5 MB with DWARF, which GoBinary reads through libdw) runs once, unmutated:
// as a seed it would cut the executions per second tenfold.
#include "core/binary/buildinfo.h"
#include "core/binary/elf_file.h"
#include "core/binary/go_binary.h"

#include <cstddef>
#include <cstdint>

using namespace gort::core;

namespace {
volatile uint64_t g_sink;  // keeps results alive without printing them

void use(uint64_t v) { g_sink = g_sink + v; }

void exercise_elf(const ElfFile& elf) {
  for (const auto& s : elf.sections()) {
    if (auto d = elf.section_data(s)) use(d->size());
    use(elf.section_at(s.addr) != nullptr);
  }
  size_t n = 0;
  for (const auto& seg : elf.segments()) {
    if (n++ == 64) break;
    if (auto b = elf.read_to_segment_end(seg.vaddr)) use(b->size());
    if (auto b = elf.read(seg.vaddr + int64_t(seg.filesz) - 8, 16)) use((*b)[0]);
  }
  n = 0;
  for (const auto& sym : elf.symbols()) {
    if (n++ == 64) break;
    use(elf.find_symbol(sym.name).has_value());
  }
  use(elf.find_symbol("runtime.firstmoduledata").has_value());
  use(elf.has_dwarf());
  if (auto e = elf.read(elf.entry(), 16)) use((*e)[0]);
}

void exercise_buildinfo(const BuildInfo& bi) {
  use(bi.race() + bi.checkptr() + bi.goexperiments().size() + bi.settings.size());
  use(bi.version.short_name().size() + bi.version.at_least(1, 24));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes bytes(data, size);
  // The raw bytes as a build-info blob (pointer-format blobs read nothing: no ELF).
  if (auto bi = parse_buildinfo_blob(bytes, nullptr)) exercise_buildinfo(*bi);

  auto elf = ElfFile::from_bytes(bytes, "fuzz-input");
  if (!elf) return 0;
  exercise_elf(**elf);
  if (auto bi = read_buildinfo(**elf)) exercise_buildinfo(*bi);

  GoBinary::Options opts;
  opts.allow_unsupported_version = true;
  auto bin = GoBinary::from_bytes(bytes, "fuzz-input", opts);
  if (!bin) return 0;
  const GoBinary& b = **bin;
  use(b.build_id().size() + b.notes().size() + b.stripped() + int(b.map_impl()) + int(b.layout_source()));
  const Pclntab& pt = b.pclntab();
  for (const char* name : {"runtime.main", "main.main", "runtime.mapassign_fast64"}) {
    if (auto f = b.func(name)) {
      if (auto code = b.code(*f)) use(code->size());
      if (auto frames = pt.symbolize(f->entry)) use(frames->size());
    }
  }
  return 0;
}
