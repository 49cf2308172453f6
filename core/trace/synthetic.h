#pragma once
// A deterministic, realistic-looking event stream for tests, `gort dump --write-sample`
// and `gort dump --bench`: a few threads running goroutines that open and close map-write
// windows on a few maps (fast64 with integer keys, faststr without), microsecond gaps,
// occasional CPU migrations, goroutine switches, and goroutine exits whose g is reused by
// the next go-start. No process, no clock: the same options give the same events.

#include "core/trace/trace.h"

#include <cstdint>

namespace gort::core::trace {

struct SyntheticOptions {
  uint32_t threads = 4;
  uint32_t maps = 2;
  uint32_t stack_depth = 0;    ///< frames per event stack (0: no stacks)
  uint32_t call_paths = 8;     ///< distinct caller chains per goroutine (stacks repeat)
  bool unique_stacks = false;  ///< randomise one deep frame per event: no two stacks equal
  uint64_t seed = 1;
};

class SyntheticStream {
 public:
  explicit SyntheticStream(const SyntheticOptions& o = {});
  const Header& header() const { return header_; }
  /// The next event (the stream never ends).
  void next(Event& e);

 private:
  struct Thread {
    uint32_t tid = 0, cpu = 0;
    uint32_t g = 0;              ///< index into gs_
    bool open = false;           ///< a write window is open: the next event closes it
    uint32_t open_site = 0;
    uint64_t open_map = 0;
    uint32_t path = 0;
  };
  uint64_t rand();
  uint64_t below(uint64_t n) { return rand() % n; }
  void fill_stack(Event& e, const Thread& t);

  SyntheticOptions o_;
  Header header_;
  uint64_t state_;
  uint64_t now_;
  uint64_t next_goid_ = 1;
  std::vector<Thread> threads_;
  std::vector<uint64_t> gs_;     ///< g pointers
  std::vector<uint64_t> goids_;  ///< goid of each g's current goroutine
  std::vector<uint64_t> maps_;
  std::vector<Event> pending_;   ///< go-exit/go-start pairs queued ahead of the next write
};

}  // namespace gort::core::trace
