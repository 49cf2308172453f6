#pragma once
// The byte-level pieces of the trace format (docs/trace-format.md), private to core/trace:
// record framing constants, varints, and the per-block event encoder and decoder. Kept
// apart from the file I/O so tests and benchmarks can encode and decode blocks in memory.

#include "core/trace/trace.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

namespace gort::core::trace::codec {

inline constexpr char kMagic[8] = {'G', 'O', 'R', 'T', 'T', 'R', 'C', '\0'};
inline constexpr size_t kPreambleSize = 12;      ///< magic + u32 version
inline constexpr size_t kRecordHeaderSize = 16;  ///< tag, payload length, count, crc32

/// Record tags: four ASCII bytes, read as a little-endian u32.
constexpr uint32_t tag(const char (&s)[5]) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}
inline constexpr uint32_t kTagHeader = tag("HEAD");
inline constexpr uint32_t kTagEvents = tag("EVNT");
inline constexpr uint32_t kTagSummary = tag("SUMM");
/// A heap scan taken during the recording (`gort record --dangling`): a JSON payload.
inline constexpr uint32_t kTagHeapScan = tag("HSCN");

/// The writer closes a block before its payload would pass this size.
inline constexpr size_t kBlockTarget = 64 * 1024;
/// Larger records are corrupt lengths, not data: one event is at most a few KiB.
inline constexpr uint32_t kMaxRecordPayload = 64u << 20;
inline constexpr size_t kMaxStackFrames = 4096;

/// Event flag bits (the first byte of every event). Unset bits mean "same as before":
/// the previous event's thread, or this thread's previous cpu / g / map.
enum Flag : uint8_t {
  kFlagTid = 1 << 0,    ///< thread coded (table index, or a new tid)
  kFlagCpu = 1 << 1,    ///< cpu coded
  kFlagG = 1 << 2,      ///< g coded (table index, or a new value)
  kFlagMap = 1 << 3,    ///< map coded (table index, or a new value)
  kFlagKey = 1 << 4,    ///< key present (zigzag varint)
  kFlagStack = 1 << 5,  ///< stack coded (table index, or a new stack)
  kFlagGoid = 1 << 6,   ///< goid present (varint)
  kFlagStackMap = 1 << 7,  ///< Event::stack_map (version 2)
};

/// Worst-case encoded size of E (every field coded, every varint 10 bytes).
inline size_t max_encoded_size(const Event& e) { return 1 + 10 + 5 + 15 + 5 + 15 + 15 + 10 + 10 + 15 + 10 * e.stack.size(); }

inline uint64_t zigzag(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
inline int64_t unzigzag(uint64_t v) { return int64_t(v >> 1) ^ -int64_t(v & 1); }

inline uint8_t* put_uvarint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = uint8_t(v) | 0x80;
    v >>= 7;
  }
  *p++ = uint8_t(v);
  return p;
}

/// Go's uvarint from [P, END); false on overrun or a value past 64 bits.
inline bool get_uvarint_slow(const uint8_t*& p, const uint8_t* end, uint64_t& out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p >= end) return false;
    uint8_t c = *p++;
    if (shift == 63 && c > 1) return false;
    v |= uint64_t(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      out = v;
      return true;
    }
  }
  return false;
}
inline bool get_uvarint(const uint8_t*& p, const uint8_t* end, uint64_t& out) {
  if (p < end && *p < 0x80) {  // most fields are one byte: keep that path branch-light
    out = *p++;
    return true;
  }
  return get_uvarint_slow(p, end, out);
}

/// Value -> index table of one block, for the encoder. Values recur (a few threads, gs and
/// maps), so an index costs a byte where the value would cost five or six.
class ValueTable {
 public:
  /// The index of V, or size() after adding it (the caller then writes V itself).
  uint32_t find_or_add(uint64_t v, bool& added) {
    auto [it, inserted] = index_.try_emplace(v, uint32_t(index_.size()));
    added = inserted;
    return it->second;
  }
  void clear() { index_.clear(); }

 private:
  std::unordered_map<uint64_t, uint32_t> index_;
};

/// Encodes the events of one block. State resets with each block, so every block decodes
/// on its own (a torn trace loses only its last block).
class BlockEncoder {
 public:
  explicit BlockEncoder(const Header& h);
  void reset();
  /// Appends E at P (room for max_encoded_size(E) bytes); returns the new end.
  uint8_t* encode(const Event& e, uint8_t* p);

 private:
  struct ThreadState {
    uint32_t tid = 0, cpu = 0;
    uint64_t g = 0, map = 0;
  };
  uint8_t* put_table_value(uint8_t* p, ValueTable& t, uint64_t v);
  uint8_t* put_stack(uint8_t* p, const Event& e);

  uint64_t start_ns_;
  std::vector<uint64_t> site_pcs_;
  uint64_t prev_time_ = 0;
  uint32_t cur_thread_ = UINT32_MAX;  ///< index into threads_ of the previous event
  std::unordered_map<uint32_t, uint32_t> thread_index_;
  std::vector<ThreadState> threads_;
  ValueTable gs_, maps_;
  // Stacks seen in this block: hash -> index; frames stored flat for the equality check.
  std::unordered_map<uint64_t, uint32_t> stack_index_;
  std::vector<uint64_t> stack_frames_;
  std::vector<uint32_t> stack_begin_;  ///< stack i is frames [begin[i], begin[i+1])
  /// Per site, the stack its previous event had in this block (UINT32_MAX: none): most
  /// events repeat it, and comparing beats hashing (millions of events a second).
  std::vector<uint32_t> last_stack_of_site_;
};

/// Decodes the events of one block (checksum already verified by the caller).
class BlockDecoder {
 public:
  explicit BlockDecoder(const Header& h);
  /// Starts on the payload [P, END) of the block at file offset BLOCK_OFFSET holding COUNT events.
  void reset(const uint8_t* p, const uint8_t* end, uint64_t block_offset, uint32_t count);
  /// 1: an event in E; 0: the block is done; -1: corrupt, see error().
  int next(Event& e) {
    if (remaining_ == 0) return p_ == end_ ? 0 : fail_trailing();
    return decode(e);
  }
  const std::string& error() const { return error_; }

 private:
  struct ThreadState {
    uint32_t tid = 0, cpu = 0;
    uint64_t g = 0, map = 0;
  };
  int decode(Event& e);
  bool get_table_value(const uint8_t*& p, std::vector<uint64_t>& table, uint64_t& out);
  bool get_stack(const uint8_t*& p, Event& e);
  int fail(const uint8_t* at, const char* what);
  int fail_trailing();

  uint64_t start_ns_;
  uint32_t version_;
  std::vector<uint64_t> site_pcs_;
  const uint8_t* begin_ = nullptr;
  const uint8_t* p_ = nullptr;
  const uint8_t* end_ = nullptr;
  uint64_t block_offset_ = 0;
  uint32_t count_ = 0, remaining_ = 0;
  uint64_t prev_time_ = 0;
  uint32_t cur_thread_ = UINT32_MAX;
  std::vector<ThreadState> threads_;
  std::vector<uint64_t> gs_, maps_;
  std::vector<uint64_t> stack_frames_;
  std::vector<uint32_t> stack_begin_;
  std::string error_;
};

}  // namespace gort::core::trace::codec
