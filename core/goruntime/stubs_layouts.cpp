// TEMPORARY stub so the tree links while the DWARF reader is written. Delete when it lands.
#include "core/goruntime/layouts.h"
namespace gort::core {
Result<LayoutsWithSource> load_layouts(const ElfFile&, const GoVersion&, MapImpl) { return make_error(ErrorKind::kInternal, "not implemented"); }
}  // namespace gort::core
