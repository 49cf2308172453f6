// Happens-before analysis on synthetic events: mutexes, RWMutexes, channels, select,
// close, WaitGroup, Once and goroutine creation order map accesses (no finding); writes
// (and reads) without such an edge are findings, with the locks each side held; lost
// events add a note; pairs whose windows overlap in time are left to ConcurrentWrites;
// duplicates group by stack pair.

#include "core/analysis/happens_before.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace gort::core;
using namespace gort::core::analysis;
using trace::SiteKind;

namespace {

enum Site : uint32_t {
  kAssignBegin, kAssignEnd, kRead, kGoStart, kGoExit, kGoCreate,
  kLock, kLockSlowCall, kLockSlowRet, kUnlock,
  kRLock, kRUnlock, kWLockCall, kWLockRet, kWUnlock,
  kSendCall, kSendRet, kRecvCall, kRecvRet, kClose, kSelSend, kSelCall, kSelRet,
  kWgAdd, kWgWaitCall, kWgWaitRet, kOnceDo, kOnceDone, kClearEntry, kClearRet,
};

trace::Header header() {
  trace::Header h;
  h.executable = "/tmp/prog";
  h.go_version = "go1.26.1";
  h.map_impl = "swiss";
  h.pid = 4242;
  h.start_ns = 1;
  h.stack_depth = 8;
  h.sites = {
      {SiteKind::kWriteBegin, "runtime.mapassign_faststr", "assign", 0x40f100, "hw"},
      {SiteKind::kWriteEnd, "runtime.mapassign_faststr", "assign", 0x40f200, "hw"},
      {SiteKind::kMapRead, "runtime.mapaccess1_faststr", "read", 0x40e000, "uprobe"},
      {SiteKind::kGoStart, "runtime.newproc1", "", 0x44a000, "uprobe"},
      {SiteKind::kGoExit, "runtime.goexit0", "", 0x44b000, "uprobe"},
      {SiteKind::kGoCreate, "runtime.newproc1", "", 0x449f00, "uprobe"},
      {SiteKind::kAcquire, "main.(*Store).Put", "mutex.lock", 0x4a0010, "uprobe"},
      {SiteKind::kSyncCall, "sync.(*Mutex).lockSlow", "mutex.lock", 0x460000, "uprobe"},
      {SiteKind::kSyncReturn, "sync.(*Mutex).lockSlow", "mutex.lock", 0x4601f0, "uprobe"},
      {SiteKind::kRelease, "main.(*Store).Put", "mutex.unlock", 0x4a0080, "uprobe"},
      {SiteKind::kAcquire, "sync.(*RWMutex).RLock", "rwmutex.rlock", 0x461010, "uprobe"},
      {SiteKind::kRelease, "sync.(*RWMutex).RUnlock", "rwmutex.runlock", 0x461110, "uprobe"},
      {SiteKind::kSyncCall, "sync.(*RWMutex).Lock", "rwmutex.lock", 0x461200, "uprobe"},
      {SiteKind::kSyncReturn, "sync.(*RWMutex).Lock", "rwmutex.lock", 0x4612f0, "uprobe"},
      {SiteKind::kRelease, "sync.(*RWMutex).Unlock", "rwmutex.unlock", 0x461310, "uprobe"},
      {SiteKind::kSyncCall, "runtime.chansend1", "chan.send", 0x404000, "uprobe"},
      {SiteKind::kSyncReturn, "runtime.chansend1", "chan.send", 0x4040f0, "uprobe"},
      {SiteKind::kSyncCall, "runtime.chanrecv1", "chan.recv", 0x405000, "uprobe"},
      {SiteKind::kSyncReturn, "runtime.chanrecv1", "chan.recv", 0x4050f0, "uprobe"},
      {SiteKind::kRelease, "runtime.closechan", "chan.close", 0x406000, "uprobe"},
      {SiteKind::kRelease, "runtime.selectgo", "select.send", 0x407000, "uprobe"},
      {SiteKind::kSyncCall, "runtime.selectgo", "select", 0x407000, "uprobe"},
      {SiteKind::kSyncReturn, "runtime.selectgo", "select", 0x4070f0, "uprobe"},
      {SiteKind::kRelease, "sync.(*WaitGroup).Add", "wg.add", 0x462000, "uprobe"},
      {SiteKind::kSyncCall, "sync.(*WaitGroup).Wait", "wg.wait", 0x462100, "uprobe"},
      {SiteKind::kSyncReturn, "sync.(*WaitGroup).Wait", "wg.wait", 0x4621f0, "uprobe"},
      {SiteKind::kAcquire, "sync.(*Once).Do", "once.do", 0x463010, "uprobe"},
      {SiteKind::kRelease, "sync.(*Once).doSlow", "once.done", 0x463110, "uprobe"},
      {SiteKind::kEntry, "runtime.mapclear", "clear", 0x40a000, "uprobe"},
      {SiteKind::kReturn, "runtime.mapclear", "clear", 0x40a0f0, "uprobe"},
  };
  return h;
}

constexpr uint64_t kM = 0xc000072150, kM2 = 0xc000080000;
constexpr uint64_t kMu = 0xc000010100, kRw = 0xc000010200, kCh = 0xc000020000, kCh2 = 0xc000020100,
                   kWg = 0xc000030000, kOnce = 0xc000040000;
constexpr uint64_t kRetA = 0x4a1100, kRetB = 0x4a1200;

uint64_t g_of(uint64_t goid) { return 0xc000000000 + goid * 0x1000; }

// A time-ordered event list; each helper appends at the next time.
struct Trace {
  std::vector<trace::Event> v;
  uint64_t t = 100;
  uint64_t step = 10'000;  // probe hits are >= ~10 µs apart with perf; ~1 µs in-process

