#pragma once
// Pattern matchers over decoded instructions: the stores that set and clear a Go map's
// "writing" flag, and the RETs of a function. They work on plain instruction vectors, so
// they are unit-tested on byte arrays without any binary.
// Facts: ../shared/reference/go-runtime.md section 2 (flag offsets and code shapes).

#include "core/disasm/decoder.h"
#include "core/goruntime/versions.h"

#include <vector>

namespace gort::core {

/// Where the writing flag lives and how it is written, for one map implementation.
struct FlagSpec {
  MapImpl impl = MapImpl::kHmap;
  uint32_t disp = 0x08;  ///< hmap.flags at +0x08; swiss Map.writing at +0x22
  uint8_t bit = 0x04;    ///< hmap hashWriting = 4; swiss toggles the whole byte with ^= 1
};
/// The spec for IMPL with the default offsets (reference section 2.1).
FlagSpec default_flag_spec(MapImpl impl);

/// What a store does to the flag bit.
enum class FlagEffect : uint8_t { kSet, kClear, kToggle };

/// A store of the flag byte whose value was loaded from the same field and changed in
/// the flag bit (`MOVZX d(R),X; XORL $4,X; MOVB X,d(R)`), or a one-instruction
/// read-modify-write (`XORB $1, d(R)`).
struct FlagStore {
  RemoteAddr addr;        ///< the store instruction
  uint8_t length = 0;
  Reg base = Reg::kNone;  ///< holds the map pointer at the store
  uint32_t disp = 0;
  FlagEffect effect = FlagEffect::kToggle;
  RemoteAddr load;        ///< where the value was loaded (== addr for one-instruction forms)
};

struct FlagSites {
  std::vector<FlagStore> begin;      ///< the flag goes 0 -> 1: a write starts
  std::vector<FlagStore> end;        ///< the flag goes 1 -> 0: a write ends
  std::vector<FlagStore> ambiguous;  ///< toggles reached both with and without the flag held
  bool empty() const { return begin.empty() && end.empty() && ambiguous.empty(); }
};

/// Every flag store in INSNS (one function, in address order), unclassified. Tracks the
/// loaded byte through register copies and interleaved instructions within a basic block.
std::vector<FlagStore> match_flag_stores(const std::vector<Insn>& insns, const FlagSpec& spec);

/// Matches and classifies the flag stores of one function. Set/clear effects are taken at
/// face value; a toggle (swiss `^= 1`, hmap `^= hashWriting`) is classified by a forward
/// data-flow pass over the function's control flow from its entry (INSNS[0]): a toggle
/// reached only with the flag clear begins a write, one reached only with it held ends it.
FlagSites find_flag_sites(const std::vector<Insn>& insns, const FlagSpec& spec);

/// Every RET (0xc3 / 0xc2) in INSNS.
std::vector<RemoteAddr> find_returns(const std::vector<Insn>& insns);

}  // namespace gort::core
