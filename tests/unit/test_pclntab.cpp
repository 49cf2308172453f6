// Pclntab on synthetic tables: pcvalue decoding, the function-table search, file:line and
// inline-tree expansion, and truncated / corrupt input (errors, never crashes).

#include "core/binary/pclntab.h"

#include <doctest/doctest.h>

#include "tests/unit/synthetic_pclntab.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace gort::core;

namespace {

using namespace gort::test;

// A Go 1.20+ pclntab with two functions:
//   main.a  [text+0x00, +0x20)  a.go, line 10 then 11 from +0x10
//   main.b  [text+0x20, +0x60)  b.go, line 20; [+0x10,+0x20) runs main.inl (line 30),
//           inlined at parentPc +0x08 (line 20)
struct Synthetic {
  Buf tab, gofunc;
  size_t pcln_off = 0, func_b_off = 0;  // offsets in tab, for corrupting tests
  ModuleData md;

  Synthetic() {
    Buf names, cutab, files, pctab, pcln;
    auto name = [&](const char* s) { uint32_t o = uint32_t(names.size()); names.insert(names.end(), s, s + strlen(s) + 1); return o; };
    uint32_t n_a = name("main.a"), n_b = name("main.b"), n_inl = name("main.inl");
    files.insert(files.end(), {'a', '.', 'g', 'o', 0, 'b', '.', 'g', 'o', 0});
    put32(cutab, 0);  // cu 0: file 0 = a.go, file 1 = b.go
    put32(cutab, 5);
    pctab.push_back(0);  // offset 0 means "no table"
    uint32_t a_file = uint32_t(pctab.size()); pcvalue_table(pctab, {{0, 0x20}});
    uint32_t a_line = uint32_t(pctab.size()); pcvalue_table(pctab, {{10, 0x10}, {11, 0x10}});
    uint32_t b_file = uint32_t(pctab.size()); pcvalue_table(pctab, {{1, 0x40}});
    uint32_t b_line = uint32_t(pctab.size()); pcvalue_table(pctab, {{20, 0x10}, {30, 0x10}, {20, 0x20}});
    uint32_t b_inl = uint32_t(pctab.size()); pcvalue_table(pctab, {{-1, 0x10}, {0, 0x10}, {-1, 0x20}});
    uint32_t b_sp = uint32_t(pctab.size()); pcvalue_table(pctab, {{0, 0x4}, {24, 0x3c}});

    // pclntable: functab (3 pairs) then the two _func records.
    auto func = [&](uint32_t entryoff, uint32_t nameoff, uint32_t pcsp, uint32_t pcfile, uint32_t line,
                    std::vector<uint32_t> pcdata, std::vector<uint32_t> funcdata) {
      uint32_t off = uint32_t(pcln.size());
      for (uint32_t v : {entryoff, nameoff, 0u, 0u, pcsp, pcfile, line, uint32_t(pcdata.size()), 0u, 0u}) put32(pcln, v);
      pcln.insert(pcln.end(), {0, 0, 0, uint8_t(funcdata.size())});  // funcID, flag, _, nfuncdata
      for (auto v : pcdata) put32(pcln, v);
      for (auto v : funcdata) put32(pcln, v);
      return off;
    };
    pcln.resize(3 * 8);
    uint32_t fa = func(0x00, n_a, 0, a_file, a_line, {}, {});
    uint32_t fb = func(0x20, n_b, b_sp, b_file, b_line, {0, 0, b_inl}, {~0u, ~0u, ~0u, 0});
    set32(pcln, 0, 0x00); set32(pcln, 4, fa);
    set32(pcln, 8, 0x20); set32(pcln, 12, fb);
    set32(pcln, 16, 0x60); set32(pcln, 20, 0);

    // inlinedCall (1.20+): funcID u8, _ [3]u8, nameOff i32, parentPc i32, startLine i32.
    gofunc = {0, 0, 0, 0};
    put32(gofunc, n_inl); put32(gofunc, 0x08); put32(gofunc, 29);

    tab.resize(72);
    set32(tab, 0, 0xfffffff1u);
    tab[6] = 1; tab[7] = 8;
    set64(tab, 8, 2);  // nfunc
    set64(tab, 16, 2); // nfiles
    set64(tab, 24, 0); // textStart: 0 as in Go 1.26
    for (auto [field, part] : std::vector<std::pair<size_t, Buf*>>{{32, &names}, {40, &cutab}, {48, &files}, {56, &pctab}, {64, &pcln}}) {
      set64(tab, field, tab.size());
      if (field == 64) pcln_off = tab.size();
      tab.insert(tab.end(), part->begin(), part->end());
    }
    func_b_off = pcln_off + fb;
    md.text = RemoteAddr(kText);
    md.gofunc = RemoteAddr(0x500000);
  }
  GoVersion version() const { return *GoVersion::parse("go1.26.1"); }
  Result<std::unique_ptr<Pclntab>> load() const { return Pclntab::from_bytes(Bytes(tab), md, version(), Bytes(gofunc)); }
};

}  // namespace

