// The gort trace file (docs/trace-format.md): round trips, every corruption and
// truncation the reader must name by offset, --partial, size per event, decode speed, and
// goroutine-id resolution.
#include "core/trace/codec.h"
#include "core/trace/crc32.h"
#include "core/trace/synthetic.h"
#include "core/trace/trace.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace gort::core;
using namespace gort::core::trace;

namespace {

/// A file under the test's temp dir, removed at scope exit.
struct TempFile {
  std::string path;
  explicit TempFile(const char* name) {
    path = fmt::format("{}/gort-test-{}-{}.gort", std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp", getpid(), name);
  }
  ~TempFile() { std::remove(path.c_str()); }
};

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

Header test_header() {
  Header h;
  h.executable = "/srv/bin/server";
  h.build_id = "abc/def";
  h.go_version = "go1.26.8";
  h.map_impl = "swiss";
  h.slide = 0x7f0000000000;
  h.pid = 31337;
  h.command = {"/srv/bin/server", "--port", "8080", "ünïcode"};
  h.start_ns = 5'000'000'000;
  h.stack_depth = 16;
  h.sites = {{SiteKind::kEntry, "runtime.mapassign_fast64", "assign", 0x40e000, "hw"},
             {SiteKind::kWriteBegin, "runtime.mapassign_fast64", "assign", 0x40e0a3, "hw"},
             {SiteKind::kWriteEnd, "runtime.mapassign_fast64", "assign", 0x40e2f1, "hw"},
             {SiteKind::kReturn, "runtime.mapassign_fast64", "assign", 0x40e300, "uprobe"},
             {SiteKind::kThrow, "runtime.fatal", "", 0x43a000, "uprobe"},
             {SiteKind::kGoStart, "runtime.newproc1", "", 0x44a1c0, "uprobe"},
             {SiteKind::kGoExit, "runtime.goexit0", "", 0x44c020, "uprobe"}};
  return h;
}

Summary test_summary() {
  Summary s;
  s.end_ns = 9'000'000'000;
  s.lost = 3;
  s.filtered = 12;
  s.end_reason = "target exited (status 0)";
  s.warnings = {"runtime.mapclone: no probe placed"};
  return s;
}

/// Events at the edges of every field, in an order that defeats "same as before".
std::vector<Event> edge_events(const Header& h) {
  std::vector<Event> v;
  Event e;
  e.time_ns = h.start_ns;  // zero everything else
  v.push_back(e);
  e = Event{UINT64_MAX, 6, UINT32_MAX, UINT32_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, {UINT64_MAX, 0, 1}};
  v.push_back(e);
  e = Event{0, 1, 1, 0, 0xc000006000, 0, 0xc000100000, 0, {0x40e0a3, 0x4a0000}};  // time before start
  v.push_back(e);
  e.time_ns = h.start_ns + 10;
  e.key = uint64_t(-1);  // int64 key -1
  v.push_back(e);
  e.time_ns = h.start_ns + 5;  // backwards in time
  e.key = 0;
  e.stack = {0x40e0a3};
  v.push_back(e);
  e.key = uint64_t(INT64_MIN);
  e.stack.assign(codec::kMaxStackFrames, 0);
  for (size_t i = 0; i < e.stack.size(); i++) e.stack[i] = 0x400000 + i * 0x1234567 * (i % 2 ? 1 : 7);
  v.push_back(e);
  e = Event{h.start_ns + 20, 5, 77, 3, 0xc000006000, 1, 0, std::nullopt, {}};  // go-start
  v.push_back(e);
  e.time_ns += 1;
  e.site = 0;
  e.goid = 0;
  e.map = 0xc000100000;  // same tid: only the map changes
  v.push_back(e);
  return v;
}

/// A realistic stream: N events of the synthetic program.
std::vector<Event> synthetic(size_t n, SyntheticOptions o = {}) {
  SyntheticStream s(o);
  std::vector<Event> v(n);
  for (auto& e : v) s.next(e);
  return v;
}

void write_trace(const std::string& path, const Header& h, const std::vector<Event>& events, bool finish = true) {
  auto w = Writer::create(path, h);
  REQUIRE_MESSAGE(w.ok(), w.error().message);
  for (auto& e : events) REQUIRE(w->add(e).ok());
  if (finish) REQUIRE(w->finish(test_summary()).ok());
}

struct ReadAll {
  bool ok = false;
  std::string error;
  std::vector<Event> events;
  std::optional<Summary> summary;
};
ReadAll read_all(const std::string& path, bool partial = false) {
  ReadAll out;
  auto r = Reader::open(path, partial);
  if (!r) {
    out.error = r.error().message;
    return out;
  }
  Event e;
  for (;;) {
    auto more = r->next(e);
    if (!more) {
      out.error = more.error().message;
      return out;
    }
    if (!*more) break;
    out.events.push_back(e);
  }
  out.summary = r->summary();
  out.ok = true;
  return out;
}

struct Record {
  size_t offset;
  uint32_t tag, length, count;
};
/// The records of a well-formed trace, walked the way docs/trace-format.md describes.
std::vector<Record> records(const std::vector<uint8_t>& b) {
  std::vector<Record> out;
  size_t off = codec::kPreambleSize;
  while (off + codec::kRecordHeaderSize <= b.size()) {
    Record r{off, 0, 0, 0};
    std::memcpy(&r.tag, &b[off], 4);
    std::memcpy(&r.length, &b[off + 4], 4);
    std::memcpy(&r.count, &b[off + 8], 4);
    out.push_back(r);
    off += codec::kRecordHeaderSize + r.length;
  }
  return out;
}
std::vector<Record> blocks_of(const std::vector<uint8_t>& b) {
  std::vector<Record> out;
  for (auto& r : records(b))
    if (r.tag == codec::kTagEvents) out.push_back(r);
  return out;
}

/// Recomputes the checksum of the record at OFF after a test edited it.
void reseal(std::vector<uint8_t>& b, size_t off) {
  uint32_t len;
  std::memcpy(&len, &b[off + 4], 4);
  uint32_t crc = crc32_update(crc32_update(0, &b[off], 12), &b[off + 16], len);
  std::memcpy(&b[off + 12], &crc, 4);
}

/// A trace whose only block has PAYLOAD (COUNT events), sealed with a valid checksum.
std::vector<uint8_t> trace_with_block(const std::string& path, const std::vector<uint8_t>& payload, uint32_t count) {
  write_trace(path, test_header(), {Event{}});
  auto b = read_bytes(path);
  auto blk = blocks_of(b).at(0);
  std::vector<uint8_t> out(b.begin(), b.begin() + long(blk.offset));
  std::vector<uint8_t> rec(16, 0);
  std::memcpy(&rec[0], &codec::kTagEvents, 4);
  uint32_t len = uint32_t(payload.size());
  std::memcpy(&rec[4], &len, 4);
  std::memcpy(&rec[8], &count, 4);
  rec.insert(rec.end(), payload.begin(), payload.end());
  out.insert(out.end(), rec.begin(), rec.end());
  reseal(out, blk.offset);
  // The summary must count COUNT events: rewrite it.
  auto sum = records(b).back();
  std::string json = fmt::format(R"({{"events":{}}})", count);
  std::vector<uint8_t> srec(16, 0);
  std::memcpy(&srec[0], &codec::kTagSummary, 4);
  uint32_t slen = uint32_t(json.size());
  std::memcpy(&srec[4], &slen, 4);
  srec.insert(srec.end(), json.begin(), json.end());
  size_t soff = out.size();
  out.insert(out.end(), srec.begin(), srec.end());
  reseal(out, soff);
  (void)sum;
  write_bytes(path, out);
  return out;
}

}  // namespace

TEST_CASE("trace crc32 is zlib's") {
  CHECK(crc32_update(0, "123456789", 9) == 0xCBF43926u);
  CHECK(crc32_update(0, "", 0) == 0);
  const char* s = "The quick brown fox jumps over the lazy dog";
  CHECK(crc32_update(0, s, std::strlen(s)) == 0x414FA339u);
  CHECK(crc32_update(crc32_update(0, s, 10), s + 10, std::strlen(s) - 10) == 0x414FA339u);  // incremental
}

TEST_CASE("trace varints and zigzag round trip at the edges") {
  for (uint64_t v : std::vector<uint64_t>{0, 1, 127, 128, 16383, 16384, 1ull << 56, UINT64_MAX - 1, UINT64_MAX}) {
    uint8_t buf[10];
    uint8_t* end = codec::put_uvarint(buf, v);
    const uint8_t* p = buf;
    uint64_t out = 0;
    REQUIRE(codec::get_uvarint(p, end, out));
    CHECK(out == v);
    CHECK(p == end);
    p = buf;
    CHECK_FALSE(codec::get_uvarint(p, end - 1, out));  // overrun
  }
  for (int64_t v : {int64_t(0), int64_t(-1), int64_t(1), INT64_MIN, INT64_MAX}) CHECK(codec::unzigzag(codec::zigzag(v)) == v);
  uint8_t eleven[11];
  std::memset(eleven, 0xff, sizeof eleven);
  const uint8_t* p = eleven;
  uint64_t out;
  CHECK_FALSE(codec::get_uvarint(p, eleven + 11, out));  // more than 64 bits
}

TEST_CASE("trace site kinds have names both ways") {
  for (int k = 1; k <= 7; k++) {
    auto kind = SiteKind(k);
    CHECK(parse_site_kind(to_string(kind)) == kind);
  }
  CHECK(std::string(to_string(SiteKind::kWriteBegin)) == "write-begin");
  CHECK(std::string(to_string(SiteKind(99))) == "unknown");
  CHECK_FALSE(parse_site_kind("bogus"));
}

TEST_CASE("trace round trip: header, edge-case events, a realistic stream, summary") {
  TempFile f("roundtrip");
  Header h = test_header();
  auto events = edge_events(h);
  SyntheticOptions o;
  o.stack_depth = 16;
  SyntheticStream s(o);
  for (int i = 0; i < 50000; i++) {
    Event e;
    s.next(e);
    e.site = e.site % uint32_t(h.sites.size());
    events.push_back(e);
  }
  auto tail = edge_events(h);  // again, mid-block, after other threads' state
  events.insert(events.end(), tail.begin(), tail.end());

  auto w = Writer::create(f.path, h);
  REQUIRE(w.ok());
  for (auto& e : events) REQUIRE(w->add(e).ok());
  CHECK(w->events() == events.size());
  REQUIRE(w->finish(test_summary()).ok());
  uint64_t written = w->bytes();
  CHECK(written == read_bytes(f.path).size());

  auto r = Reader::open(f.path);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(r->header() == h);
  CHECK(r->event_count() == events.size());
  CHECK(r->block_count() > 1);
  CHECK(r->notes().empty());
  Event e;
  size_t i = 0;
  for (;;) {
    auto more = r->next(e);
    REQUIRE_MESSAGE(more.ok(), more.error().message);
    if (!*more) break;
    REQUIRE(i < events.size());
    CHECK_MESSAGE(e == events[i], "event ", i);
    if (e != events[i]) break;
    i++;
  }
  CHECK(i == events.size());
  REQUIRE(r->summary());
  Summary want = test_summary();
  want.events = events.size();
  CHECK(*r->summary() == want);
  auto again = r->next(e);  // stays at the end
  CHECK((again.ok() && !*again));
}

TEST_CASE("trace round trip: no events, and the reader and writer move") {
  TempFile f("empty");
  {
    auto w = Writer::create(f.path, test_header());
    REQUIRE(w.ok());
    Writer moved = std::move(*w);
    REQUIRE(moved.finish(Summary{}).ok());
  }
  auto r = Reader::open(f.path);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  Reader moved = std::move(*r);
  Event e;
  auto more = moved.next(e);
  REQUIRE(more.ok());
  CHECK_FALSE(*more);
  REQUIRE(moved.summary());
  CHECK(moved.summary()->events == 0);
  CHECK(moved.block_count() == 0);
}

TEST_CASE("trace writer rejects what the reader could not read back") {
  TempFile f("bad-writer");
  auto w = Writer::create(f.path, test_header());
  REQUIRE(w.ok());
  Event e;
  e.site = 7;
  auto r = w->add(e);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("site index 7 out of range (the header has 7 sites)") != std::string::npos);
  e.site = 0;
  e.stack.assign(codec::kMaxStackFrames + 1, 1);
  CHECK_FALSE(w->add(e).ok());
  REQUIRE(w->finish(Summary{}).ok());
  CHECK_FALSE(w->add(Event{}).ok());
  CHECK_FALSE(w->finish(Summary{}).ok());

