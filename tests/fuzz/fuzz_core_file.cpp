// libFuzzer target for the ELF core-file reader (core/target/core_file.h: what
// `gort postmortem` and `gort heap ... BIN CORE` read): CoreFile::from_bytes, and
// CoreFile::open on the same bytes through a memfd (/proc/self/fd/N), then the threads
// and their registers, the notes (NT_FILE, auxv, prpsinfo, siginfo), and memory reads at
// the places postmortem reads first (each thread's rip, rsp, fs_base; the start, end and
// straddling edges of every segment), once alone and once with an executable attached
// for the segments the kernel did not dump.
//
// Seeds: tests/fuzz/corpus/core_file/ (written by tests/fuzz/make_seeds.py: small x86-64
// cores in the kernel's layout, with NT_PRSTATUS for two threads, NT_PRPSINFO,
// NT_SIGINFO, NT_AUXV, NT_FILE, PT_LOAD segments dumped, partly dumped and not dumped).
// Real cores of a Go program are tens of megabytes, almost all of it heap pages the
// reader only copies, so none is generated at test time.
#include "core/binary/elf_file.h"
#include "core/target/core_file.h"

#include <elf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace gort::core;

namespace {
volatile uint64_t g_sink;
void use(uint64_t v) { g_sink = g_sink + v; }

/// A minimal x86-64 executable: one PT_LOAD of 0x2000 bytes at 0x400000, entry 0x401000.
const ElfFile& executable() {
  static std::vector<uint8_t> bytes = [] {
    std::vector<uint8_t> b(0x2000, 0xcc);
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = 0x401000;
    eh.e_phoff = sizeof eh;
    eh.e_ehsize = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    Elf64_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_flags = PF_R | PF_X;
    ph.p_vaddr = 0x400000;
    ph.p_filesz = ph.p_memsz = b.size();
    std::memcpy(b.data(), &eh, sizeof eh);
    std::memcpy(b.data() + sizeof eh, &ph, sizeof ph);
    return b;
  }();
  static std::unique_ptr<ElfFile> elf = ElfFile::from_bytes(Bytes(bytes), "fuzz-exe").value();
  return *elf;
}

int memfd() {
  static int fd = [] {
    int f = memfd_create("fuzz_core_file", MFD_CLOEXEC);
    if (f < 0) abort();
    return f;
  }();
  return fd;
}

void read_at(const CoreFile& c, uint64_t addr, size_t n) {
  uint8_t buf[64];
  if (c.read(RemoteAddr(addr), std::span<uint8_t>(buf, n)).ok()) use(buf[0]);
}

void exercise(CoreFile& c) {
  use(c.signal() + uint64_t(c.pid()) + c.command().size() + c.arguments().size() + c.mapped_files().size());
  use(c.auxv_entry().value_or(0) + c.auxv_phdr().value_or(0) + signal_name(c.signal()).size());
  for (int round = 0; round < 2; round++) {
    auto threads = c.threads();
    if (!threads) return;
    size_t n = 0;
    for (const ThreadRegs& t : *threads) {
      if (n++ == 16) break;
      read_at(c, t.rip, 16);
      read_at(c, t.rsp, 64);
      read_at(c, t.fs_base - 8, 8);
      use(t.tid + t.stop_reason.size() + reg_value(t, "r14"));
    }
    n = 0;
    for (const auto& s : c.segments()) {
      if (n++ == 32) break;
      uint64_t lo = s.vaddr.value(), hi = lo + s.memsz;
      read_at(c, lo, 8);
      read_at(c, lo + s.filesz - 4, 8);  // across the end of the dumped part
      read_at(c, hi - 8, 8);
      read_at(c, hi - 4, 8);             // across the segment's end
    }
    for (const auto& m : c.mapped_files()) use(m.file_offset + m.path.size());
    // Second round: not-dumped pages from an executable, at the slide auxv implies.
    int64_t slide = c.auxv_entry() ? int64_t(*c.auxv_entry() - executable().entry().value()) : 0;
    c.attach_executable(&executable(), slide);
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (auto c = CoreFile::from_bytes(Bytes(data, size), "fuzz-input")) exercise(**c);

  int fd = memfd();
  if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != ssize_t(size))) abort();
  if (auto c = CoreFile::open("/proc/self/fd/" + std::to_string(fd))) use((*c)->threads()->size());
  return 0;
}
