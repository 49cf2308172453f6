// Goroutine list and frame-pointer unwinding on FakeMemory: a synthetic allgs with gs in
// several states (1.23 and 1.26 layouts, whose wait-reason enums differ), the current-g
// lookup, and synthetic stacks over a synthetic pclntab (frameless leaf, function entry
// before PUSH BP, the BP chain, PC-1 symbolization of return addresses, a PIE slide).

#include "core/goruntime/goroutines.h"
#include "core/goruntime/unwind.h"

#include <doctest/doctest.h>

#include "tests/unit/synthetic_pclntab.h"

#include <cstring>
#include <string>
#include <vector>

using namespace gort::core;

namespace {

using gort::test::Buf;
using gort::test::kText;
using gort::test::set64;

// Go 1.20+ pclntab, one file (m.go), four functions:
//   main.leaf       [+0x00,+0x10) frameless (pcsp 0), line 10
//   main.mid        [+0x10,+0x40) PUSHQ BP at +0x10 (1 byte), MOVQ SP,BP (3), SUBQ: frame 0x20; line 20
//   main.main       [+0x40,+0x80) same prologue, frame 0x30; line 100 before +0x50, 101 from it
//   runtime.goexit  [+0x80,+0x90) line 1
struct Table : gort::test::SyntheticPclntab {
  Table()
      : SyntheticPclntab("m.go", {
                                     {"main.leaf", 0x00, 0x10, {{10, 0x10}}},
                                     {"main.mid", 0x10, 0x30, {{20, 0x30}}, {{0, 1}, {8, 3}, {0x20, 0x2c}}},
                                     {"main.main", 0x40, 0x40, {{100, 0x10}, {101, 0x30}}, {{0, 1}, {8, 3}, {0x30, 0x3c}}},
                                     {"runtime.goexit", 0x80, 0x10, {{1, 0x10}}},
                                 }) {}
};

std::vector<std::string> describe(const Unwound& u) {
  std::vector<std::string> out;
  for (auto& f : u.frames) {
    REQUIRE(!f.sources.empty());
    out.push_back(fmt::format("{} {}:{}", f.function(), f.sources.back().file, f.sources.back().line));
  }
  return out;
}

void put64(FakeMemory& m, uint64_t at, uint64_t v) { m.put(RemoteAddr(at), v); }

}  // namespace

TEST_CASE("unwind: frameless leaf, then the BP chain, return addresses at PC-1, stop at goexit") {
  Table t;
  auto pcln = t.load();
  for (int64_t slide : {int64_t(0), int64_t(0x7f0000000000)}) {
    CAPTURE(slide);
    FakeMemory mem;
    const uint64_t S = 0xc000100000;
    put64(mem, S, kText + slide + 0x25);         // leaf's return address, into mid
    put64(mem, S + 0x20, S + 0x58);              // mid's saved BP (main's BP)
    put64(mem, S + 0x28, kText + slide + 0x50);  // mid's return address, into main (line 101; the CALL is on 100)
    put64(mem, S + 0x58, 0);                     // main's saved BP
    put64(mem, S + 0x60, kText + slide + 0x81);  // main returns into goexit+1
    auto u = unwind(mem, *pcln, slide, {RemoteAddr(kText + slide + 0x05), RemoteAddr(S), RemoteAddr(S + 0x20), false});
    REQUIRE(u.ok());
    CHECK(describe(*u) == std::vector<std::string>{"main.leaf m.go:10", "main.mid m.go:20", "main.main m.go:100",
                                                  "runtime.goexit m.go:1"});
    CHECK(u->stop_reason == "runtime.goexit");
    CHECK(u->frames[2].pc == RemoteAddr(kText + slide + 0x50));
    CHECK(u->frames[1].sp == RemoteAddr(S + 8));
  }
}

