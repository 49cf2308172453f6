// The per-version layout tables: byte offsets of the runtime struct fields gort reads, for
// Go 1.21-1.26 on linux/amd64. The one place in gort that holds these numbers.
//
// Every number was measured from the DWARF of samples/mapwrites built with each toolchain
// (go1.21.13, go1.22.12, go1.23.5, go1.24.4, go1.25.12, go1.26.11 and go1.26.8; 1.24/1.25
// also with GOEXPERIMENT=noswissmap), not copied from a document. Patch releases share
// their minor release's layouts. tests/e2e/test_layouts.py re-checks every row against
// the DWARF of each installed toolchain, so a wrong cell fails CI rather than a session.
//
// Why the columns move (runtime2.go, mheap.go, mstats.go, mgc.go at each version):
//   1.22  mspan.freeindex/nelems/freeIndexForScan shrink to uint16; heapArena loses its
//         bitmap (allocation headers), so heapArena.spans is at 0; mheap.arenas moves.
//   1.23  g.syscallbp inserted (+8 for everything after it: atomicstatus, goid, ...).
//   1.24  swiss maps (internal/runtime/maps); GOEXPERIMENT=noswissmap keeps hmap, which
//         gains clearSeq (extra moves 0x28 -> 0x30).
//   1.25  gobuf.ret removed: -8 in g from sched.bp on, and in m from procid on (m.morebuf
//         is a gobuf);
//         swiss Map gains tombstonePossible; heapArena gains pageUseSpanInlineMarkBits.
//   1.26  abi.SwissMapType renamed abi.MapType; hmap gone; g and m grow again.
//
// Columns are Go 1.21 .. 1.26. Map rows only apply in builds of their implementation;
// the 1.24/1.25 columns of hmap rows are noswissmap builds.

#include "core/goruntime/layouts_table.h"

#include <array>
#include <iterator>
#include <span>

