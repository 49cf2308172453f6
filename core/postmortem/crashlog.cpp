// Go crash output -> CrashLog (crashlog.h). One pass over the lines, no recursion, no
// regular expressions: every loop advances through the input.
//
// Shapes it reads (runtime/traceback.go, panic.go, signal_unix.go, os_linux.go, 1.21-1.26):
//   fatal error: concurrent map writes
//   unexpected fault address 0x7f40fac0e008
//   [signal SIGSEGV: segmentation violation code=0x1 addr=0x7f40fac0e008 pc=0x4a19aa]
//   goroutine 6 [running]:                                    (1.21-1.22, and level all)
//   goroutine 6 gp=0xc000007a40 m=2 mp=0xc000100008 [running]:  (1.23+ at system/crash)
//   runtime.mapassign_fast64(0x4b3340, 0xc000012345, 0x0)
//   \t/usr/lib/go/src/internal/runtime/maps/runtime_fast64.go:206 +0x45 fp=0x.. sp=0x.. pc=0x40fd45
//   \tgoroutine running on other thread; stack unavailable
//   ...12 frames elided...
//   created by main.main in goroutine 1
//   SIGQUIT: quit / PC=0x46f0c1 m=3 sigcode=0 / rax    0x0  (thread dumps at crash)

#include "core/postmortem/crashlog.h"

#include <algorithm>
#include <charconv>

