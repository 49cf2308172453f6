// gort probe: a developer tool over core/probes. Places hardware breakpoints (falling back
// to uprobes) and 1-byte write watchpoints on a running process in sampling mode, counts
// hits until a deadline or the target's exit, and prints per-probe backend, hit count and
// the first few samples as JSON. Nothing in the target is stopped or written; killing
// gort removes every probe (the kernel closes the perf fds).

#include "core/binary/go_binary.h"
#include "core/probes/perf_probes.h"
#include "core/target/process.h"
#include "core/util/strings.h"
#include "recorder/cli.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace gort::recorder {
namespace {

constexpr const char* kUsage = R"(Usage: gort probe --pid PID [--addr ADDR[,ADDR]] [--func NAME[,NAME]] [--watch1 ADDR[,ADDR]]
                  [--bin BIN] [--link] [--uprobe] [--max-hw N] [--duration SECONDS]
                  [--samples K] [--ring-pages N] [--wakeup-bytes B]

Count hits of execution probes and 1-byte write watchpoints on a running process without
stopping it (perf_event_open sampling: registers and [rsp] of every hit go through a
ring buffer). Execution probes use the CPU's debug registers (4 per thread, shared with
watchpoints and debuggers) and fall back to uprobes when they run out.

Options:
  --pid PID          the target process (required)
  --addr ADDRS       execution probes at these runtime addresses (hex, comma-separated)
  --link             ADDRS are link-time addresses (as `gort inspect` prints them): add
                     the PIE load slide read from /proc/PID/maps
  --func NAMES       execution probes at these functions' entries, from the pclntab of
                     BIN (default /proc/PID/exe); the load slide is applied
  --bin BIN          the target's executable for --func / --link
  --watch1 ADDRS     1-byte write watchpoints at these runtime addresses (each fires
                     after the store)
  --uprobe           use uprobes for every execution probe (same as --max-hw 0)
  --max-hw N         use at most N debug registers (default 4)
  --no-uprobe        never fall back to uprobes
  --duration S       stop after S seconds (default 10) or when the target exits
  --samples K        samples printed per probe (default 3)
  --ring-pages N     pages per per-CPU ring buffer, a power of two (default 1024)
  --wakeup-bytes B   wake gort after B bytes of samples (default 65536; 0 = after every
                     sample, which doubles the per-hit cost); gort drains every 100 ms

Prints "gort probe: ready" on stderr once every probe is placed, and one JSON object on
stdout at the end:
  {"pid": .., "probes": [{"addr": "0x..", "kind": "exec"|"write1", "backend": "hw"|"uprobe"|"none",
   "error": "", "hits": N, "samples": [{"tid", "cpu", "time_ns", "ip", "rax" .. "r15", "rsp",
   "rbp", "ret"}]}], "lost": N, "foreign": N, "target_exited": bool}
("ret" is the 8 bytes at [rsp]: the return address at a function entry.)

Example:
  gort probe --pid 1234 --func runtime.mapassign_fast64 --duration 5

Exit status: 0 when every probe was placed; 1 when one could not be (see "error") or the
target is gone; 2 on bad usage.
)";

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

bool parse_u64(const std::string& s, uint64_t& v) { return core::parse_u64(s, v, 0); }
std::vector<std::string> split(const std::string& s) { return core::split_list(s); }

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