  trace::Event& ev(uint32_t site, uint64_t goid, uint64_t obj = 0, std::vector<uint64_t> stack = {}) {
    trace::Event e;
    e.time_ns = t;
    t += step;  // the analyzer allows 5 µs of clock skew
    e.site = site;
    e.goid = goid;
    e.g = g_of(goid);
    e.map = obj;
    e.tid = uint32_t(100 + goid);
    e.cpu = uint32_t(goid % 2);
    e.stack = std::move(stack);
    v.push_back(std::move(e));
    return v.back();
  }
  // A goroutine that existed before recording.
  void start(uint64_t goid) { ev(kGoStart, goid); }
  // PARENT creates CHILD (newproc1 on the parent's thread).
  void go(uint64_t parent, uint64_t child) {
    ev(kGoCreate, parent);
    trace::Event& s = ev(kGoStart, child);
    s.tid = uint32_t(100 + parent);
    s.g = g_of(child);
  }
  void write(uint64_t goid, uint64_t map = kM, uint64_t ret = kRetA) {
    ev(kAssignBegin, goid, map, {0x40f100, ret, 0x4a9000});
    ev(kAssignEnd, goid, map, {0x40f200, ret, 0x4a9000});
  }
  void read(uint64_t goid, uint64_t map = kM, uint64_t ret = kRetB) { ev(kRead, goid, map, {0x40e000, ret, 0x4a9000}); }
  void lock(uint64_t goid, uint64_t mu = kMu) { ev(kLock, goid, mu, {0x4a0010, 0x4a9100}); }
  void unlock(uint64_t goid, uint64_t mu = kMu) { ev(kUnlock, goid, mu); }
  void send(uint64_t goid, uint64_t ch) { ev(kSendCall, goid, ch); }
  void send_done(uint64_t goid) { ev(kSendRet, goid); }
  void recv(uint64_t goid, uint64_t ch) {
    ev(kRecvCall, goid, ch);
    ev(kRecvRet, goid);
  }
  void wg_add(uint64_t goid, int64_t delta) { ev(kWgAdd, goid, kWg).key = uint64_t(delta); }
  void wg_wait(uint64_t goid) {
    ev(kWgWaitCall, goid, kWg);
    ev(kWgWaitRet, goid);
  }
};

HappensBeforeResult run(const Trace& t, HappensBeforeOptions o = {}) {
  return find_unsynchronized_accesses(header(), t.v, o);
}

}  // namespace

