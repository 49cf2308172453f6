#pragma once
// The code that writes a global variable: the functions whose machine code stores into a
// package-level variable's link-time range [lo, hi). Static and front-end neutral (no
// process, no LLDB): the dangling-pointer scan names with it "the code that filled" the
// variable holding a stale handle (docs/heap.md, "filled by").
//
// Go addresses a package-level variable RIP-relative: `handles = append(handles, h)`
// compiles to MOVQ CX, main.handles+8(SB) (len), MOVQ DX, main.handles+16(SB) (cap) and,
// when the write barrier is off, MOVQ AX, main.handles(SB) (1.21+: the barrier path ends
// in the same direct store). So a writer is an instruction whose destination is a
// RIP-relative memory operand inside [lo, hi):
//   - MOV, MOVUPS (Go zeroes 16 bytes with MOVUPS X15), XCHG/CMPXCHG/XADD (atomics),
//     ADD/INC/OR/... with a memory destination: every instruction whose first operand is
//     memory, except those that only read it (CMP, TEST, CALL, JMP/Jcc, NOP, LEA; BT and
//     PUSH of a global are not emitted by Go and are not told apart);
//   - LEA reg, global(SB) followed, in the same basic block and before reg changes, by a
//     store through reg (the pre-1.21 barrier shape and stores to a field of a struct
//     global through its address): a store at that instruction;
//   - LEA of the global with no such store: the function takes the variable's address
//     (passes &v to a callee that may fill it): kept as an `address` site.
//
// Which functions are decoded: every function of the pclntab except the runtime and its
// support packages, whose names start with "runtime.", "internal/", "sync.", "sync/atomic.",
// "syscall.", "reflect.", "unsafe.", "type:"/"type.." (generated equality and hash
// functions) or "go:" (linker-made symbols); see skipped_writer(). A program's
// handle table is not written by the runtime. A query first tests the raw bytes of each
// function for a 32-bit displacement that can reach the range (cheap, a superset) and
// decodes only those functions: a few milliseconds on a 10 MB binary, where decoding
// every function takes half a second.
//
// Limits: a stripped binary has no symbols for its globals, so the caller has no range to
// ask about; a fill through a pointer passed around (`fill(&handles)` storing through its
// parameter) is seen only as the `address` site of the function that took the address.

#include "core/binary/go_binary.h"
#include "core/disasm/decoder.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gort::core {

struct GlobalWrite {
  enum class Kind : uint8_t {
    kStore,    ///< a RIP-relative store into the range
    kViaLea,   ///< LEA of an address in the range, then a store through that register
    kAddress,  ///< LEA of an address in the range with no store after it: &v taken
  };
  Kind kind = Kind::kStore;
  RemoteAddr pc;             ///< link-time address of the store (or the LEA for kAddress)
  uint64_t target = 0;       ///< link-time address written (the LEA's address for kViaLea/kAddress)
  std::string function;      ///< innermost function at PC (an inlined callee when inlined)
  std::string physical;      ///< the physical function holding PC
  std::string file;          ///< source file of FUNCTION at PC
  int32_t line = 0;
};
const char* to_string(GlobalWrite::Kind k);  ///< "store", "store-via-lea", "address"

/// True for functions the index does not decode (the runtime and its support packages).
bool skipped_writer(std::string_view function);

/// The writers of globals of one binary. Not thread-safe; the caller caches per global.
class GlobalWriters {
 public:
  explicit GlobalWriters(const GoBinary& bin);
  ~GlobalWriters();
  GlobalWriters(GlobalWriters&&) noexcept;
  GlobalWriters& operator=(GlobalWriters&&) noexcept;

  /// The sites writing into (or taking the address of) the link-time range [LO, HI),
  /// sorted by function then pc. Each query reads the code of every decoded function once
  /// (a byte test for a RIP-relative displacement that can reach [LO, HI)) and decodes only
  /// the functions that pass it. An error only when Capstone cannot be opened.
  Result<std::vector<GlobalWrite>> writers(uint64_t lo, uint64_t hi);

  /// One line per function: "main.register (main.go:57)", "main.f (main.go:12, 14)",
  /// "main.set (main.go:9, inlined in main.main)", "main.load (main.go:30, takes its address)".
  /// Stores first, address-takers last.
  static std::vector<std::string> summarize(const std::vector<GlobalWrite>& ws);

  struct Stats {
    size_t queries = 0;
    size_t bytes_scanned = 0;       ///< code bytes tested, over all queries
    size_t functions_decoded = 0;   ///< functions that passed the test, over all queries
    double seconds = 0;             ///< in writers(), over all queries
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Func {
    RemoteAddr entry;
    Bytes code;
  };
  void prepare();
  static bool may_reference(const Func& f, uint64_t lo, uint64_t hi);
  const GoBinary* bin_;
  std::unique_ptr<Decoder> dec_;
  bool prepared_ = false;
  std::vector<Func> funcs_;  ///< the functions not skipped_writer(), with their code
  Stats stats_;
};

/// The sites in one decoded function INSNS that write into or take the address of a
/// link-time range [LO, HI) (no symbolization: function/file/line left empty). Exposed for
/// unit tests.
std::vector<GlobalWrite> find_global_writes(const std::vector<Insn>& insns, uint64_t lo, uint64_t hi);

}  // namespace gort::core
