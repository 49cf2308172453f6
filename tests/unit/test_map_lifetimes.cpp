// Map identity = address + lifetime (core/analysis/map_lifetimes.h), through both map
// analyses on synthetic events: a map created at an address another goroutine's map used
// to occupy is another map (no finding); a map on a goroutine's own stack never pairs
// across goroutines; where creations may be unseen, GC cycles split an address's history;
// a real shared map is still found, and its finding says where it was created.

#include "core/analysis/concurrent_writes.h"
#include "core/analysis/happens_before.h"
#include "core/analysis/map_lifetimes.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace gort::core;
using namespace gort::core::analysis;
using trace::SiteKind;

namespace {

enum Site : uint32_t { kBegin, kEnd, kCreate, kGc, kLostAt, kGoStart, kGoExit, kCreateClone };

trace::Header header(const char* create_backend = "uprobe", bool lost_site = true) {
  trace::Header h;
  h.executable = "/tmp/prog";
  h.go_version = "go1.26.8";
  h.map_impl = "swiss";
  h.start_ns = 1;
  h.stack_depth = 8;
  h.sites = {
      {SiteKind::kWriteBegin, "runtime.mapassign_fast64", "assign", 0x40f100, "inproc"},
      {SiteKind::kWriteEnd, "runtime.mapassign_fast64", "assign", 0x40f200, "inproc"},
      {SiteKind::kMapCreate, "runtime.makemap_small", "create", 0x40b0f0, create_backend},
      {SiteKind::kGcMarkTermination, "runtime.gcMarkTermination", "", 0x430000, "inproc"},
      {lost_site ? SiteKind::kLost : SiteKind::kGoExit, "(gort: ring full)", "", 0, "derived"},
      {SiteKind::kGoStart, "runtime.newproc1", "", 0x44a000, "uprobe"},
      {SiteKind::kGoExit, "runtime.goexit0", "", 0x44b000, "uprobe"},
      {SiteKind::kMapCreate, "internal/runtime/maps.(*Map).Clone", "create", 0x40c0f0, "derived"},
  };
  return h;
}

/// Without any map-create site: a trace of an older gort.
trace::Header old_header() {
  trace::Header h = header();
  h.sites[kCreate].kind = SiteKind::kGoExit;
  h.sites[kCreateClone].kind = SiteKind::kGoExit;
  return h;
}

constexpr uint64_t kX = 0xc000100000;

struct Trace {
  std::vector<trace::Event> v;
  uint64_t t = 100;
  trace::Event& ev(uint32_t site, uint64_t goid, uint64_t map = 0, std::vector<uint64_t> stack = {}) {
    trace::Event e;
    e.time_ns = t;
    t += 10'000;
    e.site = site;
    e.goid = goid;
    e.g = 0xc000000000 + goid * 0x1000;
    e.map = map;
    e.tid = uint32_t(100 + goid);
    e.stack = std::move(stack);
    v.push_back(std::move(e));
    return v.back();
  }
  void write(uint64_t goid, uint64_t map = kX, bool on_stack = false) {
    ev(kBegin, goid, map, {0x40f100, 0x4a1000 + goid * 0x100}).stack_map = on_stack;
    ev(kEnd, goid, map, {0x40f200, 0x4a1000 + goid * 0x100}).stack_map = on_stack;
  }
  void begin_only(uint64_t goid, uint64_t map = kX) { ev(kBegin, goid, map, {0x40f100, 0x4a1000 + goid * 0x100}); }
  void create(uint64_t goid, uint64_t map = kX, uint32_t site = kCreate, bool on_stack = false) {
    ev(site, goid, map, {0x40b0f0, 0x4a2000 + goid * 0x100}).stack_map = on_stack;
  }
  void gc() { ev(kGc, 0); }
  void lost() { ev(kLostAt, 0); }
};

HappensBeforeResult hb(const trace::Header& h, const Trace& t, std::optional<MapLifetimeBasis> b = {}) {
  HappensBeforeOptions o;
  o.lifetimes = b;
  return find_unsynchronized_accesses(h, t.v, o);
}

ConcurrentWritesResult cw(const trace::Header& h, const Trace& t, std::optional<MapLifetimeBasis> b = {}) {
  ConcurrentWritesOptions o;
  o.lifetimes = b;
  return find_concurrent_writes(h, t.v, o);
}

}  // namespace

TEST_CASE("map lifetimes: a map created where another goroutine's map was is another map") {
  Trace t;
  t.create(1);
  t.write(1);
  t.write(1);
  t.gc();         // goroutine 1's map dies; the allocator hands its memory to goroutine 2
  t.create(2);
  t.write(2);
  auto r = hb(header(), t);
  CHECK(r.findings.empty());
  CHECK(r.lifetimes.creations == 2);
  CHECK(r.lifetimes.reused_addresses == 1);
  CHECK(r.stats.maps == 2);

  // The same writes without goroutine 2's creation: one map, written by both, unordered.
  Trace u;
  u.create(1);
  u.write(1);
  u.gc();
  u.write(2);
  auto s = hb(header(), u);
  REQUIRE(s.findings.size() == 1);
  CHECK(s.findings[0].kind == kUnsyncMapWrite);
  CHECK(s.findings[0].map == kX);
  REQUIRE(s.findings[0].created);
  CHECK(s.findings[0].created->goroutine == 1);
  CHECK(s.findings[0].created->function == "runtime.makemap_small");
  CHECK(s.findings[0].created->stack == std::vector<uint64_t>{0x4a2100});
}

