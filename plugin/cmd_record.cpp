// `gort record start/stop`: the recorder of `gort record` (core/record) inside an LLDB
// session, on the live process: every map write is recorded without stopping the
// program while it runs under the debugger, into a trace for `gort report`. A thread
// of ours drains the perf rings; while LLDB holds the process stopped nothing fires.
// Detach, quit and the end of `lldb -b` stop the recording (stop_recording, called by
// the leave guards in probe_session.cpp), so the trace always gets its summary.

#include "core/record/recorder.h"
#include "core/util/strings.h"
#include "plugin/commands.h"
#include "plugin/go_setup.h"
#include "plugin/lldb_world.h"
#include "plugin/probe_session.h"
#include "plugin/recording.h"

#include <fmt/core.h>

#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace gort::plugin {
namespace {

struct Recording {
  std::unique_ptr<core::record::Recorder> rec;
  std::thread pump;
  std::atomic<bool> stop{false};
  std::string error;  ///< set by the pump thread when writing failed
  std::string output;
};

std::mutex g_mu;
std::map<uint64_t, std::unique_ptr<Recording>>& recordings() {
  static std::map<uint64_t, std::unique_ptr<Recording>> m;
  return m;
}

class RecordStartCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override {
    try {
      core::record::RecordOptions opts;
      opts.output = "gort.trace";
      for (char** a = command; a && *a; ++a) {
        std::string tok = *a;
        auto value = [&](std::string& out) {
          if (!a[1]) return false;
          out = *++a;
          return true;
        };
        std::string v;
        if ((tok == "-o" || tok == "--output") && value(v)) {
          opts.output = v;
        } else if (tok == "--stack-depth" && value(v)) {
          opts.stack_depth = static_cast<uint32_t>(std::stoul(v));
        } else if (tok == "--maps" && value(v)) {
          for (auto& m : core::split_list(v)) opts.maps.push_back(std::stoull(m, nullptr, 16));
        } else if (tok == "--hw" && value(v)) {
          opts.hw_first = core::split_list(v);
        } else if (tok == "--sync") {
          opts.sync = true;
        } else if (tok == "--reads") {
          opts.reads = true;
        } else if (tok == "--backend" && value(v)) {
          if (v == "perf") {
            opts.backend = core::record::RecordOptions::Backend::kPerf;
          } else if (v == "inproc") {
            opts.backend = core::record::RecordOptions::Backend::kInproc;
          } else {
            result.SetError(fmt::format("gort record start: unknown --backend '{}': perf or inproc", v).c_str());
            return false;
          }
        } else {
          result.SetError(fmt::format("gort record start: unexpected '{}'\nusage: {}", tok, kStartUsage).c_str());
          return false;
        }
      }
      lldb::SBTarget target = debugger.GetSelectedTarget();
      lldb::SBProcess process = target.IsValid() ? target.GetProcess() : lldb::SBProcess();
      const char* plugin = process.IsValid() ? process.GetPluginName() : nullptr;
      bool core_file = plugin && std::string_view(plugin) == "elf-core";
      if (!process.IsValid() || core_file || process.GetState() == lldb::eStateExited ||
          process.GetState() == lldb::eStateDetached || process.GetProcessID() == 0) {
        result.SetError("gort record start: needs a live process (`process launch --stop-at-entry`, `process attach -p PID`); "
                        "core files hold no history to record");
        return false;
      }
      std::lock_guard lock(g_mu);
      auto& slot = recordings()[debugger.GetID()];
      if (slot) {
        result.SetError(fmt::format("gort record start: already recording to {}; `gort record stop` first", slot->output).c_str());
        return false;
      }
      std::string err;
      std::string path = target_executable(target, err);
      if (path.empty()) {
        result.SetError(fmt::format("gort record start: {}", err).c_str());
        return false;
      }
      auto bin = core::GoBinary::open(path);
      if (!bin) {
        result.SetError(fmt::format("gort record start: {}", bin.error().message).c_str());
        return false;
      }
      int pid = static_cast<int>(process.GetProcessID());
      // In-process probes are patched with the program stopped through LLDB (its tracer):
      // held as the user holds it, or interrupted for the few ms it takes and resumed.
      opts.stop_world = [process]() -> core::Result<std::unique_ptr<core::inproc::World>> {
        GORT_TRY(auto w, LldbWorld::stop(process));
        return std::unique_ptr<core::inproc::World>(std::move(w));
      };
      auto rec = core::record::Recorder::start(pid, std::move(*bin), load_slide(target), opts);
      if (!rec) {
        result.SetError(fmt::format("gort record start: {}", rec.error().message).c_str());
        return false;
      }
      auto r = std::make_unique<Recording>();
      r->rec = std::move(*rec);
      r->output = opts.output;
      result.Printf("%s\n", fmt::format("gort: recording map writes of process {} to {}: {} sites, {}; "
                                        "`gort record stop` ends it", pid, opts.output, r->rec->sites().size(),
                                        r->rec->backend_summary()).c_str());
      for (auto& w : r->rec->warnings()) result.Printf("%s\n", fmt::format("gort: warning: {}", w).c_str());
      Recording* raw = r.get();
      r->pump = std::thread([raw] {
        while (!raw->stop) {
          auto n = raw->rec->pump(50);
          if (!n) {
            raw->error = n.error().message;
            return;
          }
          if (raw->rec->target_gone()) return;
        }
      });
      slot = std::move(r);
      result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
      return true;
    } catch (const std::exception& e) {
      result.SetError(fmt::format("gort record start: bad argument or internal error: {}", e.what()).c_str());
      return false;
    }
  }
  static constexpr const char* kStartUsage = "gort record start [-o TRACE] [--stack-depth N] [--maps ADDR,...] [--hw FUNC,...] [--sync [--reads]] [--backend perf|inproc]";
};

class RecordStopCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char**, lldb::SBCommandReturnObject& result) override {
    std::string line = stop_recording(debugger.GetID(), "stopped");
    if (line.empty()) {
      result.SetError("gort record stop: not recording (`gort record start` begins)");
      return false;
    }
    result.Printf("%s\n", line.c_str());
    result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
    return true;
  }
};

}  // namespace

std::string stop_recording(uint64_t debugger_id, const std::string& reason) {
  std::unique_ptr<Recording> r;
  {
    std::lock_guard lock(g_mu);
    auto it = recordings().find(debugger_id);
    if (it == recordings().end() || !it->second) return "";
    r = std::move(it->second);
    recordings().erase(it);
  }
  r->stop = true;
  if (r->pump.joinable()) r->pump.join();
  std::string why = r->rec->target_gone() ? "target exited" : reason;
  if (!r->error.empty()) why = "error: " + r->error;
  auto sum = r->rec->finish(why);
  if (!sum) return fmt::format("gort: recording to {} failed: {}", r->output, sum.error().message);
  auto st = r->rec->stats();
  std::string line = fmt::format("gort: recorded {} events ({} lost) to {} ({} bytes); ended: {}; next: gort report {}",
                                 sum->events, sum->lost, r->output, st.bytes, why, r->output);
  for (auto& w : sum->warnings) line += fmt::format("\ngort: warning: {}", w);
  return line;
}

void register_record_commands(lldb::SBCommand& root) {
  lldb::SBCommand rec = root.AddMultiwordCommand(
      "record", "Record every map write without stopping the program (gort record start/stop); `gort report` analyses it.");
  rec.AddCommand("start", new RecordStartCommand(),
                 "Start recording the live process's map writes (hardware breakpoints and uprobes through perf_event_open, "
                 "sampled without stopping) into TRACE (default gort.trace): time, thread, CPU, goroutine, map and user "
                 "stack of each write, goroutine creation and exit, and a goroutine about to throw. The program runs on "
                 "(`continue`); hits while LLDB holds it stopped cannot happen. Detach and quit end the recording. "
                 "--backend inproc patches the sites with jumps to trampolines that write a shared ring (~25 ns a "
                 "hit instead of ~15 us; installed and removed with the program stopped, the code restored at "
                 "`gort record stop`, detach and quit; docs/inproc.md).",
                 RecordStartCommand::kStartUsage);
  rec.AddCommand("stop", new RecordStopCommand(), "Stop recording and write the trace's summary.", "gort record stop");
}

}  // namespace gort::plugin
