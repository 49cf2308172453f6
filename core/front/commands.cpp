// gort's debugger-independent inspection commands (commands.h). Moved here from the LLDB
// plugin's cmd_*.cpp so the GDB extension prints exactly the same output.

#include "core/front/commands.h"

#include "core/analysis/dangling.h"
#include "core/binary/go_binary.h"
#include "core/disasm/probe_plan.h"
#include "core/goruntime/addr_info.h"
#include "core/goruntime/goroutines.h"
#include "core/goruntime/heap.h"
#include "core/goruntime/maps.h"
#include "core/goruntime/unwind.h"
#include "core/postmortem/memory_analysis.h"
#include "core/postmortem/verdict.h"
#include "core/util/strings.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <exception>
#include <functional>
#include <map>

namespace gort::core::front {
namespace {

using Args = std::vector<std::string>;

Reply fail(std::string_view who, const std::string& msg) {
  return Reply{false, "", fmt::format("{}: {}", who, msg)};
}

// ---- the opened target ----------------------------------------------------------------

struct GoTarget {
  std::unique_ptr<GoBinary> bin;
  std::unique_ptr<Memory> mem;
  int64_t slide = 0;
};

Result<GoTarget> open_go_target(Debuggee& d) {
  std::string why;
  std::string path = d.executable(why);
  if (path.empty())
    return make_error(ErrorKind::kBadInput, "{}", why.empty() ? "no target; " + d.hints().no_target : why);
  GoTarget t;
  GORT_TRY(t.bin, GoBinary::open(path));
  std::string detail;
  ProcState st = d.state(detail);
  if (st == ProcState::kNone) return make_error(ErrorKind::kBadInput, "no process; {}", d.hints().no_process);
  d.opened();
  if (st == ProcState::kRunning)
    return make_error(ErrorKind::kBadInput, "the process is not stopped (state {}); {}", detail, d.hints().interrupt);
  t.slide = d.slide();
  if (st == ProcState::kStopped) {
    if (auto pm = ProcMemory::open(d.pid()); pm.ok()) t.mem = std::move(pm).value();
  }
  if (!t.mem) t.mem = d.debugger_memory();
  return t;
}

// ---- goroutines, bt ---------------------------------------------------------------------

struct Listing {
  GoTarget t;
  std::vector<Goroutine> gs;
  std::vector<ThreadRegs> regs;
};

Result<Listing> list(Debuggee& d, bool include_dead) {
  GORT_TRY(GoTarget t, open_go_target(d));
  GORT_TRY(AllgsLocation loc, find_allgs(*t.bin));
  GORT_TRY(auto gs, read_goroutines(*t.mem, t.bin->layouts(), t.bin->version(), loc.addr + t.slide,
                                    {.include_dead = include_dead}));
  classify_system(t.bin->pclntab(), t.slide, gs);
  GORT_TRY(auto regs, d.threads());
  return Listing{std::move(t), std::move(gs), std::move(regs)};
}

Result<Unwound> stack_of(const Listing& l, const Goroutine& g, uint64_t* tid) {
  auto start = unwind_start_for(*l.t.mem, g, l.regs, tid);
  return unwind(*l.t.mem, l.t.bin->pclntab(), l.t.slide, start);
}

std::string where(const SourceFrame* f) {
  if (!f) return "?";
  return fmt::format("{} at {}:{}", f->function, f->file, f->line);
}

// The selected thread's user goroutine, or an error saying why there is none.
Result<RemoteAddr> selected_g(Debuggee& d, const Listing& l) {
  auto r = d.selected_thread();
  if (!r) return make_error(ErrorKind::kNotFound, "no selected thread");
  GORT_TRY(RemoteAddr g, thread_g(*l.t.mem, *r));
  GORT_TRY(RemoteAddr ug, user_g(*l.t.mem, l.t.bin->layouts(), g));
  if (ug.is_null()) {
    return make_error(ErrorKind::kNotFound,
                      "thread {} runs no goroutine (system stack, m.curg is nil); give a GOID: `gort bt GOID`", r->tid);
  }
  return ug;
}

nlohmann::json frames_json(const Unwound& u, int64_t slide) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& f : u.frames) {
    for (const auto& s : f.sources) {
      a.push_back({{"pc", fmt::format("{}", f.pc)}, {"link_pc", fmt::format("{}", f.pc - slide)},
                   {"function", std::string(s.function)}, {"file", std::string(s.file)}, {"line", s.line},
                   {"inlined", s.inlined}});
    }
    if (f.sources.empty()) a.push_back({{"pc", fmt::format("{}", f.pc)}, {"function", nullptr}});
  }
  return a;
}

