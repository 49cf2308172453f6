#pragma once
// Small string helpers the front ends share for option values.
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace gort::core {

/// "a,b,,c" -> {"a", "b", "c"} (empty parts dropped).
inline std::vector<std::string> split_list(std::string_view s, char sep = ',') {
  std::vector<std::string> out;
  std::stringstream ss{std::string(s)};
  std::string part;
  while (std::getline(ss, part, sep))
    if (!part.empty()) out.push_back(part);
  return out;
}

/// The whole of S as an unsigned number in BASE (0: C rules, "0x" for hex); false for
/// empty, partial ("12ab") or out-of-range input.
inline bool parse_u64(std::string_view s, uint64_t& out, int base = 10) {
  if (s.empty() || s[0] == '-' || s[0] == '+') return false;
  try {
    size_t used = 0;
    std::string str(s);
    out = std::stoull(str, &used, base);
    return used == str.size();
  } catch (...) {
    return false;
  }
}

/// A hex address with or without "0x".
inline bool parse_hex(std::string_view s, uint64_t& out) {
  if (s.starts_with("0x") || s.starts_with("0X")) s.remove_prefix(2);
  return parse_u64(s, out, 16);
}

}  // namespace gort::core
