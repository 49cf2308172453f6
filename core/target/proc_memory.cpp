// ProcMemory: pread on /proc/PID/mem. As root this works on running, ptrace-stopped and
// lldb-server-held processes (~1.5 us per small read; platform.md). ESRCH / EIO after
// exit become "process gone" errors.

#include "core/target/memory.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace gort::core {

Result<std::unique_ptr<ProcMemory>> ProcMemory::open(int pid) {
  std::string path = fmt::format("/proc/{}/mem", pid);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return make_error(ErrorKind::kBadInput, "no process {} (exited?)", pid);
    if (e == EACCES || e == EPERM)
      return make_error(ErrorKind::kIo, "cannot read memory of process {}: permission denied (run as root or the same user with ptrace allowed)", pid);
    return make_error(ErrorKind::kIo, "cannot open {}: {}", path, std::strerror(e));
  }
  return std::unique_ptr<ProcMemory>(new ProcMemory(pid, fd));
}

ProcMemory::~ProcMemory() { ::close(fd_); }

namespace {

// Whether PID has exited: gone, or a zombie (its memory is released at exit, before the
// parent reaps it; /proc/PID/mem then reads nothing).
bool has_exited(int pid) {
  char buf[512];
  int fd = ::open(fmt::format("/proc/{}/stat", pid).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return true;
  buf[n] = 0;
  const char* close_paren = strrchr(buf, ')');  // comm may hold spaces and parentheses
  return close_paren && close_paren[1] == ' ' && (close_paren[2] == 'Z' || close_paren[2] == 'X');
}

}  // namespace

Result<void> ProcMemory::read(RemoteAddr addr, std::span<uint8_t> out) const {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(addr.value() + done));
    if (n > 0) { done += n; continue; }
    if (n < 0 && errno == EINTR) continue;
    if ((n == 0 || errno == EIO || errno == ESRCH) && has_exited(pid_))
      return make_error(ErrorKind::kIo, "cannot read {} bytes at {}: process {} has exited", out.size(), addr, pid_);
    if (n == 0 || errno == EIO || errno == EFAULT)
      return make_error(ErrorKind::kIo, "cannot read {} bytes at {} in process {}: not mapped", out.size(), addr, pid_);
    if (errno == ESRCH) return make_error(ErrorKind::kIo, "process {} is gone", pid_);
    return make_error(ErrorKind::kIo, "cannot read {} bytes at {} in process {}: {}", out.size(), addr, pid_, std::strerror(errno));
  }
  return {};
}

uint64_t ThreadRegs::*reg_member(std::string_view name) {
  static constexpr std::pair<std::string_view, uint64_t ThreadRegs::*> kRegs[] = {
      {"rax", &ThreadRegs::rax}, {"rbx", &ThreadRegs::rbx}, {"rcx", &ThreadRegs::rcx}, {"rdx", &ThreadRegs::rdx},
      {"rsi", &ThreadRegs::rsi}, {"rdi", &ThreadRegs::rdi}, {"rbp", &ThreadRegs::rbp}, {"rsp", &ThreadRegs::rsp},
      {"r8", &ThreadRegs::r8},   {"r9", &ThreadRegs::r9},   {"r10", &ThreadRegs::r10}, {"r11", &ThreadRegs::r11},
      {"r12", &ThreadRegs::r12}, {"r13", &ThreadRegs::r13}, {"r14", &ThreadRegs::r14}, {"r15", &ThreadRegs::r15},
      {"rip", &ThreadRegs::rip}};
  for (auto& [n, m] : kRegs)
    if (n == name) return m;
  return nullptr;
}

uint64_t reg_value(const ThreadRegs& r, std::string_view name) {
  auto m = reg_member(name);
  return m ? r.*m : 0;
}

}  // namespace gort::core
