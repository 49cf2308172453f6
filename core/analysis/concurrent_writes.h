#pragma once
// Concurrent map writes from a gort trace: per (goroutine, map) write windows, and the
// goroutines whose windows on one map overlap in time (or that the runtime killed with
// "concurrent map writes" while another goroutine's window was open). docs/report.md.
//
// A window opens at a kWriteBegin event (the store that sets the map's writing flag) or,
// for functions without flag sites, at kEntry; it closes at the same goroutine's next
// kWriteEnd / kReturn of the same function (and map). One pass over time-ordered events,
// no allocation per event once warm: open windows live in a slab indexed by map and by
// goroutine; stacks are interned only for windows that take part in a finding.

#include "core/analysis/map_lifetimes.h"
#include "core/binary/pclntab.h"
#include "core/trace/trace.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gort::core::analysis {

inline constexpr const char* kConcurrentMapWrite = "concurrent-map-write";
/// The runtime threw from a map read or iteration while another goroutine wrote the map.
inline constexpr const char* kConcurrentMapReadWrite = "concurrent-map-read-write";

/// One goroutine's part in a finding: a write window, or a throw (a point in time).
struct Access {
  uint64_t goroutine = 0;  ///< goid; 0 when unknown (g known only, e.g. started before recording)
  uint64_t g = 0;          ///< g pointer, 0 if unknown
  uint32_t thread = 0;
  uint32_t cpu = 0;
  uint64_t start_ns = 0;   ///< window opened (a throw: the throw)
  uint64_t end_ns = 0;     ///< window closed; the end of the trace when it never closed
  /// False when no close was seen: open at the end of the trace (the process died or the
  /// recording stopped), or the close event was lost (end_ns is then an upper bound).
  bool closed = true;
  bool threw = false;      ///< a runtime.throw/fatal: the runtime's own check caught it here
  uint64_t map = 0;
  std::string op;          ///< "assign", "delete", "clear", "clone"; throws: the op it threw from, or "read"
  std::string function;    ///< the map function (e.g. "runtime.mapassign_faststr")
  uint32_t stack = 0;      ///< index into ConcurrentWritesResult::stacks
};

struct Finding {
  std::string kind = kConcurrentMapWrite;
  uint64_t map = 0;              ///< the map of the first occurrence
  std::vector<uint64_t> maps;    ///< every map this stack pair collided on (first-seen order)
  bool map_inferred = false;     ///< a throw named no map: the map is the one the other goroutine was writing
  /// The creation of the first occurrence's map, when the trace holds it (map_lifetimes.h).
  std::optional<MapOrigin> created;
  uint64_t count = 0;            ///< occurrences (overlapping window pairs, throws)
  uint64_t first_ns = 0;         ///< when the first occurrence began (the later window's start)
  uint64_t last_ns = 0;          ///< the same for the last occurrence
  Access a, b;                   ///< the first occurrence: A opened first; B is the later writer or the thrower
};

struct ConcurrentWritesStats {
  uint64_t events = 0;           ///< events analyzed
  uint64_t windows = 0;          ///< write windows opened
  uint64_t unclosed = 0;         ///< windows still open at the end of the trace
  uint64_t lost_ends = 0;        ///< windows closed by evidence that their end event was lost
  uint64_t unmatched_ends = 0;   ///< write-end / return events with no open window
  uint64_t maps = 0;             ///< distinct maps written (map identities: map_lifetimes.h)
  uint64_t goroutines = 0;       ///< distinct goroutines (or g / thread when unknown) that wrote maps
  uint64_t throws = 0;           ///< throw events (a goroutine's later throw probes are the same throw)
  uint64_t unmatched_throws = 0; ///< map throws with no other goroutine's window to pair with
  uint64_t out_of_order = 0;     ///< events earlier than the one before (the analysis wants time order)
  uint64_t first_ns = 0, last_ns = 0;  ///< first / last event time
};

/// A window as it closes (the --chrome export sees every one).
struct WindowView {
  uint64_t start_ns = 0, end_ns = 0;
  uint64_t goroutine = 0, g = 0, map = 0;
  uint32_t thread = 0, cpu = 0;
  uint32_t site = 0;             ///< the opening site (Header::sites index)
  bool closed = true;
};

struct ConcurrentWritesResult {
  std::vector<Finding> findings;             ///< by first occurrence
  std::vector<std::vector<uint64_t>> stacks; ///< caller stacks (runtime PCs, return addresses): event.stack[1..]
  ConcurrentWritesStats stats;
  MapLifetimeStats lifetimes;
  MapLifetimeBasis basis;
};

struct ConcurrentWritesOptions {
  /// For a throw event's stack (runtime PCs, as recorded): the map function it threw from
  /// ("runtime.mapassign_faststr"), or "" when it did not come from a map function (then
  /// the throw is not a map finding). Unset: every throw counts, its function unknown.
  std::function<std::string(const std::vector<uint64_t>& stack)> throw_origin;
  /// Called for every window when it closes (and at finish() for those still open).
  std::function<void(const WindowView&)> on_window;
  /// A throw that finds no open window of another goroutine is matched with the latest
  /// window of another goroutine that closed at most this long before it (the writer may
  /// clear its flag between the thrower's check and the throw probe).
  uint64_t throw_grace_ns = 1'000'000;
  /// What the trace tells of map lifetimes (map_lifetime_basis with its summary); unset:
  /// from the header alone, as for a complete trace that lost nothing.
  std::optional<MapLifetimeBasis> lifetimes;
};