namespace gort::core {
namespace {

using L = RuntimeLayouts;
constexpr uint32_t na = kAbsentField;
constexpr int kColumns = kMaxGoMinor - kMinGoMinor + 1;

struct Row {
  uint32_t L::*field;
  std::array<uint32_t, kColumns> by_minor;  ///< index = minor - kMinGoMinor
};

// Fields independent of the map implementation (identical in swiss and noswissmap builds
// of 1.24 and 1.25, checked).
//   field                               1.21      1.22      1.23      1.24      1.25      1.26
constexpr Row kCommon[] = {
    {&L::g_stack_lo,                {     0x0,      0x0,      0x0,      0x0,      0x0,      0x0}},
    {&L::g_stack_hi,                {     0x8,      0x8,      0x8,      0x8,      0x8,      0x8}},
    {&L::g_m,                       {    0x30,     0x30,     0x30,     0x30,     0x30,     0x30}},
    {&L::g_sched_sp,                {    0x38,     0x38,     0x38,     0x38,     0x38,     0x38}},
    {&L::g_sched_pc,                {    0x40,     0x40,     0x40,     0x40,     0x40,     0x40}},
    {&L::g_sched_bp,                {    0x68,     0x68,     0x68,     0x68,     0x60,     0x60}},
    {&L::g_syscallsp,               {    0x70,     0x70,     0x70,     0x70,     0x68,     0x68}},
    {&L::g_syscallpc,               {    0x78,     0x78,     0x78,     0x78,     0x70,     0x70}},
    {&L::g_syscallbp,               {      na,       na,     0x80,     0x80,     0x78,     0x78}},
    {&L::g_atomicstatus,            {    0x90,     0x90,     0x98,     0x98,     0x90,     0x90}},
    {&L::g_goid,                    {    0x98,     0x98,     0xa0,     0xa0,     0x98,     0x98}},
    {&L::g_waitreason,              {    0xb0,     0xb0,     0xb8,     0xb8,     0xb0,     0xb0}},
    {&L::g_gopc,                    {   0x118,    0x118,    0x120,    0x120,    0x118,    0x120}},
    {&L::g_startpc,                 {   0x128,    0x128,    0x130,    0x130,    0x128,    0x130}},
    {&L::g_parent_goid,             {   0x110,    0x110,    0x118,    0x118,    0x110,    0x118}},
    {&L::g_size,                    {   0x198,    0x1a8,    0x1b0,    0x1b8,    0x1b8,    0x1c8}},
    {&L::m_g0,                      {     0x0,      0x0,      0x0,      0x0,      0x0,      0x0}},
    {&L::m_procid,                  {    0x48,     0x48,     0x48,     0x48,     0x40,     0x40}},
    {&L::m_gsignal,                 {    0x50,     0x50,     0x50,     0x50,     0x48,     0x48}},
    {&L::m_curg,                    {    0xc0,     0xc0,     0xc0,     0xc0,     0xb8,     0xb8}},
    {&L::m_p,                       {    0xd0,     0xd0,     0xd0,     0xd0,     0xc8,     0xd0}},
    {&L::m_id,                      {    0xe8,     0xe8,     0xe8,     0xe8,     0xe0,     0xe8}},
    {&L::m_alllink,                 {   0x150,    0x148,    0x148,    0x148,    0x158,    0x160}},
    {&L::p_id,                      {     0x0,      0x0,      0x0,      0x0,      0x0,      0x0}},
    {&L::p_status,                  {     0x4,      0x4,      0x4,      0x4,      0x4,      0x4}},
    {&L::p_m,                       {    0x38,     0x38,     0x30,     0x30,     0x30,     0x30}},
    {&L::p_wbbuf,                   {  0x1268,   0x1288,   0x1270,   0x1270,   0x1498,   0x2550}},
    {&L::type_size,                 {     0x0,      0x0,      0x0,      0x0,      0x0,      0x0}},
    {&L::type_kind,                 {    0x17,     0x17,     0x17,     0x17,     0x17,     0x17}},
    {&L::type_str,                  {    0x28,     0x28,     0x28,     0x28,     0x28,     0x28}},
    {&L::type_ptrbytes,             {     0x8,      0x8,      0x8,      0x8,      0x8,      0x8}},
    {&L::type_tflag,                {    0x14,     0x14,     0x14,     0x14,     0x14,     0x14}},
    {&L::type_sizeof,               {    0x30,     0x30,     0x30,     0x30,     0x30,     0x30}},
    {&L::mspan_start_addr,          {    0x18,     0x18,     0x18,     0x18,     0x18,     0x18}},
    {&L::mspan_npages,              {    0x20,     0x20,     0x20,     0x20,     0x20,     0x20}},
    {&L::mspan_freeindex,           {    0x30,     0x30,     0x30,     0x30,     0x30,     0x30}},
    {&L::mspan_nelems,              {    0x38,     0x32,     0x32,     0x32,     0x32,     0x32}},
    {&L::mspan_free_index_for_scan, {    0xa0,     0x34,     0x34,     0x34,     0x34,     0x34}},
    {&L::mspan_alloc_cache,         {    0x40,     0x38,     0x38,     0x38,     0x38,     0x38}},
    {&L::mspan_alloc_bits,          {    0x48,     0x40,     0x40,     0x40,     0x40,     0x40}},
    {&L::mspan_gcmark_bits,         {    0x50,     0x48,     0x48,     0x48,     0x48,     0x48}},
    {&L::mspan_sweepgen,            {    0x60,     0x58,     0x58,     0x58,     0x58,     0x58}},
    {&L::mspan_div_mul,             {    0x64,     0x5c,     0x5c,     0x5c,     0x5c,     0x5c}},
    {&L::mspan_alloc_count,         {    0x68,     0x60,     0x60,     0x60,     0x60,     0x60}},
    {&L::mspan_spanclass,           {    0x6a,     0x62,     0x62,     0x62,     0x62,     0x62}},
    {&L::mspan_state,               {    0x6b,     0x63,     0x63,     0x63,     0x63,     0x63}},
    {&L::mspan_elemsize,            {    0x70,     0x68,     0x68,     0x68,     0x68,     0x68}},
    {&L::mspan_limit,               {    0x78,     0x70,     0x70,     0x70,     0x70,     0x70}},
    {&L::mspan_size,                {    0xa8,     0xa0,     0xa0,     0xa0,     0xa0,     0xa0}},
    {&L::mheap_sweepgen,            { 0x10140,  0x10140,  0x10140,  0x10140,  0x10140,  0x10140}},
    {&L::mheap_allspans,            { 0x10148,  0x10148,  0x10148,  0x10148,  0x10148,  0x10148}},
    {&L::mheap_arenas,              { 0x10198,  0x101d8,  0x101d8,  0x101d8,  0x101d8,  0x101d8}},
    {&L::heaparena_spans,           {0x104000,      0x0,      0x0,      0x0,      0x0,      0x0}},
    {&L::heaparena_size,            {0x114c10,  0x10c10,  0x10c10,  0x10c10,  0x11010,  0x11010}},
    {&L::mstats_numgc,              {  0x1e18,   0x1e18,   0x1e18,   0x1e18,   0x1e00,   0x1e00}},
    {&L::work_cycles,               {   0x190,    0x190,    0x1a8,    0x1a8,    0x200,    0x288}},
    {&L::mutex_state,               {     0x0,      0x0,      0x0,      0x0,      0x0,      0x0}},
    {&L::rwmutex_reader_sem,        {     0xc,      0xc,      0xc,      0xc,      0xc,      0xc}},
    {&L::rwmutex_reader_count,      {    0x10,     0x10,     0x10,     0x10,     0x10,     0x10}},
    {&L::once_done,                 {     0x0,      0x0,      0x0,      0x0,      0x0,      0x0}},
    {&L::scase_c,                   {     0x0,      0x0,      0x0,      0x0,      0x0,      0x0}},
    {&L::scase_size,                {    0x10,     0x10,     0x10,     0x10,     0x10,     0x10}},
    {&L::mheap_size,                { 0x16a78,  0x16ab8,  0x16b00,  0x16b50,  0x16c88,  0x16d18}},
};

// Bucketed runtime.hmap and its map type (abi.MapType 1.21-1.23, abi.OldMapType in
// noswissmap 1.24/1.25). Go 1.26 has no hmap.
//   field                               1.21      1.22      1.23      1.24ns    1.25ns    1.26
constexpr Row kHmap[] = {
    {&L::hmap_count,                {     0x0,      0x0,      0x0,      0x0,      0x0,       na}},
    {&L::hmap_flags,                {     0x8,      0x8,      0x8,      0x8,      0x8,       na}},
    {&L::hmap_b,                    {     0x9,      0x9,      0x9,      0x9,      0x9,       na}},
    {&L::hmap_hash0,                {     0xc,      0xc,      0xc,      0xc,      0xc,       na}},
    {&L::hmap_buckets,              {    0x10,     0x10,     0x10,     0x10,     0x10,       na}},
    {&L::hmap_oldbuckets,           {    0x18,     0x18,     0x18,     0x18,     0x18,       na}},
    {&L::hmap_nevacuate,            {    0x20,     0x20,     0x20,     0x20,     0x20,       na}},
    {&L::hmap_extra,                {    0x28,     0x28,     0x28,     0x30,     0x30,       na}},
    {&L::hmap_size,                 {    0x30,     0x30,     0x30,     0x38,     0x38,       na}},
    {&L::hmap_noverflow,            {     0xa,      0xa,      0xa,      0xa,      0xa,       na}},
    {&L::hmap_clear_seq,            {      na,       na,       na,     0x28,     0x28,       na}},
    {&L::hmaptype_key,              {    0x30,     0x30,     0x30,     0x30,     0x30,       na}},
    {&L::hmaptype_elem,             {    0x38,     0x38,     0x38,     0x38,     0x38,       na}},
    {&L::hmaptype_keysize,          {    0x50,     0x50,     0x50,     0x50,     0x50,       na}},
    {&L::hmaptype_valuesize,        {    0x51,     0x51,     0x51,     0x51,     0x51,       na}},
    {&L::hmaptype_bucketsize,       {    0x52,     0x52,     0x52,     0x52,     0x52,       na}},
    {&L::hmaptype_flags,            {    0x54,     0x54,     0x54,     0x54,     0x54,       na}},
    {&L::hmaptype_bucket,           {    0x40,     0x40,     0x40,     0x40,     0x40,       na}},
    {&L::hmaptype_hasher,           {    0x48,     0x48,     0x48,     0x48,     0x48,       na}},
    {&L::hmaptype_size,             {    0x58,     0x58,     0x58,     0x58,     0x58,       na}},
};

// Swiss tables: internal/runtime/maps.Map, .table, and abi.SwissMapType (1.24/1.25) =
// abi.MapType (1.26).
//   field                               1.21      1.22      1.23      1.24      1.25      1.26
constexpr Row kSwiss[] = {
    {&L::smap_used,                 {      na,       na,       na,      0x0,      0x0,      0x0}},
    {&L::smap_seed,                 {      na,       na,       na,      0x8,      0x8,      0x8}},
    {&L::smap_dir_ptr,              {      na,       na,       na,     0x10,     0x10,     0x10}},
    {&L::smap_dir_len,              {      na,       na,       na,     0x18,     0x18,     0x18}},
    {&L::smap_global_depth,         {      na,       na,       na,     0x20,     0x20,     0x20}},
    {&L::smap_writing,              {      na,       na,       na,     0x22,     0x22,     0x22}},
    {&L::smap_clear_seq,            {      na,       na,       na,     0x28,     0x28,     0x28}},
    {&L::smap_size,                 {      na,       na,       na,     0x30,     0x30,     0x30}},
    {&L::smap_global_shift,         {      na,       na,       na,     0x21,     0x21,     0x21}},
    {&L::smap_tombstone_possible,   {      na,       na,       na,       na,     0x23,     0x23}},
    {&L::stable_used,               {      na,       na,       na,      0x0,      0x0,      0x0}},
    {&L::stable_capacity,           {      na,       na,       na,      0x2,      0x2,      0x2}},
    {&L::stable_index,              {      na,       na,       na,      0x8,      0x8,      0x8}},
    {&L::stable_groups_data,        {      na,       na,       na,     0x10,     0x10,     0x10}},
    {&L::stable_groups_mask,        {      na,       na,       na,     0x18,     0x18,     0x18}},
    {&L::stable_growth_left,        {      na,       na,       na,      0x4,      0x4,      0x4}},
    {&L::stable_local_depth,        {      na,       na,       na,      0x6,      0x6,      0x6}},
    {&L::stable_size,               {      na,       na,       na,     0x20,     0x20,     0x20}},
    {&L::smaptype_key,              {      na,       na,       na,     0x30,     0x30,     0x30}},
    {&L::smaptype_elem,             {      na,       na,       na,     0x38,     0x38,     0x38}},
    {&L::smaptype_group_size,       {      na,       na,       na,     0x50,     0x50,     0x50}},
    {&L::smaptype_slot_size,        {      na,       na,       na,     0x58,     0x58,     0x58}},
    {&L::smaptype_elem_off,         {      na,       na,       na,     0x60,     0x60,     0x60}},
    {&L::smaptype_flags,            {      na,       na,       na,     0x68,     0x68,     0x68}},
    {&L::smaptype_group,            {      na,       na,       na,     0x40,     0x40,     0x40}},
    {&L::smaptype_hasher,           {      na,       na,       na,     0x48,     0x48,     0x48}},
    {&L::smaptype_size,             {      na,       na,       na,     0x70,     0x70,     0x70}},
};

// A field appended to GORT_RUNTIME_FIELDS needs a row here (kAbsentField where unknown).
#define GORT_COUNT_FIELD(member, structs, field) +1
constexpr size_t kFieldCount = 0 GORT_RUNTIME_FIELDS(GORT_COUNT_FIELD);
#undef GORT_COUNT_FIELD
static_assert(std::size(kCommon) + std::size(kHmap) + std::size(kSwiss) == kFieldCount,
              "every GORT_RUNTIME_FIELDS member needs exactly one row in the tables");

void apply(std::span<const Row> rows, int col, RuntimeLayouts& out) {
  for (const Row& r : rows) out.*r.field = r.by_minor[col];
}

bool has_row(std::span<const Row> rows, uint32_t L::*field) {
  for (const Row& r : rows)
    if (r.field == field) return true;
  return false;
}

}  // namespace

std::optional<MapImpl> map_impl_of_field(uint32_t RuntimeLayouts::*field) {
  if (has_row(kHmap, field)) return MapImpl::kHmap;
  if (has_row(kSwiss, field)) return MapImpl::kSwiss;
  return std::nullopt;
}

const std::vector<FieldDesc>& runtime_field_descs() {
  static const std::vector<FieldDesc> descs = {
#define GORT_FIELD_DESC(member, structs, field) FieldDesc{#member, structs, field, &RuntimeLayouts::member},
      GORT_RUNTIME_FIELDS(GORT_FIELD_DESC)
#undef GORT_FIELD_DESC
  };
  return descs;
}

Result<RuntimeLayouts> layouts_from_table(const GoVersion& v, MapImpl map) {
  if (!is_supported(v))
    return make_error(ErrorKind::kUnsupported, "no runtime layout table for {} (gort has Go 1.{}-1.{})",
                      v.raw.empty() ? v.short_name() : v.raw, kMinGoMinor, kMaxGoMinor);
  if (map == MapImpl::kHmap && v.at_least(1, 26))
    return make_error(ErrorKind::kUnsupported, "{} has no hmap maps (GOEXPERIMENT=noswissmap ended with Go 1.25)",
                      v.short_name());
  if (map == MapImpl::kSwiss && !v.at_least(1, 24))
    return make_error(ErrorKind::kUnsupported, "{} has no swiss maps (they arrived in Go 1.24)", v.short_name());
  const int col = v.minor - kMinGoMinor;
  RuntimeLayouts out;
  apply(kCommon, col, out);
  apply(map == MapImpl::kSwiss ? std::span<const Row>(kSwiss) : std::span<const Row>(kHmap), col, out);
  return out;
}

}  // namespace gort::core