Reply cmd_goroutines(Debuggee& d, const Args& args) {
  const char* who = "gort goroutines";
  bool all = false, json = false;
  for (const auto& a : args) {
    if (a == "--all" || a == "-a") all = true;
    else if (a == "--json") json = true;
    else return fail(who, fmt::format("unknown argument '{}'; usage: gort goroutines [--all] [--json]", a));
  }
  auto l = list(d, all);
  if (!l) return fail(who, l.error().message);
  RemoteAddr current = selected_g(d, *l).value_or(RemoteAddr());
  size_t hidden = 0;
  nlohmann::json j = nlohmann::json::array();
  std::string text = fmt::format("  {:>6}  {:<10} {:<22} {:>8}  {}\n", "GOID", "STATUS", "WAIT REASON", "THREAD", "WHERE");
  for (const auto& g : l->gs) {
    if (g.system && !all) {
      ++hidden;
      continue;
    }
    uint64_t tid = 0;
    auto u = stack_of(*l, g, &tid);
    const SourceFrame* f = u ? innermost_user_frame(*u) : nullptr;
    std::string loc = u ? where(f) : fmt::format("? ({})", u.error().message);
    std::string thread = g.thread_id ? fmt::format("{}", g.thread_id) : "";
    if (json) {
      nlohmann::json e = {{"goid", g.goid}, {"g", fmt::format("{}", g.g)}, {"status", g_status_name(g.status)},
                          {"wait_reason", g.wait_reason_name}, {"system", g.system}, {"current", g.g == current}};
      e["thread"] = g.thread_id ? nlohmann::json(g.thread_id) : nlohmann::json(nullptr);
      if (f) e["where"] = {{"function", std::string(f->function)}, {"file", std::string(f->file)}, {"line", f->line}};
      j.push_back(std::move(e));
    } else {
      text += fmt::format("{} {:>6}  {:<10} {:<22} {:>8}  {}{}\n", g.g == current ? '*' : ' ', g.goid,
                          g_status_name(g.status), g.wait_reason_name, thread, loc, g.system ? " (system)" : "");
    }
  }
  if (json) return Reply{true, j.dump(2) + "\n", ""};
  text += fmt::format("{} goroutines{}\n", l->gs.size() - hidden,
                      hidden ? fmt::format(" ({} runtime goroutines hidden; --all shows them and dead ones)", hidden)
                             : std::string());
  return Reply{true, text, ""};
}

