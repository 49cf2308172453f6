// ElfFile: read into memory + bounds-checked parsing of ELF64 headers, sections, segments and .symtab.
// Every offset taken from the file is checked against the file size before use, so a
// truncated or corrupt binary yields an Error naming the offset, never a crash.

#include "core/binary/elf_file.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gort::core {

namespace {
bool in_file(Bytes f, uint64_t off, uint64_t n) { return off <= f.size() && n <= f.size() - off; }
}  // namespace

Result<std::unique_ptr<ElfFile>> ElfFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return make_error(ErrorKind::kBadInput, "{}: no such file", path);
    if (e == EACCES) return make_error(ErrorKind::kIo, "{}: permission denied (run as a user that can read it)", path);
    return make_error(ErrorKind::kIo, "{}: cannot open: {}", path, std::strerror(e));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return make_error(ErrorKind::kIo, "{}: cannot stat: {}", path, std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorKind::kBadInput, "{}: is a directory, not a Go binary", path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorKind::kBadInput, "{}: not a regular file", path);
  }
  if (st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    ::close(fd);
    return make_error(ErrorKind::kBadInput, "{}: not an ELF file ({} bytes, too short)", path, st.st_size);
  }
  // Read, not mapped: a file mapping of an executable (VM_MAYEXEC) gets the int3 of every
  // system-wide uprobe on the file installed into it by the kernel, so a mapped binary
  // read while some gort session (this one included) had uprobes on it showed 0xCC in
  // place of the code (Linux 6.18: "no RET found", "0 stores to g.goid").
  void* m = mmap(nullptr, st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    ::close(fd);
    return make_error(ErrorKind::kIo, "{}: cannot allocate {} bytes: {}", path, st.st_size, std::strerror(e));
  }
  for (off_t done = 0; done < st.st_size;) {
    ssize_t n = ::pread(fd, static_cast<char*>(m) + done, static_cast<size_t>(st.st_size - done), done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      ::close(fd);
      munmap(m, st.st_size);
      return make_error(ErrorKind::kIo, "{}: cannot read: {}", path, n < 0 ? std::strerror(e) : "file shrank while read");
    }
    done += n;
  }
  ::close(fd);
  mprotect(m, st.st_size, PROT_READ);
  std::unique_ptr<ElfFile> f(new ElfFile());
  f->path_ = path;
  f->map_ = m;
  f->map_len_ = st.st_size;
  f->file_ = Bytes(static_cast<const uint8_t*>(m), st.st_size);
  GORT_TRY_VOID(f->parse());
  return f;
}

Result<std::unique_ptr<ElfFile>> ElfFile::from_bytes(Bytes bytes, std::string name) {
  std::unique_ptr<ElfFile> f(new ElfFile());
  f->path_ = std::move(name);
  f->file_ = bytes;
  GORT_TRY_VOID(f->parse());
  return f;
}

ElfFile::~ElfFile() {
  if (map_) munmap(map_, map_len_);
}

Result<void> ElfFile::parse() {
  Bytes f = file_;
  if (f.size() < sizeof(Elf64_Ehdr) || std::memcmp(f.data(), ELFMAG, SELFMAG) != 0)
    return make_error(ErrorKind::kBadInput, "{}: not an ELF file (no \\x7fELF magic)", path_);
  Elf64_Ehdr eh;
  std::memcpy(&eh, f.data(), sizeof eh);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    return make_error(ErrorKind::kUnsupported, "{}: not a 64-bit little-endian ELF; gort supports linux/amd64 Go binaries", path_);
  if (eh.e_machine != EM_X86_64)
    return make_error(ErrorKind::kUnsupported, "{}: ELF machine {} is not x86-64; gort supports linux/amd64 Go binaries", path_, eh.e_machine);
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
    return make_error(ErrorKind::kBadInput, "{}: ELF type {} is not an executable (core files go to `gort postmortem`)", path_, eh.e_type);
  is_dyn_ = eh.e_type == ET_DYN;
  entry_ = RemoteAddr(eh.e_entry);

  // Program headers.
  if (eh.e_phnum && (eh.e_phentsize != sizeof(Elf64_Phdr) || !in_file(f, eh.e_phoff, uint64_t(eh.e_phnum) * sizeof(Elf64_Phdr))))
    return make_error(ErrorKind::kBadInput, "{}: truncated or corrupt ELF: program headers at offset {:#x} lie outside the {}-byte file", path_, eh.e_phoff, f.size());
  for (unsigned i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    std::memcpy(&ph, f.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    segments_.push_back(Segment{ph.p_type, ph.p_flags, RemoteAddr(ph.p_vaddr), ph.p_offset, ph.p_filesz, ph.p_memsz});
  }

  // Section headers.
  if (eh.e_shnum == 0) return {};
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || !in_file(f, eh.e_shoff, uint64_t(eh.e_shnum) * sizeof(Elf64_Shdr)))
    return make_error(ErrorKind::kBadInput, "{}: truncated or corrupt ELF: section headers at offset {:#x} lie outside the {}-byte file", path_, eh.e_shoff, f.size());
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  std::memcpy(sh.data(), f.data() + eh.e_shoff, sh.size() * sizeof(Elf64_Shdr));
  Bytes shstr;
  if (eh.e_shstrndx < sh.size() && in_file(f, sh[eh.e_shstrndx].sh_offset, sh[eh.e_shstrndx].sh_size))
    shstr = f.subspan(sh[eh.e_shstrndx].sh_offset, sh[eh.e_shstrndx].sh_size);
  auto str_at = [](Bytes tab, uint64_t off) -> std::string_view {
    if (off >= tab.size()) return {};
    const char* s = reinterpret_cast<const char*>(tab.data() + off);
    return std::string_view(s, strnlen(s, tab.size() - off));
  };
  for (auto& s : sh)
    sections_.push_back(Section{std::string(str_at(shstr, s.sh_name)), s.sh_type, s.sh_flags, RemoteAddr(s.sh_addr), s.sh_offset, s.sh_size});

  // .symtab (absent in stripped binaries).
  for (size_t i = 0; i < sh.size(); i++) {
    if (sh[i].sh_type != SHT_SYMTAB) continue;
    const auto& st = sh[i];
    if (st.sh_link >= sh.size() || !in_file(f, st.sh_offset, st.sh_size) ||
        !in_file(f, sh[st.sh_link].sh_offset, sh[st.sh_link].sh_size))
      return make_error(ErrorKind::kBadInput, "{}: truncated or corrupt ELF: .symtab at offset {:#x} lies outside the file", path_, st.sh_offset);
    Bytes strtab = f.subspan(sh[st.sh_link].sh_offset, sh[st.sh_link].sh_size);
    size_t n = st.sh_size / sizeof(Elf64_Sym);
    symbols_.reserve(n);
    for (size_t k = 1; k < n; k++) {
      Elf64_Sym sym;
      std::memcpy(&sym, f.data() + st.sh_offset + k * sizeof sym, sizeof sym);
      symbols_.push_back(Symbol{str_at(strtab, sym.st_name), RemoteAddr(sym.st_value), sym.st_size,
                                uint8_t(ELF64_ST_TYPE(sym.st_info)), uint8_t(ELF64_ST_BIND(sym.st_info)), sym.st_shndx});
    }
  }
  return {};
}

