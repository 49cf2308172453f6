"""`gort break maps`, `gort watch map` and `gort break clear` on samples/concurrent_writes.

Two goroutines write one map; the program prints each writer's goroutine id, which the
logged events must match. GOMAXPROCS=1, asyncpreemptoff=1 and GOGC=off (no GC assist parks a writer mid-write) keep the run free of a real
"concurrent map writes" throw (the writers then never overlap) and make counts exact up
to stack-growth re-entries of the probed entry (platform.md)."""
import collections
import json
import re

import subprocess

import pytest

from conftest import build_sample
from test_plugin import PLUGIN, lldb_batch, lldb_path, run_lldb


N = 2000
ENV = {"GOMAXPROCS": "1", "GODEBUG": "asyncpreemptoff=1", "GOGC": "off"}


@pytest.fixture(autouse=True)
def _go_env(monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)


def writer_ids(stdout):
    ids = dict(re.findall(r"^(writer[AB]) goroutine (\d+)$", stdout, re.M))
    assert set(ids) == {"writerA", "writerB"}, stdout
    return {k: int(v) for k, v in ids.items()}


def events(path):
    with open(path) as f:
        return [json.loads(l) for l in f]


def check_two_writers(r, log):
    out = r.stdout + r.stderr
    # Software breakpoints stretch each write past sysmon's 10 ms: a cooperative preemption
    # inside mapassign can then let the other writer in, and the runtime throws.
    threw = "fatal error: concurrent map writes" in out and "exited with status = 2" in out
    assert threw or ("exited with status = 0" in out and "done len=1000" in out), out
    ids = writer_ids(r.stdout)
    evs = [e for e in events(log) if e["caller"] and e["caller"]["function"] in ("main.writerA", "main.writerB")]
    for e in evs:
        assert set(e) >= {"goroutine", "thread", "op", "map", "function", "caller", "time_ns"}, e
        assert e["op"] == "assign" and e["function"] == "runtime.mapassign_fast64", e
        assert e["caller"]["file"].endswith("concurrent_writes/main.go"), e
        assert isinstance(e["key"], int) and 0 <= e["key"] < 1000, e
    assert len({e["map"] for e in evs}) == 1, collections.Counter(e["map"] for e in evs)
    by_caller = collections.Counter((e["caller"]["function"], e["goroutine"]) for e in evs)
    assert set(by_caller) == {("main.writerA", ids["writerA"]), ("main.writerB", ids["writerB"])}, by_caller
    for c in by_caller.values():
        # Entry probes count re-entries: stack growth, and (slow software breakpoints) sysmon's
        # cooperative preemption at the entry's stack check, which restarts the function.
        assert (1 if threw else N) <= c <= N + N // 5, by_caller


@pytest.mark.parametrize("mode", ["--sw", "--hw"])
def test_continue_log_names_both_writers(toolchain, tmp_path, mode):
    exe = build_sample(toolchain, "concurrent_writes")
    log = tmp_path / "hits.jsonl"
    r = lldb_batch(exe, f"gort break maps {mode} --continue --log {log}", f"run {N}", timeout=300)
    if mode == "--hw":
        assert "hardware  assign runtime.mapassign_fast64" in r.stdout, r.stdout
    check_two_writers(r, log)


# Stopping inside a map write of concurrent_writes stretches it past sysmon's 10 ms: the
# writer is then cooperatively preempted mid-write and the other one makes the runtime
# throw. The stop-mode tests use mapwrites (one goroutine, deterministic output) instead.
HIT = (r"^gort: goroutine 1 thread \d+ assign map (0x[0-9a-f]+) key \d+ in runtime.mapassign_fast64 "
       r"from (main\.\S+) at \S+mapwrites/main.go:\d+$")


def plain_output(exe):
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [l for l in r.stdout.splitlines() if l.startswith(("m32=", "after clear"))]


def program_lines(stdout):
    return [l for l in stdout.splitlines() if l.startswith(("m32=", "after clear"))]


