#pragma once
// RuntimeLayouts: byte offsets of the Go runtime struct fields gort reads (g, m, gobuf,
// hmap, swiss Map/table, map types, abi.Type, ...). Read from the binary's DWARF when it
// has any; otherwise from the per-version tables in layouts_table.cpp, the one place that
// holds them. ../shared/reference/go-runtime.md sections 3, 5, 7.
//
// The field list is an X-macro so the DWARF reader, the tables and the tests share it.
// Contract owned by core/goruntime; helpers may add fields (append, never rename).

#include "core/binary/buildinfo.h"
#include "core/binary/elf_file.h"
#include "core/goruntime/versions.h"
#include "core/util/result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace gort::core {

enum class LayoutSource { kDwarf, kTable };
inline const char* to_string(LayoutSource s) { return s == LayoutSource::kDwarf ? "dwarf" : "table"; }

/// Field absent in this version (e.g. g.syscallbp before 1.23).
inline constexpr uint32_t kAbsentField = 0xffffffffu;

/// X(member, "struct name(s) separated by |", "field path" or "" for sizeof)
/// Struct names list the candidates across versions, first match wins.
#define GORT_RUNTIME_FIELDS(X)                                                      \
  X(g_stack_lo, "runtime.g", "stack.lo")                                            \
  X(g_stack_hi, "runtime.g", "stack.hi")                                            \
  X(g_m, "runtime.g", "m")                                                          \
  X(g_sched_sp, "runtime.g", "sched.sp")                                            \
  X(g_sched_pc, "runtime.g", "sched.pc")                                            \
  X(g_sched_bp, "runtime.g", "sched.bp")                                            \
  X(g_syscallsp, "runtime.g", "syscallsp")                                          \
  X(g_syscallpc, "runtime.g", "syscallpc")                                          \
  X(g_syscallbp, "runtime.g", "syscallbp")                                          \
  X(g_atomicstatus, "runtime.g", "atomicstatus")                                    \
  X(g_goid, "runtime.g", "goid")                                                    \
  X(g_waitreason, "runtime.g", "waitreason")                                        \
  X(g_gopc, "runtime.g", "gopc")                                                    \
  X(g_startpc, "runtime.g", "startpc")                                              \
  X(g_parent_goid, "runtime.g", "parentGoid")                                       \
  X(g_size, "runtime.g", "")                                                        \
  X(m_g0, "runtime.m", "g0")                                                        \
  X(m_procid, "runtime.m", "procid")                                                \
  X(m_gsignal, "runtime.m", "gsignal")                                              \
  X(m_curg, "runtime.m", "curg")                                                    \
  X(m_p, "runtime.m", "p")                                                          \
  X(m_id, "runtime.m", "id")                                                        \
  X(m_alllink, "runtime.m", "alllink")                                              \
  X(hmap_count, "runtime.hmap", "count")                                            \
  X(hmap_flags, "runtime.hmap", "flags")                                            \
  X(hmap_b, "runtime.hmap", "B")                                                    \
  X(hmap_hash0, "runtime.hmap", "hash0")                                            \
  X(hmap_buckets, "runtime.hmap", "buckets")                                        \
  X(hmap_oldbuckets, "runtime.hmap", "oldbuckets")                                  \
  X(hmap_nevacuate, "runtime.hmap", "nevacuate")                                    \
  X(hmap_extra, "runtime.hmap", "extra")                                            \
  X(hmap_size, "runtime.hmap", "")                                                  \
  X(smap_used, "internal/runtime/maps.Map", "used")                                 \
  X(smap_seed, "internal/runtime/maps.Map", "seed")                                 \
  X(smap_dir_ptr, "internal/runtime/maps.Map", "dirPtr")                            \
  X(smap_dir_len, "internal/runtime/maps.Map", "dirLen")                            \
  X(smap_global_depth, "internal/runtime/maps.Map", "globalDepth")                  \
  X(smap_writing, "internal/runtime/maps.Map", "writing")                           \
  X(smap_clear_seq, "internal/runtime/maps.Map", "clearSeq")                        \
  X(smap_size, "internal/runtime/maps.Map", "")                                     \
  X(stable_used, "internal/runtime/maps.table", "used")                             \
  X(stable_capacity, "internal/runtime/maps.table", "capacity")                     \
  X(stable_index, "internal/runtime/maps.table", "index")                           \
  X(stable_groups_data, "internal/runtime/maps.table", "groups.data")               \
  X(stable_groups_mask, "internal/runtime/maps.table", "groups.lengthMask")         \
  X(hmaptype_key, "internal/abi.MapType|internal/abi.OldMapType|runtime.maptype", "Key")            \
  X(hmaptype_elem, "internal/abi.MapType|internal/abi.OldMapType|runtime.maptype", "Elem")          \
  X(hmaptype_keysize, "internal/abi.MapType|internal/abi.OldMapType|runtime.maptype", "KeySize")    \
  X(hmaptype_valuesize, "internal/abi.MapType|internal/abi.OldMapType|runtime.maptype", "ValueSize")\
  X(hmaptype_bucketsize, "internal/abi.MapType|internal/abi.OldMapType|runtime.maptype", "BucketSize") \
  X(hmaptype_flags, "internal/abi.MapType|internal/abi.OldMapType|runtime.maptype", "Flags")        \
  X(smaptype_key, "internal/abi.SwissMapType|internal/abi.MapType", "Key")          \
  X(smaptype_elem, "internal/abi.SwissMapType|internal/abi.MapType", "Elem")        \
  X(smaptype_group_size, "internal/abi.SwissMapType|internal/abi.MapType", "GroupSize") \
  X(smaptype_slot_size, "internal/abi.SwissMapType|internal/abi.MapType", "SlotSize")   \
  X(smaptype_elem_off, "internal/abi.SwissMapType|internal/abi.MapType", "ElemOff")     \
  X(smaptype_flags, "internal/abi.SwissMapType|internal/abi.MapType", "Flags")      \
  X(type_size, "internal/abi.Type|runtime._type", "Size_")                          \
  X(type_kind, "internal/abi.Type|runtime._type", "Kind_")                          \
  X(type_str, "internal/abi.Type|runtime._type", "Str")                            \
  /* Appended for map enumeration, P-local state and heap liveness (sections 3, 4, 7). */ \
  X(p_id, "runtime.p", "id")                                                        \
  X(p_status, "runtime.p", "status")                                                \
  X(p_m, "runtime.p", "m")                                                          \
  X(p_wbbuf, "runtime.p", "wbBuf")                                                  \
  X(hmap_noverflow, "runtime.hmap", "noverflow")                                    \
  X(hmap_clear_seq, "runtime.hmap", "clearSeq")                                     \
  X(smap_global_shift, "internal/runtime/maps.Map", "globalShift")                  \
  X(smap_tombstone_possible, "internal/runtime/maps.Map", "tombstonePossible")      \
  X(stable_growth_left, "internal/runtime/maps.table", "growthLeft")                \
  X(stable_local_depth, "internal/runtime/maps.table", "localDepth")                \
  X(stable_size, "internal/runtime/maps.table", "")                                 \
  X(hmaptype_bucket, "internal/abi.MapType|internal/abi.OldMapType|runtime.maptype", "Bucket")      \
  X(hmaptype_hasher, "internal/abi.MapType|internal/abi.OldMapType|runtime.maptype", "Hasher")      \
  X(hmaptype_size, "internal/abi.MapType|internal/abi.OldMapType|runtime.maptype", "")              \
  X(smaptype_group, "internal/abi.SwissMapType|internal/abi.MapType", "Group")      \
  X(smaptype_hasher, "internal/abi.SwissMapType|internal/abi.MapType", "Hasher")    \
  X(smaptype_size, "internal/abi.SwissMapType|internal/abi.MapType", "")            \
  X(type_ptrbytes, "internal/abi.Type|runtime._type", "PtrBytes")                   \
  X(type_tflag, "internal/abi.Type|runtime._type", "TFlag")                         \
  X(type_sizeof, "internal/abi.Type|runtime._type", "")                             \
  /* mspan.freeindex/nelems/freeIndexForScan: uintptr in 1.21, uint16 from 1.22. */ \
  X(mspan_start_addr, "runtime.mspan", "startAddr")                                 \
  X(mspan_npages, "runtime.mspan", "npages")                                        \
  X(mspan_freeindex, "runtime.mspan", "freeindex")                                  \
  X(mspan_nelems, "runtime.mspan", "nelems")                                        \
  X(mspan_free_index_for_scan, "runtime.mspan", "freeIndexForScan")                 \
  X(mspan_alloc_cache, "runtime.mspan", "allocCache")                               \
  X(mspan_alloc_bits, "runtime.mspan", "allocBits")                                 \
  X(mspan_gcmark_bits, "runtime.mspan", "gcmarkBits")                               \
  X(mspan_sweepgen, "runtime.mspan", "sweepgen")                                    \
  X(mspan_div_mul, "runtime.mspan", "divMul")                                       \
  X(mspan_alloc_count, "runtime.mspan", "allocCount")                               \
  X(mspan_spanclass, "runtime.mspan", "spanclass")                                  \
  X(mspan_state, "runtime.mspan", "state")                                          \
  X(mspan_elemsize, "runtime.mspan", "elemsize")                                    \
  X(mspan_limit, "runtime.mspan", "limit")                                          \
  X(mspan_size, "runtime.mspan", "")                                                \
  X(mheap_sweepgen, "runtime.mheap", "sweepgen")                                    \
  X(mheap_allspans, "runtime.mheap", "allspans")                                    \
  X(mheap_arenas, "runtime.mheap", "arenas")                                        \
  X(heaparena_spans, "runtime.heapArena", "spans")                                  \
  X(heaparena_size, "runtime.heapArena", "")                                        \
  X(mstats_numgc, "runtime.mstats", "numgc")                                        \
  X(work_cycles, "runtime.workType", "cycles")                                      \
  /* Appended for happens-before (gort record --sync): the sync objects' words. */  \
  X(mutex_state, "internal/sync.Mutex|sync.Mutex", "state")                         \
  X(rwmutex_reader_sem, "sync.RWMutex", "readerSem")                                \
  X(rwmutex_reader_count, "sync.RWMutex", "readerCount")                            \
  X(once_done, "sync.Once", "done")                                                 \
  X(scase_c, "runtime.scase", "c")                                                  \
  X(scase_size, "runtime.scase", "")                                                \
  /* Appended for the dangling-pointer scan: the runtime's own heap bookkeeping. */   \
  X(mheap_size, "runtime.mheap", "")