TEST_CASE("unwind: at a function entry (before PUSH BP) and just after it") {
  Table t;
  auto pcln = t.load();
  const uint64_t S = 0xc000200000, B = 0xc000200100;
  FakeMemory mem;
  put64(mem, S, kText + 0x50);      // return address into main at [SP]
  put64(mem, B, 0);                 // main's frame
  put64(mem, B + 8, kText + 0x81);
  SUBCASE("entry") {
    auto u = unwind(mem, *pcln, 0, {RemoteAddr(kText + 0x10), RemoteAddr(S), RemoteAddr(B), false});
    REQUIRE(u.ok());
    CHECK(describe(*u) == std::vector<std::string>{"main.mid m.go:20", "main.main m.go:100", "runtime.goexit m.go:1"});
  }
  SUBCASE("after PUSH BP, before MOV SP,BP") {
    FakeMemory m2 = mem;
    put64(m2, S - 8, B);  // pushed BP
    auto u = unwind(m2, *pcln, 0, {RemoteAddr(kText + 0x11), RemoteAddr(S - 8), RemoteAddr(B), false});
    REQUIRE(u.ok());
    CHECK(describe(*u) == std::vector<std::string>{"main.mid m.go:20", "main.main m.go:100", "runtime.goexit m.go:1"});
  }
  SUBCASE("a saved g.sched at a function entry is not moved back a byte") {
    auto u = unwind(mem, *pcln, 0, {RemoteAddr(kText + 0x10), RemoteAddr(S), RemoteAddr(B), true});
    REQUIRE(u.ok());
    CHECK(describe(*u)[0] == "main.mid m.go:20");
  }
}

TEST_CASE("unwind: bad chains end with a reason, never loop") {
  Table t;
  auto pcln = t.load();
  const uint64_t S = 0xc000300000;
  FakeMemory mem;
  put64(mem, S, kText + 0x25);
  SUBCASE("unreadable BP") {
    auto u = unwind(mem, *pcln, 0, {RemoteAddr(kText + 0x05), RemoteAddr(S), RemoteAddr(S + 0x20), false});
    REQUIRE(u.ok());
    CHECK(u->frames.size() == 2);
    CHECK(u->stop_reason == fmt::format("cannot read frame at bp {:#x}", S + 0x20));
  }
  SUBCASE("a BP pointing at itself stops at the frame limit") {
    put64(mem, S + 0x20, S + 0x20);
    put64(mem, S + 0x28, kText + 0x25);
    auto u = unwind(mem, *pcln, 0, {RemoteAddr(kText + 0x05), RemoteAddr(S), RemoteAddr(S + 0x20), false}, {16});
    REQUIRE(u.ok());
    CHECK(u->frames.size() <= 16);
    CHECK(!u->stop_reason.empty());
  }
  SUBCASE("PC outside Go code") {
    auto u = unwind(mem, *pcln, 0, {RemoteAddr(0x1234), RemoteAddr(S), RemoteAddr(0), false});
    REQUIRE(u.ok());
    CHECK(u->frames.size() == 1);
    CHECK(u->stop_reason == "pc 0x1234 in no Go function");
  }
}

TEST_CASE("status names, 1.26 additions and the scan bit") {
  CHECK(g_status_name(kGwaiting) == "waiting");
  CHECK(g_status_name(kGscan | kGrunning) == "scan|running");
  CHECK(g_status_name(kGleaked) == "leaked");
  CHECK(g_status_name(kGdeadextra) == "deadextra");
  CHECK(g_status_name(42) == "status(42)");
  CHECK(g_status_is_dead(kGdead));
  CHECK(g_status_is_dead(kGscan | kGdeadextra));
  CHECK(!g_status_is_dead(kGleaked));
}

TEST_CASE("wait reasons follow each version's enum (1.24 inserts, 1.26 reorders)") {
  auto v = [](const char* s) { return *GoVersion::parse(s); };
  CHECK(wait_reason_name(v("go1.21.13"), 14) == "chan receive");
  CHECK(wait_reason_name(v("go1.23.5"), 21) == "sync.Mutex.Lock");
  CHECK(wait_reason_name(v("go1.24.4"), 24) == "sync.WaitGroup.Wait");
  CHECK(wait_reason_name(v("go1.25.12"), 20) == "sleep");
  CHECK(wait_reason_name(v("go1.26.10"), 19) == "chan receive");
  CHECK(wait_reason_name(v("go1.26.10"), 18) == "select");
  CHECK(wait_reason_name(v("go1.26.10"), 14) == "sleep");
  CHECK(!wait_reason_name(v("go1.26.10"), 200).has_value());
  CHECK(!wait_reason_name(v("go1.19.8"), 1).has_value());
}

