// libgort-gdb.so: gort's core behind one C function, for the GDB extension
// (scripts/gort-gdb.py, loaded with ctypes). GDB's Python gathers what a command needs
// (the executable, the process state, every thread's registers) into a JSON request; the
// reply is JSON too. Memory of a core file and expressions are read back through two
// callbacks into GDB. A live process is read through /proc/PID/mem, as in the LLDB plugin.
//
//   char* gort_call(const char* request_json, gort_read_fn read, gort_eval_fn eval, void* ctx);
//   void  gort_free(char* reply);
//
// Requests ({"op": ...}):
//   run           {"name", "args": [...], target...}  -> {"ok", "out", "error"}   (core/front/commands.h)
//   describe      {"exe"}                              -> {"ok", "text" | "error"}
//   probes        {"exe", "which": "maps"|"wb", "funcs": [...]}
//                 -> {"ok", "probes": [{"index", "function", "label", "entry"}], "flag_offset", "rt0_go"}
//   arm           {"exe", "log", "map", "continue"}    -> {"ok"}  (a break/watch command's options)
//   hit           {"exe", "index", "regs", "pid", "slide", "stop"} -> {"ok", "kept"}  (prints and logs the hit)
//   watch_hit     {"exe", "map", "flag", "regs", "pid", "slide", "stop"} -> {"ok", "kept"}
//   perf          {"exe", "indices", "pid", "slide"}   -> {"ok", "status": [{"placed", "error"}]}  (--continue --hw)
//   perf_watch    {"exe", "map", "flag", "pid", "slide"} -> {"ok"}  (watch map --continue)
//   clear         {}                                   -> {"ok", "sets", "lost"}  (closes perf probes and the log)
//   record_start  {"exe", "pid", "slide", "args"}      -> {"ok", "out" | "error"}  (core/front/recording.h)
//   record_stop   {"reason"}                           -> {"ok", "out" | "error"}
// target: {"exe", "state": "none"|"stopped"|"running"|"core", "state_detail",
//          "pid", "slide", "threads": [regs...], "selected": index|-1, "frame": regs|null}
// regs: {"tid", "rip", "rsp", ..., "r15", "fs_base", "stop_reason"} (numbers).

#include "core/binary/go_binary.h"
#include "core/disasm/probe_plan.h"
#include "core/front/commands.h"
#include "core/front/probe_select.h"
#include "core/front/recording.h"
#include "core/front/hits.h"
#include "core/goruntime/map_event.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

extern "C" {
typedef int (*gort_read_fn)(void* ctx, uint64_t addr, uint64_t len, void* buf);  // 0: all bytes read
typedef int (*gort_eval_fn)(void* ctx, const char* expr, uint64_t* out);          // 0: evaluated
}

namespace gort::gdbfront {
namespace {

using nlohmann::json;

core::ThreadRegs regs_of(const json& j) {
  core::ThreadRegs r;
  auto u = [&](const char* k) -> uint64_t { return j.contains(k) && j[k].is_number() ? j[k].get<uint64_t>() : 0; };
  r.tid = u("tid");
  r.rip = u("rip"); r.rsp = u("rsp"); r.rbp = u("rbp");
  r.rax = u("rax"); r.rbx = u("rbx"); r.rcx = u("rcx"); r.rdx = u("rdx");
  r.rsi = u("rsi"); r.rdi = u("rdi");
  r.r8 = u("r8"); r.r9 = u("r9"); r.r10 = u("r10"); r.r11 = u("r11");
  r.r12 = u("r12"); r.r13 = u("r13"); r.r14 = u("r14"); r.r15 = u("r15");
  r.fs_base = u("fs_base");
  if (j.contains("stop_reason") && j["stop_reason"].is_string()) r.stop_reason = j["stop_reason"];
  return r;
}

class CallbackMemory final : public core::Memory {
 public:
  CallbackMemory(gort_read_fn read, void* ctx) : read_(read), ctx_(ctx) {}
  core::Result<void> read(core::RemoteAddr addr, std::span<uint8_t> out) const override {
    if (!read_ || read_(ctx_, addr.value(), out.size(), out.data()) != 0)
      return core::make_error(core::ErrorKind::kIo, "cannot read {} bytes at {}: not in the core file (not dumped, or not mapped)",
                              out.size(), addr);
    return {};
  }

 private:
  gort_read_fn read_;
  void* ctx_;
};

class GdbDebuggee final : public core::front::Debuggee {
 public:
  GdbDebuggee(const json& req, gort_read_fn read, gort_eval_fn eval, void* ctx)
      : req_(req), read_(read), eval_(eval), ctx_(ctx) {}