struct RuntimeLayouts {
#define GORT_DECLARE_FIELD(member, structs, field) uint32_t member = kAbsentField;
  GORT_RUNTIME_FIELDS(GORT_DECLARE_FIELD)
#undef GORT_DECLARE_FIELD

  /// Bit of hmap.flags set while writing (hashWriting); swiss maps toggle the whole byte.
  uint8_t hmap_writing_bit = 4;

  bool has(uint32_t f) const { return f != kAbsentField; }
};

/// One row per field: for tests, `gort inspect --layouts` and DWARF lookups.
struct FieldDesc {
  const char* member;
  const char* structs;  ///< candidates separated by '|'
  const char* field;    ///< dotted path, "" = sizeof
  uint32_t RuntimeLayouts::*ptr;
};
const std::vector<FieldDesc>& runtime_field_descs();

/// The per-version table (Go 1.21-1.26; MAP selects which map fields are meaningful).
/// kUnsupported outside the table's range.
Result<RuntimeLayouts> layouts_from_table(const GoVersion& v, MapImpl map);

/// Reads every field from DWARF. Fields whose struct is absent from DWARF (types the
/// program never uses) are taken from the table; the result says which source dominated.
struct LayoutsWithSource {
  RuntimeLayouts layouts;
  LayoutSource source = LayoutSource::kTable;
  std::vector<std::string> notes;  ///< e.g. "internal/abi.MapType not in DWARF; table used for hmaptype_*"
};
Result<LayoutsWithSource> load_layouts(const ElfFile& elf, const GoVersion& v, MapImpl map);

}  // namespace gort::core
