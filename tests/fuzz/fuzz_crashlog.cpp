// libFuzzer target for gort triage's parser and analysis: any bytes -> parse_crashlog ->
// triage -> to_json / to_text. Built by scripts/build-fuzz (clang -fsanitize=fuzzer,
// address,undefined); run by tests/e2e/test_fuzz.py.
//
// Seeds: the golden crash logs, tests/golden/crashlogs/*.log (every fatal kind and
// traceback mode, prefixed and truncated logs), each cut to its first 64 KiB at test time.
#include "core/postmortem/crashlog.h"
#include "core/postmortem/triage.h"
#include "core/postmortem/verdict.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gort::core::postmortem;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto log = parse_crashlog(text);
  if (!log.ok()) return 0;
  auto v = triage(*log);
  auto j = to_json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto t = to_text(v);
  return static_cast<int>(j.size() + t.size()) & 0;
}
