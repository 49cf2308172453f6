// gort triage's parser and analysis (core/postmortem/crashlog.h, triage.h) on small
// crash logs written inline. Whole real logs: tests/golden/crashlogs/ (tests/e2e/test_triage.py).
#include "core/postmortem/crashlog.h"
#include "core/postmortem/triage.h"

#include <doctest/doctest.h>

#include <string>

using namespace gort::core::postmortem;

namespace {
// Go 1.26, GOTRACEBACK=crash, trimmed to the two writers.
const char* kCrash126 =
    "fatal error: concurrent map writes\n"
    "\n"
    "goroutine 6 gp=0x19af0b0afa40 m=2 mp=0x19af0b0e8808 [running]:\n"
    "runtime.fatal({0x4cb1d7, 0x15})\n"
    "\t/go/src/runtime/panic.go:1253 +0x74 fp=0x19af0b0e6708 sp=0x19af0b0e66c8 pc=0x446994\n"
    "internal/runtime/maps.fatal({0x4cb1d7?, 0x0?})\n"
    "\t/go/src/runtime/panic.go:1181 +0x18 fp=0x19af0b0e6728 sp=0x19af0b0e6708 pc=0x47a458\n"
    "runtime.mapassign_fast64(0x4b3340, 0x19af0b12ec90, 0x0)\n"
    "\t/go/src/internal/runtime/maps/runtime_fast64.go:206 +0x45 fp=0x19af0b0e6798 sp=0x19af0b0e6728 pc=0x40fd45\n"
    "main.writerA(0x19af0b12ec90)\n"
    "\t/src/main.go:28 +0x57 fp=0x19af0b0e67c8 sp=0x19af0b0e6798 pc=0x4a12d7\n"
    "runtime.goexit({})\n"
    "\t/go/src/runtime/asm_amd64.s:1771 +0x1 fp=0x19af0b0e67e8 sp=0x19af0b0e67e0 pc=0x4802e1\n"
    "created by main.main in goroutine 1\n"
    "\t/src/main.go:121 +0x14b\n"
    "\n"
    "goroutine 1 gp=0x19af0b0ae1e0 m=nil [runnable]:\n"
    "runtime.mapassign_fast64(0x4b3340?, 0x19af0b12ec90?, 0x31e?)\n"
    "\t/go/src/internal/runtime/maps/runtime_fast64.go:196 +0x36e fp=0x19af0b128e90 sp=0x19af0b128e88 pc=0x41006e\n"
    "main.writerB(0x19af0b12ec90)\n"
    "\t/src/main.go:35 +0x59 fp=0x19af0b128ec0 sp=0x19af0b128e90 pc=0x4a1359\n"
    "main.main()\n"
    "\t/src/main.go:122 +0x155 fp=0x19af0b128f48 sp=0x19af0b128ec0 pc=0x4a1b35\n"
    "\n"
    "goroutine 2 gp=0x19af0b0ae780 m=nil [force gc (idle), 2 minutes]:\n"
    "runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)\n"
    "\t/go/src/runtime/proc.go:462 +0xce fp=0x19af0b0e4fa8 sp=0x19af0b0e4f88 pc=0x47a6ae\n"
    "...3 frames elided...\n"
    "created by runtime.init.7 in goroutine 1\n"
    "\t/go/src/runtime/proc.go:363 +0x1a\n"
    "\n"
    "SIGQUIT: quit\n"
    "PC=0x46f0c1 m=3 sigcode=0\n"
    "\n"
    "rax    0x0\n"
    "rip    0x46f0c1\n";
}  // namespace

TEST_CASE("crashlog: Go 1.26 GOTRACEBACK=crash") {
  auto r = parse_crashlog(kCrash126);
  REQUIRE(r.ok());
  const auto& log = *r;
  REQUIRE(log.fatal_messages.size() == 1);
  CHECK(log.fatal_messages[0] == "concurrent map writes");
  REQUIRE(log.goroutines.size() == 3);
  const auto& g6 = log.goroutines[0];
  CHECK(g6.id == 6);
  CHECK(g6.state == "running");
  CHECK(g6.gp == 0x19af0b0afa40);
  CHECK(g6.m == 2);
  CHECK(g6.mp == 0x19af0b0e8808);
  REQUIRE(g6.frames.size() == 5);
  CHECK(g6.frames[2].function == "runtime.mapassign_fast64");
  CHECK(g6.frames[2].args == "0x4b3340, 0x19af0b12ec90, 0x0");
  CHECK(g6.frames[2].line == 206);
  CHECK(g6.frames[2].offset == 0x45);
  CHECK(g6.frames[2].pc == 0x40fd45);
  CHECK(g6.created_by == "main.main");
  CHECK(g6.created_in == 1);
  CHECK(log.goroutines[1].m == -1);
  CHECK(log.goroutines[2].state == "force gc (idle)");
  CHECK(log.goroutines[2].status == "force gc (idle), 2 minutes");
  CHECK(log.goroutines[2].elided_frames == 3);
  REQUIRE(log.threads.size() == 1);
  CHECK(log.threads[0].pc == 0x46f0c1);
  CHECK(log.threads[0].m == 3);
  CHECK(log.threads[0].registers.size() == 2);
  CHECK_FALSE(log.truncated);

  auto v = triage(log);
  CHECK(v.fatal == FatalKind::kConcurrentMapWrites);
  REQUIRE(v.map);
  CHECK(*v.map == 0x19af0b12ec90);
  REQUIRE(v.writers.size() == 2);
  CHECK(v.writers[0].goroutine == 6);
  CHECK(v.writers[0].role == "threw");
  CHECK(v.writers[0].stack[0].function == "main.writerA");
  CHECK(v.writers[1].goroutine == 1);
  CHECK(v.writers[1].role == "other");
  CHECK(v.writers[1].op == "assign");
  CHECK(v.writers[1].stack[0].function == "main.writerB");
  CHECK(v.writers[1].stack.back().function == "main.main");
  CHECK(v.complete);
}

