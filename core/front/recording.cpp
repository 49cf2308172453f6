// `gort record start/stop` of the debugger front ends (recording.h). Moved here from the
// LLDB plugin's cmd_record.cpp so the GDB extension prints exactly the same output.

#include "core/front/recording.h"

#include "core/binary/go_binary.h"
#include "core/record/recorder.h"
#include "core/util/strings.h"

#include <fmt/format.h>

#include <atomic>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

namespace gort::core::front {

const char* const kRecordStartUsage =
    "gort record start [-o TRACE] [--stack-depth N] [--maps ADDR,...] [--hw FUNC,...] [--sync [--reads]] "
    "[--backend perf|inproc]";

namespace {

struct Recording {
  std::unique_ptr<record::Recorder> rec;
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

Error start_error(const std::string& what) { return make_error(ErrorKind::kBadInput, "gort record start: {}", what); }

Result<std::string> start(uint64_t key, const RecordStartRequest& r) {
  record::RecordOptions opts;
  opts.output = "gort.trace";
  const auto& args = r.args;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& tok = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    std::string v;
    if ((tok == "-o" || tok == "--output") && value(v)) {
      opts.output = v;
    } else if (tok == "--stack-depth" && value(v)) {
      opts.stack_depth = static_cast<uint32_t>(std::stoul(v));
    } else if (tok == "--maps" && value(v)) {
      for (auto& m : split_list(v)) opts.maps.push_back(std::stoull(m, nullptr, 16));
    } else if (tok == "--hw" && value(v)) {
      opts.hw_first = split_list(v);
    } else if (tok == "--sync") {
      opts.sync = true;
    } else if (tok == "--reads") {
      opts.reads = true;
    } else if (tok == "--backend" && value(v)) {
      if (v == "perf") {
        opts.backend = record::RecordOptions::Backend::kPerf;
      } else if (v == "inproc") {
        opts.backend = record::RecordOptions::Backend::kInproc;
      } else {
        return start_error(fmt::format("unknown --backend '{}': perf or inproc", v));
      }
    } else {
      return start_error(fmt::format("unexpected '{}'\nusage: {}", tok, kRecordStartUsage));
    }
  }
  if (opts.backend == record::RecordOptions::Backend::kInproc && !r.stop_world)
    return start_error("--backend inproc " + r.inproc_unavailable_why);
  if (!r.target_error.empty()) return start_error(r.target_error);

  std::lock_guard lock(g_mu);
  auto& slot = recordings()[key];
  if (slot) return start_error(fmt::format("already recording to {}; `gort record stop` first", slot->output));
  if (r.executable.empty()) return start_error("the target has no executable file");
  auto bin = GoBinary::open(r.executable);
  if (!bin) return start_error(bin.error().message);
  opts.stop_world = r.stop_world;
  auto rec = record::Recorder::start(r.pid, std::move(*bin), r.slide, opts);
  if (!rec) return start_error(rec.error().message);
  auto rc = std::make_unique<Recording>();
  rc->rec = std::move(*rec);
  rc->output = opts.output;
  std::string out = fmt::format("gort: recording map writes of process {} to {}: {} sites, {}; "
                                "`gort record stop` ends it",
                                r.pid, opts.output, rc->rec->sites().size(), rc->rec->backend_summary());
  for (auto& w : rc->rec->warnings()) out += fmt::format("\ngort: warning: {}", w);
  Recording* raw = rc.get();
  rc->pump = std::thread([raw] {
    while (!raw->stop) {
      auto n = raw->rec->pump(50);
      if (!n) {
        raw->error = n.error().message;
        return;
      }
      if (raw->rec->target_gone()) return;
    }
  });
  slot = std::move(rc);
  return out;
}

}  // namespace

Result<std::string> start_recording(uint64_t key, const RecordStartRequest& r) {
  try {
    return start(key, r);
  } catch (const std::exception& e) {
    return start_error(fmt::format("bad argument or internal error: {}", e.what()));
  }
}

std::string stop_recording(uint64_t key, const std::string& reason) {
  std::unique_ptr<Recording> r;
  {
    std::lock_guard lock(g_mu);
    auto it = recordings().find(key);
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

}  // namespace gort::core::front
