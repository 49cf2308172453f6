#pragma once
// Byte-level helpers and a builder for synthetic Go 1.20+ pclntabs, shared by the unit
// tests that need functions with names, lines and frame sizes but no real binary.
// Format: ../shared/reference/go-runtime.md section 6.3 (pcHeader, functab, _func,
// pcvalue tables as cmd/internal/obj/pcln.go writes them).

#include "core/binary/pclntab.h"

#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace gort::test {

using Buf = std::vector<uint8_t>;
using Runs = std::vector<std::pair<int32_t, uint32_t>>;  ///< (value, pc length) runs

inline void put32(Buf& b, uint32_t v) { for (int i = 0; i < 4; i++) b.push_back(uint8_t(v >> (8 * i))); }
inline void set32(Buf& b, size_t at, uint32_t v) { for (int i = 0; i < 4; i++) b[at + i] = uint8_t(v >> (8 * i)); }
inline void set64(Buf& b, size_t at, uint64_t v) { for (int i = 0; i < 8; i++) b[at + i] = uint8_t(v >> (8 * i)); }
inline void uvarint(Buf& b, uint32_t v) {
  while (v >= 0x80) { b.push_back(uint8_t(v | 0x80)); v >>= 7; }
  b.push_back(uint8_t(v));
}
/// One pcvalue table from (value, pc length) runs: zig-zag value deltas from -1.
inline void pcvalue_table(Buf& b, const Runs& runs) {
  int32_t prev = -1;
  for (auto [v, len] : runs) {
    int32_t d = v - prev;
    uvarint(b, uint32_t(d << 1) ^ uint32_t(d >> 31));
    uvarint(b, len);
    prev = v;
  }
  b.push_back(0);
}

inline constexpr uint64_t kText = 0x401000;

struct SyntheticFunc {
  const char* name;
  uint32_t off, len;  ///< [kText+off, kText+off+len)
  Runs line;          ///< line runs
  Runs sp = {};       ///< SP-delta runs; empty = frameless (0 throughout)
};

/// A Go 1.20+ pclntab over one source FILE with the functions FS, in address order.
struct SyntheticPclntab {
  Buf tab;
  core::ModuleData md;

  SyntheticPclntab(const std::string& file, const std::vector<SyntheticFunc>& fs) {
    Buf names, cutab, files, pctab, pcln;
    files.insert(files.end(), file.begin(), file.end());
    files.push_back(0);
    put32(cutab, 0);
    pctab.push_back(0);
    pcln.resize((fs.size() + 1) * 8);
    for (size_t i = 0; i < fs.size(); ++i) {
      const SyntheticFunc& f = fs[i];
      uint32_t n = uint32_t(names.size());
      names.insert(names.end(), f.name, f.name + std::strlen(f.name) + 1);
      uint32_t filet = uint32_t(pctab.size()); pcvalue_table(pctab, {{0, f.len}});
      uint32_t line = uint32_t(pctab.size()); pcvalue_table(pctab, f.line);
      uint32_t sp = uint32_t(pctab.size()); pcvalue_table(pctab, f.sp.empty() ? Runs{{0, f.len}} : f.sp);
      uint32_t off = uint32_t(pcln.size());
      for (uint32_t v : {f.off, n, 0u, 0u, sp, filet, line, 0u, 0u, 0u}) put32(pcln, v);
      pcln.insert(pcln.end(), {0, 0, 0, 0});  // funcID, flag, _, nfuncdata
      set32(pcln, i * 8, f.off);
      set32(pcln, i * 8 + 4, off);
    }
    set32(pcln, fs.size() * 8, fs.empty() ? 0 : fs.back().off + fs.back().len);
    tab.resize(72);
    set32(tab, 0, 0xfffffff1u);
    tab[6] = 1;  // minLC
    tab[7] = 8;  // ptrSize
    set64(tab, 8, fs.size());
    set64(tab, 16, 1);
    for (auto [field, part] : std::vector<std::pair<size_t, Buf*>>{{32, &names}, {40, &cutab}, {48, &files}, {56, &pctab}, {64, &pcln}}) {
      set64(tab, field, tab.size());
      tab.insert(tab.end(), part->begin(), part->end());
    }
    md.text = core::RemoteAddr(kText);
    md.gofunc = core::RemoteAddr(0x500000);
  }

  std::unique_ptr<core::Pclntab> load() const {
    auto p = core::Pclntab::from_bytes(core::Bytes(tab), md, *core::GoVersion::parse("go1.26.1"), core::Bytes{});
    REQUIRE(p.ok());
    return std::move(p).value();
  }
};

}  // namespace gort::test
