"""`gort report`: its text, JSON and Chrome outputs, --perf, and its errors, on traces
`gort record` writes from samples built at test time (docs/report.md).

- samples/concurrent_writes (two goroutines, one map, no lock): one concurrent-map-write
  finding naming main.writerA and main.writerB with the goroutine ids the program
  prints; every JSON field of docs/report.md; --fail-on-findings exits 3.
- samples/locked_writes (the control): "no concurrent map writes found in N events ...".
- --perf: a `perf record -k CLOCK_MONOTONIC -e sched:sched_switch -e cpu-clock -F 999 -g`
  of the same run (gort record --perf, and perf record wrapped around gort record): the
  timeline holds the program's threads, each finding's writer threads have scheduling
  or samples; a perf.data of another run is flagged as not overlapping.
- --chrome: valid Chrome trace JSON with a slice per write window, thread names, and a
  flow arrow per finding (plus perf's on-CPU intervals with --perf).
- Bad input: one line on stderr, exit 2 (missing/not-a-trace, missing/invalid perf.data,
  perf recorded without -k CLOCK_MONOTONIC, perf not installed, a binary whose build ID
  differs); a missing executable only costs the symbols.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import GORT, build_sample, missing, run_gort

PERF = shutil.which("perf")


def can_probe():
    if not os.path.exists("/sys/bus/event_source/devices/uprobe/type"):
        return False
    return os.geteuid() == 0 or open("/proc/sys/kernel/perf_event_paranoid").read().strip() in ("-1", "0", "1")


@pytest.fixture(scope="module", autouse=True)
def need_gort():
    if not GORT.exists():
        missing(f"{GORT}")
    if run_gort("record", "--help").returncode != 0:
        pytest.fail("gort record --help failed: the traces come from it")
    if not can_probe():
        missing("uprobes and perf_event_open for gort record (root, or perf_event_paranoid <= 1)")


def record(*args, timeout=180, prefix=()):
    return subprocess.run([*prefix, str(GORT), "record", "-q", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def report(*args, rc=0):
    r = run_gort("report", *map(str, args), timeout=300)
    assert r.returncode == rc, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr}"
    return r


def one_line_error(r, *needles):
    assert r.returncode == 2, f"exit {r.returncode}: {r.stdout[-2000:]} {r.stderr}"
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("gort"), r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "Traceback" not in r.stderr


def writer_ids(stdout):
    return {m[1]: int(m[2]) for m in re.finditer(r"^(writer[AB]) goroutine (\d+)$", stdout, re.M)}


def racy_trace(toolchain, dirpath, perf=False, attempts=6):
    """Records samples/concurrent_writes until a run yields a finding naming both writers.
    Returns (trace, perf.data or None, the writers' goroutine ids, the report JSON)."""
    exe = build_sample(toolchain, "concurrent_writes")
    last = None
    for i in range(attempts):
        trace = dirpath / f"cw{i}.trace"
        perf_data = dirpath / f"cw{i}.perf" if perf else None
        r = record("-o", trace, *(["--perf", perf_data] if perf else []), "--", exe)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json.loads(report(trace, "--json").stdout)
        last = (r.stdout + r.stderr, rep)
        for f in rep["findings"]:
            fns = {fr["function"] for a in f["accesses"] for fr in a["stack"]}
            if {"main.writerA", "main.writerB"} <= fns:
                return trace, perf_data, writer_ids(r.stdout), rep
    pytest.fail(f"no finding naming both writers in {attempts} runs; last:\n{last[0][-2000:]}\n{json.dumps(last[1])[:2000]}")


@pytest.fixture(scope="module")
def racy(toolchain, tmp_path_factory):
    return racy_trace(toolchain, tmp_path_factory.mktemp("racy"))


@pytest.fixture(scope="module")
def locked(toolchain, tmp_path_factory):
    exe = build_sample(toolchain, "locked_writes")
    trace = tmp_path_factory.mktemp("locked") / "locked.trace"
    r = record("-o", trace, "--", exe, "3000")
    assert r.returncode == 0, r.stdout + r.stderr
    return trace, exe


def test_json_shape(racy):
    trace, _, ids, rep = racy
    assert set(rep) >= {"findings", "stats"}
    st = rep["stats"]
    for k in ("events", "lost", "maps", "goroutines", "duration_ns", "events_per_second_analyzed"):
        assert isinstance(st[k], (int, float)), (k, st)
    assert st["events"] > 0 and st["maps"] >= 1 and st["goroutines"] >= 2 and st["duration_ns"] > 0
    f = next(f for f in rep["findings"] if {fr["function"] for a in f["accesses"] for fr in a["stack"]} >=
             {"main.writerA", "main.writerB"})
    assert f["kind"] == "concurrent-map-write"
    assert re.fullmatch(r"0x[0-9a-f]+", f["map"]) and f["map"] in f["maps"]
    assert f["count"] >= 1
    assert len(f["accesses"]) == 2
    by_fn = {}
    for a in f["accesses"]:
        for k in ("goroutine", "thread", "cpu", "time_ns", "end_ns", "op", "function", "stack"):
            assert k in a, (k, a)
        assert a["end_ns"] >= a["time_ns"]
        assert a["op"] == "assign", a
        assert a["function"].startswith("runtime.mapassign"), a
        top = a["stack"][0]
        assert set(top) >= {"function", "file", "line"}
        # The shown stack starts at the user's caller, not in the runtime.
        assert top["function"] in ("main.writerA", "main.writerB"), a["stack"]
        assert top["file"].endswith("concurrent_writes/main.go") and top["line"] > 0
        assert all(fr["function"] != "runtime.goexit" for fr in a["stack"])
        by_fn[top["function"]] = a["goroutine"]
    # The goroutine ids are the ones the program printed for itself.
    assert by_fn == {"main.writerA": ids["writerA"], "main.writerB": ids["writerB"]}, (by_fn, ids)
    times = sorted((a["time_ns"], a["end_ns"]) for a in f["accesses"])
    assert f["first_ns"] >= times[0][0]


def test_text(racy):
    trace, _, ids, rep = racy
    out = report(trace).stdout
    first = out.splitlines()[0]
    assert re.match(r"trace: .*concurrent_writes.* \(pid \d+, go1\.\d+.*\): .*, \d+ events, 0 lost$", first), first
    m = re.search(r"^concurrent-map-write on map (0x[0-9a-f]+) \((\d+) times?, first at \+[\d.]+ ms", out, re.M)
    assert m, out
    for who in ("writerA", "writerB"):
        assert re.search(rf"^  goroutine {ids[who]} \[thread \d+, cpu \d+\]: ", out, re.M), out
        assert re.search(rf"^      main\.{who}\n          /.*concurrent_writes/main\.go:\d+$", out, re.M), out
    assert "runtime.goexit" not in out


def test_fail_on_findings(racy, locked):
    trace, *_ = racy
    r = report(trace, "--fail-on-findings", rc=3)
    assert "concurrent-map-write" in r.stdout
    report(locked[0], "--fail-on-findings", rc=0)


def test_no_findings(locked):
    trace, _ = locked
    out = report(trace).stdout
    assert re.search(r"^no concurrent map writes found in (\d+) events over [\d.]+ s \(\d+ maps written by \d+ goroutines\)$",
                     out, re.M), out
    rep = json.loads(report(trace, "--json").stdout)
    assert rep["findings"] == []
    assert rep["stats"]["events"] >= 2 * 3000 * 2


def chrome_events(path):
    d = json.loads(path.read_text())
    assert d["displayTimeUnit"] == "ns"
    return d["traceEvents"]


def test_chrome(racy, tmp_path):
    trace, _, _, rep = racy
    out = tmp_path / "c.json"
    report(trace, "--json", "--chrome", out)
    ev = chrome_events(out)
    slices = [e for e in ev if e["ph"] == "X" and e["cat"] == "map-write"]
    assert len(slices) == rep["stats"]["windows"]
    for e in slices[:50]:
        assert re.fullmatch(r"(assign|delete|clear|clone|write) 0x[0-9a-f]+", e["name"]), e
        assert e["dur"] >= 0 and e["pid"] > 0 and e["tid"] > 0
        assert set(e["args"]) >= {"goroutine", "map", "function"}
    tids = {e["tid"] for e in slices}
    named = {e["tid"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    assert tids <= named
    assert any(e["ph"] == "M" and e["name"] == "process_name" for e in ev)
    starts = [e for e in ev if e["ph"] == "s"]
    ends = [e for e in ev if e["ph"] == "f"]
    assert len(starts) == len(ends) == len(rep["findings"]) >= 1
    assert {e["id"] for e in starts} == {e["id"] for e in ends}


def check_perf_timeline(rep, ids_expected=()):
    p = rep["perf"]
    assert p["clock"] == "monotonic"
    tids = {t["thread"] for t in p["threads"]}
    assert rep["trace"]["pid"] in tids, p  # the main thread
    assert len(tids) >= 2, p
    assert sum(t["on_cpu"] + t["samples"] for t in p["threads"]) > 0, p
    for f in rep["findings"]:
        threads = f["perf"]["threads"]
        assert {t["thread"] for t in threads} == {a["thread"] for a in f["accesses"]}
        # Both writers ran on threads perf recorded.
        assert all(t["in_perf_data"] for t in threads), threads
        assert f["perf"]["from_ns"] < f["perf"]["to_ns"]
    return tids


# perf.data and its timeline do not depend on the Go version: the primary versions only
@pytest.mark.primary_only
def test_perf_from_gort_record(toolchain, tmp_path):
    if not PERF:
        missing("perf (apt install linux-perf)")
    trace, perf_data, _, _ = racy_trace(toolchain, tmp_path, perf=True)
    rep = json.loads(report(trace, "--json", "--perf", perf_data).stdout)
    check_perf_timeline(rep)
    out = report(trace, "--perf", perf_data).stdout
    assert re.search(r"^  perf, [-+][\d.]+ ms \.\. \+[\d.]+ ms \(±1 ms around the overlap\):$", out, re.M), out
    assert re.search(r"^    thread \d+ \(goroutine \d+\):$", out, re.M), out
    # Chrome with perf: on-CPU slices on the writer threads' companion tracks.
    c = tmp_path / "p.json"
    report(trace, "--perf", perf_data, "--chrome", c)
    ev = chrome_events(c)
    assert any(e["ph"] == "X" and e["cat"] == "sched" for e in ev)


# perf.data and its timeline do not depend on the Go version: the primary versions only
@pytest.mark.primary_only
def test_perf_record_around_gort_record(toolchain, tmp_path):
    """perf record -k CLOCK_MONOTONIC wrapped around gort record (the 'alongside' workflow):
    the timeline keeps the traced program's threads only."""
    if not PERF:
        missing("perf (apt install linux-perf)")
    exe = build_sample(toolchain, "locked_writes")
    trace, perf_data = tmp_path / "l.trace", tmp_path / "l.perf"
    r = record("-o", trace, "--", exe, "20000",
               prefix=(PERF, "record", "-q", "-k", "CLOCK_MONOTONIC", "-e", "sched:sched_switch", "-e", "cpu-clock",
                       "-F", "999", "-g", "-o", str(perf_data), "--"))
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(report(trace, "--json", "--perf", perf_data).stdout)
    assert rep["findings"] == []
    tids = check_perf_timeline(rep)
    # Only the program's threads: /proc is gone, but gort's own pid is not among them.
    assert all(t["comm"] != "gort" for t in rep["perf"]["threads"]), rep["perf"]["threads"]
    assert len(tids) >= 2


# perf.data and its timeline do not depend on the Go version: the primary versions only
@pytest.mark.primary_only
def test_perf_of_another_run_is_flagged(racy, locked, tmp_path):
    if not PERF:
        missing("perf (apt install linux-perf)")
    other = tmp_path / "other.perf"
    subprocess.run([PERF, "record", "-q", "-k", "CLOCK_MONOTONIC", "-e", "cpu-clock", "-o", str(other), "--", "sleep",
                    "0.05"], check=True, capture_output=True)
    out = report(locked[0], "--perf", other).stdout
    assert re.search(r"^warning: .*do not overlap the trace's", out, re.M), out


def test_bad_input(racy, locked, toolchain, tmp_path):
    trace, *_ = racy
    one_line_error(run_gort("report", tmp_path / "nope.trace"), "nope.trace")
    junk = tmp_path / "junk"
    junk.write_text("not a trace\n" * 100)
    one_line_error(run_gort("report", junk))
    # Usage errors: the problem, then the usual "Try 'gort help report'." line.
    for args, needle in (((), "missing TRACE"), ((trace, "--bogus"), "--bogus"), ((trace, trace), "extra")):
        r = run_gort("report", *args)
        assert r.returncode == 2 and needle in r.stderr.splitlines()[0] and r.stdout == "", r.stderr
    one_line_error(run_gort("report", trace, "--perf", tmp_path / "none.data"), "none.data")
    one_line_error(run_gort("report", trace, "--perf", junk), "not a perf.data file")
    if PERF:
        noclk = tmp_path / "noclk.perf"
        subprocess.run([PERF, "record", "-q", "-e", "cpu-clock", "-o", str(noclk), "--", "true"], check=True,
                       capture_output=True)
        one_line_error(run_gort("report", trace, "--perf", noclk), "CLOCK_MONOTONIC")
    # perf missing: GORT_PERF names the perf command.
    r = subprocess.run([str(GORT), "report", str(trace), "--perf", str(junk)], capture_output=True, text=True,
                       env=dict(os.environ, GORT_PERF=str(tmp_path / "no-perf-here")))
    one_line_error(r, "apt install linux-perf")
    # A binary other than the traced one: its Go build ID differs.
    other = build_sample(toolchain, "locked_writes")
    one_line_error(run_gort("report", trace, "--binary", other), "build ID")
    assert run_gort("report", trace, "--binary", other, "--force").returncode == 0
    one_line_error(run_gort("report", trace, "--binary", tmp_path / "nobin"), "nobin")
    one_line_error(run_gort("report", trace, "--chrome", tmp_path / "no" / "dir.json"), "dir.json")


def test_missing_executable_costs_only_symbols(toolchain, tmp_path):
    exe = tmp_path / "cw-copy"
    shutil.copy2(build_sample(toolchain, "concurrent_writes"), exe)
    trace = tmp_path / "gone.trace"
    r = record("-o", trace, "--", exe, "2000")
    assert r.returncode == 0, r.stdout + r.stderr
    exe.unlink()
    r = report(trace)
    assert "warning: cannot open the traced executable" in r.stdout and "--binary" in r.stdout, r.stdout
    # --binary with the same build gives the symbols back.
    rep = json.loads(report(trace, "--json", "--binary", build_sample(toolchain, "concurrent_writes")).stdout)
    assert rep["trace"]["symbolized"] is True


def test_bench():
    j = json.loads(report("--bench", "200000").stdout)
    assert j["events"] == 200000 and j["read_events"] == 200000
    assert j["events_per_second"] > 0