const ElfFile::Section* ElfFile::section(std::string_view name) const {
  for (auto& s : sections_)
    if (s.name == name) return &s;
  return nullptr;
}

Result<Bytes> ElfFile::section_data(const Section& s) const {
  if (s.type == SHT_NOBITS) return Bytes{};
  if (!in_file(file_, s.offset, s.size))
    return make_error(ErrorKind::kBadInput, "{}: truncated binary: section {} [{:#x}, +{:#x}) lies outside the {}-byte file",
                      path_, s.name, s.offset, s.size, file_.size());
  return file_.subspan(s.offset, s.size);
}

Result<Bytes> ElfFile::section_data(std::string_view name) const {
  const Section* s = section(name);
  if (!s) return make_error(ErrorKind::kNotFound, "{}: no {} section", path_, name);
  return section_data(*s);
}

Result<Bytes> ElfFile::read_to_segment_end(RemoteAddr addr) const {
  for (auto& seg : segments_) {
    if (seg.type != PT_LOAD) continue;
    uint64_t a = addr.value(), v = seg.vaddr.value();
    if (a < v || a - v >= seg.filesz) continue;
    uint64_t off = seg.offset + (a - v);
    uint64_t n = seg.filesz - (a - v);
    if (!in_file(file_, off, n)) {
      if (off >= file_.size())
        return make_error(ErrorKind::kBadInput, "{}: truncated binary: address {:#x} maps to file offset {:#x} past its end ({} bytes)",
                          path_, a, off, file_.size());
      n = file_.size() - off;
    }
    return file_.subspan(off, n);
  }
  return make_error(ErrorKind::kNotFound, "{}: address {:#x} is not in any file-backed segment", path_, addr.value());
}

Result<Bytes> ElfFile::read(RemoteAddr addr, size_t n) const {
  GORT_TRY(Bytes b, read_to_segment_end(addr));
  if (b.size() < n)
    return make_error(ErrorKind::kBadInput, "{}: cannot read {} bytes at {:#x}: only {} are in the file (truncated binary?)",
                      path_, n, addr.value(), b.size());
  return b.first(n);
}

const ElfFile::Section* ElfFile::section_at(RemoteAddr addr) const {
  for (auto& s : sections_)
    if ((s.flags & SHF_ALLOC) && s.addr <= addr && addr.value() < s.addr.value() + s.size) return &s;
  return nullptr;
}

std::optional<ElfFile::Symbol> ElfFile::find_symbol(std::string_view name) const {
  if (sym_index_.empty() && !symbols_.empty()) {
    sym_index_.reserve(symbols_.size());
    for (size_t i = 0; i < symbols_.size(); i++) sym_index_.emplace(symbols_[i].name, i);
  }
  auto it = sym_index_.find(name);
  if (it == sym_index_.end()) return std::nullopt;
  return symbols_[it->second];
}

bool ElfFile::has_dwarf() const {
  return section(".debug_info") || section(".zdebug_info");
}

}  // namespace gort::core
