#pragma once
// The dangling-pointer findings of a recording (`gort record --dangling`, `gort report`):
// the heap scans taken after each GC cycle (trace heap-scan records, core/analysis/
// dangling.h's JSON) merged across cycles, with the later conversions of each stale value
// back into a pointer (trace::SiteKind::kConvert events: checkptr's
// runtime.checkptrArithmetic, or a function named with --convert-hook) and their stacks.
//
// One finding per (holder word, value): the first and last GC cycle that saw it, and how
// many scans did. A conversion belongs to a finding when its value lies inside the
// finding's target object (or equals the value, for freed pages) and it happened after
// the GC cycle that first found the target unreachable: it reads memory the GC gave back.

#include "core/trace/trace.h"
#include "core/util/result.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace gort::core::analysis {

struct DanglingConversion {
  uint64_t time_ns = 0;
  uint32_t tid = 0;
  uint64_t g = 0, goid = 0;
  uint64_t value = 0;
  std::string function;         ///< the probed function (runtime.checkptrArithmetic, main.lookup)
  std::vector<uint64_t> stack;  ///< runtime PCs: the site, then return addresses
};

struct RecordedDangling {
  nlohmann::json holder;        ///< as in dangling.h's to_json (from the latest scan that saw it)
  nlohmann::json target;
  std::string established_by;
  uint64_t holder_addr = 0, value = 0;
  uint64_t target_lo = 0, target_hi = 0;  ///< the target object's bytes (value..value+1 for freed pages)
  uint32_t first_cycle = 0, last_cycle = 0, scans = 0;
  uint64_t first_ns = 0;        ///< the GC mark termination before the first scan that saw it
                                ///< (the scan's time when the trace does not say)
  uint64_t last_ns = 0;         ///< the last such scan's time
  std::vector<DanglingConversion> conversions;  ///< the first kMaxConversions
  uint64_t conversion_count = 0;
  /// Which convert events (their order among the trace's convert events) matched: one
  /// event can match several findings (one value in many holders), so a group of
  /// findings counts the union of these.
  std::vector<uint64_t> conversion_ids;
  static constexpr size_t kMaxConversions = 8;
};

struct DanglingTraceStats {
  uint64_t scans = 0, gc_marks = 0, conversions = 0, conversions_matched = 0;
  uint64_t bytes_scanned = 0, runtime_holders = 0;
  std::vector<uint64_t> pauses_ns;  ///< per scan, sorted
  double scan_seconds = 0;
};

struct DanglingTraceResult {
  std::vector<RecordedDangling> findings;
  DanglingTraceStats stats;
  std::vector<std::string> notes;  ///< the scans' notes, each once
};

/// Built from the scans (create()), then fed every event (add()); finish() returns the
/// findings. A trace without heap scans has no findings.
class DanglingTrace {
 public:
  /// SCANS: Reader::heap_scans(). A scan that is not the JSON gort writes is an error.
  static Result<DanglingTrace> create(const trace::Header& h, const std::vector<std::string>& scans);
  /// Whether the trace was recorded with --dangling (a gc-mark-termination site, or scans).
  bool enabled() const { return enabled_; }
  void add(const trace::Event& e);
  DanglingTraceResult finish();

 private:
  DanglingTrace() = default;
  static Result<DanglingTrace> create_unchecked(const trace::Header& h, const std::vector<std::string>& scans);
  struct Range {
    uint64_t lo, hi;
    std::vector<uint32_t> findings;
  };
  std::vector<trace::SiteKind> kinds_;
  std::vector<std::string> functions_;
  std::vector<Range> ranges_;  ///< target objects, sorted by lo (a freed-pages byte can lie in a later object)
  DanglingTraceResult res_;
  bool enabled_ = false;
};

}  // namespace gort::core::analysis
