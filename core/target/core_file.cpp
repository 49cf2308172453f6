// ELF core reader (see core_file.h). Layouts (x86-64, include/uapi/linux/elfcore.h and
// arch/x86/include/asm/user_64.h):
//   elf_prstatus (336 bytes): pr_cursig u16 @12, pr_pid i32 @32, pr_reg @112 (27 u64:
//     r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp
//     ss fs_base gs_base ds es fs gs).
//   elf_prpsinfo (136 bytes): pr_pid @24, pr_fname[16] @40, pr_psargs[80] @56.
//   NT_FILE: count u64, page_size u64, count x {start, end, page offset}, then the paths.
//   NT_SIGINFO: siginfo_t, si_signo i32 @0.

#include "core/target/core_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace gort::core {

namespace {
constexpr uint16_t kEtCore = 4;
constexpr uint16_t kEmX86_64 = 62;
constexpr uint32_t kPtLoad = 1, kPtNote = 4;
constexpr uint32_t kNtPrstatus = 1, kNtPrpsinfo = 3, kNtAuxv = 6;
constexpr uint32_t kNtSiginfo = 0x53494749, kNtFile = 0x46494c45;
constexpr size_t kPrstatusSize = 336, kPrRegOff = 112;
constexpr size_t kMaxThreads = 1 << 16;

std::string cstr(Bytes b, size_t off, size_t max) {
  if (off >= b.size()) return "";
  size_t n = std::min(max, b.size() - off);
  const char* p = reinterpret_cast<const char*>(b.data() + off);
  return std::string(p, strnlen(p, n));
}
}  // namespace

std::string signal_name(int sig) {
  static const char* kNames[] = {nullptr,   "SIGHUP",  "SIGINT",    "SIGQUIT", "SIGILL",    "SIGTRAP",
                                 "SIGABRT", "SIGBUS",  "SIGFPE",    "SIGKILL", "SIGUSR1",   "SIGSEGV",
                                 "SIGUSR2", "SIGPIPE", "SIGALRM",   "SIGTERM", "SIGSTKFLT", "SIGCHLD",
                                 "SIGCONT", "SIGSTOP", "SIGTSTP",   "SIGTTIN", "SIGTTOU",   "SIGURG",
                                 "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH",  "SIGIO",
                                 "SIGPWR",  "SIGSYS"};
  if (sig > 0 && sig < static_cast<int>(std::size(kNames))) return kNames[sig];
  return fmt::format("signal {}", sig);
}

CoreFile::~CoreFile() {
  if (map_) munmap(map_, map_len_);
}

Result<std::unique_ptr<CoreFile>> CoreFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(errno == ENOENT ? ErrorKind::kBadInput : ErrorKind::kIo, "{}: cannot open the core file: {}", path,
                      std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorKind::kBadInput, "{}: not a regular file (give the core file the kernel wrote)", path);
  }
  std::unique_ptr<CoreFile> c(new CoreFile());
  c->path_ = path;
  if (st.st_size > 0) {
    void* m = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return make_error(ErrorKind::kIo, "{}: cannot map the core file: {}", path, std::strerror(e));
    }
    c->map_ = m;
    c->map_len_ = static_cast<size_t>(st.st_size);
    c->file_ = Bytes(static_cast<const uint8_t*>(m), c->map_len_);
  }
  ::close(fd);
  GORT_TRY_VOID(c->parse());
  return c;
}

Result<std::unique_ptr<CoreFile>> CoreFile::from_bytes(Bytes bytes, std::string name) {
  std::unique_ptr<CoreFile> c(new CoreFile());
  c->path_ = std::move(name);
  c->file_ = bytes;
  GORT_TRY_VOID(c->parse());
  return c;
}

