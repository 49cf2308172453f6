#pragma once
// What layouts_table.cpp knows beyond the public contract in layouts.h: which fields
// belong to one map implementation. Shared by the DWARF reader (dwarf_layouts.cpp) so the
// table stays the single authority on it.

#include "core/goruntime/layouts.h"

#include <optional>

namespace gort::core {

/// kHmap for hmap_* / hmaptype_* fields, kSwiss for the swiss map fields, nullopt for
/// fields every build has.
std::optional<MapImpl> map_impl_of_field(uint32_t RuntimeLayouts::*field);

}  // namespace gort::core
