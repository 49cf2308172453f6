#pragma once
// Synchronization probe sites for happens-before recording (`gort record --sync`,
// docs/happens-before.md): where a Go binary locks and unlocks sync.Mutex / RWMutex,
// sends, receives, closes and selects on channels, waits on a WaitGroup, runs a Once, and
// creates goroutines; and, with READS, where it reads maps. What each site means is the
// kSyncOps table in core/trace/trace.h.
//
// Mutex.Lock/Unlock, RWMutex.RLock/RUnlock and Once.Do are inlined into their callers, so
// their sites are found the way ../shared/design.md describes: the pclntab inline tree
// says where those functions were inlined, and Capstone finds there the LOCK CMPXCHG
// (Lock's fast path), LOCK XADD (Unlock, RLock, RUnlock) and the load of Once.done. The
// object is the memory operand's address less the field's offset (RuntimeLayouts): a
// register plus displacement, or a fixed address for package-level variables (RIP-relative).
// Acquires are probed at the instruction after the atomic (the acquire has happened when
// the probe fires), releases at the atomic itself (before it happens).
//
// The slow paths and the functions Go never inlines are probed at their entry and RETs.
// The names (sync vs internal/sync from Go 1.24) are the one place that knows them here.

#include "core/trace/trace.h"
#include "core/util/remote_addr.h"
#include "core/util/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gort::core {

class GoBinary;

struct SyncSite {
  trace::SiteKind kind = trace::SiteKind::kAcquire;
  std::string op;              ///< one of trace::kSyncOps, or "read" for kMapRead
  std::string function;        ///< the physical function holding the site
  std::string inlined;         ///< the sync function inlined there ("" when not inlined)
  RemoteAddr addr;             ///< link-time address of the probed instruction
  /// The object: obj_reg + obj_off at the probe; or obj_link (a link-time address: a
  /// package-level variable) when set.
  std::string obj_reg;
  int64_t obj_off = 0;
  std::optional<uint64_t> obj_link;
  /// ... or the 8 bytes at rsp + obj_rsp_slot, plus obj_off, when set: the object's
  /// register is loaded from that stack slot by the probed instruction itself.
  std::optional<int64_t> obj_rsp_slot;
  std::string key_reg;         ///< "wg.add": the delta; "select" return: the chosen case
  std::string g_reg = "r14";   ///< kGoCreate: the creating goroutine's g (newproc1's callergp)
  /// The acquire happened only when this register's low 32 bits are 0 (Lock's fast-path
  /// CMPXCHG expects 0: on failure the accumulator holds the nonzero state).
  std::string acquired_if_zero;
  bool ret_at_rsp = false;     ///< function entry or RET: [rsp] is the caller's return address
  /// runtime.selectgo entry: the cases are read from the stack bytes (cas0 in RAX,
  /// nsends in RDI, nrecvs in RSI); the probe needs select_stack_bytes of stack.
  bool select_entry = false;
};

/// How SITE's object is found, for people: "0x59bc10", "rax+0x0", "[rsp+0x28]+0x0" or "-".
std::string object_text(const SyncSite& site);

/// Stack bytes a selectgo entry probe captures: its cases live in the caller's frame.
inline constexpr uint32_t kSelectStackBytes = 4096;

struct SyncPlan {
  std::vector<SyncSite> sites;
  std::vector<std::string> warnings;  ///< what cannot be recorded (an unknown layout, ...)
  size_t inlined_sites = 0;           ///< sites found inside callers through the inline tree
};

/// Finds every synchronization site of BIN (and map-read entries when READS).
Result<SyncPlan> build_sync_plan(const GoBinary& bin, bool reads);

}  // namespace gort::core
