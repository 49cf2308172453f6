#pragma once
// Pclntab: Go's own symbol table, present even in stripped binaries: the function table,
// names, file:line, stack-pointer deltas and the inline tree.
// Layout: ../shared/reference/go-runtime.md section 6.2-6.3 (runtime/symtab.go,
// internal/abi/symtab.go at each version). Magic 0xfffffff0 (1.18/1.19) and 0xfffffff1 (1.20+).

#include "core/binary/buildinfo.h"
#include "core/binary/elf_file.h"
#include "core/binary/moduledata.h"

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace gort::core {

struct FuncInfo {
  RemoteAddr entry;        ///< first instruction
  RemoteAddr end;          ///< one past the last byte (next function's entry or etext)
  std::string_view name;   ///< e.g. "runtime.mapassign_fast64" (points into the mapped file)
  uint32_t index = 0;      ///< position in the function table
};

/// One source-level frame for a PC. Innermost first: inlined callees come before the
/// physical function that contains the PC.
struct SourceFrame {
  std::string_view function;
  std::string_view file;
  int32_t line = 0;
  bool inlined = false;    ///< true for every frame but the last (the physical function)
};

/// A PC range of a physical function in which an inlined callee runs.
struct InlinedRange {
  RemoteAddr lo, hi;       ///< [lo, hi)
  std::string_view callee; ///< innermost inlined function at these PCs
  int depth = 0;           ///< 1 = inlined directly into the physical function
};

/// Result of decoding one pcvalue table (runtime/symtab.go pcvalue).
struct PcValue {
  enum Status { kOk, kCorrupt } status = kOk;
  int32_t value = -1;      ///< -1 when the PC is past the table's end or there is no table
  size_t bad_offset = 0;   ///< for kCorrupt: offset in the pctab where decoding overran
};

/// Decodes the pcvalue table at OFF in PCTAB for a function starting at ENTRY and returns
/// the value at TARGET. Pairs of uvarints (zig-zag value delta, pc delta * QUANTUM), value
/// starting at -1, ended by a 0 value delta after the first pair. OFF == 0 means "no
/// table" (value -1). Never reads outside PCTAB.
PcValue decode_pcvalue(Bytes pctab, uint32_t off, uint64_t entry, uint64_t target, uint32_t quantum = 1);

class Pclntab {
 public:
  /// Parses the header and function table; per-function tables are decoded lazily.
  static Result<std::unique_ptr<Pclntab>> load(const ElfFile& elf, const ModuleData& md, const GoVersion& v);
  /// The same on bytes already in memory (unit tests, synthetic tables): TAB starts at the
  /// pcHeader; MD supplies text, gofunc and the slice lengths (0 = derive from the header);
  /// GOFUNC holds the bytes at md.gofunc (empty: no inline trees). Bytes must outlive it.
  static Result<std::unique_ptr<Pclntab>> from_bytes(Bytes tab, const ModuleData& md, const GoVersion& v,
                                                     Bytes gofunc = {});
  ~Pclntab();

  uint32_t magic() const;
  size_t num_funcs() const;
  FuncInfo func(size_t index) const;
  /// The function containing PC (binary search), or nullopt.
  std::optional<FuncInfo> find_func(RemoteAddr pc) const;
  /// Exact name lookup (index built on first use).
  std::optional<FuncInfo> find_func(std::string_view name) const;

  /// Source frames at PC, innermost inlined callee first. Empty vector: PC in no function.
  Result<std::vector<SourceFrame>> symbolize(RemoteAddr pc) const;
  /// symbolize() into a caller-owned vector (cleared first): no allocation per PC once the
  /// vector has grown. OUT stays empty when PC is in no function.
  Result<void> symbolize_into(RemoteAddr pc, std::vector<SourceFrame>& out) const;
  /// Address where the function table starts (runtime.text); the end of the last function.
  RemoteAddr text_start() const;
  RemoteAddr text_end() const;
  /// The physical function's own file:line at PC (no inline expansion).
  Result<SourceFrame> line_at(RemoteAddr pc) const;
  /// SP delta (frame size so far) at PC, from the pcsp table.
  Result<int32_t> sp_delta(RemoteAddr pc) const;
  /// Every PC range of F where some function was inlined (from PCDATA_InlTreeIndex).
  Result<std::vector<InlinedRange>> inlined_ranges(const FuncInfo& f) const;

  struct Impl;
 private:
  explicit Pclntab(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gort::core