TEST_CASE("decode_pcvalue: runs, multi-byte varints, end of table") {
  Buf b = {0xee};  // junk before the table: offsets are relative to the whole pctab
  uint32_t off = uint32_t(b.size());
  pcvalue_table(b, {{5, 0x10}, {300, 0x200}, {-7, 3}});  // 300 and 0x200 need 2-byte varints
  Bytes t(b);
  CHECK(decode_pcvalue(t, off, 0x1000, 0x1000).value == 5);
  CHECK(decode_pcvalue(t, off, 0x1000, 0x100f).value == 5);
  CHECK(decode_pcvalue(t, off, 0x1000, 0x1010).value == 300);
  CHECK(decode_pcvalue(t, off, 0x1000, 0x120f).value == 300);
  CHECK(decode_pcvalue(t, off, 0x1000, 0x1210).value == -7);
  CHECK(decode_pcvalue(t, off, 0x1000, 0x1212).value == -7);
  // Past the table's end: -1, like runtime.pcvalue; not an error.
  auto past = decode_pcvalue(t, off, 0x1000, 0x1213);
  CHECK(past.status == PcValue::kOk);
  CHECK(past.value == -1);
  // Offset 0 = no table.
  CHECK(decode_pcvalue(t, 0, 0x1000, 0x1000).value == -1);
  // Quantum multiplies pc deltas.
  CHECK(decode_pcvalue(t, off, 0x1000, 0x101f, 2).value == 5);
  CHECK(decode_pcvalue(t, off, 0x1000, 0x1020, 2).value == 300);
}

TEST_CASE("decode_pcvalue: a zero first value delta is a real entry, not the end") {
  Buf b = {0};
  pcvalue_table(b, {{-1, 8}, {4, 8}});  // first delta 0 (value stays -1)
  CHECK(decode_pcvalue(Bytes(b), 1, 0, 0).value == -1);
  CHECK(decode_pcvalue(Bytes(b), 1, 0, 8).value == 4);
}

TEST_CASE("decode_pcvalue: truncated or out-of-range tables are kCorrupt with the offset") {
  Buf b = {0, 0x96};  // a varint continuation byte, then the end of the buffer
  auto r = decode_pcvalue(Bytes(b), 1, 0, 5);
  CHECK(r.status == PcValue::kCorrupt);
  CHECK(r.bad_offset == 2);
  auto far = decode_pcvalue(Bytes(b), 100, 0, 5);
  CHECK(far.status == PcValue::kCorrupt);
  CHECK(far.bad_offset == 100);
  Buf c = {0, 2, 0x10};  // value delta, pc delta, then no terminator and no more bytes
  CHECK(decode_pcvalue(Bytes(c), 1, 0, 0x10).status == PcValue::kCorrupt);
  CHECK(decode_pcvalue(Bytes(c), 1, 0, 0x0f).value == 0);
}

TEST_CASE("decode_pcvalue: values wrap at 32 bits as in the Go runtime (no signed overflow)") {
  // Found by tests/fuzz/fuzz_pclntab under UBSan: a value delta that steps past INT32_MAX.
  Buf b = {0};
  uvarint(b, 0xfffffffe);  // zig-zag +INT32_MAX: -1 -> 2147483646
  uvarint(b, 1);
  uvarint(b, 4);           // +2: wraps to INT32_MIN, like runtime.pcvalue's int32 add
  uvarint(b, 1);
  b.push_back(0);
  CHECK(decode_pcvalue(Bytes(b), 1, 0, 0).value == 2147483646);
  CHECK(decode_pcvalue(Bytes(b), 1, 0, 1).value == INT32_MIN);
}

