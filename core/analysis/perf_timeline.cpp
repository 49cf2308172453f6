// perf.data -> per-thread on-CPU intervals and samples, through `perf script`.

#include "core/analysis/perf_timeline.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <functional>

extern char** environ;

namespace gort::core::analysis {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

template <typename T>
bool to_num(std::string_view s, T& out, int base = 10) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

// "840.539453880:" -> ns (fewer fraction digits scale up: "840.539453:" is microseconds).
bool parse_time(std::string_view tok, uint64_t& ns) {
  if (tok.size() < 4 || tok.back() != ':') return false;
  tok.remove_suffix(1);
  auto dot = tok.find('.');
  if (dot == std::string_view::npos) return false;
  std::string_view sec = tok.substr(0, dot), frac = tok.substr(dot + 1);
  if (!all_digits(sec) || !all_digits(frac) || frac.size() > 9) return false;
  uint64_t s = 0, f = 0;
  if (!to_num(sec, s) || !to_num(frac, f)) return false;
  for (size_t i = frac.size(); i < 9; i++) f *= 10;
  ns = s * 1'000'000'000ull + f;
  return true;
}

// Whitespace-separated tokens with their offsets in the line.
struct Tok {
  std::string_view s;
  size_t at;
};
std::vector<Tok> tokens(std::string_view l, size_t max = 64) {
  std::vector<Tok> out;
  size_t i = 0;
  while (i < l.size() && out.size() < max) {
    while (i < l.size() && std::isspace(static_cast<unsigned char>(l[i]))) i++;
    size_t j = i;
    while (j < l.size() && !std::isspace(static_cast<unsigned char>(l[j]))) j++;
    if (j > i) out.push_back({l.substr(i, j - i), i});
    i = j;
  }
  return out;
}

// The value after KEY= up to the next space (or END_MARK when given).
std::optional<std::string_view> field(std::string_view payload, std::string_view key, std::string_view end_mark = " ") {
  size_t at = 0;
  for (;;) {
    at = payload.find(key, at);
    if (at == std::string_view::npos) return std::nullopt;
    if (at == 0 || payload[at - 1] == ' ') break;  // whole key, not a suffix of another
    at += key.size();
  }
  size_t v = at + key.size();
  size_t e = payload.find(end_mark, v);
  return payload.substr(v, e == std::string_view::npos ? std::string_view::npos : e - v);
}

}  // namespace

std::optional<PerfLine> parse_perf_script_line(std::string_view line) {
  std::string_view l = trim(line);
  if (l.empty() || l[0] == '#') return std::nullopt;
  auto toks = tokens(l, 12);
  // Find the time token: the first "<digits>.<digits>:" after at least comm and tid.
  size_t ti = 0;
  uint64_t t = 0;
  for (size_t i = 2; i < toks.size(); i++)
    if (parse_time(toks[i].s, t)) {
      ti = i;
      break;
    }
  if (ti == 0) return std::nullopt;
  PerfLine p;
  p.time_ns = t;
  size_t id_i = ti - 1;
  std::string_view c = toks[id_i].s;
  if (c.size() >= 3 && c.front() == '[' && c.back() == ']') {
    int32_t cpu = -1;
    if (!to_num(c.substr(1, c.size() - 2), cpu)) return std::nullopt;
    p.cpu = cpu;
    if (id_i < 2) return std::nullopt;
    id_i--;
  }
  std::string_view id = toks[id_i].s;
  auto slash = id.find('/');
  if (slash != std::string_view::npos) {
    if (!to_num(id.substr(0, slash), p.pid) || !to_num(id.substr(slash + 1), p.tid)) return std::nullopt;
  } else if (!to_num(id, p.tid)) {
    return std::nullopt;
  }
  p.comm = std::string(trim(l.substr(0, toks[id_i].at)));
  if (p.comm.empty()) return std::nullopt;
  // After the time: [period] event: payload
  std::string_view rest = trim(l.substr(toks[ti].at + toks[ti].s.size()));
  auto sp = rest.find(' ');
  if (sp != std::string_view::npos && all_digits(rest.substr(0, sp))) rest = trim(rest.substr(sp));
  auto colon = rest.find(": ");
  std::string_view ev, payload;
  if (colon == std::string_view::npos) {
    if (rest.empty() || rest.back() != ':') return std::nullopt;
    ev = rest.substr(0, rest.size() - 1);
  } else {
    ev = rest.substr(0, colon);
    payload = trim(rest.substr(colon + 2));
  }
  if (ev.empty() || ev.find(' ') != std::string_view::npos) return std::nullopt;
  p.event = std::string(ev);
  if (ev == "sched:sched_switch" || ev == "sched_switch") {
    auto pp = field(payload, "prev_pid=");
    auto np = field(payload, "next_pid=");
    auto ps = field(payload, "prev_state=");
    if (!pp || !np || !to_num(*pp, p.prev_pid) || !to_num(*np, p.next_pid)) return std::nullopt;
    p.is_switch = true;
    if (ps) p.prev_state = std::string(*ps);
    if (auto nc = field(payload, "next_comm=", " next_pid=")) p.next_comm = std::string(*nc);
    return p;
  }
  // A sample: "ip symbol+0xoff (dso)". Tracepoints with other payloads keep only the event.
  auto ptoks = tokens(payload, 2);
  if (!ptoks.empty()) {
    uint64_t ip = 0;
    if (to_num(ptoks[0].s, ip, 16)) {
      p.ip = ip;
      std::string_view after = trim(payload.substr(ptoks[0].s.size()));
      auto open = after.rfind(" (");
      std::string_view sym = after;
      if (!after.empty() && after.back() == ')' && open != std::string_view::npos) {
        p.dso = std::string(after.substr(open + 2, after.size() - open - 3));
        sym = trim(after.substr(0, open));
      } else if (!after.empty() && after.front() == '(' && after.back() == ')') {
        p.dso = std::string(after.substr(1, after.size() - 2));
        sym = {};
      }
      auto plus = sym.rfind("+0x");
      if (plus != std::string_view::npos) sym = sym.substr(0, plus);
      p.symbol = sym.empty() ? "[unknown]" : std::string(sym);
    }
  }
  return p;
}

