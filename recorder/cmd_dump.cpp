// gort dump TRACE: every record of a gort trace as text or JSON lines: the header (target,
// Go version, probe sites), one line per event, the summary. For looking at what `gort
// record` captured, and for checking a trace that `gort report` rejects.
//
// Hidden, for tests and measurements (not in the help): `--write-sample OUT` writes a small
// synthetic trace; `--bench [--events N]` prints bytes/event and write/read speed.

#include "core/trace/synthetic.h"
#include "core/trace/trace.h"
#include "recorder/cli.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

namespace gort::recorder {
namespace {

namespace tr = core::trace;
using json = nlohmann::ordered_json;  // keys in the order written: "type" first

constexpr const char* kUsage = R"(Usage: gort dump TRACE [--json] [--partial] [--limit N]

Print a trace written by `gort record`: the header (executable, Go version, map
implementation, pid, the probe sites), one line per event, then the summary (why the
recording ended, events lost or filtered, warnings). Format: docs/trace-format.md.

Each event line: time since the probes were armed in µs (ns precision), thread id, CPU,
the g pointer, the goroutine id, the map, the integer key of fast32/fast64 writes (signed
when it reads as a negative int between -2^31 and -1), the site (kind and function),
"map on its own stack" in parentheses when the map lies on the accessing goroutine's
stack, and the stack PCs in brackets (runtime addresses, innermost first). Goroutine ids are
recorded at go-start events and filled in for the later events of the same g until its
go-exit; '-' is unknown or absent.

Options:
  --json         one JSON object per line: {"type":"header",..}, then {"type":"event",..}
                 for each event, {"type":"summary",..} last (addresses are hex strings)
  --partial      read a trace cut short (gort record killed): the complete blocks are
                 printed, a torn last block is dropped, and there is no summary
  --limit N      print the first N events only (later blocks are not read or checked)

Examples:
  gort dump trace.gort | less
  gort dump trace.gort --json | jq 'select(.type=="event" and .goid==7)'

Exit status: 0 on success; 2 when TRACE is missing, not a gort trace, from a newer gort,
corrupt or cut short (the message names the byte offset).
)";

struct Options {
  std::string path;
  bool json = false;
  bool partial = false;
  uint64_t limit = UINT64_MAX;
};

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }
std::string hex_or_dash(uint64_t v) { return v ? hex(v) : "-"; }
std::string num_or_dash(uint64_t v) { return v ? fmt::format("{}", v) : "-"; }

/// A key as the Go program wrote it, as far as a raw 64-bit value tells: an int key -46
/// is 2^64-46; values that read as small negative int64s print signed.
std::string key_text(const std::optional<uint64_t>& k) {
  if (!k) return "-";
  int64_t s = int64_t(*k);
  return s < 0 && s >= INT32_MIN ? fmt::format("{}", s) : fmt::format("{}", *k);
}

/// T - START in µs with ns precision ("12.345"); negative when a sample predates the start.
std::string rel_us(uint64_t t, uint64_t start) {
  bool neg = t < start;
  uint64_t d = neg ? start - t : t - start;
  return fmt::format("{}{}.{:03}", neg ? "-" : "", d / 1000, d % 1000);
}

int fail(const core::Error& e) {
  std::fflush(stdout);
  return report_error(e, "gort dump");
}

// --- text -------------------------------------------------------------------------------

void print_header_text(const tr::Reader& r, const std::string& path) {
  const auto& h = r.header();
  fmt::print("trace        {} (format version {}, {} events in {} blocks)\n", path, h.version, r.event_count(),
             r.block_count());
  fmt::print("executable   {}\n", h.executable.empty() ? "?" : h.executable);
  if (!h.build_id.empty()) fmt::print("build id     {}\n", h.build_id);
  fmt::print("go           {}, {} maps\n", h.go_version.empty() ? "?" : h.go_version, h.map_impl.empty() ? "?" : h.map_impl);
  std::string cmd;
  for (auto& a : h.command) cmd += (cmd.empty() ? "" : " ") + a;
  fmt::print("pid          {}{}\n", h.pid, cmd.empty() ? " (attached)" : " (launched: " + cmd + ")");
  if (h.slide != 0) fmt::print("slide        {:#x} (PIE: link address = runtime address - slide)\n", h.slide);
  fmt::print("start        {} ns CLOCK_MONOTONIC\n", h.start_ns);
  fmt::print("stacks       {}\n", h.stack_depth ? fmt::format("up to {} PCs per event", h.stack_depth) : "none");
  fmt::print("sites        {}\n", h.sites.size());
  fmt::print("  {:>4}  {:<11}  {:<7}  {:<14}  {:<7}  {}\n", "SITE", "KIND", "BACKEND", "PC", "OP", "FUNCTION");
  for (size_t i = 0; i < h.sites.size(); i++) {
    const auto& s = h.sites[i];
    fmt::print("  {:>4}  {:<11}  {:<7}  {:<14}  {:<7}  {}\n", i, tr::to_string(s.kind), s.backend, hex(s.pc),
               s.op.empty() ? "-" : s.op, s.function);
  }
  fmt::print("\nevents\n  {:>14}  {:>7}  {:>3}  {:<14}  {:>6}  {:<14}  {:>20}  {}\n", "TIME(µs)", "TID", "CPU", "G", "GOID",
             "MAP", "KEY", "SITE / STACK");
}