TEST_CASE("read_goroutines: allgs, dead skipped, wait reason, thread of a running g") {
  for (std::string ver : {"go1.23.5", "go1.26.10"}) {
    CAPTURE(ver);
    GoVersion v = *GoVersion::parse(ver);
    auto lr = layouts_from_table(v, map_impl_for(v, false));
    REQUIRE(lr.ok());
    const RuntimeLayouts& l = *lr;
    const uint8_t chan_recv = v.minor == 26 ? 19 : 14;
    FakeMemory mem;
    const uint64_t allgs = 0x5a0000, arr = 0xc000010000, m = 0xc000020000;
    const uint64_t gs[] = {0xc000001000, 0xc000002000, 0xc000003000};
    put64(mem, allgs, arr);
    put64(mem, allgs + 8, 3);
    Buf array(24);  // the backing array is one block (FakeMemory reads stay within one region)
    for (int i = 0; i < 3; ++i) set64(array, 8 * i, gs[i]);
    mem.add(RemoteAddr(arr), array);
    mem.add(RemoteAddr(m), Buf(l.m_alllink + 8, 0));
    put64(mem, m + l.m_procid, 4242);
    struct G { uint64_t goid; uint32_t status; uint8_t reason; uint64_t m; };
    G def[] = {{1, kGrunning, 0, m}, {7, kGwaiting, chan_recv, 0}, {9, kGdead, 0, 0}};
    for (int i = 0; i < 3; ++i) {
      mem.add(RemoteAddr(gs[i]), Buf(l.g_size, 0));
      put64(mem, gs[i] + l.g_goid, def[i].goid);
      mem.put(RemoteAddr(gs[i] + l.g_atomicstatus), def[i].status);
      mem.put(RemoteAddr(gs[i] + l.g_waitreason), def[i].reason);
      put64(mem, gs[i] + l.g_m, def[i].m);
      put64(mem, gs[i] + l.g_sched_pc, 0x401234 + i);
    }
    auto r = read_goroutines(mem, l, v, RemoteAddr(allgs));
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].goid == 1);
    CHECK((*r)[0].thread_id == 4242);
    CHECK((*r)[0].wait_reason_name.empty());
    CHECK((*r)[1].goid == 7);
    CHECK((*r)[1].wait_reason_name == "chan receive");
    CHECK((*r)[1].sched_pc == RemoteAddr(0x401235));
    auto all = read_goroutines(mem, l, v, RemoteAddr(allgs), {.include_dead = true});
    REQUIRE(all.ok());
    CHECK(all->size() == 3);

    // The current g: TLS first, then g0 -> m.curg.
    put64(mem, m + l.m_g0, 0xc000004000);
    put64(mem, m + l.m_curg, gs[0]);
    mem.add(RemoteAddr(0xc000004000), Buf(l.g_size, 0));
    put64(mem, 0xc000004000 + l.g_m, m);
    put64(mem, 0x7f0000000ff8, 0xc000004000);  // TLS slot at fs_base-8
    ThreadRegs regs;
    regs.fs_base = 0x7f0000001000;
    auto tg = thread_g(mem, regs);
    REQUIRE(tg.ok());
    CHECK(*tg == RemoteAddr(0xc000004000));
    auto ug = user_g(mem, l, *tg);
    REQUIRE(ug.ok());
    CHECK(*ug == RemoteAddr(gs[0]));
  }
}

TEST_CASE("read_goroutines: a wrong allgs address is a clear error") {
  FakeMemory mem;
  GoVersion v = *GoVersion::parse("go1.26.10");
  auto l = layouts_from_table(v, MapImpl::kSwiss);
  REQUIRE(l.ok());
  auto r = read_goroutines(mem, *l, v, RemoteAddr(0x1000));
  REQUIRE(!r.ok());
  CHECK(r.error().message.find("cannot read runtime.allgs at 0x1000") == 0);
  put64(mem, 0x1000, 0xc000000000);
  put64(mem, 0x1008, 1ull << 40);
  r = read_goroutines(mem, *l, v, RemoteAddr(0x1000));
  REQUIRE(!r.ok());
  CHECK(r.error().message.find("has length") != std::string::npos);
}

TEST_CASE("is_stdlib_function: package path without a dot in its first element") {
  CHECK(is_stdlib_function("runtime.gopark"));
  CHECK(is_stdlib_function("internal/sync.(*Mutex).lockSlow"));
  CHECK(is_stdlib_function("sync.(*Mutex).Lock"));
  CHECK(is_stdlib_function("sync.OnceFunc[example.com/x.T]"));
  CHECK(!is_stdlib_function("main.main"));
  CHECK(!is_stdlib_function("main.main.func1"));
  CHECK(!is_stdlib_function("example.com/x.(*T).M"));
  CHECK(!is_stdlib_function("github.com/a/b.F[go.shape.int]"));
}
