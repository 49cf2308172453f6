#pragma once
// A streaming writer of the Chrome trace event format (JSON object form), which
// chrome://tracing and Perfetto (ui.perfetto.dev) open:
//   {"displayTimeUnit":"ns","traceEvents":[ {...}, ... ]}
// Times are CLOCK_MONOTONIC nanoseconds, written as microseconds with three decimals
// (the format's unit), so a gort trace and a perf recording line up.
// https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU

#include "core/util/result.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

namespace gort::core::analysis {

class ChromeTrace {
 public:
  static Result<ChromeTrace> create(const std::string& path);
  ChromeTrace(ChromeTrace&&) noexcept;
  ChromeTrace& operator=(ChromeTrace&&) noexcept;
  ~ChromeTrace();

  void process_name(int64_t pid, std::string_view name);
  void thread_name(int64_t pid, int64_t tid, std::string_view name);
  void thread_sort_index(int64_t pid, int64_t tid, int64_t index);
  /// A complete ("X") slice [start, end]; ARGS is a JSON object's text ("{}" for none).
  void slice(int64_t pid, int64_t tid, std::string_view name, std::string_view cat, uint64_t start_ns,
             uint64_t end_ns, std::string_view args_json = "{}");
  /// An instant ("i") event; SCOPE "t" (thread), "p" (process) or "g" (global).
  void instant(int64_t pid, int64_t tid, std::string_view name, std::string_view cat, uint64_t t_ns,
               std::string_view scope = "t", std::string_view args_json = "{}");
  /// A flow arrow from the slice enclosing (tid, t) to the one enclosing the matching end.
  void flow_start(uint64_t id, int64_t pid, int64_t tid, std::string_view name, std::string_view cat, uint64_t t_ns);
  void flow_end(uint64_t id, int64_t pid, int64_t tid, std::string_view name, std::string_view cat, uint64_t t_ns);

  uint64_t events() const;
  /// Closes the JSON and the file; errors name the path.
  Result<void> finish();

  /// "1264936962.687": nanoseconds as the format's microseconds.
  static std::string us(uint64_t ns);

 private:
  void flow(char ph, uint64_t id, int64_t pid, int64_t tid, std::string_view name, std::string_view cat, uint64_t t_ns);
  struct Impl;
  explicit ChromeTrace(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// JSON string literal (quoted, escaped) of S, for hand-built args.
std::string json_quote(std::string_view s);

}  // namespace gort::core::analysis
