// Probe selection and naming for the break commands (probe_select.h).

#include "core/front/probe_select.h"

#include "core/goruntime/map_event.h"

#include <algorithm>

namespace gort::core::front {
namespace {

// Debug-register priority: the variants ordinary code calls most.
constexpr const char* kMapOrder[] = {"runtime.mapassign_fast64", "runtime.mapassign_faststr", "runtime.mapassign",
                                     "runtime.mapassign_fast32"};
constexpr const char* kWbOrder[] = {"runtime.gcWriteBarrier2", "runtime.gcWriteBarrier1", "runtime.gcWriteBarrier4",
                                    "runtime.gcWriteBarrier3"};

int rank(const std::string& fn, const char* const (&order)[4]) {
  for (int i = 0; i < 4; ++i)
    if (fn == order[i]) return i;
  return 4;
}

}  // namespace

bool is_map_write(ProbeRole r) {
  return r == ProbeRole::kMapAssign || r == ProbeRole::kMapDelete || r == ProbeRole::kMapClear;
}

Result<std::vector<Probe>> select_map_probes(const ProbePlan& plan, const std::vector<std::string>& funcs) {
  std::vector<Probe> probes;
  for (auto& p : plan.probes) {
    if (!is_map_write(p.role)) continue;
    if (!funcs.empty() && std::find(funcs.begin(), funcs.end(), p.function) == funcs.end()) continue;
    probes.push_back(p);
  }
  for (auto& f : funcs)
    if (std::none_of(probes.begin(), probes.end(), [&](auto& p) { return p.function == f; }))
      return make_error(ErrorKind::kBadInput, "{} is not a map-write function of this binary (see `gort info`)", f);
  if (probes.empty()) return make_error(ErrorKind::kBadInput, "the binary has no map-write functions");
  std::stable_sort(probes.begin(), probes.end(),
                   [](auto& a, auto& b) { return rank(a.function, kMapOrder) < rank(b.function, kMapOrder); });
  return probes;
}

Result<std::vector<Probe>> select_wb_probes(const ProbePlan& plan) {
  std::vector<Probe> probes;
  for (auto& p : plan.probes)
    if (p.role == ProbeRole::kWriteBarrier) probes.push_back(p);
  if (probes.empty())
    return make_error(ErrorKind::kBadInput,
                      "the binary has no runtime.gcWriteBarrier1..8 (Go 1.21+ only; older runtimes use gcWriteBarrier "
                      "with DI/AX, not supported)");
  std::stable_sort(probes.begin(), probes.end(),
                   [](auto& a, auto& b) { return rank(a.function, kWbOrder) < rank(b.function, kWbOrder); });
  return probes;
}

const char* probe_label(const Probe& p) { return p.role == ProbeRole::kWriteBarrier ? "write-barrier" : map_op(p.role); }

std::string watch_op(const ProbePlan& plan, uint64_t rip_link) {
  for (auto& p : plan.probes) {
    for (auto& f : p.write_begin)
      if (f.addr.value() + f.length == rip_link) return "write-begin";
    for (auto& f : p.write_end)
      if (f.addr.value() + f.length == rip_link) return "write-end";
  }
  return "";
}

}  // namespace gort::core::front