TEST_CASE("happens-before: writes under one mutex are ordered") {
  Trace t;
  t.start(1);
  t.start(2);
  for (int i = 0; i < 3; i++) {
    for (uint64_t g : {1, 2}) {
      t.lock(g);
      t.write(g, kM, g == 1 ? kRetA : kRetB);
      t.unlock(g);
    }
  }
  auto r = run(t);
  CHECK(r.findings.empty());
  CHECK(r.stats.writes == 6);
  CHECK(r.stats.goroutines == 2);
  CHECK(r.stats.maps == 1);
  CHECK(r.stats.acquires == 6);
  CHECK(r.stats.releases == 6);
  CHECK(r.stats.sync_events == 12);
}

TEST_CASE("happens-before: one side locked, the other not: a finding naming the mutex on one side") {
  Trace t;
  t.start(1);
  t.start(2);
  t.lock(1);
  t.write(1, kM, kRetA);
  t.unlock(1);
  t.write(2, kM, kRetB);
  auto r = run(t);
  REQUIRE(r.findings.size() == 1);
  const HbFinding& f = r.findings[0];
  CHECK(f.kind == kUnsyncMapWrite);
  CHECK(f.map == kM);
  CHECK(f.count == 1);
  CHECK(f.a.goroutine == 1);
  CHECK(f.b.goroutine == 2);
  CHECK(f.a.op == "assign");
  CHECK(f.a.function == "runtime.mapassign_faststr");
  CHECK(f.a.closed);
  CHECK(f.a.end_ns > f.a.start_ns);
  CHECK(f.b.start_ns == f.first_ns);
  REQUIRE(f.a.locks.size() == 1);
  CHECK(f.a.locks[0].object == kMu);
  CHECK(f.a.locks[0].mode == LockMode::kMutex);
  CHECK(f.a.locks[0].site_pc == 0x4a0010);
  REQUIRE(f.a.locks[0].stack < r.stacks.size());
  // The site itself (+1, for symbolize_stack) then the return addresses.
  CHECK(r.stacks[f.a.locks[0].stack] == std::vector<uint64_t>{0x4a0011, 0x4a9100});
  CHECK(f.b.locks.empty());
  CHECK(r.stacks[f.a.stack] == std::vector<uint64_t>{kRetA, 0x4a9000});
  CHECK(r.stacks[f.b.stack] == std::vector<uint64_t>{kRetB, 0x4a9000});
  CHECK(f.notes.empty());
  CHECK(f.established_by.find("no happens-before edge between these writes") != std::string::npos);
  CHECK(std::string(to_string(LockMode::kRwRead)) == "rwmutex-read");
}

TEST_CASE("happens-before: the contended path (lockSlow call/return) orders and holds the lock") {
  Trace t;
  t.start(1);
  t.start(2);
  t.lock(1);
  t.write(1);
  t.unlock(1);
  t.ev(kLockSlowCall, 2, kMu);
  t.ev(kLockSlowRet, 2, 0, {0x4601f0, 0x4a0020});
  t.write(2, kM, kRetB);
  t.unlock(2);
  t.write(1);  // without the lock: 1 never acquired what 2 released
  auto r = run(t);
  REQUIRE(r.findings.size() == 1);
  // 2's locked write, then 1's write without the lock.
  CHECK(r.findings[0].a.goroutine == 2);
  REQUIRE(r.findings[0].a.locks.size() == 1);
  // Where it was locked: lockSlow's call (its stack names the caller), not the RET.
  CHECK(r.findings[0].a.locks[0].site_pc == 0x460000);
  CHECK(r.findings[0].b.locks.empty());
  CHECK(r.stats.unmatched_returns == 0);
}

