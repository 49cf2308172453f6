#pragma once
// Which Go versions gort supports and which map implementation each uses.
// ../shared/reference/go-runtime.md section 1.1.

#include "core/binary/buildinfo.h"

namespace gort::core {

inline constexpr int kMinGoMinor = 21;  ///< Go 1.21
inline constexpr int kMaxGoMinor = 26;  ///< Go 1.26

enum class MapImpl { kHmap, kSwiss };
inline const char* to_string(MapImpl m) { return m == MapImpl::kSwiss ? "swiss" : "hmap"; }

inline bool is_supported(const GoVersion& v) {
  return v.major == 1 && v.minor >= kMinGoMinor && v.minor <= kMaxGoMinor;
}

/// Swiss tables from 1.24 unless built with GOEXPERIMENT=noswissmap (1.24/1.25);
/// 1.26 has only swiss maps.
inline MapImpl map_impl_for(const GoVersion& v, bool noswissmap_experiment) {
  if (!v.at_least(1, 24)) return MapImpl::kHmap;
  if (!v.at_least(1, 26) && noswissmap_experiment) return MapImpl::kHmap;
  return MapImpl::kSwiss;
}

}  // namespace gort::core