void print_event_text(fmt::memory_buffer& out, const tr::Header& h, const tr::Event& e) {
  const auto& s = h.sites[e.site];
  fmt::format_to(std::back_inserter(out), "  {:>14}  {:>7}  {:>3}  {:<14}  {:>6}  {:<14}  {:>20}  {} {}",
                 rel_us(e.time_ns, h.start_ns), e.tid, e.cpu, hex_or_dash(e.g), num_or_dash(e.goid), hex_or_dash(e.map),
                 key_text(e.key), tr::to_string(s.kind), s.function);
  if (e.stack_map) fmt::format_to(std::back_inserter(out), " (map on its own stack)");
  if (!e.stack.empty()) {
    fmt::format_to(std::back_inserter(out), " [");
    for (size_t i = 0; i < e.stack.size(); i++) fmt::format_to(std::back_inserter(out), "{}{:#x}", i ? " " : "", e.stack[i]);
    fmt::format_to(std::back_inserter(out), "]");
  }
  out.push_back('\n');
}

void print_summary_text(const tr::Reader& r, uint64_t more) {
  const auto& h = r.header();
  if (more) fmt::print("  ... {} more events (--limit)\n", more);
  fmt::print("\nsummary\n");
  for (auto& n : r.notes()) fmt::print("  note         {}\n", n);
  if (!r.summary()) {
    fmt::print("  none: the trace was cut short (read with --partial)\n");
    return;
  }
  const auto& s = *r.summary();
  fmt::print("  end          {} µs ({})\n", rel_us(s.end_ns, h.start_ns), s.end_reason.empty() ? "no reason given" : s.end_reason);
  fmt::print("  events       {} written, {} lost (kernel ring full), {} filtered (--maps)\n", s.events, s.lost, s.filtered);
  for (auto& w : s.warnings) fmt::print("  warning      {}\n", w);
}

// --- JSON lines -------------------------------------------------------------------------

json header_json(const tr::Reader& r, const std::string& path) {
  const auto& h = r.header();
  json sites = json::array();
  for (size_t i = 0; i < h.sites.size(); i++) {
    const auto& s = h.sites[i];
    sites.push_back({{"index", i}, {"kind", tr::to_string(s.kind)}, {"function", s.function}, {"op", s.op},
                     {"pc", hex(s.pc)}, {"backend", s.backend}});
  }
  return {{"type", "header"},       {"path", path},        {"version", h.version},         {"executable", h.executable},
          {"build_id", h.build_id}, {"go_version", h.go_version}, {"map_impl", h.map_impl}, {"slide", h.slide},
          {"pid", h.pid},           {"command", h.command}, {"start_ns", h.start_ns},      {"stack_depth", h.stack_depth},
          {"events", r.event_count()}, {"blocks", r.block_count()}, {"sites", sites}};
}

json event_json(const tr::Header& h, const tr::Event& e) {
  const auto& s = h.sites[e.site];
  json stack = json::array();
  for (uint64_t pc : e.stack) stack.push_back(hex(pc));
  return {{"type", "event"},
          {"time_ns", e.time_ns},
          {"rel_ns", int64_t(e.time_ns - h.start_ns)},
          {"tid", e.tid},
          {"cpu", e.cpu},
          {"site", e.site},
          {"kind", tr::to_string(s.kind)},
          {"function", s.function},
          {"g", hex(e.g)},
          {"goid", e.goid},
          {"map", hex(e.map)},
          {"key", e.key ? json(*e.key) : json(nullptr)},
          {"stack_map", e.stack_map},
          {"stack", stack}};
}

json summary_json(const tr::Reader& r) {
  if (!r.summary()) return {{"type", "summary"}, {"missing", true}, {"notes", r.notes()}};
  const auto& s = *r.summary();
  return {{"type", "summary"},  {"missing", false},        {"end_ns", s.end_ns},   {"events", s.events},
          {"lost", s.lost},     {"filtered", s.filtered},  {"end_reason", s.end_reason},
          {"warnings", s.warnings}, {"notes", r.notes()}};
}

void put_line(const json& j) { fmt::print("{}\n", j.dump(-1, ' ', false, json::error_handler_t::replace)); }

// --- the command ------------------------------------------------------------------------

