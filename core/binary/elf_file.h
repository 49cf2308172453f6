#pragma once
// ElfFile: a memory-mapped, bounds-checked view of an x86-64 ELF executable: sections,
// program segments, .symtab, and reads by virtual address. Stripped binaries simply have
// no symbols; everything else still works.

#include "core/util/bytes.h"
#include "core/util/remote_addr.h"
#include "core/util/result.h"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gort::core {

class ElfFile {
 public:
  struct Section {
    std::string name;
    uint32_t type = 0;     ///< SHT_*
    uint64_t flags = 0;    ///< SHF_*
    RemoteAddr addr;       ///< sh_addr (0 for non-alloc sections)
    uint64_t offset = 0;   ///< sh_offset in the file
    uint64_t size = 0;     ///< sh_size
  };
  struct Segment {
    uint32_t type = 0;     ///< PT_*
    uint32_t flags = 0;    ///< PF_*
    RemoteAddr vaddr;
    uint64_t offset = 0, filesz = 0, memsz = 0;
  };
  struct Symbol {
    std::string_view name;  ///< points into the mapped file
    RemoteAddr value;
    uint64_t size = 0;
    uint8_t type = 0;       ///< STT_*
    uint8_t bind = 0;       ///< STB_*
    uint16_t shndx = 0;
  };

  /// Maps and validates PATH. Errors (kBadInput) name the path and say what is wrong:
  /// missing, a directory, not ELF, not 64-bit little-endian x86-64, truncated headers.
  static Result<std::unique_ptr<ElfFile>> open(const std::string& path);
  /// Wraps bytes already in memory (tests). The bytes must outlive the ElfFile.
  static Result<std::unique_ptr<ElfFile>> from_bytes(Bytes bytes, std::string name);
  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  const std::string& path() const { return path_; }
  Bytes file() const { return file_; }
  bool is_pie() const { return is_dyn_; }   ///< ET_DYN (PIE); addresses are link-time
  RemoteAddr entry() const { return entry_; }

  const std::vector<Section>& sections() const { return sections_; }
  const Section* section(std::string_view name) const;
  /// The section's bytes; empty for SHT_NOBITS. Error if it lies outside the file.
  Result<Bytes> section_data(const Section& s) const;
  Result<Bytes> section_data(std::string_view name) const;

  const std::vector<Segment>& segments() const { return segments_; }
  /// Bytes at a virtual address, from the file-backed part of a PT_LOAD segment.
  /// Error if [addr, addr+n) is not entirely file-backed.
  Result<Bytes> read(RemoteAddr addr, size_t n) const;
  /// Longest file-backed span starting at ADDR (up to the end of its segment).
  Result<Bytes> read_to_segment_end(RemoteAddr addr) const;
  /// The section containing ADDR (alloc sections only), or nullptr.
  const Section* section_at(RemoteAddr addr) const;

  /// .symtab entries (empty when stripped). Sorted by nothing; use find_symbol.
  const std::vector<Symbol>& symbols() const { return symbols_; }
  std::optional<Symbol> find_symbol(std::string_view name) const;
  bool has_symbols() const { return !symbols_.empty(); }
  bool has_dwarf() const;

 private:
  ElfFile() = default;
  Result<void> parse();

  std::string path_;
  void* map_ = nullptr;
  size_t map_len_ = 0;
  Bytes file_;
  bool is_dyn_ = false;
  RemoteAddr entry_;
  std::vector<Section> sections_;
  std::vector<Segment> segments_;
  std::vector<Symbol> symbols_;
  mutable std::unordered_map<std::string_view, size_t> sym_index_;
};

}  // namespace gort::core
