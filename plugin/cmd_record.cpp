// `gort record start/stop`: the recorder of `gort record` (core/record) inside an LLDB
// session, on the live process: every map write is recorded without stopping the
// program while it runs under the debugger, into a trace for `gort report`. The
// debugger-independent part (options, recorder, the thread that drains the rings) is
// core/front/recording.cpp; while LLDB holds the process stopped nothing fires.
// Detach, quit and the end of `lldb -b` stop the recording (stop_recording, called by
// the leave guards in probe_session.cpp), so the trace always gets its summary.

#include "core/front/recording.h"
#include "plugin/commands.h"
#include "plugin/go_setup.h"
#include "plugin/lldb_world.h"
#include "plugin/probe_session.h"
#include "plugin/recording.h"

#include <fmt/core.h>

#include <exception>

namespace gort::plugin {
namespace {

class RecordStartCommand : public lldb::SBCommandPluginInterface {
 public:
  bool DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) override {
    try {
      core::front::RecordStartRequest req;
      for (char** a = command; a && *a; ++a) req.args.emplace_back(*a);
      lldb::SBTarget target = debugger.GetSelectedTarget();
      lldb::SBProcess process = target.IsValid() ? target.GetProcess() : lldb::SBProcess();
      const char* plugin = process.IsValid() ? process.GetPluginName() : nullptr;
      bool core_file = plugin && std::string_view(plugin) == "elf-core";
      if (!process.IsValid() || core_file || process.GetState() == lldb::eStateExited ||
          process.GetState() == lldb::eStateDetached || process.GetProcessID() == 0) {
        req.target_error = "needs a live process (`process launch --stop-at-entry`, `process attach -p PID`); "
                           "core files hold no history to record";
      } else {
        req.pid = static_cast<int>(process.GetProcessID());
        std::string no_exe;  // a valid target: the only reason is "no executable file", core's to say
        req.executable = target_executable(target, no_exe);
        req.slide = load_slide(target);
        // In-process probes are patched with the program stopped through LLDB (its tracer):
        // held as the user holds it, or interrupted for the few ms it takes and resumed.
        req.stop_world = [process]() -> core::Result<std::unique_ptr<core::inproc::World>> {
          GORT_TRY(auto w, LldbWorld::stop(process));
          return std::unique_ptr<core::inproc::World>(std::move(w));
        };
      }
      auto out = core::front::start_recording(debugger.GetID(), req);
      if (!out) {
        result.SetError(out.error().message.c_str());
        return false;
      }
      result.Printf("%s\n", out->c_str());
      result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
      return true;
    } catch (const std::exception& e) {
      result.SetError(fmt::format("gort record start: bad argument or internal error: {}", e.what()).c_str());
      return false;
    }
  }
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
  return core::front::stop_recording(debugger_id, reason);
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
                 core::front::kRecordStartUsage);
  rec.AddCommand("stop", new RecordStopCommand(), "Stop recording and write the trace's summary.", "gort record stop");
}

}  // namespace gort::plugin
