#pragma once
// The probe plan: for every map-write function in a Go binary, its entry, the
// instructions that set and clear the map's writing flag, and its RETs; plus the write
// barrier entries and checkptr hooks. Found with Capstone from the instruction stream,
// per Go version and map implementation (../shared/reference/go-runtime.md sections 1-4, 8).

#include "core/util/remote_addr.h"
#include "core/util/result.h"

#include <string>
#include <vector>

namespace gort::core {

class GoBinary;

enum class ProbeRole { kMapAssign, kMapDelete, kMapClear, kMapClone, kWriteBarrier, kCheckptr, kMapCreate };
/// "map-assign", "map-delete", "map-clear", "map-clone", "write-barrier", "checkptr", "map-create"
const char* to_string(ProbeRole r);

/// x86-64 general register, named as in AT&T-less lowercase ("rbx").
struct FlagSite {
  RemoteAddr addr;        ///< the store instruction that sets/clears the flag
  std::string base_reg;   ///< its base register: holds the map pointer at that instruction
  uint32_t disp = 0;      ///< its displacement (hmap flags 0x08, swiss writing 0x22)
  uint8_t length = 0;     ///< instruction length
};

struct Probe {
  std::string function;            ///< pclntab name, e.g. "runtime.mapassign_faststr"
  ProbeRole role = ProbeRole::kMapAssign;
  RemoteAddr entry, end;
  std::string map_reg;             ///< register holding the map at entry ("rbx"; "rax" for (*Map) methods), "" if n/a
  std::string key_reg;             ///< register holding the key (or key pointer) at entry, "" if none
  std::string key_kind;            ///< "u32", "u64", "ptr", "str" (ptr+len in rcx/rdi), "indirect", ""
  std::vector<FlagSite> write_begin;
  std::vector<FlagSite> write_end;
  std::vector<RemoteAddr> returns; ///< every RET in the function
};

struct ProbePlan {
  std::vector<Probe> probes;
  /// The functions that create maps (role kMapCreate): every RET, where map_reg holds the
  /// new map. Kept apart from PROBES, which are the functions that write maps.
  std::vector<Probe> creators;
  std::vector<std::string> warnings;  ///< e.g. "runtime.mapassign: no flag set found"
};

/// Builds the plan for BIN. Missing optional functions (dead-code eliminated) are simply
/// absent; a map-write function whose flag sites cannot be found is a warning, not an error.
/// Also adds a warning for every function find_unplanned_flag_writers reports.
Result<ProbePlan> build_probe_plan(const GoBinary& bin);

/// Coverage check: every `runtime.*` / `internal/runtime/maps.*` function of BIN that sets
/// or clears the map writing flag (of BIN's map implementation) but has no probe in PLAN.
/// Empty when the plan covers every flag writer.
Result<std::vector<std::string>> find_unplanned_flag_writers(const GoBinary& bin, const ProbePlan& plan);

}  // namespace gort::core