ThreadTimeline& PerfTimelineBuilder::thread(uint32_t tid) {
  auto& t = tl_.threads[tid];
  t.tid = tid;
  return t;
}

void PerfTimelineBuilder::switch_out(uint32_t tid, uint64_t t, int32_t cpu, const std::string& state) {
  State& s = state_[tid];
  ThreadTimeline& th = thread(tid);
  OnCpu iv;
  iv.end_ns = t;
  iv.end_known = true;
  iv.end_state = state;
  if (s.on && (cpu < 0 || s.cpu < 0 || s.cpu == cpu)) {
    iv.start_ns = s.since;
    iv.start_known = true;
    iv.cpu = s.cpu >= 0 ? s.cpu : cpu;
  } else {
    if (s.on) lost_out(tid);  // switched in elsewhere, out here: the switch between was not recorded
    iv.start_ns = s.evidence ? s.evidence : t;
    iv.start_known = false;
    iv.cpu = cpu;
  }
  th.on_cpu.push_back(std::move(iv));
  for (size_t i : s.cpu_unknown)
    if (i < th.samples.size() && th.samples[i].cpu < 0) th.samples[i].cpu = cpu;
  s.cpu_unknown.clear();
  s.on = false;
  s.evidence = 0;
  s.last_seen = t;
  auto it = on_cpu_.find(cpu);
  if (it != on_cpu_.end() && it->second == tid) on_cpu_.erase(it);
}

void PerfTimelineBuilder::lost_out(uint32_t tid) {
  State& s = state_[tid];
  if (!s.on) return;
  OnCpu iv;
  iv.start_ns = s.since;
  iv.start_known = true;
  iv.end_ns = std::max(s.since, s.last_seen);
  iv.end_known = false;
  iv.cpu = s.cpu;
  thread(tid).on_cpu.push_back(std::move(iv));
  s.on = false;
  s.evidence = 0;
  s.cpu_unknown.clear();
}

