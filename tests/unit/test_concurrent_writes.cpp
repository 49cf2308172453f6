// Concurrent map-write analysis on synthetic events: overlapping windows of two goroutines
// on one map, serialized windows, nesting inside one goroutine, throws inside another
// goroutine's window (and just after it), grouping by stack pair, g reuse through
// kGoStart/kGoExit, windows that never close, morestack re-entries, lost ends; and the
// symbolized stacks (synthetic pclntab) that start at the user's caller.

#include "core/analysis/concurrent_writes.h"

#include <doctest/doctest.h>

#include "tests/unit/synthetic_pclntab.h"

#include <string>
#include <vector>

using namespace gort::core;
using namespace gort::core::analysis;
using trace::SiteKind;

namespace {

enum Site : uint32_t {
  kAssignBegin, kAssignEnd, kClearEntry, kClearRet, kThrow, kGoStart, kGoExit, kDeleteBegin, kDeleteEnd,
};

trace::Header header() {
  trace::Header h;
  h.executable = "/tmp/prog";
  h.go_version = "go1.26.1";
  h.map_impl = "swiss";
  h.pid = 4242;
  h.start_ns = 1'000;
  h.stack_depth = 8;
  h.sites = {
      {SiteKind::kWriteBegin, "runtime.mapassign_fast64", "assign", 0x40f100, "hw"},
      {SiteKind::kWriteEnd, "runtime.mapassign_fast64", "assign", 0x40f200, "hw"},
      {SiteKind::kEntry, "runtime.mapclear", "clear", 0x40a000, "uprobe"},
      {SiteKind::kReturn, "runtime.mapclear", "clear", 0x40a0f0, "uprobe"},
      {SiteKind::kThrow, "runtime.fatal", "", 0x445c40, "uprobe"},
      {SiteKind::kGoStart, "runtime.newproc1", "", 0x44a000, "uprobe"},
      {SiteKind::kGoExit, "runtime.goexit0", "", 0x44b000, "uprobe"},
      {SiteKind::kWriteBegin, "runtime.mapdelete_fast64", "delete", 0x40c100, "hw"},
      {SiteKind::kWriteEnd, "runtime.mapdelete_fast64", "delete", 0x40c200, "hw"},
  };
  return h;
}

constexpr uint64_t kM = 0xc000072150, kM2 = 0xc000080000;
constexpr uint64_t kGA = 0xc000002000, kGB = 0xc000003000, kGC = 0xc000004000;
// Caller stacks (return addresses) of writer A and writer B.
constexpr uint64_t kRetA = 0x4a1100, kRetB = 0x4a1200, kRetA2 = 0x4a1300;

trace::Event ev(uint64_t t, uint32_t site, uint64_t goid, uint64_t g, uint64_t map, std::vector<uint64_t> stack = {},
                uint32_t tid = 0) {
  trace::Event e;
  e.time_ns = t;
  e.site = site;
  e.goid = goid;
  e.g = g;
  e.map = map;
  e.tid = tid ? tid : uint32_t(100 + goid);
  e.cpu = uint32_t(goid % 2);
  e.stack = std::move(stack);
  return e;
}
// A write window of goroutine GOID on MAP from S to E (stack: site pc, caller RET).
void window(std::vector<trace::Event>& v, uint64_t goid, uint64_t g, uint64_t map, uint64_t s, uint64_t e,
            uint64_t ret, Site begin = kAssignBegin, Site end = kAssignEnd) {
  v.push_back(ev(s, begin, goid, g, map, {0x40f100, ret, 0x4a9000}));
  v.push_back(ev(e, end, goid, g, map, {0x40f200, ret, 0x4a9000}));
}
void sort_by_time(std::vector<trace::Event>& v) {
  std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.time_ns < b.time_ns; });
}

}  // namespace

