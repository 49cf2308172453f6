#pragma once
// Result<T>: what every core/ function that touches the outside world returns (binary
// files, DWARF, target memory, trace files, Go versions). No exceptions leave core/.

#include <fmt/format.h>

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace gort::core {

/// Why something failed; front ends map kinds to exit codes / statuses.
enum class ErrorKind {
  kBadInput,     ///< the user's input is wrong: not ELF, not Go, truncated, missing file
  kUnsupported,  ///< understood, but outside what gort supports (Go version, arch)
  kNotFound,     ///< a symbol, function or section that is simply absent
  kIo,           ///< the OS said no (permission, I/O error, process gone)
  kInternal,     ///< an invariant broke: a gort bug
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;  ///< what failed, the bad value, and a hint

  /// Prefix context: "reading pclntab: " + message.
  Error with_context(std::string_view ctx) const {
    return Error{kind, fmt::format("{}: {}", ctx, message)};
  }
};

template <typename... Args>
Error make_error(ErrorKind kind, fmt::format_string<Args...> f, Args&&... args) {
  return Error{kind, fmt::format(f, std::forward<Args>(args)...)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(implicit)
  Result(Error error) : v_(std::move(error)) {}      // NOLINT(implicit)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }
  T value_or(T fallback) const { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT(implicit)
  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *e_; }

 private:
  std::optional<Error> e_;
};

}  // namespace gort::core

/// GORT_TRY(auto x, expr): unwrap a Result or return its error from the enclosing function.
#define GORT_CONCAT_INNER(a, b) a##b
#define GORT_CONCAT(a, b) GORT_CONCAT_INNER(a, b)
#define GORT_TRY(decl, expr)                                              \
  auto GORT_CONCAT(gort_try_, __LINE__) = (expr);                         \
  if (!GORT_CONCAT(gort_try_, __LINE__).ok())                             \
    return GORT_CONCAT(gort_try_, __LINE__).error();                      \
  decl = std::move(GORT_CONCAT(gort_try_, __LINE__)).value()
#define GORT_TRY_VOID(expr)                                               \
  do {                                                                    \
    auto gort_try_void_ = (expr);                                         \
    if (!gort_try_void_.ok()) return gort_try_void_.error();              \
  } while (0)