Result<void> CoreFile::parse() {
  Bytes f = file_;
  auto bad = [&](std::string what) {
    return make_error(ErrorKind::kBadInput, "{}: {}", path_, what);
  };
  if (f.size() < 64 || std::memcmp(f.data(), "\x7f" "ELF", 4) != 0) {
    return bad(fmt::format("not an ELF core file ({} bytes, no ELF header); give the core the kernel wrote (see docs/postmortem.md)",
                           f.size()));
  }
  if (f[4] != 2 || f[5] != 1) return bad("not a 64-bit little-endian ELF file");
  uint16_t type = *read_le<uint16_t>(f, 16);
  uint16_t machine = *read_le<uint16_t>(f, 18);
  if (type != kEtCore) {
    return bad(fmt::format("not a core file (ELF type {}, a core is type 4 ET_CORE); the order is BIN CORE",
                           type == 2 ? "EXEC" : type == 3 ? "DYN" : std::to_string(type)));
  }
  if (machine != kEmX86_64) return bad(fmt::format("core of machine {}, gort reads x86-64 cores only", machine));
  uint64_t phoff = *read_le<uint64_t>(f, 32);
  uint16_t phentsize = *read_le<uint16_t>(f, 54);
  uint16_t phnum = *read_le<uint16_t>(f, 56);
  if (phnum == 0) return bad("corrupt core: no program headers");
  if (phentsize < 56) return bad(fmt::format("corrupt core: program header size {} at offset 54", phentsize));
  if (phoff > f.size() || (f.size() - phoff) / phentsize < phnum) {
    return bad(fmt::format("truncated core: {} program headers at offset {:#x} end past the file ({} bytes)", phnum, phoff,
                           f.size()));
  }
  std::vector<std::pair<uint64_t, uint64_t>> notes;
  for (uint16_t i = 0; i < phnum; ++i) {
    size_t ph = phoff + size_t(i) * phentsize;
    uint32_t p_type = *read_le<uint32_t>(f, ph);
    uint32_t p_flags = *read_le<uint32_t>(f, ph + 4);
    uint64_t p_offset = *read_le<uint64_t>(f, ph + 8);
    uint64_t p_vaddr = *read_le<uint64_t>(f, ph + 16);
    uint64_t p_filesz = *read_le<uint64_t>(f, ph + 32);
    uint64_t p_memsz = *read_le<uint64_t>(f, ph + 40);
    if (p_type != kPtLoad && p_type != kPtNote) continue;
    if (p_offset > f.size() || f.size() - p_offset < p_filesz) {
      return bad(fmt::format("truncated core: segment {} ({} bytes at file offset {:#x}) ends at {:#x}, past the end of "
                             "the file ({:#x} bytes); the dump was cut short (disk full, or a size limit)",
                             i, p_filesz, p_offset, p_offset + p_filesz, f.size()));
    }
    if (p_type == kPtNote) {
      notes.emplace_back(p_offset, p_filesz);
    } else {
      if (p_filesz > p_memsz) {
        return bad(fmt::format("corrupt core: segment {} (program header at offset {:#x}) has p_filesz {:#x} > p_memsz {:#x}",
                               i, ph, p_filesz, p_memsz));
      }
      if (p_vaddr + p_memsz < p_vaddr) return bad(fmt::format("corrupt core: segment {} wraps the address space", i));
      segments_.push_back(Segment{RemoteAddr(p_vaddr), p_offset, p_filesz, p_memsz, p_flags});
    }
  }
  if (notes.empty()) return bad("corrupt core: no PT_NOTE segment (no threads)");
  for (auto [off, size] : notes) GORT_TRY_VOID(parse_notes(off, size));
  if (threads_.empty()) return bad("corrupt core: no NT_PRSTATUS note (no threads)");
  std::sort(segments_.begin(), segments_.end(), [](const Segment& a, const Segment& b) { return a.vaddr < b.vaddr; });
  return {};
}