TEST_CASE("function table search and name lookup") {
  Synthetic s;
  auto t = s.load();
  REQUIRE_MESSAGE(t.ok(), (t.ok() ? "" : t.error().message));
  const Pclntab& p = **t;
  CHECK(p.magic() == 0xfffffff1u);
  CHECK(p.num_funcs() == 2);
  CHECK(p.text_start().value() == kText);
  CHECK(p.text_end().value() == kText + 0x60);
  CHECK_FALSE(p.find_func(RemoteAddr(kText - 1)));
  CHECK_FALSE(p.find_func(RemoteAddr(kText + 0x60)));
  for (uint64_t off : {0x0, 0x1, 0x1f}) CHECK(p.find_func(RemoteAddr(kText + off))->name == "main.a");
  for (uint64_t off : {0x20, 0x3f, 0x5f}) CHECK(p.find_func(RemoteAddr(kText + off))->name == "main.b");
  auto b = p.find_func("main.b");
  REQUIRE(b);
  CHECK(b->entry.value() == kText + 0x20);
  CHECK(b->end.value() == kText + 0x60);
  CHECK(b->index == 1);
  CHECK_FALSE(p.find_func("main.inl"));  // inlined only: not in the function table
  CHECK(p.func(0).name == "main.a");
  CHECK(p.func(5).name.empty());
}

TEST_CASE("symbolize: file:line and inline expansion like runtime.CallersFrames") {
  Synthetic s;
  auto t = s.load();
  REQUIRE(t.ok());
  const Pclntab& p = **t;
  auto a = p.symbolize(RemoteAddr(kText + 0x12));
  REQUIRE(a.ok());
  REQUIRE(a->size() == 1);
  CHECK((*a)[0].function == "main.a");
  CHECK((*a)[0].file == "a.go");
  CHECK((*a)[0].line == 11);
  CHECK_FALSE((*a)[0].inlined);

  auto in = p.symbolize(RemoteAddr(kText + 0x20 + 0x18));
  REQUIRE(in.ok());
  REQUIRE(in->size() == 2);
  CHECK((*in)[0].function == "main.inl");
  CHECK((*in)[0].file == "b.go");
  CHECK((*in)[0].line == 30);  // the callee's line: pcln at the PC itself
  CHECK((*in)[0].inlined);
  CHECK((*in)[1].function == "main.b");
  CHECK((*in)[1].line == 20);  // the call site: pcln at entry+parentPc
  CHECK_FALSE((*in)[1].inlined);

  auto raw = p.line_at(RemoteAddr(kText + 0x20 + 0x18));  // what go tool addr2line shows
  REQUIRE(raw.ok());
  CHECK(raw->function == "main.b");
  CHECK(raw->line == 30);

  auto none = p.symbolize(RemoteAddr(0x1000));
  REQUIRE(none.ok());
  CHECK(none->empty());

  CHECK(p.sp_delta(RemoteAddr(kText + 0x20)).value() == 0);
  CHECK(p.sp_delta(RemoteAddr(kText + 0x30)).value() == 24);

  auto ranges = p.inlined_ranges(*p.find_func("main.b"));
  REQUIRE(ranges.ok());
  REQUIRE(ranges->size() == 1);
  CHECK((*ranges)[0].lo.value() == kText + 0x30);
  CHECK((*ranges)[0].hi.value() == kText + 0x40);
  CHECK((*ranges)[0].callee == "main.inl");
  CHECK((*ranges)[0].depth == 1);
}

TEST_CASE("without gofunc bytes there is no inline expansion, the rest still works") {
  Synthetic s;
  auto t = Pclntab::from_bytes(Bytes(s.tab), s.md, s.version(), Bytes{});
  REQUIRE(t.ok());
  auto in = (*t)->symbolize(RemoteAddr(kText + 0x38));
  REQUIRE(in.ok());
  REQUIRE(in->size() == 1);
  CHECK((*in)[0].function == "main.b");
  CHECK((*in)[0].line == 30);
}