TEST_CASE("happens-before: RWMutex writes under Lock and reads under RLock are ordered") {
  Trace t;
  t.start(1);
  t.start(2);
  t.start(3);
  for (int i = 0; i < 2; i++) {
    t.ev(kWLockCall, 1, kRw);
    t.ev(kWLockRet, 1);
    t.write(1);
    t.ev(kWUnlock, 1, kRw);
    for (uint64_t g : {2, 3}) {
      t.ev(kRLock, g, kRw);
      t.read(g);
      t.ev(kRUnlock, g, kRw);
    }
  }
  auto r = run(t);
  CHECK(r.findings.empty());
  CHECK(r.stats.reads == 4);
  CHECK(r.stats.writes == 2);
}

TEST_CASE("happens-before: RWMutex.Lock's inner mutex (same address) shows as the RWMutex held for writing") {
  Trace t;
  t.start(1);
  t.start(2);
  t.ev(kWLockCall, 1, kRw);
  t.lock(1, kRw);  // rw.w.Lock(), inlined into RWMutex.Lock
  t.ev(kWLockRet, 1);
  t.write(1, kM, kRetA);
  t.ev(kWUnlock, 1, kRw);
  t.unlock(1, kRw);  // rw.w.Unlock()
  t.write(2, kM, kRetB);
  auto r = run(t);
  REQUIRE(r.findings.size() == 1);
  REQUIRE(r.findings[0].a.locks.size() == 1);
  CHECK(r.findings[0].a.locks[0].mode == LockMode::kRwWrite);
  CHECK(r.findings[0].a.locks[0].object == kRw);
}

TEST_CASE("happens-before: two readers writing under RLock race") {
  Trace t;
  t.start(2);
  t.start(3);
  for (uint64_t g : {2, 3}) {
    t.ev(kRLock, g, kRw);
    t.write(g, kM, g == 2 ? kRetA : kRetB);
    t.ev(kRUnlock, g, kRw);
  }
  auto r = run(t);
  REQUIRE(r.findings.size() == 1);
  const HbFinding& f = r.findings[0];
  CHECK(f.kind == kUnsyncMapWrite);
  REQUIRE(f.a.locks.size() == 1);
  REQUIRE(f.b.locks.size() == 1);
  CHECK(f.a.locks[0].mode == LockMode::kRwRead);
  CHECK(f.b.locks[0].mode == LockMode::kRwRead);
  CHECK(f.a.locks[0].object == kRw);
}

TEST_CASE("happens-before: a channel hand-off orders; without the receive it does not") {
  Trace t;
  t.start(1);
  t.start(2);
  t.write(1, kM, kRetA);
  t.send(1, kCh);
  t.recv(2, kCh);
  t.send_done(1);
  t.write(2, kM, kRetB);
  CHECK(run(t).findings.empty());

  Trace u;
  u.start(1);
  u.start(2);
  u.write(1, kM, kRetA);
  u.send(1, kCh);
  u.recv(2, kCh2);  // another channel
  u.send_done(1);
  u.write(2, kM, kRetB);
  CHECK(run(u).findings.size() == 1);
}

