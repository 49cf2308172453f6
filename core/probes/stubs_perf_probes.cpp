// TEMPORARY stubs so the tree links while perf_probes.cpp is written. Delete when it lands.
#include "core/probes/perf_probes.h"
namespace gort::core {
const char* to_string(ProbeBackend b) { return b == ProbeBackend::kHwBreakpoint ? "hw" : b == ProbeBackend::kUprobe ? "uprobe" : "none"; }
struct PerfProbeSet::Impl { std::vector<ProbeStatus> st; };
PerfProbeSet::PerfProbeSet(std::unique_ptr<Impl> i) : impl_(std::move(i)) {}
PerfProbeSet::~PerfProbeSet() = default;
Result<std::unique_ptr<PerfProbeSet>> PerfProbeSet::create(int, const std::vector<ProbeSpec>&, const ProbeOptions&) { return make_error(ErrorKind::kInternal, "perf probes not implemented yet"); }
const std::vector<ProbeStatus>& PerfProbeSet::status() const { return impl_->st; }
size_t PerfProbeSet::poll(const std::function<void(const ProbeSample&)>&, int) { return 0; }
uint64_t PerfProbeSet::lost() const { return 0; }
Result<void> PerfProbeSet::set_enabled(bool) { return {}; }
void PerfProbeSet::close() {}
}  // namespace gort::core
