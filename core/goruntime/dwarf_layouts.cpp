// load_layouts: runtime struct layouts from the binary's own DWARF, cross-checked against
// the per-version tables (layouts_table.cpp), which also fill in structs DWARF lacks.
//
// Facts this rests on (measured on Go 1.21-1.26 binaries, see go-runtime.md section 0):
//  - The Go linker emits every named type as a top-level DIE of a compile unit, named with
//    its full package path ("runtime.g", "internal/runtime/maps.Map"); struct members carry
//    DW_AT_data_member_location as a constant (cmd/link/internal/ld/dwarf.go).
//  - Only types reachable from the program are emitted, so e.g. runtime.hmap may be missing
//    from a program that never makes a map: then the table answers for that struct.
//  - Go compresses .debug_* with SHF_COMPRESSED (zlib); libdw decompresses transparently.
//    1.25+ emit DWARF 5 units, hence dwarf_get_units rather than dwarf_nextcu.
// Only top-level DIEs are visited (never a function's children), and the scan stops once
// every wanted struct's preferred name has been seen, so large binaries stay fast.

#include "core/goruntime/layouts.h"
#include "core/goruntime/layouts_table.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <libelf.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gort::core {
namespace {

struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};
struct DwarfCloser {
  void operator()(Dwarf* d) const { dwarf_end(d); }
};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) return out;
    start = p + 1;
  }
}

class ScopedFd {
 public:
  ScopedFd() = default;
  ScopedFd(ScopedFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& o) noexcept {
    if (this != &o) { reset(); fd_ = std::exchange(o.fd_, -1); }
    return *this;
  }
  ScopedFd& operator=(int fd) { reset(); fd_ = fd; return *this; }
  ~ScopedFd() { reset(); }
  operator int() const { return fd_; }  // NOLINT(implicit): used like the int it wraps

 private:
  void reset() { if (fd_ >= 0) ::close(fd_); fd_ = -1; }
  int fd_ = -1;
};

/// Whether FD still holds BYTES (an ElfFile's path may be a mere label for in-memory
/// bytes, or the file may have been replaced since it was mapped): same size, same start.
bool same_file_contents(int fd, Bytes bytes) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || uint64_t(st.st_size) != bytes.size()) return false;
  uint8_t head[4096];
  size_t n = std::min(sizeof head, bytes.size());
  return pread(fd, head, n, 0) == ssize_t(n) && std::memcmp(head, bytes.data(), n) == 0;
}