TEST_CASE("two goroutines with overlapping windows on one map: one finding naming both") {
  std::vector<trace::Event> v;
  window(v, 7, kGA, kM, 100, 200, kRetA);
  window(v, 8, kGB, kM, 150, 250, kRetB);
  sort_by_time(v);
  auto r = find_concurrent_writes(header(), v);
  REQUIRE(r.findings.size() == 1);
  const Finding& f = r.findings[0];
  CHECK(f.kind == kConcurrentMapWrite);
  CHECK(f.map == kM);
  CHECK(f.count == 1);
  CHECK(f.first_ns == 150);
  CHECK(f.a.goroutine == 7);
  CHECK(f.a.g == kGA);
  CHECK(f.a.thread == 107);
  CHECK(f.a.start_ns == 100);
  CHECK(f.a.end_ns == 200);
  CHECK(f.a.closed);
  CHECK(f.a.op == "assign");
  CHECK(f.a.function == "runtime.mapassign_fast64");
  CHECK(f.b.goroutine == 8);
  CHECK(f.b.start_ns == 150);
  CHECK(f.b.end_ns == 250);
  CHECK_FALSE(f.b.threw);
  REQUIRE(f.a.stack < r.stacks.size());
  CHECK(r.stacks[f.a.stack] == std::vector<uint64_t>{kRetA, 0x4a9000});
  CHECK(r.stacks[f.b.stack] == std::vector<uint64_t>{kRetB, 0x4a9000});
  CHECK(r.stats.events == 4);
  CHECK(r.stats.windows == 2);
  CHECK(r.stats.maps == 1);
  CHECK(r.stats.goroutines == 2);
  CHECK(r.stats.unclosed == 0);
}

TEST_CASE("serialized windows (one closes before the other opens) are no finding") {
  std::vector<trace::Event> v;
  for (int i = 0; i < 10; i++) {
    window(v, 7, kGA, kM, 1000 * i, 1000 * i + 100, kRetA);
    window(v, 8, kGB, kM, 1000 * i + 200, 1000 * i + 300, kRetB);
  }
  auto r = find_concurrent_writes(header(), v);
  CHECK(r.findings.empty());
  CHECK(r.stats.windows == 20);
  CHECK(r.stats.unmatched_ends == 0);
}

TEST_CASE("a close at the same instant as the other's open, in stream order, is no overlap") {
  std::vector<trace::Event> v;
  window(v, 7, kGA, kM, 100, 200, kRetA);
  window(v, 8, kGB, kM, 200, 300, kRetB);
  sort_by_time(v);  // stable: A's end comes before B's begin
  CHECK(find_concurrent_writes(header(), v).findings.empty());
}

TEST_CASE("the same goroutine nested (mapclear around a mapassign) is no finding") {
  std::vector<trace::Event> v;
  v.push_back(ev(100, kClearEntry, 7, kGA, kM, {0x40a000, kRetA}));
  window(v, 7, kGA, kM, 110, 120, kRetA2);
  v.push_back(ev(130, kClearRet, 7, kGA, kM, {0x40a0f0, kRetA}));
  auto r = find_concurrent_writes(header(), v);
  CHECK(r.findings.empty());
  CHECK(r.stats.windows == 2);
  CHECK(r.stats.unclosed == 0);
}

TEST_CASE("different maps never collide") {
  std::vector<trace::Event> v;
  window(v, 7, kGA, kM, 100, 200, kRetA);
  window(v, 8, kGB, kM2, 150, 250, kRetB);
  sort_by_time(v);
  auto r = find_concurrent_writes(header(), v);
  CHECK(r.findings.empty());
  CHECK(r.stats.maps == 2);
}

TEST_CASE("a throw inside another goroutine's window: a finding with both, the map inferred") {
  std::vector<trace::Event> v;
  v.push_back(ev(100, kAssignBegin, 7, kGA, kM, {0x40f100, kRetA, 0x4a9000}));  // never ends: the process dies
  v.push_back(ev(150, kThrow, 8, kGB, 0, {0x445c40, 0x40f0f0, kRetB, 0x4a9000}));
  ConcurrentWritesOptions o;
  o.throw_origin = [](const std::vector<uint64_t>& s) -> std::string {
    return s.size() > 1 && s[1] == 0x40f0f0 ? "runtime.mapassign_fast64" : "";
  };
  auto r = find_concurrent_writes(header(), v, o, 5000);
  REQUIRE(r.findings.size() == 1);
  const Finding& f = r.findings[0];
  CHECK(f.kind == kConcurrentMapWrite);
  CHECK(f.map == kM);
  CHECK(f.map_inferred);
  CHECK(f.a.goroutine == 7);
  CHECK_FALSE(f.a.closed);
  CHECK(f.a.end_ns == 5000);
  CHECK(f.b.goroutine == 8);
  CHECK(f.b.threw);
  CHECK(f.b.start_ns == 150);
  CHECK(f.b.function == "runtime.mapassign_fast64");
  CHECK(f.b.op == "assign");
  CHECK(r.stacks[f.b.stack] == std::vector<uint64_t>{0x40f0f0, kRetB, 0x4a9000});
  CHECK(r.stats.throws == 1);
  CHECK(r.stats.unclosed == 1);
}