void PerfTimelineBuilder::line(std::string_view l) {
  std::string_view tl = trim(l);
  if (tl.empty()) return;
  if (tl[0] == '#') return;
  tl_.lines++;
  auto p = parse_perf_script_line(tl);
  if (!p) {
    tl_.skipped++;
    if (tl_.skipped_examples.size() < 5) tl_.skipped_examples.emplace_back(tl.substr(0, 200));
    return;
  }
  tl_.parsed++;
  tl_.events[p->event]++;
  if (!tl_.first_ns || p->time_ns < tl_.first_ns) tl_.first_ns = p->time_ns;
  tl_.last_ns = std::max(tl_.last_ns, p->time_ns);
  ThreadTimeline& self = thread(p->tid);
  if (p->pid) self.pid = p->pid;
  if (self.comm.empty() || p->is_switch) self.comm = p->comm;
  if (p->is_switch) {
    // The thread that was on this CPU, if not PREV, left it unseen.
    auto cur = on_cpu_.find(p->cpu);
    if (p->cpu >= 0 && cur != on_cpu_.end() && cur->second != p->prev_pid) lost_out(cur->second);
    if (p->prev_pid) switch_out(p->prev_pid, p->time_ns, p->cpu, p->prev_state);
    if (p->next_pid) {
      State& n = state_[p->next_pid];
      ThreadTimeline& nt = thread(p->next_pid);
      if (nt.comm.empty()) nt.comm = p->next_comm;
      if (n.on) lost_out(p->next_pid);  // in again without an out: the out was not recorded
      n.on = true;
      n.since = n.last_seen = p->time_ns;
      n.cpu = p->cpu;
      n.evidence = 0;
      if (p->cpu >= 0) on_cpu_[p->cpu] = p->next_pid;
    }
    return;
  }
  // A sample (or another event) of TID: it was running then.
  State& s = state_[p->tid];
  if (!s.on && !s.evidence) s.evidence = p->time_ns;
  s.last_seen = std::max(s.last_seen, p->time_ns);
  if (p->ip || !p->symbol.empty()) {
    PerfSample smp{p->time_ns, p->cpu, p->ip, p->event, p->symbol, p->dso};
    if (smp.cpu < 0) {
      if (s.on && s.cpu >= 0) smp.cpu = s.cpu;
      else s.cpu_unknown.push_back(self.samples.size());
    }
    self.samples.push_back(std::move(smp));
  }
}

PerfTimeline PerfTimelineBuilder::finish() {
  for (auto& [tid, s] : state_) {
    ThreadTimeline& th = thread(tid);
    if (s.on || s.evidence) {
      OnCpu iv;
      iv.start_ns = s.on ? s.since : s.evidence;
      iv.start_known = s.on;
      iv.end_ns = std::max(iv.start_ns, tl_.last_ns);
      iv.end_known = false;
      iv.cpu = s.on ? s.cpu : -1;
      th.on_cpu.push_back(std::move(iv));
    }
  }
  if (pid_) {
    for (auto it = tl_.threads.begin(); it != tl_.threads.end();)
      it = it->second.pid == pid_ ? std::next(it) : tl_.threads.erase(it);
  }
  for (auto& [tid, th] : tl_.threads) {
    auto by_start = [](const OnCpu& a, const OnCpu& b) { return a.start_ns < b.start_ns; };
    if (!std::is_sorted(th.on_cpu.begin(), th.on_cpu.end(), by_start))
      std::stable_sort(th.on_cpu.begin(), th.on_cpu.end(), by_start);
  }
  return std::move(tl_);
}

PerfTimeline parse_perf_script(std::string_view text, uint32_t pid) {
  PerfTimelineBuilder b(pid);
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string_view::npos) j = text.size();
    b.line(text.substr(i, j - i));
    i = j + 1;
  }
  return b.finish();
}

std::string perf_header_clock(std::string_view h) {
  // "# clockid: monotonic (1)" (perf >= 5.x), else "clockid = N" in an "# event :" line.
  size_t i = 0;
  std::string from_event;
  bool uses_clockid = false;
  while (i < h.size()) {
    size_t j = h.find('\n', i);
    if (j == std::string_view::npos) j = h.size();
    std::string_view l = trim(h.substr(i, j - i));
    i = j + 1;
    if (l.rfind("# clockid:", 0) == 0) {
      std::string_view v = trim(l.substr(10));
      auto paren = v.find(" (");
      return std::string(paren == std::string_view::npos ? v : v.substr(0, paren));
    }
    if (l.rfind("# event :", 0) == 0) {
      if (l.find("use_clockid = 1") != std::string_view::npos) uses_clockid = true;
      auto c = l.find(" clockid = ");
      if (c != std::string_view::npos && from_event.empty()) {
        int id = -1;
        std::string_view v = l.substr(c + 11);
        auto e = v.find_first_of(", ");
        to_num(v.substr(0, e), id);
        switch (id) {
          case 0: from_event = "realtime"; break;
          case 1: from_event = "monotonic"; break;
          case 4: from_event = "monotonic_raw"; break;
          case 7: from_event = "boottime"; break;
          case 11: from_event = "tai"; break;
          default: from_event = "clockid " + std::to_string(id); break;
        }
      }
    }
  }
  return uses_clockid ? from_event : "";
}

