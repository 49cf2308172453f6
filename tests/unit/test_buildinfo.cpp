// Go versions and build info blobs (core/binary/buildinfo.h) on strings and bytes built
// here: the version grammar, the inline-string blob format, and input the fuzzer
// (tests/fuzz/fuzz_elf) found mishandled.

#include "core/binary/buildinfo.h"

#include <doctest/doctest.h>

#include <climits>
#include <cstdint>
#include <string>
#include <vector>

using namespace gort::core;

namespace {

/// A .go.buildinfo blob in the Go 1.18+ format: 32-byte header, then the version and the
/// module info as varint-prefixed strings (cmd/link/internal/ld/data.go).
std::vector<uint8_t> blob(const std::string& version, const std::string& modinfo) {
  std::string head = "\xff Go buildinf:";
  std::vector<uint8_t> b(head.begin(), head.end());
  b.push_back(8);  // pointer size
  b.push_back(2);  // flags: inline strings
  b.resize(32, 0);
  for (const std::string* s : {&version, &modinfo}) {
    for (uint64_t n = s->size(); ; n >>= 7) {
      b.push_back(uint8_t(n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
      if (n < 0x80) break;
    }
    b.insert(b.end(), s->begin(), s->end());
  }
  return b;
}

}  // namespace

TEST_CASE("GoVersion::parse: releases, candidates, experiments, devel") {
  auto v = GoVersion::parse("go1.26.1");
  REQUIRE(v);
  CHECK(v->major == 1);
  CHECK(v->minor == 26);
  CHECK(v->patch == 1);
  CHECK(v->short_name() == "go1.26");
  v = GoVersion::parse("go1.24.4 X:noswissmap,greenteagc");
  REQUIRE(v);
  CHECK(v->has_experiment("noswissmap"));
  CHECK(v->has_experiment("greenteagc"));
  v = GoVersion::parse("go1.22rc1");
  REQUIRE(v);
  CHECK(v->minor == 22);
  CHECK(v->patch == 0);
  CHECK(GoVersion::parse("devel go1.27-abc123 Mon Jan 5 2026")->minor == 27);
  CHECK_FALSE(GoVersion::parse("go2"));
  CHECK_FALSE(GoVersion::parse("go1."));
  CHECK_FALSE(GoVersion::parse(""));
}

TEST_CASE("GoVersion::parse: numbers too long for an int saturate (no signed overflow)") {
  // Found by tests/fuzz/fuzz_elf under UBSan: "go1.26.666...6" overflowed the patch number.
  auto v = GoVersion::parse("go1.26.66666666666666666666");
  REQUIRE(v);
  CHECK(v->minor == 26);
  CHECK(v->patch == INT_MAX);
  v = GoVersion::parse("go1.99999999999999999999.1");
  REQUIRE(v);
  CHECK(v->minor == INT_MAX);
  CHECK(v->patch == 1);
  CHECK_FALSE(v->at_least(2, 0));
}

TEST_CASE("parse_buildinfo_blob: version, path, module and settings") {
  std::string mod = std::string(16, 'A') +
                    "path\tgort.test/x\nmod\tgort.test/x\t(devel)\t\nbuild\t-race=true\nbuild\t-ldflags=\"-s -w\"\n"
                    "build\tGOEXPERIMENT=noswissmap\n" + std::string(16, 'B');
  auto b = blob("go1.24.4", mod);
  auto bi = parse_buildinfo_blob(Bytes(b), nullptr);
  REQUIRE_MESSAGE(bi.ok(), (bi.ok() ? "" : bi.error().message));
  CHECK(bi->version.minor == 24);
  CHECK(bi->path == "gort.test/x");
  CHECK(bi->main_module == "gort.test/x");
  CHECK(bi->race());
  CHECK(bi->checkptr());
  CHECK(bi->settings.at("-ldflags") == "-s -w");
  CHECK(bi->goexperiments() == std::vector<std::string>{"noswissmap"});
}

TEST_CASE("parse_buildinfo_blob: every truncation is an error, never a read past the end") {
  auto full = blob("go1.26.1", std::string(16, 'A') + "path\tx\n" + std::string(16, 'B'));
  for (size_t n = 0; n < full.size(); n++) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + n);  // exactly N bytes: ASan sees reads past N
    CHECK_FALSE(parse_buildinfo_blob(Bytes(cut), nullptr).ok());
  }
  CHECK(parse_buildinfo_blob(Bytes(full), nullptr).ok());
  // The pre-1.18 pointer format needs the ELF to follow its pointers.
  auto old = full;
  old[15] = 0;
  CHECK(parse_buildinfo_blob(Bytes(old), nullptr).error().kind == ErrorKind::kUnsupported);
}