namespace gort::core::postmortem {

namespace {

constexpr size_t kMaxPrefix = 256;      // longer "prefixes" are not log-collector prefixes
constexpr size_t kMaxFieldText = 4096;  // args/status text kept per frame

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

/// Parses "0x1f" / "31" at the start of S; advances S. False if no digits.
bool parse_uint(std::string_view& s, uint64_t& out) {
  int base = 10;
  if (starts_with(s, "0x") || starts_with(s, "0X")) {
    base = 16;
    s.remove_prefix(2);
  }
  size_t n = 0;
  while (n < s.size() && (base == 16 ? is_hex(s[n]) : is_digit(s[n]))) ++n;
  if (n == 0) return false;
  uint64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + n, v, base);
  if (r.ec != std::errc()) v = UINT64_MAX;  // overflow: keep going, value saturated
  out = v;
  s.remove_prefix(n);
  return true;
}

/// The value after "KEY=" in S (a space-separated field list), if present.
bool field(std::string_view s, std::string_view key, uint64_t& out) {
  size_t pos = 0;
  while ((pos = s.find(key, pos)) != std::string_view::npos) {
    if ((pos == 0 || s[pos - 1] == ' ' || s[pos - 1] == '[' || s[pos - 1] == '\t') &&
        pos + key.size() < s.size() && s[pos + key.size()] == '=') {
      auto v = s.substr(pos + key.size() + 1);
      return parse_uint(v, out);
    }
    pos += key.size();
  }
  return false;
}

// ------------------------------------------------------------------ prefix shapes
// A prefix's shape: its text with every run of digits made a wildcard for one or more
// digits, so "2026-11-29T08:25:19.123Z " matches the timestamps on every other line.
struct Shape {
  std::vector<std::string> literals;  // literal text between digit runs
  bool empty() const { return literals.empty(); }
};

Shape shape_of(std::string_view p) {
  Shape s;
  std::string cur;
  for (size_t i = 0; i < p.size();) {
    if (is_digit(p[i])) {
      s.literals.push_back(cur);
      cur.clear();
      while (i < p.size() && is_digit(p[i])) ++i;
    } else {
      cur += p[i++];
    }
  }
  s.literals.push_back(cur);
  return s;
}

/// Length of the prefix of LINE matching SHAPE, or npos.
size_t match_shape(std::string_view line, const Shape& sh) {
  size_t pos = 0;
  for (size_t k = 0; k < sh.literals.size(); ++k) {
    if (k > 0) {  // a digit run
      size_t n = 0;
      while (pos + n < line.size() && is_digit(line[pos + n])) ++n;
      if (n == 0) return std::string_view::npos;
      pos += n;
    }
    const auto& lit = sh.literals[k];
    if (line.substr(pos, lit.size()) != lit) return std::string_view::npos;
    pos += lit.size();
  }
  return pos;
}

/// "goroutine N [" or "goroutine N gp=": where such a header starts in LINE, or npos.
size_t find_goroutine_header(std::string_view line) {
  size_t pos = 0;
  while ((pos = line.find("goroutine ", pos)) != std::string_view::npos) {
    size_t i = pos + 10;
    size_t d = 0;
    while (i + d < line.size() && is_digit(line[i + d])) ++d;
    if (d > 0 && i + d + 1 < line.size() && line[i + d] == ' ' &&
        (line[i + d + 1] == '[' || starts_with(line.substr(i + d + 1), "gp=")))
      return pos;
    pos += 10;
  }
  return std::string_view::npos;
}

/// Where a crash marker starts in LINE, or npos.
size_t find_marker(std::string_view line) {
  size_t best = std::string_view::npos;
  for (std::string_view m : {"fatal error: ", "unexpected fault address ", "panic: "}) {
    auto p = line.find(m);
    if (p < best) best = p;
  }
  return best;
}

bool is_register_line(std::string_view s) {
  // "rax    0x0" / "r10    0x1" / "rip    0x46f0c1" / "eflags 0x246" / "fs     0x0"
  size_t n = 0;
  while (n < s.size() && ((s[n] >= 'a' && s[n] <= 'z') || is_digit(s[n]))) ++n;
  if (n < 2 || n > 8) return false;
  auto rest = trim(s.substr(n));
  return starts_with(rest, "0x") && rest.find(' ') == std::string_view::npos && s[n] == ' ';
}

/// Splits "name(args)" at its last top-level parenthesised group. False if not a call.
bool split_call(std::string_view s, std::string_view& name, std::string_view& args) {
  if (s.empty() || s.back() != ')') return false;
  int depth = 0;
  for (size_t i = s.size(); i-- > 0;) {
    char c = s[i];
    if (c == ')') ++depth;
    else if (c == '(') {
      if (--depth == 0) {
        if (i == 0) return false;
        name = s.substr(0, i);
        args = s.substr(i + 1, s.size() - i - 2);
        return true;
      }
    }
  }
  return false;
}

bool plausible_function(std::string_view name) {
  if (name.empty() || name.find(' ') != std::string_view::npos || name.find('\t') != std::string_view::npos)
    return false;
  // Go symbols: a package path and a name. Type switches like "main.(*T).m" have parens.
  return name.find('.') != std::string_view::npos || name == "main" || name == "goexit";
}

/// "\t/path/file.go:123 +0x57 fp=0x.. sp=0x.. pc=0x.." -> fields. False if not such a line.
bool parse_file_line(std::string_view s, std::string& file, int32_t& line, uint64_t& offset, uint64_t& pc) {
  s = trim(s);
  // The file may contain spaces; the line number follows the last ':' before " +0x" or end.
  size_t end = s.find(" +0x");
  std::string_view head = end == std::string_view::npos ? s : s.substr(0, end);
  // Without an offset, fields such as fp= may still follow (rare); cut at " fp=" / " pc=".
  if (end == std::string_view::npos) {
    auto f = head.find(" fp=");
    if (f == std::string_view::npos) f = head.find(" pc=");
    if (f != std::string_view::npos) head = head.substr(0, f);
  }
  auto colon = head.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  auto num = head.substr(colon + 1);
  uint64_t v = 0;
  auto numv = num;
  if (!parse_uint(numv, v) || !numv.empty()) return false;
  file = std::string(head.substr(0, std::min<size_t>(colon, kMaxFieldText)));
  line = static_cast<int32_t>(std::min<uint64_t>(v, INT32_MAX));
  if (end != std::string_view::npos) {
    auto o = s.substr(end + 2);
    parse_uint(o, offset);
  }
  field(s, "pc", pc);
  return true;
}

}  // namespace

std::vector<std::string> split_args(std::string_view args) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    auto t = trim(cur);
    if (!t.empty() && t != "...") out.emplace_back(t);
    cur.clear();
  };
  for (char c : args) {
    if (c == ',' || c == '{' || c == '}') flush();
    else cur += c;
    if (out.size() > 64) break;
  }
  flush();
  return out;
}

std::string CrashLog::headline() const {
  if (has_fault_address)
    return fmt::format("unexpected fault address {:#x}", fault_address);
  for (const auto& m : fatal_messages)
    if (!m.empty()) return m;
  return panic_message;
}

