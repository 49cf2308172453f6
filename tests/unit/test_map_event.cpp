// Map-write hit decoding on FakeMemory: goid through g (R14), fast64/faststr/generic keys
// (key kind from the map type's key abi.Type), (*Map) methods (receiver in RAX, type in
// RBX), the caller from [RSP] symbolized at RET-1 with a PIE slide, runtime callers
// skipped through the BP chain, watch hits, and the JSON line shape of `--log`.

#include "core/goruntime/map_event.h"

#include <doctest/doctest.h>

#include "tests/unit/synthetic_pclntab.h"

#include <cstring>
#include <string>
#include <vector>

using namespace gort::core;

namespace {

using gort::test::Buf;
using gort::test::kText;
using gort::test::set64;

// Go 1.20+ pclntab, one file (/src/m.go), three functions:
//   main.writer                    [+0x00,+0x40) line 30 before +0x20, 31 from it
//   runtime.mapdelete_fast64       [+0x40,+0x60) line 300
//   runtime.mapassign_fast64       [+0x60,+0x90) line 200
struct Table : gort::test::SyntheticPclntab {
  Table()
      : SyntheticPclntab("/src/m.go", {
                                          {"main.writer", 0x00, 0x40, {{30, 0x20}, {31, 0x20}}},
                                          {"runtime.mapdelete_fast64", 0x40, 0x20, {{300, 0x20}}},
                                          {"runtime.mapassign_fast64", 0x60, 0x30, {{200, 0x30}}},
                                      }) {}
};

constexpr uint64_t kG = 0xc000002000, kMap = 0xc000072150, kMapType = 0x4b0000, kKeyType = 0x4b1000;
constexpr uint64_t kSp = 0xc000040f00, kBp = 0xc000040f40;

// go1.26-like layouts: goid at 0x98, swiss map type's Key at 0x30, abi.Type Size_ 0 / Kind_ 0x17.
RuntimeLayouts layouts() {
  RuntimeLayouts L;
  L.g_goid = 0x98;
  L.smaptype_key = 0x30;
  L.hmaptype_key = 0x30;
  L.type_size = 0;
  L.type_kind = 0x17;
  return L;
}

Probe probe(const char* fn, ProbeRole role, const char* map_reg, const char* key_kind) {
  Probe p;
  p.function = fn;
  p.role = role;
  p.map_reg = map_reg;
  p.key_reg = *key_kind ? "rcx" : "";
  p.key_kind = key_kind;
  return p;
}

struct Fixture {
  Table table;
  std::unique_ptr<Pclntab> pcln = table.load();
  FakeMemory mem;
  int64_t slide = 0;
  DecodeContext ctx() {
    DecodeContext c;
    c.pclntab = pcln.get();
    c.layouts = layouts();
    c.map_impl = MapImpl::kSwiss;
    c.mem = &mem;
    c.slide = slide;
    return c;
  }
  // A key type of KIND and SIZE, and g with GOID.
  void key_type(uint8_t kind, uint64_t size) {
    mem.put(RemoteAddr(kMapType + 0x30), kKeyType);
    mem.put(RemoteAddr(kKeyType), size);
    mem.put(RemoteAddr(kKeyType + 0x17), kind);
  }
  ThreadRegs regs(uint64_t key) {
    ThreadRegs r;
    r.tid = 3601;
    r.rax = kMapType;
    r.rbx = kMap;
    r.rcx = key;
    r.r14 = kG;
    r.rsp = kSp;
    r.rbp = kBp;
    r.rip = kText + 0x60 + slide;
    return r;
  }
};

}  // namespace

TEST_CASE("map_event: fast64 entry: goid from g, signed key, caller at RET-1") {
  Fixture f;
  f.mem.put(RemoteAddr(kG + 0x98), uint64_t{7});
  f.key_type(6 /* int64 */, 8);
  f.mem.put(RemoteAddr(kSp), uint64_t{kText + 0x25});  // return address into main.writer line 31
  auto e = decode_map_write(probe("runtime.mapassign_fast64", ProbeRole::kMapAssign, "rbx", "u64"), f.regs(uint64_t(-5)), 0,
                            f.ctx(), 1234567);
  REQUIRE(e.ok());
  CHECK(e->goroutine == 7);
  CHECK(e->thread == 3601);
  CHECK(e->op == "assign");
  CHECK(e->map == RemoteAddr(kMap));
  REQUIRE(e->key);
  CHECK(e->key->text() == "-5");
  REQUIRE(e->caller.size() == 1);
  CHECK(e->caller[0].function == "main.writer");
  CHECK(e->caller[0].file == "/src/m.go");
  CHECK(e->caller[0].line == 31);
  // Exactly the --log shape.
  CHECK(to_json(*e).dump() ==
        R"({"caller":{"file":"/src/m.go","function":"main.writer","line":31},"function":"runtime.mapassign_fast64",)"
        R"("goroutine":7,"inlined_into":[],"key":-5,"map":"0xc000072150","op":"assign","thread":3601,"time_ns":1234567})");
  CHECK(to_text(*e) == "goroutine 7 thread 3601 assign map 0xc000072150 key -5 in runtime.mapassign_fast64 from main.writer at /src/m.go:31");
}

