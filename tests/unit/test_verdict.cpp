// The shared verdict model (core/postmortem/verdict.h): names, JSON, text.
#include "core/postmortem/verdict.h"

#include <doctest/doctest.h>

using namespace gort::core::postmortem;

TEST_CASE("verdict: fatal kinds round-trip through the runtime's wording") {
  for (auto k : {FatalKind::kConcurrentMapWrites, FatalKind::kConcurrentMapReadWrite,
                 FatalKind::kConcurrentMapIterationWrite, FatalKind::kConcurrentMapCloneWrite,
                 FatalKind::kPointerToFreeObject, FatalKind::kUnexpectedFaultAddress}) {
    CHECK(fatal_kind_of(to_string(k)) == k);
  }
  CHECK(fatal_kind_of("fatal error: concurrent map writes\n") == FatalKind::kConcurrentMapWrites);
  CHECK(fatal_kind_of("found bad pointer in Go heap") == FatalKind::kPointerToFreeObject);
  CHECK(fatal_kind_of("unexpected fault address 0x7f0000000000") == FatalKind::kUnexpectedFaultAddress);
  CHECK(fatal_kind_of("all goroutines are asleep - deadlock!") == FatalKind::kUnknown);
  CHECK(is_map_fatal(FatalKind::kConcurrentMapCloneWrite));
  CHECK_FALSE(is_map_fatal(FatalKind::kUnexpectedFaultAddress));
}

TEST_CASE("verdict: JSON shape and text") {
  Verdict v;
  v.fatal = FatalKind::kConcurrentMapWrites;
  v.fatal_message = "concurrent map writes";
  v.map = 0xc000012345;
  Writer w;
  w.goroutine = 18;
  w.state = "running";
  w.role = "threw";
  w.op = "assign";
  w.function = "runtime.mapassign_fast64";
  w.map = v.map;
  w.stack.push_back(Frame{"main.writerA", "/src/main.go", 12, 0, false});
  v.writers.push_back(w);
  v.complete = false;
  v.advice = "rerun with GOTRACEBACK=crash";
  auto j = to_json(v);
  CHECK(j["fatal"] == "concurrent map writes");
  CHECK(j["map"] == "0xc000012345");
  CHECK(j["writers"][0]["goroutine"] == 18);
  CHECK(j["writers"][0]["stack"][0]["function"] == "main.writerA");
  CHECK(j["writers"][0]["stack"][0]["line"] == 12);
  CHECK(j["complete"] == false);
  auto t = to_text(v);
  CHECK(t.find("goroutine 18 [running], threw: assign in runtime.mapassign_fast64") != std::string::npos);
  CHECK(t.find("/src/main.go:12") != std::string::npos);
  CHECK(t.find("advice: rerun") != std::string::npos);
}
