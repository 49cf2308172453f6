#pragma once
// Integer-held heap addresses: the words of memory the GC treats as live (globals, live
// heap objects including noscan ones, optionally goroutine stacks) whose value lies inside
// a heap object the GC did not keep. A pointer the GC knows of would have kept (marked) its
// target; so such a word is an integer (a uintptr, a handle) holding an address that
// dangles (the object is free or reused) or is about to (unmarked, not yet swept).
// ../shared/design.md "Dangling integer-cast pointers".
//
// The scan reads a stopped process or a core. At GC mark termination the mark bits are
// final; any other time it judges against the last completed cycle (heap.h: live()).

#include "core/binary/go_binary.h"
#include "core/disasm/global_writers.h"
#include "core/goruntime/addr_info.h"
#include "core/goruntime/goroutines.h"
#include "core/goruntime/heap.h"
#include "core/target/memory.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace gort::core::analysis {

struct DanglingHolder {
  AddrInfo::Kind kind = AddrInfo::Kind::kUnknown;  ///< kGlobal, kHeap or kStack
  RemoteAddr addr;                                  ///< the word
  std::string text;                                 ///< "main.handles+0x8 (.bss)", "heap object 0x.. [2048 B] +0x18", ...
  std::optional<HeapObject> object;                 ///< kHeap: the object holding the word
  /// kHeap: the globals whose words point into that object ("main.handles (.bss)"):
  /// the variable that owns the holding slice or struct.
  std::vector<std::string> referenced_from;
  /// kGlobal: the functions whose code stores to the global holding the word; kHeap: to the
  /// referenced_from globals (the code that filled the holding slice): "main.register
  /// (main.go:60)". Static (core/disasm/global_writers.h): empty when the binary has no
  /// symbols for its globals (stripped).
  std::vector<std::string> filled_by;
  uint64_t goid = 0;                                ///< kStack
  std::string frame;                                ///< kStack: "main.f (main.go:12)"
};

struct DanglingTarget {
  RemoteAddr value;            ///< the word's value
  RemoteAddr base;             ///< the object's base (null for freed pages)
  uint64_t size = 0;
  std::string state;           ///< "free", "garbage (unmarked, not yet swept)", "freed pages (no span in use)"
  uint8_t sizeclass = 0;
  bool noscan = false;
};

struct DanglingFinding {
  DanglingHolder holder;
  DanglingTarget target;
  uint32_t gc_cycle = 0;       ///< memstats.numgc when scanned: the last completed cycle
  std::string established_by;
};

struct ScanOptions {
  bool stacks = false;         ///< scan goroutine stacks too (no stack maps: dead slots can be stale pointers)
  /// Heap holders only among the objects the last completed cycle marked (Heap::reached),
  /// not those allocated since: right after a cycle (gort record --dangling) that is the
  /// memory the GC found reachable; objects allocated after it are scanned at the next
  /// cycle. Off (a snapshot): every allocated object counts.
  bool reached_holders_only = false;
  size_t max_findings = 10000;
  /// Called now and then with (bytes scanned, bytes to scan) for progress.
  std::function<void(uint64_t, uint64_t)> progress;
};

struct ScanStats {
  uint64_t spans = 0, objects_scanned = 0, bytes_scanned = 0, words = 0;
  uint64_t heap_words = 0;     ///< words whose value fell in the heap's address range
  uint64_t unreadable = 0;     ///< spans or ranges that could not be read
  uint64_t roots_bytes = 0, stack_bytes = 0;
  /// Findings dropped because the holder is the runtime's own bookkeeping (mheap_, a g,
  /// an object only runtime globals reference): it keeps addresses in uintptr fields by design.
  uint64_t runtime_holders = 0;
  double seconds = 0;
  double filled_by_seconds = 0;  ///< of SECONDS: finding the code that stores to the holders' globals
  double gb_per_s() const { return seconds > 0 ? double(bytes_scanned) / seconds / 1e9 : 0; }
};

struct ScanResult {
  HeapState heap;
  std::vector<DanglingFinding> findings;
  ScanStats stats;
  std::vector<std::string> notes;
};

ScanResult scan_dangling(const Memory& mem, const GoBinary& bin, int64_t slide, const Heap& heap,
                         const std::vector<Goroutine>& goroutines, const std::vector<ThreadRegs>& threads,
                         const ScanOptions& opts);

/// JSON: {"heap": {"gc_cycles", "phase", "sweepgen", "green_tea"}, "findings": [{"kind":
/// "dangling-pointer", "holder": {"kind", "addr", "text", "object", "referenced_from",
/// "filled_by", "goroutine", "frame"}, "target": {"value", "base", "size", "state", "sizeclass",
/// "noscan"}, "gc_cycle", "established_by"}], "stats": {...}, "notes": [...]}.
nlohmann::json to_json(const ScanResult& r);
std::string to_text(const ScanResult& r);

}  // namespace gort::core::analysis