  auto bad = Writer::create("/nonexistent-dir/x.gort", test_header());
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind == ErrorKind::kIo);
  CHECK(bad.error().message.find("/nonexistent-dir/x.gort: cannot create the trace") == 0);
}

TEST_CASE("trace flush() closes a block; a writer destroyed without finish() leaves complete blocks") {
  TempFile f("killed");
  auto events = synthetic(300);
  {
    auto w = Writer::create(f.path, SyntheticStream().header());
    REQUIRE(w.ok());
    for (size_t i = 0; i < 100; i++) REQUIRE(w->add(events[i]).ok());
    REQUIRE(w->flush().ok());
    REQUIRE(w->flush().ok());  // nothing buffered: no empty block
    CHECK(w->bytes() == read_bytes(f.path).size());
    for (size_t i = 100; i < 300; i++) REQUIRE(w->add(events[i]).ok());
  }  // no finish(): the recorder was killed
  auto b = read_bytes(f.path);
  CHECK(blocks_of(b).size() == 2);

  auto strict = read_all(f.path);
  CHECK_FALSE(strict.ok);
  CHECK(strict.error == fmt::format("{}: trace cut short at offset {}: no summary (was gort record killed?); pass "
                                    "--partial to read the 2 complete blocks",
                                    f.path, b.size()));
  auto partial = read_all(f.path, true);
  REQUIRE_MESSAGE(partial.ok, partial.error);
  CHECK(partial.events == events);
  CHECK_FALSE(partial.summary);
}