Result<CrashLog> parse_crashlog(std::string_view text) {
  CrashLog log;
  // ---- split into lines (views into TEXT)
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < text.size();) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    auto l = text.substr(pos, nl - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.push_back(l);
    pos = nl + 1;
  }
  log.lines = lines.size();
  bool ends_with_newline = !text.empty() && text.back() == '\n';

  // ---- the first crash marker, and the per-line prefix in front of it
  size_t first = lines.size();
  Shape shape;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto l = lines[i];
    auto p = find_marker(l);
    // "panic: " inside a line is a crash only at the start of the (unprefixed) text;
    // decide the prefix from "fatal error:"/"unexpected fault"/"goroutine N [" when possible.
    if (p == std::string_view::npos) continue;
    if (p > kMaxPrefix) continue;
    auto rest = l.substr(p);
    if (starts_with(rest, "panic: ") && p > 0) {
      // Accept a prefixed panic only when a goroutine header with the same prefix follows.
      bool ok = false;
      Shape s = shape_of(l.substr(0, p));
      for (size_t j = i + 1; j < lines.size() && j < i + 64; ++j) {
        auto g = find_goroutine_header(lines[j]);
        if (g != std::string_view::npos && match_shape(lines[j], s) == g) {
          ok = true;
          break;
        }
      }
      if (!ok) continue;
    }
    first = i;
    log.prefix = std::string(l.substr(0, p));
    if (p > 0) shape = shape_of(l.substr(0, p));
    break;
  }
  if (first == lines.size()) {
    return make_error(ErrorKind::kBadInput,
                      "no 'fatal error:' or 'panic:' line found in {} lines: is this a Go crash output?",
                      lines.size());
  }

  auto strip = [&](std::string_view l) {
    if (shape.empty()) return l;
    auto n = match_shape(l, shape);
    if (n != std::string_view::npos) return l.substr(n);
    // Collectors sometimes trim the trailing space of the prefix on blank lines.
    auto t = trim(l);
    auto m = match_shape(std::string(t) + " ", shape);
    if (m != std::string_view::npos && m >= t.size()) return std::string_view();
    return l;
  };

  LogGoroutine* g = nullptr;  // the goroutine being read
  bool expect_created_file = false;
  LogThread* thread = nullptr;
  bool after_function = false;  // the previous line was a frame's function line
  auto close_goroutine = [&] {
    g = nullptr;
    expect_created_file = false;
    after_function = false;
  };

  for (size_t i = first; i < lines.size(); ++i) {
    std::string_view raw = strip(lines[i]);
    std::string_view t = trim(raw);
    size_t lineno = i + 1;
    if (t.empty()) {
      close_goroutine();
      continue;
    }
    bool indented = raw[0] == '\t' || raw[0] == ' ';

    if (!indented && starts_with(t, "fatal error: ")) {
      close_goroutine();
      thread = nullptr;
      log.fatal_messages.emplace_back(trim(t.substr(13)).substr(0, kMaxFieldText));
      continue;
    }
    if (!indented && starts_with(t, "unexpected fault address ")) {
      close_goroutine();
      auto v = t.substr(25);
      uint64_t a = 0;
      if (!log.has_fault_address && parse_uint(v, a)) {
        log.fault_address = a;
        log.has_fault_address = true;
      }
      continue;
    }
    if (!indented && starts_with(t, "panic: ")) {
      close_goroutine();
      if (log.panic_message.empty()) log.panic_message = std::string(t.substr(7, kMaxFieldText));
      continue;
    }
    if (!indented && starts_with(t, "[signal ")) {
      close_goroutine();
      LogSignal s;
      auto body = t.substr(8);
      if (!body.empty() && body.back() == ']') body.remove_suffix(1);
      s.text = std::string(body.substr(0, kMaxFieldText));
      s.name = std::string(body.substr(0, std::min(body.find(':'), body.find(' '))).substr(0, 32));
      field(body, "addr", s.addr);
      field(body, "pc", s.pc);
      field(body, "code", s.code);
      if (log.signals.size() < 1024) log.signals.push_back(std::move(s));
      continue;
    }
    if (!indented && starts_with(t, "goroutine ") && find_goroutine_header(t) == 0) {
      close_goroutine();
      thread = nullptr;
      LogGoroutine ng;
      auto rest = t.substr(10);
      parse_uint(rest, ng.id);
      auto lb = rest.find('[');
      auto fields = rest.substr(0, std::min(lb, rest.size()));
      field(fields, "gp", ng.gp);
      field(fields, "mp", ng.mp);
      uint64_t m = 0;
      if (field(fields, "m", m)) ng.m = static_cast<int64_t>(std::min<uint64_t>(m, INT64_MAX));
      if (lb != std::string_view::npos) {
        auto rb = rest.rfind(']');
        auto st = rb != std::string_view::npos && rb > lb ? rest.substr(lb + 1, rb - lb - 1) : rest.substr(lb + 1);
        ng.status = std::string(st.substr(0, kMaxFieldText));
        ng.state = std::string(trim(st.substr(0, st.find(','))).substr(0, kMaxFieldText));
      }
      ng.log_line = lineno;
      log.goroutines.push_back(std::move(ng));
      g = &log.goroutines.back();
      continue;
    }
    // Thread dumps at GOTRACEBACK=crash: "SIGQUIT: quit" then "PC=0x.. m=N sigcode=N".
    if (!indented && t.size() > 4 && starts_with(t, "SIG") && t.find(": ") != std::string_view::npos &&
        t.find(' ') == t.find(": ") + 1) {
      close_goroutine();
      log.threads.push_back(LogThread{std::string(t.substr(0, 128)), 0, -1, {}});
      thread = &log.threads.back();
      continue;
    }
    if (!indented && starts_with(t, "PC=")) {
      close_goroutine();
      if (!thread) {
        log.threads.push_back(LogThread{});
        thread = &log.threads.back();
      }
      auto v = t.substr(3);
      parse_uint(v, thread->pc);
      uint64_t m = 0;
      if (field(t, "m", m)) thread->m = static_cast<int64_t>(std::min<uint64_t>(m, INT64_MAX));
      continue;
    }
    if (!indented && is_register_line(t)) {
      if (thread && thread->registers.size() < 64) {
        auto sp = t.find(' ');
        auto v = trim(t.substr(sp));
        uint64_t val = 0;
        parse_uint(v, val);
        thread->registers.emplace_back(std::string(t.substr(0, sp)), val);
      }
      continue;
    }
    if (t == "-----") {
      close_goroutine();
      continue;
    }
    if (!g) continue;  // other runtime chatter ("runtime: marked free object ...", spans, ...)

    if (indented && starts_with(t, "goroutine running on other thread")) {
      g->stack_unavailable = true;
      continue;
    }
    if (!indented && starts_with(t, "...") && t.find("frames elided") != std::string_view::npos) {
      auto v = t.substr(3);
      uint64_t n = 0;
      if (parse_uint(v, n)) g->elided_frames += n;
      after_function = false;
      continue;
    }
    if (!indented && starts_with(t, "created by ")) {
      auto rest = t.substr(11);
      auto in = rest.find(" in goroutine ");
      g->created_by = std::string(rest.substr(0, std::min(in, rest.size())).substr(0, kMaxFieldText));
      if (in != std::string_view::npos) {
        auto v = rest.substr(in + 14);
        parse_uint(v, g->created_in);
      }
      expect_created_file = true;
      after_function = false;
      continue;
    }
    if (indented) {
      std::string file;
      int32_t line = 0;
      uint64_t off = 0, pc = 0;
      if (parse_file_line(t, file, line, off, pc)) {
        if (expect_created_file) {
          expect_created_file = false;
          g->created_file = std::move(file);
          g->created_line = line;
          g->created_offset = off;
        } else if (after_function && !g->frames.empty()) {
          auto& f = g->frames.back();
          f.file = std::move(file);
          f.line = line;
          f.offset = off;
          f.pc = pc;
        }
      }
      after_function = false;
      continue;
    }
    // A frame's function line: "pkg.fn(args)".
    std::string_view name, args;
    if (split_call(t, name, args) && plausible_function(name)) {
      LogFrame f;
      f.function = std::string(name.substr(0, kMaxFieldText));
      f.args = std::string(args.substr(0, kMaxFieldText));
      f.log_line = lineno;
      g->frames.push_back(std::move(f));
      after_function = true;
      expect_created_file = false;
      continue;
    }
    // Anything else ends the goroutine (runtime chatter printed between dumps).
    close_goroutine();
  }

  // ---- truncation: the input stopped inside a goroutine
  if (!log.goroutines.empty()) {
    auto& last = log.goroutines.back();
    bool open = g == &last;
    bool frame_without_file = !last.frames.empty() && last.frames.back().file.empty() && after_function;
    bool empty = last.frames.empty() && !last.stack_unavailable;
    if (open && (!ends_with_newline || frame_without_file || empty || last.created_by.empty())) {
      // A goroutine dump that ends at EOF without "created by" (main, or cut) is normal for
      // goroutine 1 and system ones; only a missing newline or a dangling frame is a cut.
      if (!ends_with_newline || frame_without_file || empty) {
        last.truncated = true;
        log.truncated = true;
      }
    }
  } else if (log.fatal_messages.empty() && log.panic_message.empty()) {
    log.truncated = true;
  }
  if (log.goroutines.empty()) log.notes.push_back("the log has no goroutine dump");
  return log;
}

}  // namespace gort::core::postmortem
