#pragma once
// Link-time addresses of runtime package variables gort reads (heap and GC state), in
// binaries with and without .symtab. ../shared/reference/go-runtime.md sections 6.4, 7.
#include "core/binary/go_binary.h"
#include "core/util/remote_addr.h"
#include "core/util/result.h"
#include <string>
namespace gort::core {
struct RuntimeVar {
  RemoteAddr addr;   ///< link-time address (add the PIE slide for a process)
  std::string how;   ///< "symtab" or "decoded from <function>"
};
/// runtime.mheap_ (the heap: arenas, allspans, sweepgen).
Result<RuntimeVar> find_mheap(const GoBinary& bin);
/// runtime.gcphase (uint32: 0 off, 1 mark, 2 mark termination).
Result<RuntimeVar> find_gcphase(const GoBinary& bin);
/// runtime.memstats (numgc at layouts().mstats_numgc).
Result<RuntimeVar> find_memstats(const GoBinary& bin);
}