TEST_CASE("a throw that is no map throw, or by the writer itself, is no finding") {
  std::vector<trace::Event> v;
  v.push_back(ev(100, kAssignBegin, 7, kGA, kM, {0x40f100, kRetA}));
  v.push_back(ev(150, kThrow, 8, kGB, 0, {0x445c40, 0x499999}));
  ConcurrentWritesOptions o;
  o.throw_origin = [](const std::vector<uint64_t>& s) -> std::string {
    return s.size() > 1 && s[1] == 0x40f0f0 ? "runtime.mapassign_fast64" : "";
  };
  CHECK(find_concurrent_writes(header(), v, o).findings.empty());
  std::vector<trace::Event> w;
  w.push_back(ev(100, kAssignBegin, 7, kGA, kM, {0x40f100, kRetA}));
  w.push_back(ev(150, kThrow, 7, kGA, 0, {0x445c40, 0x40f0f0}));
  CHECK(find_concurrent_writes(header(), w, o).findings.empty());
}

TEST_CASE("a throw just after the writer cleared its flag still names the writer") {
  std::vector<trace::Event> v;
  window(v, 7, kGA, kM, 100, 200, kRetA);
  v.push_back(ev(250, kThrow, 8, kGB, 0, {0x445c40, 0x40f0f0, kRetB}));
  auto r = find_concurrent_writes(header(), v);  // no throw_origin: every throw counts
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].a.goroutine == 7);
  CHECK(r.findings[0].a.closed);
  CHECK(r.findings[0].a.end_ns == 200);
  CHECK(r.findings[0].b.threw);
  // Long after: no.
  std::vector<trace::Event> w;
  window(w, 7, kGA, kM, 100, 200, kRetA);
  w.push_back(ev(200 + 5'000'000, kThrow, 8, kGB, 0, {0x445c40, 0x40f0f0, kRetB}));
  CHECK(find_concurrent_writes(header(), w).findings.empty());
}

TEST_CASE("a throw from a map read is a read/write finding") {
  std::vector<trace::Event> v;
  v.push_back(ev(100, kAssignBegin, 7, kGA, kM, {0x40f100, kRetA}));
  v.push_back(ev(150, kThrow, 8, kGB, 0, {0x445c40, 0x40d0f0, kRetB}));
  ConcurrentWritesOptions o;
  o.throw_origin = [](const std::vector<uint64_t>&) -> std::string { return "runtime.mapaccess1_fast64"; };
  auto r = find_concurrent_writes(header(), v, o);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].kind == kConcurrentMapReadWrite);
  CHECK(r.findings[0].b.op == "read");
}

TEST_CASE("occurrences group by the pair of caller stacks; maps are listed, counts add") {
  std::vector<trace::Event> v;
  // Same pair (A, B) three times, on two maps, in both orders.
  window(v, 7, kGA, kM, 100, 200, kRetA);
  window(v, 8, kGB, kM, 150, 250, kRetB);
  window(v, 8, kGB, kM2, 1000, 1100, kRetB);
  window(v, 7, kGA, kM2, 1050, 1150, kRetA);
  window(v, 7, kGA, kM, 2000, 2100, kRetA);
  window(v, 8, kGB, kM, 2050, 2150, kRetB);
  // Another pair (A2, B).
  window(v, 9, kGC, kM, 3000, 3100, kRetA2);
  window(v, 8, kGB, kM, 3050, 3150, kRetB);
  sort_by_time(v);
  auto r = find_concurrent_writes(header(), v);
  REQUIRE(r.findings.size() == 2);
  const Finding& f = r.findings[0];
  CHECK(f.count == 3);
  CHECK(f.maps == std::vector<uint64_t>{kM, kM2});
  CHECK(f.first_ns == 150);
  CHECK(f.last_ns == 2050);
  CHECK(f.a.start_ns == 100);  // the first occurrence is the one shown
  CHECK(r.findings[1].count == 1);
  CHECK(r.findings[1].a.goroutine == 9);
  CHECK(r.findings[1].first_ns == 3050);
}

