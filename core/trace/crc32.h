#pragma once
// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320): the checksum of every trace
// record. The same function as zlib's crc32() and Python's zlib.crc32, so a trace can be
// checked with a one-line script. Slicing-by-8 tables built at compile time: the reader
// checksums every block before decoding it, and a byte-at-a-time loop would cost as much
// as the decoding itself.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace gort::core::trace {

namespace crc32_detail {
using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables make_tables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (size_t s = 1; s < 8; s++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  return t;
}
inline constexpr Tables kTables = make_tables();
}  // namespace crc32_detail

/// Continues CRC (0 to start) over N bytes at P; crc32_update(0, "123456789", 9) == 0xCBF43926.
inline uint32_t crc32_update(uint32_t crc, const void* p, size_t n) {
  const auto& t = crc32_detail::kTables;
  auto* b = static_cast<const uint8_t*>(p);
  crc = ~crc;
  for (; n >= 8; n -= 8, b += 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, b, 4);  // little-endian host (x86-64)
    std::memcpy(&hi, b + 4, 4);
    lo ^= crc;
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
          t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
  }
  while (n--) crc = t[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

}  // namespace gort::core::trace
