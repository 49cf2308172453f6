#pragma once
// RemoteAddr: an address in the target (a Go binary's virtual address space, or a live
// process / core). Never a host pointer, never a bare integer in an API.

#include <fmt/format.h>

#include <compare>
#include <cstdint>
#include <functional>

namespace gort::core {

class RemoteAddr {
 public:
  constexpr RemoteAddr() = default;
  constexpr explicit RemoteAddr(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  constexpr bool is_null() const { return v_ == 0; }

  constexpr RemoteAddr operator+(int64_t d) const { return RemoteAddr(v_ + static_cast<uint64_t>(d)); }
  constexpr RemoteAddr operator-(int64_t d) const { return RemoteAddr(v_ - static_cast<uint64_t>(d)); }
  constexpr int64_t operator-(RemoteAddr o) const { return static_cast<int64_t>(v_ - o.v_); }
  constexpr RemoteAddr& operator+=(int64_t d) { v_ += static_cast<uint64_t>(d); return *this; }
  constexpr auto operator<=>(const RemoteAddr&) const = default;

 private:
  uint64_t v_ = 0;
};

}  // namespace gort::core

template <>
struct std::hash<gort::core::RemoteAddr> {
  size_t operator()(gort::core::RemoteAddr a) const noexcept { return std::hash<uint64_t>()(a.value()); }
};

/// Formats as 0x-prefixed lowercase hex ("0x4b2e40").
template <>
struct fmt::formatter<gort::core::RemoteAddr> : fmt::formatter<std::string_view> {
  auto format(gort::core::RemoteAddr a, format_context& ctx) const {
    return fmt::format_to(ctx.out(), "{:#x}", a.value());
  }
};