TEST_CASE("trace reader: not a trace, unsupported version, bad header") {
  TempFile f("magic");
  write_bytes(f.path, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n', 'x', 'y', 'z', '!', '!', '!'});
  auto r = Reader::open(f.path);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == f.path + ": offset 0: not a gort trace (no GORTTRC magic)");
  CHECK(r.error().kind == ErrorKind::kBadInput);

  write_bytes(f.path, {});
  r = Reader::open(f.path);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == f.path + ": offset 0: not a gort trace (the file is empty)");

  write_trace(f.path, test_header(), synthetic(10));
  auto b = read_bytes(f.path);
  b[8] = 3;  // version 3
  write_bytes(f.path, b);
  r = Reader::open(f.path);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind == ErrorKind::kUnsupported);
  CHECK(r.error().message == f.path + ": offset 8: trace format version 3 is not supported (this gort reads versions "
                                      "1 to 2); a newer gort may read it");

  b[8] = 1;  // version 1 traces are read (no map-create sites, no stack_map flag)
  write_bytes(f.path, b);
  r = Reader::open(f.path);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(r->header().version == 1);

  b[8] = 2;
  b[20] ^= 0x01;  // the header's checksum
  write_bytes(f.path, b);
  r = Reader::open(f.path);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == f.path + ": offset 12: header checksum mismatch (the file is corrupt)");

  r = Reader::open(f.path + ".missing");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == f.path + ".missing: no such file");
  r = Reader::open("/tmp");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "/tmp: is a directory, not a gort trace");
}

