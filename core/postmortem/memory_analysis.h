#pragma once
// The postmortem analysis from memory: a core file (`gort postmortem BIN CORE`) or a
// stopped process / core in LLDB (`gort crash`), into the shared Verdict (verdict.h).
//
// 1. Threads: a thread whose registers are in Go's signal handling (GOTRACEBACK=crash
//    relays SIGQUIT to every thread; SIGABRT is forwarded by sigtramp; async preemption
//    uses SIGURG) has its interrupted state in the rt_sigframe the kernel pushed on the
//    signal stack. gort finds it by scanning the stack up from RSP for the frame's first
//    word, the restorer Go installs (runtime.sigreturn__sigaction, sa_restorer), and
//    checks the ucontext after it (saved RSP/RIP plausible). The interrupted registers
//    (uc_mcontext) replace the handler's when the interrupted code was running the
//    goroutine being unwound.
// 2. Goroutines from allgs, each unwound (running: the thread's registers or its recovered
//    signal context; parked or preempted: g.sched), symbolized with pclntab.
// 3. The thrower: the goroutine with runtime.fatal / runtime.throw / maps.fatal on its
//    stack (a running one first). The message: the string argument of runtime.fatal or
//    runtime.throw, read from its argument spill slots; else inferred from the map
//    function it was called from ("concurrent map writes" for assign/delete/clear).
// 4. Map operations: runtime.mapassign*, mapdelete*, mapclear, mapaccess*, mapiternext,
//    mapclone and internal/runtime/maps methods. The map pointer is read from the map
//    function's argument spill slot (ABIInternal spills RBX, the map, to CFA+8 for
//    runtime.map*(t, m, ...); the receiver RAX to CFA+0 for (*maps.Map) methods) and
//    accepted only when a map header decodes there. The verdict's map is the thrower's;
//    other goroutines in a map write on that map (or on an unknown one) are the other
//    writers.

#include "core/binary/go_binary.h"
#include "core/postmortem/verdict.h"
#include "core/target/memory.h"

#include <vector>

namespace gort::core::postmortem {

struct MemoryEvidence {
  const GoBinary* bin = nullptr;
  const Memory* mem = nullptr;
  std::vector<ThreadRegs> threads;
  int64_t slide = 0;     ///< runtime - link-time addresses (PIE)
  std::string source;    ///< "core file", "LLDB process": for notes
};

/// A recovered signal context: the registers the kernel saved when the signal interrupted
/// the thread, and where the ucontext was found.
struct SignalContext {
  ThreadRegs regs;       ///< tid and fs_base from the thread; the rest from uc_mcontext
  RemoteAddr ucontext;   ///< address of the ucontext_t
};

/// The interrupted context of a thread stopped inside a Go signal handler (see above);
/// kNotFound when THREAD is not in one.
Result<SignalContext> recover_signal_context(const GoBinary& bin, const Memory& mem, int64_t slide,
                                             const ThreadRegs& thread);

/// The whole analysis. Errors only when nothing can be read (no allgs, wrong binary).
Result<Verdict> analyze_memory(const MemoryEvidence& ev);

}  // namespace gort::core::postmortem
