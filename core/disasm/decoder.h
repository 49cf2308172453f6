#pragma once
// Decoder: a small RAII wrapper over Capstone (x86-64, detail mode) that turns a span of
// machine code into compact instruction records: what the probe planner and the pattern
// matchers need, and nothing of Capstone's own types (it is linked privately to gort_core).

#include "core/util/bytes.h"
#include "core/util/remote_addr.h"
#include "core/util/result.h"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gort::core {

/// x86-64 general-purpose registers, by their 64-bit name. Sub-registers (cl, esi, r8b)
/// map to their parent; `width` on the operand says which part was named.
enum class Reg : uint8_t {
  kNone, kRax, kRbx, kRcx, kRdx, kRsi, kRdi, kRbp, kRsp,
  kR8, kR9, kR10, kR11, kR12, kR13, kR14, kR15, kRip,
  kOther,  ///< segment, vector, flags, ...: not tracked
};
const char* to_string(Reg r);  ///< "rax" ... "r15", "rip", "" for kNone, "other"

/// The instructions the matchers care about; everything else is kOther (see Insn::id).
enum class Mnem : uint8_t {
  kOther, kMov, kMovzx, kMovsx, kLea, kXor, kAnd, kOr, kBts, kBtr, kBtc, kCmp, kTest,
  kRet, kCall, kJmp, kJcc, kInt3, kUd2, kNop,
  kCmpxchg, kXadd, kXchg,  ///< the atomics of sync.Mutex & co. (see Insn::lock)
};

struct Operand {
  enum class Kind : uint8_t { kNone, kReg, kImm, kMem };
  Kind kind = Kind::kNone;
  uint8_t size = 0;      ///< operand size in bytes
  Reg reg = Reg::kNone;  ///< kReg
  int64_t imm = 0;       ///< kImm (sign-extended as Capstone reports it)
  Reg base = Reg::kNone, index = Reg::kNone;  ///< kMem
  uint8_t scale = 0;
  int64_t disp = 0;

  bool is_reg() const { return kind == Kind::kReg; }
  bool is_imm() const { return kind == Kind::kImm; }
  bool is_mem() const { return kind == Kind::kMem; }
};

/// One decoded instruction. Operands are in Intel order: operands[0] is the destination.
struct Insn {
  RemoteAddr addr;
  uint8_t size = 0;
  Mnem mnem = Mnem::kOther;
  uint32_t id = 0;         ///< Capstone x86_insn id (for diagnostics and rare cases)
  uint8_t op_count = 0;
  std::array<Operand, 3> ops{};
  std::optional<RemoteAddr> target;  ///< direct CALL/JMP/Jcc target
  bool invalid = false;    ///< a byte Capstone could not decode (size 1)
  bool lock = false;       ///< LOCK prefix (XCHG with a memory operand is locked without it)
  /// Offset of the displacement bytes in the instruction (0: none): where a relocated copy
  /// of a RIP-relative instruction gets its new displacement (core/inproc).
  uint8_t disp_offset = 0;
  uint8_t disp_size = 0;
  /// Registers this instruction writes, explicitly or implicitly (bit 1 << Reg). A CALL
  /// reports only RSP: what the callee clobbers is the ABI's business, not the decoder's.
  uint32_t regs_written = 0;

  bool writes(Reg r) const { return regs_written & (1u << static_cast<unsigned>(r)); }

  RemoteAddr next() const { return addr + size; }
  bool is_ret() const { return mnem == Mnem::kRet; }
  bool is_call() const { return mnem == Mnem::kCall; }
  bool is_jump() const { return mnem == Mnem::kJmp || mnem == Mnem::kJcc; }
};

class Decoder {
 public:
  /// Opens a Capstone handle for x86-64 with detail on. Error only if Capstone refuses.
  static Result<Decoder> create();
  ~Decoder();
  Decoder(Decoder&& o) noexcept;
  Decoder& operator=(Decoder&& o) noexcept;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  /// Decodes all of CODE, which starts at ADDR. Undecodable bytes become one-byte
  /// `invalid` records, so the output always covers the span exactly.
  std::vector<Insn> decode(Bytes code, RemoteAddr addr) const;
  /// Capstone's text for one instruction at ADDR ("xor ecx, 4"), for messages and tests.
  std::string text(Bytes code, RemoteAddr addr) const;

 private:
  struct Handle;
  explicit Decoder(std::unique_ptr<Handle> h);
  std::unique_ptr<Handle> h_;
};

}  // namespace gort::core
