// TEMPORARY stubs so the tree links while the probe planner is written. Delete when it lands.
#include "core/disasm/probe_plan.h"
namespace gort::core {
const char* to_string(ProbeRole) { return "?"; }
Result<ProbePlan> build_probe_plan(const GoBinary&) { return make_error(ErrorKind::kInternal, "not implemented"); }
}  // namespace gort::core