// In-process recordings stamp hits ~1 µs apart and carry no goid on sync events (only the
// g): the new goroutine's receive call, moved 5 µs earlier like every call, must still
// be its own, not that of the goroutine that last had the same g struct.
TEST_CASE("happens-before: a new goroutine's first call belongs to it even within the skew allowance") {
  Trace t;
  t.step = 1'000;
  t.start(1);
  t.go(1, 3);
  t.ev(kGoExit, 3);
  t.write(1, kM, kRetA);
  t.send(1, kCh);
  t.go(1, 18);
  t.v.back().g = g_of(3);  // goroutine 18 reuses goroutine 3's g struct
  for (uint32_t site : {kRecvCall, kRecvRet}) {
    trace::Event& e = t.ev(site, 18, site == kRecvCall ? kCh : 0);
    e.goid = 0;
    e.g = g_of(3);
  }
  t.send_done(1);
  trace::Event& w = t.ev(kAssignBegin, 18, kM, {0x40f100, kRetB, 0x4a9000});
  w.goid = 0;
  w.g = g_of(3);
  trace::Event& we = t.ev(kAssignEnd, 18, kM, {0x40f200, kRetB, 0x4a9000});
  we.goid = 0;
  we.g = g_of(3);
  auto r = run(t);
  CHECK(r.findings.empty());
  CHECK(r.stats.unmatched_returns == 0);
}

// kSyncOps gives chan.recv no release, so the send's acquire at its return orders the
// sender after other senders' releases only, not after the receiver's earlier accesses.
TEST_CASE("happens-before: a receive releases nothing (kSyncOps), so the receiver's write races the sender's later one") {
  Trace t;
  t.start(1);
  t.start(2);
  t.send(1, kCh);
  t.ev(kRecvCall, 2, kCh);
  t.write(2, kM, kRetB);
  t.ev(kRecvRet, 2);
  t.send_done(1);
  t.write(1, kM, kRetA);
  // Nothing releases from 2 to 1 (a receive is no release in kSyncOps): a finding.
  CHECK(run(t).findings.size() == 1);
}

TEST_CASE("happens-before: select acquires the chosen receive case's channel only") {
  auto build = [](uint64_t chosen) {
    Trace t;
    t.start(1);
    t.start(2);
    t.write(1, kM, kRetA);
    t.send(1, kCh2);
    t.ev(kSelCall, 2, kCh).key = 0;
    t.ev(kSelCall, 2, kCh2).key = 1;
    t.ev(kSelRet, 2).key = chosen;
    t.send_done(1);
    t.write(2, kM, kRetB);
    return t;
  };
  auto r1 = run(build(1));
  CHECK(r1.findings.empty());
  CHECK(r1.stats.unmatched_returns == 0);
  CHECK(run(build(0)).findings.size() == 1);
  // A select that chose no receive case (default) acquires nothing, and clears its cases.
  Trace t;
  t.start(1);
  t.start(2);
  t.write(1, kM, kRetA);
  t.send(1, kCh2);
  t.ev(kSelCall, 2, kCh2).key = 1;
  t.ev(kSelRet, 2);
  t.ev(kSelRet, 2).key = 1;  // no pending cases left
  t.write(2, kM, kRetB);
  auto r = run(t);
  CHECK(r.findings.size() == 1);
  CHECK(r.stats.unmatched_returns == 1);
  REQUIRE(!r.findings.empty());
  bool noted = false;
  for (auto& n : r.findings[0].notes) noted |= n.find("matched no call") != std::string::npos;
  CHECK(noted);
}

TEST_CASE("happens-before: a select's send case releases") {
  Trace t;
  t.start(1);
  t.start(2);
  t.write(1, kM, kRetA);
  t.ev(kSelSend, 1, kCh);
  t.recv(2, kCh);
  t.write(2, kM, kRetB);
  CHECK(run(t).findings.empty());
}

TEST_CASE("happens-before: close then receive orders") {
  Trace t;
  t.start(1);
  t.start(2);
  t.write(1, kM, kRetA);
  t.ev(kClose, 1, kCh);
  t.recv(2, kCh);
  t.write(2, kM, kRetB);
  t.read(2);
  CHECK(run(t).findings.empty());
}

