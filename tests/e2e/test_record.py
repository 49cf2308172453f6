"""gort record / gort report on real Go programs built at test time.

- samples/concurrent_writes (two goroutines writing one map until the runtime throws):
  the report names both writer functions in one concurrent-map-write finding, with the
  goroutine ids the program prints, in at least 9 of 10 runs.
- samples/locked_writes (the same writers under a mutex): no finding.
- samples/mapsoak attached with -p: Ctrl-C ends the recording with a complete trace;
  kill -9 of gort record leaves the program running to its correct output, and the
  cut-short trace is still readable with --partial.
- Bad input: a dead pid, a program that is not Go, a command that does not exist.
"""
import collections
import json
import re
import signal
import subprocess
import time

import pytest

from attach import interrupt_after_cpu, linger, lldb_args, run
from conftest import BUILD_DIR, Rounds, build_sample, rounds, run_gort, run_rounds


GORT = BUILD_DIR / "bin" / "gort"


def record(*args, timeout=120):
    return subprocess.run([str(GORT), "record", "-q", *args], capture_output=True, text=True, timeout=timeout)


def report_json(trace, *extra):
    r = run_gort("report", str(trace), "--json", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def dump_events(trace, *extra):
    r = run_gort("dump", str(trace), "--json", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def frames(access):
    return [f["function"] for f in access["stack"]]


def writers_named(r, rep):
    """None when one concurrent-map-write finding of REP names main.writerA and
    main.writerB, each on the goroutine samples/concurrent_writes printed for it (R: the
    recording's CompletedProcess, whose stdout is the program's); else why not."""
    ids = {m[1]: int(m[2]) for m in re.finditer(r"^(writer[AB]) goroutine (\d+)$", r.stdout, re.M)}
    assert set(ids) == {"writerA", "writerB"}, r.stdout
    seen = []
    for f in rep["findings"]:
        assert f["kind"] == "concurrent-map-write", f
        by_fn = {}
        for a in f["accesses"]:
            for fn in frames(a):
                if fn in ("main.writerA", "main.writerB"):
                    by_fn[fn[5:]] = a["goroutine"]
        if by_fn == ids:
            return None
        seen.append(by_fn)
    return f"program ids {ids}, findings name {seen or 'nothing'}: {json.dumps(rep)[:3000]}"


# Both writers are named in every run seen here but for a rare run whose overlap the
# recording missed (docs/testing.md gives the measured rate): 9 of 10 on the primary
# versions, 1 of 2 elsewhere.
CONCURRENT_ROUNDS = dict(full=Rounds(9, 10), smoke=Rounds(1, 2), soak=Rounds(45, 50))


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
def test_concurrent_writers_named(toolchain, tmp_path):
    exe = build_sample(toolchain, "concurrent_writes")

    def one(i):
        trace = tmp_path / f"cw{i}.trace"
        r = record("-o", str(trace), "--", str(exe))
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        # Usually "concurrent map writes"; hmap builds sometimes die of the corruption
        # first ("bad map state"): the overlap is still recorded.
        assert "fatal error: " in out, out
        assert re.search(r"ended: target exited with status 2", out), out
        rep = report_json(trace)
        assert rep["stats"]["events"] > 0, rep
        return writers_named(r, rep)
    run_rounds(rounds(toolchain, **CONCURRENT_ROUNDS), one, f"{toolchain.version} concurrent_writes")


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
def test_locked_writers_no_finding(toolchain, tmp_path):
    exe = build_sample(toolchain, "locked_writes")
    trace = tmp_path / "locked.trace"
    r = record("-o", str(trace), "--", str(exe), "20000")
    assert r.returncode == 0, r.stdout + r.stderr
    rep = report_json(trace)
    assert rep["findings"] == [], json.dumps(rep)[:3000]
    # 2 writers x 20000 writes, each a write-begin and a write-end.
    assert rep["stats"]["events"] >= 2 * 20000 * 2, rep["stats"]
    assert rep["stats"]["lost"] == 0, rep["stats"]


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
def test_events_cover_later_threads_and_goroutines(toolchain, tmp_path):
    """Launched from its first instruction: the writers run on threads the runtime creates
    later, and their goroutines are created during the recording, with the ids the
    program itself prints."""
    exe = build_sample(toolchain, "locked_writes")
    trace = tmp_path / "n.trace"
    # The debug registers explicitly (a VM defaults to uprobes only: docs/record.md).
    r = record("-o", str(trace), "--max-hw", "4", "--", str(exe), "5000")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"\d+ sites, 4 hardware, \d+ uprobe", r.stderr), r.stderr
    dumped = dump_events(trace)
    assert [s["backend"] for s in dumped[0]["sites"]].count("hw") == 4, dumped[0]
    events = [e for e in dumped if e["type"] == "event"]
    kinds = [e["kind"] for e in events]
    assert kinds.count("go-start") >= 3, kinds[:50]
    writes = [e for e in events if e["kind"] == "write-begin"]
    by_map = collections.Counter(e["map"] for e in writes)
    the_map, n = by_map.most_common(1)[0]
    assert n >= 2 * 5000, by_map  # plus the runtime's own maps at init
    writes = [e for e in writes if e["map"] == the_map]
    assert len({e["g"] for e in writes}) == 2
    assert all(e["goid"] > 0 for e in writes)
    assert len({e["tid"] for e in events}) >= 2

    exe = build_sample(toolchain, "concurrent_writes")
    r = record("-o", str(trace), "--", str(exe), "50")
    ids = {int(m[1]) for m in re.finditer(r"^writer[AB] goroutine (\d+)$", r.stdout, re.M)}
    assert len(ids) == 2, r.stdout + r.stderr
    starts = {e["goid"] for e in dump_events(trace) if e["type"] == "event" and e["kind"] == "go-start"}
    assert ids <= starts, (ids, starts)


def wait_for_events(trace, proc, deadline=30):
    end = time.monotonic() + deadline
    while not (trace.exists() and trace.stat().st_size > 64 * 1024):
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.05)


