// The Chrome trace writer: a JSON object with displayTimeUnit and traceEvents that
// chrome://tracing and Perfetto load; microsecond times with nanosecond decimals.

#include "core/analysis/chrome_trace.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <fstream>
#include <string>

using namespace gort::core::analysis;

TEST_CASE("Chrome trace: slices, instants, flows and metadata parse back") {
  char path[] = "/tmp/gort-chrome-test-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    auto ct = ChromeTrace::create(path);
    REQUIRE(ct.ok());
    ct->process_name(42, "prog (pid 42)");
    ct->thread_name(42, 43, "thread \"43\"\n");
    ct->thread_sort_index(42, 43, 86);
    ct->slice(42, 43, "assign 0xc000072150", "map-write", 1'264'936'962'687ull, 1'264'936'963'000ull,
              R"({"goroutine":7})");
    ct->instant(42, 43, "throw", "finding", 1'264'936'962'700ull);
    ct->flow_start(1, 42, 43, "f", "finding", 1'264'936'962'690ull);
    ct->flow_end(1, 42, 44, "f", "finding", 1'264'936'962'800ull);
    CHECK(ct->events() == 7);
    REQUIRE(ct->finish().ok());
  }
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in);
  unlink(path);
  CHECK(j["displayTimeUnit"] == "ns");
  auto& ev = j["traceEvents"];
  REQUIRE(ev.size() == 7);
  CHECK(ev[0]["ph"] == "M");
  CHECK(ev[0]["args"]["name"] == "prog (pid 42)");
  CHECK(ev[1]["args"]["name"] == "thread \"43\"\n");
  CHECK(ev[2]["args"]["sort_index"] == 86);
  CHECK(ev[3]["ph"] == "X");
  CHECK(ev[3]["ts"].get<double>() == doctest::Approx(1264936962.687));
  CHECK(ev[3]["dur"].get<double>() == doctest::Approx(0.313));
  CHECK(ev[3]["args"]["goroutine"] == 7);
  CHECK(ev[4]["ph"] == "i");
  CHECK(ev[4]["s"] == "t");
  CHECK(ev[5]["ph"] == "s");
  CHECK(ev[6]["ph"] == "f");
  CHECK(ev[6]["bp"] == "e");
  CHECK(ev[6]["id"] == 1);
  CHECK(ChromeTrace::us(1'000'000'001) == "1000000.001");
  CHECK(json_quote("a\"b\\c\x01") == "\"a\\\"b\\\\c\\u0001\"");
}

TEST_CASE("Chrome trace: an unwritable path is one clear error") {
  auto ct = ChromeTrace::create("/nonexistent-dir/x.json");
  REQUIRE_FALSE(ct.ok());
  CHECK(ct.error().message.find("/nonexistent-dir/x.json") != std::string::npos);
}