TEST_CASE("map lifetimes: a creation closes the windows left open on the old map (their ends were lost)") {
  Trace t;
  t.create(1);
  t.begin_only(1);  // goroutine 1's write-end was lost
  t.create(2);      // ... so its map is gone when goroutine 2's is made there
  t.write(2);
  auto r = cw(header(), t);
  CHECK(r.findings.empty());
  CHECK(r.stats.lost_ends == 1);

  Trace u;  // a window really open while another goroutine writes the same map
  u.create(1);
  u.begin_only(1);
  u.write(2);
  auto s = cw(header(), u);
  REQUIRE(s.findings.size() == 1);
  CHECK(s.findings[0].kind == kConcurrentMapWrite);
  REQUIRE(s.findings[0].created);
  CHECK(s.findings[0].created->goroutine == 1);
}

TEST_CASE("map lifetimes: maps on a goroutine's own stack never pair across goroutines") {
  Trace t;
  t.write(1, kX, true);
  t.write(2, kX, true);  // goroutine 2 reuses goroutine 1's stack: same address, its own map
  t.write(1, kX, true);
  auto r = hb(header(), t);
  CHECK(r.findings.empty());
  CHECK(r.lifetimes.stack_accesses == 3);  // the writes (happens-before keys accesses, not their ends)
  // Both analyses: an open window on a stack map and another goroutine's stack map.
  Trace u;
  u.begin_only(1);
  u.v.back().stack_map = true;
  u.write(2, kX, true);
  CHECK(cw(header(), u).findings.empty());
  // Without the flag the same events pair (as a trace of an older gort would).
  Trace w;
  w.write(1);
  w.write(2);
  CHECK(hb(header(), w).findings.size() == 1);
}

TEST_CASE("map lifetimes: creations unseen: no pair across a GC cycle, pairs within one") {
  for (auto h : {old_header(), header("none")}) {
    CHECK(map_lifetime_basis(h).split_at_gc());
    CHECK_FALSE(map_lifetime_basis(h).note().empty());
    Trace t;
    t.write(1);
    t.gc();
    t.write(2);
    auto r = hb(h, t, map_lifetime_basis(h));
    CHECK(r.findings.empty());
    CHECK(r.lifetimes.splits == 1);
    Trace u;  // no GC between: one map for certain
    u.write(1);
    u.write(2);
    u.gc();
    CHECK(hb(h, u, map_lifetime_basis(h)).findings.size() == 1);
  }
  // Events lost where the trace cannot tell (perf rings), or a trace cut short.
  trace::Summary lossy;
  lossy.lost = lossy.lost_unmarked = 3;
  CHECK(map_lifetime_basis(header(), &lossy).split_at_gc());
  CHECK(map_lifetime_basis(header(), nullptr).split_at_gc());
  trace::Summary marked;
  marked.lost = 3;  // all marked by kLost events
  CHECK_FALSE(map_lifetime_basis(header(), &marked).split_at_gc());
  CHECK(map_lifetime_basis(header("uprobe", false), &marked).split_at_gc());
  CHECK(map_lifetime_basis(header()).note().empty());
}

TEST_CASE("map lifetimes: a lost-events marker after a GC cycle splits; without a GC cycle it does not") {
  Trace t;
  t.create(1);
  t.write(1);
  t.gc();
  t.lost();  // goroutine 2's creation may be among the lost hits
  t.write(2);
  CHECK(hb(header(), t).findings.empty());
  Trace u;
  u.create(1);
  u.write(1);
  u.lost();  // no GC cycle since goroutine 1's write: the map cannot have been freed
  u.write(2);
  CHECK(hb(header(), u).findings.size() == 1);
}

TEST_CASE("map lifetimes: two creations in a row, clone sites, and writes that keep the identity") {
  Trace t;
  t.create(1);
  t.create(1, kX, kCreateClone);  // a second creation event with no access between
  t.write(1);
  t.write(1);  // growth, clear and delete are writes, never creations: one map still
  t.write(2);
  auto r = hb(header(), t);
  REQUIRE(r.findings.size() == 1);
  REQUIRE(r.findings[0].created);
  CHECK(r.findings[0].created->function == "internal/runtime/maps.(*Map).Clone");
  CHECK(r.lifetimes.creations == 2);
}

TEST_CASE("map lifetimes: identities stay the address itself when nothing splits them") {
  MapLifetimes life(header(), map_lifetime_basis(header()));
  trace::Event e;
  e.map = kX;
  CHECK(life.key(e, 1) == kX);
  CHECK(life.key(e, 2) == kX);
  CHECK(life.origin(kX) == nullptr);
  e.site = kCreate;
  e.goid = 3;
  CHECK(life.created(e, 3, 3) == kX);
  uint64_t k = life.key(e, 1);
  CHECK(k != kX);
  REQUIRE(life.origin(k) != nullptr);
  CHECK(life.origin(k)->goroutine == 3);
  CHECK(life.origin(kX) == nullptr);
  e.map = 0;
  CHECK(life.key(e, 1) == 0);
}
