// resolve_wb_hit on real caller code: main.storePtr (`n.next = v`) and
// main.putPointerValue (`m[k] = v` with a pointer value) from samples/mapwrites, built by
// Go 1.23.5 (old values loaded after the CALL) and Go 1.26 (loaded before it).

#include "core/disasm/wb_sites.h"

#include <doctest/doctest.h>

#include "tests/unit/wb_code.h"

#include <map>

using namespace gort::core;
using namespace gort::test;

namespace {

std::vector<Insn> decode(const std::vector<uint8_t>& code, uint64_t at) {
  auto d = Decoder::create();
  REQUIRE(d.ok());
  return d->decode(Bytes(code.data(), code.size()), RemoteAddr(at));
}

ReadU64 memory(std::map<uint64_t, uint64_t> m) {
  return [m](RemoteAddr a) -> std::optional<uint64_t> {
    auto it = m.find(a.value());
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

ThreadRegs regs_at_barrier(uint64_t rax, uint64_t rbx, uint64_t rsp) {
  ThreadRegs r;
  r.rax = rax;
  r.rbx = rbx;
  r.rsp = rsp;
  r.rcx = 0xdead;  // scratch at the call; must not leak into the answer
  return r;
}

}  // namespace

TEST_CASE("wb: storePtr, old value loaded after the CALL (Go 1.23)") {
  auto fn = decode(kStorePtr123, 0x4a01e0);
  auto hit = resolve_wb_hit(fn, RemoteAddr(0x4a01fa), regs_at_barrier(0x1000, 0x2000, 0x7000), memory({{0x1000, 0x3000}}));
  REQUIRE(hit.ok());
  CHECK(hit->buffer_entries == 2);
  REQUIRE(hit->writes.size() == 1);
  CHECK(hit->writes[0].slot == RemoteAddr(0x1000));
  CHECK(hit->writes[0].value == std::optional<uint64_t>(0x2000));
  CHECK(hit->writes[0].store_pc == RemoteAddr(0x4a0204));
  CHECK(hit->note.empty());
}

TEST_CASE("wb: storePtr, old value loaded before the CALL (Go 1.26)") {
  auto fn = decode(kStorePtr126, 0x4ad320);
  auto hit = resolve_wb_hit(fn, RemoteAddr(0x4ad33d), regs_at_barrier(0x1000, 0x2000, 0x7000), memory({}));
  REQUIRE(hit.ok());
  CHECK(hit->buffer_entries == 2);
  REQUIRE(hit->writes.size() == 1);
  CHECK(hit->writes[0].slot == RemoteAddr(0x1000));
  CHECK(hit->writes[0].value == std::optional<uint64_t>(0x2000));
  CHECK(hit->writes[0].store_pc == RemoteAddr(0x4ad344));
}

TEST_CASE("wb: map value store reloads the new value from a stack spill (Go 1.23)") {
  auto fn = decode(kPutPointerValue123, 0x49fbe0);
  // At the barrier's entry RSP points at the return address; the caller's SP is RSP+8,
  // so its 0x38(SP) spill is at RSP+0x40.
  const uint64_t rsp = 0x7f00, slot = 0x5000, value = 0xc000a1b2c0;
  auto hit = resolve_wb_hit(fn, RemoteAddr(0x49fc25), regs_at_barrier(slot, 0, rsp),
                            memory({{rsp + 8 + 0x38, value}, {slot, 0}}));
  REQUIRE(hit.ok());
  REQUIRE(hit->writes.size() == 1);
  CHECK(hit->writes[0].slot == RemoteAddr(slot));
  CHECK(hit->writes[0].value == std::optional<uint64_t>(value));
  CHECK(hit->writes[0].store_pc == RemoteAddr(0x49fc34));
}

TEST_CASE("wb: map value store (Go 1.26); unreadable spill leaves the value unknown, slot known") {
  auto fn = decode(kPutPointerValue126, 0x4ace40);
  const uint64_t rsp = 0x7f00, slot = 0x5000, value = 0x8d6000123;
  auto hit = resolve_wb_hit(fn, RemoteAddr(0x4ace7d), regs_at_barrier(slot, 0, rsp), memory({{rsp + 0x40, value}}));
  REQUIRE(hit.ok());
  REQUIRE(hit->writes.size() == 1);
  CHECK(hit->writes[0].slot == RemoteAddr(slot));
  CHECK(hit->writes[0].value == std::optional<uint64_t>(value));
  CHECK(hit->writes[0].store_pc == RemoteAddr(0x4ace89));

  auto blind = resolve_wb_hit(fn, RemoteAddr(0x4ace7d), regs_at_barrier(slot, 0, rsp), memory({}));
  REQUIRE(blind.ok());
  REQUIRE(blind->writes.size() == 1);
  CHECK(blind->writes[0].slot == RemoteAddr(slot));
  CHECK_FALSE(blind->writes[0].value.has_value());
}

TEST_CASE("wb: a return address that does not follow a CALL is an error") {
  auto fn = decode(kStorePtr126, 0x4ad320);
  auto hit = resolve_wb_hit(fn, RemoteAddr(0x4ad344), regs_at_barrier(1, 2, 3), memory({}));
  CHECK_FALSE(hit.ok());
}