/// Top-level struct DIEs by name, from one pass over the units.
class DwarfStructIndex {
 public:
  static Result<DwarfStructIndex> open(const ElfFile& elf) {
    DwarfStructIndex idx;
    if (elf_version(EV_CURRENT) == EV_NONE)
      return make_error(ErrorKind::kInternal, "libelf is too old: {}", elf_errmsg(-1));
    // Decompressing a SHF_COMPRESSED section rewrites its header in the image, so libelf
    // needs a writable one: its own copy-on-write map of the file (only touched pages are
    // copied), or for in-memory ElfFiles (tests) a private copy of the bytes.
    idx.fd_ = ::open(elf.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (idx.fd_ >= 0 && !same_file_contents(idx.fd_, elf.file())) idx.fd_ = -1;
    if (idx.fd_ >= 0) {
      idx.elf_.reset(elf_begin(idx.fd_, ELF_C_READ_MMAP_PRIVATE, nullptr));
    } else {
      Bytes file = elf.file();
      idx.copy_.assign(file.begin(), file.end());
      idx.elf_.reset(elf_memory(reinterpret_cast<char*>(idx.copy_.data()), idx.copy_.size()));
    }
    if (!idx.elf_) return make_error(ErrorKind::kBadInput, "{}: libelf cannot read it: {}", elf.path(), elf_errmsg(-1));
    idx.dwarf_.reset(dwarf_begin_elf(idx.elf_.get(), DWARF_C_READ, nullptr));
    if (!idx.dwarf_)
      return make_error(ErrorKind::kBadInput, "{}: cannot read its DWARF: {}", elf.path(), dwarf_errmsg(-1));
    return idx;
  }

  /// Finds the structs named in GROUPS (each a list of candidate names, preferred first).
  /// Stops early once every group's first candidate has been found.
  void index(const std::vector<std::vector<std::string_view>>& groups) {
    std::set<std::string, std::less<>> wanted;
    for (auto& g : groups)
      for (auto n : g) wanted.emplace(n);
    auto all_preferred_found = [&] {
      for (auto& g : groups)
        if (!structs_.count(std::string(g.front()))) return false;
      return true;
    };
    Dwarf_CU* cu = nullptr;
    Dwarf_Die cudie;
    uint8_t unit_type = 0;
    while (dwarf_get_units(dwarf_.get(), cu, &cu, nullptr, &unit_type, &cudie, nullptr) == 0) {
      if (unit_type != DW_UT_compile && unit_type != DW_UT_partial) continue;
      Dwarf_Die die;
      if (dwarf_child(&cudie, &die) != 0) continue;
      do {
        if (dwarf_tag(&die) != DW_TAG_structure_type) continue;
        const char* name = dwarf_diename(&die);
        if (!name) continue;
        auto it = wanted.find(std::string_view(name));
        if (it != wanted.end() && !structs_.count(*it)) structs_.emplace(*it, die);
      } while (dwarf_siblingof(&die, &die) == 0);
      if (all_preferred_found()) return;
    }
  }

  /// The first candidate present, or nullopt.
  std::optional<std::pair<std::string, Dwarf_Die>> find(const std::vector<std::string_view>& candidates) const {
    for (auto n : candidates) {
      auto it = structs_.find(std::string(n));
      if (it != structs_.end()) return *it;
    }
    return std::nullopt;
  }

 private:
  DwarfStructIndex() = default;

  ScopedFd fd_;
  std::vector<uint8_t> copy_;
  // Declared after fd_ and copy_: destroyed first.
  std::unique_ptr<Elf, ElfCloser> elf_;
  std::unique_ptr<Dwarf, DwarfCloser> dwarf_;
  std::map<std::string, Dwarf_Die, std::less<>> structs_;
};

Result<uint64_t> byte_size(Dwarf_Die* die) {
  Dwarf_Attribute a;
  Dwarf_Word w = 0;
  if (!dwarf_attr_integrate(die, DW_AT_byte_size, &a) || dwarf_formudata(&a, &w) != 0)
    return make_error(ErrorKind::kBadInput, "{} has no DW_AT_byte_size", dwarf_diename(die) ? dwarf_diename(die) : "?");
  return uint64_t(w);
}

/// Offset of a dotted member path inside the struct DIE; kAbsentField when a member of
/// the path does not exist (a field this version does not have).
Result<uint32_t> member_offset(Dwarf_Die st, std::string_view path) {
  uint64_t off = 0;
  for (auto part : split(path, '.')) {
    if (dwarf_tag(&st) != DW_TAG_structure_type)
      return make_error(ErrorKind::kBadInput, "'{}' in '{}' is not inside a struct", part, path);
    Dwarf_Die m;
    bool found = false;
    if (dwarf_child(&st, &m) == 0) {
      do {
        const char* n = dwarf_diename(&m);
        if (dwarf_tag(&m) == DW_TAG_member && n && part == n) { found = true; break; }
      } while (dwarf_siblingof(&m, &m) == 0);
    }
    if (!found) return kAbsentField;
    Dwarf_Attribute a;
    Dwarf_Word w = 0;
    // Go always writes a constant; DWARF 2 style location expressions are not used.
    if (!dwarf_attr(&m, DW_AT_data_member_location, &a) || dwarf_formudata(&a, &w) != 0)
      return make_error(ErrorKind::kBadInput, "member '{}' of '{}' has no constant DW_AT_data_member_location", part, path);
    off += w;
    Dwarf_Die type;
    if (!dwarf_attr_integrate(&m, DW_AT_type, &a) || !dwarf_formref_die(&a, &type))
      return make_error(ErrorKind::kBadInput, "member '{}' of '{}' has no type", part, path);
    if (dwarf_peel_type(&type, &st) != 0)
      return make_error(ErrorKind::kBadInput, "cannot resolve the type of '{}' in '{}'", part, path);
  }
  return static_cast<uint32_t>(off);
}

std::string hex_or_absent(uint32_t v) { return v == kAbsentField ? "absent" : fmt::format("{:#x}", v); }

bool relevant(const FieldDesc& d, MapImpl map) {
  auto impl = map_impl_of_field(d.ptr);
  return !impl || *impl == map;
}

}  // namespace

