#pragma once
// GoBinary: everything gort knows about one Go executable, loaded once: ELF, build info
// (version, settings), map implementation, moduledata, pclntab and runtime layouts.
// Front ends open a GoBinary and never parse the file themselves.

#include "core/binary/buildinfo.h"
#include "core/binary/elf_file.h"
#include "core/binary/moduledata.h"
#include "core/binary/pclntab.h"
#include "core/goruntime/layouts.h"
#include "core/goruntime/versions.h"

#include <memory>
#include <string>

namespace gort::core {

class GoBinary {
 public:
  struct Options {
    /// Try a Go version outside 1.21-1.26 anyway (layouts from the nearest table).
    bool allow_unsupported_version = false;
  };

  /// Opens PATH. Errors (kBadInput / kUnsupported) are one clear line with a hint.
  static Result<std::unique_ptr<GoBinary>> open(const std::string& path, Options opts);
  static Result<std::unique_ptr<GoBinary>> open(const std::string& path) { return open(path, Options{}); }
  /// The same on a binary already in memory (fuzzing, tests), named NAME in messages.
  /// The bytes must outlive the GoBinary.
  static Result<std::unique_ptr<GoBinary>> from_bytes(Bytes bytes, std::string name, Options opts);

  const ElfFile& elf() const { return *elf_; }
  const BuildInfo& build_info() const { return build_info_; }
  const GoVersion& version() const { return build_info_.version; }
  MapImpl map_impl() const { return map_impl_; }
  const ModuleData& moduledata() const { return moduledata_; }
  const Pclntab& pclntab() const { return *pclntab_; }
  const RuntimeLayouts& layouts() const { return layouts_.layouts; }
  LayoutSource layout_source() const { return layouts_.source; }
  const std::vector<std::string>& notes() const { return notes_; }
  bool stripped() const { return !elf_->has_symbols(); }
  /// The Go build ID from the .note.go.buildid note ("" when absent): tells whether a
  /// binary given later is the one a trace was recorded from.
  std::string build_id() const;

  /// A function by exact name, from pclntab (works when stripped).
  std::optional<FuncInfo> func(std::string_view name) const { return pclntab_->find_func(name); }
  /// The machine code of F.
  Result<Bytes> code(const FuncInfo& f) const { return elf_->read(f.entry, f.end - f.entry); }

 private:
  GoBinary() = default;
  static Result<std::unique_ptr<GoBinary>> load(std::unique_ptr<ElfFile> elf, Options opts);
  std::unique_ptr<ElfFile> elf_;
  BuildInfo build_info_;
  MapImpl map_impl_ = MapImpl::kHmap;
  ModuleData moduledata_;
  std::unique_ptr<Pclntab> pclntab_;
  LayoutsWithSource layouts_;
  std::vector<std::string> notes_;
};

}  // namespace gort::core