  std::string executable(std::string& why) override {
    why.clear();  // GDB always has a file for a program it runs; none means no target
    return req_.value("exe", "");
  }
  core::front::ProcState state(std::string& detail) override {
    std::string s = req_.value("state", "none");
    detail = req_.value("state_detail", "");
    if (s == "stopped") return core::front::ProcState::kStopped;
    if (s == "running") return core::front::ProcState::kRunning;
    if (s == "core") return core::front::ProcState::kCore;
    return core::front::ProcState::kNone;
  }
  int pid() override { return req_.value("pid", 0); }
  std::unique_ptr<core::Memory> debugger_memory() override { return std::make_unique<CallbackMemory>(read_, ctx_); }
  core::Result<std::vector<core::ThreadRegs>> threads() override {
    std::vector<core::ThreadRegs> out;
    if (req_.contains("threads"))
      for (auto& t : req_["threads"]) out.push_back(regs_of(t));
    return out;
  }
  std::optional<core::ThreadRegs> selected_thread() override {
    int64_t i = req_.value("selected", int64_t{-1});
    if (i < 0 || !req_.contains("threads") || static_cast<size_t>(i) >= req_["threads"].size()) return std::nullopt;
    return regs_of(req_["threads"][i]);
  }
  std::optional<core::ThreadRegs> selected_frame() override {
    if (!req_.contains("frame") || !req_["frame"].is_object()) return std::nullopt;
    return regs_of(req_["frame"]);
  }
  std::optional<uint64_t> evaluate(const std::string& expr) override {
    uint64_t v = 0;
    if (eval_ && eval_(ctx_, expr.c_str(), &v) == 0) return v;
    return std::nullopt;
  }
  int64_t slide() override { return req_.value("slide", int64_t{0}); }
  const core::front::Hints& hints() const override {
    static const core::front::Hints h{
        .no_target = "load one first (`file ./prog`, `attach PID`)",
        .no_process = "run the program to a stop first (`run` to a breakpoint, `attach PID`), or open a core "
                      "(`core-file CORE`)",
        .interrupt = "interrupt it first (`interrupt`)",
        .map_break = "`break *<entry of runtime.mapassign_faststr>`",
        .debugger = "GDB",
    };
    return h;
  }

