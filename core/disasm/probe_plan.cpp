// Builds the probe plan: for every map-write function in a Go binary, its entry, the stores
// that set/clear the map's writing flag, and its RETs; plus write-barrier and checkptr
// entries. Functions are found by name in pclntab (works stripped); code comes from the ELF.
//
// Facts (../shared/reference/go-runtime.md):
//  * 1.2: the runtime.map* symbols keep their names in swiss builds (push linknames);
//    swiss-only methods live in internal/runtime/maps.(*Map).
//  * 1.3: ABIInternal registers: runtime.map* take (type RAX, map RBX, key RCX[, len RDI]);
//    (*Map) methods take the receiver in RAX. maps.clone takes `any` (type AX, data BX).
//  * 2.3: which functions set/clear the flag themselves. Swiss mapdelete*/mapclear only call
//    (*Map).Delete/Clear; clone and reflect wrappers never touch the flag of the map they
//    write (clones write a private map), so they get entry + RET probes and no warning.
//  * 4.2: runtime.gcWriteBarrier1..8 (1.21+), only those the linker kept.
//  * 8: runtime.checkptrAlignment / checkptrArithmetic in checkptr builds.
//  * 9: RETs get plain probes because uretprobes crash Go programs.

#include "core/disasm/probe_plan.h"

#include "core/binary/go_binary.h"
#include "core/disasm/map_sites.h"

#include <fmt/format.h>

#include <set>

