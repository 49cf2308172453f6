// Concurrent map writes: write windows per (goroutine, map), overlaps and throws.
// See concurrent_writes.h and docs/report.md.

#include "core/analysis/concurrent_writes.h"

#include "core/analysis/flat_map.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <unordered_map>
#include <utility>

namespace gort::core::analysis {

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool contains(std::string_view s, std::string_view p) { return s.find(p) != std::string_view::npos; }

bool is_throw_function(std::string_view f) {
  return f == "runtime.throw" || f == "runtime.fatal" || f == "runtime.fatalthrow" || f == "runtime.maps_fatal" ||
         f == "internal/runtime/maps.fatal" || f == "runtime.fatalpanic";
}

// Identity of a goroutine for window bookkeeping: the goid when known, else the g
// pointer, else the thread. Tags keep the three spaces apart.
constexpr uint64_t kTagGoid = 1ull << 62, kTagG = 2ull << 62, kTagTid = 3ull << 62;
uint64_t identity(uint64_t goid, uint64_t g, uint32_t tid) {
  if (goid) return kTagGoid | (goid & (kTagGoid - 1));
  if (g) return kTagG | (g & (kTagGoid - 1));
  return kTagTid | tid;
}

constexpr int32_t kNone = -1;

}  // namespace

std::string map_op_of(std::string_view f) {
  if (contains(f, "mapassign") || contains(f, "putSlot") || contains(f, "PutSlot")) return "assign";
  if (contains(f, "mapdelete") || contains(f, ").Delete")) return "delete";
  if (contains(f, "mapclear") || contains(f, ").Clear")) return "clear";
  if (contains(f, "mapclone") || f == "maps.clone" || contains(f, "maps_clone")) return "clone";
  if (contains(f, "mapaccess") || contains(f, ").Get")) return "read";
  if (contains(f, "mapiter") || contains(f, "(*Iter)")) return "iterate";
  if (is_map_function(f)) return "write";
  return "";
}

bool is_map_function(std::string_view f) {
  if (is_throw_function(f)) return false;
  return starts_with(f, "runtime.map") || starts_with(f, "internal/runtime/maps.") || f == "maps.clone" ||
         starts_with(f, "runtime.(*hmap)") || starts_with(f, "runtime.(*bmap)") || f == "runtime.growWork" ||
         f == "runtime.hashGrow" || f == "runtime.evacuate" || starts_with(f, "runtime.growWork_") ||
         starts_with(f, "runtime.evacuate_") || f == "runtime.makeBucketArray" || f == "runtime.newoverflow";
}

bool is_runtime_function(std::string_view f) {
  return starts_with(f, "runtime.") || starts_with(f, "internal/runtime/") || f == "maps.clone";
}

struct ConcurrentWrites::Impl {
  struct SiteInfo {
    trace::SiteKind kind = trace::SiteKind::kEntry;
    uint32_t func = 0;  // interned function name
    bool valid = true;
  };
  struct Window {
    uint64_t start = 0, ident = 0, goid = 0, g = 0, map = 0;
    uint64_t mkey = 0;         // the map's identity (MapLifetimes): windows pair on it
    uint32_t tid = 0, cpu = 0, site = 0, func = 0;
    int32_t access = kNone;    // pinned: index into accesses
    int32_t stack_id = kNone;  // interned lazily
    bool entry = false;        // opened at kEntry (no flag site)
    bool in_use = false;
    std::vector<uint64_t> stack;  // caller stack (event.stack[1..]); capacity reused
  };
  // A window that closed recently (a throw may come just after its close).
  struct Recent {
    uint64_t start = 0, end = 0, ident = 0, goid = 0, g = 0, map = 0, mkey = 0;
    uint32_t tid = 0, cpu = 0, site = 0;
    int32_t access = kNone, stack_id = kNone;
    bool valid = false;
    std::vector<uint64_t> stack;
  };
  struct Group {
    Finding f;           // a, b filled at the end from accesses
    int32_t a = kNone, b = kNone;
  };

  trace::Header h;
  ConcurrentWritesOptions opts;
  std::vector<SiteInfo> sites;
  std::vector<std::string> func_names;

