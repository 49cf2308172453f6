// `gort map [ADDR] [--type TYPEADDR | --key-size N --elem-size M] [--limit N] [--json]`:
// decode a Go map (header and entries) in the stopped process, through core/goruntime/maps.
//
// The map type is not in the map header, so entries need it from somewhere:
// * --type: a *abi.MapType (Go 1.21-1.23, 1.26), *abi.OldMapType (noswiss 1.24/1.25) or
//   *abi.SwissMapType (1.24/1.25);
// * the registers, when the selected frame is stopped at the exact entry of a map
//   function: runtime.mapassign*/mapdelete*/mapclear/mapaccess* take RAX = map type,
//   RBX = map; (*maps.Map).Delete/Clear/PutSlot take RAX = map, RBX = type
//   (ABIInternal, go-runtime.md 1.3). `gort map` with no ADDR then decodes the map being
//   written;
// * --key-size/--elem-size: geometry only, values printed as hex.
// Without any of these, only the header is printed.

#include "core/binary/go_binary.h"
#include "core/goruntime/maps.h"
#include "core/target/memory.h"
#include "plugin/commands.h"
#include "plugin/lldb_target.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

namespace gort::plugin {
namespace {

using core::RemoteAddr;

struct Options {
  std::optional<std::string> addr, type;
  std::optional<uint64_t> key_size, elem_size;
  size_t limit = 20;
  bool json = false;
};

std::optional<uint64_t> parse_uint(std::string_view s) {
  int base = 10;
  if (s.starts_with("0x") || s.starts_with("0X")) {
    s.remove_prefix(2);
    base = 16;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string parse_options(char** command, Options& o) {
  for (int i = 0; command && command[i]; i++) {
    std::string_view a = command[i];
    auto value = [&](const char* name) -> std::optional<std::string> {
      if (!command[i + 1]) return std::nullopt;
      (void)name;
      return std::string(command[++i]);
    };
    if (a == "--json") {
      o.json = true;
    } else if (a == "--type" || a == "--limit" || a == "--key-size" || a == "--elem-size") {
      auto v = value(a.data());
      if (!v) return fmt::format("{} needs a value", a);
      if (a == "--type") {
        o.type = *v;
        continue;
      }
      auto n = parse_uint(*v);
      if (!n) return fmt::format("{} wants a number, got '{}'", a, *v);
      if (a == "--limit") o.limit = *n;
      else if (a == "--key-size") o.key_size = *n;
      else o.elem_size = *n;
    } else if (a.starts_with("-")) {
      return fmt::format("unknown option '{}'", a);
    } else if (!o.addr) {
      o.addr = std::string(a);
    } else {
      return fmt::format("unexpected argument '{}' (one ADDR only)", a);
    }
  }
  if (o.key_size.has_value() != o.elem_size.has_value()) return "--key-size and --elem-size go together";
  if (o.type && o.key_size) return "--type and --key-size/--elem-size exclude each other";
  return "";
}

// The (map, type) arguments of the map function the frame is stopped at the entry of.
struct EntryArgs {
  std::string func;
  RemoteAddr map, type;
};
std::optional<EntryArgs> map_function_entry(const core::GoBinary& bin, lldb::SBFrame frame) {
  if (!frame.IsValid()) return std::nullopt;
  uint64_t pc = frame.GetPCAddress().GetFileAddress();  // unslid, as pclntab (PIE)
  auto f = bin.pclntab().find_func(RemoteAddr(pc));
  if (!f || f->entry.value() != pc) return std::nullopt;
  auto reg = [&](const char* r) { return RemoteAddr(frame.FindRegister(r).GetValueAsUnsigned()); };
  std::string_view n = f->name;
  for (std::string_view p : {"runtime.mapassign", "runtime.mapdelete", "runtime.mapclear", "runtime.mapaccess"})
    if (n.starts_with(p)) return EntryArgs{std::string(n), reg("rbx"), reg("rax")};
  for (std::string_view m : {"internal/runtime/maps.(*Map).Delete", "internal/runtime/maps.(*Map).Clear",
                             "internal/runtime/maps.(*Map).PutSlot"})
    if (n == m) return EntryArgs{std::string(n), reg("rax"), reg("rbx")};
  return std::nullopt;
}

std::string type_desc(const core::GoTypeInfo& t, bool indirect) {
  const char* k = t.kind == core::GoKind::kInvalid ? "?" : core::to_string(t.kind);
  return fmt::format("{}({}){}", k, t.size, indirect ? " indirect" : "");
}

// hmap.flags bits (runtime/map.go: iterator 1, oldIterator 2, hashWriting 4, sameSizeGrow 8).
std::string hmap_flag_names(uint8_t f) {
  static const char* const names[] = {"iterator", "oldIterator", "hashWriting", "sameSizeGrow"};
  std::string out;
  for (int i = 0; i < 4; i++)
    if (f & (1u << i)) out += std::string(out.empty() ? "" : "|") + names[i];
  return out.empty() ? "" : " (" + out + ")";
}

std::string header_line(const core::MapHeader& h) {
  if (h.impl == core::MapImpl::kHmap)
    return fmt::format("map      {} hmap count={} writing={} flags={:#x}{} B={} buckets={} oldbuckets={} nevacuate={}"
                       " noverflow={}{}",
                       h.addr, h.count, h.writing, h.flags, hmap_flag_names(h.flags), h.b, h.buckets, h.oldbuckets,
                       h.nevacuate, h.noverflow, h.growing() ? " (growing)" : "");
  if (h.small())
    return fmt::format("map      {} swiss count={} writing={} small group={}", h.addr, h.count, h.writing, h.dir_ptr);
  return fmt::format("map      {} swiss count={} writing={} dirLen={} globalDepth={} tables={}", h.addr, h.count,
                     h.writing, h.dir_len, h.global_depth, h.tables.size());
}

nlohmann::json to_json(const core::MapHeader& h, const core::MapTypeInfo* t, const core::MapContents* c,
                       const std::string& source) {
  auto hex = [](RemoteAddr a) { return fmt::format("{}", a); };
  nlohmann::json j = {{"addr", hex(h.addr)}, {"impl", core::to_string(h.impl)}, {"count", h.count},
                      {"writing", h.writing}, {"source", source}};
  if (h.impl == core::MapImpl::kHmap) {
    j.update({{"flags", h.flags}, {"B", h.b}, {"noverflow", h.noverflow}, {"buckets", hex(h.buckets)},
              {"oldbuckets", hex(h.oldbuckets)}, {"nevacuate", h.nevacuate}, {"growing", h.growing()}});
  } else {
    j.update({{"writing_byte", h.writing_byte}, {"dir_ptr", hex(h.dir_ptr)}, {"dir_len", h.dir_len},
              {"global_depth", h.global_depth}, {"small", h.small()}});
    auto tabs = nlohmann::json::array();
    for (auto& tb : h.tables)
      tabs.push_back({{"addr", hex(tb.addr)}, {"used", tb.used}, {"capacity", tb.capacity},
                      {"groups", tb.ngroups}});
    j["tables"] = tabs;
  }
  if (t) {
    auto ty = [](const core::GoTypeInfo& g) {
      return nlohmann::json{{"kind", core::to_string(g.kind)}, {"size", g.size}};
    };
    j["type"] = {{"addr", hex(t->addr)}, {"key", ty(t->key)}, {"elem", ty(t->elem)},
                 {"indirect_key", t->indirect_key}, {"indirect_elem", t->indirect_elem}};
  }
  if (c) {
    auto es = nlohmann::json::array();
    for (auto& e : c->entries) es.push_back({{"key", e.key}, {"elem", e.elem}, {"where", e.where}});
    j["entries"] = es;
    j["found"] = c->found;
    j["truncated"] = c->entries.size() < c->found;
    j["warnings"] = c->warnings;
  }
  return j;
}

class MapCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override {
    try {
      return run(debugger, command, result);
    } catch (const std::exception& e) {
      result.SetError(fmt::format("gort map: internal error: {}", e.what()).c_str());
      return false;
    }
  }

 private:
  static bool fail(lldb::SBCommandReturnObject& result, const std::string& msg) {
    result.SetError(fmt::format("gort map: {}\n", msg).c_str());
    return false;
  }

  bool run(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) {
    Options o;
    if (auto err = parse_options(command, o); !err.empty())
      return fail(result, err + "; usage: gort map [ADDR] [--type TYPEADDR | --key-size N --elem-size M] "
                                "[--limit N] [--json]");
    auto gt = open_go_target(debugger);
    if (!gt) return fail(result, gt.error().message);
    const core::GoBinary& b = *gt->bin;
    lldb::SBFrame frame = gt->process.GetSelectedThread().GetSelectedFrame();
    const core::Memory& mem = *gt->mem;

    auto entry = map_function_entry(b, frame);
    RemoteAddr map_addr;
    std::string source = "argument";
    if (o.addr) {
      auto a = eval_address(frame, *o.addr);
      if (!a) return fail(result, a.error().message);
      map_addr = *a;
    } else if (entry) {
      map_addr = entry->map;
      source = entry->func;
    } else {
      return fail(result, "which map? give ADDR, or stop at the entry of a map function (e.g. `breakpoint set -s PROG -a "
                          "<entry of runtime.mapassign_faststr>`) where RBX is the map and RAX its type");
    }

    auto h = core::read_map_header(mem, b.layouts(), b.map_impl(), map_addr);
    if (!h)
      return fail(result, h.error().message + (source == "argument" ? "; is it a map pointer? (at the entry of "
                                                                      "runtime.mapassign* the map is in RBX)"
                                                                    : ""));

    std::optional<core::MapTypeInfo> type;
    std::string no_type_hint;
    if (o.type) {
      auto ta = eval_address(frame, *o.type);
      if (!ta) return fail(result, ta.error().message);
      auto t = core::read_map_type(mem, b.layouts(), b.map_impl(), *ta);
      if (!t) return fail(result, fmt::format("--type {}: {}", *o.type, t.error().message));
      type = *t;
    } else if (o.key_size) {
      type = core::map_type_from_sizes(b.map_impl(), *o.key_size, *o.elem_size);
    } else if (entry && entry->map == map_addr) {
      auto t = core::read_map_type(mem, b.layouts(), b.map_impl(), entry->type);
      if (t) type = *t;
      else no_type_hint = t.error().message;
    }
    if (!type && no_type_hint.empty())
      no_type_hint = "map type unknown: pass --type TYPEADDR (RAX at the entry of runtime.mapassign*, or the type "
                     "word of an interface holding the map), or --key-size N --elem-size M";

    std::optional<core::MapContents> contents;
    if (type) {
      auto c = core::read_map_entries(mem, *h, *type, o.limit);
      if (!c) return fail(result, c.error().message);
      contents = std::move(*c);
    }

    if (o.json) {
      auto j = to_json(*h, type ? &*type : nullptr, contents ? &*contents : nullptr, source);
      if (!no_type_hint.empty()) j["note"] = no_type_hint;
      result.Printf("%s\n", j.dump().c_str());
      result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
      return true;
    }
    std::string out = header_line(*h) + "\n";
    if (source != "argument") out += fmt::format("from     {} entry: RBX/RAX\n", source);
    if (type) {
      out += fmt::format("type     {} key {} elem {}\n",
                         type->addr.is_null() ? std::string("(sizes from --key-size/--elem-size)") : fmt::format("{}", type->addr),
                         type_desc(type->key, type->indirect_key), type_desc(type->elem, type->indirect_elem));
      for (auto& e : contents->entries) out += fmt::format("  {}: {}\n", e.key, e.elem);
      if (contents->found == 0)
        out += "no entries\n";
      else if (contents->entries.size() < contents->found)
        out += fmt::format("{} of {} entries shown (--limit N for more)\n", contents->entries.size(), contents->found);
      else
        out += fmt::format("{} {}\n", contents->found, contents->found == 1 ? "entry" : "entries");
      for (auto& w : contents->warnings) out += fmt::format("warning: {}\n", w);
    } else {
      out += fmt::format("note: {}\n", no_type_hint);
    }
    result.Printf("%s", out.c_str());
    result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
    return true;
  }
};

}  // namespace

void register_map_commands(lldb::SBCommand& root) {
  root.AddCommand("map", new MapCommand(),
                  "Decode a Go map's header and entries (hmap or swiss). With no ADDR at the entry of "
                  "runtime.mapassign*/mapdelete*/mapclear, decodes the map being written (RBX) using its type (RAX).",
                  "gort map [ADDR] [--type TYPEADDR | --key-size N --elem-size M] [--limit N] [--json]\n"
                  "  ADDR: hex, a register ($rbx) or an expression. Example, at a breakpoint set with\n"
                  "  `breakpoint set -s PROG -a <entry of runtime.mapassign_faststr>` (pclntab address):\n"
                  "    gort map\n"
                  "    gort map $rbx --type $rax --limit 5\n"
                  "    gort map 0xc000012345 --key-size 16 --elem-size 8");
}

}  // namespace gort::plugin