int run_probe(const Args& args) {
  int pid = 0;
  std::vector<std::string> addrs, funcs, watches;
  std::string bin_path;
  bool link = false;
  double duration = 10;
  size_t keep = 3;
  core::ProbeOptions opts;
  opts.ring_pages = 1024;
  opts.wakeup_bytes = 64 * 1024;
  OptionParser p(args);
  std::string tok, v;
  while (p.next(tok)) {
    auto need = [&](const char* what) {
      if (!p.value(v)) {
        usage_error(kProbeCommand, fmt::format("{} needs {}", tok, what));
        return false;
      }
      return true;
    };
    uint64_t n = 0;
    if (tok == "--pid") {
      if (!need("a process id") || !parse_u64(v, n) || n == 0)
        return usage_error(kProbeCommand, fmt::format("bad --pid '{}'", v));
      pid = static_cast<int>(n);
    } else if (tok == "--addr") {
      if (!need("addresses")) return kExitUsage;
      for (auto& a : split(v)) addrs.push_back(a);
    } else if (tok == "--func") {
      if (!need("function names")) return kExitUsage;
      for (auto& a : split(v)) funcs.push_back(a);
    } else if (tok == "--watch1") {
      if (!need("addresses")) return kExitUsage;
      for (auto& a : split(v)) watches.push_back(a);
    } else if (tok == "--bin") {
      if (!need("a path")) return kExitUsage;
      bin_path = v;
    } else if (tok == "--link") {
      link = true;
    } else if (tok == "--uprobe") {
      opts.max_hw = 0;
    } else if (tok == "--no-uprobe") {
      opts.allow_uprobes = false;
    } else if (tok == "--max-hw") {
      if (!need("a number") || !parse_u64(v, n) || n > 4) return usage_error(kProbeCommand, "--max-hw takes 0-4");
      opts.max_hw = static_cast<int>(n);
    } else if (tok == "--duration") {
      if (!need("seconds")) return kExitUsage;
      try {
        duration = std::stod(v);
      } catch (...) {
        return usage_error(kProbeCommand, fmt::format("bad --duration '{}'", v));
      }
    } else if (tok == "--samples") {
      if (!need("a number") || !parse_u64(v, n)) return usage_error(kProbeCommand, "bad --samples");
      keep = n;
    } else if (tok == "--wakeup-bytes") {
      if (!need("a byte count") || !parse_u64(v, n)) return usage_error(kProbeCommand, "bad --wakeup-bytes");
      opts.wakeup_bytes = static_cast<uint32_t>(n);
    } else if (tok == "--ring-pages") {
      if (!need("a power of two") || !parse_u64(v, n) || n == 0 || (n & (n - 1)))
        return usage_error(kProbeCommand, "--ring-pages takes a power of two");
      opts.ring_pages = static_cast<uint32_t>(n);
    } else {
      return usage_error(kProbeCommand, fmt::format("unexpected '{}'", tok));
    }
  }
  if (pid == 0) return usage_error(kProbeCommand, "missing --pid");
  if (addrs.empty() && funcs.empty() && watches.empty())
    return usage_error(kProbeCommand, "nothing to probe: give --addr, --func or --watch1");

  std::vector<core::ProbeSpec> specs;
  std::vector<std::string> labels;
  if (!funcs.empty() || link) {
    if (bin_path.empty()) bin_path = fmt::format("/proc/{}/exe", pid);
    auto bin = core::GoBinary::open(bin_path);
    if (!bin) return report_error(bin.error());
    auto slide = core::load_slide(pid, **bin);
    if (!slide) return report_error(slide.error());
    for (auto& f : funcs) {
      auto fi = (*bin)->func(f);
      if (!fi) return report_error(core::make_error(core::ErrorKind::kNotFound, "no function '{}' in {}", f, bin_path));
      specs.push_back({fi->entry + *slide, core::ProbeKind::kExec, static_cast<uint32_t>(specs.size()), "", 0});
      labels.push_back(f);
    }
    for (auto& a : addrs) {
      uint64_t n = 0;
      if (!parse_u64(a, n)) return usage_error(kProbeCommand, fmt::format("bad address '{}'", a));
      specs.push_back({core::RemoteAddr(n) + *slide, core::ProbeKind::kExec, static_cast<uint32_t>(specs.size()), "", 0});
      labels.push_back("");
    }
  } else {
    for (auto& a : addrs) {
      uint64_t n = 0;
      if (!parse_u64(a, n)) return usage_error(kProbeCommand, fmt::format("bad address '{}'", a));
      specs.push_back({core::RemoteAddr(n), core::ProbeKind::kExec, static_cast<uint32_t>(specs.size()), "", 0});
      labels.push_back("");
    }
  }
  for (auto& a : watches) {
    uint64_t n = 0;
    if (!parse_u64(a, n)) return usage_error(kProbeCommand, fmt::format("bad address '{}'", a));
    specs.push_back({core::RemoteAddr(n), core::ProbeKind::kWrite1, static_cast<uint32_t>(specs.size()), "", 0});
    labels.push_back("");
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  auto set = core::PerfProbeSet::create(pid, specs, opts);
  if (!set) return report_error(set.error());
  auto& ps = **set;
  fmt::print(stderr, "gort probe: ready ({} probes on process {})\n", specs.size(), pid);
  std::fflush(stderr);

  std::vector<uint64_t> hits(specs.size());
  std::vector<nlohmann::json> first(specs.size(), nlohmann::json::array());
  auto on_sample = [&](const core::ProbeSample& s) {
    if (s.cookie >= hits.size()) return;
    hits[s.cookie]++;
    if (first[s.cookie].size() >= keep) return;
    uint64_t ret = 0;
    if (s.stack.size() >= 8) std::memcpy(&ret, s.stack.data(), 8);
    const auto& r = s.regs;
    first[s.cookie].push_back({{"tid", s.tid},          {"cpu", s.cpu},          {"time_ns", s.time_ns},
                               {"ip", hex(r.rip)},      {"rax", hex(r.rax)},     {"rbx", hex(r.rbx)},
                               {"rcx", hex(r.rcx)},     {"rdx", hex(r.rdx)},     {"rsi", hex(r.rsi)},
                               {"rdi", hex(r.rdi)},     {"rsp", hex(r.rsp)},     {"rbp", hex(r.rbp)},
                               {"r8", hex(r.r8)},       {"r9", hex(r.r9)},       {"r10", hex(r.r10)},
                               {"r11", hex(r.r11)},     {"r12", hex(r.r12)},     {"r13", hex(r.r13)},
                               {"r14", hex(r.r14)},     {"r15", hex(r.r15)},     {"ret", hex(ret)}});
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(duration);
  while (!g_stop && std::chrono::steady_clock::now() < deadline) {
    ps.poll(on_sample, 100);
    if (ps.exited()) break;
  }
  while (ps.poll(on_sample, 0) > 0) {
  }
  bool exited = ps.exited();
  ps.close();

  nlohmann::json out;
  out["pid"] = pid;
  bool all_placed = true;
  auto probes = nlohmann::json::array();
  for (size_t i = 0; i < specs.size(); i++) {
    auto& st = ps.status()[i];
    all_placed = all_placed && st.backend != core::ProbeBackend::kNone;
    nlohmann::json j{{"addr", hex(specs[i].addr.value())},
                     {"kind", specs[i].kind == core::ProbeKind::kExec ? "exec" : "write1"},
                     {"backend", core::to_string(st.backend)},
                     {"error", st.error},
                     {"hits", hits[i]},
                     {"samples", first[i]}};
    if (!labels[i].empty()) j["func"] = labels[i];
    if (st.backend == core::ProbeBackend::kUprobe) j["uprobe"] = fmt::format("{}+{:#x}", st.spec.file, st.spec.file_offset);
    probes.push_back(j);
  }
  out["probes"] = probes;
  out["lost"] = ps.lost();
  out["foreign"] = ps.foreign();
  out["target_exited"] = exited;
  fmt::print("{}\n", out.dump(2));
  return all_placed ? kExitOk : kExitFailure;
}

}  // namespace

const Command kProbeCommand{"probe", "count hits of hardware breakpoints/watchpoints and uprobes on a live process",
                            kUsage, run_probe};

}  // namespace gort::recorder