  BasicFlatMap<uint64_t> goid_of_g;           // g -> goid
  std::vector<Window> slab;
  std::vector<uint32_t> free_slots;
  uint32_t open_count = 0;
  FlatMap map_index, ident_index;             // -> index into lists
  std::vector<std::vector<uint32_t>> map_lists, ident_lists;  // open window slots
  std::vector<uint32_t> free_map_lists;       // map_lists of identities that ended (a creation)
  std::array<Recent, 64> recent;
  size_t recent_next = 0;

  // Stack interning.
  std::vector<std::vector<uint64_t>> stacks;
  FlatMap stack_by_hash;                       // hash -> first id with it
  std::vector<int32_t> stack_next;             // chain of ids with the same hash

  std::vector<Access> accesses;
  std::vector<Group> groups;
  FlatMap group_index;
  FlatMap throwers;                            // identities that threw

  ConcurrentWritesStats st;
  uint64_t last_t = 0;
  MapLifetimes life;

  Impl(const trace::Header& hdr, ConcurrentWritesOptions o)
      : h(hdr), opts(std::move(o)), life(hdr, opts.lifetimes ? *opts.lifetimes : map_lifetime_basis(hdr)) {
    std::unordered_map<std::string, uint32_t> ids;
    sites.reserve(h.sites.size());
    for (auto& s : h.sites) {
      auto [it, fresh] = ids.emplace(s.function, uint32_t(func_names.size()));
      if (fresh) func_names.push_back(s.function);
      sites.push_back(SiteInfo{s.kind, it->second, true});
    }
  }

  // ---- stacks ----
  static uint64_t hash_stack(const uint64_t* p, size_t n) {
    uint64_t x = 0x9e3779b97f4a7c15ull ^ n;
    for (size_t i = 0; i < n; i++) x = mix64(x ^ p[i]);
    return x;
  }
  int32_t intern(const std::vector<uint64_t>& s) {
    uint64_t hs = hash_stack(s.data(), s.size());
    if (hs == FlatMap::kEmpty || hs == FlatMap::kTomb) hs = 0;
    uint32_t* head = stack_by_hash.find(hs);
    if (head) {
      for (int32_t id = int32_t(*head); id != kNone; id = stack_next[size_t(id)])
        if (stacks[size_t(id)] == s) return id;
    }
    int32_t id = int32_t(stacks.size());
    stacks.push_back(s);
    stack_next.push_back(head ? int32_t(*head) : kNone);
    stack_by_hash.put(hs, uint32_t(id));
    return id;
  }
  int32_t stack_of(Window& w) {
    if (w.stack_id == kNone) w.stack_id = intern(w.stack);
    return w.stack_id;
  }

  // ---- lists ----
  std::vector<uint32_t>& list_for(FlatMap& index, std::vector<std::vector<uint32_t>>& lists, uint64_t key,
                                  uint64_t& counter) {
    uint32_t* at = index.find(key);
    if (at) return lists[*at];
    counter++;
    if (&lists == &map_lists && !free_map_lists.empty()) {  // memory stays O(live maps)
      uint32_t i = free_map_lists.back();
      free_map_lists.pop_back();
      index.put(key, i);
      return lists[i];
    }
    index.put(key, uint32_t(lists.size()));
    lists.emplace_back();
    return lists.back();
  }
  std::vector<uint32_t>* find_list(FlatMap& index, std::vector<std::vector<uint32_t>>& lists, uint64_t key) {
    uint32_t* at = index.find(key);
    return at ? &lists[*at] : nullptr;
  }
  static void remove_from(std::vector<uint32_t>* l, uint32_t slot) {
    if (!l) return;
    for (size_t i = 0; i < l->size(); i++)
      if ((*l)[i] == slot) {
        (*l)[i] = l->back();
        l->pop_back();
        return;
      }
  }

