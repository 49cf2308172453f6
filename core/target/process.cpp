// load_slide, status_field, all_signals_blocked (process.h).
#include "core/target/process.h"

#include <fmt/format.h>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
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

bool all_signals_blocked(int pid, int tid) {
  // Go's signal handlers run with a full sa_mask; so does a thread being created.
  auto blk = status_field(fmt::format("/proc/{}/task/{}/status", pid, tid), "SigBlk");
  if (!blk) return false;
  uint64_t m = std::strtoull(blk->c_str(), nullptr, 16);
  // SIGKILL and SIGSTOP cannot be blocked; the kernel unblocks SIGTRAP when a single step
  // traps inside a handler (force_sig), so a stepped thread shows it unblocked.
  constexpr uint64_t kUnblockable = (1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)) | (1ull << (SIGTRAP - 1));
  return (m | kUnblockable) == ~0ull;
}

std::optional<int64_t> stopped_syscall(int pid, int tid) {
  FILE* f = fopen(fmt::format("/proc/{}/task/{}/syscall", pid, tid).c_str(), "r");
  if (!f) return std::nullopt;
  char buf[64] = {0};
  bool got = fgets(buf, sizeof buf, f) != nullptr;
  fclose(f);
  if (!got || buf[0] == 'r') return std::nullopt;  // "running"
  char* end = nullptr;
  long long nr = std::strtoll(buf, &end, 10);
  if (end == buf) return std::nullopt;
  return static_cast<int64_t>(nr);
}

namespace {
// include/linux/errno.h: kernel-internal, never seen by programs.
constexpr int64_t kERestartSys = 512, kERestartNoIntr = 513, kERestartNoHand = 514, kERestartRestartBlock = 516;
constexpr uint64_t kNrRestartSyscall = 219;  // x86-64 __NR_restart_syscall
}  // namespace

bool is_restart_code(uint64_t rax) {
  auto v = static_cast<int64_t>(rax);
  return v == -kERestartSys || v == -kERestartNoIntr || v == -kERestartNoHand || v == -kERestartRestartBlock;
}

std::optional<uint64_t> restarted_rax(uint64_t rax, int64_t nr) {
  if (nr < 0 || !is_restart_code(rax)) return std::nullopt;
  if (static_cast<int64_t>(rax) == -kERestartRestartBlock) return kNrRestartSyscall;
  return static_cast<uint64_t>(nr);
}

}  // namespace gort::core
