// gort symbolize BIN PC...: function, file:line and inlined frames for PCs, from the
// binary's pclntab (so it works on stripped and PIE binaries). The frames are what
// runtime.CallersFrames reports: innermost inlined callee first. PCs can come from stdin
// ("-"), streamed: each chunk read is answered before the next read, so the command can
// sit behind a pipe like addr2line.

#include "core/binary/go_binary.h"
#include "recorder/cli.h"

#include <fmt/core.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace gort::recorder {
namespace {

constexpr const char* kUsage = R"(Usage: gort symbolize BIN PC... [--json] [--force-version]
       gort symbolize BIN - [--json]        (PCs from stdin)

Map program counters of a Go executable to function, file:line and inlined frames, using
the binary's pclntab: works on stripped (-ldflags=-s -w) and PIE binaries, no DWARF needed.
PCs are link-time addresses (for PIE, subtract the load bias first), written in hex with a
0x prefix or in decimal. With "-", PCs are read from stdin, separated by any whitespace,
and answered as they arrive.

Output: one line per PC with the innermost function at that PC, then one indented
"inlined into" line per caller it was inlined into, out to the physical function:

  0x411d08 internal/runtime/maps.(*Map).directoryIndex /usr/local/go/src/internal/runtime/maps/map.go:339
      inlined into runtime.mapassign_fast64 /usr/local/go/src/internal/runtime/maps/runtime_fast64.go:240

A PC in no Go function prints "0x.. ?? ??:0"; the count of those goes to stderr.
(`go tool addr2line` prints the physical function's name with the innermost file:line,
i.e. the last frame's function and the first frame's file:line.)

Options:
  --json            one JSON array: [{"pc":"0x..","frames":[{"function":..,"file":..,
                    "line":..,"inlined":bool}, ...]}, ...], innermost frame first
  --force-version   try a Go version outside 1.21-1.26 anyway

Examples:
  gort symbolize ./server 0x411d08 0x411d30
  gort symbolize ./server 4927040 --json
  perf script -F ip | gort symbolize ./server -

Exit status: 0 when every PC was looked up (unknown PCs included); 2 for bad input (a
missing or non-Go binary, a malformed PC, a corrupt pclntab).
)";

bool parse_pc(std::string_view s, uint64_t& out) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

class Symbolizer {
 public:
  Symbolizer(const core::Pclntab& tab, bool json) : tab_(tab), json_(json) {}

  // Appends the answer for PC to the output buffer; a corrupt table is reported on stderr,
  // answered as unknown, and makes the exit status 2.
  void add(uint64_t pc) {
    n_++;
    auto r = tab_.symbolize_into(core::RemoteAddr(pc), frames_);
    if (!r) {
      errors_++;
      fmt::print(stderr, "gort: {:#x}: {}\n", pc, r.error().message);
      frames_.clear();
    }
    if (frames_.empty()) unknown_++;
    if (json_) {
      nlohmann::json j;
      j["pc"] = fmt::format("{:#x}", pc);
      auto fr = nlohmann::json::array();
      for (auto& f : frames_)
        fr.push_back({{"function", f.function}, {"file", f.file}, {"line", f.line}, {"inlined", f.inlined}});
      j["frames"] = std::move(fr);
      fmt::format_to(std::back_inserter(buf_), "{}  {}", n_ == 1 ? "[\n" : ",\n", j.dump());
      return;
    }
    if (frames_.empty()) {
      fmt::format_to(std::back_inserter(buf_), "{:#x} ?? ??:0\n", pc);
      return;
    }
    const auto& f0 = frames_[0];
    fmt::format_to(std::back_inserter(buf_), "{:#x} {} {}:{}\n", pc, f0.function, f0.file, f0.line);
    for (size_t i = 1; i < frames_.size(); i++)
      fmt::format_to(std::back_inserter(buf_), "    inlined into {} {}:{}\n", frames_[i].function, frames_[i].file,
                     frames_[i].line);
  }

  void flush() {
    std::fwrite(buf_.data(), 1, buf_.size(), stdout);
    std::fflush(stdout);
    buf_.clear();
  }

  int finish() {
    if (json_) fmt::format_to(std::back_inserter(buf_), "{}", n_ == 0 ? "[]\n" : "\n]\n");
    flush();
    if (unknown_) fmt::print(stderr, "gort: {} of {} PCs are in no Go function\n", unknown_, n_);
    return errors_ ? kExitUsage : kExitOk;
  }

 private:
  const core::Pclntab& tab_;
  bool json_;
  std::vector<core::SourceFrame> frames_;
  fmt::memory_buffer buf_;
  size_t n_ = 0, unknown_ = 0, errors_ = 0;
};