  // ---- accesses ----
  const trace::Site* site(uint32_t i) const { return i < h.sites.size() ? &h.sites[i] : nullptr; }
  void fill_site(Access& a, uint32_t site_index) {
    if (auto* s = site(site_index)) {
      a.function = s->function;
      a.op = s->op.empty() ? map_op_of(s->function) : s->op;
    }
  }
  int32_t pin(Window& w) {
    if (w.access != kNone) return w.access;
    Access a;
    a.goroutine = w.goid;
    a.g = w.g;
    a.thread = w.tid;
    a.cpu = w.cpu;
    a.start_ns = a.end_ns = w.start;
    a.closed = false;  // until it closes
    a.map = w.map;
    a.stack = uint32_t(stack_of(w));
    fill_site(a, w.site);
    w.access = int32_t(accesses.size());
    accesses.push_back(std::move(a));
    return w.access;
  }
  int32_t pin(Recent& r) {
    if (r.access != kNone) return r.access;
    if (r.stack_id == kNone) r.stack_id = intern(r.stack);
    Access a;
    a.goroutine = r.goid;
    a.g = r.g;
    a.thread = r.tid;
    a.cpu = r.cpu;
    a.start_ns = r.start;
    a.end_ns = r.end;
    a.closed = true;
    a.map = r.map;
    a.stack = uint32_t(r.stack_id);
    fill_site(a, r.site);
    r.access = int32_t(accesses.size());
    accesses.push_back(std::move(a));
    return r.access;
  }

  // Records one occurrence for the stack pair; PIN_A / PIN_B run only for a new group.
  template <typename PinA, typename PinB>
  void record(const char* kind, uint64_t map, uint64_t mkey, bool inferred, int32_t sa, int32_t sb, uint64_t t,
              PinA&& pin_a, PinB&& pin_b) {
    uint64_t key = stack_pair_key(uint32_t(sa), uint32_t(sb), std::string_view(kind) == kConcurrentMapWrite);
    if (uint32_t* gi = group_index.find(key)) {
      add_occurrence(groups[*gi].f, map, t);
      return;
    }
    Group g;
    start_occurrences(g.f, kind, map, t);
    g.f.map_inferred = inferred;
    if (const MapOrigin* o = life.origin(mkey)) g.f.created = *o;
    g.a = pin_a();
    g.b = pin_b();
    group_index.put(key, uint32_t(groups.size()));
    groups.push_back(std::move(g));
  }

  // ---- windows ----
  void close_window(uint32_t slot, uint64_t t, bool closed) {
    Window& w = slab[slot];
    remove_from(find_list(map_index, map_lists, w.mkey), slot);
    remove_from(find_list(ident_index, ident_lists, w.ident), slot);
    if (w.access != kNone) {
      Access& a = accesses[size_t(w.access)];
      a.end_ns = t;
      a.closed = closed;
    }
    if (opts.on_window)
      opts.on_window(WindowView{w.start, t, w.goid, w.g, w.map, w.tid, w.cpu, w.site, closed});
    Recent& r = recent[recent_next++ % recent.size()];
    r.start = w.start;
    r.end = t;
    r.ident = w.ident;
    r.goid = w.goid;
    r.g = w.g;
    r.map = w.map;
    r.mkey = w.mkey;
    r.tid = w.tid;
    r.cpu = w.cpu;
    r.site = w.site;
    r.access = w.access;
    r.stack_id = w.stack_id;
    r.valid = true;
    r.stack.swap(w.stack);
    w.in_use = false;
    w.access = kNone;
    w.stack_id = kNone;
    free_slots.push_back(slot);
    open_count--;
  }

