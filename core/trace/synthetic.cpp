// Synthetic trace events (see synthetic.h): shaped like what `gort record` captures from
// a map-heavy Go program, so sizes and speeds measured on them mean something.

#include "core/trace/synthetic.h"

namespace gort::core::trace {
namespace {

// Sites of a Go 1.26 binary's map writes, at plausible addresses.
enum : uint32_t {
  kFast64Begin, kFast64End, kStrBegin, kStrEnd, kDelBegin, kDelEnd, kGoStartSite, kGoExitSite
};

Header make_header(const SyntheticOptions& o) {
  Header h;
  h.executable = "/tmp/gort-synthetic/server";
  h.build_id = "synthetic-build-id";
  h.go_version = "go1.26.0";
  h.map_impl = "swiss";
  h.pid = 4242;
  h.command = {"/tmp/gort-synthetic/server", "-workers", "4"};
  h.start_ns = 1'000'000'000'000;  // 1000 s after boot
  h.stack_depth = o.stack_depth;
  h.sites = {
      {SiteKind::kWriteBegin, "internal/runtime/maps.runtime_mapassign_fast64", "assign", 0x40e0a3, "hw"},
      {SiteKind::kWriteEnd, "internal/runtime/maps.runtime_mapassign_fast64", "assign", 0x40e2f1, "hw"},
      {SiteKind::kWriteBegin, "internal/runtime/maps.runtime_mapassign_faststr", "assign", 0x40f0b0, "hw"},
      {SiteKind::kWriteEnd, "internal/runtime/maps.runtime_mapassign_faststr", "assign", 0x40f310, "hw"},
      {SiteKind::kWriteBegin, "internal/runtime/maps.runtime_mapdelete_fast64", "delete", 0x410044, "uprobe"},
      {SiteKind::kWriteEnd, "internal/runtime/maps.runtime_mapdelete_fast64", "delete", 0x4101b8, "uprobe"},
      {SiteKind::kGoStart, "runtime.newproc1", "", 0x44a1c0, "uprobe"},
      {SiteKind::kGoExit, "runtime.goexit0", "", 0x44c020, "uprobe"},
  };
  return h;
}

}  // namespace

SyntheticStream::SyntheticStream(const SyntheticOptions& o)
    : o_(o), header_(make_header(o)), state_(o.seed * 0x9e3779b97f4a7c15ull + 1), now_(header_.start_ns) {
  for (uint32_t i = 0; i < o_.maps; i++) maps_.push_back(0xc000100000ull + i * 0x30);
  uint32_t n_gs = 4 * std::max<uint32_t>(o_.threads, 1);
  for (uint32_t i = 0; i < n_gs; i++) {
    gs_.push_back(0xc000006000ull + i * 0x1c0);
    goids_.push_back(next_goid_++);
  }
  for (uint32_t i = 0; i < o_.threads; i++) threads_.push_back(Thread{10000 + i * 7, i, i, false, 0, 0, 0});
}

uint64_t SyntheticStream::rand() {  // splitmix64
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// Innermost first: the site, the return address into the caller, then the caller's
/// chain, which depends on the goroutine and its current call path (so stacks repeat).
void SyntheticStream::fill_stack(Event& e, const Thread& t) {
  e.stack.clear();
  if (o_.stack_depth == 0) return;
  e.stack.push_back(header_.sites[e.site].pc);
  uint64_t chain = t.g * 131 + t.path * 7919;
  for (uint32_t i = 1; i < o_.stack_depth; i++) {
    uint64_t fn = 0x480000 + ((chain * 2654435761u + i * 40503) % 0x20000);
    e.stack.push_back(fn + (chain + i) % 0x180);
  }
  if (o_.unique_stacks && o_.stack_depth > 2) e.stack[2] += rand() % 0x40000;
}

void SyntheticStream::next(Event& e) {
  now_ += 200 + below(2800);  // 0.2-3 µs apart
  if (!pending_.empty()) {
    e = pending_.back();
    pending_.pop_back();
    e.time_ns = now_;
    return;
  }
  Thread& t = threads_[below(threads_.size())];
  e = Event{};
  e.time_ns = now_;
  e.tid = t.tid;
  if (below(1000) == 0) t.cpu = uint32_t(below(std::max<uint32_t>(o_.threads, 2) * 2));  // migration
  e.cpu = t.cpu;
  if (t.open) {  // close the window this thread opened
    e.site = t.open_site + 1;
    e.map = t.open_map;
    e.g = gs_[t.g];
    t.open = false;
    fill_stack(e, t);
    return;
  }
  if (below(100) == 0) t.g = uint32_t(below(gs_.size()));  // the scheduler switched goroutines
  if (below(50) == 0) t.path = uint32_t(below(std::max<uint32_t>(o_.call_paths, 1)));
  if (below(2000) == 0) {
    // The goroutine exits and a new one starts on the same g (gs are reused); the exit is
    // this event, the start comes next.
    e.site = kGoExitSite;
    e.g = gs_[t.g];
    goids_[t.g] = next_goid_++;
    Event start;
    start.site = kGoStartSite;
    start.tid = t.tid;
    start.cpu = t.cpu;
    start.g = gs_[t.g];
    start.goid = goids_[t.g];
    pending_.push_back(start);
    fill_stack(e, t);
    return;
  }
  uint64_t r = below(10);
  e.site = r < 6 ? kFast64Begin : r < 9 ? kStrBegin : kDelBegin;
  e.map = o_.maps ? maps_[below(maps_.size())] : 0;
  e.g = gs_[t.g];
  if (e.site != kStrBegin) e.key = below(4) == 0 ? uint64_t(-int64_t(below(100))) : below(100000);
  t.open = true;
  t.open_site = e.site;
  t.open_map = e.map;
  fill_stack(e, t);
}

}  // namespace gort::core::trace
