#pragma once
// Map decoding through Memory: the header of a runtime.hmap (Go 1.21-1.23, and 1.24/1.25
// built with noswissmap) or an internal/runtime/maps.Map (swiss, 1.24+), and its entries
// given the map's type descriptor (or key/elem size hints).
// ../shared/reference/go-runtime.md sections 3.1, 3.2.

#include "core/goruntime/layouts.h"
#include "core/goruntime/versions.h"
#include "core/target/memory.h"
#include "core/util/remote_addr.h"
#include "core/util/result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace gort::core {

/// abi.Kind values (internal/abi/type.go@go1.21-1.26; Kind_ & 0x1f before 1.24's
/// removal of the GC-prog bit, the mask is harmless after).
enum class GoKind : uint8_t {
  kInvalid = 0, kBool = 1, kInt = 2, kInt8 = 3, kInt16 = 4, kInt32 = 5, kInt64 = 6,
  kUint = 7, kUint8 = 8, kUint16 = 9, kUint32 = 10, kUint64 = 11, kUintptr = 12,
  kFloat32 = 13, kFloat64 = 14, kComplex64 = 15, kComplex128 = 16, kArray = 17, kChan = 18,
  kFunc = 19, kInterface = 20, kMap = 21, kPointer = 22, kSlice = 23, kString = 24,
  kStruct = 25, kUnsafePointer = 26,
};
const char* to_string(GoKind k);

/// What gort needs of an abi.Type to print a value of it.
struct GoTypeInfo {
  RemoteAddr addr;   ///< null when known only from a size hint
  uint64_t size = 0;
  GoKind kind = GoKind::kInvalid;  ///< kInvalid = unknown: printed as hex bytes
};

/// A map's type descriptor, reduced to the slot geometry of its implementation.
struct MapTypeInfo {
  MapImpl impl = MapImpl::kSwiss;
  RemoteAddr addr;  ///< null when built from size hints
  GoTypeInfo key, elem;
  bool indirect_key = false, indirect_elem = false;  ///< slot holds a pointer to the value
  uint64_t key_slot = 0, elem_slot = 0;  ///< bytes the key / elem take in a slot
  uint64_t bucket_size = 0;               ///< hmap: bmap size (overflow ptr at size-8)
  uint64_t group_size = 0, slot_size = 0, elem_off = 0;  ///< swiss
};

/// Reads the map type descriptor at ADDR (*abi.MapType / OldMapType / SwissMapType: the
/// RAX argument of runtime.mapassign*). Checks it for sanity (sizes agree with the slot
/// geometry) and says so if ADDR is not a map type.
Result<MapTypeInfo> read_map_type(const Memory& mem, const RuntimeLayouts& l, MapImpl impl, RemoteAddr addr);

/// Geometry from key/elem sizes alone (kinds unknown, values printed as hex). Assumes
/// natural alignment (the largest power of two <= 8 dividing the size); keys or elems
/// over 128 bytes are indirect, as the compiler does.
MapTypeInfo map_type_from_sizes(MapImpl impl, uint64_t key_size, uint64_t elem_size);

/// The header fields of one map.
struct MapHeader {
  MapImpl impl = MapImpl::kSwiss;
  RemoteAddr addr;
  uint64_t count = 0;    ///< hmap.count / Map.used
  bool writing = false;  ///< hmap.flags & hashWriting / Map.writing != 0
  // hmap
  uint8_t flags = 0, b = 0;
  uint16_t noverflow = 0;
  RemoteAddr buckets, oldbuckets;
  uint64_t nevacuate = 0;
  bool growing() const { return impl == MapImpl::kHmap && !oldbuckets.is_null(); }
  // swiss
  RemoteAddr dir_ptr;
  int64_t dir_len = 0;
  uint8_t global_depth = 0, writing_byte = 0;
  bool small() const { return impl == MapImpl::kSwiss && dir_len == 0; }
  struct Table {
    RemoteAddr addr, groups;
    uint64_t ngroups = 0;  ///< groups.lengthMask + 1
    uint16_t used = 0, capacity = 0;
  };
  std::vector<Table> tables;  ///< distinct tables of a large swiss map, directory order
};

/// Reads the header at ADDR (and, for a large swiss map, its directory).
Result<MapHeader> read_map_header(const Memory& mem, const RuntimeLayouts& l, MapImpl impl, RemoteAddr addr);

struct MapEntry {
  RemoteAddr key_addr, elem_addr;  ///< where the slot is (the value itself if indirect)
  std::string key, elem;           ///< formatted (see format_value)
  std::string where;               ///< "bucket 3", "oldbucket 1", "table 0 group 2 slot 5"
};

struct MapContents {
  std::vector<MapEntry> entries;  ///< the first LIMIT entries in memory order
  uint64_t found = 0;             ///< live entries seen in total
  std::vector<std::string> warnings;  ///< e.g. unreadable bucket, found != count
};

/// Enumerates live entries: hmap buckets with overflow chains plus not-yet-evacuated old
/// buckets during growth; swiss small group or every table's groups (full control bytes).
/// Formats only the first LIMIT; counts all. Unreadable parts become warnings.
Result<MapContents> read_map_entries(const Memory& mem, const MapHeader& h, const MapTypeInfo& t, size_t limit);

/// Formats the value of type T stored at ADDR: integers, bool, floats, strings (quoted,
/// first 64 bytes), pointer-shaped kinds as hex, anything else as hex bytes (first 64).
std::string format_value(const Memory& mem, const GoTypeInfo& t, RemoteAddr addr);

}  // namespace gort::core
