// Unsynchronized map accesses: vector clocks over the recorded synchronization.
// See happens_before.h, trace::kSyncOps and docs/report.md.

#include "core/analysis/happens_before.h"

#include "core/analysis/flat_map.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace gort::core::analysis {

namespace {

// Goroutine identity, as in concurrent_writes.cpp: the goid when known, else the g
// pointer, else the thread; tags keep the three spaces apart.
constexpr uint64_t kTagGoid = 1ull << 62, kTagG = 2ull << 62, kTagTid = 3ull << 62;
uint64_t identity(uint64_t goid, uint64_t g, uint32_t tid) {
  if (goid) return kTagGoid | (goid & (kTagGoid - 1));
  if (g) return kTagG | (g & (kTagGoid - 1));
  return kTagTid | tid;
}

constexpr int32_t kNone = -1;

enum class Op : uint8_t {
  kUnknown,
  kMutexLock,
  kMutexUnlock,
  kRwRLock,
  kRwRUnlock,
  kRwLock,
  kRwUnlock,
  kChanSend,
  kChanRecv,
  kChanClose,
  kSelectSend,
  kSelect,
  kWgAdd,
  kWgWait,
  kOnceDo,
  kOnceDone,
};

Op parse_op(std::string_view s) {
  static const std::pair<const char*, Op> table[] = {
      {"mutex.lock", Op::kMutexLock},     {"mutex.unlock", Op::kMutexUnlock}, {"rwmutex.rlock", Op::kRwRLock},
      {"rwmutex.runlock", Op::kRwRUnlock}, {"rwmutex.lock", Op::kRwLock},     {"rwmutex.unlock", Op::kRwUnlock},
      {"chan.send", Op::kChanSend},       {"chan.recv", Op::kChanRecv},       {"chan.close", Op::kChanClose},
      {"select.send", Op::kSelectSend},   {"select", Op::kSelect},           {"wg.add", Op::kWgAdd},
      {"wg.wait", Op::kWgWait},           {"once.do", Op::kOnceDo},          {"once.done", Op::kOnceDone},
  };
  for (auto& [name, op] : table)
    if (s == name) return op;
  return Op::kUnknown;
}

using Clock = std::vector<uint32_t>;

void join_into(Clock& dst, const Clock& src) {
  if (dst.size() < src.size()) dst.resize(src.size(), 0);
  for (size_t i = 0; i < src.size(); i++) dst[i] = std::max(dst[i], src[i]);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

const char* to_string(LockMode m) {
  switch (m) {
    case LockMode::kMutex: return "mutex";
    case LockMode::kRwRead: return "rwmutex-read";
    case LockMode::kRwWrite: return "rwmutex-write";
  }
  return "?";
}

bool is_sync_kind(trace::SiteKind k) {
  switch (k) {
    case trace::SiteKind::kAcquire:
    case trace::SiteKind::kRelease:
    case trace::SiteKind::kSyncCall:
    case trace::SiteKind::kSyncReturn:
    case trace::SiteKind::kGoCreate:
      return true;
    default:
      return false;
  }
}

bool has_sync_sites(const trace::Header& h) {
  return std::any_of(h.sites.begin(), h.sites.end(), [](const trace::Site& s) { return is_sync_kind(s.kind); });
}

uint64_t count_unprobed_sync_sites(const trace::Header& h, const trace::Summary* summary) {
  uint64_t n = 0;
  for (auto& s : h.sites)
    if (is_sync_kind(s.kind) && s.backend == "none") n++;
  if (summary) {
    for (auto& w : summary->warnings) {
      std::string l = lower(w);
      for (const char* word : {"sync", "chan", "select", "newproc", "waitgroup", "once"})
        if (l.find(word) != std::string::npos) {
          n++;
          break;
        }
    }
  }
  return n;
}

struct HappensBefore::Impl {
  struct SiteInfo {
    trace::SiteKind kind = trace::SiteKind::kEntry;
    Op op = Op::kUnknown;
    uint32_t func = 0;
  };
  struct Pending {
    Op op = Op::kUnknown;
    uint64_t obj = 0;
    std::optional<uint64_t> key;
    /// The call's event (site and stack) when its return takes a lock: the return has no
    /// stack of its own, and the call's names the caller ("locked at").
    std::optional<trace::Event> call;
  };
  struct OpenWin {
    uint64_t map = 0, serial = 0;
    uint64_t mkey = 0;  // the map's identity (MapLifetimes): what MapState is keyed on
    uint32_t func = 0;
    bool entry = false;
  };
  struct Gor {
    uint64_t ident = 0, goid = 0, g = 0;
    uint32_t slot = 0, last_tid = 0;
    uint32_t own_saved = 0;  // own component when the clock was freed (exit)
    bool alive = true;
    Clock clock;
    std::vector<HeldLock> locks;
    std::vector<Pending> pending;
    std::vector<OpenWin> wins;
  };
  struct Obj {
    Clock w, r;
    int32_t holder = kNone;  // slot holding it as a mutex / for writing
  };
  // A goroutine's last write or read of a map.
  struct Rec {
    bool valid = false, open = false;
    uint32_t epoch = 0;
    int32_t stack = kNone;
    uint64_t time = 0, end = 0, goid = 0, g = 0, serial = 0;
    uint32_t tid = 0, cpu = 0, site = 0;
    int32_t pinned = kNone;
    std::vector<HeldLock> locks;
  };
  struct Entry {
    uint32_t slot = 0;
    Rec write, read;
  };
  struct MapState {
    std::vector<Entry> entries;
  };
  struct Group {
    HbFinding f;
    int32_t a = kNone, b = kNone;
  };
  struct PendingCreate {
    uint32_t parent = 0;
    bool valid = false;
  };

  trace::Header h;
  HappensBeforeOptions opts;
  std::vector<SiteInfo> sites;

  BasicFlatMap<uint64_t> goid_of_g;
  FlatMap slot_of_ident;
  std::vector<Gor> gors;
  FlatMap obj_index;
  std::vector<Obj> objs;
  FlatMap map_index;
  std::vector<MapState> maps;
  std::vector<uint32_t> free_maps;
  std::unordered_map<uint32_t, PendingCreate> creates;  // by thread
  uint64_t serial = 0;
  Rec cur;  // scratch for the access being checked

  std::vector<std::vector<uint64_t>> stacks;
  FlatMap stack_by_hash;
  std::vector<int32_t> stack_next;
  std::vector<uint64_t> scratch_stack;

  std::vector<HbAccess> accesses;
  std::vector<Group> groups;
  FlatMap group_index;

  HappensBeforeStats st;
  uint64_t last_t = 0;
  MapLifetimes life;

  Impl(const trace::Header& hdr, HappensBeforeOptions o)
      : h(hdr), opts(o), life(hdr, o.lifetimes ? *o.lifetimes : map_lifetime_basis(hdr)) {
    std::unordered_map<std::string, uint32_t> ids;
    sites.reserve(h.sites.size());
    for (auto& s : h.sites) {
      auto [it, fresh] = ids.emplace(s.function, uint32_t(ids.size()));
      (void)fresh;
      sites.push_back(SiteInfo{s.kind, parse_op(s.op), it->second});
    }
  }

  // ---- stacks ----
  static uint64_t hash_stack(const std::vector<uint64_t>& s) {
    uint64_t x = 0x9e3779b97f4a7c15ull ^ s.size();
    for (uint64_t pc : s) x = mix64(x ^ pc);
    return x;
  }
  int32_t intern(const std::vector<uint64_t>& s) {
    uint64_t hs = hash_stack(s);
    if (hs == FlatMap::kEmpty || hs == FlatMap::kTomb) hs = 0;
    uint32_t* head = stack_by_hash.find(hs);
    if (head)
      for (int32_t id = int32_t(*head); id != kNone; id = stack_next[size_t(id)])
        if (stacks[size_t(id)] == s) return id;
    int32_t id = int32_t(stacks.size());
    stacks.push_back(s);
    stack_next.push_back(head ? int32_t(*head) : kNone);
    stack_by_hash.put(hs, uint32_t(id));
    return id;
  }
  int32_t caller_stack(const trace::Event& e) {
    if (e.stack.size() > 1) scratch_stack.assign(e.stack.begin() + 1, e.stack.end());
    else scratch_stack.clear();
    return intern(scratch_stack);
  }
  // The acquiring site (pc + 1: symbolize_stack subtracts one) then the return addresses.
  int32_t lock_stack(const trace::Event& e) {
    uint64_t pc = e.site < h.sites.size() ? h.sites[e.site].pc : 0;
    if (!pc && !e.stack.empty()) pc = e.stack[0];
    scratch_stack.clear();
    if (pc) scratch_stack.push_back(pc + 1);
    size_t from = (!e.stack.empty() && e.stack[0] == pc) ? 1 : 0;
    scratch_stack.insert(scratch_stack.end(), e.stack.begin() + long(std::min(from, e.stack.size())), e.stack.end());
    return intern(scratch_stack);
  }

  // ---- goroutines, objects ----
  uint32_t slot_for(uint64_t ident, uint64_t goid, uint64_t g) {
    if (uint32_t* s = slot_of_ident.find(ident)) {
      Gor& gr = gors[*s];
      if (!gr.alive) {  // an identity seen again after its exit (g or thread reused)
        gr.alive = true;
        gr.clock.assign(size_t(gr.slot) + 1, 0);
        gr.clock[gr.slot] = gr.own_saved + 1;
      }
      if (!gr.goid && goid) gr.goid = goid;
      if (g) gr.g = g;
      return *s;
    }
    uint32_t slot = uint32_t(gors.size());
    slot_of_ident.put(ident, slot);
    Gor gr;
    gr.ident = ident;
    gr.goid = goid;
    gr.g = g;
    gr.slot = slot;
    gr.clock.assign(size_t(slot) + 1, 0);
    gr.clock[slot] = 1;
    gors.push_back(std::move(gr));
    st.goroutines++;
    return slot;
  }
  Obj& obj(uint64_t addr) {
    if (uint32_t* i = obj_index.find(addr)) return objs[*i];
    obj_index.put(addr, uint32_t(objs.size()));
    st.sync_objects++;
    return objs.emplace_back();
  }
  void acquire(Gor& gr, const Clock& x) {
    join_into(gr.clock, x);
    st.acquires++;
  }
  void release(Gor& gr, Clock& x) {
    join_into(x, gr.clock);
    if (gr.clock.size() <= gr.slot) gr.clock.resize(size_t(gr.slot) + 1, 0);
    gr.clock[gr.slot]++;
    st.releases++;
  }
  uint32_t own(const Gor& gr) const { return gr.slot < gr.clock.size() ? gr.clock[gr.slot] : 0; }

  void hold(Gor& gr, uint64_t addr, LockMode mode, const trace::Event& e) {
    HeldLock l;
    l.object = addr;
    l.mode = mode;
    l.time_ns = e.time_ns;
    l.site_pc = e.site < h.sites.size() ? h.sites[e.site].pc : 0;
    l.stack = uint32_t(lock_stack(e));
    // RWMutex.Lock takes its inner writer mutex (rw.w, at the RWMutex's own address)
    // first: once it holds the RWMutex for writing, that is the one lock it holds there.
    if (mode == LockMode::kRwWrite) drop_lock(gr, addr, LockMode::kMutex);
    else if (mode == LockMode::kMutex &&
             std::any_of(gr.locks.begin(), gr.locks.end(),
                         [&](const HeldLock& x) { return x.object == addr && x.mode == LockMode::kRwWrite; }))
      return;
    // Held again (the fast path's probe and then lockSlow's return): the latest acquire.
    auto it = std::find_if(gr.locks.begin(), gr.locks.end(),
                           [&](const HeldLock& x) { return x.object == addr && x.mode == mode; });
    if (it != gr.locks.end()) *it = l;
    else gr.locks.push_back(l);
    if (mode != LockMode::kRwRead) obj(addr).holder = int32_t(gr.slot);
  }
  static bool drop_lock(Gor& gr, uint64_t addr, LockMode mode) {
    for (size_t i = gr.locks.size(); i-- > 0;)
      if (gr.locks[i].object == addr && gr.locks[i].mode == mode) {
        gr.locks.erase(gr.locks.begin() + long(i));
        return true;
      }
    return false;
  }
  void unhold(Gor& gr, uint64_t addr, LockMode mode) {
    bool mine = drop_lock(gr, addr, mode);
    if (mode == LockMode::kRwRead) return;
    Obj& o = obj(addr);
    // Go lets another goroutine unlock a mutex: the holder no longer holds it.
    if (!mine && o.holder != kNone && uint32_t(o.holder) < gors.size()) drop_lock(gors[size_t(o.holder)], addr, mode);
    o.holder = kNone;
  }

  // ---- sync events ----
  void sync_event(const SiteInfo& si, uint32_t slot, const trace::Event& e) {
    st.sync_events++;
    Gor& gr = gors[slot];
    uint64_t a = e.map;
    switch (si.kind) {
      case trace::SiteKind::kAcquire:
        if (!a) return;
        acquire(gr, obj(a).w);
        if (si.op == Op::kMutexLock) hold(gr, a, LockMode::kMutex, e);
        else if (si.op == Op::kRwRLock) hold(gr, a, LockMode::kRwRead, e);
        return;
      case trace::SiteKind::kRelease: {
        if (!a) return;
        switch (si.op) {
          case Op::kRwRUnlock:
            release(gr, obj(a).r);
            unhold(gr, a, LockMode::kRwRead);
            return;
          case Op::kMutexUnlock:
            release(gr, obj(a).w);
            unhold(gr, a, LockMode::kMutex);
            return;
          case Op::kRwUnlock:
            release(gr, obj(a).w);
            unhold(gr, a, LockMode::kRwWrite);
            return;
          case Op::kWgAdd:
            // Add(delta > 0) orders nothing; Done (delta < 0) releases. An unknown delta is
            // taken as a release (it can only add edges toward a later Wait).
            if (e.key && int64_t(*e.key) >= 0) return;
            release(gr, obj(a).w);
            return;
          default:  // chan.close, select.send, once.done
            release(gr, obj(a).w);
            return;
        }
      }
      case trace::SiteKind::kSyncCall:
        // A send releases at the call; so does a receive (and a select's receive case), for
        // an unbuffered send completes after the receive began: the sender's return
        // acquires it. One clock per channel: extra edges can hide a race, never invent one.
        if ((si.op == Op::kChanSend || si.op == Op::kChanRecv || si.op == Op::kSelect) && a) release(gr, obj(a).w);
        gr.pending.push_back(Pending{si.op, a, e.key, std::nullopt});
        if (si.op == Op::kMutexLock || si.op == Op::kRwRLock || si.op == Op::kRwLock) gr.pending.back().call = e;
        return;
      case trace::SiteKind::kSyncReturn:
        sync_return(si, gr, e);
        return;
      case trace::SiteKind::kGoCreate:
        creates[e.tid] = PendingCreate{slot, true};
        return;
      default:
        return;
    }
  }

  void sync_return(const SiteInfo& si, Gor& gr, const trace::Event& e) {
    if (si.op == Op::kSelect) {
      uint64_t chan = 0;
      bool any = false;
      for (auto& p : gr.pending)
        if (p.op == Op::kSelect) {
          any = true;
          if (e.key && p.key && *p.key == *e.key) chan = p.obj;
        }
      if (!any) {
        st.unmatched_returns++;
        return;
      }
      std::erase_if(gr.pending, [](const Pending& p) { return p.op == Op::kSelect; });
      if (chan) acquire(gr, obj(chan).w);
      return;
    }
    size_t i = gr.pending.size();
    while (i-- > 0)
      if (gr.pending[i].op == si.op) break;
    if (i == size_t(-1)) {
      st.unmatched_returns++;
      return;
    }
    uint64_t a = gr.pending[i].obj;
    std::optional<trace::Event> call = std::move(gr.pending[i].call);
    gr.pending.erase(gr.pending.begin() + long(i));
    if (!a) return;
    trace::Event at = e;  // where the lock was taken: the call's site and stack, at the return's time
    if (call) {
      at.site = call->site;
      at.stack = std::move(call->stack);
    }
    switch (si.op) {
      case Op::kMutexLock:
        acquire(gr, obj(a).w);
        hold(gr, a, LockMode::kMutex, at);
        return;
      case Op::kRwRLock:
        acquire(gr, obj(a).w);
        hold(gr, a, LockMode::kRwRead, at);
        return;
      case Op::kRwLock: {
        Obj& o = obj(a);
        acquire(gr, o.w);
        acquire(gr, o.r);
        hold(gr, a, LockMode::kRwWrite, at);
        return;
      }
      default:  // chan.send, chan.recv, wg.wait
        acquire(gr, obj(a).w);
        return;
    }
  }

  void go_start(const trace::Event& e) {
    if (e.g && e.goid) goid_of_g.put(e.g, e.goid);
    uint32_t child = slot_for(identity(e.goid, e.g, e.tid), e.goid, e.g);
    gors[child].last_tid = e.tid;
    auto it = creates.find(e.tid);
    if (it == creates.end() || !it->second.valid) return;
    uint32_t parent = it->second.parent;
    it->second.valid = false;
    if (parent == child) return;
    Gor& c = gors[child];
    Gor& p = gors[parent];
    uint32_t mine = own(c);
    c.clock = p.clock;
    if (c.clock.size() <= c.slot) c.clock.resize(size_t(c.slot) + 1, 0);
    c.clock[c.slot] = std::max(c.clock[c.slot], std::max(mine, 1u));
    if (p.clock.size() <= p.slot) p.clock.resize(size_t(p.slot) + 1, 0);
    p.clock[p.slot]++;
    st.forks++;
  }

  void go_exit(const trace::Event& e, uint64_t goid) {
    if (!e.g) return;
    uint64_t ident = identity(goid, e.g, e.tid);
    if (uint32_t* s = slot_of_ident.find(ident)) {
      Gor& gr = gors[*s];
      while (!gr.wins.empty()) close_win(gr, gr.wins.size() - 1, e.time_ns, false);
      for (auto& l : gr.locks)
        if (l.mode != LockMode::kRwRead) {
          Obj& o = obj(l.object);
          if (o.holder == int32_t(gr.slot)) o.holder = kNone;
        }
      gr.locks.clear();
      gr.pending.clear();
      gr.own_saved = own(gr);
      Clock().swap(gr.clock);
      gr.alive = false;
    }
    goid_of_g.erase(e.g);
  }

  // ---- map accesses ----
  MapState& map_state(uint64_t m) {
    if (uint32_t* i = map_index.find(m)) return maps[*i];
    st.maps++;
    if (!free_maps.empty()) {  // the state of an identity that ended (a creation): memory stays O(live maps)
      uint32_t i = free_maps.back();
      free_maps.pop_back();
      map_index.put(m, i);
      return maps[i];
    }
    map_index.put(m, uint32_t(maps.size()));
    return maps.emplace_back();
  }
  static size_t entry_for(MapState& ms, uint32_t slot) {
    for (size_t i = 0; i < ms.entries.size(); i++)
      if (ms.entries[i].slot == slot) return i;
    ms.entries.emplace_back().slot = slot;
    return ms.entries.size() - 1;
  }

  void fill_cur(Gor& gr, const trace::Event& e, uint64_t goid, bool open) {
    cur.valid = true;
    cur.open = open;
    cur.epoch = own(gr);
    cur.stack = caller_stack(e);
    cur.time = cur.end = e.time_ns;
    cur.goid = goid;
    cur.g = e.g;
    cur.tid = e.tid;
    cur.cpu = e.cpu;
    cur.site = e.site;
    cur.serial = open ? serial : 0;
    cur.pinned = kNone;
    cur.locks.assign(gr.locks.begin(), gr.locks.end());
  }

  int32_t pin(Rec& r, uint64_t map, bool read) {
    if (r.pinned != kNone) return r.pinned;
    HbAccess a;
    a.goroutine = r.goid;
    a.g = r.g;
    a.thread = r.tid;
    a.cpu = r.cpu;
    a.start_ns = r.time;
    a.end_ns = r.open ? r.time : r.end;
    a.closed = !r.open;
    a.map = map;
    a.read = read;
    a.stack = r.stack == kNone ? kNoStack : uint32_t(r.stack);
    if (r.site < h.sites.size()) {
      auto& s = h.sites[r.site];
      a.function = s.function;
      a.op = read ? "read" : (s.op.empty() ? map_op_of(s.function) : s.op);
    }
    a.locks = r.locks;
    r.pinned = int32_t(accesses.size());
    accesses.push_back(std::move(a));
    return r.pinned;
  }

  void record(const char* kind, uint64_t map, uint64_t mkey, Rec& a, bool a_read, Rec& b, bool b_read) {
    uint64_t key = stack_pair_key(uint32_t(a.stack), uint32_t(b.stack), std::string_view(kind) == kUnsyncMapWrite);
    uint64_t t = b.time;
    if (uint32_t* gi = group_index.find(key)) {
      add_occurrence(groups[*gi].f, map, t);
      return;
    }
    Group g;
    start_occurrences(g.f, kind, map, t);
    if (const MapOrigin* o = life.origin(mkey)) g.f.created = *o;
    g.a = pin(a, map, a_read);
    g.b = pin(b, map, b_read);
    group_index.put(key, uint32_t(groups.size()));
    groups.push_back(std::move(g));
  }

  // The goroutine of entry O is inside a write of MAP now (its last write, or an outer
  // window such as a mapclear around its own mapassign).
  bool open_on(const Entry& o, uint64_t mkey) const {
    if (o.write.open) return true;
    for (auto& w : gors[o.slot].wins)
      if (w.mkey == mkey) return true;
    return false;
  }

  void write(const SiteInfo& si, uint32_t slot, const trace::Event& e, uint64_t goid) {
    if (!e.map) return;
    Gor& gr = gors[slot];
    for (size_t i = 0; i < gr.wins.size(); i++) {
      OpenWin& w = gr.wins[i];
      if (w.func != si.func) continue;
      // kEntry again on the same map before its return: morestack restarted the call.
      if (w.entry && si.kind == trace::SiteKind::kEntry && w.map == e.map) return;
      close_win(gr, i, e.time_ns, false);  // a write-begin again: the end was lost
      break;
    }
    serial++;
    uint64_t mkey = life.key(e, gr.ident);
    gr.wins.push_back(OpenWin{e.map, serial, mkey, si.func, si.kind == trace::SiteKind::kEntry});
    st.writes++;
    check_access(gr, slot, e, goid, false, mkey);
  }

  /// An access of E.map by GR (a read when IS_READ) against every other goroutine's last
  /// accesses of that map that GR's clock does not order: a write against their writes
  /// and reads, a read against their writes. Then it becomes GR's last access.
  void check_access(Gor& gr, uint32_t slot, const trace::Event& e, uint64_t goid, bool is_read, uint64_t mkey) {
    st.accesses_checked++;
    MapState& ms = map_state(mkey);
    size_t mine = entry_for(ms, slot);
    fill_cur(gr, e, goid, !is_read);
    for (size_t j = 0; j < ms.entries.size(); j++) {
      if (j == mine) continue;
      Entry& o = ms.entries[j];
      uint32_t known = o.slot < gr.clock.size() ? gr.clock[o.slot] : 0;
      if (o.write.valid && o.write.epoch > known) {
        if (open_on(o, mkey)) st.overlaps_skipped++;
        else record(is_read ? kUnsyncMapReadWrite : kUnsyncMapWrite, e.map, mkey, o.write, false, cur, is_read);
      }
      if (!is_read && o.read.valid && o.read.epoch > known)
        record(kUnsyncMapReadWrite, e.map, mkey, o.read, true, cur, false);
    }
    std::swap(is_read ? ms.entries[mine].read : ms.entries[mine].write, cur);
  }

  void read(uint32_t slot, const trace::Event& e, uint64_t goid) {
    if (!e.map) return;
    Gor& gr = gors[slot];
    st.reads++;
    check_access(gr, slot, e, goid, true, life.key(e, gr.ident));
  }

  void close_win(Gor& gr, size_t i, uint64_t t, bool closed) {
    OpenWin w = gr.wins[i];
    gr.wins.erase(gr.wins.begin() + long(i));
    if (uint32_t* mi = map_index.find(w.mkey)) {
      for (auto& en : maps[*mi].entries) {
        if (en.slot != gr.slot) continue;
        Rec& r = en.write;
        if (r.valid && r.open && r.serial == w.serial) {
          r.open = false;
          r.end = t;
          if (r.pinned != kNone) {
            accesses[size_t(r.pinned)].end_ns = t;
            accesses[size_t(r.pinned)].closed = closed;
          }
        }
        break;
      }
    }
  }

  void write_end(const SiteInfo& si, Gor& gr, const trace::Event& e) {
    for (size_t i = gr.wins.size(); i-- > 0;) {
      OpenWin& w = gr.wins[i];
      if (w.func == si.func && (e.map == 0 || w.map == e.map)) {
        close_win(gr, i, e.time_ns, true);
        return;
      }
    }
    // Identity mismatch (g unreadable at one end): the same thread, function and map.
    if (e.map) {
      for (auto& o : gors) {
        if (&o == &gr || o.last_tid != e.tid) continue;
        for (size_t i = o.wins.size(); i-- > 0;)
          if (o.wins[i].func == si.func && o.wins[i].map == e.map) {
            close_win(o, i, e.time_ns, true);
            return;
          }
      }
    }
    st.unmatched_ends++;
  }

  // ---- clock skew ----
  // Events of different CPUs are ordered by their perf timestamps, and those disagree by
  // up to a few hundred ns across CPUs here: a lockSlow return (the acquire) was stamped
  // 85 ns before the other CPU's Unlock probe, which runs before the unlocking XADD. So a
  // release is processed as if stamped kSkewNs earlier, but never before its own
  // goroutine's previous event: it can only gain edges (hide a race closer than 5 µs,
  // where each probe hit alone costs ~15 µs), never lose one.
  static constexpr uint64_t kSkewNs = 5'000;
  struct Held {
    uint64_t key = 0, seq = 0;
    trace::Event e;
  };
  static bool later(const Held& a, const Held& b) { return a.key != b.key ? a.key > b.key : a.seq > b.seq; }
  std::vector<Held> held;                            // a min-heap by (key, seq)
  std::unordered_map<uint64_t, uint64_t> last_key;   // per g (or thread): its latest key
  uint64_t held_seq = 0;

  void add(const trace::Event& e) {
    st.events++;
    if (e.time_ns < last_t) st.out_of_order++;
    else last_t = e.time_ns;
    uint64_t key = e.time_ns;
    if (e.site < sites.size() && sites[e.site].kind == trace::SiteKind::kGoStart && e.g) {
      // The new goroutine's events come after its go-start (which tells its goid), even a
      // sync call moved kSkewNs earlier: otherwise that call went to whichever goroutine
      // last had the g struct, and its return matched no call. In-process recordings,
      // whose hits are ~1 µs apart, not ~15, showed it.
      uint64_t& lk = last_key[e.g];
      lk = std::max(lk, key);
    } else if (e.site < sites.size()) {
      auto k = sites[e.site].kind;
      uint64_t who = e.g ? e.g : (uint64_t(e.tid) | (1ull << 63));
      uint64_t& lk = last_key[who];
      if (k == trace::SiteKind::kRelease || k == trace::SiteKind::kSyncCall)
        key = e.time_ns > kSkewNs ? e.time_ns - kSkewNs : 0;
      key = std::max(key, lk + 1);
      lk = key;
      if (k == trace::SiteKind::kGoExit) last_key.erase(who);
    }
    held.push_back(Held{key, held_seq++, e});
    std::push_heap(held.begin(), held.end(), later);
    while (!held.empty() && held.front().key + kSkewNs < e.time_ns) pop_held();
  }

  void pop_held() {
    std::pop_heap(held.begin(), held.end(), later);
    Held h = std::move(held.back());
    held.pop_back();
    process(h.e);
  }

  void process(const trace::Event& e) {
    if (e.site >= sites.size()) return;
    const SiteInfo& si = sites[e.site];
    uint64_t goid = e.goid;
    if (!goid && e.g) {
      if (uint64_t* known = goid_of_g.find(e.g)) goid = *known;
    }
    switch (si.kind) {
      case trace::SiteKind::kGoStart:
        go_start(e);
        return;
      case trace::SiteKind::kGoExit:
        go_exit(e, goid);
        return;
      case trace::SiteKind::kThrow:
        return;
      case trace::SiteKind::kLost:
        life.lost();
        return;
      case trace::SiteKind::kGcMarkTermination:
        life.gc_cycle();
        return;
      default:
        break;
    }
    uint32_t slot = slot_for(identity(goid, e.g, e.tid), goid, e.g);
    if (si.kind == trace::SiteKind::kMapCreate) {
      // A new map at this address: what is known of the old one is dropped (its MapState
      // is no longer reachable through the new identity).
      uint64_t old = life.created(e, gors[slot].ident, goid);
      if (uint32_t* mi = old ? map_index.find(old) : nullptr) {
        std::vector<Entry>().swap(maps[*mi].entries);
        free_maps.push_back(*mi);
        map_index.erase(old);
      }
      return;
    }
    gors[slot].last_tid = e.tid;
    switch (si.kind) {
      case trace::SiteKind::kEntry:
      case trace::SiteKind::kWriteBegin:
        write(si, slot, e, goid);
        break;
      case trace::SiteKind::kWriteEnd:
      case trace::SiteKind::kReturn:
        write_end(si, gors[slot], e);
        break;
      case trace::SiteKind::kMapRead:
        read(slot, e, goid);
        break;
      default:
        if (is_sync_kind(si.kind)) sync_event(si, slot, e);
        break;
    }
  }

  HappensBeforeResult finish() {
    while (!held.empty()) pop_held();
    // Writes still open at the end: their windows never closed.
    for (auto& a : accesses)
      if (!a.closed && !a.read) a.end_ns = std::max(a.start_ns, last_t);

    std::vector<std::string> notes;
    if (opts.lost_events)
      notes.push_back(fmt::format("the recording lost {} events: a missed synchronization event could order this pair",
                                  opts.lost_events));
    if (opts.lost_unknown)
      notes.push_back(
          "the trace was cut short and how many events were lost is unknown: a missed synchronization event could "
          "order this pair");
    if (opts.unprobed_sync_sites)
      notes.push_back(fmt::format(
          "{} synchronization site{} could not be probed: synchronization through {} is not seen and could order "
          "this pair",
          opts.unprobed_sync_sites, opts.unprobed_sync_sites == 1 ? "" : "s",
          opts.unprobed_sync_sites == 1 ? "it" : "them"));
    if (st.unmatched_returns)
      notes.push_back(fmt::format(
          "{} synchronization return{} matched no call (its call event was lost or not probed): an acquire may be "
          "missing",
          st.unmatched_returns, st.unmatched_returns == 1 ? "" : "s"));
    if (st.out_of_order)
      notes.push_back(fmt::format("{} events were out of time order: the clocks around them may be wrong",
                                  st.out_of_order));

    HappensBeforeResult r;
    r.stats = st;
    r.lifetimes = life.stats();
    r.findings.reserve(groups.size());
    for (auto& g : groups) {
      g.f.a = accesses[size_t(g.a)];
      g.f.b = accesses[size_t(g.b)];
      bool rw = g.f.kind == kUnsyncMapReadWrite;
      g.f.established_by = fmt::format(
          "no happens-before edge between {} in the recorded synchronization (mutexes, channels, WaitGroups, Once, "
          "goroutine creation)",
          rw ? "this read and this write" : "these writes");
      g.f.notes = notes;
      if (!g.f.a.goroutine || !g.f.b.goroutine)
        g.f.notes.push_back(
            "a goroutine id is unknown (identified by its g pointer or thread): if both sides are one goroutine, "
            "they are ordered");
      r.findings.push_back(std::move(g.f));
    }
    std::stable_sort(r.findings.begin(), r.findings.end(),
                     [](const HbFinding& x, const HbFinding& y) { return x.first_ns < y.first_ns; });
    r.stacks = std::move(stacks);
    return r;
  }
};

HappensBefore::HappensBefore(const trace::Header& h, HappensBeforeOptions opts)
    : impl_(std::make_unique<Impl>(h, opts)) {}
HappensBefore::~HappensBefore() = default;
HappensBefore::HappensBefore(HappensBefore&&) noexcept = default;
HappensBefore& HappensBefore::operator=(HappensBefore&&) noexcept = default;

void HappensBefore::add(const trace::Event& e) { impl_->add(e); }
HappensBeforeOptions& HappensBefore::options() { return impl_->opts; }
HappensBeforeResult HappensBefore::finish() { return impl_->finish(); }

HappensBeforeResult find_unsynchronized_accesses(const trace::Header& h, const std::vector<trace::Event>& events,
                                                 HappensBeforeOptions opts) {
  HappensBefore hb(h, opts);
  for (auto& e : events) hb.add(e);
  return hb.finish();
}

void merge_hb_by_symbolized_stacks(std::vector<HbFinding>& findings, const std::vector<std::vector<StackFrame>>& sym) {
  merge_findings_by_stacks(findings, sym, [](HbFinding& into, const HbFinding& from) {
    for (auto& n : from.notes)
      if (std::find(into.notes.begin(), into.notes.end(), n) == into.notes.end()) into.notes.push_back(n);
  });
}

}  // namespace gort::core::analysis
