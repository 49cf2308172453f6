#pragma once
// What a write-barrier hit writes: from the caller's instruction stream, the slot and new
// value of every pointer store that the runtime.gcWriteBarrierN call guards.
//
// Go 1.21+ barriers only reserve N slots of the per-P buffer (R11 = the space) and return;
// the caller fills the buffer with new values and the slots' old values, then does the
// real stores itself (../shared/reference/go-runtime.md section 4.3):
//   1.21-1.24:  CALL gcWriteBarrierN; MOVQ new,0(R11); MOVQ 0(AX),DX; MOVQ DX,8(R11) ... dowrite: MOVQ new,0(AX)
//   1.25-1.26:  MOVQ 0(AX),DX; CALL gcWriteBarrierN; MOVQ new,0(R11); MOVQ DX,8(R11) ... dowrite: MOVQ new,0(AX)
// New values may be reloaded from stack spills after the CALL. So resolving a hit is a
// small concrete evaluation: registers at the barrier's entry (all GPRs but R11 survive
// the call), loads before the CALL traced backwards to their addresses, the code after
// the CALL run forward (following a JMP) through the buffer fill to the real stores.

#include "core/disasm/decoder.h"
#include "core/target/memory.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace gort::core {

struct WbWrite {
  RemoteAddr slot;                ///< the pointer slot being written
  std::optional<uint64_t> value;  ///< the new pointer, when the evaluation could tell
  RemoteAddr store_pc;            ///< the caller's real store instruction
};

struct WbHit {
  std::vector<WbWrite> writes;
  size_t buffer_entries = 0;  ///< pointers the caller put in the barrier buffer
  std::string note;           ///< why something could not be resolved, or ""
};

using ReadU64 = std::function<std::optional<uint64_t>(RemoteAddr)>;

/// FN: the caller's whole function, decoded. RET: the return address of the
/// gcWriteBarrierN call (= [rsp] at the barrier's entry). REGS: registers at the entry.
/// READ: target memory (stack spills and old values); may return nullopt.
/// Errors only when RET does not follow a CALL in FN.
Result<WbHit> resolve_wb_hit(const std::vector<Insn>& fn, RemoteAddr ret, const ThreadRegs& regs, const ReadU64& read);

}  // namespace gort::core
