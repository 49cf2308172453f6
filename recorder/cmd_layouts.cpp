// gort layouts: a developer command that prints the runtime struct offsets gort would use
// for a binary, and where they came from (DWARF or the per-version table). The e2e tests
// use it to check the tables against each toolchain's DWARF.
//
// Works from ELF + build info alone (no pclntab/moduledata), so it can inspect binaries
// the rest of gort cannot open yet.

#include "core/binary/buildinfo.h"
#include "core/binary/elf_file.h"
#include "core/goruntime/layouts.h"
#include "core/goruntime/versions.h"
#include "recorder/cli.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>

namespace gort::recorder {
namespace {

constexpr const char* kUsage =
    "Usage: gort layouts BINARY [--json] [--source dwarf|table|auto]\n"
    "\n"
    "Developer command: the runtime struct field offsets gort uses for BINARY (g, m, p,\n"
    "hmap or swiss map, map types, mspan, ...), and their source.\n"
    "\n"
    "  --source auto   DWARF when the binary has it, the Go version's table for structs\n"
    "                  DWARF lacks and for binaries without DWARF (default)\n"
    "  --source dwarf  as auto, but fail if the binary has no DWARF\n"
    "  --source table  only the built-in table for the binary's Go version\n"
    "  --json          {\"go_version\", \"map_impl\", \"source\", \"fields\": {name: offset|null}, \"notes\"}\n";

int run_layouts(const Args& args) {
  OptionParser p(args);
  std::string tok, path, source = "auto";
  bool json = false;
  while (p.next(tok)) {
    if (tok == "--json") {
      json = true;
    } else if (tok == "--source") {
      if (!p.value(source)) return usage_error(kLayoutsCommand, "--source needs dwarf, table or auto");
      if (source != "dwarf" && source != "table" && source != "auto")
        return usage_error(kLayoutsCommand, fmt::format("--source '{}': expected dwarf, table or auto", source));
    } else if (p.is_option(tok)) {
      return usage_error(kLayoutsCommand, fmt::format("unknown option '{}'", tok));
    } else if (path.empty()) {
      path = tok;
    } else {
      return usage_error(kLayoutsCommand, fmt::format("one binary at a time ('{}' is extra)", tok));
    }
  }
  if (path.empty()) return usage_error(kLayoutsCommand, "which binary?");

  auto elf = core::ElfFile::open(path);
  if (!elf) return report_error(elf.error());
  auto bi = core::read_buildinfo(**elf);
  if (!bi) return report_error(bi.error());
  const core::GoVersion& v = bi->version;
  const auto exps = bi->goexperiments();
  const bool noswiss = std::find(exps.begin(), exps.end(), "noswissmap") != exps.end();
  const core::MapImpl map = core::map_impl_for(v, noswiss);

  core::LayoutsWithSource lay;
  if (source == "table") {
    auto t = core::layouts_from_table(v, map);
    if (!t) return report_error(t.error().with_context(path));
    lay.layouts = *t;
    lay.source = core::LayoutSource::kTable;
  } else {
    if (source == "dwarf" && !(*elf)->has_dwarf())
      return report_error(core::make_error(core::ErrorKind::kNotFound,
                                           "{}: no DWARF (built with -ldflags=-w?); try --source table", path));
    auto l = core::load_layouts(**elf, v, map);
    if (!l) return report_error(l.error().with_context(path));
    lay = std::move(l).value();
  }

  const auto& descs = core::runtime_field_descs();
  if (json) {
    nlohmann::ordered_json fields = nlohmann::ordered_json::object();
    for (auto& d : descs) {
      uint32_t off = lay.layouts.*d.ptr;
      fields[d.member] = off == core::kAbsentField ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(off);
    }
    nlohmann::ordered_json out = {{"go_version", v.raw},
                                  {"map_impl", core::to_string(map)},
                                  {"source", core::to_string(lay.source)},
                                  {"fields", fields},
                                  {"notes", lay.notes}};
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  fmt::print("{}: {}, {} maps, layouts from {}\n", path, v.raw, core::to_string(map), core::to_string(lay.source));
  for (auto& d : descs) {
    uint32_t off = lay.layouts.*d.ptr;
    std::string where = fmt::format("{} {}", d.structs, *d.field ? d.field : "(size)");
    fmt::print("  {:<26} {:>9}  {}\n", d.member, off == core::kAbsentField ? "-" : fmt::format("{:#x}", off), where);
  }
  for (auto& n : lay.notes) fmt::print("note: {}\n", n);
  return kExitOk;
}

}  // namespace

const Command kLayoutsCommand{"layouts", "(developer) runtime struct offsets for a binary and their source", kUsage,
                              run_layouts};

}  // namespace gort::recorder