Result<void> CoreFile::parse_notes(uint64_t off, uint64_t size) {
  Bytes f = file_.subspan(off, size);
  size_t pos = 0;
  auto bad = [&](std::string what) {
    return make_error(ErrorKind::kBadInput, "{}: corrupt core: {} (note at file offset {:#x})", path_, what, off + pos);
  };
  while (pos + 12 <= f.size()) {
    uint32_t namesz = *read_le<uint32_t>(f, pos);
    uint32_t descsz = *read_le<uint32_t>(f, pos + 4);
    uint32_t ntype = *read_le<uint32_t>(f, pos + 8);
    uint64_t name_at = pos + 12;
    uint64_t desc_at = name_at + ((uint64_t(namesz) + 3) & ~uint64_t(3));
    uint64_t next = desc_at + ((uint64_t(descsz) + 3) & ~uint64_t(3));
    if (desc_at > f.size() || f.size() - desc_at < descsz) {
      return bad(fmt::format("note of type {:#x} claims {} + {} bytes, past the end of its segment", ntype, namesz, descsz));
    }
    Bytes d = f.subspan(desc_at, descsz);
    std::string name = cstr(f, name_at, namesz);
    if (name == "CORE" && ntype == kNtPrstatus) {
      if (d.size() < kPrstatusSize - 8) return bad(fmt::format("NT_PRSTATUS of {} bytes (want {})", d.size(), kPrstatusSize));
      if (threads_.size() >= kMaxThreads) return bad("more than 65536 NT_PRSTATUS notes");
      ThreadRegs r;
      int cursig = *read_le<uint16_t>(d, 12);
      r.tid = static_cast<uint64_t>(*read_le<int32_t>(d, 32));
      auto reg = [&](int i) { return *read_le<uint64_t>(d, kPrRegOff + 8 * size_t(i)); };
      r.r15 = reg(0); r.r14 = reg(1); r.r13 = reg(2); r.r12 = reg(3); r.rbp = reg(4); r.rbx = reg(5);
      r.r11 = reg(6); r.r10 = reg(7); r.r9 = reg(8); r.r8 = reg(9); r.rax = reg(10); r.rcx = reg(11);
      r.rdx = reg(12); r.rsi = reg(13); r.rdi = reg(14); r.rip = reg(16); r.rsp = reg(19); r.fs_base = reg(21);
      r.stop_reason = cursig ? "signal " + signal_name(cursig) : "";
      if (threads_.empty()) {
        signal_ = cursig;
        pid_ = static_cast<int>(r.tid);
      }
      threads_.push_back(std::move(r));
    } else if (name == "CORE" && ntype == kNtPrpsinfo) {
      if (d.size() >= 136) {
        pid_ = *read_le<int32_t>(d, 24);
        fname_ = cstr(d, 40, 16);
        psargs_ = cstr(d, 56, 80);
      }
    } else if (name == "CORE" && ntype == kNtSiginfo) {
      if (d.size() >= 4 && *read_le<int32_t>(d, 0) > 0) signal_ = *read_le<int32_t>(d, 0);
    } else if (name == "CORE" && ntype == kNtAuxv) {
      for (size_t i = 0; i + 16 <= d.size(); i += 16) {
        uint64_t k = *read_le<uint64_t>(d, i), v = *read_le<uint64_t>(d, i + 8);
        if (k == 0) break;
        if (k == 9) at_entry_ = v;   // AT_ENTRY
        if (k == 3) at_phdr_ = v;    // AT_PHDR
      }
    } else if (name == "CORE" && ntype == kNtFile) {
      if (d.size() < 16) return bad("NT_FILE shorter than its header");
      uint64_t count = *read_le<uint64_t>(d, 0), page = *read_le<uint64_t>(d, 8);
      if (count > (d.size() - 16) / 24) return bad(fmt::format("NT_FILE claims {} mappings in {} bytes", count, d.size()));
      size_t names = 16 + count * 24;
      for (uint64_t i = 0; i < count; ++i) {
        MappedFile m;
        m.start = RemoteAddr(*read_le<uint64_t>(d, 16 + i * 24));
        m.end = RemoteAddr(*read_le<uint64_t>(d, 16 + i * 24 + 8));
        m.file_offset = *read_le<uint64_t>(d, 16 + i * 24 + 16) * page;
        if (names >= d.size()) break;  // names cut short: keep what has one
        m.path = cstr(d, names, d.size() - names);
        names += m.path.size() + 1;
        files_.push_back(std::move(m));
      }
    }
    pos = next;
  }
  return {};
}

Result<void> CoreFile::read(RemoteAddr addr, std::span<uint8_t> out) const {
  uint64_t cur = addr.value();
  size_t done = 0;
  while (done < out.size()) {
    // The segment containing CUR (segments are sorted and do not overlap).
    auto it = std::upper_bound(segments_.begin(), segments_.end(), cur,
                               [](uint64_t a, const Segment& s) { return a < s.vaddr.value(); });
    const Segment* seg = nullptr;
    if (it != segments_.begin()) {
      const Segment& s = *std::prev(it);
      if (cur - s.vaddr.value() < s.memsz) seg = &s;
    }
    if (!seg) {
      return make_error(ErrorKind::kIo, "cannot read {} bytes at {}: {:#x} is not in the core (not mapped)", out.size(), addr,
                        cur);
    }
    uint64_t in = cur - seg->vaddr.value();
    size_t want = out.size() - done;
    if (in < seg->filesz) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(want, seg->filesz - in));
      std::memcpy(out.data() + done, file_.data() + seg->offset + in, n);
      done += n;
      cur += n;
      continue;
    }
    // Not dumped: a read-only file mapping. The executable's own bytes, if it is there.
    size_t n = static_cast<size_t>(std::min<uint64_t>(want, seg->memsz - in));
    if (!exe_) {
      return make_error(ErrorKind::kIo, "cannot read {} bytes at {}: {:#x} was not dumped into the core (a file mapping)",
                        out.size(), addr, cur);
    }
    auto b = exe_->read(RemoteAddr(cur - static_cast<uint64_t>(exe_slide_)), n);
    if (!b) {
      return make_error(ErrorKind::kIo,
                        "cannot read {} bytes at {}: {:#x} was not dumped into the core and is not in the executable",
                        out.size(), addr, cur);
    }
    std::memcpy(out.data() + done, b->data(), n);
    done += n;
    cur += n;
  }
  return {};
}

}  // namespace gort::core
