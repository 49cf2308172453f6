#pragma once
// What an address in a Go program is: a heap object (base, size, allocated or free,
// marked), a global (symbol + offset, or section + offset when stripped), a goroutine's
// stack (which goroutine, which frame), or nothing gort knows. `gort ptr` in LLDB and
// `gort postmortem BIN CORE --ptr ADDR` print it; the dangling-pointer scan names its
// holders with it.

#include "core/binary/go_binary.h"
#include "core/goruntime/goroutines.h"
#include "core/goruntime/heap.h"
#include "core/target/memory.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace gort::core {

/// Globals of BIN by address: .symtab objects when present, else the data sections.
class GlobalIndex {
 public:
  GlobalIndex(const GoBinary& bin, int64_t slide);
  struct Hit {
    std::string name;      ///< "main.handles", or ".bss" when stripped
    uint64_t offset = 0;   ///< ADDR - start of NAME
    uint64_t size = 0;     ///< of the symbol (0: unknown)
    std::string section;   ///< ".data", ".noptrbss", ...
  };
  std::optional<Hit> find(RemoteAddr addr) const;
  /// The data and bss ranges (runtime addresses) a scan reads as roots.
  struct Range {
    RemoteAddr lo, hi;
    std::string section;
  };
  const std::vector<Range>& ranges() const { return ranges_; }
  static std::string text(const Hit& h);  ///< "main.handles+0x8 (.bss)"

 private:
  struct Sym {
    uint64_t lo, size;
    std::string name;
  };
  std::vector<Sym> syms_;  ///< sorted by lo
  std::vector<Range> ranges_;
};

struct AddrInfo {
  enum class Kind { kHeap, kFreedHeap, kGlobal, kStack, kCode, kUnknown } kind = Kind::kUnknown;
  RemoteAddr addr;
  std::optional<HeapObject> object;      ///< kHeap
  std::optional<SpanInfo> span;          ///< kHeap, kFreedHeap (a dead span), kStack (its span)
  std::optional<GlobalIndex::Hit> global;
  // kStack
  uint64_t goid = 0;
  RemoteAddr g;
  std::string frame_function;            ///< the frame whose [sp, caller sp) holds ADDR
  std::string frame_file;
  int32_t frame_line = 0;
  // kCode
  std::string function;
  std::string summary;                   ///< one line for people
};
const char* to_string(AddrInfo::Kind k);

/// Describes ADDR. GOROUTINES and THREADS (may be empty) tell stacks apart.
Result<AddrInfo> describe_address(const Memory& mem, const GoBinary& bin, int64_t slide, const Heap& heap,
                                  const GlobalIndex& globals, const std::vector<Goroutine>& goroutines,
                                  const std::vector<ThreadRegs>& threads, RemoteAddr addr);

/// JSON: {"addr", "kind", "summary", "object": {"base", "size", "offset", "sizeclass", "noscan",
/// "allocated", "marked", "state"}, "span": {...}, "global": {"name", "offset", "section"},
/// "goroutine", "frame": {"function", "file", "line"}, "function"}.
nlohmann::json to_json(const AddrInfo& a);
/// Several lines for people.
std::string to_text(const AddrInfo& a, const HeapState& hs);

}  // namespace gort::core