TEST_CASE("map_event: RET-1 matters: a return address at the next line's start is the call's line") {
  Fixture f;
  f.mem.put(RemoteAddr(kG + 0x98), uint64_t{9});
  f.mem.put(RemoteAddr(kSp), uint64_t{kText + 0x20});  // the call ends at +0x20 (line 30)
  auto e = decode_map_write(probe("runtime.mapassign_fast64", ProbeRole::kMapAssign, "rbx", "u64"), f.regs(42), 0, f.ctx(), 1);
  REQUIRE(e.ok());
  REQUIRE(e->key);
  CHECK(e->key->text() == "42");  // no key type readable: unsigned
  REQUIRE(!e->caller.empty());
  CHECK(e->caller[0].line == 30);
}

TEST_CASE("map_event: PIE slide and the return address from a perf sample") {
  Fixture f;
  f.slide = 0x555555000000 - 0x400000;
  f.mem.put(RemoteAddr(kG + 0x98), uint64_t{12});
  auto e = decode_map_write(probe("runtime.mapassign_fast64", ProbeRole::kMapAssign, "rbx", "u64"), f.regs(1),
                            kText + 0x25 + uint64_t(f.slide), f.ctx(), 1);
  REQUIRE(e.ok());
  REQUIRE(!e->caller.empty());
  CHECK(e->caller[0].function == "main.writer");
  CHECK(e->goroutine == 12);
}

TEST_CASE("map_event: faststr key (ptr RCX, len RDI) and unreadable g") {
  Fixture f;
  f.mem.add(RemoteAddr(0xc000100000), {'h', 'e', 'l', 'l', 'o', '"'});
  auto r = f.regs(0xc000100000);
  r.rdi = 6;
  auto e = decode_map_write(probe("runtime.mapassign_faststr", ProbeRole::kMapAssign, "rbx", "str"), r, kText + 0x25, f.ctx(), 1);
  REQUIRE(e.ok());
  CHECK(e->goroutine == 0);
  REQUIRE(e->key);
  CHECK(e->key->text() == R"("hello\"")");
  CHECK(to_json(*e)["key"] == "hello\"");
}

TEST_CASE("map_event: what could not be read is said, never dropped (a sample drained after the exit)") {
  Fixture f;
  // Neither g nor the key's bytes are in memory any more: the registers still give the
  // map, the thread and (from the sampled return address) the caller.
  auto r = f.regs(0xc000100000);
  r.rdi = 4;
  auto e = decode_map_write(probe("runtime.mapassign_faststr", ProbeRole::kMapAssign, "rbx", "str"), r, kText + 0x25, f.ctx(), 1);
  REQUIRE(e.ok());
  CHECK(!e->key);
  REQUIRE(e->undecoded.size() == 2);
  CHECK(e->undecoded[0] == "goroutine: cannot read 8 bytes at 0xc000002098: not mapped");
  CHECK(e->undecoded[1] == "key: cannot read 4 bytes at 0xc000100000: not mapped");
  auto j = to_json(*e);
  CHECK(j.contains("key"));
  CHECK(j["key"].is_null());
  CHECK(j["undecoded"] == nlohmann::json::array({"goroutine: cannot read 8 bytes at 0xc000002098: not mapped",
                                                 "key: cannot read 4 bytes at 0xc000100000: not mapped"}));
  CHECK(j["caller"]["function"] == "main.writer");
  CHECK(to_text(*e) == "goroutine 0 thread 3601 assign map 0xc000072150 in runtime.mapassign_faststr from main.writer at "
                       "/src/m.go:31 [not decoded: goroutine: cannot read 8 bytes at 0xc000002098: not mapped] "
                       "[not decoded: key: cannot read 4 bytes at 0xc000100000: not mapped]");
  // A probe without a key (mapclear) has no key field at all, and nothing undecoded.
  f.mem.put(RemoteAddr(kG + 0x98), uint64_t{3});
  auto c = decode_map_write(probe("runtime.mapclear", ProbeRole::kMapClear, "rbx", ""), r, kText + 0x25, f.ctx(), 1);
  REQUIRE(c.ok());
  CHECK(c->undecoded.empty());
  CHECK(!to_json(*c).contains("key"));
}

