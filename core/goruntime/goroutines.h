#pragma once
// Goroutines of a stopped target, read through Memory: the allgs list, each g's identity,
// status, wait reason, M/thread and saved scheduling state.
// ../shared/reference/go-runtime.md section 5 (g/m offsets, allgs, status values).
// Addresses: the GoBinary's symbols and pclntab are link-time; a PIE target runs them at
// link + SLIDE. Functions here take runtime addresses and the slide where they need both.

#include "core/binary/go_binary.h"
#include "core/goruntime/layouts.h"
#include "core/target/memory.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gort::core {

/// atomicstatus values (runtime2.go, same numbers in 1.21-1.26; 1.26 adds 10 and 11).
enum GStatus : uint32_t {
  kGidle = 0, kGrunnable = 1, kGrunning = 2, kGsyscall = 3, kGwaiting = 4,
  kGmoribundUnused = 5, kGdead = 6, kGenqueueUnused = 7, kGcopystack = 8, kGpreempted = 9,
  kGleaked = 10,     ///< Go 1.26: a leaked goroutine found by the GC
  kGdeadextra = 11,  ///< Go 1.26: a dead g attached to an extra M (cgo callbacks)
  kGscan = 0x1000,
};

/// "waiting", "running", "scan|waiting", "status(42)" for unknown values.
std::string g_status_name(uint32_t status);
/// The status without the _Gscan bit is _Gdead (or 1.26's _Gdeadextra).
bool g_status_is_dead(uint32_t status);

/// g.waitreason as the runtime prints it ("chan receive", "sleep"), for Go 1.21-1.26. The
/// enum is renumbered between versions (1.26 reorders it); nullopt for an unknown value.
std::optional<std::string_view> wait_reason_name(const GoVersion& v, uint8_t reason);

struct Goroutine {
  RemoteAddr g;              ///< runtime address of the g struct
  uint64_t goid = 0;
  uint32_t status = 0;       ///< raw atomicstatus (may carry kGscan)
  uint8_t wait_reason = 0;   ///< raw g.waitreason
  std::string wait_reason_name;  ///< "" when not waiting
  RemoteAddr m;              ///< g.m (null when not on an M)
  uint64_t thread_id = 0;    ///< m.procid when g.m is set
  RemoteAddr sched_pc, sched_sp, sched_bp;
  RemoteAddr gopc, startpc;  ///< runtime addresses
  RemoteAddr stack_lo, stack_hi;
  bool system = false;       ///< a runtime goroutine (runtime.isSystemGoroutine, roughly)
};

/// Link-time address of `runtime.allgs` ([]*g: ptr @0, len @8). From .symtab when present;
/// in a stripped binary decoded from runtime.forEachG, which loads allgs and allgs+8
/// RIP-relative right after lock(&allglock). HOW says which way it was found.
struct AllgsLocation {
  RemoteAddr addr;
  std::string how;  ///< "symtab" or "decoded from runtime.forEachG"
};
Result<AllgsLocation> find_allgs(const GoBinary& bin);
/// The decoding path alone (tests compare it with the symbol).
Result<AllgsLocation> find_allgs_in_code(const GoBinary& bin);

/// Reads one g at G (runtime address).
Result<Goroutine> read_goroutine(const Memory& mem, const RuntimeLayouts& l, const GoVersion& v, RemoteAddr g);

struct GoroutineListOptions {
  bool include_dead = false;
  size_t max = 1u << 20;  ///< refuse an allgs length above this (corrupt memory)
};
/// Every g in allgs at ALLGS (runtime address), dead ones skipped unless asked.
/// Goroutine::system is left false: classify_system() needs the binary.
Result<std::vector<Goroutine>> read_goroutines(const Memory& mem, const RuntimeLayouts& l, const GoVersion& v,
                                               RemoteAddr allgs, GoroutineListOptions opts = {});

/// Sets Goroutine::system the way runtime.isSystemGoroutine does: started in a runtime.*
/// function other than runtime.main (SLIDE: runtime - link-time addresses).
void classify_system(const Pclntab& pcln, int64_t slide, std::vector<Goroutine>& gs);

/// The g a thread runs: TLS g at fs_base-8 (Go's TLS slot on linux/amd64), else R14.
/// nullopt-like error when neither is a plausible g.
Result<RemoteAddr> thread_g(const Memory& mem, const ThreadRegs& regs);
/// If G is its M's g0 or gsignal (system stack), the user goroutine m.curg; else G.
/// Null when G runs on the system stack with no user goroutine.
Result<RemoteAddr> user_g(const Memory& mem, const RuntimeLayouts& l, RemoteAddr g);

}  // namespace gort::core
