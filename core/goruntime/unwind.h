#pragma once
// Frame-pointer unwinding of one goroutine stack, symbolized with pclntab (inlined
// frames included). ../shared/reference/go-runtime.md section 10.

#include "core/binary/pclntab.h"
#include "core/goruntime/goroutines.h"
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

/// Where to start unwinding G: the registers of the thread that runs it when its TLS g is
/// G itself (the thread is in G's own code), else the saved g.sched (a parked goroutine, or
/// one whose thread is on the system stack or in a syscall: the runtime saved its state).
/// THREAD_OUT gets the tid of the thread whose registers were used, 0 for g.sched.
UnwindStart unwind_start_for(const Memory& mem, const Goroutine& g, const std::vector<ThreadRegs>& threads,
                             uint64_t* thread_out = nullptr);

/// True for a function of the Go standard library or runtime: its package path has no
/// dot in its first element ("runtime.gopark", "internal/sync.(*Mutex).lockSlow",
/// "sync.(*Mutex).Lock"); false for "main.f" and "example.com/x.F".
bool is_stdlib_function(std::string_view name);

/// The frame of U whose stack range, [its SP, its caller's SP), holds ADDR (the outermost
/// frame's range ends at STACK_HI); null when none does or that frame has no source frames.
const StackFrame* frame_holding(const Unwound& u, RemoteAddr addr, RemoteAddr stack_hi);

/// The innermost frame in user code (not standard library); else the innermost frame that
/// is not in package runtime; else the innermost frame. Null when FRAMES is empty.
const SourceFrame* innermost_user_frame(const Unwound& u);

}  // namespace gort::core