namespace {

struct RunResult {
  int status = 0;  // exit status, or 128+signal
  std::string err;  // stderr
};

// Runs ARGV, handing stdout lines to ON_LINE as they arrive; stderr is collected.
Result<RunResult> run_lines(const std::vector<std::string>& argv, const std::function<void(std::string_view)>& on_line) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return make_error(ErrorKind::kIo, "pipe: {}", std::strerror(errno));
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]), close(out[1]);
    return make_error(ErrorKind::kIo, "pipe: {}", std::strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    if (rc == ENOENT)
      return make_error(ErrorKind::kBadInput,
                        "'{}' not found: --perf needs perf to read perf.data (install it: apt install linux-perf)",
                        argv[0]);
    return make_error(ErrorKind::kIo, "running {}: {}", argv[0], std::strerror(rc));
  }
  RunResult r;
  std::string pending;
  char buf[1 << 16];
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int k = 0; k < 2; k++) {
      if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[k].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(fds[k].fd);
        fds[k].fd = -1;
        open_fds--;
        continue;
      }
      if (k == 1) {
        if (r.err.size() < (1 << 20)) r.err.append(buf, size_t(n));
        continue;
      }
      std::string_view data(buf, size_t(n));
      size_t i = 0;
      while (i < data.size()) {
        size_t j = data.find('\n', i);
        if (j == std::string_view::npos) {
          pending.append(data.substr(i));
          break;
        }
        if (pending.empty()) {
          on_line(data.substr(i, j - i));
        } else {
          pending.append(data.substr(i, j - i));
          on_line(pending);
          pending.clear();
        }
        i = j + 1;
      }
    }
  }
  if (!pending.empty()) on_line(pending);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return r;
}

std::vector<std::string> nonempty_lines(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find('\n', i);
    if (j == std::string_view::npos) j = s.size();
    auto l = trim(s.substr(i, j - i));
    if (!l.empty()) out.emplace_back(l);
    i = j + 1;
  }
  return out;
}

}  // namespace

Result<PerfTimeline> load_perf_timeline(const std::string& path, const PerfLoadOptions& opts) {
  struct stat sb;
  if (stat(path.c_str(), &sb) != 0)
    return make_error(ErrorKind::kBadInput, "{}: {} (the perf.data file for --perf)", path, std::strerror(errno));
  if (S_ISDIR(sb.st_mode)) return make_error(ErrorKind::kBadInput, "{}: is a directory, not a perf.data file", path);
  std::string perf = opts.perf;
  if (perf.empty()) {
    const char* env = std::getenv("GORT_PERF");
    perf = env && *env ? env : "perf";
  }
  // The header: is it a perf.data file at all, and which clock?
  std::string header;
  GORT_TRY(auto hr, run_lines({perf, "script", "-i", path, "--header-only"}, [&](std::string_view l) {
             header.append(l);
             header.push_back('\n');
           }));
  auto perf_failed = [&](const RunResult& r) {
    auto errs = nonempty_lines(r.err);
    std::string why = errs.empty() ? fmt::format("exit status {}", r.status) : errs.front();
    return make_error(ErrorKind::kBadInput, "{}: not a perf.data file perf can read (perf says: {})", path, why);
  };
  if (hr.status != 0) return perf_failed(hr);
  PerfTimeline tl;
  std::string clock = perf_header_clock(header);
  if (clock != "monotonic" && !opts.allow_any_clock) {
    if (clock.empty())
      return make_error(ErrorKind::kBadInput,
                        "{}: recorded without -k CLOCK_MONOTONIC, so its times cannot be matched with the trace's "
                        "(record with: perf record -k CLOCK_MONOTONIC -e sched:sched_switch ...)",
                        path);
    return make_error(ErrorKind::kBadInput,
                      "{}: recorded with clock '{}', not CLOCK_MONOTONIC, so its times cannot be matched with the "
                      "trace's (record with: perf record -k CLOCK_MONOTONIC ...)",
                      path, clock);
  }
  PerfTimelineBuilder b(opts.pid);
  GORT_TRY(auto sr, run_lines({perf, "script", "-i", path, "--ns", "-G", "-F", "+pid"},
                              [&](std::string_view l) { b.line(l); }));
  if (sr.status != 0) return perf_failed(sr);
  tl = b.finish();
  tl.clock = clock;
  for (auto& l : nonempty_lines(header))
    if (l.rfind("# cmdline :", 0) == 0) tl.cmdline = std::string(trim(std::string_view(l).substr(11)));
  tl.warnings = nonempty_lines(sr.err);
  return tl;
}

}  // namespace gort::core::analysis
