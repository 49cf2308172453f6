#pragma once
// Target memory and threads: the one small interface through which core/ reads a Go
// program, whatever holds it: an LLDB process (plugin adapter), a live pid
// (/proc/PID/mem), an ELF core file, or fake bytes in unit tests.

#include "core/util/remote_addr.h"
#include "core/util/result.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace gort::core {

class Memory {
 public:
  virtual ~Memory() = default;
  /// Reads exactly out.size() bytes at ADDR; an Error (kIo) names the address on failure.
  virtual Result<void> read(RemoteAddr addr, std::span<uint8_t> out) const = 0;

  template <typename T>
  Result<T> read_value(RemoteAddr addr) const {
    T v{};
    auto r = read(addr, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), sizeof v));
    if (!r) return r.error();
    return v;
  }
  Result<uint64_t> read_u64(RemoteAddr a) const { return read_value<uint64_t>(a); }
  Result<uint32_t> read_u32(RemoteAddr a) const { return read_value<uint32_t>(a); }
  Result<uint8_t> read_u8(RemoteAddr a) const { return read_value<uint8_t>(a); }
  Result<RemoteAddr> read_ptr(RemoteAddr a) const {
    auto v = read_u64(a);
    if (!v) return v.error();
    return RemoteAddr(*v);
  }
};

/// The registers gort needs from one thread (x86-64).
struct ThreadRegs {
  uint64_t tid = 0;
  uint64_t rip = 0, rsp = 0, rbp = 0;
  uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0;
  uint64_t r8 = 0, r9 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  uint64_t fs_base = 0;
  std::string stop_reason;  ///< e.g. "signal SIGTRAP", "" if unknown
};

/// The general register named NAME ("rax" ... "r15", "rip", "rsp", "rbp") in R; 0 for an
/// unknown name.
uint64_t reg_value(const ThreadRegs& r, std::string_view name);
/// The ThreadRegs member of the register named NAME, or nullptr: resolve a name once,
/// read it per event.
uint64_t ThreadRegs::*reg_member(std::string_view name);

/// Threads of a stopped target (process or core).
class Threads {
 public:
  virtual ~Threads() = default;
  virtual Result<std::vector<ThreadRegs>> threads() const = 0;
};

/// Memory of a live process through /proc/PID/mem (works on ptrace-stopped and running
/// processes as root; ../shared/reference/platform.md).
class ProcMemory final : public Memory {
 public:
  static Result<std::unique_ptr<ProcMemory>> open(int pid);
  ~ProcMemory() override;
  Result<void> read(RemoteAddr addr, std::span<uint8_t> out) const override;
  int pid() const { return pid_; }

 private:
  ProcMemory(int pid, int fd) : pid_(pid), fd_(fd) {}
  int pid_;
  int fd_;
};

/// Fake memory for unit tests: a set of (address, bytes) regions.
class FakeMemory final : public Memory {
 public:
  void add(RemoteAddr at, std::vector<uint8_t> bytes) { regions_.push_back({at, std::move(bytes)}); }
  template <typename T>
  void put(RemoteAddr at, const T& v) {
    std::vector<uint8_t> b(sizeof v);
    std::memcpy(b.data(), &v, sizeof v);
    add(at, std::move(b));
  }
  Result<void> read(RemoteAddr addr, std::span<uint8_t> out) const override {
    for (auto it = regions_.rbegin(); it != regions_.rend(); ++it) {
      auto& [base, bytes] = *it;
      if (base <= addr && addr.value() + out.size() <= base.value() + bytes.size()) {
        std::memcpy(out.data(), bytes.data() + (addr - base), out.size());
        return {};
      }
    }
    return make_error(ErrorKind::kIo, "cannot read {} bytes at {}: not mapped", out.size(), addr);
  }

 private:
  std::vector<std::pair<RemoteAddr, std::vector<uint8_t>>> regions_;
};

}  // namespace gort::core
