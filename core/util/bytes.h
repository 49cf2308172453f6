#pragma once
// Little-endian reads from byte spans, bounds-checked by the caller's span.

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace gort::core {

using Bytes = std::span<const uint8_t>;

template <typename T>
inline std::optional<T> read_le(Bytes b, size_t off) {
  if (off > b.size() || b.size() - off < sizeof(T)) return std::nullopt;
  T v;
  std::memcpy(&v, b.data() + off, sizeof(T));  // x86-64 host: little-endian like the target
  return v;
}

/// Unchecked read for hot paths whose bounds were checked once up front.
template <typename T>
inline T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

/// Go's uvarint; returns false on overrun or overflow.
inline bool read_uvarint(Bytes b, size_t& off, uint64_t& out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (off >= b.size()) return false;
    uint8_t c = b[off++];
    v |= uint64_t(c & 0x7f) << shift;
    if (!(c & 0x80)) { out = v; return true; }
  }
  return false;
}

}  // namespace gort::core