TEST_CASE("trace reader: a flipped byte in a block is a checksum mismatch at the block's offset") {
  TempFile f("flip");
  write_trace(f.path, SyntheticStream().header(), synthetic(30000));
  auto good = read_bytes(f.path);
  auto blocks = blocks_of(good);
  REQUIRE(blocks.size() >= 3);
  for (size_t bi : {size_t(0), size_t(1), blocks.size() - 1}) {
    for (size_t at : {size_t(16), size_t(17), size_t(blocks[bi].length / 2), size_t(blocks[bi].length + 15)}) {
      auto b = good;
      b[blocks[bi].offset + at] ^= 0x20;
      write_bytes(f.path, b);
      for (bool partial : {false, true}) {  // a complete trace: --partial drops no bad block
        auto res = read_all(f.path, partial);
        CHECK_FALSE(res.ok);
        CHECK(res.error == fmt::format("{}: offset {}: block checksum mismatch (the file is corrupt)", f.path, blocks[bi].offset));
      }
    }
  }
}

TEST_CASE("trace reader: every single flipped byte is an error that names an offset") {
  TempFile f("flip-all");
  SyntheticOptions o;
  o.stack_depth = 4;
  write_trace(f.path, SyntheticStream(o).header(), synthetic(400, o));
  auto good = read_bytes(f.path);
  for (size_t i = 0; i < good.size(); i++) {
    auto b = good;
    b[i] ^= 0x41;
    write_bytes(f.path, b);
    auto res = read_all(f.path);
    CHECK_MESSAGE(!res.ok, "flipping byte ", i, " went unnoticed");
    CHECK_MESSAGE(res.error.find("offset ") != std::string::npos, res.error);
  }
}

