// gort report TRACE: the goroutines that wrote one map at the same time, from a trace of
// `gort record`, with symbolized stacks, optionally merged with a perf timeline of the
// same run and exported for Perfetto / chrome://tracing. docs/report.md.

#include "core/analysis/chrome_trace.h"
#include "core/analysis/concurrent_writes.h"
#include "core/analysis/dangling_trace.h"
#include "core/analysis/happens_before.h"
#include "core/analysis/perf_timeline.h"
#include "core/binary/go_binary.h"
#include "core/trace/synthetic.h"
#include "core/trace/trace.h"
#include "core/util/strings.h"
#include "recorder/cli.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>

using ojson = nlohmann::ordered_json;

namespace gort::recorder {
namespace {

namespace an = core::analysis;
namespace tr = core::trace;

constexpr const char* kUsage = R"(Usage: gort report TRACE [--json] [--perf PERF.DATA] [--chrome OUT.json] [--binary PATH]
                   [--partial] [--force] [--perf-window MS] [--fail-on-findings]

Name the goroutines that wrote one map at the same time, from a trace of `gort record`.
A goroutine is inside a map write from the store that sets the map's writing flag to the
store that clears it (or, for functions without such stores, from entry to return). Two
goroutines inside writes of the same map at once is a concurrent map write, whether or
not the runtime noticed; a goroutine the runtime killed with "concurrent map writes"
while another was inside a write of the map names that other one too. Findings are
grouped by the pair of call stacks, with a count and the maps involved. For a trace
recorded with --sync, also the map writes (and reads) of different goroutines that no
recorded synchronization orders, with the locks each held (happens-before). For a trace
recorded with --dangling, the dangling pointers: integer-held heap addresses whose object
a GC cycle did not keep, with their holder, the code that filled it and the later
conversions back to pointers (docs/heap.md). See docs/report.md.

Options:
  --json              {"findings": [...], "stats": {...}} on stdout (docs/report.md)
  --perf PERF.DATA    a `perf record -k CLOCK_MONOTONIC -e sched:sched_switch ...` of the
                      same run (or gort record --perf): each writer thread's on/off-CPU
                      intervals and samples around each finding
  --perf-window MS    how far around a finding's overlap to show perf events (default 1)
  --chrome OUT.json   also write a Chrome trace (Perfetto, chrome://tracing): a track per
                      thread with every map-write window, findings as flow arrows, perf
                      scheduling on a companion track per thread
  --binary PATH       the executable to symbolize with (default: the traced one); its Go
                      build ID must match the trace's
  --force             accept a binary whose build ID differs, or a perf.data recorded
                      with another clock
  --partial           read a trace whose recorder was killed (no summary)
  --fail-on-findings  exit 3 when there are findings (for CI)

Examples:
  gort record -o race.trace --perf race.perf -- ./server
  gort report race.trace --perf race.perf
  gort report race.trace --json | jq '.findings[].accesses[].stack[0]'
  gort report race.trace --chrome race.json     # open in https://ui.perfetto.dev

Exit status: 0 the report was made (findings or not); 3 findings with --fail-on-findings;
2 bad input (a missing, corrupt or cut-short trace, a mismatched binary, an unreadable
perf.data); 1 an I/O failure.
)";

constexpr int kExitFindings = 3;

struct Options {
  std::string trace, perf, chrome, binary;
  bool json = false, partial = false, force = false, fail_on_findings = false;
  uint64_t window_ns = 1'000'000;
  uint64_t bench = 0;
};

std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

// "+12.345 ms" relative to the start of the recording.
std::string rel(uint64_t t, uint64_t base) {
  double ms = (double(t) - double(base)) / 1e6;
  return fmt::format("{}{:.3f} ms", ms < 0 ? "" : "+", ms);
}

std::string duration(uint64_t ns) {
  auto num = [](double v) {  // 3 significant decimals, no trailing zeros
    std::string s = fmt::format("{:.3f}", v);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
  };
  if (ns < 1'000) return fmt::format("{} ns", ns);
  if (ns < 1'000'000) return num(double(ns) / 1e3) + " µs";
  if (ns < 1'000'000'000) return num(double(ns) / 1e6) + " ms";
  return num(double(ns) / 1e9) + " s";
}

std::string base_name(std::string_view p) {
  auto s = p.rfind('/');
  return std::string(s == std::string_view::npos ? p : p.substr(s + 1));
}

// ---- the binary ----

struct Symbols {
  std::unique_ptr<core::GoBinary> bin;
  int64_t slide = 0;
  std::string warning;  ///< why stacks are not symbolized
  std::string path;

  const core::Pclntab* tab() const { return bin ? &bin->pclntab() : nullptr; }
};

core::Result<Symbols> open_binary(const Options& o, const tr::Header& h) {
  Symbols s;
  s.slide = h.slide;
  s.path = o.binary.empty() ? h.executable : o.binary;
  if (s.path.empty()) {
    s.warning = "the trace names no executable: stacks are shown as PCs (pass --binary PATH)";
    return s;
  }
  auto bin = core::GoBinary::open(s.path, core::GoBinary::Options{true});
  if (!bin) {
    if (!o.binary.empty()) return bin.error().with_context("--binary");
    s.warning = fmt::format("cannot open the traced executable ({}): stacks are shown as PCs (pass --binary PATH)",
                            bin.error().message);
    return s;
  }
  std::string id = (*bin)->build_id();
  if (!h.build_id.empty() && !id.empty() && id != h.build_id && !o.force)
    return core::make_error(core::ErrorKind::kBadInput,
                            "{} has Go build ID {} but the trace was recorded from a binary with build ID {} "
                            "(rebuilt since?): pass the exact binary with --binary PATH, or --force",
                            s.path, id, h.build_id);
  s.bin = std::move(bin).value();
  return s;
}

// ---- perf around a finding ----

struct PerfWindow {
  uint64_t from = 0, to = 0;
  struct Thread {
    uint32_t tid = 0;
    uint64_t goroutine = 0;
    const an::ThreadTimeline* tl = nullptr;
    std::vector<const an::OnCpu*> on_cpu;
    std::vector<an::PerfSample> samples;
  };
  std::vector<Thread> threads;
};

std::string sample_symbol(const an::PerfSample& s, const Symbols& sym, const tr::Header& h) {
  if (s.symbol != "[unknown]" || !sym.tab() || s.dso.empty() || base_name(s.dso) != base_name(h.executable))
    return s.symbol;
  auto f = sym.tab()->find_func(core::RemoteAddr(s.ip - uint64_t(sym.slide)));
  return f ? std::string(f->name) : s.symbol;
}

PerfWindow perf_window(const an::PerfTimeline& tl, const an::Finding& f, uint64_t window_ns, const Symbols& sym,
                       const tr::Header& h) {
  uint64_t lo = std::max(f.a.start_ns, f.b.start_ns), hi = std::min(f.a.end_ns, f.b.end_ns);
  if (hi < lo) hi = lo;
  PerfWindow w;
  w.from = lo > window_ns ? lo - window_ns : 0;
  w.to = hi + window_ns;
  for (const an::Access* a : {&f.a, &f.b}) {
    if (std::any_of(w.threads.begin(), w.threads.end(), [&](auto& t) { return t.tid == a->thread; })) continue;
    PerfWindow::Thread t;
    t.tid = a->thread;
    t.goroutine = a->goroutine;
    t.tl = tl.thread(a->thread);
    if (t.tl) {
      for (auto& iv : t.tl->on_cpu)
        if (iv.end_ns >= w.from && iv.start_ns <= w.to) t.on_cpu.push_back(&iv);
      for (auto& s : t.tl->samples)
        if (s.time_ns >= w.from && s.time_ns <= w.to) {
          t.samples.push_back(s);
          t.samples.back().symbol = sample_symbol(s, sym, h);
        }
    }
    w.threads.push_back(std::move(t));
  }
  return w;
}

std::string state_words(const std::string& st) {
  if (st.empty()) return "";
  if (st[0] == 'R') return st + " (preempted)";
  if (st[0] == 'S') return st + " (sleeping)";
  if (st[0] == 'D') return st + " (uninterruptible wait)";
  if (st[0] == 'T' || st[0] == 't') return st + " (stopped)";
  if (st[0] == 'X' || st[0] == 'Z') return st + " (exiting)";
  return st;
}

ojson perf_json(const PerfWindow& w) {
  ojson threads = ojson::array();
  for (auto& t : w.threads) {
    ojson on = ojson::array(), samples = ojson::array();
    for (auto* iv : t.on_cpu)
      on.push_back({{"start_ns", iv->start_ns}, {"end_ns", iv->end_ns}, {"cpu", iv->cpu},
                    {"start_known", iv->start_known}, {"end_known", iv->end_known}, {"end_state", iv->end_state}});
    for (auto& s : t.samples)
      samples.push_back({{"time_ns", s.time_ns}, {"cpu", s.cpu}, {"event", s.event}, {"ip", hex(s.ip)},
                         {"symbol", s.symbol}, {"dso", s.dso}});
    threads.push_back({{"thread", t.tid},
                       {"goroutine", t.goroutine ? ojson(t.goroutine) : ojson()},
                       {"in_perf_data", t.tl != nullptr},
                       {"comm", t.tl ? t.tl->comm : ""},
                       {"on_cpu", std::move(on)},
                       {"samples", std::move(samples)}});
  }
  return {{"from_ns", w.from}, {"to_ns", w.to}, {"threads", std::move(threads)}};
}

// ---- the report ----

struct Report {
  const Options& o;
  const tr::Header& h;
  const std::optional<tr::Summary>& summary;
  std::vector<std::string> notes;  ///< the reader's --partial notes
  an::ConcurrentWritesResult r;
  std::vector<std::vector<an::StackFrame>> sym;  ///< by stack id (only those in findings)
  Symbols& symbols;
  std::optional<an::PerfTimeline> perf;
  std::vector<std::string> warnings;
  double analyze_seconds = 0;
  /// The happens-before analysis, when the trace has sync sites (gort record --sync).
  std::optional<an::HappensBeforeResult> hb;
  std::vector<std::vector<an::StackFrame>> hb_sym;  ///< by HB stack id (only those in findings)
  /// Dangling-pointer findings, when the trace has heap scans (gort record --dangling).
  std::optional<an::DanglingTraceResult> dangling;

  using Sym = std::vector<std::vector<an::StackFrame>>;
  size_t finding_count() const {
    return r.findings.size() + (hb ? hb->findings.size() : 0) + (dangling ? dangling->findings.size() : 0);
  }

  uint64_t end_ns() const {
    uint64_t e = summary && summary->end_ns ? summary->end_ns : r.stats.last_ns;
    return std::max(e, h.start_ns);
  }
  uint64_t duration_ns() const { return end_ns() - std::min(h.start_ns, r.stats.first_ns ? r.stats.first_ns : h.start_ns); }
  uint64_t lost() const { return summary ? summary->lost : 0; }
  std::string program() const {
    if (!h.command.empty()) return h.command[0];
    return h.executable.empty() ? "?" : h.executable;
  }
  double events_per_second() const { return analyze_seconds > 0 ? double(r.stats.events) / analyze_seconds : 0; }

  void symbolize() {
    sym.assign(r.stacks.size(), {});
    std::vector<bool> done(r.stacks.size(), false);
    auto one = [&](uint32_t id) {
      if (id >= r.stacks.size() || done[id]) return;
      done[id] = true;
      sym[id] = frames_of(r.stacks[id]);
    };
    for (auto& f : r.findings) {
      one(f.a.stack);
      one(f.b.stack);
    }
    an::merge_by_symbolized_stacks(r.findings, sym);
    if (hb) symbolize_hb();
  }

  void symbolize_hb() {
    hb_sym.assign(hb->stacks.size(), {});
    std::vector<bool> done(hb->stacks.size(), false);
    auto one = [&](uint32_t id) {
      if (id >= hb->stacks.size() || done[id]) return;
      done[id] = true;
      hb_sym[id] = frames_of(hb->stacks[id]);
    };
    for (auto& f : hb->findings)
      for (const an::HbAccess* a : {&f.a, &f.b}) {
        one(a->stack);
        for (auto& l : a->locks) one(l.stack);
      }
    an::merge_hb_by_symbolized_stacks(hb->findings, hb_sym);
  }

  // Where a lock was taken: its stack without the sync package's own frames on top (the
  // site is inside sync.(*Mutex).Lock or lockSlow, or Lock inlined into the caller).
  std::vector<an::StackFrame> locked_at(const an::HeldLock& l) const {
    if (l.stack >= hb_sym.size()) return {};
    const auto& fr = hb_sym[l.stack];
    size_t i = 0;
    auto internal = [](const std::string& f) {
      return f.rfind("sync.", 0) == 0 || f.rfind("internal/sync.", 0) == 0 || an::is_runtime_function(f) || f == "?";
    };
    while (i < fr.size() && internal(fr[i].function)) i++;
    if (i == fr.size()) return fr;
    return std::vector<an::StackFrame>(fr.begin() + long(i), fr.end());
  }

  static ojson frames_json(const std::vector<an::StackFrame>& frames) {
    ojson a = ojson::array();
    for (auto& f : frames)
      a.push_back({{"function", f.function}, {"file", f.file}, {"line", f.line}, {"inlined", f.inlined}});
    return a;
  }
  ojson stack_json(uint32_t id, const Sym* table = nullptr) const {
    const Sym& t = table ? *table : sym;
    return id < t.size() ? frames_json(t[id]) : ojson::array();
  }

  ojson access_json(const an::Access& a, const Sym* table = nullptr) const {
    return {{"goroutine", a.goroutine ? ojson(a.goroutine) : ojson()},
            {"g", hex(a.g)},
            {"thread", a.thread},
            {"cpu", a.cpu},
            {"time_ns", a.start_ns},
            {"end_ns", a.end_ns},
            {"closed", a.closed},
            {"threw", a.threw},
            {"map", hex(a.map)},
            {"op", a.op},
            {"function", a.function},
            {"stack", stack_json(a.stack, table)}};
  }

  ojson hb_access_json(const an::HbAccess& a) const {
    ojson j = access_json(a, &hb_sym);
    ojson locks = ojson::array();
    for (auto& l : a.locks)
      locks.push_back({{"object", hex(l.object)},
                       {"mode", an::to_string(l.mode)},
                       {"time_ns", l.time_ns},
                       {"site_pc", hex(l.site_pc)},
                       {"locked_at", frames_json(locked_at(l))}});
    j["read"] = a.read;
    j["locks"] = std::move(locks);
    return j;
  }

  /// A finding's map creation (map_lifetimes.h), or null when the trace does not hold it.
  ojson origin_json(const std::optional<an::MapOrigin>& c) const {
    if (!c) return nullptr;
    return {{"time_ns", c->time_ns},
            {"goroutine", c->goroutine ? ojson(c->goroutine) : ojson()},
            {"g", hex(c->g)},
            {"thread", c->thread},
            {"function", c->function},
            {"stack", frames_json(frames_of(c->stack))}};
  }

  ojson hb_json(const an::HbFinding& f) const {
    ojson maps = ojson::array();
    for (auto m : f.maps) maps.push_back(hex(m));
    return {{"kind", f.kind},
            {"map", hex(f.map)},
            {"maps", std::move(maps)},
            {"map_inferred", false},
            {"count", f.count},
            {"first_ns", f.first_ns},
            {"last_ns", f.last_ns},
            {"accesses", {hb_access_json(f.a), hb_access_json(f.b)}},
            {"created", origin_json(f.created)},
            {"established_by", f.established_by},
            {"notes", f.notes}};
  }

  /// PCS symbolized (each taken as a return address), or "?" frames naming them.
  std::vector<an::StackFrame> frames_of(const std::vector<uint64_t>& pcs) const {
    if (symbols.tab()) return an::symbolize_stack(*symbols.tab(), symbols.slide, pcs);
    std::vector<an::StackFrame> out;
    for (uint64_t pc : pcs) out.push_back(an::StackFrame{"?", hex(pc), 0, false});
    return out;
  }

  /// PCS: the probed site, then return addresses (the site goes in as its next byte).
  std::vector<an::StackFrame> symbolize(std::vector<uint64_t> pcs) const {
    if (!pcs.empty()) pcs[0]++;
    return frames_of(pcs);
  }

  ojson dangling_json(const an::RecordedDangling& f) const {
    ojson conv = ojson::array();
    for (auto& c : f.conversions)
      conv.push_back({{"time_ns", c.time_ns},
                      {"thread", c.tid},
                      {"goroutine", c.goid ? ojson(c.goid) : ojson()},
                      {"g", hex(c.g)},
                      {"value", hex(c.value)},
                      {"function", c.function},
                      {"stack", frames_json(symbolize(c.stack))}});
    return {{"kind", "dangling-pointer"},
            {"holder", ojson::parse(f.holder.dump())},
            {"target", ojson::parse(f.target.dump())},
            {"first_gc_cycle", f.first_cycle},
            {"last_gc_cycle", f.last_cycle},
            {"scans", f.scans},
            {"first_ns", f.first_ns},
            {"last_ns", f.last_ns},
            {"established_by", f.established_by},
            {"conversion_count", f.conversion_count},
            {"conversions", std::move(conv)}};
  }

  ojson dangling_stats_json() const {
    const auto& s = dangling->stats;
    auto pct = [&](size_t q) { return s.pauses_ns.empty() ? 0 : s.pauses_ns[std::min(s.pauses_ns.size() - 1, s.pauses_ns.size() * q / 100)]; };
    return {{"scans", s.scans},
            {"gc_marks", s.gc_marks},
            {"bytes_scanned", s.bytes_scanned},
            {"scan_seconds", s.scan_seconds},
            {"pause_median_ns", pct(50)},
            {"pause_max_ns", s.pauses_ns.empty() ? 0 : s.pauses_ns.back()},
            {"runtime_holders", s.runtime_holders},
            {"conversions", s.conversions},
            {"conversions_matched", s.conversions_matched},
            {"notes", dangling->notes}};
  }

  /// Dangling findings, grouped by the object (or global, or frame) that holds them.
  void text_dangling(std::string& out) const {
    auto B = std::back_inserter(out);
    const auto& s = dangling->stats;
    std::string pauses;
    if (!s.pauses_ns.empty())
      pauses = fmt::format(", pause median {:.1f} ms, max {:.1f} ms", s.pauses_ns[s.pauses_ns.size() / 2] / 1e6,
                           s.pauses_ns.back() / 1e6);
    if (dangling->findings.empty()) {
      fmt::format_to(B, "\nno dangling pointers found: {} heap scan{} after {} GC cycle{}{}\n", s.scans,
                     s.scans == 1 ? "" : "s", s.gc_marks, s.gc_marks == 1 ? "" : "s", pauses);
      for (auto& n : dangling->notes) fmt::format_to(B, "  note: {}\n", n);
      return;
    }
    fmt::format_to(B, "\n{} dangling pointer{} (integer-held heap addresses the GC did not keep), from {} heap scan{} after {} GC cycle{}{}\n",
                   dangling->findings.size(), dangling->findings.size() == 1 ? "" : "s", s.scans, s.scans == 1 ? "" : "s",
                   s.gc_marks, s.gc_marks == 1 ? "" : "s", pauses);
    // Group by holder object (heap), else by holder text (global, stack slot).
    std::vector<std::pair<std::string, std::vector<const an::RecordedDangling*>>> groups;
    for (auto& f : dangling->findings) {
      std::string key = f.holder.contains("object") ? f.holder["object"].value("base", "") : f.holder.value("text", "");
      if (f.holder.value("kind", "") == "global") key = "global " + f.holder.value("text", "");
      auto it = std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.first == key; });
      if (it == groups.end()) groups.push_back({key, {&f}});
      else it->second.push_back(&f);
    }
    for (auto& [key, fs] : groups) {
      const auto& f0 = *fs[0];
      const auto& h0 = f0.holder;
      std::string where;
      if (h0.contains("object")) {
        const auto& o = h0["object"];
        where = fmt::format("heap object {} [{} B{}]", o.value("base", "?"), o.value("size", 0),
                            o.value("noscan", false) ? ", noscan" : "");
      } else {
        where = h0.value("text", "?");
      }
      fmt::format_to(B, "\ndangling-pointer: {} stale address{} held in {}\n", fs.size(), fs.size() == 1 ? "" : "es", where);
      if (h0.contains("referenced_from") && !h0["referenced_from"].empty()) {
        std::string refs;
        for (auto& r : h0["referenced_from"]) refs += (refs.empty() ? "" : ", ") + r.get<std::string>();
        fmt::format_to(B, "  the holding object is referenced from: {}\n", refs);
      } else if (h0.value("kind", "") == "heap") {
        fmt::format_to(B, "  the holding object is referenced from no global (a local variable, or another object)\n");
      }
      if (h0.value("kind", "") == "stack")
        fmt::format_to(B, "  goroutine {} frame {}\n", h0.value("goroutine", 0), h0.value("frame", "?"));
      if (h0.contains("filled_by") && !h0["filled_by"].empty()) {
        std::string by;
        for (auto& r : h0["filled_by"]) by += (by.empty() ? "" : ", ") + r.get<std::string>();
        fmt::format_to(B, "  filled by (code that stores to it): {}\n", by);
      }
      uint32_t c0 = UINT32_MAX, c1 = 0;
      std::set<uint64_t> conv_ids;  // one conversion can match several of the group's findings
      for (auto* f : fs) {
        c0 = std::min(c0, f->first_cycle), c1 = std::max(c1, f->last_cycle);
        conv_ids.insert(f->conversion_ids.begin(), f->conversion_ids.end());
      }
      uint64_t conv = conv_ids.size();
      fmt::format_to(B, "  seen after GC cycle{} {}{}\n", c0 == c1 ? "" : "s", c0, c0 == c1 ? "" : fmt::format("..{}", c1));
      size_t shown = 0;
      for (auto* f : fs) {
        if (shown++ == 4) {
          fmt::format_to(B, "    ... and {} more\n", fs.size() - 4);
          break;
        }
        fmt::format_to(B, "    {} = {} -> {} B object at {}, {}\n", f->holder.value("text", "?"),
                       f->target.value("value", "?"), f->target.value("size", 0),
                       f->target.value("base", nlohmann::json()).is_string() ? f->target["base"].get<std::string>()
                                                                             : "(freed pages)",
                       f->target.value("state", "?"));
      }
      fmt::format_to(B, "  established by: {}\n", f0.established_by);
      if (conv) {
        fmt::format_to(B, "  converted back to a pointer {} time{} after the GC gave the memory back; first:\n", conv,
                       conv == 1 ? "" : "s");
        const an::DanglingConversion* first = nullptr;
        for (auto* f : fs)
          for (auto& c : f->conversions)
            if (!first || c.time_ns < first->time_ns) first = &c;
        if (first) {
          std::string who = first->goid ? fmt::format("goroutine {}", first->goid) : fmt::format("g {:#x}", first->g);
          fmt::format_to(B, "    {} [thread {}] at {}: {}({:#x})\n", who, first->tid, rel(first->time_ns, h.start_ns),
                         first->function, first->value);
          for (auto& fr : symbolize(first->stack)) {
            if (fr.function == "?") {
              fmt::format_to(B, "      ? {}\n", fr.file);
              continue;
            }
            fmt::format_to(B, "      {}{}\n          {}:{}\n", fr.function, fr.inlined ? " (inlined)" : "", fr.file, fr.line);
          }
        }
      }
    }
    for (auto& n : dangling->notes) fmt::format_to(B, "  note: {}\n", n);
  }

  ojson hb_stats_json() const {
    const auto& s = hb->stats;
    return {{"sync_events", s.sync_events},   {"acquires", s.acquires},
            {"releases", s.releases},         {"forks", s.forks},
            {"goroutines", s.goroutines},     {"sync_objects", s.sync_objects},
            {"maps", s.maps},                 {"writes", s.writes},
            {"reads", s.reads},               {"accesses_checked", s.accesses_checked},
            {"overlaps_skipped", s.overlaps_skipped}, {"unmatched_returns", s.unmatched_returns},
            {"unmatched_ends", s.unmatched_ends}, {"out_of_order", s.out_of_order}};
  }

  ojson json() const {
    ojson findings = ojson::array();
    for (auto& f : r.findings) {
      ojson maps = ojson::array();
      for (auto m : f.maps) maps.push_back(hex(m));
      ojson j = {{"kind", f.kind},
                          {"map", hex(f.map)},
                          {"maps", std::move(maps)},
                          {"map_inferred", f.map_inferred},
                          {"count", f.count},
                          {"first_ns", f.first_ns},
                          {"last_ns", f.last_ns},
                          {"accesses", {access_json(f.a), access_json(f.b)}},
                          {"created", origin_json(f.created)}};
      if (perf) j["perf"] = perf_json(perf_window(*perf, f, o.window_ns, symbols, h));
      findings.push_back(std::move(j));
    }
    if (hb)
      for (auto& f : hb->findings) findings.push_back(hb_json(f));
    if (dangling)
      for (auto& f : dangling->findings) findings.push_back(dangling_json(f));
    const auto& s = r.stats;
    ojson stats = {{"events", s.events},
                            {"lost", lost()},
                            {"maps", s.maps},
                            {"goroutines", s.goroutines},
                            {"duration_ns", duration_ns()},
                            {"events_per_second_analyzed", std::round(events_per_second())},
                            {"windows", s.windows},
                            {"unclosed_windows", s.unclosed},
                            {"lost_ends", s.lost_ends},
                            {"unmatched_ends", s.unmatched_ends},
                            {"throws", s.throws},
                            {"unmatched_throws", s.unmatched_throws},
                            {"out_of_order", s.out_of_order}};
    const auto& ls = r.lifetimes;
    stats["map_lifetimes"] = {{"creations", ls.creations},
                              {"reused_addresses", ls.reused_addresses},
                              {"stack_map_accesses", ls.stack_accesses},
                              {"gc_cycles", ls.gc_cycles},
                              {"splits", ls.splits},
                              {"creations_recorded", r.basis.creations},
                              {"note", r.basis.note()}};
    if (hb) stats["happens_before"] = hb_stats_json();
    if (dangling) stats["dangling"] = dangling_stats_json();
    ojson trace = {{"executable", h.executable},
                            {"binary", symbols.path},
                            {"symbolized", symbols.tab() != nullptr},
                            {"pid", h.pid},
                            {"go_version", h.go_version},
                            {"map_impl", h.map_impl},
                            {"start_ns", h.start_ns},
                            {"end_ns", end_ns()},
                            {"complete", summary.has_value()},
                            {"end_reason", summary ? summary->end_reason : ""},
                            {"warnings", warnings}};
    ojson out = {{"findings", std::move(findings)}, {"stats", std::move(stats)}, {"trace", std::move(trace)}};
    if (perf) {
      ojson threads = ojson::array();
      for (auto& [tid, t] : perf->threads)
        threads.push_back({{"thread", tid}, {"comm", t.comm}, {"on_cpu", t.on_cpu.size()}, {"samples", t.samples.size()}});
      out["perf"] = {{"file", o.perf},
                     {"clock", perf->clock},
                     {"threads", std::move(threads)},
                     {"lines", perf->lines},
                     {"skipped_lines", perf->skipped},
                     {"first_ns", perf->first_ns},
                     {"last_ns", perf->last_ns}};
    }
    return out;
  }

  void text_access(std::string& out, const an::Access& a) const {
    auto B = std::back_inserter(out);
    std::string who = a.goroutine ? fmt::format("goroutine {}", a.goroutine) : fmt::format("goroutine ? (g {:#x})", a.g);
    fmt::format_to(B, "  {} [thread {}, cpu {}]: ", who, a.thread, a.cpu);
    if (a.threw) {
      fmt::format_to(B, "threw at {} on entering {}{}: the runtime caught this writer, not the other\n",
                     rel(a.start_ns, h.start_ns), a.function.empty() ? "a map function" : a.function,
                     a.op.empty() ? "" : fmt::format(" ({})", a.op));
    } else {
      fmt::format_to(B, "{} in {}, {} .. ", a.op.empty() ? "write" : a.op, a.function, rel(a.start_ns, h.start_ns));
      if (a.closed) fmt::format_to(B, "{} ({})\n", rel(a.end_ns, h.start_ns), duration(a.end_ns - a.start_ns));
      else if (a.end_ns >= end_ns()) fmt::format_to(B, "still inside at the end of the trace\n");
      else fmt::format_to(B, "{} (its end event was lost)\n", rel(a.end_ns, h.start_ns));
    }
    text_stack(out, a.stack, sym);
  }

  static void text_stack(std::string& out, uint32_t id, const Sym& table) {
    auto B = std::back_inserter(out);
    if (id >= table.size() || table[id].empty()) {
      fmt::format_to(B, "      (no stack recorded; gort record --stack-depth N records N frames)\n");
      return;
    }
    for (auto& f : table[id]) {
      if (f.function == "?") {  // no symbols for this PC (f.file holds it)
        fmt::format_to(B, "      ? {}\n", f.file);
        continue;
      }
      fmt::format_to(B, "      {}{}\n", f.function, f.inlined ? " (inlined)" : "");
      fmt::format_to(B, "          {}:{}\n", f.file, f.line);
    }
  }

  std::string lock_words(const an::HeldLock& l) const {
    const char* type = l.mode == an::LockMode::kMutex ? "sync.Mutex" : "sync.RWMutex";
    const char* how = l.mode == an::LockMode::kRwRead ? "read-locked" : "locked";
    auto at = locked_at(l);
    std::string where;
    if (!at.empty() && at[0].function != "?")
      where = fmt::format(" ({} at {} {}:{})", how, at[0].function, base_name(at[0].file), at[0].line);
    else
      where = fmt::format(" ({} at pc {:#x}, {})", how, l.site_pc, rel(l.time_ns, h.start_ns));
    return fmt::format("{} {:#x}{}", type, l.object, where);
  }

  /// A finding's first lines, for both analyses: kind, map, occurrences, the other maps.
  template <typename F>
  void text_finding_head(std::string& out, const F& f) const {
    auto B = std::back_inserter(out);
    fmt::format_to(B, "\n{} on map {:#x} ({} time{}, first at {}", f.kind, f.map, f.count, f.count == 1 ? "" : "s",
                   rel(f.first_ns, h.start_ns));
    if (f.count > 1) fmt::format_to(B, ", last at {}", rel(f.last_ns, h.start_ns));
    fmt::format_to(B, ")\n");
    if (f.maps.size() > 1) {
      fmt::format_to(B, "  maps:");
      for (auto m : f.maps) fmt::format_to(B, " {:#x}", m);
      fmt::format_to(B, "\n");
    }
  }

  /// "created at ..." under a finding's head: the evidence that both sides wrote one map.
  void text_origin(std::string& out, const std::optional<an::MapOrigin>& c) const {
    auto B = std::back_inserter(out);
    if (!c) {
      if (r.basis.creations)
        fmt::format_to(B, "  map created before the recording began (the same map throughout: no creation at its "
                          "address since)\n");
      return;
    }
    std::string who = c->goroutine ? fmt::format("goroutine {}", c->goroutine) : fmt::format("g {:#x}", c->g);
    auto frames = frames_of(c->stack);
    fmt::format_to(B, "  map created at {} by {} ({})", rel(c->time_ns, h.start_ns), who, c->function);
    if (!frames.empty() && frames[0].function != "?")
      fmt::format_to(B, " in {} {}:{}", frames[0].function, base_name(frames[0].file), frames[0].line);
    fmt::format_to(B, "; both sides wrote this map, not an earlier one at the same address\n");
  }

  void text_hb_access(std::string& out, const an::HbAccess& a) const {
    auto B = std::back_inserter(out);
    std::string who = a.goroutine ? fmt::format("goroutine {}", a.goroutine) : fmt::format("goroutine ? (g {:#x})", a.g);
    fmt::format_to(B, "  {} [thread {}, cpu {}]: {} in {} at {}", who, a.thread, a.cpu,
                   a.op.empty() ? (a.read ? "read" : "write") : a.op, a.function, rel(a.start_ns, h.start_ns));
    if (!a.read) {
      if (a.closed) fmt::format_to(B, " .. {} ({})", rel(a.end_ns, h.start_ns), duration(a.end_ns - a.start_ns));
      else if (a.end_ns >= end_ns()) fmt::format_to(B, " (still inside at the end of the trace)");
      else fmt::format_to(B, " .. {} (its end event was lost)", rel(a.end_ns, h.start_ns));
    }
    fmt::format_to(B, "\n");
    if (a.locks.empty()) fmt::format_to(B, "      holds: nothing\n");
    for (auto& l : a.locks) fmt::format_to(B, "      holds: {}\n", lock_words(l));
    text_stack(out, a.stack, hb_sym);
  }

  void text_hb(std::string& out) const {
    auto B = std::back_inserter(out);
    const auto& s = hb->stats;
    if (hb->findings.empty()) {
      fmt::format_to(B,
                     "\nno unsynchronized map accesses found: {} map accesses ({} writes, {} reads) checked against "
                     "{} synchronization events of {} goroutines\n",
                     s.accesses_checked, s.writes, s.reads, s.sync_events, s.goroutines);
      return;
    }
    fmt::format_to(B, "\n{} unsynchronized map access finding{} (happens-before over {} synchronization events)\n",
                   hb->findings.size(), hb->findings.size() == 1 ? "" : "s", s.sync_events);
    for (auto& f : hb->findings) {
      text_finding_head(out, f);
      text_origin(out, f.created);
      fmt::format_to(B, "  {}\n", f.established_by);
      text_hb_access(out, f.a);
      text_hb_access(out, f.b);
      for (auto& n : f.notes) fmt::format_to(B, "  note: {}\n", n);
    }
  }

  void text_perf(std::string& out, const an::Finding& f) const {
    auto B = std::back_inserter(out);
    PerfWindow w = perf_window(*perf, f, o.window_ns, symbols, h);
    fmt::format_to(B, "  perf, {} .. {} (±{} around the overlap):\n", rel(w.from, h.start_ns), rel(w.to, h.start_ns),
                   duration(o.window_ns));
    for (auto& t : w.threads) {
      std::string g = t.goroutine ? fmt::format(" (goroutine {})", t.goroutine) : "";
      if (!t.tl) {
        fmt::format_to(B, "    thread {}{}: not in {}\n", t.tid, g, o.perf);
        continue;
      }
      fmt::format_to(B, "    thread {}{}:\n", t.tid, g);
      if (t.on_cpu.empty() && t.samples.empty()) fmt::format_to(B, "      no scheduling events or samples\n");
      // Interleave intervals and samples by time.
      size_t i = 0, j = 0, shown_samples = 0;
      while (i < t.on_cpu.size() || j < t.samples.size()) {
        bool iv_next = j >= t.samples.size() || (i < t.on_cpu.size() && t.on_cpu[i]->start_ns <= t.samples[j].time_ns);
        if (iv_next) {
          const an::OnCpu& iv = *t.on_cpu[i++];
          std::string cpu = iv.cpu >= 0 ? fmt::format("cpu {}", iv.cpu) : "cpu ?";
          std::string then = iv.end_state.empty() ? "" : ", then off: " + state_words(iv.end_state);
          if (!iv.start_known && iv.start_ns == iv.end_ns) {
            // Per-task recordings see a switch-out but not the switch-in before it.
            fmt::format_to(B, "      off {} at {}{}\n", cpu, rel(iv.end_ns, h.start_ns),
                           iv.end_state.empty() ? "" : ": " + state_words(iv.end_state));
            continue;
          }
          fmt::format_to(B, "      on {} {}{} .. {}{}{}\n", cpu, iv.start_known ? "" : "by ", rel(iv.start_ns, h.start_ns),
                         rel(iv.end_ns, h.start_ns),
                         iv.end_known ? fmt::format(" ({})", duration(iv.end_ns - iv.start_ns))
                                      : " (its switch-out is not in perf.data)",
                         then);
        } else {
          const an::PerfSample& s = t.samples[j++];
          if (++shown_samples > 20) continue;
          fmt::format_to(B, "      sample {} {}  {}\n", rel(s.time_ns, h.start_ns),
                         s.cpu >= 0 ? fmt::format("cpu {}", s.cpu) : "cpu ?", s.symbol);
        }
      }
      if (shown_samples > 20) fmt::format_to(B, "      ... {} more samples (--json has them all)\n", shown_samples - 20);
    }
  }

  std::string text() const {
    std::string out;
    auto B = std::back_inserter(out);
    const auto& s = r.stats;
    fmt::format_to(B, "trace: {} (pid {}, {}, {} maps): {}, {} events, {} lost\n", program(), h.pid,
                   h.go_version.empty() ? "go ?" : h.go_version, h.map_impl.empty() ? "?" : h.map_impl,
                   duration(duration_ns()), s.events, summary ? std::to_string(lost()) : "? (cut short)");
    if (summary && !summary->end_reason.empty()) fmt::format_to(B, "ended: {}\n", summary->end_reason);
    if (lost())
      fmt::format_to(B,
                     "WARNING: {} events were LOST (a ring buffer was full): the findings may be "
                     "incomplete, and a window whose end was lost can look longer than it was. Record again with "
                     "a bigger --ring-pages.\n",
                     lost());
    if (!summary)
      fmt::format_to(B,
                     "WARNING: the trace was cut short (the recorder did not finish it): only the events before "
                     "the cut are analyzed, and how many were lost is unknown.\n");
    for (auto& n : notes) fmt::format_to(B, "note: {}\n", n);
    if (summary)
      for (auto& w : summary->warnings) fmt::format_to(B, "note: {}\n", w);
    for (auto& w : warnings) fmt::format_to(B, "warning: {}\n", w);
    if (std::string n = r.basis.note(); !n.empty()) fmt::format_to(B, "note: {}\n", n);

    if (r.findings.empty()) {
      fmt::format_to(B, "no concurrent map writes found in {} events over {:.3f} s ({} maps written by {} goroutines)\n",
                     s.events, double(duration_ns()) / 1e9, s.maps, s.goroutines);
    } else {
      fmt::format_to(B, "{} finding{}\n", r.findings.size(), r.findings.size() == 1 ? "" : "s");
    }
    for (auto& f : r.findings) {
      text_finding_head(out, f);
      text_origin(out, f.created);
      if (f.map_inferred)
        fmt::format_to(B, "  (the throw names no map: it is the map the other goroutine was writing then)\n");
      text_access(out, f.a);
      text_access(out, f.b);
      if (perf) text_perf(out, f);
    }
    if (s.unmatched_throws)
      fmt::format_to(B,
                     "\nnote: {} throw{} from map code matched no other goroutine's write window (a lost event, "
                     "or a write the probes do not cover)\n",
                     s.unmatched_throws, s.unmatched_throws == 1 ? "" : "s");
    if (hb) text_hb(out);
    if (dangling) text_dangling(out);
    return out;
  }
};

// ---- Chrome export ----

struct Chrome {
  an::ChromeTrace ct;
  int64_t pid;
  std::vector<std::string> site_names;  // "assign"
  std::vector<std::string> site_funcs;
  std::set<uint32_t> tids;