  void open(const trace::Event& e, const SiteInfo& si, uint64_t goid, uint64_t ident, uint64_t mkey) {
    if (e.map == 0) return;  // a map site without a map: nothing to attach it to
    std::vector<uint32_t>& mine = list_for(ident_index, ident_lists, ident, st.goroutines);
    for (uint32_t slot : mine) {
      Window& w = slab[slot];
      if (w.func != si.func) continue;
      // kEntry again on the same map before its return: morestack restarted the call
      // (the same call continues). Otherwise a write-begin again: the end was lost.
      if (w.entry && si.kind == trace::SiteKind::kEntry && w.map == e.map) return;
      close_window(slot, e.time_ns, false);
      st.lost_ends++;
      break;
    }
    st.windows++;
    uint32_t slot;
    if (!free_slots.empty()) {
      slot = free_slots.back();
      free_slots.pop_back();
    } else {
      slot = uint32_t(slab.size());
      slab.emplace_back();
    }
    open_count++;
    Window& w = slab[slot];
    w.start = e.time_ns;
    w.ident = ident;
    w.goid = goid;
    w.g = e.g;
    w.map = e.map;
    w.mkey = mkey;
    w.tid = e.tid;
    w.cpu = e.cpu;
    w.site = e.site;
    w.func = si.func;
    w.entry = si.kind == trace::SiteKind::kEntry;
    w.in_use = true;
    w.access = kNone;
    w.stack_id = kNone;
    if (e.stack.size() > 1) w.stack.assign(e.stack.begin() + 1, e.stack.end());
    else w.stack.clear();

    std::vector<uint32_t>& on_map = list_for(map_index, map_lists, mkey, st.maps);
    for (uint32_t other : on_map) {
      Window& o = slab[other];
      if (o.ident == ident) continue;
      record(kConcurrentMapWrite, e.map, mkey, false, stack_of(o), stack_of(slab[slot]), e.time_ns,
             [&] { return pin(slab[other]); }, [&] { return pin(slab[slot]); });
    }
    on_map.push_back(slot);
    // MINE may have moved if list_for created the map's list; look it up again.
    find_list(ident_index, ident_lists, ident)->push_back(slot);
  }

  void close(const trace::Event& e, const SiteInfo& si, uint64_t ident, uint64_t mkey) {
    if (auto* mine = find_list(ident_index, ident_lists, ident)) {
      for (size_t i = mine->size(); i-- > 0;) {
        Window& w = slab[(*mine)[i]];
        if (w.func == si.func && (e.map == 0 || w.map == e.map)) {
          close_window((*mine)[i], e.time_ns, true);
          return;
        }
      }
    }
    // Identity mismatch (g unreadable at one end): the same thread, function and map.
    if (e.map) {
      if (auto* on_map = find_list(map_index, map_lists, mkey)) {
        for (size_t i = on_map->size(); i-- > 0;) {
          Window& w = slab[(*on_map)[i]];
          if (w.func == si.func && w.tid == e.tid) {
            close_window((*on_map)[i], e.time_ns, true);
            return;
          }
        }
      }
    }
    st.unmatched_ends++;
  }

  bool has_open_on(uint64_t ident, uint64_t map) {
    auto* mine = find_list(ident_index, ident_lists, ident);
    if (!mine) return false;
    for (uint32_t s : *mine)
      if (slab[s].map == map) return true;
    return false;
  }

  void thrown(const trace::Event& e, uint64_t goid, uint64_t ident) {
    st.throws++;
    // A goroutine dies at its first throw: the next probe on the way (maps.fatal, then
    // runtime.fatal, then throw) is the same throw.
    if (throwers.find(ident)) return;
    throwers.put(ident, 1);
    std::string origin;
    if (opts.throw_origin) {
      origin = opts.throw_origin(e.stack);
      if (origin.empty()) return;  // not a map throw
    }
    std::string op = origin.empty() ? "" : map_op_of(origin);
    const char* kind = (op == "read" || op == "iterate") ? kConcurrentMapReadWrite : kConcurrentMapWrite;
    int32_t sb = kNone;
    auto thrower_stack = [&] {
      if (sb == kNone) {
        std::vector<uint64_t> s;
        if (e.stack.size() > 1) s.assign(e.stack.begin() + 1, e.stack.end());
        sb = intern(s);
      }
      return sb;
    };
    int32_t pinned_b = kNone;
    auto pin_b = [&](uint64_t map) {
      if (pinned_b != kNone) return pinned_b;
      Access a;
      a.goroutine = goid;
      a.g = e.g;
      a.thread = e.tid;
      a.cpu = e.cpu;
      a.start_ns = a.end_ns = e.time_ns;
      a.closed = true;
      a.threw = true;
      a.map = map;
      a.op = op;
      a.function = origin;
      a.stack = uint32_t(thrower_stack());
      pinned_b = int32_t(accesses.size());
      accesses.push_back(std::move(a));
      return pinned_b;
    };
    bool inferred = e.map == 0;
    bool found = false;
    for (uint32_t slot = 0; slot < slab.size(); slot++) {
      Window& w = slab[slot];
      if (!w.in_use || w.ident == ident || (e.map && w.map != e.map) || has_open_on(ident, w.map)) continue;
      found = true;
      record(kind, w.map, w.mkey, inferred, stack_of(w), thrower_stack(), e.time_ns,
             [&, slot] { return pin(slab[slot]); },
             [&] { return pin_b(slab[slot].map); });
    }
    if (found) return;
    // The writer may have cleared its flag between the thrower's check and this event.
    Recent* best = nullptr;
    for (auto& r : recent) {
      if (!r.valid || r.ident == ident || (e.map && r.map != e.map) || r.end > e.time_ns ||
          e.time_ns - r.end > opts.throw_grace_ns)
        continue;
      if (!best || r.end > best->end) best = &r;
    }
    if (!best) {
      st.unmatched_throws++;
      return;
    }
    if (best->stack_id == kNone) best->stack_id = intern(best->stack);
    record(kind, best->map, best->mkey, inferred, best->stack_id, thrower_stack(), e.time_ns,
           [&] { return pin(*best); },
           [&] { return pin_b(best->map); });
  }

