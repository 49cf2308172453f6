// load_slide (process.h).
#include "core/target/process.h"

#include <fmt/format.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace gort::core {

Result<int64_t> load_slide(int pid, const GoBinary& bin) {
  if (!bin.elf().is_pie()) return int64_t{0};
  char exe[4096];
  ssize_t n = ::readlink(fmt::format("/proc/{}/exe", pid).c_str(), exe, sizeof exe - 1);
  if (n <= 0) return make_error(ErrorKind::kIo, "cannot read /proc/{}/exe: process gone?", pid);
  std::string exe_path(exe, n);
  uint64_t link_base = UINT64_MAX;
  for (auto& s : bin.elf().segments())
    if (s.type == 1 /* PT_LOAD */ && s.offset == 0) link_base = s.vaddr.value() & ~uint64_t(0xfff);
  if (link_base == UINT64_MAX) return make_error(ErrorKind::kBadInput, "{}: no PT_LOAD at file offset 0", bin.elf().path());
  std::ifstream maps(fmt::format("/proc/{}/maps", pid));
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long lo, hi, off;
    int path_at = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx %*s %lx %*s %*s %n", &lo, &hi, &off, &path_at) < 3 || path_at == 0) continue;
    if (off == 0 && line.substr(path_at) == exe_path) return static_cast<int64_t>(lo - link_base);
  }
  return make_error(ErrorKind::kIo, "no mapping of {} in /proc/{}/maps", exe_path, pid);
}

std::optional<std::string> status_field(const std::string& path, std::string_view field) {
  FILE* f = fopen(path.c_str(), "r");
  if (!f) return std::nullopt;
  char line[512];
  std::optional<std::string> out;
  while (fgets(line, sizeof line, f)) {
    std::string_view l(line);
    if (l.size() <= field.size() || l.substr(0, field.size()) != field || l[field.size()] != ':') continue;
    l.remove_prefix(field.size() + 1);
    while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
    while (!l.empty() && (l.back() == '\n' || l.back() == ' ')) l.remove_suffix(1);
    out = std::string(l);
    break;
  }
  fclose(f);
  return out;
}

}  // namespace gort::core