 private:
  const json& req_;
  gort_read_fn read_;
  gort_eval_fn eval_;
  void* ctx_;
};

// gort's break/watch state in this GDB: the loaded binary and plan, the --log file and
// --map filter, the --continue perf sets and their draining thread (core/front/hits.h).
core::front::HitReporter& session() {
  static core::front::HitReporter s;
  return s;
}
std::mutex g_session_mu;  // GDB calls from its main thread; this guards load() against reentry

constexpr uint64_t kRecordingKey = 1;  // one GDB, one recording at a time

json fail(const std::string& msg) { return json{{"ok", false}, {"error", msg}}; }

json statuses(const std::vector<core::ProbeStatus>& st) {
  json a = json::array();
  for (auto& p : st)
    a.push_back({{"placed", p.backend != core::ProbeBackend::kNone}, {"error", p.error}});
  return a;
}

json handle(const json& req, gort_read_fn read, gort_eval_fn eval, void* ctx) {
  std::string op = req.value("op", "");
  if (op == "run") {
    GdbDebuggee d(req, read, eval, ctx);
    std::vector<std::string> args;
    if (req.contains("args"))
      for (auto& a : req["args"]) args.push_back(a.get<std::string>());
    auto r = core::front::run(d, req.value("name", ""), args);
    return json{{"ok", r.ok}, {"out", r.out}, {"error", r.error}};
  }
  if (op == "record_start") {
    core::front::RecordStartRequest r;
    r.pid = req.value("pid", 0);
    r.executable = req.value("exe", "");
    r.slide = req.value("slide", int64_t{0});
    if (req.contains("args"))
      for (auto& a : req["args"]) r.args.push_back(a.get<std::string>());
    r.inproc_unavailable_why =
        "is not available under GDB: installing it single-steps the program's threads through the debugger, which "
        "only the LLDB plugin does; record with perf here, or detach and run `gort record --backend inproc -p PID`";
    if (r.pid <= 0) r.target_error = "needs a live process (`starti`, `attach PID`); core files hold no history to record";
    auto out = core::front::start_recording(kRecordingKey, r);
    if (!out) return json{{"ok", false}, {"error", out.error().message}};
    return json{{"ok", true}, {"out", *out + "\n"}};
  }
  if (op == "record_stop") {
    std::string line = core::front::stop_recording(kRecordingKey, req.value("reason", "stopped"));
    if (line.empty()) return json{{"ok", false}, {"error", "gort record stop: not recording (`gort record start` begins)"}};
    return json{{"ok", true}, {"out", line + "\n"}};
  }
  if (op == "describe") {
    auto d = core::front::describe_binary(req.value("exe", ""));
    if (!d) return fail(d.error().message);
    return json{{"ok", true}, {"text", *d}};
  }
  std::lock_guard lk(g_session_mu);
  core::front::HitReporter& S = session();
  if (op == "clear") {
    auto [sets, lost] = S.close_sets();
    S.map_filter.reset();
    S.continue_mode = false;
    return json{{"ok", true}, {"sets", sets}, {"lost", lost}};
  }
  std::string exe = req.value("exe", "");
  if (auto r = S.load(exe); !r) return fail(r.error().message);
  const core::ProbePlan& plan = S.plan();
  auto probe_at = [&](size_t index) -> const core::Probe* {
    return index < plan.probes.size() ? &plan.probes[index] : nullptr;
  };
  if (op == "probes") {
    std::vector<std::string> funcs;
    if (req.contains("funcs"))
      for (auto& f : req["funcs"]) funcs.push_back(f.get<std::string>());
    std::string which = req.value("which", "maps");
    auto sel = which == "wb" ? core::front::select_wb_probes(plan) : core::front::select_map_probes(plan, funcs);
    if (!sel) return fail(sel.error().message);
    json ps = json::array();
    for (auto& p : *sel) {
      size_t index = 0;
      for (; index < plan.probes.size(); ++index)
        if (plan.probes[index].entry == p.entry) break;
      ps.push_back({{"index", index}, {"function", p.function}, {"label", core::front::probe_label(p)},
                    {"entry", p.entry.value()}});
    }
    const auto& lay = S.bin().layouts();
    bool hmap = S.bin().map_impl() == core::MapImpl::kHmap;
    uint32_t off = hmap ? lay.hmap_flags : lay.smap_writing;
    auto rt0 = S.bin().func("runtime.rt0_go");
    return json{{"ok", true}, {"probes", ps}, {"flag_offset", lay.has(off) ? json(off) : json(nullptr)},
                {"rt0_go", rt0 ? json(rt0->entry.value()) : json(nullptr)}};
  }
  if (op == "arm") {  // the options of a new break/watch command
    if (std::string log = req.value("log", ""); !log.empty())
      if (auto r = S.open_log(log); !r) return fail(r.error().message);
    if (req.contains("map") && req["map"].is_number()) S.map_filter = req["map"].get<uint64_t>();
    S.continue_mode = req.value("continue", false);
    return json{{"ok", true}};
  }
  int pid = req.value("pid", 0);
  int64_t slide = req.value("slide", int64_t{0});
  if (op == "perf") {  // sampling-mode hardware breakpoints (--continue): our thread reports
    std::vector<core::Probe> probes;
    for (auto& i : req.value("indices", json::array()))
      if (auto* p = probe_at(i.get<size_t>())) probes.push_back(*p);
    auto st = S.add_perf(pid, slide, probes, core::ProbeMode::kSample);
    if (!st) return fail(st.error().message);
    return json{{"ok", true}, {"status", statuses(*st)}};
  }
  if (op == "perf_watch") {
    core::front::FlagWatch w{core::RemoteAddr(req.value("map", uint64_t{0})), core::RemoteAddr(req.value("flag", uint64_t{0}))};
    auto st = S.add_perf_watch(pid, slide, w, core::ProbeMode::kSample);
    if (!st) return fail(st.error().message);
    if (st->empty() || (*st)[0].backend == core::ProbeBackend::kNone)
      return fail(fmt::format("no debug register for {}: {}", w.flag, st->empty() ? "?" : (*st)[0].error));
    return json{{"ok", true}};
  }
  if (op == "hit" || op == "watch_hit") {  // a GDB breakpoint or watchpoint hit (the thread is stopped)
    auto ctx = S.context(pid, slide);
    if (!ctx) return fail(fmt::format("cannot read the memory of process {}", pid));
    core::ThreadRegs regs = regs_of(req.value("regs", json::object()));
    bool print = req.value("stop", true) || !S.has_log();
    uint64_t t = core::monotonic_ns();
    bool kept;
    if (op == "watch_hit") {
      core::front::FlagWatch w{core::RemoteAddr(req.value("map", uint64_t{0})), core::RemoteAddr(req.value("flag", uint64_t{0}))};
      kept = S.report_watch_hit(w, regs, *ctx, t, print);
    } else {
      const core::Probe* p = probe_at(req.value("index", size_t{0}));
      if (!p) return fail("no such probe");
      kept = S.report_entry_hit(*p, regs, *ctx, t, print);
    }
    return json{{"ok", true}, {"kept", kept}};
  }
  return fail(fmt::format("unknown request '{}'", op));
}

char* dup(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

}  // namespace
}  // namespace gort::gdbfront

extern "C" __attribute__((visibility("default"))) char* gort_call(const char* request, gort_read_fn read,
                                                                   gort_eval_fn eval, void* ctx) {
  using namespace gort::gdbfront;
  try {
    auto req = nlohmann::json::parse(request ? request : "{}");
    return dup(handle(req, read, eval, ctx).dump());
  } catch (const std::exception& e) {
    return dup(fail(fmt::format("gort: internal error: {}", e.what())).dump());
  }
}

extern "C" __attribute__((visibility("default"))) void gort_free(char* p) { std::free(p); }