TEST_CASE("trace reader: truncation anywhere names the offset; --partial reads the complete blocks") {
  TempFile src("trunc-src");
  TempFile f("trunc");
  SyntheticOptions o;
  o.stack_depth = 8;
  o.unique_stacks = true;  // bigger blocks, fewer events per block
  auto events = synthetic(12000, o);
  write_trace(src.path, SyntheticStream(o).header(), events);
  auto good = read_bytes(src.path);
  auto recs = records(good);
  auto blocks = blocks_of(good);
  REQUIRE(blocks.size() >= 3);
  size_t first_block = blocks[0].offset;

  std::vector<size_t> cuts;
  for (size_t c = 0; c < first_block + 40; c++) cuts.push_back(c);  // every byte of the header
  for (auto& r : recs)
    for (long d : {-1L, 0L, 1L, 8L, 15L, 16L, 17L, 1000L}) cuts.push_back(size_t(long(r.offset) + d));
  for (size_t c = first_block; c < good.size(); c += 4093) cuts.push_back(c);
  cuts.push_back(good.size() - 1);

  for (size_t cut : cuts) {
    if (cut >= good.size()) continue;
    CAPTURE(cut);
    write_bytes(f.path, std::vector<uint8_t>(good.begin(), good.begin() + long(cut)));
    auto strict = read_all(f.path);
    CHECK_FALSE(strict.ok);
    CHECK_MESSAGE(strict.error.find("offset ") != std::string::npos, strict.error);
    auto partial = read_all(f.path, true);
    if (cut < first_block) {  // no complete header: nothing to read even with --partial
      CHECK_FALSE(partial.ok);
      bool header_cut = cut == 0 || strict.error.find("truncated header") != std::string::npos;
      CHECK_MESSAGE(header_cut, strict.error);
      continue;
    }
    // The blocks that end at or before the cut, and the events they hold.
    size_t complete = 0, n_events = 0;
    for (auto& b : blocks)
      if (b.offset + 16 + b.length <= cut) complete++, n_events += b.count;
    CHECK(strict.error.find(fmt::format("trace cut short at offset {}", complete < blocks.size() ? blocks[complete].offset
                                                                                                 : recs.back().offset)) !=
          std::string::npos);
    CHECK(strict.error.find(fmt::format("pass --partial to read the {} complete block{}", complete, complete == 1 ? "" : "s")) !=
          std::string::npos);
    REQUIRE_MESSAGE(partial.ok, partial.error);
    CHECK_FALSE(partial.summary);
    REQUIRE(partial.events.size() == n_events);
    CHECK(std::equal(partial.events.begin(), partial.events.end(), events.begin()));
  }
}

TEST_CASE("trace reader: a block length past the end of the file") {
  TempFile f("len");
  write_trace(f.path, SyntheticStream().header(), synthetic(30000));
  auto b = read_bytes(f.path);
  auto blk = blocks_of(b).at(1);
  uint32_t huge = uint32_t(b.size());  // in range of kMaxRecordPayload, past the end
  std::memcpy(&b[blk.offset + 4], &huge, 4);
  write_bytes(f.path, b);
  auto res = read_all(f.path);
  CHECK(res.error == fmt::format("{}: trace cut short at offset {}: its {}-byte block runs past the end of the file ({} "
                                 "bytes), no summary (was gort record killed?); pass --partial to read the 1 complete block",
                                 f.path, blk.offset, huge, b.size()));
  uint32_t absurd = 0x7fffffff;
  std::memcpy(&b[blk.offset + 4], &absurd, 4);
  write_bytes(f.path, b);
  res = read_all(f.path, true);
  CHECK(res.error == fmt::format("{}: offset {}: 'EVNT' record length 2147483647 is implausible (the file is corrupt)",
                                 f.path, blk.offset));
}

