// `gort ptr ADDR... [--json]` (also `gort heap ptr`): what each address is, as `gort heap
// ptr`: a heap object (base, size, allocated or free, marked), a global, a goroutine's
// stack, code. `gort heap scan [--stacks] [--json]`: integer-held addresses of freed heap
// objects, as `gort heap scan`. Both read the stopped process or core through LLDB
// (lldb_target.h); the work is core's (core/goruntime/heap.h, addr_info.h,
// core/analysis/dangling.h), and the goroutines are read as recorder/cmd_heap.cpp does
// (dead ones included: their g structs are runtime holders too), so the answers match.

#include "core/analysis/dangling.h"
#include "core/goruntime/addr_info.h"
#include "core/goruntime/goroutines.h"
#include "core/goruntime/heap.h"
#include "plugin/commands.h"
#include "plugin/lldb_target.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace gort::plugin {
namespace {

// The stopped target with its heap opened, goroutines (dead ones too) and thread registers.
struct HeapTarget {
  GoTarget t;
  std::optional<core::Heap> heap;  // refers to *t.mem and *t.bin, which stay put when moved
  std::vector<core::Goroutine> gs;
  std::vector<core::ThreadRegs> regs;
};

core::Result<HeapTarget> open_heap_target(lldb::SBDebugger& debugger) {
  HeapTarget h;
  GORT_TRY(h.t, open_go_target(debugger));
  GORT_TRY(core::Heap heap, core::Heap::open(*h.t.mem, *h.t.bin, h.t.slide));
  h.heap.emplace(std::move(heap));
  GORT_TRY(h.regs, h.t.threads->threads());
  if (auto loc = core::find_allgs(*h.t.bin); loc.ok()) {
    core::GoroutineListOptions lo;
    lo.include_dead = true;
    if (auto r = core::read_goroutines(*h.t.mem, h.t.bin->layouts(), h.t.bin->version(), loc->addr + h.t.slide, lo);
        r.ok())
      h.gs = std::move(*r);
  }
  return h;
}

bool fail(lldb::SBCommandReturnObject& result, const char* who, const std::string& msg) {
  result.SetError(fmt::format("{}: {}", who, msg).c_str());
  return false;
}

class PtrCommand : public lldb::SBCommandPluginInterface {
 public:
  explicit PtrCommand(const char* who) : who_(who) {}

  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override {
    try {
      return run(debugger, command, result);
    } catch (const std::exception& e) {
      return fail(result, who_, fmt::format("internal error: {}", e.what()));
    }
  }

 private:
  bool run(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) {
    bool json = false;
    std::vector<std::string> args;
    for (; command && *command; ++command) {
      std::string a = *command;
      if (a == "--json") json = true;
      else if (a.size() > 1 && a[0] == '-' && !(a[1] >= '0' && a[1] <= '9'))
        return fail(result, who_, fmt::format("unknown option '{}'; usage: {} ADDR... [--json]", a, who_));
      else args.push_back(a);
    }
    if (args.empty()) return fail(result, who_, fmt::format("give at least one ADDR; usage: {} ADDR... [--json]", who_));
    auto h = open_heap_target(debugger);
    if (!h) return fail(result, who_, h.error().message);
    lldb::SBFrame frame = h->t.process.GetSelectedThread().GetSelectedFrame();
    std::vector<core::RemoteAddr> addrs;
    for (auto& a : args) {
      auto v = eval_address(frame, a);
      if (!v) return fail(result, who_, v.error().message);
      addrs.push_back(*v);
    }
    core::GlobalIndex globals(*h->t.bin, h->t.slide);
    nlohmann::json out = nlohmann::json::array();
    std::string text;
    for (auto a : addrs) {
      auto info = core::describe_address(*h->t.mem, *h->t.bin, h->t.slide, *h->heap, globals, h->gs, h->regs, a);
      if (!info) return fail(result, who_, info.error().message);
      if (json) out.push_back(core::to_json(*info));
      else text += core::to_text(*info, h->heap->state());
    }
    if (json) result.Printf("%s\n", out.dump(2).c_str());
    else result.Printf("%s", text.c_str());
    result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
    return true;
  }

  const char* who_;
};

class HeapScanCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override {
    const char* who = "gort heap scan";
    try {
      bool json = false;
      core::analysis::ScanOptions so;
      for (; command && *command; ++command) {
        std::string a = *command;
        if (a == "--json") json = true;
        else if (a == "--stacks") so.stacks = true;
        else
          return fail(result, who, fmt::format("unknown argument '{}'; usage: gort heap scan [--stacks] [--json]", a));
      }
      auto h = open_heap_target(debugger);
      if (!h) return fail(result, who, h.error().message);
      auto r = core::analysis::scan_dangling(*h->t.mem, *h->t.bin, h->t.slide, *h->heap, h->gs, h->regs, so);
      if (json) result.Printf("%s\n", core::analysis::to_json(r).dump(2).c_str());
      else result.Printf("%s", core::analysis::to_text(r).c_str());
      result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
      return true;
    } catch (const std::exception& e) {
      return fail(result, who, fmt::format("internal error: {}", e.what()));
    }
  }
};

constexpr const char* kPtrHelp =
    "What each address is, as `gort heap ptr`: a heap object (base, size, allocated or free, marked, its span), "
    "freed heap pages, a global, a goroutine's stack (goroutine, frame), code, or unknown. ADDR: hex, decimal, a "
    "register ($rbx), a symbol or an expression. The process must be stopped (LLDB holds a live one stopped) or be a "
    "core. --json: one object per ADDR.";
constexpr const char* kPtrSyntax = "ADDR... [--json]\n  e.g. gort ptr 0xc000123450 $rbx --json";

}  // namespace

void register_heap_commands(lldb::SBCommand& root) {
  root.AddCommand("ptr", new PtrCommand("gort ptr"), kPtrHelp, (std::string("gort ptr ") + kPtrSyntax).c_str());
  lldb::SBCommand heap = root.AddMultiwordCommand(
      "heap", "The Go heap of the stopped process or core (gort heap scan, gort heap ptr).");
  heap.AddCommand(
      "scan", new HeapScanCommand(),
      "Find integer-held heap addresses, as `gort heap scan`: words in memory the GC keeps (globals, live heap objects "
      "including pointer-free ones such as a []uintptr's array) whose value points into a heap object the GC did not "
      "keep (a free slot, an object the last completed GC cycle did not mark, freed pages): a uintptr or handle whose "
      "object is gone or about to go. Each finding names the holder, the target object and its state, the GC cycle and "
      "how it was established. The process must be stopped: a live one LLDB already holds stopped (nothing else stops "
      "it); a core is judged against its last completed GC cycle. --stacks: scan goroutine stacks too (no stack maps "
      "yet: a dead slot of a live frame can be reported). --json: the schema of docs/heap.md.",
      "gort heap scan [--stacks] [--json]");
  heap.AddCommand("ptr", new PtrCommand("gort heap ptr"), kPtrHelp,
                  (std::string("gort heap ptr ") + kPtrSyntax).c_str());
}

}  // namespace gort::plugin
