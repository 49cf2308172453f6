#pragma once
// Map identity = address + lifetime (docs/report.md, "Map identity"). A map's header is
// freed by the GC once unreachable, and the allocator may hand the same address to a new
// map, made by another goroutine: the two are different maps, and writes to them are not
// a race. Both map analyses (ConcurrentWrites, HappensBefore) key what they know of a map
// on the identity this class gives each access instead of the bare address:
//
//  - A kMapCreate event at address X starts a new identity for X: whatever was known of X
//    belongs to a map that is gone (a map being written is reachable, so it cannot be
//    freed and its address reused while a write of it is under way).
//  - A map on the accessing goroutine's own stack (Event::stack_map) is that goroutine's:
//    the compiler keeps a map on the stack only when it does not escape, so no other
//    goroutine can reach it. Its identity includes the goroutine, so it never pairs across
//    goroutines, even when a later goroutine reuses the stack (and the address). Such maps
//    are made by no runtime call when their size hint is a small constant.
//  - Where creations may have gone unseen (a trace without creation sites, a creation site
//    not probed, events lost at an unknown place, or at a kLost marker), an address's
//    identity is split at GC mark terminations: a heap map can only be freed and its
//    address reused after a GC cycle completes (runtime/mgc.go: an object reachable when a
//    cycle's marking starts, or allocated during it, survives that cycle's sweep), so
//    accesses with no GC cycle between them are of one map for certain.
//
// An identity is the address itself while nothing of the above applies (so traces without
// creations and without GC cycles are analysed exactly as before); otherwise a value with
// the top bit set (user addresses are below 2^47), numbered in order of appearance.

#include "core/analysis/flat_map.h"
#include "core/trace/trace.h"

#include <cstdint>
#include <string>
#include <vector>

namespace gort::core::analysis {

/// What a trace can tell about map lifetimes.
struct MapLifetimeBasis {
  bool creations = false;          ///< every map-creation site was probed
  bool gc_cycles = false;          ///< runtime.gcMarkTermination was probed
  bool unplaced_losses = false;    ///< events were lost at places the trace does not mark
  /// Identities are split at every GC cycle: a creation may have gone unseen anywhere.
  bool split_at_gc() const { return !creations || unplaced_losses; }
  /// One line for a report when lifetimes are not fully known; "" when they are.
  std::string note() const;
};
/// The basis of a trace with header H and summary S (null: no summary, the trace was cut
/// short, and how many events were lost is unknown).
MapLifetimeBasis map_lifetime_basis(const trace::Header& h, const trace::Summary* s);
/// map_lifetime_basis for a complete trace that lost nothing (in-memory events, tests).
MapLifetimeBasis map_lifetime_basis(const trace::Header& h);

/// Where and by whom a map was created (a kMapCreate event).
struct MapOrigin {
  uint64_t time_ns = 0;
  uint64_t goroutine = 0;  ///< goid, 0 if unknown
  uint64_t g = 0;
  uint32_t thread = 0;
  uint64_t address = 0;
  std::string function;           ///< the creating runtime function (e.g. "runtime.makemap_small")
  std::vector<uint64_t> stack;    ///< the caller stack: event.stack[1..] (return addresses)
};

struct MapLifetimeStats {
  uint64_t creations = 0;         ///< kMapCreate events
  uint64_t reused_addresses = 0;  ///< creations at an address already seen in a map event
  uint64_t stack_accesses = 0;    ///< map events on the goroutine's own stack
  uint64_t gc_cycles = 0;         ///< kGcMarkTermination events
  uint64_t splits = 0;            ///< times identities were split for unseen creations
};

class MapLifetimes {
 public:
  MapLifetimes(const trace::Header& h, MapLifetimeBasis basis);

  /// The identity of E.map (0 when E has no map) as accessed by goroutine WHO (the
  /// analysis' goroutine identity: any value that differs between goroutines).
  uint64_t key(const trace::Event& e, uint64_t who);
  /// A kMapCreate event E by WHO (goid GOID): returns the identity E.map had until now (the
  /// caller drops what it knows of it), and starts a new one.
  uint64_t created(const trace::Event& e, uint64_t who, uint64_t goid);
  void gc_cycle();  ///< a kGcMarkTermination event
  void lost();      ///< a kLost event: creations may be missing here
  /// The creation of identity KEY, when the trace holds it; null otherwise.
  const MapOrigin* origin(uint64_t key) const;

  const MapLifetimeBasis& basis() const { return basis_; }
  const MapLifetimeStats& stats() const { return st_; }

 private:
  struct AddrState {
    uint64_t key = 0;          // identity of a heap map at this address, for epoch `epoch`
    uint64_t epoch = 0;
    uint64_t stack_owner = 0;  // who owns the stack map at this address, and its identity
    uint64_t stack_key = 0;
    uint64_t origin_key = 0;   // the identity ORIGIN describes
    bool accessed = false, created = false;
    MapOrigin origin;
  };
  AddrState& state(uint64_t addr);
  uint64_t fresh(uint64_t addr);
  void split();

  MapLifetimeBasis basis_;
  std::vector<std::string> functions_;  // by site index
  FlatMap index_;                       // address -> states_
  std::vector<AddrState> states_;
  std::vector<uint64_t> fresh_addr_;    // fresh identity number -> address
  uint64_t epoch_ = 0;
  bool gc_since_split_ = false;
  MapLifetimeStats st_;
};

}  // namespace gort::core::analysis
