// Heap scan records in a trace (gort record --dangling) and their analysis
// (core/analysis/dangling_trace.h): round trip, torn scan records, merging across GC
// cycles, and conversions matched to findings by target range and time.
#include "core/analysis/dangling_trace.h"
#include "core/trace/trace.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

using namespace gort::core;
using namespace gort::core::trace;
using nlohmann::json;

namespace {

std::string temp_path(const char* name) {
  return fmt::format("{}/gort-test-{}-{}.gort", std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp", getpid(), name);
}

Header dangling_header() {
  Header h;
  h.go_version = "go1.26.8";
  h.start_ns = 1'000;
  h.dangling = true;
  h.sites = {{SiteKind::kGcMarkTermination, "runtime.gcMarkTermination", "", 0x41a000, "uprobe"},
             {SiteKind::kConvert, "main.lookup", "convert", 0x4a0000, "uprobe"}};
  return h;
}

/// A scan as gort record writes it: findings of (holder, value, base, size) at TIME.
std::string scan_json(uint32_t cycle, uint64_t time, uint64_t mark,
                      std::vector<std::tuple<uint64_t, uint64_t, uint64_t, uint64_t>> fs, uint64_t pause = 5'000'000) {
  json arr = json::array();
  for (auto [holder, value, base, size] : fs)
    arr.push_back({{"kind", "dangling-pointer"},
                   {"holder", {{"kind", "heap"}, {"addr", fmt::format("{:#x}", holder)}, {"text", "heap object"},
                               {"referenced_from", json::array({"main.handles (.bss)"})}}},
                   {"target", {{"value", fmt::format("{:#x}", value)},
                               {"base", base ? json(fmt::format("{:#x}", base)) : json(nullptr)},
                               {"size", size}, {"state", "free"}}},
                   {"gc_cycle", cycle},
                   {"established_by", "free slot"}});
  return json{{"heap", {{"gc_cycles", cycle}}}, {"findings", arr}, {"stats", {{"bytes_scanned", 4096}, {"seconds", 0.001}}},
              {"notes", json::array()}, {"time_ns", time}, {"mark_ns", mark}, {"pause_ns", pause}}
      .dump();
}

Event convert(uint64_t t, uint64_t value) {
  Event e;
  e.time_ns = t;
  e.site = 1;
  e.key = value;
  e.goid = 1;
  e.stack = {0x4a0000, 0x4a1234};
  return e;
}

}  // namespace

TEST_CASE("trace heap scan records: round trip between event blocks, and read at open") {
  std::string path = temp_path("scans");
  auto h = dangling_header();
  {
    auto w = Writer::create(path, h);
    REQUIRE(w.ok());
    Event gc;
    gc.time_ns = 2'000;
    REQUIRE(w->add(gc).ok());
    REQUIRE(w->add_heap_scan(scan_json(1, 3'000, 2'000, {{0xc000010008, 0xc000020030, 0xc000020030, 48}})).ok());
    REQUIRE(w->add(convert(4'000, 0xc000020030)).ok());
    REQUIRE(w->add_heap_scan(scan_json(2, 5'000, 4'500, {})).ok());
    REQUIRE(w->finish(Summary{}).ok());
  }
  auto r = Reader::open(path);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  REQUIRE(r->heap_scans().size() == 2);
  CHECK(json::parse(r->heap_scans()[0])["heap"]["gc_cycles"] == 1);
  Event e;
  int n = 0;
  while (*r->next(e)) n++;
  CHECK(n == 2);
  CHECK(r->summary()->events == 2);
  CHECK(parse_site_kind("gc-mark-termination") == SiteKind::kGcMarkTermination);
  CHECK(parse_site_kind("convert") == SiteKind::kConvert);

  // A scan record torn by a kill: an error naming it, or dropped with --partial.
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  auto cut = std::string(bytes.begin(), bytes.end()).find("HSCN");
  REQUIRE(cut != std::string::npos);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(cut + 40));
  }
  auto bad = Reader::open(path);
  CHECK_FALSE(bad.ok());
  auto partial = Reader::open(path, true);
  REQUIRE(partial.ok());
  CHECK(partial->heap_scans().empty());
  std::remove(path.c_str());
}

TEST_CASE("dangling trace: findings merge across cycles; conversions match by range and time") {
  auto h = dangling_header();
  std::vector<std::string> scans = {
      scan_json(3, 10'000, 9'000, {{0xc000010008, 0xc000020030, 0xc000020030, 48}}),
      // the same holder word and value again, plus a second holder of an interior pointer
      scan_json(4, 20'000, 19'000,
                {{0xc000010008, 0xc000020030, 0xc000020030, 48}, {0xc000010010, 0xc000020040, 0xc000020030, 48},
                 {0xc000010018, 0xc000900000, 0, 0}},
                9'000'000),
  };
  // A later scan names a finding written before only in "seen".
  {
    auto j = json::parse(scan_json(5, 30'000, 29'000, {}, 1'000'000));
    j["seen"] = json::array({"0xc000010008:0xc000020030", "0xdead:0xbeef", "garbage"});
    scans.push_back(j.dump());
  }
  auto dt = analysis::DanglingTrace::create(h, scans);
  REQUIRE(dt.ok());
  Event gc;
  gc.site = 0;
  dt->add(gc);
  dt->add(convert(8'000, 0xc000020030));   // before the GC found it gone: not a use of freed memory
  dt->add(convert(12'000, 0xc000020038));  // inside the 48-byte target: matches the first finding
  dt->add(convert(21'000, 0xc00002005f));  // last byte of the target: both holders' findings
  dt->add(convert(22'000, 0xc000020060));  // just past it: nothing
  dt->add(convert(23'000, 0xc000900000));  // freed pages: exact value
  auto res = dt->finish();
  REQUIRE(res.findings.size() == 3);
  const auto& a = res.findings[0];
  CHECK(a.holder_addr == 0xc000010008);
  CHECK(a.first_cycle == 3);
  CHECK(a.last_cycle == 5);
  CHECK(a.scans == 3);
  CHECK(a.last_ns == 30'000);
  CHECK(a.first_ns == 9'000);
  CHECK(a.conversion_count == 2);
  REQUIRE(a.conversions.size() == 2);
  CHECK(a.conversions[0].function == "main.lookup");
  CHECK(a.conversions[0].value == 0xc000020038);
  const auto& b = res.findings[1];
  CHECK(b.holder_addr == 0xc000010010);
  CHECK(b.first_ns == 19'000);
  CHECK(b.conversion_count == 1);  // the one at 21'000; 12'000 was before it was found
  const auto& c = res.findings[2];
  CHECK(c.target_hi - c.target_lo == 1);
  CHECK(c.conversion_count == 1);
  CHECK(res.stats.scans == 3);
  CHECK(res.stats.gc_marks == 1);
  CHECK(res.stats.conversions == 5);
  CHECK(res.stats.conversions_matched == 3);
  CHECK(res.stats.pauses_ns == std::vector<uint64_t>{1'000'000, 5'000'000, 9'000'000});

  CHECK_FALSE(analysis::DanglingTrace::create(h, {"not json"}).ok());
  CHECK_FALSE(analysis::DanglingTrace::create(h, {"{\"findings\": 3}"}).ok());
}
