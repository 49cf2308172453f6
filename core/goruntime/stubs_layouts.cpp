// TEMPORARY stubs so the tree links while layouts are written. Delete when they land.
#include "core/goruntime/layouts.h"
namespace gort::core {
const std::vector<FieldDesc>& runtime_field_descs() { static std::vector<FieldDesc> v; return v; }
Result<RuntimeLayouts> layouts_from_table(const GoVersion&, MapImpl) { return make_error(ErrorKind::kInternal, "not implemented"); }
Result<LayoutsWithSource> load_layouts(const ElfFile&, const GoVersion&, MapImpl) { return make_error(ErrorKind::kInternal, "not implemented"); }
}  // namespace gort::core