// Reads whitespace-separated PCs from stdin, answering each chunk as it arrives.
int from_stdin(Symbolizer& s) {
  char chunk[1 << 16];
  std::string pending;  // a token split across reads
  for (;;) {
    ssize_t n = ::read(0, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return report_error(core::make_error(core::ErrorKind::kIo, "reading PCs from stdin: {}", std::strerror(errno)));
    std::string_view data(chunk, size_t(n));
    bool eof = n == 0;
    size_t i = 0;
    auto token = [&](std::string_view tok) {
      uint64_t pc;
      if (!parse_pc(tok, pc)) {
        s.flush();
        return false;
      }
      s.add(pc);
      return true;
    };
    while (i < data.size()) {
      size_t j = i;
      while (j < data.size() && !std::isspace(static_cast<unsigned char>(data[j]))) j++;
      if (j == data.size()) {  // maybe continued in the next chunk
        pending.append(data.substr(i));
        break;
      }
      std::string_view tok = data.substr(i, j - i);
      if (!pending.empty()) {
        pending.append(tok);
        tok = pending;
      }
      if (!tok.empty() && !token(tok))
        return usage_error(kSymbolizeCommand, fmt::format("'{}' on stdin is not a PC (want 0x-prefixed hex or decimal)", tok));
      pending.clear();
      i = j + 1;
    }
    if (eof) {
      if (!pending.empty() && !token(pending))
        return usage_error(kSymbolizeCommand, fmt::format("'{}' on stdin is not a PC (want 0x-prefixed hex or decimal)", pending));
      return -1;
    }
    s.flush();
  }
}

int self_benchmark(const core::GoBinary& bin, double load_ms, uint64_t n) {
  const auto& tab = bin.pclntab();
  size_t nf = tab.num_funcs();
  // PCs spread over every function, at varying offsets inside each (not just entries).
  std::vector<uint64_t> pcs;
  pcs.reserve(n);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (uint64_t k = 0; k < n; k++) {
    auto f = tab.func(size_t(k * 7919 % nf));
    uint64_t size = std::max<uint64_t>(1, f.end - f.entry);
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    pcs.push_back(f.entry.value() + (k % 4 == 0 ? 0 : x % size));
  }
  std::vector<core::SourceFrame> frames;
  uint64_t sum = 0, unknown = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t pc : pcs) {
    auto r = tab.symbolize_into(core::RemoteAddr(pc), frames);
    if (!r || frames.empty()) {
      unknown++;
      continue;
    }
    sum += uint64_t(frames[0].line) + frames.size() + frames.back().file.size();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json j = {{"load_ms", std::round(load_ms * 10) / 10},
                      {"pcs", n},
                      {"seconds", secs},
                      {"pcs_per_sec", secs > 0 ? std::round(double(n) / secs) : 0.0},
                      {"functions", nf},
                      {"unresolved", unknown},
                      {"checksum", sum}};
  fmt::print("{}\n", j.dump());
  return kExitOk;
}

int run_symbolize(const Args& args) {
  std::string path;
  bool json = false, use_stdin = false;
  uint64_t bench = 0;
  std::vector<uint64_t> pcs;
  core::GoBinary::Options opts;
  OptionParser p(args);
  std::string tok;
  while (p.next(tok)) {
    if (tok == "--json") json = true;
    else if (tok == "--force-version") opts.allow_unsupported_version = true;
    else if (tok == "--self-benchmark") {
      std::string v;
      if (!p.value(v) || !parse_pc(v, bench) || bench == 0)
        return usage_error(kSymbolizeCommand, "--self-benchmark wants a positive number of PCs");
    } else if (tok == "-") use_stdin = true;
    else if (p.is_option(tok)) return usage_error(kSymbolizeCommand, fmt::format("unknown option '{}'", tok));
    else if (path.empty()) path = tok;
    else {
      uint64_t pc;
      if (!parse_pc(tok, pc))
        return usage_error(kSymbolizeCommand, fmt::format("'{}' is not a PC (want 0x-prefixed hex or decimal)", tok));
      pcs.push_back(pc);
    }
  }
  if (path.empty()) return usage_error(kSymbolizeCommand, "missing BIN (the Go executable the PCs belong to)");
  if (pcs.empty() && !use_stdin && !bench)
    return usage_error(kSymbolizeCommand, "no PCs given (list them after BIN, or '-' to read them from stdin)");

  auto t0 = std::chrono::steady_clock::now();
  auto bin = core::GoBinary::open(path, opts);
  if (!bin) return report_error(bin.error());
  double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (bench) return self_benchmark(**bin, load_ms, bench);

  Symbolizer s((*bin)->pclntab(), json);
  for (uint64_t pc : pcs) s.add(pc);
  if (use_stdin) {
    int rc = from_stdin(s);
    if (rc >= 0) return rc;
  }
  return s.finish();
}

}  // namespace

const Command kSymbolizeCommand{"symbolize", "function, file:line and inlined frames for PCs, from pclntab", kUsage,
                                run_symbolize};

}  // namespace gort::recorder