TEST_CASE("a reused g is a new goroutine: goids from kGoStart / kGoExit") {
  std::vector<trace::Event> v;
  v.push_back(ev(10, kGoStart, 5, kGA, 0));
  v.push_back(ev(11, kGoStart, 6, kGB, 0));
  // goroutine 5 (events carry goid 0: resolved from g) begins and its end is lost.
  v.push_back(ev(100, kAssignBegin, 0, kGA, kM, {0x40f100, kRetA}, 300));
  v.push_back(ev(150, kGoExit, 0, kGA, 0, {}, 300));
  v.push_back(ev(160, kGoStart, 9, kGA, 0, {}, 300));
  // The same g, now goroutine 9, writes; then goroutine 6 overlaps it.
  v.push_back(ev(200, kAssignBegin, 0, kGA, kM, {0x40f100, kRetA2}, 300));
  v.push_back(ev(250, kAssignBegin, 0, kGB, kM, {0x40f100, kRetB}, 301));
  v.push_back(ev(300, kAssignEnd, 0, kGA, kM, {0x40f200, kRetA2}, 300));
  v.push_back(ev(350, kAssignEnd, 0, kGB, kM, {0x40f200, kRetB}, 301));
  auto r = find_concurrent_writes(header(), v);
  REQUIRE(r.findings.size() == 1);  // nothing between goroutine 5's stale window and 9
  CHECK(r.findings[0].a.goroutine == 9);
  CHECK(r.findings[0].a.g == kGA);
  CHECK(r.findings[0].b.goroutine == 6);
  CHECK(r.stats.lost_ends == 1);
  CHECK(r.stats.unmatched_ends == 0);
}

TEST_CASE("goroutines with unknown goids are told apart by g") {
  std::vector<trace::Event> v;
  window(v, 0, kGA, kM, 100, 200, kRetA);
  window(v, 0, kGB, kM, 150, 250, kRetB);
  sort_by_time(v);
  auto r = find_concurrent_writes(header(), v);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].a.goroutine == 0);
  CHECK(r.findings[0].a.g == kGA);
  CHECK(r.findings[0].b.g == kGB);
}

TEST_CASE("windows that never close stay open until the end of the trace") {
  std::vector<trace::Event> v;
  v.push_back(ev(100, kAssignBegin, 7, kGA, kM, {0x40f100, kRetA}));
  window(v, 8, kGB, kM, 5000, 6000, kRetB);
  std::vector<WindowView> seen;
  ConcurrentWritesOptions o;
  o.on_window = [&](const WindowView& w) { seen.push_back(w); };
  auto r = find_concurrent_writes(header(), v, o, 9000);
  REQUIRE(r.findings.size() == 1);
  CHECK_FALSE(r.findings[0].a.closed);
  CHECK(r.findings[0].a.end_ns == 9000);
  CHECK(r.findings[0].b.closed);
  CHECK(r.stats.unclosed == 1);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].goroutine == 8);
  CHECK(seen[1].goroutine == 7);
  CHECK_FALSE(seen[1].closed);
  CHECK(seen[1].end_ns == 9000);
  // Without an end time: the last event's.
  auto r2 = find_concurrent_writes(header(), v);
  CHECK(r2.findings[0].a.end_ns == 6000);
}

