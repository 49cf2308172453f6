// libFuzzer target for the `perf script` text parser behind `gort report --perf`
// (core/analysis/perf_timeline.h): perf's output is read line by line and turned into
// per-thread on-CPU intervals and samples. Each input is parsed whole (every thread, and
// filtered to the pid of its first event line), line by line with
// parse_perf_script_line, and as `perf script --header-only` text (perf_header_clock).
// perf prints what the recorded events hold: comm names with spaces or brackets,
// unknown events, huge numbers; none of it may crash the report.
//
// Seeds: tests/fuzz/corpus/perf_script/ (written by hand in the format of
// `perf script --ns -G -F +pid` and `perf script --header-only`, perf 6.1: per-task and
// system-wide sched_switch and cpu-clock lines, callchain lines, junk, a header).
#include "core/analysis/perf_timeline.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

using namespace gort::core::analysis;

namespace {
volatile uint64_t g_sink;
void use(uint64_t v) { g_sink = g_sink + v; }

void use_timeline(const PerfTimeline& tl) {
  use(tl.threads.size() + tl.lines + tl.parsed + tl.skipped + tl.events.size() + tl.first_ns + tl.last_ns);
  for (const auto& [tid, t] : tl.threads) {
    for (const auto& c : t.on_cpu) use(c.end_ns - c.start_ns + uint64_t(c.cpu));
    for (const auto& s : t.samples) use(s.ip + s.symbol.size());
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  use_timeline(parse_perf_script(text));
  uint32_t pid = 0;
  for (size_t at = 0, n = 0; at < text.size() && n < 4096; n++) {
    size_t nl = text.find('\n', at);
    std::string_view line = text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    if (auto l = parse_perf_script_line(line)) {
      if (pid == 0) pid = l->pid;
      use(l->time_ns + l->ip + l->symbol.size() + l->dso.size());
    }
    if (nl == std::string_view::npos) break;
    at = nl + 1;
  }
  if (pid != 0) use_timeline(parse_perf_script(text, pid));
  use(perf_header_clock(text).size());
  return 0;
}