TEST_CASE("map_event: generic mapassign reads the key through its pointer, sized by the key type") {
  Fixture f;
  f.key_type(5 /* int32 */, 4);
  f.mem.put(RemoteAddr(0xc000200000), uint32_t(0xfffffffe));
  auto e = decode_map_write(probe("runtime.mapassign", ProbeRole::kMapAssign, "rbx", "indirect"), f.regs(0xc000200000),
                            kText + 0x25, f.ctx(), 1);
  REQUIRE(e.ok());
  REQUIRE(e->key);
  CHECK(e->key->text() == "-2");

  SUBCASE("string key through the pointer") {
    f.key_type(24 /* string */, 16);
    f.mem.put(RemoteAddr(0xc000300000), uint64_t{0xc000300100});
    f.mem.put(RemoteAddr(0xc000300008), uint64_t{3});
    f.mem.add(RemoteAddr(0xc000300100), {'a', 'b', 'c'});
    auto s = decode_map_write(probe("runtime.mapassign", ProbeRole::kMapAssign, "rbx", "indirect"), f.regs(0xc000300000),
                              kText + 0x25, f.ctx(), 1);
    REQUIRE(s.ok());
    REQUIRE(s->key);
    CHECK(s->key->text() == "\"abc\"");
  }
  SUBCASE("a struct key is omitted") {
    f.key_type(25 /* struct */, 16);
    auto s = decode_map_write(probe("runtime.mapassign", ProbeRole::kMapAssign, "rbx", "indirect"), f.regs(0xc000300000),
                              kText + 0x25, f.ctx(), 1);
    REQUIRE(s.ok());
    CHECK(!s->key);
    CHECK(!to_json(*s).contains("key"));
  }
}

TEST_CASE("map_event: (*Map).Delete: map in RAX, type in RBX; runtime caller skipped via BP chain") {
  Fixture f;
  f.key_type(11 /* uint64 */, 8);
  auto r = f.regs(0);
  r.rax = kMap;
  r.rbx = kMapType;
  r.rcx = 0xc000400000;  // key pointer
  f.mem.put(RemoteAddr(0xc000400000), uint64_t{99});
  // Called from runtime.mapdelete_fast64 (+0x48), whose frame at BP returns into main.writer.
  f.mem.put(RemoteAddr(kSp), uint64_t{kText + 0x48});
  f.mem.put(RemoteAddr(kBp), uint64_t{kBp + 0x40});
  f.mem.put(RemoteAddr(kBp + 8), uint64_t{kText + 0x25});
  auto e = decode_map_write(probe("internal/runtime/maps.(*Map).Delete", ProbeRole::kMapDelete, "rax", "indirect"), r, 0,
                            f.ctx(), 1);
  REQUIRE(e.ok());
  CHECK(e->op == "delete");
  CHECK(e->map == RemoteAddr(kMap));
  REQUIRE(e->key);
  CHECK(e->key->text() == "99");
  REQUIRE(!e->caller.empty());
  CHECK(e->caller[0].function == "main.writer");
}

TEST_CASE("map_event: mapclear has no key; a missing map register is an error") {
  Fixture f;
  auto e = decode_map_write(probe("runtime.mapclear", ProbeRole::kMapClear, "rbx", ""), f.regs(0), kText + 0x25, f.ctx(), 1);
  REQUIRE(e.ok());
  CHECK(e->op == "clear");
  CHECK(!e->key);
  auto bad = decode_map_write(probe("runtime.mapclear", ProbeRole::kMapClear, "", ""), f.regs(0), kText + 0x25, f.ctx(), 1);
  CHECK(!bad.ok());
}

TEST_CASE("map_event: watch hit mid-function: function at rip, caller from [RBP+8]") {
  Fixture f;
  f.mem.put(RemoteAddr(kG + 0x98), uint64_t{5});
  auto r = f.regs(0);
  r.rip = kText + 0x70;  // inside runtime.mapassign_fast64
  f.mem.put(RemoteAddr(kBp), uint64_t{kBp + 0x40});
  f.mem.put(RemoteAddr(kBp + 8), uint64_t{kText + 0x25});
  auto e = decode_watch_hit(RemoteAddr(kMap), r, 1, 0xff, f.ctx(), 1);
  REQUIRE(e.ok());
  CHECK(e->op == "write-begin");
  CHECK(e->function == "runtime.mapassign_fast64");
  CHECK(e->goroutine == 5);
  REQUIRE(!e->caller.empty());
  CHECK(e->caller[0].function == "main.writer");
  auto end = decode_watch_hit(RemoteAddr(kMap), r, 0, 0xff, f.ctx(), 1);
  REQUIRE(end.ok());
  CHECK(end->op == "write-end");
}