TEST_CASE("an entry again before the return (morestack restart) continues the same call") {
  std::vector<trace::Event> v;
  v.push_back(ev(100, kClearEntry, 7, kGA, kM, {0x40a000, kRetA}));
  v.push_back(ev(150, kClearEntry, 7, kGA, kM, {0x40a000, kRetA}));
  v.push_back(ev(180, kAssignBegin, 8, kGB, kM, {0x40f100, kRetB}));
  v.push_back(ev(190, kAssignEnd, 8, kGB, kM, {0x40f200, kRetB}));
  v.push_back(ev(200, kClearRet, 7, kGA, kM, {0x40a0f0, kRetA}));
  auto r = find_concurrent_writes(header(), v);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].a.start_ns == 100);
  CHECK(r.findings[0].a.end_ns == 200);
  CHECK(r.findings[0].a.op == "clear");
  CHECK(r.stats.windows == 2);
  CHECK(r.stats.unclosed == 0);
}

TEST_CASE("a write-begin again without its end: the lost end closes the old window") {
  std::vector<trace::Event> v;
  v.push_back(ev(100, kAssignBegin, 7, kGA, kM, {0x40f100, kRetA}));
  v.push_back(ev(300, kAssignBegin, 7, kGA, kM, {0x40f100, kRetA}));
  v.push_back(ev(310, kAssignEnd, 7, kGA, kM, {0x40f200, kRetA}));
  window(v, 8, kGB, kM, 400, 500, kRetB);
  auto r = find_concurrent_writes(header(), v);
  CHECK(r.findings.empty());
  CHECK(r.stats.lost_ends == 1);
  CHECK(r.stats.unclosed == 0);
}

TEST_CASE("an end without a map pointer closes the goroutine's window of that function") {
  std::vector<trace::Event> v;
  v.push_back(ev(100, kDeleteBegin, 7, kGA, kM, {0x40c100, kRetA}));
  v.push_back(ev(200, kDeleteEnd, 7, kGA, 0, {0x40c200, kRetA}));
  window(v, 8, kGB, kM, 300, 400, kRetB);
  auto r = find_concurrent_writes(header(), v);
  CHECK(r.findings.empty());
  CHECK(r.stats.unmatched_ends == 0);
  // An end whose g was unreadable closes the open window on that thread.
  std::vector<trace::Event> w;
  w.push_back(ev(100, kDeleteBegin, 7, kGA, kM, {0x40c100, kRetA}, 55));
  w.push_back(ev(200, kDeleteEnd, 0, 0, kM, {0x40c200, kRetA}, 55));
  window(w, 8, kGB, kM, 300, 400, kRetB);
  auto r2 = find_concurrent_writes(header(), w);
  CHECK(r2.findings.empty());
  CHECK(r2.stats.unclosed == 0);
}

TEST_CASE("out-of-order events are counted") {
  std::vector<trace::Event> v;
  window(v, 7, kGA, kM, 100, 200, kRetA);
  window(v, 8, kGB, kM, 150, 250, kRetB);  // not sorted: 150 after 200
  auto r = find_concurrent_writes(header(), v);
  CHECK(r.stats.out_of_order == 1);
}

TEST_CASE("map_op_of and the runtime-frame rules") {
  CHECK(map_op_of("runtime.mapassign_faststr") == "assign");
  CHECK(map_op_of("runtime.mapdelete") == "delete");
  CHECK(map_op_of("runtime.mapclear") == "clear");
  CHECK(map_op_of("maps.clone") == "clone");
  CHECK(map_op_of("runtime.mapaccess2_fast64") == "read");
  CHECK(map_op_of("runtime.mapiternext") == "iterate");
  CHECK(map_op_of("main.writer") == "");
  CHECK(is_map_function("internal/runtime/maps.(*Map).putSlotSmall"));
  CHECK_FALSE(is_map_function("internal/runtime/maps.fatal"));
  CHECK_FALSE(is_map_function("runtime.fatal"));
  CHECK(is_runtime_function("runtime.fatal"));
  CHECK_FALSE(is_runtime_function("main.writerA"));
}

