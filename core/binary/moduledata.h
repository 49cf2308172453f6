#pragma once
// runtime.firstmoduledata: where the linker tells the runtime where everything is (text,
// pclntab tables, data/bss, gofunc). Found through the .symtab symbol, the 1.26 .go.module
// section, or, in stripped binaries, by scanning data for a pointer to .gopclntab
// (../shared/reference/go-runtime.md section 6.4).

#include "core/binary/buildinfo.h"
#include "core/binary/elf_file.h"

namespace gort::core {

struct ModuleData {
  RemoteAddr addr;              ///< where the struct itself lives
  std::string found_by;         ///< "symbol", ".go.module", "scan"
  RemoteAddr pc_header;         ///< pcHeader (== .gopclntab start)
  RemoteAddr funcnametab, cutab, filetab, pctab, pclntable, ftab;  ///< slice data pointers
  uint64_t funcnametab_len = 0, cutab_len = 0, filetab_len = 0, pctab_len = 0, pclntable_len = 0, ftab_len = 0;
  RemoteAddr findfunctab, minpc, maxpc, text, etext;
  RemoteAddr noptrdata, enoptrdata, data, edata, bss, ebss, noptrbss, enoptrbss, end;
  RemoteAddr types, etypes, rodata, gofunc;
};

/// Locates and decodes firstmoduledata for a Go 1.21-1.26 binary (older formats where the
/// layout is known). Error names what was tried.
Result<ModuleData> find_moduledata(const ElfFile& elf, const GoVersion& version);

}  // namespace gort::core
