// Write-barrier hit decoding on FakeMemory: goid through g (R14), the caller from [RSP]
// symbolized at RET-1 (with a PIE slide), the caller's code fetched and decoded once per
// function, slot and value from the real main.storePtr / main.putPointerValue bytes
// (tests/unit/wb_code.h), a new value reloaded from a stack spill, and the JSON/text shapes.

#include "core/goruntime/wb_event.h"

#include <doctest/doctest.h>

#include "tests/unit/synthetic_pclntab.h"
#include "tests/unit/wb_code.h"

#include <map>

using namespace gort::core;
using gort::test::kText;

namespace {

constexpr uint32_t kPutOff = 0x50;

// main.storePtr (Go 1.26 bytes) at +0x00, line 90; main.putPointerValue (Go 1.23 bytes)
// at +0x50, line 44.
struct Table : gort::test::SyntheticPclntab {
  Table()
      : SyntheticPclntab("/src/mapwrites/main.go",
                         {
                             {"main.storePtr", 0x00, 0x44, {{90, 0x44}}},
                             {"main.putPointerValue", kPutOff, 0x85, {{44, 0x85}}},
                         }) {}
};

constexpr uint64_t kG = 0xc000002000, kSp = 0xc000040f00, kSlot = 0xc000012340, kValue = 0xc000056780;

Probe barrier2() {
  Probe p;
  p.function = "runtime.gcWriteBarrier2";
  p.role = ProbeRole::kWriteBarrier;
  return p;
}

struct Fixture {
  Table table;
  std::unique_ptr<Pclntab> pcln = table.load();
  FakeMemory mem;
  int64_t slide = 0;
  int fetches = 0;
  std::unique_ptr<CallerCode> code;

  Fixture() {
    auto c = CallerCode::create([this](RemoteAddr pc) -> Result<std::pair<RemoteAddr, std::vector<uint8_t>>> {
      ++fetches;
      uint64_t off = pc.value() - kText;
      if (off < 0x44) return std::make_pair(RemoteAddr(kText), gort::test::kStorePtr126);
      if (off >= kPutOff && off < kPutOff + 0x85) return std::make_pair(RemoteAddr(kText + kPutOff), gort::test::kPutPointerValue123);
      return make_error(ErrorKind::kNotFound, "no function at {}", pc);
    });
    REQUIRE(c.ok());
    code = std::move(c).value();
    mem.put(RemoteAddr(kG + 0x98), uint64_t{7});
  }
  DecodeContext ctx() {
    DecodeContext c;
    c.pclntab = pcln.get();
    c.layouts.g_goid = 0x98;
    c.mem = &mem;
    c.slide = slide;
    return c;
  }
  ThreadRegs regs(uint64_t rax, uint64_t rbx) {
    ThreadRegs r;
    r.tid = 3601;
    r.r14 = kG;
    r.rsp = kSp;
    r.rax = rax;
    r.rbx = rbx;
    r.rcx = 0xdead;
    return r;
  }
};

}  // namespace

