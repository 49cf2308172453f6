#pragma once
// Which probes `gort break maps` / `gort break wb` arm, in debug-register priority order,
// and the names their hits print. Shared by the LLDB plugin and the GDB extension.

#include "core/disasm/probe_plan.h"
#include "core/util/result.h"

#include <string>
#include <vector>

namespace gort::core::front {

/// The map-write probes (assign, delete, clear) of PLAN, restricted to FUNCS when not
/// empty, the variants ordinary code calls most first (mapassign_fast64, _faststr,
/// mapassign, _fast32): the first four get the debug registers. kBadInput names a FUNCS
/// entry that is not a map-write function, or says the binary has none.
Result<std::vector<Probe>> select_map_probes(const ProbePlan& plan, const std::vector<std::string>& funcs);

/// The gcWriteBarrierN probes, gcWriteBarrier2, 1, 4, 3 first (2 serves a single pointer
/// store, 1 a store into zeroed memory, 4 two batched stores). kBadInput when there is none.
Result<std::vector<Probe>> select_wb_probes(const ProbePlan& plan);

bool is_map_write(ProbeRole r);

/// "assign", "delete", "clear" for map writes; "write-barrier" for gcWriteBarrierN.
const char* probe_label(const Probe& p);

/// For a watchpoint hit on a map's writing flag: "write-begin" or "write-end" when the
/// link-time RIP after the store follows one of PLAN's flag sites, else "".
std::string watch_op(const ProbePlan& plan, uint64_t rip_link);

}  // namespace gort::core::front
