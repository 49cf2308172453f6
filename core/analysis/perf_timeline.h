#pragma once
// Per-thread timelines from a `perf record -k CLOCK_MONOTONIC` recording: when each
// thread was on a CPU (from sched:sched_switch) and what it was running (samples), to
// lay beside a gort trace of the same run (both on CLOCK_MONOTONIC). docs/report.md.
//
// perf.data is read through `perf script --ns -G -F +pid` (default fields plus the pid):
//   cw 20134/20162 [001]   840.539453880: sched:sched_switch: prev_comm=cw prev_pid=20162 ...
//   cw 20134/20163   840.546421760:    1001001 cpu-clock:  480e97 runtime.usleep.abi0+0x37 (/tmp/cw)
// Lines the parser does not understand are skipped and counted, never fatal.

#include "core/util/result.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gort::core::analysis {

/// A stretch of time a thread ran on one CPU.
struct OnCpu {
  uint64_t start_ns = 0, end_ns = 0;
  int32_t cpu = -1;
  /// The switch-in was recorded. Per-task recordings only see switch-ins from threads of
  /// the same process; otherwise the start is the first sign of running after the last
  /// switch-out (a sample or the switch-out itself): the thread ran from at most then.
  bool start_known = true;
  bool end_known = true;   ///< false: still on CPU when the recording ended
  std::string end_state;   ///< prev_state at the switch-out: "R"/"R+" preempted, "S" sleeping, "D", ...
};

struct PerfSample {
  uint64_t time_ns = 0;
  int32_t cpu = -1;        ///< -1 unknown (per-task cpu-clock has no CPU; filled from the on-CPU interval)
  uint64_t ip = 0;
  std::string event;       ///< "cpu-clock", "cycles", ...
  std::string symbol;      ///< "runtime.mapassign_fast64" (offset removed), "[unknown]"
  std::string dso;         ///< "/tmp/cw", "[kernel.kallsyms]"
};

struct ThreadTimeline {
  uint32_t tid = 0;
  uint32_t pid = 0;        ///< 0 when the thread was only seen being switched in
  std::string comm;
  std::vector<OnCpu> on_cpu;        ///< time order
  std::vector<PerfSample> samples;  ///< time order
};

struct PerfTimeline {
  std::map<uint32_t, ThreadTimeline> threads;
  uint64_t first_ns = 0, last_ns = 0;
  uint64_t lines = 0;       ///< non-empty lines read
  uint64_t parsed = 0;      ///< lines understood
  uint64_t skipped = 0;     ///< lines not understood (examples below)
  std::vector<std::string> skipped_examples;  ///< up to 5
  std::map<std::string, uint64_t> events;     ///< event name -> count
  std::string clock;        ///< from the header: "monotonic", "" when none was set
  std::string cmdline;      ///< the perf record command line, from the header
  std::vector<std::string> warnings;  ///< perf's stderr lines

  const ThreadTimeline* thread(uint32_t tid) const {
    auto it = threads.find(tid);
    return it == threads.end() ? nullptr : &it->second;
  }
};

/// One `perf script` line, parsed.
struct PerfLine {
  std::string comm;
  uint32_t pid = 0, tid = 0;
  int32_t cpu = -1;
  uint64_t time_ns = 0;
  std::string event;
  // sched:sched_switch payload
  bool is_switch = false;
  uint32_t prev_pid = 0, next_pid = 0;
  std::string prev_state, next_comm;
  // samples
  uint64_t ip = 0;
  std::string symbol, dso;
};

/// Parses one line; nullopt when it is not an event line this parser knows.
std::optional<PerfLine> parse_perf_script_line(std::string_view line);

/// Builds timelines from `perf script` lines fed in order.
class PerfTimelineBuilder {
 public:
  /// PID: keep only this process's threads (0: all).
  explicit PerfTimelineBuilder(uint32_t pid = 0) : pid_(pid) {}
  void line(std::string_view l);
  /// Closes what is still open at the last event time.
  PerfTimeline finish();

 private:
  struct State {
    bool on = false;
    uint64_t since = 0;
    int32_t cpu = -1;
    uint64_t evidence = 0;  ///< first sign of running while not known on
    uint64_t last_seen = 0; ///< last time it was known running (switch-in, sample)
    std::vector<size_t> cpu_unknown;  ///< samples to fill with the CPU at the next switch-out
  };
  ThreadTimeline& thread(uint32_t tid);
  void switch_out(uint32_t tid, uint64_t t, int32_t cpu, const std::string& state);
  void lost_out(uint32_t tid);  ///< it left the CPU unseen: end at its last sign of running
  PerfTimeline tl_;
  std::map<uint32_t, State> state_;
  std::map<int32_t, uint32_t> on_cpu_;  ///< cpu -> the thread switched in there
  uint32_t pid_ = 0;
};

/// Parses whole `perf script` text (unit tests, captured output).
PerfTimeline parse_perf_script(std::string_view text, uint32_t pid = 0);

/// The clock perf recorded with, from `perf script --header-only` text: "monotonic",
/// "monotonic_raw", "realtime", "boottime", "tai", "clockid N", or "" when none was set.
std::string perf_header_clock(std::string_view header_text);

struct PerfLoadOptions {
  std::string perf;     ///< the perf command; "" = $GORT_PERF or "perf" on PATH
  uint32_t pid = 0;     ///< keep only this process's threads (0: all)
  bool allow_any_clock = false;  ///< accept a recording made without -k CLOCK_MONOTONIC
};

/// Runs perf on PATH and builds the timelines. Errors (kBadInput unless said): perf missing
/// ("install it: apt install linux-perf"), PATH missing, not a perf.data file (perf's own
/// words), recorded without -k CLOCK_MONOTONIC.
Result<PerfTimeline> load_perf_timeline(const std::string& path, const PerfLoadOptions& opts = {});

}  // namespace gort::core::analysis
