// The verdict model's names, JSON and text (verdict.h). Shared by gort triage (crash logs)
// and gort postmortem / gort crash (cores): keep the wording here, once.

#include "core/postmortem/verdict.h"

#include <fmt/format.h>

#include <string_view>

namespace gort::core::postmortem {

const char* to_string(FatalKind k) {
  switch (k) {
    case FatalKind::kConcurrentMapWrites: return "concurrent map writes";
    case FatalKind::kConcurrentMapReadWrite: return "concurrent map read and map write";
    case FatalKind::kConcurrentMapIterationWrite: return "concurrent map iteration and map write";
    case FatalKind::kConcurrentMapCloneWrite: return "concurrent map clone and map write";
    case FatalKind::kPointerToFreeObject: return "found pointer to free object";
    case FatalKind::kUnexpectedFaultAddress: return "unexpected fault address";
    case FatalKind::kUnknown: break;
  }
  return "unknown";
}

FatalKind fatal_kind_of(std::string_view m) {
  // Tolerate the "fatal error: " prefix and surrounding whitespace.
  while (!m.empty() && (m.front() == ' ' || m.front() == '\t')) m.remove_prefix(1);
  if (m.rfind("fatal error:", 0) == 0) {
    m.remove_prefix(12);
    while (!m.empty() && m.front() == ' ') m.remove_prefix(1);
  }
  while (!m.empty() && (m.back() == ' ' || m.back() == '\r' || m.back() == '\n' || m.back() == '\t'))
    m.remove_suffix(1);
  auto starts = [&](std::string_view p) { return m.substr(0, p.size()) == p; };
  // Longest first: "concurrent map writes" must not swallow the read/iteration/clone forms.
  if (starts("concurrent map read and map write")) return FatalKind::kConcurrentMapReadWrite;
  if (starts("concurrent map iteration and map write")) return FatalKind::kConcurrentMapIterationWrite;
  if (starts("concurrent map clone and map write")) return FatalKind::kConcurrentMapCloneWrite;
  if (starts("concurrent map writes")) return FatalKind::kConcurrentMapWrites;
  if (starts("found pointer to free object") || starts("found bad pointer in Go heap") ||
      starts("found bad pointer"))
    return FatalKind::kPointerToFreeObject;
  if (starts("unexpected fault address")) return FatalKind::kUnexpectedFaultAddress;
  return FatalKind::kUnknown;
}

bool is_map_fatal(FatalKind k) {
  return k == FatalKind::kConcurrentMapWrites || k == FatalKind::kConcurrentMapReadWrite ||
         k == FatalKind::kConcurrentMapIterationWrite || k == FatalKind::kConcurrentMapCloneWrite;
}

namespace {
std::string hex(uint64_t v) { return fmt::format("{:#x}", v); }

nlohmann::json frame_json(const Frame& f) {
  nlohmann::json j = {{"function", f.function}};
  if (!f.file.empty()) j["file"] = f.file;
  if (f.line > 0) j["line"] = f.line;
  if (f.pc != 0) j["pc"] = hex(f.pc);
  if (f.inlined) j["inlined"] = true;
  return j;
}
}  // namespace

nlohmann::json to_json(const Verdict& v) {
  nlohmann::json j;
  j["fatal"] = v.fatal == FatalKind::kUnknown ? v.fatal_message : std::string(to_string(v.fatal));
  j["fatal_message"] = v.fatal_message;
  j["map"] = v.map ? nlohmann::json(hex(*v.map)) : nlohmann::json(nullptr);
  nlohmann::json writers = nlohmann::json::array();
  for (const auto& w : v.writers) {
    nlohmann::json jw = {{"goroutine", w.goroutine}, {"state", w.state}, {"role", w.role}};
    if (!w.op.empty()) jw["op"] = w.op;
    if (!w.function.empty()) jw["function"] = w.function;
    jw["map"] = w.map ? nlohmann::json(hex(*w.map)) : nlohmann::json(nullptr);
    if (w.thread != 0) jw["thread"] = w.thread;
    nlohmann::json stack = nlohmann::json::array();
    for (const auto& f : w.stack) stack.push_back(frame_json(f));
    jw["stack"] = std::move(stack);
    writers.push_back(std::move(jw));
  }
  j["writers"] = std::move(writers);
  j["complete"] = v.complete;
  j["advice"] = v.advice;
  j["notes"] = v.notes;
  return j;
}

std::string to_text(const Verdict& v) {
  std::string out;
  std::string fatal = v.fatal_message.empty() ? std::string(to_string(v.fatal)) : v.fatal_message;
  out += fmt::format("fatal error: {}\n", fatal);
  if (v.map) out += fmt::format("map: {}\n", hex(*v.map));
  else if (is_map_fatal(v.fatal)) out += "map: unknown (no map pointer in the evidence)\n";
  if (v.writers.empty()) out += "no goroutine found inside a map operation\n";
  for (const auto& w : v.writers) {
    out += fmt::format("\ngoroutine {} [{}]", w.goroutine, w.state.empty() ? "unknown" : w.state);
    if (w.role == "threw") out += ", threw";
    else if (!w.role.empty()) out += fmt::format(", {}", w.role);
    if (!w.op.empty() || !w.function.empty()) {
      out += ":";
      if (!w.op.empty()) out += fmt::format(" {}", w.op);
      if (!w.function.empty()) out += fmt::format(" in {}", w.function);
    }
    if (w.map && (!v.map || *w.map != *v.map)) out += fmt::format(" on map {}", hex(*w.map));
    if (w.thread != 0) out += fmt::format(" (thread {})", w.thread);
    out += "\n";
    if (w.stack.empty()) out += "    (no stack)\n";
    for (const auto& f : w.stack) {
      out += fmt::format("    {}{}\n", f.function, f.inlined ? " (inlined)" : "");
      if (!f.file.empty()) {
        out += fmt::format("        {}", f.file);
        if (f.line > 0) out += fmt::format(":{}", f.line);
        out += "\n";
      } else if (f.pc != 0) {
        out += fmt::format("        pc={}\n", hex(f.pc));
      }
    }
  }
  out += v.complete ? "\ncomplete: yes\n" : "\ncomplete: no, the other writer may be missing\n";
  if (!v.advice.empty()) out += fmt::format("advice: {}\n", v.advice);
  for (const auto& n : v.notes) out += fmt::format("note: {}\n", n);
  return out;
}

}  // namespace gort::core::postmortem