TEST_CASE("corrupt headers are rejected with kBadInput naming the problem") {
  Synthetic s;
  auto load = [&](const Buf& tab) { return Pclntab::from_bytes(Bytes(tab), s.md, s.version(), Bytes(s.gofunc)); };
  {
    Buf t(s.tab.begin(), s.tab.begin() + 40);
    auto r = load(t);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::kBadInput);
    CHECK(r.error().message.find("truncated pcHeader") != std::string::npos);
  }
  {
    Buf t = s.tab;
    set32(t, 0, 0xfffffffbu);  // Go 1.2-1.15
    auto r = load(t);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::kUnsupported);
    CHECK(r.error().message.find("0xfffffffb") != std::string::npos);
  }
  {
    Buf t = s.tab;
    set32(t, 0, 0xfffffff0u);  // 1.18/1.19 magic in a binary that says 1.26
    CHECK_FALSE(load(t).ok());
  }
  {
    Buf t = s.tab;
    set64(t, 8, 1000000);  // nfunc far beyond the table
    auto r = load(t);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("nfunc 1000000") != std::string::npos);
  }
  {
    Buf t = s.tab;
    set64(t, 56, t.size() + 10);  // pctabOffset outside
    auto r = load(t);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("outside") != std::string::npos);
  }
  {
    Buf t = s.tab;
    set32(t, s.pcln_off + 8, 0x70);  // entry of f1 after the end sentinel: unsorted
    auto r = load(t);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("not sorted") != std::string::npos);
  }
}

TEST_CASE("corrupt per-function data gives an error at lookup, not a crash") {
  Synthetic s;
  {
    Buf t = s.tab;
    set32(t, s.pcln_off + 12, 0x7fffff00);  // funcoff of main.b far outside pclntable
    auto p = Pclntab::from_bytes(Bytes(t), s.md, s.version(), Bytes(s.gofunc));
    REQUIRE(p.ok());
    auto r = (*p)->symbolize(RemoteAddr(kText + 0x20));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::kBadInput);
    CHECK(r.error().message.find("0x7fffff00") != std::string::npos);
    CHECK((*p)->symbolize(RemoteAddr(kText)).ok());  // main.a is intact
    CHECK((*p)->func(1).name.empty());                // no name rather than garbage
  }
  {
    Buf t = s.tab;
    set32(t, s.func_b_off + 24, 0x7fff0000);  // pcln offset of main.b outside the pctab
    auto p = Pclntab::from_bytes(Bytes(t), s.md, s.version(), Bytes(s.gofunc));
    REQUIRE(p.ok());
    auto r = (*p)->symbolize(RemoteAddr(kText + 0x20));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("pcln") != std::string::npos);
  }
  {
    Buf g = s.gofunc;
    g.resize(10);  // inline tree cut short
    auto p = Pclntab::from_bytes(Bytes(s.tab), s.md, s.version(), Bytes(g));
    REQUIRE(p.ok());
    auto r = (*p)->symbolize(RemoteAddr(kText + 0x38));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("inline tree") != std::string::npos);
  }
  {
    Buf g = s.gofunc;
    set32(g, 8, 0x18);  // parentPc points back into the inlined range: a cycle
    auto p = Pclntab::from_bytes(Bytes(s.tab), s.md, s.version(), Bytes(g));
    REQUIRE(p.ok());
    auto r = (*p)->symbolize(RemoteAddr(kText + 0x38));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("cycle") != std::string::npos);
  }
}

TEST_CASE("every truncation and random corruption: an error or an answer, never a crash") {
  Synthetic s;
  size_t loaded = 0;
  for (size_t n = 0; n <= s.tab.size(); n++) {
    Buf t(s.tab.begin(), s.tab.begin() + n);  // a heap block of exactly N bytes: in gort_unit_tests_asan
                                              // (scripts/build-fuzz) ASan reports any read past N
    auto p = Pclntab::from_bytes(Bytes(t), s.md, s.version(), Bytes(s.gofunc));
    if (!p) continue;
    loaded++;
    for (uint64_t pc = kText - 1; pc <= kText + 0x61; pc++) (void)(*p)->symbolize(RemoteAddr(pc));
  }
  CHECK(loaded >= 1);  // the full table at least
  std::mt19937 rng(42);
  for (int iter = 0; iter < 3000; iter++) {
    Buf t = s.tab, g = s.gofunc;
    for (int k = 0; k < 4; k++) {
      size_t at = rng() % (t.size() - 72) + 72;  // keep the header mostly sane to reach the deep paths
      t[at] = uint8_t(rng());
    }
    if (iter % 3 == 0) g[rng() % g.size()] = uint8_t(rng());
    auto p = Pclntab::from_bytes(Bytes(t), s.md, s.version(), Bytes(g));
    if (!p) continue;
    for (uint64_t pc = kText; pc < kText + 0x60; pc += 3) {
      (void)(*p)->symbolize(RemoteAddr(pc));
      (void)(*p)->sp_delta(RemoteAddr(pc));
    }
    for (size_t i = 0; i < (*p)->num_funcs(); i++) (void)(*p)->inlined_ranges((*p)->func(i));
    (void)(*p)->find_func("main.b");
  }
}