TEST_CASE("crashlog: prefixes from log collectors are stripped") {
  std::string plain = kCrash126;
  for (std::string prefix : {"2026-11-29T08:25:19.123Z ", "Nov 29 08:25:19 host app[123]: ", "[pod-x] "}) {
    std::string in = "unrelated line before the crash\n";
    size_t pos = 0, n = 0;
    while (pos < plain.size()) {
      auto nl = plain.find('\n', pos);
      // Vary the digits from line to line, as timestamps do.
      std::string p = prefix;
      for (auto& c : p)
        if (c >= '0' && c <= '9') c = char('0' + (c - '0' + n) % 10);
      in += p + plain.substr(pos, nl - pos + 1);
      pos = nl + 1;
      ++n;
    }
    auto r = parse_crashlog(in);
    REQUIRE(r.ok());
    CHECK(r->goroutines.size() == 3);
    auto v = triage(*r);
    CHECK(v.writers.size() == 2);
    CHECK(v.complete);
    CHECK(v.writers[1].stack[0].file == "/src/main.go");
  }
}

TEST_CASE("crashlog: GOTRACEBACK=single, stack unavailable, truncated, not a crash") {
  auto single = parse_crashlog(
      "fatal error: concurrent map writes\n\ngoroutine 6 [running]:\nmain.writerA(0xc00007c3f0)\n"
      "\t/src/main.go:28 +0x5d\ncreated by main.main in goroutine 1\n\t/src/main.go:121 +0x14b\n");
  REQUIRE(single.ok());
  auto v = triage(*single);
  CHECK_FALSE(v.complete);
  CHECK(v.advice == kAdviceSingle);
  CHECK(v.writers.size() == 1);

  auto unavailable = parse_crashlog(
      "fatal error: concurrent map writes\n\ngoroutine 1 [running]:\nmain.writerB(0x0?)\n\t/src/main.go:35 +0x65\n\n"
      "goroutine 18 [running]:\n\tgoroutine running on other thread; stack unavailable\n"
      "created by main.main in goroutine 1\n\t/src/main.go:121 +0x14b\n");
  REQUIRE(unavailable.ok());
  CHECK(unavailable->goroutines[1].stack_unavailable);
  v = triage(*unavailable);
  CHECK_FALSE(v.complete);
  CHECK(v.advice == kAdviceUnavailable);

  std::string cut = std::string(kCrash126).substr(0, 700);
  auto t = parse_crashlog(cut);
  REQUIRE(t.ok());
  CHECK(t->truncated);
  v = triage(*t);
  CHECK(v.writers.size() >= 1);

  auto none = parse_crashlog("hello\nworld\n");
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message.find("in 2 lines") != std::string::npos);
}

TEST_CASE("crashlog: map operations of both map implementations") {
  CHECK(map_op_of("runtime.mapassign_faststr")->op == "assign");
  CHECK(map_op_of("runtime.mapaccess2_fast64")->op == "access");
  CHECK(map_op_of("runtime.mapdelete")->op == "delete");
  CHECK(map_op_of("runtime.mapclear")->op == "clear");
  CHECK(map_op_of("runtime.mapiterinit")->map_arg == 1);
  CHECK(map_op_of("runtime.mapiternext")->map_arg == -1);
  CHECK(map_op_of("internal/runtime/maps.(*Map).PutSlot")->op == "assign");
  CHECK(map_op_of("internal/runtime/maps.(*Map).PutSlot")->map_arg == 0);
  CHECK(map_op_of("internal/runtime/maps.(*Map).Delete")->op == "delete");
  CHECK(map_op_of("maps.clone")->op == "clone");
  CHECK_FALSE(map_op_of("runtime.gopark"));
  CHECK_FALSE(map_op_of("main.mapassign"));
  CHECK(split_args("0x4b3340?, {0x1, 0x2}, ...") == std::vector<std::string>{"0x4b3340?", "0x1", "0x2"});
}

TEST_CASE("crashlog: hostile input never crashes") {
  std::string junk = "fatal error: x\ngoroutine 99999999999999999999999 [";
  for (int i = 0; i < 2000; ++i) junk += "(((((";
  junk += "\n\t:\n\t/a:99999999999999999999 +0xffffffffffffffffffff pc=0x\ngoroutine 1 gp= m= [\n";
  auto r = parse_crashlog(junk);
  REQUIRE(r.ok());
  auto v = triage(*r);
  (void)to_text(v);
  (void)to_json(v).dump();
}
