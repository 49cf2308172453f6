#pragma once
// In-process probes (docs/inproc.md): a probe site's first instructions are replaced by a
// 5-byte JMP to a trampoline in a code page gort maps into the program. The trampoline
// appends one record (time, cookie, thread, every general register, a few stack words and
// a frame-pointer call chain) to a ring in the program's memory, runs the displaced
// instructions relocated, and jumps back. No trap, no syscall: tens of nanoseconds a hit.
//
// This file knows x86-64 and the shape of Go's code; it does not touch a process. The
// ring's layout here is the one contract between the trampolines and the reader
// (inproc_probes.cpp).

#include "core/disasm/decoder.h"
#include "core/util/bytes.h"
#include "core/util/remote_addr.h"
#include "core/util/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gort::core {
class GoBinary;
}

namespace gort::core::inproc {

/// The ring: a control block, then `slots` records of kRecord bytes. Producers (the
/// trampolines) reserve a slot with LOCK XADD on head, drop (and count) when the slot is
/// not yet read, fill it and publish it by writing seq = index + 1 last. The reader
/// advances tail. A record's cookie has bit 31 set for TrampolineParams::on_stack_reg.
namespace ring {
// head (producers), tail (the reader) and drops on cache lines of their own: a reader
// writing tail next to head made every producer CMPXCHG miss.
constexpr uint64_t kHead = 0, kTail = 128, kDrops = 256, kMagic = 384, kSlots = 392;
constexpr uint64_t kMagicValue = 0x31676e69722d6f67ull;  // "go-ring1"
constexpr uint64_t kDataOffset = 4096;
constexpr uint64_t kRecord = 128;  ///< two cache lines: a hit costs what it writes
// Record fields.
/// kDropsSeen: the low 32 bits of the drop counter when the record was taken: a change
/// between two records says hits were dropped between them.
constexpr int32_t kSeq = 0, kTsc = 8, kCookie = 16, kCpu = 20, kTid = 24, kDropsSeen = 28, kRegs = 32, kStack = 64,
                  kChain = 80;
constexpr int kRegWords = 4;    ///< the registers the site's event needs (ProbeSpec::regs)
constexpr int kStackWords = 2;  ///< [rsp] and one more stack word (TrampolineParams::stack_word)
constexpr int kChainWords = 6;  ///< return addresses from the frame-pointer chain
/// Or, at a site that gathers words (ProbeSpec::Gather), up to 5 of them, then their count.
constexpr int kGatherWords = kChainWords - 1;
/// Where the second recorded stack word lies for a site that needs STACK_BYTES bytes from
/// rsp: its last word (the first is [rsp]).
inline uint32_t second_stack_word(uint32_t stack_bytes) { return stack_bytes <= 16 ? 8 : (stack_bytes - 8) & ~7u; }
}  // namespace ring

/// How one site is patched. Addresses are link-time.
struct SitePatch {
  RemoteAddr site;               ///< the probed instruction: the event is its state
  RemoteAddr start;              ///< the first byte the JMP replaces (SITE, or just before it)
  uint8_t length = 0;            ///< bytes the JMP replaces (>= 5; the rest become INT3)
  /// The first BEFORE displaced instructions run before the record: at a function's entry
  /// Go's stack check (morestack re-enters the function at its entry, so recording first
  /// would count every stack growth twice); or the instructions just before SITE when the
  /// ones after it cannot be moved (a RET, a CALL).
  size_t before = 0;
  /// The status flags are dead where the record runs (after an entry's stack check, before
  /// a RET, or before an instruction that writes all of them without reading any): the
  /// trampoline need not save them (POPFQ alone cost ~10 ns a hit here).
  bool flags_dead = false;
  std::vector<Insn> displaced;
  std::vector<uint8_t> original;  ///< the LENGTH bytes at START
};

/// Decides how to patch SITE of the function whose code is FUNC_CODE at FUNC_ENTRY, or says
/// why it cannot be patched safely (an instruction that cannot be relocated, a branch into
/// the bytes the JMP would cover, an indirect jump in the function, the function's end).
Result<SitePatch> plan_patch(const Decoder& dec, Bytes func_code, RemoteAddr func_entry, RemoteAddr site);

struct TrampolineParams {
  uint64_t ring = 0;       ///< runtime address of the ring's control block
  uint64_t slots = 0;      ///< power of two
  uint32_t cookie = 0;
  int64_t slide = 0;       ///< runtime - link-time address
  /// Offsets of g.m and m.procid (the thread id), when known; else the tid is 0.
  std::optional<uint32_t> g_m, m_procid;
  uint32_t g_stack_lo = 0, g_stack_hi = 8;
  /// The registers to record, by name ("r14", "rbx", ...), at most ring::kRegWords.
  std::vector<std::string> regs;
  /// The second stack word recorded is [rsp + STACK_WORD] (the first is [rsp]): e.g. an
  /// argument a sync event's object is read from.
  uint32_t stack_word = 8;
  /// Instead of the frame-pointer chain, copy [GATHER_BASE + i*STRIDE + OFFSET] for i <
  /// kChainWords (those inside the g's stack) into the chain words, and rsp into the second
  /// stack word (ProbeSpec::Gather).
  std::optional<std::string> gather_base;
  uint32_t gather_stride = 0, gather_offset = 0;
  /// Also record the frame-pointer chain (bounded by the g's stack).
  bool chain = true;
  /// Set bit 31 of the record's cookie when this register's value lies in [the site's rsp,
  /// g.stack.hi): a map on the goroutine's own stack (ProbeSpec::on_stack_reg).
  std::optional<std::string> on_stack_reg;
};

/// The trampoline of PATCH placed at runtime address AT.
Result<std::vector<uint8_t>> build_trampoline(const SitePatch& patch, const TrampolineParams& p, uint64_t at);

/// The bytes written over the site: JMP rel32 to TRAMPOLINE (runtime address), INT3 fill.
Result<std::vector<uint8_t>> jump_bytes(const SitePatch& patch, int64_t slide, uint64_t trampoline);

/// A SYSCALL instruction (link-time address) in BIN's runtime, for injecting system calls.
Result<RemoteAddr> find_syscall_insn(const GoBinary& bin, const Decoder& dec);

}  // namespace gort::core::inproc
