// The code that stores to a global (core/disasm/global_writers.h), on bytes copied from
// real Go code and on a few hand-assembled shapes.

#include "core/disasm/decoder.h"
#include "core/disasm/global_writers.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

using namespace gort::core;

namespace {

std::vector<Insn> decode(const std::vector<uint8_t>& b, uint64_t addr) {
  static Decoder d = Decoder::create().value();
  return d.decode(Bytes(b.data(), b.size()), RemoteAddr(addr));
}

// go1.26.8 main.register of samples/dangling (main.go:60, `handles = append(handles, h)`),
// main.handles at 0x591120 (24 bytes):
//   0x4a2f28 48890d01e20e00   MOVQ CX, main.handles+16(SB)
//   0x4a2f2f 833d2ae7100000   CMPL runtime.writeBarrier(SB), $0x0
//   0x4a2f36 7414             JE 0x4a2f4c
//   0x4a2f38 488b0de1e10e00   MOVQ main.handles(SB), CX
//   0x4a2f3f 90               NOPL
//   0x4a2f40 e83bc9fdff       CALL runtime.gcWriteBarrier2(SB)
//   0x4a2f45 498903           MOVQ AX, 0(R11)
//   0x4a2f48 49894b08         MOVQ CX, 0x8(R11)
//   0x4a2f4c 488905cde10e00   MOVQ AX, main.handles(SB)
//   0x4a2f53 4889c2           MOVQ AX, DX
//   0x4a2f56 488b442440       MOVQ 0x40(SP), AX
//   0x4a2f5b 48891dc6e10e00   MOVQ BX, main.handles+8(SB)
//   0x4a2f62 488944daf8       MOVQ AX, -0x8(DX)(BX*8)
const std::vector<uint8_t> kRegister = {
    0x48, 0x89, 0x0d, 0x01, 0xe2, 0x0e, 0x00, 0x83, 0x3d, 0x2a, 0xe7, 0x10, 0x00, 0x00, 0x74, 0x14,
    0x48, 0x8b, 0x0d, 0xe1, 0xe1, 0x0e, 0x00, 0x90, 0xe8, 0x3b, 0xc9, 0xfd, 0xff, 0x49, 0x89, 0x03,
    0x49, 0x89, 0x4b, 0x08, 0x48, 0x89, 0x05, 0xcd, 0xe1, 0x0e, 0x00, 0x48, 0x89, 0xc2, 0x48, 0x8b,
    0x44, 0x24, 0x40, 0x48, 0x89, 0x1d, 0xc6, 0xe1, 0x0e, 0x00, 0x48, 0x89, 0x44, 0xda, 0xf8};

}  // namespace

TEST_CASE("global writers: the stores of append to a global slice") {
  auto ws = find_global_writes(decode(kRegister, 0x4a2f28), 0x591120, 0x591120 + 24);
  REQUIRE(ws.size() == 3);  // cap, ptr, len; not the loads, not the store into the array
  CHECK(ws[0].pc == RemoteAddr(0x4a2f28));
  CHECK(ws[0].target == 0x591130);
  CHECK(ws[1].pc == RemoteAddr(0x4a2f4c));
  CHECK(ws[1].target == 0x591120);
  CHECK(ws[2].pc == RemoteAddr(0x4a2f5b));
  CHECK(ws[2].target == 0x591128);
  for (auto& w : ws) CHECK(w.kind == GlobalWrite::Kind::kStore);
  // another variable's range: nothing (the CMPL of runtime.writeBarrier is a read anyway)
  CHECK(find_global_writes(decode(kRegister, 0x4a2f28), 0x591140, 0x591200).empty());
  CHECK(find_global_writes(decode(kRegister, 0x4a2f28), 0x5b1660, 0x5b1664).empty());
}

TEST_CASE("global writers: LEA then a store through the register; LEA passed on") {
  // 0x1000 48 8d 3d f9 0f 00 00   LEAQ 0x2000(IP), DI
  // 0x1007 48 89 47 08            MOVQ AX, 0x8(DI)
  // 0x100b 48 8d 35 ee 0f 00 00   LEAQ 0x2000(IP), SI
  // 0x1012 e8 00 00 00 00         CALL 0x1017            (&v passed to a callee)
  // 0x1017 48 83 3d e1 0f 00 00 00  CMPQ 0x2000(IP), $0  (a read)
  // 0x101f 48 8d 3d da 0f 00 00   LEAQ 0x2000(IP), DI
  // 0x1026 48 31 ff               XORQ DI, DI            (overwritten before any store)
  // 0x1029 48 89 07               MOVQ AX, 0(DI)
  std::vector<uint8_t> code = {0x48, 0x8d, 0x3d, 0xf9, 0x0f, 0x00, 0x00, 0x48, 0x89, 0x47, 0x08, 0x48, 0x8d,
                               0x35, 0xee, 0x0f, 0x00, 0x00, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x48, 0x83, 0x3d,
                               0xe1, 0x0f, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x3d, 0xda, 0x0f, 0x00, 0x00, 0x48,
                               0x31, 0xff, 0x48, 0x89, 0x07};
  auto ws = find_global_writes(decode(code, 0x1000), 0x2000, 0x2018);
  REQUIRE(ws.size() == 3);
  CHECK(ws[0].kind == GlobalWrite::Kind::kViaLea);
  CHECK(ws[0].pc == RemoteAddr(0x1007));
  CHECK(ws[0].target == 0x2008);
  CHECK(ws[1].kind == GlobalWrite::Kind::kAddress);
  CHECK(ws[1].pc == RemoteAddr(0x100b));
  CHECK(ws[2].kind == GlobalWrite::Kind::kAddress);
  CHECK(ws[2].pc == RemoteAddr(0x101f));
}

TEST_CASE("global writers: which functions are decoded, and the summary lines") {
  CHECK(skipped_writer("runtime.mallocgc"));
  CHECK(skipped_writer("internal/runtime/maps.(*Map).PutSlot"));
  CHECK(skipped_writer("sync.(*Mutex).Lock"));
  CHECK(skipped_writer("sync/atomic.(*Int64).Add"));
  CHECK(skipped_writer("type:.eq.main.record"));
  CHECK_FALSE(skipped_writer("main.register"));
  CHECK_FALSE(skipped_writer("go.uber.org/zap.New"));
  CHECK_FALSE(skipped_writer("fmt.Sprintf"));

  auto w = [](GlobalWrite::Kind k, const char* fn, const char* phys, int line) {
    GlobalWrite g;
    g.kind = k;
    g.function = fn;
    g.physical = phys;
    g.file = "/src/main.go";
    g.line = line;
    return g;
  };
  auto lines = GlobalWriters::summarize({
      w(GlobalWrite::Kind::kAddress, "main.load", "main.load", 30),
      w(GlobalWrite::Kind::kStore, "main.register", "main.register", 60),
      w(GlobalWrite::Kind::kStore, "main.register", "main.register", 60),
      w(GlobalWrite::Kind::kStore, "main.fillStale", "main.fillStale", 77),
      w(GlobalWrite::Kind::kStore, "main.fillStale", "main.fillStale", 76),
      w(GlobalWrite::Kind::kAddress, "main.fillStale", "main.fillStale", 90),
      w(GlobalWrite::Kind::kStore, "main.set", "main.main", 9),
  });
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "main.fillStale (main.go:76, 77)");
  CHECK(lines[1] == "main.register (main.go:60)");
  CHECK(lines[2] == "main.set (main.go:9, inlined in main.main)");
  CHECK(lines[3] == "main.load (main.go:30, takes its address)");
}
