// Map identity = address + lifetime (map_lifetimes.h).

#include "core/analysis/map_lifetimes.h"

#include <fmt/format.h>

namespace gort::core::analysis {

namespace {
constexpr uint64_t kFresh = 1ull << 63;
}

MapLifetimeBasis map_lifetime_basis(const trace::Header& h, const trace::Summary* s) {
  MapLifetimeBasis b;
  bool any_create = false, all_placed = true, lost_marker = false;
  for (auto& site : h.sites) {
    switch (site.kind) {
      case trace::SiteKind::kMapCreate:
        any_create = true;
        if (site.backend == "none" || site.backend.empty()) all_placed = false;
        break;
      case trace::SiteKind::kGcMarkTermination:
        if (site.backend != "none") b.gc_cycles = true;
        break;
      case trace::SiteKind::kLost: lost_marker = true; break;
      default: break;
    }
  }
  b.creations = any_create && all_placed;
  // The in-process ring marks where it dropped hits (kLost); the kernel's perf rings only
  // count what they dropped.
  if (!s) b.unplaced_losses = true;
  else if (s->lost_unmarked > 0 || (s->lost > 0 && !lost_marker)) b.unplaced_losses = true;
  return b;
}

MapLifetimeBasis map_lifetime_basis(const trace::Header& h) {
  trace::Summary none;
  return map_lifetime_basis(h, &none);
}

std::string MapLifetimeBasis::note() const {
  if (!split_at_gc()) return "";
  std::string why = !creations ? "map creation was not recorded (a trace from an older gort, or a creating function "
                                 "could not be probed)"
                               : "events were lost at places the trace does not mark";
  if (!gc_cycles)
    return why + ", nor were GC cycles: a map freed and another allocated at the same address look like one map "
                 "(record again with this gort)";
  return why + ": accesses to one address before and after a GC cycle are not paired (the map there may have been "
               "freed and another allocated in its place)";
}

MapLifetimes::MapLifetimes(const trace::Header& h, MapLifetimeBasis basis) : basis_(basis) {
  functions_.reserve(h.sites.size());
  for (auto& s : h.sites) functions_.push_back(s.function);
}

MapLifetimes::AddrState& MapLifetimes::state(uint64_t addr) {
  if (uint32_t* i = index_.find(addr)) return states_[*i];
  index_.put(addr, uint32_t(states_.size()));
  AddrState& s = states_.emplace_back();
  s.key = addr;  // epoch 0: the address itself
  return s;
}

uint64_t MapLifetimes::fresh(uint64_t addr) {
  fresh_addr_.push_back(addr);
  return kFresh | (fresh_addr_.size() - 1);
}

void MapLifetimes::split() {
  epoch_++;
  gc_since_split_ = false;
  st_.splits++;
}

uint64_t MapLifetimes::key(const trace::Event& e, uint64_t who) {
  if (!e.map) return 0;
  AddrState& s = state(e.map);
  s.accessed = true;
  if (e.stack_map) {
    st_.stack_accesses++;
    // One goroutine owns a stack address at a time: another owner is a later goroutine
    // on a reused stack, whose map is another map.
    if (!s.stack_key || s.stack_owner != who) {
      s.stack_key = fresh(e.map);
      s.stack_owner = who;
    }
    return s.stack_key;
  }
  if (s.epoch != epoch_) {
    s.key = fresh(e.map);
    s.epoch = epoch_;
  }
  return s.key;
}

uint64_t MapLifetimes::created(const trace::Event& e, uint64_t who, uint64_t goid) {
  st_.creations++;
  if (!e.map) return 0;
  AddrState& s = state(e.map);
  if (s.accessed || s.created) st_.reused_addresses++;
  uint64_t old;
  if (e.stack_map) {
    old = s.stack_key;
    s.stack_key = fresh(e.map);
    s.stack_owner = who;
    s.origin_key = s.stack_key;
  } else {
    old = s.epoch == epoch_ ? s.key : 0;
    s.key = fresh(e.map);
    s.epoch = epoch_;
    s.origin_key = s.key;
  }
  s.created = true;
  MapOrigin& o = s.origin;
  o.time_ns = e.time_ns;
  o.goroutine = goid;
  o.g = e.g;
  o.thread = e.tid;
  o.address = e.map;
  o.function = e.site < functions_.size() ? functions_[e.site] : "";
  if (e.stack.size() > 1) o.stack.assign(e.stack.begin() + 1, e.stack.end());
  else o.stack.clear();
  return old;
}

void MapLifetimes::gc_cycle() {
  st_.gc_cycles++;
  gc_since_split_ = true;
  if (basis_.split_at_gc()) split();
}

void MapLifetimes::lost() {
  // A creation may be among the lost hits: an address written before a GC cycle (since
  // the last split) and after this point may be another map.
  if (gc_since_split_) split();
}

const MapOrigin* MapLifetimes::origin(uint64_t key) const {
  if (!key) return nullptr;
  uint64_t addr = key;
  if (key & kFresh) {
    uint64_t n = key & ~kFresh;
    if (n >= fresh_addr_.size()) return nullptr;
    addr = fresh_addr_[n];
  }
  const uint32_t* i = const_cast<FlatMap&>(index_).find(addr);
  if (!i) return nullptr;
  const AddrState& s = states_[*i];
  return s.created && s.origin_key == key ? &s.origin : nullptr;
}

}  // namespace gort::core::analysis
