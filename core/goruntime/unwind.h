#pragma once
// Frame-pointer unwinding of one goroutine stack, symbolized with pclntab (inlined
// frames included). ../shared/reference/go-runtime.md section 10.

#include "core/binary/pclntab.h"
#include "core/target/memory.h"

#include <vector>

namespace gort::core {

struct UnwindStart {
  RemoteAddr pc, sp, bp;  ///< runtime addresses
  /// True for a saved g.sched (PC is a return address: symbolize PC-1, as Go's
  /// traceback does); false for a thread's live registers (PC is the current instruction).
  bool pc_is_return_address = false;
};

struct StackFrame {
  RemoteAddr pc;                     ///< runtime address of the frame's PC
  RemoteAddr sp;                     ///< the frame's SP (callee's CFA for callers)
  std::vector<SourceFrame> sources;  ///< innermost inlined first; empty: PC in no Go function
  std::string_view function() const { return sources.empty() ? std::string_view() : sources.back().function; }
};

struct UnwindOptions {
  size_t max_frames = 256;
};

struct Unwound {
  std::vector<StackFrame> frames;
  std::string stop_reason;  ///< "runtime.goexit", "bp 0x0", "frame limit", "pc 0x... in no Go function", ...
};

/// Walks from START: the innermost frame's caller is found with the pcsp table (CFA = SP +
/// frame size + 8, so a PC at a function's entry, before PUSH BP, or in a frameless leaf
/// is handled); every further caller through the BP chain ([BP] = caller BP, [BP+8] =
/// return address). Stops at runtime.goexit, a null/non-increasing BP, an unreadable
/// word, a PC outside Go code or after max_frames. SLIDE: runtime - link-time addresses.
Result<Unwound> unwind(const Memory& mem, const Pclntab& pcln, int64_t slide, UnwindStart start,
                       UnwindOptions opts = {});

}  // namespace gort::core
