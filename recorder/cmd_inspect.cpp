// gort inspect BIN: what gort knows about a Go binary before touching any process: Go
// version and build settings, map implementation, where runtime layouts come from, and
// the probe plan (map-write entry points with their flag set/clear sites and RETs, write
// barriers, checkptr hooks). `--json` is the contract scripts and tests rely on.

#include "core/binary/go_binary.h"
#include "core/disasm/probe_plan.h"
#include "core/goruntime/runtime_vars.h"
#include "recorder/cli.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include "core/disasm/sync_sites.h"
#include <optional>

namespace gort::recorder {
namespace {

constexpr const char* kUsage = R"(Usage: gort inspect BIN [--json] [--sync [--reads]] [--force-version]

Print what gort knows about a Go executable: its Go version and build settings, the map
implementation (hmap buckets up to Go 1.23 and in noswissmap builds; swiss tables from
1.24), where the runtime struct layouts come from (the binary's DWARF, or gort's
per-version tables when it is stripped), and the probe plan: every map-write function
with its entry, the instructions that set and clear the map's writing flag, and its RETs;
the write-barrier entry points; checkptr hooks when the binary was built with checkptr.

Options:
  --json            machine-readable output (addresses are hex strings, link-time
                    addresses for PIE binaries)
  --sync            also list the synchronization sites `gort record --sync` probes:
                    inlined Mutex/RWMutex/Once fast paths found through the inline tree,
                    lock slow paths, channel, select and WaitGroup entry points
  --reads           with --sync: also the map-read entry points (`gort record --reads`)
  --force-version   try a Go version outside 1.21-1.26 anyway (results may be wrong)

Examples:
  gort inspect ./server
  gort inspect ./server --json | jq '.probes[] | select(.role=="map-assign")'

Exit status: 0 on success; 2 when BIN is missing, not a Go binary, truncated, or built
with an unsupported Go version.
)";

std::string hex(core::RemoteAddr a) { return fmt::format("{}", a); }

nlohmann::json site_list(const std::vector<core::FlagSite>& v) {
  auto j = nlohmann::json::array();
  for (auto& s : v) j.push_back(hex(s.addr));
  return j;
}

nlohmann::json runtime_var_json(const core::Result<core::RuntimeVar>& v) {
  if (!v) return {{"error", v.error().message}};
  return {{"addr", hex(v->addr)}, {"how", v->how}};
}

nlohmann::json to_json(const core::GoBinary& b, const core::ProbePlan& plan) {
  using nlohmann::json;
  const auto& bi = b.build_info();
  json j;
  j["binary"] = b.elf().path();
  j["go_version"] = b.version().raw;
  j["map_impl"] = core::to_string(b.map_impl());
  j["layouts"] = core::to_string(b.layout_source());
  j["pie"] = b.elf().is_pie();
  j["stripped"] = b.stripped();
  j["build"] = {{"race", bi.race()}, {"checkptr", bi.checkptr()}, {"goexperiments", bi.goexperiments()},
                {"main_module", bi.main_module}, {"path", bi.path}};
  j["moduledata"] = {{"address", hex(b.moduledata().addr)}, {"found_by", b.moduledata().found_by}};
  j["functions"] = b.pclntab().num_funcs();
  j["runtime_vars"] = {{"mheap", runtime_var_json(core::find_mheap(b))},
                       {"gcphase", runtime_var_json(core::find_gcphase(b))},
                       {"memstats", runtime_var_json(core::find_memstats(b))}};
  json probes = json::array();
  for (auto& p : plan.probes) {
    json rets = json::array();
    for (auto r : p.returns) rets.push_back(hex(r));
    json sites = json::array();
    for (auto* list : {&p.write_begin, &p.write_end})
      for (auto& s : *list)
        sites.push_back({{"address", hex(s.addr)}, {"kind", list == &p.write_begin ? "write_begin" : "write_end"},
                         {"map_reg", s.base_reg}, {"disp", s.disp}, {"length", s.length}});
    probes.push_back({{"function", p.function},
                      {"role", core::to_string(p.role)},
                      {"entry", hex(p.entry)},
                      {"end", hex(p.end)},
                      {"map_reg", p.map_reg},
                      {"key_reg", p.key_reg},
                      {"key_kind", p.key_kind},
                      {"write_begin", site_list(p.write_begin)},
                      {"write_end", site_list(p.write_end)},
                      {"returns", rets},
                      {"sites", sites}});
  }
  j["probes"] = probes;
  json creators = json::array();
  for (auto& c : plan.creators) {
    json rets = json::array();
    for (auto r : c.returns) rets.push_back(hex(r));
    creators.push_back({{"function", c.function}, {"entry", hex(c.entry)}, {"map_reg", c.map_reg}, {"returns", rets}});
  }
  j["map_creators"] = creators;
  j["warnings"] = plan.warnings;
  j["notes"] = b.notes();
  return j;
}

nlohmann::json sync_json(const core::SyncPlan& sp) {
  auto sites = nlohmann::json::array();
  for (auto& s : sp.sites) {
    nlohmann::json j = {{"kind", core::trace::to_string(s.kind)}, {"op", s.op},         {"function", s.function},
                        {"inlined", s.inlined},                   {"addr", hex(s.addr)}};
    if (std::string o = core::object_text(s); o != "-") j["object"] = o;
    sites.push_back(std::move(j));
  }
  return {{"sites", std::move(sites)}, {"inlined_sites", sp.inlined_sites}, {"warnings", sp.warnings}};
}

void print_sync(const core::SyncPlan& sp) {
  fmt::print("\nsync sites: {} ({} inlined into callers)\n", sp.sites.size(), sp.inlined_sites);
  fmt::print("  {:<12} {:<16} {:>10}  {:<14} {}\n", "KIND", "OP", "ADDR", "OBJECT", "FUNCTION");
  for (auto& s : sp.sites) {
    std::string obj = core::object_text(s);
    fmt::print("  {:<12} {:<16} {:>10}  {:<14} {}{}\n", core::trace::to_string(s.kind), s.op, hex(s.addr), obj,
               s.function, s.inlined.empty() ? "" : " (inlined " + s.inlined + ")");
  }
  for (auto& w : sp.warnings) fmt::print("warning: {}\n", w);
}

void print_human(const core::GoBinary& b, const core::ProbePlan& plan) {
  const auto& bi = b.build_info();
  std::string kind = b.elf().is_pie() ? "PIE" : "non-PIE";
  if (b.stripped()) kind += ", stripped";
  fmt::print("binary      {} ({})\n", b.elf().path(), kind);
  std::string settings;
  if (bi.race()) settings += " -race";
  if (bi.checkptr() && !bi.race()) settings += " checkptr";
  for (auto& e : bi.goexperiments()) settings += " GOEXPERIMENT=" + e;
  fmt::print("go          {}{}\n", b.version().raw, settings.empty() ? "" : " (" + settings.substr(1) + ")");
  fmt::print("maps        {}\n", b.map_impl() == core::MapImpl::kSwiss ? "swiss tables (internal/runtime/maps)"
                                                                       : "hmap buckets (runtime/map.go)");
  fmt::print("layouts     {}\n", b.layout_source() == core::LayoutSource::kDwarf ? "from DWARF"
                                                                               : "from gort's per-version table (no DWARF)");
  fmt::print("pclntab     {} functions; moduledata at {} (found by {})\n", b.pclntab().num_funcs(), b.moduledata().addr,
             b.moduledata().found_by);
  fmt::print("\nprobe plan: {} functions\n", plan.probes.size());
  fmt::print("  {:<14} {:<46} {:>10} {:>6} {:>6} {:>5}\n", "ROLE", "FUNCTION", "ENTRY", "BEGIN", "END", "RETS");
  for (auto& p : plan.probes)
    fmt::print("  {:<14} {:<46} {:>10} {:>6} {:>6} {:>5}\n", core::to_string(p.role), p.function, hex(p.entry),
               p.write_begin.size(), p.write_end.size(), p.returns.size());
  fmt::print("\nmap creation: {} functions (the new map in the result register at each RET)\n", plan.creators.size());
  for (auto& c : plan.creators)
    fmt::print("  {:<14} {:<46} {:>10} {:>6} {:>6} {:>5}\n", core::to_string(c.role), c.function, hex(c.entry), "-", "-",
               c.returns.size());
  for (auto& w : plan.warnings) fmt::print("warning: {}\n", w);
  for (auto& n : b.notes()) fmt::print("note: {}\n", n);
}

int run_inspect(const Args& args) {
  std::string path;
  bool json = false, sync = false, reads = false;
  core::GoBinary::Options opts;
  OptionParser p(args);
  std::string tok;
  while (p.next(tok)) {
    if (tok == "--json") json = true;
    else if (tok == "--force-version") opts.allow_unsupported_version = true;
    else if (tok == "--sync") sync = true;
    else if (tok == "--reads") reads = true;
    else if (p.is_option(tok)) return usage_error(kInspectCommand, fmt::format("unknown option '{}'", tok));
    else if (path.empty()) path = tok;
    else return usage_error(kInspectCommand, fmt::format("one binary at a time (got '{}' and '{}')", path, tok));
  }
  if (path.empty()) return usage_error(kInspectCommand, "missing BIN (the Go executable to inspect)");
  auto bin = core::GoBinary::open(path, opts);
  if (!bin) return report_error(bin.error());
  auto plan = core::build_probe_plan(**bin);
  if (!plan) return report_error(plan.error().with_context(fmt::format("{}: building the probe plan", path)));
  if (reads && !sync) return usage_error(kInspectCommand, "--reads lists map-read sites of the --sync plan: add --sync");
  std::optional<core::SyncPlan> sp;
  if (sync) {
    auto r = core::build_sync_plan(**bin, reads);
    if (!r) return report_error(r.error().with_context(fmt::format("{}: finding the synchronization sites", path)));
    sp = std::move(*r);
  }
  if (json) {
    auto j = to_json(**bin, *plan);
    if (sp) j["sync"] = sync_json(*sp);
    fmt::print("{}\n", j.dump(2));
  } else {
    print_human(**bin, *plan);
    if (sp) print_sync(*sp);
  }
  return kExitOk;
}

}  // namespace

const Command kInspectCommand{"inspect", "Go version, map implementation, layouts and probe plan of a binary", kUsage,
                              run_inspect};

}  // namespace gort::recorder
