#pragma once
// CoreFile: an x86-64 Linux ELF core file (what the kernel writes when a process dies of a
// signal with RLIMIT_CORE > 0) as a core::Memory and a core::Threads, for `gort postmortem`
// without LLDB.
//
// What is read (linux: fs/binfmt_elf.c, include/uapi/linux/elfcore.h):
//   PT_LOAD        memory: p_filesz bytes at p_offset. Read-only file mappings are usually
//                  not dumped (p_filesz 0, or only the first page with the ELF header):
//                  the rest of such a segment is read from the executable, when one is
//                  attached and the address lies in one of its PT_LOAD segments; else the
//                  read fails and says so.
//   NT_PRSTATUS    one per thread: pr_pid (the tid), pr_cursig, pr_reg (user_regs_struct).
//   NT_AUXV        AT_ENTRY (the PIE load slide), AT_PHDR.
//   NT_FILE        the mapped files (start, end, file offset, path).
//   NT_PRPSINFO    the command name and arguments; NT_SIGINFO the fatal signal (optional).
// Every offset is checked against the file size: a truncated or corrupt core is an Error
// (kBadInput) that names the byte offset, never a crash.

#include "core/binary/elf_file.h"
#include "core/target/memory.h"
#include "core/util/bytes.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gort::core {

class CoreFile final : public Memory, public Threads {
 public:
  struct Segment {
    RemoteAddr vaddr;
    uint64_t offset = 0, filesz = 0, memsz = 0;
    uint32_t flags = 0;  ///< PF_R/W/X
  };
  struct MappedFile {
    RemoteAddr start, end;
    uint64_t file_offset = 0;  ///< in bytes (NT_FILE counts pages)
    std::string path;
  };

  /// Maps and validates PATH: ELF64 little-endian x86-64, e_type ET_CORE, program headers,
  /// notes and PT_LOAD extents inside the file.
  static Result<std::unique_ptr<CoreFile>> open(const std::string& path);
  /// Validates bytes already in memory (tests). The bytes must outlive the CoreFile.
  static Result<std::unique_ptr<CoreFile>> from_bytes(Bytes bytes, std::string name);
  ~CoreFile() override;
  CoreFile(const CoreFile&) = delete;
  CoreFile& operator=(const CoreFile&) = delete;

  /// Memory the core does not hold (read-only file mappings) is read from EXE's PT_LOAD
  /// segments at address - SLIDE. EXE must outlive the CoreFile.
  void attach_executable(const ElfFile* exe, int64_t slide) {
    exe_ = exe;
    exe_slide_ = slide;
  }

  Result<void> read(RemoteAddr addr, std::span<uint8_t> out) const override;
  Result<std::vector<ThreadRegs>> threads() const override { return threads_; }

  const std::string& path() const { return path_; }
  const std::vector<Segment>& segments() const { return segments_; }
  const std::vector<MappedFile>& mapped_files() const { return files_; }
  /// AT_ENTRY from NT_AUXV: the runtime entry point of the executable (nullopt: no auxv).
  std::optional<uint64_t> auxv_entry() const { return at_entry_; }
  std::optional<uint64_t> auxv_phdr() const { return at_phdr_; }
  /// The fatal signal (pr_cursig of the first thread, or NT_SIGINFO), 0 if unknown.
  int signal() const { return signal_; }
  int pid() const { return pid_; }
  /// NT_PRPSINFO pr_fname / pr_psargs ("" when absent).
  const std::string& command() const { return fname_; }
  const std::string& arguments() const { return psargs_; }

 private:
  CoreFile() = default;
  Result<void> parse();
  Result<void> parse_notes(uint64_t off, uint64_t size);

  std::string path_;
  Bytes file_;
  void* map_ = nullptr;
  size_t map_len_ = 0;
  std::vector<Segment> segments_;
  std::vector<MappedFile> files_;
  std::vector<ThreadRegs> threads_;
  std::optional<uint64_t> at_entry_, at_phdr_;
  int signal_ = 0;
  int pid_ = 0;
  std::string fname_, psargs_;
  const ElfFile* exe_ = nullptr;
  int64_t exe_slide_ = 0;
};

/// "SIGABRT" for 6, "signal 42" for unknown numbers.
std::string signal_name(int sig);

}  // namespace gort::core