TEST_CASE("happens-before: WaitGroup fork/join orders the workers' writes before Wait's return") {
  auto build = [](bool wait) {
    Trace t;
    t.start(1);
    for (uint64_t c : {5, 6}) {
      t.wg_add(1, +1);
      t.go(1, c);
    }
    for (uint64_t c : {5, 6}) {
      t.lock(c);
      t.write(c, kM, kRetA);
      t.unlock(c);
      t.wg_add(c, -1);  // Done
    }
    if (wait) t.wg_wait(1);
    t.read(1);
    return t;
  };
  auto r = run(build(true));
  CHECK(r.findings.empty());
  CHECK(r.stats.forks == 2);
  CHECK(r.stats.goroutines == 3);
  auto r2 = run(build(false));
  // The read races both workers' writes (one call site: one finding, two occurrences).
  REQUIRE(r2.findings.size() == 1);
  CHECK(r2.findings[0].count == 2);
  CHECK(r2.findings[0].kind == kUnsyncMapReadWrite);
  CHECK(r2.findings[0].b.read);
  CHECK(r2.findings[0].b.op == "read");
  CHECK(r2.findings[0].b.goroutine == 1);
}

TEST_CASE("happens-before: Add(+1) releases nothing") {
  Trace t;
  t.start(1);
  t.start(2);
  t.write(1, kM, kRetA);
  t.wg_add(1, +1);
  t.wg_wait(2);
  t.write(2, kM, kRetB);
  CHECK(run(t).findings.size() == 1);
}

TEST_CASE("happens-before: Once.Do orders the initializer before later callers") {
  auto build = [](bool once) {
    Trace t;
    t.start(1);
    t.start(2);
    if (once) t.ev(kOnceDo, 1, kOnce);
    t.write(1, kM, kRetA);
    if (once) t.ev(kOnceDone, 1, kOnce);
    if (once) t.ev(kOnceDo, 2, kOnce);
    t.read(2);
    return t;
  };
  CHECK(run(build(true)).findings.empty());
  auto r = run(build(false));
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].kind == kUnsyncMapReadWrite);
  CHECK(r.findings[0].established_by.find("this read and this write") != std::string::npos);
}

TEST_CASE("happens-before: goroutine creation orders the parent's earlier writes before the child") {
  Trace t;
  t.start(1);
  t.write(1, kM, kRetA);
  t.go(1, 7);
  t.write(7, kM, kRetB);
  auto r = run(t);
  CHECK(r.findings.empty());
  CHECK(r.stats.forks == 1);

  // The parent's write after the go statement is not ordered with the child's.
  t.write(1, kM, kRetA);
  auto r2 = run(t);
  REQUIRE(r2.findings.size() == 1);
  CHECK(r2.findings[0].a.goroutine == 7);
  CHECK(r2.findings[0].b.goroutine == 1);

  // A child whose creation was not recorded starts with a fresh clock.
  Trace u;
  u.start(1);
  u.write(1, kM, kRetA);
  u.start(7);
  u.write(7, kM, kRetB);
  CHECK(run(u).findings.size() == 1);
}

TEST_CASE("happens-before: a read against a write already seen by the writer's later read is ordered") {
  Trace t;
  t.start(1);
  t.start(2);
  t.read(2);
  t.lock(2);
  t.unlock(2);
  t.lock(1);
  t.write(1, kM, kRetA);  // 2's read before 2's unlock, before 1's lock: ordered
  t.unlock(1);
  auto r = run(t);
  CHECK(r.findings.empty());
  // Without the lock, the write races the earlier read.
  Trace u;
  u.start(1);
  u.start(2);
  u.read(2);
  u.write(1, kM, kRetA);
  auto r2 = run(u);
  REQUIRE(r2.findings.size() == 1);
  CHECK(r2.findings[0].kind == kUnsyncMapReadWrite);
  CHECK(r2.findings[0].a.read);
  CHECK_FALSE(r2.findings[0].b.read);
}