def test_attach_and_interrupt(toolchain, soak, tmp_path):
    s = soak()
    trace = tmp_path / "soak.trace"
    p = subprocess.Popen([str(GORT), "record", "-p", str(s.pid), "-o", str(trace), "--stack-depth", "8"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_events(trace, p)
    p.send_signal(signal.SIGINT)
    out = p.communicate(timeout=60)[0]
    assert p.returncode == 0, out
    assert "ended: interrupted" in out, out
    m = re.search(r"gort record: (\d+) events \((\d+) lost", out)
    assert m and int(m[1]) > 1000, out
    rep = report_json(trace)
    assert rep["findings"] == [], json.dumps(rep)[:2000]  # mapsoak locks its maps
    assert rep["stats"]["events"] == int(m[1])
    s.finish("after gort record -p and Ctrl-C")


def test_kill9_recorder(toolchain, soak, tmp_path):
    for i in range(rounds(toolchain, full=2, smoke=1, soak=10).of):
        s = soak()
        trace = tmp_path / f"k{i}.trace"
        p = subprocess.Popen([str(GORT), "record", "-q", "-p", str(s.pid), "-o", str(trace)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for_events(trace, p)
        p.kill()
        p.communicate()
        s.finish(f"kill -9 of gort record, round {i + 1}")
        r = run_gort("report", str(trace))
        assert r.returncode == 2 and "--partial" in r.stderr, r.stdout + r.stderr
        rep = report_json(trace, "--partial")
        assert rep["stats"]["events"] > 0


def test_duration_leaves_program_running(toolchain, soak, tmp_path):
    s = soak()
    trace = tmp_path / "d.trace"
    r = record("-p", str(s.pid), "-o", str(trace), "--duration", "0.5")
    assert r.returncode == 0 and "ended: duration" in r.stderr, r.stderr
    s.finish("after --duration")


def test_default_backend_policy(toolchain, tmp_path):
    """Bare metal: the debug registers; a VM: uprobes only, and it says why."""
    exe = build_sample(toolchain, "locked_writes")
    r = record("-o", str(tmp_path / "p.trace"), "--", str(exe), "100")
    assert r.returncode == 0, r.stderr
    vm = " hypervisor" in next(l for l in open("/proc/cpuinfo") if l.startswith("flags"))
    if vm:
        assert re.search(r"\d+ sites, 0 hardware, \d+ uprobe", r.stderr), r.stderr
        assert "running under a hypervisor: uprobes only" in r.stderr, r.stderr
    else:
        assert re.search(r"\d+ sites, 4 hardware", r.stderr), r.stderr


def test_bad_input(toolchain, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    r = record("-p", str(dead.pid), "-o", str(tmp_path / "x"))
    assert r.returncode == 2 and f"no process {dead.pid}" in r.stderr, r.stderr
    r = record("-o", str(tmp_path / "x"), "--", "/bin/true")
    assert r.returncode == 2 and "not a Go binary" in r.stderr, r.stderr
    r = record("-o", str(tmp_path / "x"), "--", str(tmp_path / "nope"))
    assert r.returncode == 2 and "cannot run" in r.stderr, r.stderr
    r = record()
    assert r.returncode == 2 and "nothing to record" in r.stderr, r.stderr
    r = record("-p", "1", "--", "true")
    assert r.returncode == 2 and "not both" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_lldb_record_start_stop(toolchain, tmp_path):
    """`gort record start/stop` in an LLDB session: the same engine, the same report.
    Naming both writers depends on their writes meeting in time: CONCURRENT_ROUNDS' smoke
    rule (1 of 2), as beside another part's load."""
    from test_plugin import PLUGIN, lldb_path
    exe = build_sample(toolchain, "concurrent_writes")

    def one(i):
        trace = tmp_path / f"lldb{i}.trace"
        r = subprocess.run([lldb_path(), "--no-lldbinit", "-b", "-o", f"plugin load {PLUGIN}", "-o",
                            f"target create {exe}", "-o", "process launch --stop-at-entry", "-o",
                            f"gort record start -o {trace}", "-o", "process continue", "-o", "gort record stop"],
                           capture_output=True, text=True, timeout=180)
        out = r.stdout + r.stderr
        assert re.search(r"gort: recording map writes of process \d+ to .*: \d+ sites, \d hardware", out), out
        m = re.search(r"gort: recorded (\d+) events \((\d+) lost\) to .*; ended: target exited", out)
        assert m and int(m[1]) > 0, out
        # the program's output is in LLDB's: the writers' goroutine ids
        return writers_named(r, report_json(trace))
    run_rounds(CONCURRENT_ROUNDS["smoke"], one, f"{toolchain.version} gort record start/stop in LLDB")


def test_lldb_detach_ends_recording(toolchain, soak, tmp_path):
    """Detaching stops the recording first (the trace gets its summary) and leaves the
    program unharmed."""
    s = soak()
    trace = tmp_path / "d.trace"
    out = run(lldb_args(s.pid, f"gort record start -o {trace}", interrupt_after_cpu(s.pid), "process continue",
                        "process detach", linger(s.pid)))
    assert re.search(r"gort: before detaching: gort: recorded (\d+) events", out), out
    rep = report_json(trace)
    assert rep["stats"]["events"] > 0 and rep["findings"] == []
    s.finish("gort record start, detach")


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
@pytest.mark.parametrize("variant", ["pie", "stripped", "noswiss"])
def test_variants_pie_stripped_noswiss(toolchain, tmp_path, variant):
    """PIE (hardware breakpoints need the load slide), stripped (-s -w: no symbols, no
    DWARF), and hmap builds of Go 1.24/1.25 (GOEXPERIMENT=noswissmap): both writers named
    (CONCURRENT_ROUNDS' rate: a second run only if the first missed)."""
    exe = build_sample(toolchain, "concurrent_writes", variant)

    def one(i):
        trace = tmp_path / f"{variant}{i}.trace"
        r = record("-o", str(trace), "--max-hw", "4", "--", str(exe))
        assert r.returncode == 0 and "4 hardware" in r.stderr, r.stderr
        return writers_named(r, report_json(trace))
    run_rounds(Rounds(1, 2), one, f"{variant}: concurrent_writes")