Result<LayoutsWithSource> load_layouts(const ElfFile& elf, const GoVersion& v, MapImpl map) {
  // No table (unsupported version, or a map implementation the version never had) is
  // survivable when the binary has DWARF.
  auto table_or = layouts_from_table(v, map);
  std::optional<RuntimeLayouts> table;
  if (table_or) table = *table_or;
  LayoutsWithSource out;
  const std::string ver = v.short_name();

  if (!elf.has_dwarf()) {
    if (!table)
      return table_or.error().with_context(fmt::format("{} has no DWARF to read runtime layouts from", elf.path()));
    out.layouts = *table;
    out.notes.push_back(fmt::format("no DWARF in the binary (-ldflags=-w?): runtime layouts from the {} table", ver));
    return out;
  }

  auto idx = DwarfStructIndex::open(elf);
  if (!idx) {
    if (!table) return idx.error();
    out.layouts = *table;
    out.notes.push_back(fmt::format("{}; runtime layouts from the {} table", idx.error().message, ver));
    return out;
  }

  const auto& descs = runtime_field_descs();
  std::vector<std::vector<std::string_view>> groups;
  {
    std::set<std::string_view> seen;
    for (auto& d : descs)
      if (relevant(d, map) && seen.insert(d.structs).second) groups.push_back(split(d.structs, '|'));
  }
  idx->index(groups);

  // Struct group -> fields the table had to answer for.
  std::map<std::string_view, std::vector<std::string_view>> from_table;
  bool used_dwarf = false;
  for (auto& d : descs) {
    uint32_t& slot = out.layouts.*d.ptr;
    if (!relevant(d, map)) { slot = kAbsentField; continue; }
    const uint32_t table_value = table ? (*table).*d.ptr : kAbsentField;
    auto st = idx->find(split(d.structs, '|'));
    if (!st) {
      slot = table_value;
      from_table[d.structs].push_back(d.member);
      continue;
    }
    Result<uint32_t> got = kAbsentField;
    if (*d.field == '\0') {
      auto sz = byte_size(&st->second);
      got = sz ? Result<uint32_t>(static_cast<uint32_t>(*sz)) : Result<uint32_t>(sz.error());
    } else {
      got = member_offset(st->second, d.field);
    }
    if (!got) {
      slot = table_value;
      out.notes.push_back(fmt::format("{}: cannot read {}.{} from DWARF ({}); {} table used", d.member, st->first,
                                      d.field, got.error().message, ver));
      continue;
    }
    used_dwarf = true;
    slot = *got;
    if (table && slot != table_value)
      out.notes.push_back(fmt::format("{}: DWARF says {} ({}.{}), the {} table {}; using DWARF", d.member,
                                      hex_or_absent(slot), st->first, *d.field ? d.field : "size", ver,
                                      hex_or_absent(table_value)));
  }
  for (auto& [structs, members] : from_table) {
    std::string list;
    for (auto m : members) list += fmt::format("{}{}", list.empty() ? "" : ", ", m);
    if (table)
      out.notes.push_back(fmt::format("{} not in DWARF (unused by the program); {} table used for {}", structs, ver, list));
    else
      out.notes.push_back(fmt::format("{} not in DWARF and no table: {} unknown", structs, list));
  }
  if (!table) out.notes.push_back(fmt::format("{}: layouts from DWARF only", table_or.error().message));
  out.source = used_dwarf ? LayoutSource::kDwarf : LayoutSource::kTable;
  return out;
}

}  // namespace gort::core