int dump(const Options& o) {
  auto r = tr::Reader::open(o.path, o.partial);
  if (!r) return fail(r.error());
  const auto& h = r->header();
  if (o.json) put_line(header_json(*r, o.path));
  else print_header_text(*r, o.path);
  tr::GoidResolver goids(h);
  tr::Event e;
  fmt::memory_buffer out;
  uint64_t shown = 0;
  while (shown < o.limit) {
    auto more = r->next(e);
    if (!more) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      return fail(more.error());
    }
    if (!*more) break;
    goids.apply(e);
    shown++;
    if (o.json) put_line(event_json(h, e));
    else print_event_text(out, h, e);
    if (out.size() > (1 << 16)) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      out.clear();
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  // The counts of later blocks come from their headers: --limit does not read them.
  uint64_t more = shown < r->event_count() && shown == o.limit ? r->event_count() - shown : 0;
  if (o.json) put_line(summary_json(*r));
  else print_summary_text(*r, more);
  return kExitOk;
}

/// Writes EVENTS synthetic events (tests: a valid trace with a few blocks, to cut short).
core::Result<uint64_t> write_synthetic(const std::string& path, uint64_t events, uint32_t stack_depth, bool unique) {
  tr::SyntheticOptions so;
  so.stack_depth = stack_depth;
  so.unique_stacks = unique;
  tr::SyntheticStream s(so);
  GORT_TRY(auto w, tr::Writer::create(path, s.header()));
  tr::Event e;
  for (uint64_t i = 0; i < events; i++) {
    s.next(e);
    GORT_TRY_VOID(w.add(e));
  }
  tr::Summary sum;
  sum.end_ns = e.time_ns + 1000;
  sum.end_reason = "stopped";
  sum.warnings = {"synthetic trace written by gort dump --write-sample"};
  GORT_TRY_VOID(w.finish(sum));
  return w.bytes();
}

int write_sample(const std::string& out) {
  auto r = write_synthetic(out, 20000, 4, false);
  if (!r) return fail(r.error());
  fmt::print("wrote {} ({} events, {} bytes)\n", out, 20000, *r);
  return kExitOk;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Writes N synthetic events per stack shape to a temporary file and reads them back.
int bench(uint64_t n) {
  std::string path = fmt::format("{}/gort-bench-{}.gort", std::filesystem::temp_directory_path().string(), getpid());
  struct Shape {
    const char* name;
    uint32_t depth;
    bool unique;
  };
  for (auto shape : {Shape{"no stacks", 0, false}, Shape{"16-frame stacks (8 call paths per goroutine)", 16, false},
                     Shape{"16-frame stacks (all different)", 16, true}}) {
    auto t0 = std::chrono::steady_clock::now();
    auto bytes = write_synthetic(path, n, shape.depth, shape.unique);
    double wsecs = seconds_since(t0);
    if (!bytes) return fail(bytes.error());
    t0 = std::chrono::steady_clock::now();
    auto r = tr::Reader::open(path);
    if (!r) return fail(r.error());
    tr::Event e;
    uint64_t got = 0;
    for (;;) {
      auto more = r->next(e);
      if (!more) return fail(more.error());
      if (!*more) break;
      got++;
    }
    double rsecs = seconds_since(t0);
    fmt::print("{}: {} events, {:.2f} bytes/event; generate+write {:.1f} M events/s; read (open, checksum, decode) "
               "{:.1f} M events/s\n",
               shape.name, got, double(*bytes) / double(n), double(n) / wsecs / 1e6, double(got) / rsecs / 1e6);
  }
  std::remove(path.c_str());
  return kExitOk;
}

bool parse_count(const std::string& s, uint64_t& v) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18) return false;
  v = std::stoull(s);
  return true;
}

int run_dump(const Args& args) {
  Options o;
  std::string sample_out;
  bool do_bench = false;
  uint64_t bench_events = 2'000'000;
  OptionParser p(args);
  std::string tok, v;
  while (p.next(tok)) {
    if (tok == "--json") o.json = true;
    else if (tok == "--partial") o.partial = true;
    else if (tok == "--limit") {
      if (!p.value(v) || !parse_count(v, o.limit)) return usage_error(kDumpCommand, fmt::format("--limit takes a number of events (got '{}')", v));
    } else if (tok == "--write-sample") {
      if (!p.value(sample_out)) return usage_error(kDumpCommand, "--write-sample needs an output path");
    } else if (tok == "--bench") do_bench = true;
    else if (tok == "--events") {
      if (!p.value(v) || !parse_count(v, bench_events) || bench_events == 0) return usage_error(kDumpCommand, "--events takes a number");
    } else if (p.is_option(tok)) return usage_error(kDumpCommand, fmt::format("unknown option '{}'", tok));
    else if (o.path.empty()) o.path = tok;
    else return usage_error(kDumpCommand, fmt::format("one trace at a time (got '{}' and '{}')", o.path, tok));
  }
  if (!sample_out.empty()) return write_sample(sample_out);
  if (do_bench) return bench(bench_events);
  if (o.path.empty()) return usage_error(kDumpCommand, "missing TRACE (a file written by gort record)");
  return dump(o);
}

}  // namespace

const Command kDumpCommand{"dump", "print a trace file: header, every event, summary", kUsage, run_dump};

}  // namespace gort::recorder