TEST_CASE("trace reader: bad varints, out-of-range indices and counts inside a checksummed block") {
  TempFile f("payload");
  using namespace codec;
  auto check = [&](std::vector<uint8_t> payload, uint32_t count, const std::string& want) {
    auto b = trace_with_block(f.path, payload, count);
    size_t blk = blocks_of(b).at(0).offset;
    auto res = read_all(f.path);
    CHECK_FALSE(res.ok);
    std::string w = fmt::format(fmt::runtime(want), blk, blk + 16);
    CHECK_MESSAGE(res.error.find(w) != std::string::npos, res.error, " wants ", w);
  };
  // flags, time, site, thread index, tid
  std::vector<uint8_t> ok = {kFlagTid, 0, 1, 0, 42};
  {
    trace_with_block(f.path, ok, 1);
    auto res = read_all(f.path);
    REQUIRE_MESSAGE(res.ok, res.error);
    CHECK(res.events.size() == 1);
    CHECK(res.events[0].tid == 42);
    CHECK(res.events[0].site == 1);
  }
  check({kFlagTid, 0, 9, 0, 42}, 1,
        "offset {1}: site index 9 out of range (the header has 7 sites) in event 0 of the block at offset {0}");
  std::vector<uint8_t> bad_time = {kFlagTid, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  check(bad_time, 1, "offset {1}: bad varint (time) in event 0 of the block at offset {0}");
  check({kFlagTid, 0, 1, 0x80}, 1, "offset {1}: bad varint (thread) in event 0");
  check({kFlagTid, 0, 1, 3, 42}, 1, "offset {1}: thread index out of range in event 0");
  check({0, 0, 1}, 1, "offset {1}: no thread in event 0");
  check({kFlagTid | kFlagG, 0, 1, 0, 42, 5}, 1, "offset {1}: bad g (varint or table index) in event 0");
  check({kFlagTid | kFlagStack, 0, 1, 0, 42, 0, 0}, 1, "bad stack (varint, table index or frame count)");  // 0 frames
  {
    trace_with_block(f.path, {kFlagTid | kFlagStackMap, 0, 1, 0, 42}, 1);
    auto res = read_all(f.path);
    REQUIRE_MESSAGE(res.ok, res.error);
    CHECK(res.events.at(0).stack_map);
    auto b = read_bytes(f.path);
    b[8] = 1;  // the flag did not exist in version 1
    write_bytes(f.path, b);
    res = read_all(f.path);
    CHECK_FALSE(res.ok);
    CHECK_MESSAGE(res.error.find("event flag 0x80 in a version 1 trace in event 0") != std::string::npos, res.error);
  }
  check(ok, 2, "block ends before its event count in event 1");
  auto two = ok;
  two.push_back(0);
  check(two, 1, "1 bytes after the last of the 1 events of the block at offset {0}");
}

TEST_CASE("trace decoder: random damage behind a valid checksum is an error or other events, never a crash") {
  TempFile f("fuzz");
  SyntheticOptions o;
  o.stack_depth = 6;
  write_trace(f.path, SyntheticStream(o).header(), synthetic(600, o));
  auto good = read_bytes(f.path);
  auto blk = blocks_of(good).at(0);
  uint64_t state = 12345;
  auto rnd = [&] { return (state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  int errors = 0;
  for (int i = 0; i < 3000; i++) {
    auto b = good;
    for (int k = 0, n = 1 + int(rnd() % 4); k < n; k++) b[blk.offset + 16 + rnd() % blk.length] = uint8_t(rnd());
    reseal(b, blk.offset);  // a writer bug, not bit rot: only the decoder's checks stand
    write_bytes(f.path, b);
    auto res = read_all(f.path);
    if (!res.ok) {
      errors++;
      CHECK_MESSAGE(res.error.find(fmt::format("offset ")) != std::string::npos, res.error);
      CHECK_MESSAGE(res.error.find("(the file is corrupt)") != std::string::npos, res.error);
    }
  }
  CHECK(errors > 0);
}

TEST_CASE("trace reader: summary checks, trailing bytes, unknown records") {
  TempFile f("summary");
  write_trace(f.path, SyntheticStream().header(), synthetic(1000));
  auto good = read_bytes(f.path);
  auto sum = records(good).back();
  REQUIRE(sum.tag == codec::kTagSummary);

  auto b = good;
  b[sum.offset + 20] ^= 1;
  write_bytes(f.path, b);
  CHECK(read_all(f.path).error == fmt::format("{}: offset {}: summary checksum mismatch (the file is corrupt)", f.path, sum.offset));

  b = good;
  b.push_back(0);
  write_bytes(f.path, b);
  CHECK(read_all(f.path).error == fmt::format("{}: offset {}: 1 bytes after the summary (the file is corrupt)", f.path, good.size()));

  // A record from a newer writer, with a valid checksum, is skipped; with a bad one it is corruption.
  b.assign(good.begin(), good.begin() + long(sum.offset));
  std::vector<uint8_t> rec = {'I', 'N', 'D', 'X', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c'};
  b.insert(b.end(), rec.begin(), rec.end());
  reseal(b, sum.offset);
  b.insert(b.end(), good.begin() + long(sum.offset), good.end());
  write_bytes(f.path, b);
  auto res = read_all(f.path);
  CHECK_MESSAGE(res.ok, res.error);
  CHECK(res.events.size() == 1000);
  b[sum.offset + 17] ^= 1;
  write_bytes(f.path, b);
  CHECK(read_all(f.path).error == fmt::format("{}: offset {}: bad record tag 'INDX' (the file is corrupt)", f.path, sum.offset));

  // The summary's event count must match the blocks'.
  auto one = blocks_of(good).at(0);
  b = good;
  uint32_t count = one.count + 1;
  std::memcpy(&b[one.offset + 8], &count, 4);
  write_bytes(f.path, b);
  CHECK(read_all(f.path).error.find("the summary counts 1000 events but the blocks hold 1001") != std::string::npos);
}

TEST_CASE("trace --partial drops a torn last block whose pages never reached the disk") {
  TempFile f("zeroed");
  auto events = synthetic(30000);
  write_trace(f.path, SyntheticStream().header(), events, /*finish=*/false);
  auto b = read_bytes(f.path);
  auto blocks = blocks_of(b);
  auto last = blocks.back();
  std::fill(b.begin() + long(last.offset + 16 + last.length / 2), b.end(), 0);  // a crash, not a kill
  write_bytes(f.path, b);
  auto res = read_all(f.path, true);
  REQUIRE_MESSAGE(res.ok, res.error);
  CHECK(res.events.size() == events.size() - last.count);
  auto r = Reader::open(f.path, true);
  REQUIRE(r.ok());
  Event e;
  while (r->next(e).value_or(false)) {
  }
  REQUIRE(r->notes().size() == 2);  // no summary; then, once read, the dropped block
  CHECK(r->notes()[0].find(fmt::format("trace cut short at offset {}: no summary", b.size())) == 0);
  CHECK(r->notes()[1].find(fmt::format("dropped the last block (offset {}", last.offset)) == 0);
}

TEST_CASE("trace size: bytes per event on a realistic stream") {
  TempFile f("size");
  auto measure = [&](SyntheticOptions o) {
    write_trace(f.path, SyntheticStream(o).header(), synthetic(100000, o));
    return double(read_bytes(f.path).size()) / 100000;
  };
  SyntheticOptions o;  // 4 threads, 2 maps, 0.2-3 µs gaps
  double plain = measure(o);
  MESSAGE(fmt::format("no stacks: {:.2f} bytes/event", plain));
  CHECK(plain < 48);
  CHECK(plain < 20);  // the aim; the encoding gives ~7
  o.stack_depth = 16;
  double stacks = measure(o);
  MESSAGE(fmt::format("16-frame stacks from 8 call paths per goroutine: {:.2f} bytes/event", stacks));
  CHECK(stacks < 48);
  o.unique_stacks = true;
  double unique = measure(o);
  MESSAGE(fmt::format("16-frame stacks, every one different: {:.2f} bytes/event", unique));
  CHECK(unique < 16 * 10);
}

TEST_CASE("trace speed: decode and read events per second") {
  TempFile f("speed");
  const size_t n = 2'000'000;
  SyntheticOptions o;
  {
    auto w = Writer::create(f.path, SyntheticStream(o).header());
    REQUIRE(w.ok());
    SyntheticStream s(o);
    Event e;
    auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < n; i++) {
      s.next(e);
      REQUIRE(w->add(e).ok());
    }
    REQUIRE(w->finish(Summary{}).ok());
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE(fmt::format("generate + write: {:.1f} M events/s", n / secs / 1e6));
  }
  auto t0 = std::chrono::steady_clock::now();
  auto r = Reader::open(f.path);
  REQUIRE(r.ok());
  Event e;
  size_t got = 0;
  while (r->next(e).value_or(false)) got++;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(got == n);
  MESSAGE(fmt::format("read (open + checksum + decode): {:.1f} M events/s", n / secs / 1e6));

  // Decode alone: every block already in memory and checksummed.
  auto b = read_bytes(f.path);
  codec::BlockDecoder dec(r->header());
  auto blocks = blocks_of(b);
  t0 = std::chrono::steady_clock::now();
  got = 0;
  for (auto& blk : blocks) {
    dec.reset(b.data() + blk.offset + 16, b.data() + blk.offset + 16 + blk.length, blk.offset, blk.count);
    while (dec.next(e) > 0) got++;
  }
  secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(got == n);
  MESSAGE(fmt::format("decode alone: {:.1f} M events/s", n / secs / 1e6));
#ifdef NDEBUG
  CHECK(n / secs > 2e6);  // the floor for a slow VM; unoptimised builds are exempt
#endif
}

TEST_CASE("trace resolve_goids: go-start names the g, go-exit ends it, g reuse") {
  Header h = test_header();  // site 5 go-start, 6 go-exit, 1 write-begin
  const uint64_t g1 = 0xc000006000, g2 = 0xc0000061c0;
  std::vector<Event> ev = {
      {100, 1, 1, 0, g1, 0, 0xa, std::nullopt, {}},  // before any go-start: unknown
      {110, 5, 1, 0, g1, 7, 0, std::nullopt, {}},    // g1 runs goroutine 7
      {120, 1, 1, 0, g1, 0, 0xa, std::nullopt, {}},  // -> 7
      {125, 1, 2, 0, g2, 0, 0xa, std::nullopt, {}},  // g2 never started: unknown
      {130, 6, 1, 0, g1, 0, 0, std::nullopt, {}},    // goroutine 7 exits: the exit is 7's
      {140, 1, 1, 0, g1, 0, 0xa, std::nullopt, {}},  // g1 between goroutines: unknown
      {150, 5, 3, 0, g1, 9, 0, std::nullopt, {}},    // g1 reused by goroutine 9
      {160, 2, 1, 0, g1, 0, 0xa, std::nullopt, {}},  // -> 9
      {165, 2, 1, 0, g1, 4, 0xa, std::nullopt, {}},  // a goid the recorder knew stays
      {170, 1, 1, 0, 0, 0, 0xa, std::nullopt, {}},   // g unknown: stays 0
      {180, 5, 3, 0, g1, 0, 0, std::nullopt, {}},    // go-start without a goid: g1's 9 is over
      {190, 1, 1, 0, g1, 0, 0xa, std::nullopt, {}},  // unknown
  };
  resolve_goids(h, ev);
  std::vector<uint64_t> goids;
  for (auto& e : ev) goids.push_back(e.goid);
  CHECK(goids == std::vector<uint64_t>{0, 7, 7, 0, 7, 0, 9, 9, 4, 0, 0, 0});

  // On the synthetic stream every event of a g after its go-start gets that goroutine's id.
  auto syn = synthetic(20000);
  SyntheticStream s;
  resolve_goids(s.header(), syn);
  size_t starts = 0;
  for (auto& e : syn) starts += s.header().sites[e.site].kind == SiteKind::kGoStart;
  CHECK(starts > 0);
}
