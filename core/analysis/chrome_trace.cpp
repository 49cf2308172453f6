// Chrome trace event format, streamed (see chrome_trace.h).

#include "core/analysis/chrome_trace.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace gort::core::analysis {

struct ChromeTrace::Impl {
  std::string path;
  FILE* f = nullptr;
  fmt::memory_buffer buf;
  uint64_t n = 0;
  bool failed = false;

  void begin_event() {
    fmt::format_to(std::back_inserter(buf), "{}", n++ ? ",\n" : "\n");
  }
  void flush(bool force = false) {
    if (!f || (!force && buf.size() < (1 << 20))) return;
    if (std::fwrite(buf.data(), 1, buf.size(), f) != buf.size()) failed = true;
    buf.clear();
  }
  ~Impl() {
    if (f) std::fclose(f);
  }
};

ChromeTrace::ChromeTrace(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChromeTrace::ChromeTrace(ChromeTrace&&) noexcept = default;
ChromeTrace& ChromeTrace::operator=(ChromeTrace&&) noexcept = default;
ChromeTrace::~ChromeTrace() = default;

Result<ChromeTrace> ChromeTrace::create(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->f = std::fopen(path.c_str(), "w");
  if (!impl->f) return make_error(ErrorKind::kBadInput, "{}: cannot write the Chrome trace: {}", path, std::strerror(errno));
  fmt::format_to(std::back_inserter(impl->buf), "{{\"displayTimeUnit\":\"ns\",\"traceEvents\":[");
  return ChromeTrace(std::move(impl));
}

std::string ChromeTrace::us(uint64_t ns) { return fmt::format("{}.{:03}", ns / 1000, ns % 1000); }

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += c;
    }
  }
  out += '"';
  return out;
}

void ChromeTrace::process_name(int64_t pid, std::string_view name) {
  impl_->begin_event();
  fmt::format_to(std::back_inserter(impl_->buf), R"({{"name":"process_name","ph":"M","pid":{},"args":{{"name":{}}}}})",
                 pid, json_quote(name));
}

void ChromeTrace::thread_name(int64_t pid, int64_t tid, std::string_view name) {
  impl_->begin_event();
  fmt::format_to(std::back_inserter(impl_->buf),
                 R"({{"name":"thread_name","ph":"M","pid":{},"tid":{},"args":{{"name":{}}}}})", pid, tid,
                 json_quote(name));
}

void ChromeTrace::thread_sort_index(int64_t pid, int64_t tid, int64_t index) {
  impl_->begin_event();
  fmt::format_to(std::back_inserter(impl_->buf),
                 R"({{"name":"thread_sort_index","ph":"M","pid":{},"tid":{},"args":{{"sort_index":{}}}}})", pid, tid,
                 index);
}

void ChromeTrace::slice(int64_t pid, int64_t tid, std::string_view name, std::string_view cat, uint64_t start_ns,
                        uint64_t end_ns, std::string_view args_json) {
  impl_->begin_event();
  uint64_t dur = end_ns > start_ns ? end_ns - start_ns : 0;
  fmt::format_to(std::back_inserter(impl_->buf),
                 R"({{"name":{},"cat":"{}","ph":"X","ts":{},"dur":{},"pid":{},"tid":{},"args":{}}})",
                 json_quote(name), cat, us(start_ns), us(dur), pid, tid, args_json);
  impl_->flush();
}

void ChromeTrace::instant(int64_t pid, int64_t tid, std::string_view name, std::string_view cat, uint64_t t_ns,
                          std::string_view scope, std::string_view args_json) {
  impl_->begin_event();
  fmt::format_to(std::back_inserter(impl_->buf),
                 R"({{"name":{},"cat":"{}","ph":"i","s":"{}","ts":{},"pid":{},"tid":{},"args":{}}})",
                 json_quote(name), cat, scope, us(t_ns), pid, tid, args_json);
  impl_->flush();
}

void ChromeTrace::flow_start(uint64_t id, int64_t pid, int64_t tid, std::string_view name, std::string_view cat,
                             uint64_t t_ns) {
  flow('s', id, pid, tid, name, cat, t_ns);
}

void ChromeTrace::flow_end(uint64_t id, int64_t pid, int64_t tid, std::string_view name, std::string_view cat,
                           uint64_t t_ns) {
  flow('f', id, pid, tid, name, cat, t_ns);
}

/// One flow event: PH 's' (start) or 'f' (end, bound to the enclosing slice).
void ChromeTrace::flow(char ph, uint64_t id, int64_t pid, int64_t tid, std::string_view name, std::string_view cat,
                       uint64_t t_ns) {
  impl_->begin_event();
  fmt::format_to(std::back_inserter(impl_->buf),
                 R"({{"name":{},"cat":"{}","ph":"{}","id":{},"ts":{},"pid":{},"tid":{},"bp":"e"}})", json_quote(name),
                 cat, ph, id, us(t_ns), pid, tid);
}

uint64_t ChromeTrace::events() const { return impl_->n; }

Result<void> ChromeTrace::finish() {
  fmt::format_to(std::back_inserter(impl_->buf), "\n]}}\n");
  impl_->flush(true);
  bool bad = impl_->failed || std::fclose(impl_->f) != 0;
  impl_->f = nullptr;
  if (bad) return make_error(ErrorKind::kIo, "{}: writing the Chrome trace failed: {}", impl_->path, std::strerror(errno));
  return {};
}

}  // namespace gort::core::analysis