def test_stop_mode_prints_the_hit_then_clear(toolchain):
    exe = build_sample(toolchain, "mapwrites")
    r = lldb_batch(exe, "gort break maps --sw --func runtime.mapassign_fast64", "run", "gort break clear", "continue")
    out = r.stdout + r.stderr
    assert len(re.findall(HIT, r.stdout, re.M)) == 1, out
    assert "stop reason = breakpoint 1.1" in out and "1 breakpoint(s)" in out, out
    assert "exited with status = 0" in out and "signal SIGTRAP" not in out, out
    assert program_lines(r.stdout) == plain_output(exe)


def test_hw_stop_mode_then_clear_runs_normally(toolchain):
    exe = build_sample(toolchain, "mapwrites")
    # A SIGTRAP stop ends lldb -b's -o list; -k commands run after it.
    r = run_lldb([lldb_path(), "--no-lldbinit", "-b", "-o", f"plugin load {PLUGIN}",
                  "-o", "gort break maps --hw --func runtime.mapassign_fast64", "-o", "run",
                  "-k", "gort break clear", "-k", "continue", str(exe)])
    out = r.stdout + r.stderr
    assert len(re.findall(HIT, r.stdout, re.M)) == 1, out
    assert "gort: hardware  assign runtime.mapassign_fast64" in out, out
    assert out.count("stop reason = signal SIGTRAP") == 1, out
    assert "stop-hook removed" in out and "exited with status = 0" in out, out
    assert program_lines(r.stdout) == plain_output(exe)


def first_map(toolchain, *then):
    """Stops at mapwrites' second fast64 write (its map in RBX), then runs THEN. Not the
    first: m64 lives on main's stack, and the first write grows the stack (morestack
    re-enters mapassign_fast64 with the map's new address)."""
    exe = build_sample(toolchain, "mapwrites")
    r = lldb_batch(exe, "gort break maps --sw --func runtime.mapassign_fast64", "run", "continue", "gort break clear",
                   *then, "continue")
    out = r.stdout + r.stderr
    assert "exited with status = 0" in out, out
    assert program_lines(r.stdout) == plain_output(exe)
    return r, re.findall(HIT, r.stdout, re.M)[1][0]


def test_map_filter(toolchain, tmp_path):
    log = tmp_path / "b.jsonl"
    r, m = first_map(toolchain, f"gort break maps --sw --continue --map $rbx --log {log}")
    b = events(log)
    assert len(b) >= 10 and all(e["map"] == m and e["goroutine"] == 1 for e in b), b[:3]
    assert all(e["caller"]["function"].startswith("main.") for e in b), b[:3]


def test_watch_map(toolchain, tmp_path):
    log = tmp_path / "w.jsonl"
    r, m = first_map(toolchain, f"gort watch map $rbx --continue --log {log}")
    w = events(log)
    # Every write by any runtime path (hmap builds also see hashGrow and friends).
    # (goroutine 0: runtime code on the system stack, e.g. memmove under newstack.)
    assert w and all(e["map"] == m and e["goroutine"] in (0, 1) and e["function"].startswith(("runtime.", "internal/runtime/")) for e in w), w[:3]
    assert all(e["goroutine"] == 1 for e in w if e["function"] == "runtime.mapassign_fast64"), w[:3]
    ops = collections.Counter(e["op"] for e in w if e["function"] == "runtime.mapassign_fast64")
    assert ops["write-begin"] >= 10 and ops["write-begin"] == ops["write-end"], ops
    assert all(e["caller"] and e["caller"]["function"].startswith("main.") for e in w), w[:3]


def test_clear_without_anything():
    r = lldb_batch(None, "gort break clear")
    assert "gort: 0 perf probe set(s) closed, 0 breakpoint(s) and 0 watchpoint(s) deleted" in r.stdout, r.stdout + r.stderr


def test_bad_arguments(toolchain):
    exe = build_sample(toolchain, "concurrent_writes")
    r = lldb_batch(exe, "gort break maps --func main.main")
    assert "error: gort break maps: main.main is not a map-write function" in r.stdout + r.stderr
    r = lldb_batch(exe, "gort watch map 0x1000")
    assert "error: gort watch map: no process" in r.stdout + r.stderr