  // A new map at E.map: the old one is gone, so a window still open on it lost its end (a
  // map being written is reachable and cannot be freed), and a throw just after this cannot
  // be about it. Its identity is over: its (now empty) window list serves a later one.
  void created(const trace::Event& e, uint64_t goid, uint64_t ident) {
    if (e.map && !e.stack_map) {
      for (uint32_t slot = 0; slot < slab.size(); slot++)
        if (slab[slot].in_use && slab[slot].map == e.map) {
          close_window(slot, e.time_ns, false);
          st.lost_ends++;
        }
      for (auto& r : recent)
        if (r.valid && r.map == e.map) r.valid = false;
    }
    uint64_t old = life.created(e, ident, goid);
    if (uint32_t* li = old ? map_index.find(old) : nullptr; li && map_lists[*li].empty()) {
      free_map_lists.push_back(*li);
      map_index.erase(old);
    }
  }

  void add(const trace::Event& e) {
    st.events++;
    if (st.events == 1) st.first_ns = e.time_ns;
    if (e.time_ns < last_t) st.out_of_order++;
    else last_t = e.time_ns;
    if (e.site >= sites.size()) return;
    const SiteInfo& si = sites[e.site];
    uint64_t goid = e.goid;
    switch (si.kind) {
      case trace::SiteKind::kGoStart:
        if (e.g && e.goid) goid_of_g.put(e.g, e.goid);
        return;
      case trace::SiteKind::kLost:
        // Hits were dropped here: every open window may have lost its end (and later ends
        // may lack their begins, which close() ignores). Close them all, unreported.
        for (uint32_t slot = 0; slot < slab.size(); slot++)
          if (slab[slot].in_use) {
            close_window(slot, e.time_ns, false);
            st.lost_ends++;
          }
        life.lost();
        return;
      case trace::SiteKind::kGcMarkTermination:
        life.gc_cycle();
        return;
      case trace::SiteKind::kGoExit: {
        if (!e.g) return;
        uint64_t* known = goid_of_g.find(e.g);
        if (!goid && known) goid = *known;
        // A dying goroutine writes no more: its open windows lost their ends.
        uint64_t ident = identity(goid, e.g, e.tid);
        if (auto* mine = find_list(ident_index, ident_lists, ident)) {
          while (!mine->empty()) {
            close_window(mine->back(), e.time_ns, false);
            st.lost_ends++;
          }
        }
        goid_of_g.erase(e.g);
        return;
      }
      default:
        break;
    }
    if (!goid && e.g) {
      if (uint64_t* known = goid_of_g.find(e.g)) goid = *known;
    }
    uint64_t ident = identity(goid, e.g, e.tid);
    switch (si.kind) {
      case trace::SiteKind::kEntry:
      case trace::SiteKind::kWriteBegin:
        open(e, si, goid, ident, life.key(e, ident));
        break;
      case trace::SiteKind::kWriteEnd:
      case trace::SiteKind::kReturn:
        close(e, si, ident, e.map ? life.key(e, ident) : 0);
        break;
      case trace::SiteKind::kThrow:
        thrown(e, goid, ident);
        break;
      case trace::SiteKind::kMapCreate:
        created(e, goid, ident);
        break;
      default:
        break;
    }
  }