Reply cmd_bt(Debuggee& d, const Args& args) {
  const char* who = "gort bt";
  bool json = false;
  std::optional<uint64_t> goid;
  for (const auto& a : args) {
    if (a == "--json") {
      json = true;
      continue;
    }
    uint64_t v = 0;
    bool hex = a.starts_with("0x") || a.starts_with("0X");
    if (!(hex ? a.size() > 2 && parse_hex(a, v) : parse_u64(a, v)))
      return fail(who, fmt::format("'{}' is not a goroutine id; usage: gort bt [GOID] [--json]", a));
    goid = v;
  }
  auto l = list(d, false);
  if (!l) return fail(who, l.error().message);
  const Goroutine* g = nullptr;
  if (goid) {
    for (const auto& x : l->gs)
      if (x.goid == *goid) g = &x;
    if (!g) return fail(who, fmt::format("no live goroutine {}; `gort goroutines --all` lists them", *goid));
  } else {
    auto cur = selected_g(d, *l);
    if (!cur) return fail(who, cur.error().message);
    for (const auto& x : l->gs)
      if (x.g == *cur) g = &x;
    if (!g) return fail(who, fmt::format("the selected thread's g {} is not in runtime.allgs", *cur));
  }
  uint64_t tid = 0;
  auto u = stack_of(*l, *g, &tid);
  if (!u) return fail(who, fmt::format("goroutine {}: {}", g->goid, u.error().message));
  if (json) {
    nlohmann::json j = {{"goid", g->goid}, {"status", g_status_name(g->status)},
                        {"wait_reason", g->wait_reason_name}, {"frames", frames_json(*u, l->t.slide)},
                        {"stop_reason", u->stop_reason}};
    j["thread"] = g->thread_id ? nlohmann::json(g->thread_id) : nlohmann::json(nullptr);
    return Reply{true, j.dump(2) + "\n", ""};
  }
  std::string state = g_status_name(g->status);
  if (!g->wait_reason_name.empty()) state += ", " + g->wait_reason_name;
  if (g->thread_id) state += fmt::format(", thread {}", g->thread_id);
  std::string text = fmt::format("goroutine {} [{}]:\n", g->goid, state);
  size_t n = 0;
  for (const auto& f : u->frames) {
    if (f.sources.empty()) text += fmt::format("#{:<3} {:#018x} ?\n", n++, f.pc.value());
    for (const auto& s : f.sources) {
      text += fmt::format("#{:<3} {:#018x} {}{} at {}:{}\n", n++, f.pc.value(), s.function,
                          s.inlined ? " (inlined)" : "", s.file, s.line);
    }
  }
  if (u->stop_reason != "runtime.goexit") text += fmt::format("(unwinding stopped: {})\n", u->stop_reason);
  return Reply{true, text, ""};
}

// ---- map --------------------------------------------------------------------------------