namespace gort::core {

const char* to_string(ProbeRole r) {
  switch (r) {
    case ProbeRole::kMapAssign: return "map-assign";
    case ProbeRole::kMapDelete: return "map-delete";
    case ProbeRole::kMapClear: return "map-clear";
    case ProbeRole::kMapClone: return "map-clone";
    case ProbeRole::kWriteBarrier: return "write-barrier";
    case ProbeRole::kCheckptr: return "checkptr";
    case ProbeRole::kMapCreate: return "map-create";
  }
  return "?";
}

namespace {

// Whether a function is expected to set/clear the flag itself.
enum class Sites { kOwn, kOwnHmap, kNone };

struct MapFunc {
  const char* name;
  ProbeRole role;
  const char* map_reg;
  const char* key_reg;
  const char* key_kind;
  Sites sites;
};

// kOwnHmap: sets the flag in hmap builds; the swiss version delegates to a (*Map) method.
constexpr MapFunc kMapFuncs[] = {
    {"runtime.mapassign", ProbeRole::kMapAssign, "rbx", "rcx", "indirect", Sites::kOwn},
    {"runtime.mapassign_fast32", ProbeRole::kMapAssign, "rbx", "rcx", "u32", Sites::kOwn},
    {"runtime.mapassign_fast32ptr", ProbeRole::kMapAssign, "rbx", "rcx", "ptr", Sites::kOwn},
    {"runtime.mapassign_fast64", ProbeRole::kMapAssign, "rbx", "rcx", "u64", Sites::kOwn},
    {"runtime.mapassign_fast64ptr", ProbeRole::kMapAssign, "rbx", "rcx", "ptr", Sites::kOwn},
    {"runtime.mapassign_faststr", ProbeRole::kMapAssign, "rbx", "rcx", "str", Sites::kOwn},
    {"internal/runtime/maps.(*Map).PutSlot", ProbeRole::kMapAssign, "rax", "rcx", "indirect", Sites::kOwn},
    {"runtime.mapdelete", ProbeRole::kMapDelete, "rbx", "rcx", "indirect", Sites::kOwnHmap},
    {"runtime.mapdelete_fast32", ProbeRole::kMapDelete, "rbx", "rcx", "u32", Sites::kOwnHmap},
    {"runtime.mapdelete_fast64", ProbeRole::kMapDelete, "rbx", "rcx", "u64", Sites::kOwnHmap},
    {"runtime.mapdelete_faststr", ProbeRole::kMapDelete, "rbx", "rcx", "str", Sites::kOwnHmap},
    {"internal/runtime/maps.(*Map).Delete", ProbeRole::kMapDelete, "rax", "rcx", "indirect", Sites::kOwn},
    {"runtime.mapclear", ProbeRole::kMapClear, "rbx", "", "", Sites::kOwnHmap},
    {"internal/runtime/maps.(*Map).Clear", ProbeRole::kMapClear, "rax", "", "", Sites::kOwn},
    // maps.Clone: hmap 1.21+ `runtime.mapclone` is pushed as `maps.clone(m any) any`
    // (map.go:1451@go1.21.13), data word in RBX; it calls mapclone2(t, src) (src in RBX).
    // Swiss 1.26 adds (*Map).Clone (receiver RAX).
    {"maps.clone", ProbeRole::kMapClone, "rbx", "", "", Sites::kNone},
    {"runtime.mapclone", ProbeRole::kMapClone, "rbx", "", "", Sites::kNone},
    {"runtime.mapclone2", ProbeRole::kMapClone, "rbx", "", "", Sites::kNone},
    {"internal/runtime/maps.(*Map).Clone", ProbeRole::kMapClone, "rax", "", "", Sites::kNone},
    // reflect's map writes (reflect.Value.SetMapIndex, reflect.Value.Clear): runtime bodies
    // pushed to reflect names (map.go@go1.21.13, map_swiss.go:261-305@go1.24.4); they call
    // the functions above. Arguments (t, m, key[, elem]): map in RBX.
    {"reflect.mapassign", ProbeRole::kMapAssign, "rbx", "rcx", "indirect", Sites::kNone},
    {"reflect.mapassign0", ProbeRole::kMapAssign, "rbx", "rcx", "indirect", Sites::kNone},
    {"reflect.mapassign_faststr", ProbeRole::kMapAssign, "rbx", "rcx", "str", Sites::kNone},
    {"reflect.mapassign_faststr0", ProbeRole::kMapAssign, "rbx", "rcx", "str", Sites::kNone},
    {"reflect.mapdelete", ProbeRole::kMapDelete, "rbx", "rcx", "indirect", Sites::kNone},
    {"reflect.mapdelete_faststr", ProbeRole::kMapDelete, "rbx", "rcx", "str", Sites::kNone},
    {"reflect.mapclear", ProbeRole::kMapClear, "rbx", "", "", Sites::kNone},
};

// Every function that allocates a map header, per implementation: the new map is in RAX at
// each of its RETs (the result register; a stack header passed in comes back there too).
//  * hmap (1.21-1.23, noswissmap 1.24/1.25): `new(hmap)` exists only in makemap_small and
//    makemap (h == nil) (runtime/map.go, map_noswiss.go); make with a hint, literals,
//    makemap64, reflect.makemap and mapclone2 (maps.Clone) all call one of the two.
//  * swiss (1.24+): internal/runtime/maps.NewMap (maps/map.go; runtime.makemap is inlined
//    into reflect.makemap and 1.24's mapclone2, which call NewMap), runtime.makemap_small
//    (NewEmptyMap inlined), and from 1.25 maps.(*Map).Clone, which does `new(Map)` itself.
// A map the compiler keeps on the stack with a constant hint <= 8 is created by no call
// (cmd/compile/internal/walk/builtin.go walkMakeMap): Event::stack_map covers those.
struct MapCreator {
  const char* name;
  MapImpl impl;
  const char* result_reg;
};
constexpr MapCreator kMapCreators[] = {
    {"runtime.makemap", MapImpl::kHmap, "rax"},
    {"runtime.makemap_small", MapImpl::kHmap, "rax"},
    {"internal/runtime/maps.NewMap", MapImpl::kSwiss, "rax"},
    {"runtime.makemap_small", MapImpl::kSwiss, "rax"},
    {"internal/runtime/maps.(*Map).Clone", MapImpl::kSwiss, "rax"},
};

FlagSpec flag_spec(const GoBinary& bin) {
  FlagSpec spec = default_flag_spec(bin.map_impl());
  const RuntimeLayouts& l = bin.layouts();
  if (spec.impl == MapImpl::kHmap) {
    if (l.has(l.hmap_flags)) spec.disp = l.hmap_flags;
    if (l.hmap_writing_bit) spec.bit = l.hmap_writing_bit;
  } else if (l.has(l.smap_writing)) {
    spec.disp = l.smap_writing;
  }
  return spec;
}

FlagSite to_site(const FlagStore& s) { return FlagSite{s.addr, to_string(s.base), s.disp, s.length}; }

Result<std::vector<Insn>> decode_func(const GoBinary& bin, const Decoder& dec, const FuncInfo& f) {
  auto code = bin.code(f);
  if (!code) return code.error().with_context(fmt::format("reading the code of {} at {}", f.name, f.entry));
  return dec.decode(*code, f.entry);
}

Probe base_probe(const FuncInfo& f, ProbeRole role) {
  Probe p;
  p.function = std::string(f.name);
  p.role = role;
  p.entry = f.entry;
  p.end = f.end;
  return p;
}

}  // namespace

Result<ProbePlan> build_probe_plan(const GoBinary& bin) {
  GORT_TRY(Decoder dec, Decoder::create());
  const FlagSpec spec = flag_spec(bin);
  ProbePlan plan;

  for (const MapFunc& mf : kMapFuncs) {
    auto f = bin.func(mf.name);
    if (!f) continue;  // dead-code eliminated, or not in this version/implementation
    GORT_TRY(std::vector<Insn> insns, decode_func(bin, dec, *f));
    Probe p = base_probe(*f, mf.role);
    p.map_reg = mf.map_reg;
    p.key_reg = mf.key_reg;
    p.key_kind = mf.key_kind;
    FlagSites sites = find_flag_sites(insns, spec);
    for (const FlagStore& s : sites.begin) p.write_begin.push_back(to_site(s));
    for (const FlagStore& s : sites.end) p.write_end.push_back(to_site(s));
    for (const FlagStore& s : sites.ambiguous)
      plan.warnings.push_back(fmt::format("{}: flag toggle at {} is reached both with and without the flag held; "
                                          "not probed", mf.name, s.addr));
    p.returns = find_returns(insns);

    bool expect = mf.sites == Sites::kOwn || (mf.sites == Sites::kOwnHmap && spec.impl == MapImpl::kHmap);
    if (expect && p.write_begin.empty())
      plan.warnings.push_back(fmt::format("{}: no {} writing-flag set found (+{:#x}); concurrent writes through it "
                                          "will be missed", mf.name, to_string(spec.impl), spec.disp));
    if (expect && p.write_end.empty())
      plan.warnings.push_back(fmt::format("{}: no {} writing-flag clear found (+{:#x})", mf.name,
                                          to_string(spec.impl), spec.disp));
    if (p.returns.empty()) plan.warnings.push_back(fmt::format("{}: no RET found", mf.name));
    plan.probes.push_back(std::move(p));
  }

  for (const MapCreator& mc : kMapCreators) {
    if (mc.impl != spec.impl) continue;
    auto f = bin.func(mc.name);
    if (!f) continue;  // never called (dead-code eliminated)
    GORT_TRY(std::vector<Insn> insns, decode_func(bin, dec, *f));
    Probe p = base_probe(*f, ProbeRole::kMapCreate);
    p.map_reg = mc.result_reg;
    p.returns = find_returns(insns);
    if (p.returns.empty()) {
      plan.warnings.push_back(fmt::format("{}: no RET found: maps it creates are not seen (a map freed and "
                                          "reallocated at the same address may look like the same map)", mc.name));
      continue;
    }
    plan.creators.push_back(std::move(p));
  }

  // Go 1.21+: gcWriteBarrier1..8, only the ones some code calls.
  for (int n = 1; n <= 8; ++n) {
    std::string name = fmt::format("runtime.gcWriteBarrier{}", n);
    if (auto f = bin.func(name)) {
      GORT_TRY(std::vector<Insn> insns, decode_func(bin, dec, *f));
      Probe p = base_probe(*f, ProbeRole::kWriteBarrier);
      p.returns = find_returns(insns);  // NOFRAME wrappers JMP to gcWriteBarrier<>: usually none
      plan.probes.push_back(std::move(p));
    }
  }
  for (const char* name : {"runtime.checkptrAlignment", "runtime.checkptrArithmetic"}) {
    if (auto f = bin.func(name)) {
      GORT_TRY(std::vector<Insn> insns, decode_func(bin, dec, *f));
      Probe p = base_probe(*f, ProbeRole::kCheckptr);
      p.returns = find_returns(insns);
      plan.probes.push_back(std::move(p));
    }
  }

  GORT_TRY(std::vector<std::string> unplanned, find_unplanned_flag_writers(bin, plan));
  for (const std::string& fn : unplanned)
    plan.warnings.push_back(fmt::format("{} sets or clears the map writing flag but is not in the probe plan; "
                                        "writes through it will be missed", fn));
  return plan;
}

Result<std::vector<std::string>> find_unplanned_flag_writers(const GoBinary& bin, const ProbePlan& plan) {
  GORT_TRY(Decoder dec, Decoder::create());
  const FlagSpec spec = flag_spec(bin);
  std::set<std::string_view> planned;
  for (const Probe& p : plan.probes) planned.insert(p.function);
  std::vector<std::string> out;
  const Pclntab& tab = bin.pclntab();
  for (size_t i = 0; i < tab.num_funcs(); ++i) {
    FuncInfo f = tab.func(i);
    if (!(f.name.starts_with("runtime.") || f.name.starts_with("internal/runtime/maps."))) continue;
    if (planned.count(f.name)) continue;
    auto code = bin.code(f);
    if (!code) continue;  // not file-backed: nothing to probe either
    if (!match_flag_stores(dec.decode(*code, f.entry), spec).empty()) out.emplace_back(f.name);
  }
  return out;
}

}  // namespace gort::core