TEST_CASE("wb event: storePtr (Go 1.26): goroutine, caller, slot and value; code decoded once") {
  Fixture f;
  const uint64_t ret = kText + 0x1d;  // after CALL gcWriteBarrier2
  f.mem.put(RemoteAddr(kSp), ret);
  auto e = decode_wb_hit(barrier2(), f.regs(kSlot, kValue), 0, f.ctx(), *f.code, 42);
  REQUIRE(e.ok());
  CHECK(e->goroutine == 7);
  CHECK(e->thread == 3601);
  CHECK(e->function == "runtime.gcWriteBarrier2");
  REQUIRE(e->caller.size() == 1);
  CHECK(e->caller[0].function == "main.storePtr");
  CHECK(e->caller[0].line == 90);
  REQUIRE(e->writes.size() == 1);
  CHECK(e->writes[0].slot == RemoteAddr(kSlot));
  CHECK(e->writes[0].value == std::optional<uint64_t>(kValue));
  CHECK(e->writes[0].store_pc == RemoteAddr(kText + 0x24));
  CHECK(e->note.empty());

  CHECK(to_text(*e) == "goroutine 7 thread 3601 write-barrier gcWriteBarrier2 from main.storePtr at "
                       "/src/mapwrites/main.go:90: *0xc000012340 = 0xc000056780");
  auto j = to_json(*e);
  CHECK(j["op"] == "write-barrier");
  CHECK(j["goroutine"] == 7);
  CHECK(j["function"] == "runtime.gcWriteBarrier2");
  CHECK(j["caller"]["function"] == "main.storePtr");
  CHECK(j["caller"]["line"] == 90);
  REQUIRE(j["writes"].size() == 1);
  CHECK(j["writes"][0]["slot"] == "0xc000012340");
  CHECK(j["writes"][0]["value"] == "0xc000056780");
  CHECK(j["time_ns"] == 42);
  CHECK_FALSE(j.contains("note"));

  // A second hit in the same function reuses the decoded code; the return address given
  // (a sample's stack bytes) wins over memory.
  auto again = decode_wb_hit(barrier2(), f.regs(kSlot + 8, kValue), ret, f.ctx(), *f.code, 43);
  REQUIRE(again.ok());
  REQUIRE(again->writes.size() == 1);
  CHECK(again->writes[0].slot == RemoteAddr(kSlot + 8));
  CHECK(f.fetches == 1);
}

TEST_CASE("wb event: PIE slide; a new value reloaded from a stack spill, or unknown") {
  Fixture f;
  f.slide = 0x7f0000000000;
  const uint64_t ret = kText + kPutOff + 0x45 + static_cast<uint64_t>(f.slide);
  f.mem.put(RemoteAddr(kSp), ret);
  // The caller's SP is RSP+8 at the barrier entry: its 0x38(SP) spill is at RSP+0x40.
  f.mem.put(RemoteAddr(kSp + 0x40), kValue);
  auto e = decode_wb_hit(barrier2(), f.regs(kSlot, 0), 0, f.ctx(), *f.code, 1);
  REQUIRE(e.ok());
  REQUIRE(e->caller.size() == 1);
  CHECK(e->caller[0].function == "main.putPointerValue");
  CHECK(e->caller[0].line == 44);
  REQUIRE(e->writes.size() == 1);
  CHECK(e->writes[0].slot == RemoteAddr(kSlot));
  CHECK(e->writes[0].value == std::optional<uint64_t>(kValue));
  CHECK(e->writes[0].store_pc == RemoteAddr(kText + kPutOff + 0x54 + static_cast<uint64_t>(f.slide)));

  Fixture blind;
  blind.slide = f.slide;
  blind.mem.put(RemoteAddr(kSp), ret);  // no spill readable
  auto b = decode_wb_hit(barrier2(), blind.regs(kSlot, 0), 0, blind.ctx(), *blind.code, 1);
  REQUIRE(b.ok());
  REQUIRE(b->writes.size() == 1);
  CHECK_FALSE(b->writes[0].value.has_value());
  CHECK(to_text(*b).ends_with(": *0xc000012340 = ?"));
  CHECK(to_json(*b)["writes"][0]["value"].is_null());
}

TEST_CASE("wb event: unknown caller code and unreadable g keep the hit with a note") {
  Fixture f;
  f.mem.put(RemoteAddr(kSp), uint64_t{0x900000});  // outside every function
  ThreadRegs r = f.regs(kSlot, kValue);
  r.r14 = 0;
  auto e = decode_wb_hit(barrier2(), r, 0, f.ctx(), *f.code, 1);
  REQUIRE(e.ok());
  CHECK(e->goroutine == 0);
  CHECK(e->caller.empty());
  CHECK(e->writes.empty());
  CHECK_FALSE(e->note.empty());
  CHECK(to_json(*e)["caller"].is_null());
  CHECK(to_json(*e)["writes"].empty());

  Probe map_probe;
  map_probe.function = "runtime.mapassign_fast64";
  CHECK_FALSE(decode_wb_hit(map_probe, r, 0, f.ctx(), *f.code, 1).ok());
}