  void window(const an::WindowView& w) {
    tids.insert(w.thread);
    const std::string& op = w.site < site_names.size() ? site_names[w.site] : site_names.back();
    std::string args = fmt::format(R"({{"goroutine":{},"g":"{:#x}","map":"{:#x}","function":"{}","closed":{}}})",
                                   w.goroutine, w.g, w.map, w.site < site_funcs.size() ? site_funcs[w.site] : "",
                                   w.closed ? "true" : "false");
    ct.slice(pid, w.thread, fmt::format("{} {:#x}", op, w.map), "map-write", w.start_ns, w.end_ns, args);
  }

  // Companion track of a thread for perf's scheduling (slices on one track must nest, and a
  // write window can span a switch).
  static int64_t sched_tid(uint32_t tid) { return int64_t(tid) + 1'000'000'000; }

  core::Result<void> finish(const Report& rep) {
    const auto& h = rep.h;
    ct.process_name(pid, fmt::format("{} (pid {})", base_name(rep.program()), h.pid));
    uint64_t id = 1;
    for (auto& f : rep.r.findings) {
      const an::Access &a = f.a, &b = f.b;
      tids.insert(a.thread);
      tids.insert(b.thread);
      std::string name = fmt::format("{} {:#x}", f.kind, f.map);
      std::string args = fmt::format(
          R"({{"map":"{:#x}","count":{},"goroutines":[{},{}],"functions":[{},{}],"callers":[{},{}]}})", f.map, f.count,
          a.goroutine, b.goroutine, an::json_quote(a.function), an::json_quote(b.function),
          an::json_quote(caller(rep, a)), an::json_quote(caller(rep, b)));
      // Flow ends bind to the slice enclosing them: use the middle of each window. A throw
      // gets a 1 µs slice of its own to bind to.
      auto mid = [](const an::Access& x) { return x.start_ns + (x.end_ns - x.start_ns) / 2; };
      uint64_t t_b = b.threw ? b.start_ns + 500 : mid(b);
      if (b.threw)
        ct.slice(pid, b.thread, fmt::format("throw in {}", b.function.empty() ? "?" : b.function), "finding",
                 b.start_ns, b.start_ns + 1000, args);
      ct.flow_start(id, pid, a.thread, name, "finding", mid(a));
      ct.flow_end(id, pid, b.thread, name, "finding", t_b);
      ct.instant(pid, b.thread, name, "finding", std::max(a.start_ns, b.start_ns), "t", args);
      id++;
    }
    if (rep.hb) {
      for (auto& f : rep.hb->findings) {
        const an::HbAccess &a = f.a, &b = f.b;
        tids.insert(a.thread);
        tids.insert(b.thread);
        std::string name = fmt::format("{} {:#x}", f.kind, f.map);
        std::string args = fmt::format(
            R"({{"map":"{:#x}","count":{},"goroutines":[{},{}],"functions":[{},{}],"callers":[{},{}]}})", f.map,
            f.count, a.goroutine, b.goroutine, an::json_quote(a.function), an::json_quote(b.function),
            an::json_quote(caller(rep.hb_sym, a)), an::json_quote(caller(rep.hb_sym, b)));
        // A read is a point: a 1 µs slice of its own for the flow to bind to; a write binds
        // to its window's slice.
        auto at = [&](const an::HbAccess& x) {
          if (!x.read) return x.start_ns + (x.end_ns - x.start_ns) / 2;
          ct.slice(pid, x.thread, fmt::format("read {:#x}", x.map), "map-read", x.start_ns, x.start_ns + 1000, args);
          return x.start_ns + 500;
        };
        uint64_t ta = at(a), tb = at(b);
        ct.flow_start(id, pid, a.thread, name, "finding", ta);
        ct.flow_end(id, pid, b.thread, name, "finding", tb);
        ct.instant(pid, b.thread, name, "finding", b.start_ns, "t", args);
        id++;
      }
    }
    if (rep.perf) {
      for (uint32_t tid : tids) {
        const an::ThreadTimeline* tl = rep.perf->thread(tid);
        if (!tl) continue;
        for (auto& iv : tl->on_cpu) {
          std::string args = fmt::format(R"({{"cpu":{},"start_known":{},"end_known":{},"then":{}}})", iv.cpu,
                                         iv.start_known, iv.end_known, an::json_quote(iv.end_state));
          ct.slice(pid, sched_tid(tid), iv.cpu >= 0 ? fmt::format("on cpu {}", iv.cpu) : "on cpu", "sched",
                   iv.start_ns, iv.end_ns, args);
        }
        for (auto& s : tl->samples)
          ct.instant(pid, sched_tid(tid), sample_symbol(s, rep.symbols, h), "sample", s.time_ns, "t",
                     fmt::format(R"({{"cpu":{},"ip":"{:#x}","dso":{}}})", s.cpu, s.ip, an::json_quote(s.dso)));
        ct.thread_name(pid, sched_tid(tid), fmt::format("thread {} on-cpu (perf)", tid));
        ct.thread_sort_index(pid, sched_tid(tid), int64_t(tid) * 2 + 1);
      }
    }
    for (uint32_t tid : tids) {
      const an::ThreadTimeline* tl = rep.perf ? rep.perf->thread(tid) : nullptr;
      ct.thread_name(pid, tid, tl && !tl->comm.empty() ? fmt::format("thread {} ({})", tid, tl->comm)
                                                       : fmt::format("thread {}", tid));
      ct.thread_sort_index(pid, tid, int64_t(tid) * 2);
    }
    return ct.finish();
  }

  static std::string caller(const Report& rep, const an::Access& a) { return caller(rep.sym, a); }
  static std::string caller(const Report::Sym& sym, const an::Access& a) {
    if (a.stack >= sym.size() || sym[a.stack].empty()) return "";
    auto& f = sym[a.stack][0];
    return fmt::format("{} {}:{}", f.function, f.file, f.line);
  }
};

// ---- --bench ----

int run_bench(uint64_t n) {
  tr::SyntheticOptions so;
  so.threads = 4;
  so.maps = 8;
  so.stack_depth = 8;
  tr::SyntheticStream stream(so);
  char path[] = "/tmp/gort-report-bench-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) return report_error(core::make_error(core::ErrorKind::kIo, "mkstemp: {}", std::strerror(errno)));
  ::close(fd);
  struct Unlink {
    const char* p;
    ~Unlink() { ::unlink(p); }
  } unlink_at_end{path};

  auto t0 = std::chrono::steady_clock::now();
  {
    auto w = tr::Writer::create(path, stream.header());
    if (!w) return report_error(w.error());
    tr::Event e;
    uint64_t last = 0;
    for (uint64_t i = 0; i < n; i++) {
      stream.next(e);
      last = e.time_ns;
      if (auto r = w->add(e); !r) return report_error(r.error());
    }
    tr::Summary s;
    s.end_ns = last;
    s.end_reason = "synthetic";
    if (auto r = w->finish(s); !r) return report_error(r.error());
  }
  auto t1 = std::chrono::steady_clock::now();
  // Read only.
  uint64_t read_n = 0;
  {
    auto rd = tr::Reader::open(path);
    if (!rd) return report_error(rd.error());
    tr::Event e;
    for (;;) {
      auto r = rd->next(e);
      if (!r) return report_error(r.error());
      if (!*r) break;
      read_n++;
    }
  }
  auto t2 = std::chrono::steady_clock::now();
  // Read + analyze: what `gort report` does before symbolizing the findings.
  an::ConcurrentWritesResult res;
  {
    auto rd = tr::Reader::open(path);
    if (!rd) return report_error(rd.error());
    an::ConcurrentWrites cw(rd->header());
    tr::Event e;
    for (;;) {
      auto r = rd->next(e);
      if (!r) return report_error(r.error());
      if (!*r) break;
      cw.add(e);
    }
    res = cw.finish(rd->summary() ? rd->summary()->end_ns : 0);
  }
  auto t3 = std::chrono::steady_clock::now();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  double ra = secs(t2, t3), ro = secs(t1, t2);
  uint64_t occurrences = 0;
  for (auto& f : res.findings) occurrences += f.count;
  ojson j = {{"events", n},
                      {"read_events", read_n},
                      {"write_seconds", secs(t0, t1)},
                      {"read_seconds", ro},
                      {"read_analyze_seconds", ra},
                      {"events_per_second", ra > 0 ? std::round(double(n) / ra) : 0.0},
                      {"read_events_per_second", ro > 0 ? std::round(double(n) / ro) : 0.0},
                      {"windows", res.stats.windows},
                      {"findings", res.findings.size()},
                      {"occurrences", occurrences}};
  fmt::print("{}\n", j.dump());
  return kExitOk;
}

// ---- main ----

int run_report(const Args& args) {
  Options o;
  OptionParser p(args);
  std::string tok;
  while (p.next(tok)) {
    std::string v;
    if (tok == "--json") o.json = true;
    else if (tok == "--partial") o.partial = true;
    else if (tok == "--force") o.force = true;
    else if (tok == "--fail-on-findings") o.fail_on_findings = true;
    else if (tok == "--perf" || tok == "--chrome" || tok == "--binary") {
      if (!p.value(v) || v.empty()) return usage_error(kReportCommand, fmt::format("{} wants a path", tok));
      (tok == "--perf" ? o.perf : tok == "--chrome" ? o.chrome : o.binary) = v;
    } else if (tok == "--perf-window") {
      double ms = 0;
      if (!p.value(v) || (ms = std::atof(v.c_str())) <= 0 || ms > 60'000)
        return usage_error(kReportCommand, "--perf-window wants milliseconds (e.g. 1 or 0.2)");
      o.window_ns = uint64_t(ms * 1e6);
    } else if (tok == "--bench") {
      if (!p.value(v) || !core::parse_u64(v, o.bench) || o.bench == 0)
        return usage_error(kReportCommand, "--bench wants a positive number of events");
    } else if (p.is_option(tok)) {
      return usage_error(kReportCommand, fmt::format("unknown option '{}'", tok));
    } else if (o.trace.empty()) {
      o.trace = tok;
    } else {
      return usage_error(kReportCommand, fmt::format("one trace at a time ('{}' is extra)", tok));
    }
  }
  if (o.bench) return run_bench(o.bench);
  if (o.trace.empty()) return usage_error(kReportCommand, "missing TRACE (a file written by gort record)");

  auto reader = tr::Reader::open(o.trace, o.partial);
  if (!reader) return report_error(reader.error());
  const tr::Header& h = reader->header();
  auto symbols = open_binary(o, h);
  if (!symbols) return report_error(symbols.error());

  // perf first: a bad perf.data should fail before the (longer) analysis.
  std::optional<an::PerfTimeline> perf;
  if (!o.perf.empty()) {
    an::PerfLoadOptions po;
    po.pid = uint32_t(h.pid);
    po.allow_any_clock = o.force;
    auto tl = an::load_perf_timeline(o.perf, po);
    if (!tl) return report_error(tl.error());
    perf = std::move(tl).value();
  }

  std::optional<Chrome> chrome;
  an::ConcurrentWritesOptions co;
  if (symbols->tab()) co.throw_origin = an::throw_origin_from(*symbols->tab(), symbols->slide);
  if (!o.chrome.empty()) {
    auto ct = an::ChromeTrace::create(o.chrome);
    if (!ct) return report_error(ct.error());
    chrome.emplace(Chrome{std::move(ct).value(), h.pid, {}, {}, {}});
    for (auto& s : h.sites) {
      chrome->site_names.push_back(s.op.empty() ? an::map_op_of(s.function) : s.op);
      chrome->site_funcs.push_back(s.function);
    }
    chrome->site_names.push_back("write");
    co.on_window = [&](const an::WindowView& w) { chrome->window(w); };
  }

  auto t0 = std::chrono::steady_clock::now();
  // Map identity (address + lifetime) rests on what the recording saw of map creations.
  const an::MapLifetimeBasis basis =
      an::map_lifetime_basis(h, reader->summary() ? &*reader->summary() : nullptr);
  co.lifetimes = basis;
  an::ConcurrentWrites cw(h, co);
  // Happens-before only for a trace recorded with --sync: without sync events every pair
  // of goroutines would look unordered.
  std::optional<an::HappensBefore> hb;
  if (an::has_sync_sites(h)) {
    an::HappensBeforeOptions hbo;
    hbo.lifetimes = basis;
    hb.emplace(h, hbo);
  }
  std::optional<an::DanglingTrace> dt;
  tr::GoidResolver goids(h);
  {
    auto d = an::DanglingTrace::create(h, reader->heap_scans());
    if (!d) return report_error(d.error());
    if (d->enabled()) dt.emplace(std::move(*d));
  }
  tr::Event e;
  for (;;) {
    auto r = reader->next(e);
    if (!r) return report_error(r.error());
    if (!*r) break;
    cw.add(e);
    if (hb) hb->add(e);
    if (dt) {
      goids.apply(e);
      dt->add(e);
    }
  }
  const auto& summary = reader->summary();
  Report rep{o, h, summary, reader->notes(), cw.finish(summary ? summary->end_ns : 0), {}, *symbols, std::move(perf),
             {}, 0, {}, {}};
  if (hb) {
    auto& ho = hb->options();
    ho.lost_events = summary ? summary->lost : 0;
    ho.lost_unknown = !summary;
    ho.unprobed_sync_sites = an::count_unprobed_sync_sites(h, summary ? &*summary : nullptr);
    rep.hb = hb->finish();
  }
  if (dt) rep.dangling = dt->finish();
  rep.analyze_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.symbolize();

  if (!symbols->warning.empty()) rep.warnings.push_back(symbols->warning);
  if (rep.r.stats.out_of_order)
    rep.warnings.push_back(fmt::format("{} events were out of time order: windows around them may be wrong",
                                       rep.r.stats.out_of_order));
  if (rep.perf) {
    const auto& tl = *rep.perf;
    uint64_t t_lo = std::min(h.start_ns, rep.r.stats.first_ns ? rep.r.stats.first_ns : h.start_ns), t_hi = rep.end_ns();
    if (tl.parsed == 0)
      rep.warnings.push_back(fmt::format("{} holds no events perf script could print", o.perf));
    else if (tl.last_ns < t_lo || tl.first_ns > t_hi)
      rep.warnings.push_back(fmt::format(
          "{}: its times ({:.3f} .. {:.3f} s) do not overlap the trace's ({:.3f} .. {:.3f} s): was it recorded during "
          "the same run, with -k CLOCK_MONOTONIC?",
          o.perf, double(tl.first_ns) / 1e9, double(tl.last_ns) / 1e9, double(t_lo) / 1e9, double(t_hi) / 1e9));
    else if (tl.threads.empty())
      rep.warnings.push_back(fmt::format("{} has no thread of pid {}", o.perf, h.pid));
    if (tl.skipped)
      rep.warnings.push_back(fmt::format("{} of {} perf script lines not understood (first: {})", tl.skipped, tl.lines,
                                         tl.skipped_examples.empty() ? "" : tl.skipped_examples[0]));
  }

  if (chrome) {
    if (auto r = chrome->finish(rep); !r) return report_error(r.error());
  }
  std::string out = o.json ? rep.json().dump(2) + "\n" : rep.text();
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (!o.json && chrome) fmt::print("\nChrome trace: {} ({} events; open in https://ui.perfetto.dev)\n", o.chrome,
                                    chrome->ct.events());
  std::fflush(stdout);
  return o.fail_on_findings && rep.finding_count() ? kExitFindings : kExitOk;
}

}  // namespace

const Command kReportCommand{"report", "name the goroutines that wrote one map at the same time, from a trace",
                             kUsage, run_report};

}  // namespace gort::recorder