namespace {
// main.writerA [+0x000,+0x100) line 29 (+0x00..0x40), 30 (+0x40..0x100)
// main.main    [+0x100,+0x140) line 50
// runtime.mapassign_fast64 [+0x200,+0x300) line 700
// internal/runtime/maps.fatal [+0x300,+0x320) line 10
// runtime.fatal [+0x320,+0x340) line 1100
struct Table : gort::test::SyntheticPclntab {
  Table()
      : SyntheticPclntab("/src/main.go", {
                                             {"main.writerA", 0x000, 0x100, {{29, 0x40}, {30, 0xc0}}},
                                             {"main.main", 0x100, 0x40, {{50, 0x40}}},
                                             {"runtime.mapassign_fast64", 0x200, 0x100, {{700, 0x100}}},
                                             {"internal/runtime/maps.fatal", 0x300, 0x20, {{10, 0x20}}},
                                             {"runtime.fatal", 0x320, 0x20, {{1100, 0x20}}},
                                         }) {}
};
using gort::test::kText;
}  // namespace

TEST_CASE("stacks symbolize at return address - 1 with the slide, starting at the user's caller") {
  Table t;
  auto tab = t.load();
  int64_t slide = 0x10000;
  // A write's caller stack: ret into writerA (line 30), ret into main.main.
  auto s = symbolize_stack(*tab, slide, {kText + 0x41 + slide, kText + 0x110 + slide});
  REQUIRE(s.size() == 2);
  CHECK(s[0].function == "main.writerA");
  CHECK(s[0].file == "/src/main.go");
  CHECK(s[0].line == 30);
  CHECK(s[1].function == "main.main");
  CHECK(s[1].line == 50);
  // Return address at the first byte after a call at the line boundary: pc-1 is line 29.
  CHECK(symbolize_stack(*tab, 0, {kText + 0x40})[0].line == 29);
  // A throw's stack: maps.fatal, mapassign, then the user: runtime frames are dropped.
  auto th = symbolize_stack(*tab, 0, {kText + 0x310, kText + 0x250, kText + 0x80, kText + 0x110});
  REQUIRE(th.size() == 2);
  CHECK(th[0].function == "main.writerA");
  // An unknown PC shows as "?".
  auto u = symbolize_stack(*tab, 0, {kText + 0x41, 0x10});
  REQUIRE(u.size() == 2);
  CHECK(u[1].function == "?");
  CHECK(u[1].file == "0x10");

  auto origin = throw_origin_from(*tab, 0);
  CHECK(origin({kText + 0x320, kText + 0x310, kText + 0x250, kText + 0x80}) == "runtime.mapassign_fast64");
  CHECK(origin({kText + 0x320, kText + 0x80}) == "");
}

TEST_CASE("findings with the same symbolized stack pair merge") {
  std::vector<trace::Event> v;
  // Two different return addresses on the same line of writerA.
  window(v, 7, kGA, kM, 100, 200, kText + 0x50);
  window(v, 8, kGB, kM, 150, 250, kText + 0x110);
  window(v, 7, kGA, kM2, 1000, 1100, kText + 0x60);
  window(v, 8, kGB, kM2, 1050, 1150, kText + 0x110);
  sort_by_time(v);
  auto r = find_concurrent_writes(header(), v);
  REQUIRE(r.findings.size() == 2);
  Table t;
  auto tab = t.load();
  std::vector<std::vector<StackFrame>> sym;
  for (auto& s : r.stacks) sym.push_back(symbolize_stack(*tab, 0, s));
  merge_by_symbolized_stacks(r.findings, sym);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].count == 2);
  CHECK(r.findings[0].maps == std::vector<uint64_t>{kM, kM2});
  CHECK(r.findings[0].first_ns == 150);
  CHECK(r.findings[0].last_ns == 1050);
}

TEST_CASE("a goroutine's later throw probes (maps.fatal, then runtime.fatal) are the same throw") {
  std::vector<trace::Event> v;
  v.push_back(ev(100, kAssignBegin, 7, kGA, kM, {0x40f100, kRetA}));
  v.push_back(ev(150, kThrow, 8, kGB, 0, {0x479960, 0x40f0f0, kRetB}));
  v.push_back(ev(160, kThrow, 8, kGB, 0, {0x445c40, 0x479980, 0x40f0f0, kRetB}));
  auto r = find_concurrent_writes(header(), v);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].count == 1);
  CHECK(r.findings[0].b.start_ns == 150);
  CHECK(r.stats.throws == 2);
}
