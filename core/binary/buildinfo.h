#pragma once
// The Go toolchain version and build settings embedded in every Go 1.18+ binary
// (.go.buildinfo; cmd/link/internal/ld/data.go, debug/buildinfo/buildinfo.go@go1.26.10).

#include "core/binary/elf_file.h"
#include "core/util/result.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gort::core {

/// "go1.26.1", "go1.24.4 X:noswissmap", "go1.22rc1", "devel go1.27-abc123 ...".
struct GoVersion {
  int major = 0, minor = 0, patch = 0;
  std::string raw;                       ///< the exact string from the binary
  std::vector<std::string> experiments;  ///< from " X:a,b" ("noswissmap", ...)

  static std::optional<GoVersion> parse(std::string_view s);
  bool at_least(int maj, int min) const { return major > maj || (major == maj && minor >= min); }
  bool has_experiment(std::string_view name) const;
  std::string short_name() const;  ///< "go1.26"
};

struct BuildInfo {
  GoVersion version;
  std::string path;                              ///< main package path ("path\t..." line)
  std::string main_module;                       ///< "mod\t..." module path
  std::map<std::string, std::string> settings;   ///< "build\tKEY=VALUE" lines (-race, GOEXPERIMENT, -ldflags, ...)
  std::string modinfo;                           ///< raw module info text

  bool race() const;
  bool checkptr() const;  ///< -gcflags containing -d=checkptr, or -race (which implies it)
  std::vector<std::string> goexperiments() const;  ///< GOEXPERIMENT setting plus version-string X: list
};

/// Reads .go.buildinfo (or finds its magic when section headers are gone).
/// kBadInput "not a Go binary" when there is none.
Result<BuildInfo> read_buildinfo(const ElfFile& elf);
/// The same on a raw section/blob starting at the 32-byte header (unit tests).
Result<BuildInfo> parse_buildinfo_blob(Bytes blob, const ElfFile* elf_for_pointers);

}  // namespace gort::core