  ConcurrentWritesResult finish(uint64_t end_ns) {
    uint64_t end = end_ns ? end_ns : last_t;
    for (uint32_t slot = 0; slot < slab.size(); slot++) {
      if (!slab[slot].in_use) continue;
      st.unclosed++;
      close_window(slot, std::max(end, slab[slot].start), false);
    }
    st.last_ns = last_t;
    ConcurrentWritesResult r;
    r.stats = st;
    r.lifetimes = life.stats();
    r.basis = life.basis();
    r.findings.reserve(groups.size());
    for (auto& g : groups) {
      g.f.a = accesses[size_t(g.a)];
      g.f.b = accesses[size_t(g.b)];
      r.findings.push_back(std::move(g.f));
    }
    std::stable_sort(r.findings.begin(), r.findings.end(),
                     [](const Finding& x, const Finding& y) { return x.first_ns < y.first_ns; });
    r.stacks = std::move(stacks);
    return r;
  }
};

ConcurrentWrites::ConcurrentWrites(const trace::Header& h, ConcurrentWritesOptions opts)
    : impl_(std::make_unique<Impl>(h, std::move(opts))) {}
ConcurrentWrites::~ConcurrentWrites() = default;
ConcurrentWrites::ConcurrentWrites(ConcurrentWrites&&) noexcept = default;
ConcurrentWrites& ConcurrentWrites::operator=(ConcurrentWrites&&) noexcept = default;

void ConcurrentWrites::add(const trace::Event& e) { impl_->add(e); }
ConcurrentWritesResult ConcurrentWrites::finish(uint64_t end_ns) { return impl_->finish(end_ns); }

ConcurrentWritesResult find_concurrent_writes(const trace::Header& h, const std::vector<trace::Event>& events,
                                              ConcurrentWritesOptions opts, uint64_t end_ns) {
  ConcurrentWrites cw(h, std::move(opts));
  for (auto& e : events) cw.add(e);
  return cw.finish(end_ns);
}

// ---- symbolization ----

std::vector<StackFrame> symbolize_stack(const Pclntab& tab, int64_t slide, const std::vector<uint64_t>& pcs) {
  std::vector<StackFrame> out;
  std::vector<SourceFrame> frames;
  for (uint64_t pc : pcs) {
    uint64_t link = pc - uint64_t(slide);
    auto r = tab.symbolize_into(RemoteAddr(link - 1), frames);
    if (!r || frames.empty()) {
      out.push_back(StackFrame{"?", fmt::format("{:#x}", pc), 0, false});
      continue;
    }
    for (auto& f : frames) out.push_back(StackFrame{std::string(f.function), std::string(f.file), f.line, f.inlined});
  }
  // Start at the user's caller: drop the runtime's map and throw frames on top.
  size_t first_user = 0;
  while (first_user < out.size() && (is_runtime_function(out[first_user].function) || out[first_user].function == "?"))
    first_user++;
  if (first_user < out.size()) out.erase(out.begin(), out.begin() + long(first_user));
  // Go's tracebacks hide the goroutine's bottom frame.
  while (out.size() > 1 && out.back().function == "runtime.goexit") out.pop_back();
  return out;
}

std::function<std::string(const std::vector<uint64_t>&)> throw_origin_from(const Pclntab& tab, int64_t slide) {
  return [&tab, slide](const std::vector<uint64_t>& stack) -> std::string {
    std::vector<SourceFrame> frames;
    for (size_t i = 1; i < stack.size() && i < 10; i++) {
      uint64_t link = stack[i] - uint64_t(slide);
      if (!tab.symbolize_into(RemoteAddr(link - 1), frames)) continue;
      // Physical functions only: an inlined helper names the map function it sits in.
      for (auto& f : frames)
        if (is_map_function(f.function)) {
          // Prefer the physical function (runtime.mapassign_faststr) over inlined helpers.
          return std::string(frames.back().function);
        }
      if (!frames.empty() && !is_runtime_function(frames.back().function)) break;  // reached user code
    }
    return "";
  };
}

void merge_by_symbolized_stacks(std::vector<Finding>& findings, const std::vector<std::vector<StackFrame>>& sym) {
  merge_findings_by_stacks(findings, sym, [](Finding&, const Finding&) {});
}

}  // namespace gort::core::analysis
