// perf script parsing and per-thread timelines, on text captured on the development VM
// (perf 6.1, Linux 6.18) with
//   perf record -k CLOCK_MONOTONIC -e sched:sched_switch -e cpu-clock -F 999 -g -- ./locked_writes 2000000
//   perf script -i perf.data --ns -G -F +pid
// (per-task: cpu-clock samples carry no CPU; switch-ins from other processes are not
// recorded), plus lines of a system-wide (-a) recording, and junk the parser must skip.

#include "core/analysis/perf_timeline.h"

#include <doctest/doctest.h>

#include <string>

using namespace gort::core::analysis;

namespace {

// L1..L12 in the comments below are the event lines in order.
constexpr const char* kPerTask =
    "              lw 23167/23167 [000]  1264.936962687: sched:sched_switch: prev_comm=lw prev_pid=23167 prev_prio=120 prev_state=R ==> next_comm=lw next_pid=23170 next_prio=120\n"
    "              lw 23167/23170 [000]  1264.937012579: sched:sched_switch: prev_comm=lw prev_pid=23170 prev_prio=120 prev_state=S ==> next_comm=perf next_pid=23166 next_prio=120\n"
    "              lw 23167/23170 [000]  1264.937104023: sched:sched_switch: prev_comm=lw prev_pid=23170 prev_prio=120 prev_state=S ==> next_comm=lw next_pid=23167 next_prio=120\n"
    "              lw 23167/23170 [000]  1264.937200957: sched:sched_switch: prev_comm=lw prev_pid=23170 prev_prio=120 prev_state=S ==> next_comm=lw next_pid=23171 next_prio=120\n"
    "              lw 23167/23167  1264.937302700:    1001001          cpu-clock:            410241 runtime.mapassign_faststr+0x4e1 (/tmp/rep/lw)\n"
    "\tffffffff821facd8 __schedule\n"  // a callchain line (recorded with -g, read without -G): skipped
    "              lw 23167/23167 [000]  1264.937415380: sched:sched_switch: prev_comm=lw prev_pid=23167 prev_prio=120 prev_state=R ==> next_comm=lw next_pid=23171 next_prio=120\n"
    "              lw 23167/23171  1264.938303739:    1001001          cpu-clock:            4a0b80 main.(*cache).put+0x0 (/tmp/rep/lw)\n"
    "              lw 23167/23171  1264.939304374:    1001001          cpu-clock:            4a0ba8 main.(*cache).put+0x28 (/tmp/rep/lw)\n"
    "\n"
    "# a comment\n"
    "this is not a perf script line\n"
    "              lw 23167/23167 [000]  1264.940052371: sched:sched_switch: prev_comm=lw prev_pid=23167 prev_prio=120 prev_state=S ==> next_comm=lw next_pid=23171 next_prio=120\n"
    "              lw 23167/23171 [000]  1264.940057659: sched:sched_switch: prev_comm=lw prev_pid=23171 prev_prio=120 prev_state=R ==> next_comm=lw next_pid=23167 next_prio=120\n"
    "              lw 23167/23167 [000]  1264.940069423: sched:sched_switch: prev_comm=lw prev_pid=23167 prev_prio=120 prev_state=S ==> next_comm=lw next_pid=23171 next_prio=120\n"
    "              lw 23167/23169 [001]  1264.940118119: sched:sched_switch: prev_comm=lw prev_pid=23169 prev_prio=120 prev_state=S ==> next_comm=cc1plus next_pid=23103 next_prio=120\n";

constexpr uint64_t L(uint64_t ns_after_1264_9) { return 1264'900'000'000ull + ns_after_1264_9; }
constexpr uint64_t L1 = L(36962687), L2 = L(37012579), L3 = L(37104023), L4 = L(37200957), L5 = L(37302700),
                   L6 = L(37415380), L8 = L(39304374), L9 = L(40052371), L10 = L(40057659),
                   L11 = L(40069423), L12 = L(40118119);

}  // namespace

TEST_CASE("perf script lines: switch, sample, pid/tid, cpu or none, period, dso") {
  auto sw = parse_perf_script_line(
      "              lw 23167/23170 [000]  1264.937012579: sched:sched_switch: prev_comm=lw prev_pid=23170 "
      "prev_prio=120 prev_state=S ==> next_comm=perf next_pid=23166 next_prio=120");
  REQUIRE(sw);
  CHECK(sw->comm == "lw");
  CHECK(sw->pid == 23167);
  CHECK(sw->tid == 23170);
  CHECK(sw->cpu == 0);
  CHECK(sw->time_ns == L2);
  CHECK(sw->event == "sched:sched_switch");
  CHECK(sw->is_switch);
  CHECK(sw->prev_pid == 23170);
  CHECK(sw->prev_state == "S");
  CHECK(sw->next_pid == 23166);
  CHECK(sw->next_comm == "perf");

  auto s = parse_perf_script_line(
      "              lw 23167/23167  1264.937302700:    1001001          cpu-clock:            410241 "
      "runtime.mapassign_faststr+0x4e1 (/tmp/rep/lw)");
  REQUIRE(s);
  CHECK(s->cpu == -1);
  CHECK(s->tid == 23167);
  CHECK(s->event == "cpu-clock");
  CHECK_FALSE(s->is_switch);
  CHECK(s->ip == 0x410241);
  CHECK(s->symbol == "runtime.mapassign_faststr");
  CHECK(s->dso == "/tmp/rep/lw");

  // System-wide (-a) lines: a comm with '/', "18/18" padded, [unknown] symbols.
  auto m = parse_perf_script_line(
      "     migration/0    18/18    [000]   861.659106221: sched:sched_switch: prev_comm=migration/0 prev_pid=18 "
      "prev_prio=0 prev_state=S ==> next_comm=cc1plus next_pid=20574 next_prio=120");
  REQUIRE(m);
  CHECK(m->comm == "migration/0");
  CHECK(m->tid == 18);
  CHECK(m->next_pid == 20574);
  auto u = parse_perf_script_line(
      "         cc1plus 20574/20574 [000]   861.659988642:    1001001          cpu-clock:            9f7a25 "
      "[unknown] (/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus)");
  REQUIRE(u);
  CHECK(u->cpu == 0);
  CHECK(u->symbol == "[unknown]");
  CHECK(u->dso == "/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus");
  auto k = parse_perf_script_line(
      "              cw 20163   840.546421760:    1001001          cpu-clock:  ffffffff813a4413 "
      "finish_task_switch.isra.0+0x93 ([kernel.kallsyms])");
  REQUIRE(k);  // no pid field (default fields without +pid)
  CHECK(k->pid == 0);
  CHECK(k->tid == 20163);
  CHECK(k->ip == 0xffffffff813a4413);
  CHECK(k->symbol == "finish_task_switch.isra.0");
  CHECK(k->dso == "[kernel.kallsyms]");
  // A comm with a space, microsecond times (no --ns).
  auto w = parse_perf_script_line(
      "     Web Content  3001/3002  [001]   861.663300: sched:sched_switch: prev_comm=Web Content prev_pid=3002 "
      "prev_prio=120 prev_state=R+ ==> next_comm=kworker/1:1 next_pid=77 next_prio=120");
  REQUIRE(w);
  CHECK(w->comm == "Web Content");
  CHECK(w->time_ns == 861'663'300'000ull);
  CHECK(w->prev_pid == 3002);
  CHECK(w->prev_state == "R+");
  CHECK(w->next_comm == "kworker/1:1");

  CHECK_FALSE(parse_perf_script_line(""));
  CHECK_FALSE(parse_perf_script_line("# ========"));
  CHECK_FALSE(parse_perf_script_line("\tffffffff821facd8 __schedule"));
  CHECK_FALSE(parse_perf_script_line("lw 23167 [000] notatime: x"));
  CHECK_FALSE(parse_perf_script_line("lw abc [000]  1264.937012579: sched:sched_switch: prev_pid=1 next_pid=2"));
  CHECK_FALSE(parse_perf_script_line("lw 1 [000]  1264.937012579: sched:sched_switch: garbage"));
}

TEST_CASE("per-thread timelines from a per-task recording") {
  PerfTimeline tl = parse_perf_script(kPerTask, 23167);
  CHECK(tl.lines == 14);
  CHECK(tl.parsed == 12);
  CHECK(tl.skipped == 2);
  CHECK(tl.skipped_examples.size() == 2);
  CHECK(tl.events["sched:sched_switch"] == 9);
  CHECK(tl.events["cpu-clock"] == 3);
  CHECK(tl.first_ns == L1);
  CHECK(tl.last_ns == L12);
  // The process's threads only (perf and cc1plus were switched to, not ours).
  REQUIRE(tl.threads.size() == 4);
  CHECK(tl.thread(23166) == nullptr);
  CHECK(tl.thread(23103) == nullptr);

  const ThreadTimeline* main = tl.thread(23167);
  REQUIRE(main);
  CHECK(main->pid == 23167);
  CHECK(main->comm == "lw");
  REQUIRE(main->on_cpu.size() == 5);
  // L1: switched out with no switch-in seen: known to run at that instant only.
  CHECK(main->on_cpu[0].start_ns == L1);
  CHECK(main->on_cpu[0].end_ns == L1);
  CHECK_FALSE(main->on_cpu[0].start_known);
  CHECK(main->on_cpu[0].end_state == "R");
  // L3 in; at L4 another thread of ours leaves CPU 0, so main left it unseen before.
  CHECK(main->on_cpu[1].start_ns == L3);
  CHECK(main->on_cpu[1].start_known);
  CHECK_FALSE(main->on_cpu[1].end_known);
  // Sample at L5, switch-out at L6: ran from at most L5.
  CHECK(main->on_cpu[2].start_ns == L5);
  CHECK(main->on_cpu[2].end_ns == L6);
  CHECK_FALSE(main->on_cpu[2].start_known);
  CHECK(main->on_cpu[2].end_known);
  CHECK(main->on_cpu[2].cpu == 0);
  // L10 in, L11 out (sleeping): exact.
  CHECK(main->on_cpu[4].start_ns == L10);
  CHECK(main->on_cpu[4].end_ns == L11);
  CHECK(main->on_cpu[4].start_known);
  CHECK(main->on_cpu[4].end_known);
  CHECK(main->on_cpu[4].end_state == "S");
  // The sample got its CPU from the switch-out that followed.
  REQUIRE(main->samples.size() == 1);
  CHECK(main->samples[0].time_ns == L5);
  CHECK(main->samples[0].cpu == 0);
  CHECK(main->samples[0].symbol == "runtime.mapassign_faststr");
  CHECK(main->samples[0].ip == 0x410241);

  const ThreadTimeline* w = tl.thread(23171);
  REQUIRE(w);
  REQUIRE(w->on_cpu.size() == 4);
  // In at L6, in again at L9 without an out: the first ends at its last sample (L8).
  CHECK(w->on_cpu[1].start_ns == L6);
  CHECK(w->on_cpu[1].end_ns == L8);
  CHECK_FALSE(w->on_cpu[1].end_known);
  CHECK(w->on_cpu[2].start_ns == L9);
  CHECK(w->on_cpu[2].end_ns == L10);
  CHECK(w->on_cpu[2].end_state == "R");
  // In at L11, still on when the recording ends.
  CHECK(w->on_cpu[3].start_ns == L11);
  CHECK(w->on_cpu[3].end_ns == L12);
  CHECK_FALSE(w->on_cpu[3].end_known);
  REQUIRE(w->samples.size() == 2);
  CHECK(w->samples[0].cpu == 0);  // on CPU 0 since L6
  CHECK(w->samples[1].symbol == "main.(*cache).put");

  const ThreadTimeline* t70 = tl.thread(23170);
  REQUIRE(t70);
  REQUIRE(t70->on_cpu.size() == 3);
  CHECK(t70->on_cpu[0].start_ns == L1);
  CHECK(t70->on_cpu[0].end_ns == L2);
  CHECK(t70->on_cpu[0].start_known);
  CHECK(t70->on_cpu[0].end_known);

  // Without a pid filter every thread seen stays.
  PerfTimeline all = parse_perf_script(kPerTask);
  CHECK(all.threads.size() == 6);
  REQUIRE(all.thread(23103));
  CHECK(all.thread(23103)->comm == "cc1plus");
  CHECK(all.thread(23103)->pid == 0);
}

TEST_CASE("the recording clock from perf's header") {
  CHECK(perf_header_clock("# cmdline : /usr/bin/perf record -k CLOCK_MONOTONIC -e cpu-clock\n"
                          "# event : name = cpu-clock, , id = { 3093, 3094 }, type = 1, size = 128, use_clockid = 1, "
                          "clockid = 1\n"
                          "# clockid frequency: 1000 MHz\n"
                          "# clockid: monotonic (1)\n") == "monotonic");
  CHECK(perf_header_clock("# clockid: monotonic_raw (4)\n") == "monotonic_raw");
  // Older perf: no "# clockid:" line, the event attributes say it.
  CHECK(perf_header_clock("# event : name = cpu-clock, , type = 1, use_clockid = 1, clockid = 1\n") == "monotonic");
  CHECK(perf_header_clock("# event : name = cpu-clock, , type = 1, use_clockid = 1, clockid = 7\n") == "boottime");
  // Recorded without -k.
  CHECK(perf_header_clock("# cmdline : /usr/bin/perf record -e cpu-clock -- true\n"
                          "# event : name = cpu-clock, , id = { 3284, 3285 }, type = 1, size = 128, sample_type = "
                          "IP|TID|TIME|PERIOD, read_format = ID|LOST, disabled = 1, inherit = 1, mmap = 1\n") == "");
}