struct MapOptions {
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

std::string parse_map_options(const Args& args, MapOptions& o) {
  for (size_t i = 0; i < args.size(); i++) {
    std::string_view a = args[i];
    if (a == "--json") {
      o.json = true;
    } else if (a == "--type" || a == "--limit" || a == "--key-size" || a == "--elem-size") {
      if (i + 1 >= args.size()) return fmt::format("{} needs a value", a);
      std::string v = args[++i];
      if (a == "--type") {
        o.type = v;
        continue;
      }
      auto n = parse_uint(v);
      if (!n) return fmt::format("{} wants a number, got '{}'", a, v);
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
std::optional<EntryArgs> map_function_entry(const GoBinary& bin, int64_t slide, const std::optional<ThreadRegs>& frame) {
  if (!frame) return std::nullopt;
  uint64_t pc = frame->rip - slide;  // unslid, as pclntab (PIE)
  auto f = bin.pclntab().find_func(RemoteAddr(pc));
  if (!f || f->entry.value() != pc) return std::nullopt;
  std::string_view n = f->name;
  for (std::string_view p : {"runtime.mapassign", "runtime.mapdelete", "runtime.mapclear", "runtime.mapaccess"})
    if (n.starts_with(p)) return EntryArgs{std::string(n), RemoteAddr(frame->rbx), RemoteAddr(frame->rax)};
  for (std::string_view m : {"internal/runtime/maps.(*Map).Delete", "internal/runtime/maps.(*Map).Clear",
                             "internal/runtime/maps.(*Map).PutSlot"})
    if (n == m) return EntryArgs{std::string(n), RemoteAddr(frame->rax), RemoteAddr(frame->rbx)};
  return std::nullopt;
}

std::string type_desc(const GoTypeInfo& t, bool indirect) {
  const char* k = t.kind == GoKind::kInvalid ? "?" : to_string(t.kind);
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

std::string header_line(const MapHeader& h) {
  if (h.impl == MapImpl::kHmap)
    return fmt::format("map      {} hmap count={} writing={} flags={:#x}{} B={} buckets={} oldbuckets={} nevacuate={}"
                       " noverflow={}{}",
                       h.addr, h.count, h.writing, h.flags, hmap_flag_names(h.flags), h.b, h.buckets, h.oldbuckets,
                       h.nevacuate, h.noverflow, h.growing() ? " (growing)" : "");
  if (h.small())
    return fmt::format("map      {} swiss count={} writing={} small group={}", h.addr, h.count, h.writing, h.dir_ptr);
  return fmt::format("map      {} swiss count={} writing={} dirLen={} globalDepth={} tables={}", h.addr, h.count,
                     h.writing, h.dir_len, h.global_depth, h.tables.size());
}

nlohmann::json map_json(const MapHeader& h, const MapTypeInfo* t, const MapContents* c, const std::string& source) {
  auto hex = [](RemoteAddr a) { return fmt::format("{}", a); };
  nlohmann::json j = {{"addr", hex(h.addr)}, {"impl", to_string(h.impl)}, {"count", h.count},
                      {"writing", h.writing}, {"source", source}};
  if (h.impl == MapImpl::kHmap) {
    j.update({{"flags", h.flags}, {"B", h.b}, {"noverflow", h.noverflow}, {"buckets", hex(h.buckets)},
              {"oldbuckets", hex(h.oldbuckets)}, {"nevacuate", h.nevacuate}, {"growing", h.growing()}});
  } else {
    j.update({{"writing_byte", h.writing_byte}, {"dir_ptr", hex(h.dir_ptr)}, {"dir_len", h.dir_len},
              {"global_depth", h.global_depth}, {"small", h.small()}});
    auto tabs = nlohmann::json::array();
    for (auto& tb : h.tables)
      tabs.push_back({{"addr", hex(tb.addr)}, {"used", tb.used}, {"capacity", tb.capacity}, {"groups", tb.ngroups}});
    j["tables"] = tabs;
  }
  if (t) {
    auto ty = [](const GoTypeInfo& g) { return nlohmann::json{{"kind", to_string(g.kind)}, {"size", g.size}}; };
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

Reply cmd_map(Debuggee& d, const Args& args) {
  const char* who = "gort map";
  MapOptions o;
  if (auto err = parse_map_options(args, o); !err.empty())
    return fail(who, err + "; usage: gort map [ADDR] [--type TYPEADDR | --key-size N --elem-size M] [--limit N] [--json]");
  auto gt = open_go_target(d);
  if (!gt) return fail(who, gt.error().message);
  const GoBinary& b = *gt->bin;
  const Memory& mem = *gt->mem;

  auto entry = map_function_entry(b, gt->slide, d.selected_frame());
  RemoteAddr map_addr;
  std::string source = "argument";
  if (o.addr) {
    auto a = eval_address(d, *o.addr);
    if (!a) return fail(who, a.error().message);
    map_addr = *a;
  } else if (entry) {
    map_addr = entry->map;
    source = entry->func;
  } else {
    return fail(who, fmt::format("which map? give ADDR, or stop at the entry of a map function (e.g. {}) where RBX is "
                                 "the map and RAX its type",
                                 d.hints().map_break));
  }

  auto h = read_map_header(mem, b.layouts(), b.map_impl(), map_addr);
  if (!h)
    return fail(who, h.error().message + (source == "argument" ? "; is it a map pointer? (at the entry of "
                                                                 "runtime.mapassign* the map is in RBX)"
                                                               : ""));

  std::optional<MapTypeInfo> type;
  std::string no_type_hint;
  if (o.type) {
    auto ta = eval_address(d, *o.type);
    if (!ta) return fail(who, ta.error().message);
    auto t = read_map_type(mem, b.layouts(), b.map_impl(), *ta);
    if (!t) return fail(who, fmt::format("--type {}: {}", *o.type, t.error().message));
    type = *t;
  } else if (o.key_size) {
    type = map_type_from_sizes(b.map_impl(), *o.key_size, *o.elem_size);
  } else if (entry && entry->map == map_addr) {
    auto t = read_map_type(mem, b.layouts(), b.map_impl(), entry->type);
    if (t) type = *t;
    else no_type_hint = t.error().message;
  }
  if (!type && no_type_hint.empty())
    no_type_hint = "map type unknown: pass --type TYPEADDR (RAX at the entry of runtime.mapassign*, or the type "
                   "word of an interface holding the map), or --key-size N --elem-size M";

  std::optional<MapContents> contents;
  if (type) {
    auto c = read_map_entries(mem, *h, *type, o.limit);
    if (!c) return fail(who, c.error().message);
    contents = std::move(*c);
  }

  if (o.json) {
    auto j = map_json(*h, type ? &*type : nullptr, contents ? &*contents : nullptr, source);
    if (!no_type_hint.empty()) j["note"] = no_type_hint;
    return Reply{true, j.dump() + "\n", ""};
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
  return Reply{true, out, ""};
}

// ---- heap: ptr, scan --------------------------------------------------------------------

// The stopped target with its heap opened, goroutines (dead ones too: their g structs are
// runtime holders) and thread registers, read as recorder/cmd_heap.cpp does.
struct HeapTarget {
  GoTarget t;
  std::optional<Heap> heap;  // refers to *t.mem and *t.bin, which stay put when moved
  std::vector<Goroutine> gs;
  std::vector<ThreadRegs> regs;
};

Result<HeapTarget> open_heap_target(Debuggee& d) {
  HeapTarget h;
  GORT_TRY(h.t, open_go_target(d));
  GORT_TRY(Heap heap, Heap::open(*h.t.mem, *h.t.bin, h.t.slide));
  h.heap.emplace(std::move(heap));
  GORT_TRY(h.regs, d.threads());
  if (auto loc = find_allgs(*h.t.bin); loc.ok()) {
    GoroutineListOptions lo;
    lo.include_dead = true;
    if (auto r = read_goroutines(*h.t.mem, h.t.bin->layouts(), h.t.bin->version(), loc->addr + h.t.slide, lo); r.ok())
      h.gs = std::move(*r);
  }
  return h;
}

Reply cmd_ptr(Debuggee& d, const Args& argv, const char* who) {
  bool json = false;
  std::vector<std::string> args;
  for (const auto& a : argv) {
    if (a == "--json") json = true;
    else if (a.size() > 1 && a[0] == '-' && !(a[1] >= '0' && a[1] <= '9'))
      return fail(who, fmt::format("unknown option '{}'; usage: {} ADDR... [--json]", a, who));
    else args.push_back(a);
  }
  if (args.empty()) return fail(who, fmt::format("give at least one ADDR; usage: {} ADDR... [--json]", who));
  auto h = open_heap_target(d);
  if (!h) return fail(who, h.error().message);
  std::vector<RemoteAddr> addrs;
  for (auto& a : args) {
    auto v = eval_address(d, a);
    if (!v) return fail(who, v.error().message);
    addrs.push_back(*v);
  }
  GlobalIndex globals(*h->t.bin, h->t.slide);
  nlohmann::json out = nlohmann::json::array();
  std::string text;
  for (auto a : addrs) {
    auto info = describe_address(*h->t.mem, *h->t.bin, h->t.slide, *h->heap, globals, h->gs, h->regs, a);
    if (!info) return fail(who, info.error().message);
    if (json) out.push_back(to_json(*info));
    else text += to_text(*info, h->heap->state());
  }
  return Reply{true, json ? out.dump(2) + "\n" : text, ""};
}

Reply cmd_heap_scan(Debuggee& d, const Args& args) {
  const char* who = "gort heap scan";
  bool json = false;
  analysis::ScanOptions so;
  for (const auto& a : args) {
    if (a == "--json") json = true;
    else if (a == "--stacks") so.stacks = true;
    else return fail(who, fmt::format("unknown argument '{}'; usage: gort heap scan [--stacks] [--json]", a));
  }
  auto h = open_heap_target(d);
  if (!h) return fail(who, h.error().message);
  auto r = analysis::scan_dangling(*h->t.mem, *h->t.bin, h->t.slide, *h->heap, h->gs, h->regs, so);
  return Reply{true, json ? analysis::to_json(r).dump(2) + "\n" : analysis::to_text(r), ""};
}

// ---- crash ------------------------------------------------------------------------------

Reply cmd_crash(Debuggee& d, const Args& args) {
  const char* who = "gort crash";
  bool json = false, bt = false;
  for (const auto& a : args) {
    if (a == "--json") json = true;
    else if (a == "--bt") bt = true;
    else return fail(who, fmt::format("unknown argument '{}'; usage: gort crash [--json] [--bt]", a));
  }
  auto t = open_go_target(d);
  if (!t) return fail(who, t.error().message);
  auto threads = d.threads();
  if (!threads) return fail(who, threads.error().message);
  postmortem::MemoryEvidence ev{t->bin.get(), t->mem.get(), std::move(*threads), t->slide, d.hints().debugger};
  auto v = postmortem::analyze_memory(ev);
  if (!v) return fail(who, v.error().message);
  Reply r{true, json ? postmortem::to_json(*v).dump(2) + "\n" : postmortem::to_text(*v), ""};
  if (bt) {
    for (const auto& w : v->writers) {
      Reply b = cmd_bt(d, {std::to_string(w.goroutine)});
      r.out += fmt::format("\n(gort bt {})\n{}{}", w.goroutine, b.out, b.ok ? "" : "error: " + b.error + "\n");
    }
  }
  return r;
}

// ---- info -------------------------------------------------------------------------------

Reply cmd_info(Debuggee& d, const Args& args) {
  const char* who = "gort info";
  if (!args.empty()) return fail(who, fmt::format("unexpected argument '{}'; usage: gort info", args[0]));
  std::string why;
  std::string path = d.executable(why);
  if (path.empty()) return fail(who, why.empty() ? "no target; " + d.hints().no_target : why);
  auto bin = GoBinary::open(path);
  if (!bin) return fail(who, bin.error().message);
  const auto& b = **bin;
  std::string out;
  out += fmt::format("binary   {}{}{}\n", path, b.elf().is_pie() ? " (PIE)" : "", b.stripped() ? " (stripped)" : "");
  out += fmt::format("go       {}\n", b.version().raw);
  out += fmt::format("maps     {}\n", to_string(b.map_impl()));
  out += fmt::format("layouts  {}\n", to_string(b.layout_source()));
  auto plan = build_probe_plan(b);
  if (plan) {
    size_t maps = 0, wb = 0;
    for (auto& p : plan->probes) (p.role == ProbeRole::kWriteBarrier ? wb : maps)++;
    out += fmt::format("probes   {} map-write functions, {} write-barrier entries\n", maps, wb);
  } else {
    out += fmt::format("probes   unavailable: {}\n", plan.error().message);
  }
  return Reply{true, out, ""};
}

using Handler = std::function<Reply(Debuggee&, const Args&)>;
const std::map<std::string, Handler, std::less<>>& handlers() {
  static const std::map<std::string, Handler, std::less<>> h = {
      {"info", cmd_info},
      {"goroutines", cmd_goroutines},
      {"bt", cmd_bt},
      {"map", cmd_map},
      {"ptr", [](Debuggee& d, const Args& a) { return cmd_ptr(d, a, "gort ptr"); }},
      {"heap ptr", [](Debuggee& d, const Args& a) { return cmd_ptr(d, a, "gort heap ptr"); }},
      {"heap scan", cmd_heap_scan},
      {"crash", cmd_crash},
  };
  return h;
}

}  // namespace

Result<RemoteAddr> eval_address(Debuggee& d, const std::string& s) {
  uint64_t n = 0;
  bool hex = s.starts_with("0x") || s.starts_with("0X");
  if (hex ? s.size() > 2 && parse_hex(s, n) : parse_u64(s, n)) return RemoteAddr(n);
  if (auto v = d.evaluate(s)) return RemoteAddr(*v);
  return make_error(ErrorKind::kBadInput,
                    "cannot evaluate '{}' to an address; give hex (0xc000012345), a register ($rbx), "
                    "a variable or a symbol",
                    s);
}

Reply run(Debuggee& d, std::string_view name, const std::vector<std::string>& args) {
  auto it = handlers().find(name);
  if (it == handlers().end()) return Reply{false, "", fmt::format("gort: unknown command '{}'", name)};
  try {
    return it->second(d, args);
  } catch (const std::exception& e) {
    return Reply{false, "", fmt::format("gort {}: internal error: {}", name, e.what())};
  }
}

Result<std::string> describe_binary(const std::string& path) {
  GORT_TRY(auto bin, GoBinary::open(path));
  const auto& b = *bin;
  return fmt::format("{} {} ({} maps, layouts from {})", path, b.version().raw, to_string(b.map_impl()),
                     to_string(b.layout_source()));
}

}  // namespace gort::core::front