/// The single-pass analyzer. add() every event in time order (goid 0 is resolved here
/// from kGoStart/kGoExit, with trace::resolve_goids' rule), then finish().
class ConcurrentWrites {
 public:
  explicit ConcurrentWrites(const trace::Header& h, ConcurrentWritesOptions opts = {});
  ~ConcurrentWrites();
  ConcurrentWrites(ConcurrentWrites&&) noexcept;
  ConcurrentWrites& operator=(ConcurrentWrites&&) noexcept;

  void add(const trace::Event& e);
  /// Closes the windows still open at END_NS (0: the last event's time) and returns the
  /// findings. The analyzer is spent afterwards.
  ConcurrentWritesResult finish(uint64_t end_ns = 0);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Convenience: analyze in-memory events (time-ordered).
ConcurrentWritesResult find_concurrent_writes(const trace::Header& h, const std::vector<trace::Event>& events,
                                              ConcurrentWritesOptions opts = {}, uint64_t end_ns = 0);

/// "assign", "delete", "clear", "clone", "read" (mapaccess), "iterate" (mapiter), or ""
/// for a function name that is no map function.
std::string map_op_of(std::string_view function);
/// runtime.map*, internal/runtime/maps.*, maps.clone: the runtime's map code.
bool is_map_function(std::string_view function);
/// Runtime frames a user never wrote: runtime.*, internal/runtime/*, and the map and throw
/// functions (dropped from the top of a shown stack).
bool is_runtime_function(std::string_view function);

/// One shown frame.
struct StackFrame {
  std::string function;
  std::string file;
  int32_t line = 0;
  bool inlined = false;  ///< inlined into the next frame
};

/// Symbolizes a caller stack (return addresses, runtime PCs) for display: each PC - 1 with
/// inlined frames, innermost first, dropping the runtime frames at the top (map and throw
/// functions) so it starts at the user's caller, and runtime.goexit at the bottom (as Go's
/// tracebacks do). Unknown PCs show as "?" with the PC in `file`.
std::vector<StackFrame> symbolize_stack(const Pclntab& tab, int64_t slide, const std::vector<uint64_t>& pcs);

/// The throw_origin option over a pclntab: symbolizes stack[1..] (return addresses) and
/// returns the first map function among the frames.
std::function<std::string(const std::vector<uint64_t>&)> throw_origin_from(const Pclntab& tab, int64_t slide);

/// Merges findings whose symbolized stacks (SYM[stack index]) are the same unordered pair
/// (and the same kind): counts add, maps join, first/last widen, the earliest occurrence
/// stays. Order: by first occurrence.
void merge_by_symbolized_stacks(std::vector<Finding>& findings, const std::vector<std::vector<StackFrame>>& sym);

/// Grouping occurrences by stack pair while analysing (ConcurrentWrites, HappensBefore):
/// the key of the unordered pair of interned stacks SA, SB for a finding of the first
/// (PRIMARY) or the second kind of an analysis.
inline uint64_t stack_pair_key(uint32_t sa, uint32_t sb, bool primary) {
  uint64_t lo = std::min(sa, sb) & 0x7fffffffu, hi = std::max(sa, sb);
  return (lo << 32 | hi) ^ (primary ? 0 : (1ull << 63));
}
/// A finding F (kind, map, maps, count, first_ns, last_ns) that starts a group at T on MAP.
template <typename F>
void start_occurrences(F& f, const char* kind, uint64_t map, uint64_t t) {
  f.kind = kind;
  f.map = map;
  f.maps.push_back(map);
  f.count = 1;
  f.first_ns = f.last_ns = t;
}
/// One more occurrence of F's stack pair at T on MAP (at most 64 maps are listed).
template <typename F>
void add_occurrence(F& f, uint64_t map, uint64_t t) {
  f.count++;
  f.last_ns = std::max(f.last_ns, t);
  if (f.maps.size() < 64 && std::find(f.maps.begin(), f.maps.end(), map) == f.maps.end()) f.maps.push_back(map);
}

/// The mechanism behind merge_by_symbolized_stacks, for any finding type F with kind, a/b
/// (.stack), count, first_ns, last_ns and maps: JOIN(into, from) merges F's own extra
/// fields (the notes of happens-before findings) when FROM joins INTO.
template <typename F, typename Join>
void merge_findings_by_stacks(std::vector<F>& findings, const std::vector<std::vector<StackFrame>>& sym, Join join) {
  auto sig = [&](uint32_t id) {
    std::string s;
    if (id >= sym.size()) return "#" + std::to_string(id);
    for (auto& f : sym[id]) s += f.function + " " + f.file + ":" + std::to_string(f.line) + ";";
    return s;
  };
  auto join_maps = [](std::vector<uint64_t>& into, const std::vector<uint64_t>& from) {
    for (auto m : from)
      if (std::find(into.begin(), into.end(), m) == into.end()) into.push_back(m);
  };
  std::map<std::tuple<std::string, std::string, std::string>, size_t> seen;
  std::vector<F> out;
  for (auto& f : findings) {
    std::string x = sig(f.a.stack), y = sig(f.b.stack);
    if (y < x) std::swap(x, y);
    auto key = std::make_tuple(f.kind, x, y);
    auto it = seen.find(key);
    if (it == seen.end()) {
      seen.emplace(key, out.size());
      out.push_back(std::move(f));
      continue;
    }
    F& g = out[it->second];
    if (f.first_ns < g.first_ns) {  // the earliest occurrence stays the one shown
      std::swap(g, f);
      std::swap(g.count, f.count);
    }
    g.count += f.count;
    g.last_ns = std::max(g.last_ns, f.last_ns);
    join_maps(g.maps, f.maps);
    join(g, f);
  }
  std::stable_sort(out.begin(), out.end(), [](const F& x, const F& y) { return x.first_ns < y.first_ns; });
  findings = std::move(out);
}

}  // namespace gort::core::analysis