TEST_CASE("happens-before: lost events and unprobed sync sites give every finding a note") {
  Trace t;
  t.start(1);
  t.start(2);
  t.write(1, kM, kRetA);
  t.write(2, kM, kRetB);
  HappensBeforeOptions o;
  o.lost_events = 12;
  o.unprobed_sync_sites = 2;
  auto r = run(t, o);
  REQUIRE(r.findings.size() == 1);
  auto& notes = r.findings[0].notes;
  REQUIRE(notes.size() == 2);
  CHECK(notes[0] == "the recording lost 12 events: a missed synchronization event could order this pair");
  CHECK(notes[1].find("2 synchronization sites could not be probed") != std::string::npos);

  // Set after the events (a streamed trace knows its lost count at the end).
  HappensBefore hb(header());
  for (auto& e : t.v) hb.add(e);
  hb.options().lost_unknown = true;
  auto r2 = hb.finish();
  REQUIRE(r2.findings.size() == 1);
  REQUIRE(r2.findings[0].notes.size() == 1);
  CHECK(r2.findings[0].notes[0].find("cut short") != std::string::npos);
}

TEST_CASE("happens-before: overlapping windows are left to the concurrent-write analysis") {
  Trace t;
  t.start(1);
  t.start(2);
  t.ev(kAssignBegin, 1, kM, {0x40f100, kRetA});
  t.ev(kAssignBegin, 2, kM, {0x40f100, kRetB});
  t.ev(kAssignEnd, 1, kM, {0x40f200, kRetA});
  t.ev(kAssignEnd, 2, kM, {0x40f200, kRetB});
  auto r = run(t);
  CHECK(r.findings.empty());
  CHECK(r.stats.overlaps_skipped == 1);
  // A later write of 1 after both closed races 2's closed window.
  t.write(1, kM, kRetA);
  auto r2 = run(t);
  REQUIRE(r2.findings.size() == 1);
  CHECK(r2.findings[0].a.goroutine == 2);
  CHECK(r2.findings[0].a.closed);
}

TEST_CASE("happens-before: a goroutine's own accesses never race; entry windows (mapclear) are writes") {
  Trace t;
  t.start(1);
  t.start(2);
  t.ev(kClearEntry, 1, kM, {0x40a000, kRetA});
  t.write(1, kM, kRetA);
  t.ev(kClearRet, 1, kM, {0x40a0f0, kRetA});
  t.read(1);
  auto r = run(t);
  CHECK(r.findings.empty());
  CHECK(r.stats.unmatched_ends == 0);
  t.ev(kClearEntry, 2, kM, {0x40a000, kRetB});
  t.ev(kClearRet, 2, kM, {0x40a0f0, kRetB});
  auto r2 = run(t);
  REQUIRE(r2.findings.size() >= 1);
  CHECK(r2.findings.back().b.function == "runtime.mapclear");
  CHECK(r2.findings.back().b.op == "clear");
}

TEST_CASE("happens-before: duplicates group by stack pair with a count and the maps") {
  Trace t;
  t.start(1);
  t.start(2);
  for (int i = 0; i < 5; i++) {
    t.write(1, i == 4 ? kM2 : kM, kRetA);
    t.write(2, i == 4 ? kM2 : kM, kRetB);
  }
  auto r = run(t);
  REQUIRE(r.findings.size() == 1);
  // On kM every write after the first races the other goroutine's last one (7 pairs); on
  // kM2 2's write races 1's (1 pair).
  const HbFinding& f = r.findings[0];
  CHECK(f.count == 8);
  CHECK(f.maps == std::vector<uint64_t>{kM, kM2});
  CHECK(f.last_ns > f.first_ns);

  // Merging by symbolized stacks: two stack ids that symbolize alike are one finding.
  std::vector<HbFinding> fs(2);
  fs[0].count = 2;
  fs[0].first_ns = 50;
  fs[0].last_ns = 60;
  fs[0].maps = {kM};
  fs[0].a.stack = 0;
  fs[0].b.stack = 1;
  fs[0].notes = {"x"};
  fs[1].count = 3;
  fs[1].first_ns = 10;
  fs[1].last_ns = 40;
  fs[1].maps = {kM2};
  fs[1].a.stack = 3;  // the reverse pair, other ids
  fs[1].b.stack = 2;
  fs[1].notes = {"y"};
  std::vector<std::vector<StackFrame>> sym = {
      {{"main.a", "a.go", 1, false}}, {{"main.b", "b.go", 2, false}},
      {{"main.a", "a.go", 1, false}}, {{"main.b", "b.go", 2, false}},
  };
  merge_hb_by_symbolized_stacks(fs, sym);
  REQUIRE(fs.size() == 1);
  CHECK(fs[0].count == 5);
  CHECK(fs[0].first_ns == 10);
  CHECK(fs[0].last_ns == 60);
  CHECK(fs[0].maps == std::vector<uint64_t>{kM2, kM});
  CHECK(fs[0].notes == std::vector<std::string>{"y", "x"});
}

TEST_CASE("happens-before: a mutex unlocked by another goroutine is no longer held by its locker") {
  Trace t;
  t.start(1);
  t.start(2);
  t.start(3);
  t.lock(1);
  t.unlock(2);  // Go allows it
  t.write(1, kM, kRetA);
  t.write(3, kM, kRetB);
  auto r = run(t);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].a.locks.empty());
}

TEST_CASE("happens-before: helpers over the header") {
  auto h = header();
  CHECK(has_sync_sites(h));
  CHECK(count_unprobed_sync_sites(h, nullptr) == 0);
  h.sites[kLock].backend = "none";
  trace::Summary s;
  s.warnings = {"sync.(*Mutex).Unlock: no probe placed", "runtime.mapclone: no probe placed",
                "runtime.chansend1: no probe placed"};
  CHECK(count_unprobed_sync_sites(h, &s) == 3);
  trace::Header plain;
  plain.sites = {{SiteKind::kWriteBegin, "runtime.mapassign", "assign", 1, "hw"},
                 {SiteKind::kMapRead, "runtime.mapaccess1", "read", 2, "uprobe"}};
  CHECK_FALSE(has_sync_sites(plain));
}

TEST_CASE("happens-before: an unknown goroutine id gets a note") {
  Trace t;
  t.start(1);
  t.write(1, kM, kRetA);
  trace::Event& e = t.ev(kAssignBegin, 0, kM, {0x40f100, kRetB});
  e.g = 0xc0000ff000;
  trace::Event& x = t.ev(kAssignEnd, 0, kM, {0x40f200, kRetB});
  x.g = 0xc0000ff000;
  auto r = run(t);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].b.goroutine == 0);
  CHECK(r.findings[0].b.g == 0xc0000ff000);
  REQUIRE(r.findings[0].notes.size() == 1);
  CHECK(r.findings[0].notes[0].find("goroutine id is unknown") != std::string::npos);
}

TEST_CASE("happens-before: an acquire stamped just before the other CPU's release still follows it") {
  // Measured: a lockSlow return on one CPU stamped 85 ns before the Unlock probe on the
  // other CPU that let it through (cross-CPU clock skew). 5 µs of skew are allowed.
  Trace t;
  t.start(1);
  t.start(2);
  t.lock(1);
  t.write(1, kM, kRetA);
  t.ev(kLockSlowCall, 2, kMu);
  uint64_t when = t.t;
  t.ev(kLockSlowRet, 2, 0).time_ns = when;     // 2 acquires at `when`...
  t.unlock(1);
  t.v.back().time_ns = when + 85;              // ...1's release is stamped 85 ns later
  t.t = when + 20'000;
  t.write(2, kM, kRetB);
  t.unlock(2);
  auto r = run(t);
  CHECK(r.findings.empty());
  CHECK(r.stats.out_of_order == 0);
}
