"""`gort probe`: perf_event_open hardware breakpoints, watchpoints and uprobes on a live Go
program, counted exactly against what the program itself did.

samples/mapcount does N writes to one pre-sized map[uint64]int on one goroutine after a
newline arrives on stdin (so the probes are in place first), then prints "writes=N ns=T".
It runs with GODEBUG=asyncpreemptoff=1. Facts: ../shared/reference/platform.md (perf),
go-runtime.md 1.3 (registers at entry, morestack re-entry), 2.1 (the writing flag).

* The write_begin site of runtime.mapassign_fast64 (from `gort inspect --json`) runs once
  per write: exactly N hits, hardware or uprobe, non-PIE and PIE.
* The entry of runtime.mapassign_fast64 fires N + k times: k re-entries after morestack.
  sysmon asks a goroutine that has run for 10 ms to yield by poisoning its stack guard
  (cooperative preemption, not affected by asyncpreemptoff), so the next prologue calls
  morestack, which reschedules and restarts the function at its entry with the same
  arguments. Every extra hit is an immediate repeat of the same key on the same g.
* A 1-byte write watchpoint on the map's writing flag fires twice per write (set, clear).
* SIGKILL of gort mid-run leaves the target running to completion with correct output.
The cost of a hit is measured by `scripts/bench --only probe`.
"""
import json
import os
import signal
import subprocess

import pytest

import lldb_wait
from conftest import GORT, build_sample, missing, run_gort

# Timing-sensitive (rates of N of M runs, exact counts that a starved reader could lose):
# ctest runs these parts alone (tests/e2e/ctest_parts.py).
pytestmark = pytest.mark.exclusive

N = 4000
FLAG_DISP = {"hmap": 0x08, "swiss": 0x22}


PARANOID = "/proc/sys/kernel/perf_event_paranoid"


def perf_available():
    if not os.path.exists("/sys/bus/event_source/devices/uprobe/type"):
        return False
    return os.geteuid() == 0 or open(PARANOID).read().strip() in ("-1", "0", "1")


@pytest.fixture(scope="module", autouse=True)
def need_perf():
    """Root, or perf_event_paranoid <= 1 (set here when this user may write it); else a
    skip on a developer's machine and a failure under CI (conftest.missing)."""
    if not GORT.exists():
        missing(f"{GORT}")
    if not perf_available():
        try:
            with open(PARANOID, "w") as f:
                f.write("1\n")
        except OSError:
            pass
    if not perf_available():
        missing("perf_event_open with breakpoints and uprobes: root, or perf_event_paranoid <= 1 "
                "(sysctl kernel.perf_event_paranoid=1), and CONFIG_UPROBES")


def plan_of(binary):
    j = json.loads(run_gort("inspect", binary, "--json", check=True).stdout)
    fast64 = next(p for p in j["probes"] if p["function"] == "runtime.mapassign_fast64")
    return j, fast64


class Target:
    """mapcount waiting on stdin; .pid and .map parsed from its first line."""

    def __init__(self, binary, n=N):
        env = dict(os.environ, GODEBUG="asyncpreemptoff=1")
        self.p = subprocess.Popen([str(binary), "-n", str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        first = self.p.stdout.readline().split()
        kv = dict(f.split("=") for f in first)
        self.pid = int(kv["pid"])
        self.map = int(kv["map"], 16)

    def go(self):
        self.p.stdin.write("\n")
        self.p.stdin.flush()

    def finish(self, timeout=120):
        out, err = self.p.communicate(timeout=timeout)
        assert self.p.returncode == 0, f"target exited {self.p.returncode}: {err}"
        kv = dict(f.split("=") for f in out.split())
        return kv


def start_probe(target, *args):
    g = subprocess.Popen([str(GORT), "probe", "--pid", str(target.pid), "--duration", "120", *map(str, args)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = g.stderr.readline()
    if "ready" not in line:
        out, err = g.communicate(timeout=30)
        target.p.kill()
        raise AssertionError(f"gort probe did not start: {line}{err}{out}")
    return g


def run_probe(binary, *args, n=N):
    """Runs mapcount with `gort probe ARGS` attached; returns (probe json, target output)."""
    t = Target(binary, n)
    g = start_probe(t, *args)
    t.go()
    res = t.finish()
    out, err = g.communicate(timeout=60)
    assert g.returncode == 0, f"gort probe exited {g.returncode}: {err}\n{out}"
    j = json.loads(out)
    assert j["target_exited"] and j["lost"] == 0, j
    assert int(res["writes"]) == n and int(res["len"]) == n
    return j, res, t


@pytest.mark.parametrize("variant", ["normal", "pie"])
def test_write_begin_site_counts_every_write_once(toolchain, variant):
    binary = build_sample(toolchain, "mapcount", variant)
    j, fast64 = plan_of(binary)
    assert len(fast64["write_begin"]) == 1
    site = fast64["sites"][0]
    assert site["kind"] == "write_begin"
    res, _, t = run_probe(binary, "--addr", site["address"], "--link", "--samples", "5")
    (p,) = res["probes"]
    assert p["backend"] == "hw" and p["error"] == ""
    assert p["hits"] == N
    # The runtime address (slide applied for PIE) is where the hits are, and at the flag
    # store the site's base register holds the map header.
    assert all(s["ip"] == p["addr"] for s in p["samples"])
    assert {int(s[site["map_reg"]], 16) for s in p["samples"]} == {t.map}


def test_entry_counts_writes_plus_morestack_reentries(toolchain):
    binary = build_sample(toolchain, "mapcount")
    t = Target(binary)
    g = start_probe(t, "--func", "runtime.mapassign_fast64", "--samples", str(10 * N))
    t.go()
    t.finish()
    j = json.loads(g.communicate(timeout=60)[0])
    (p,) = j["probes"]
    assert p["backend"] == "hw" and j["lost"] == 0
    mine = [s for s in p["samples"] if int(s["rbx"], 16) == t.map]  # RBX = map at entry
    keys = [int(s["rcx"], 16) for s in mine]                          # RCX = key
    assert sorted(set(keys)) == list(range(N))
    extra = len(keys) - N
    repeats = sum(1 for a, b in zip(mine, mine[1:]) if a["rcx"] == b["rcx"] and a["r14"] == b["r14"])
    assert extra == repeats, f"{extra} extra hits, {repeats} immediate re-entries"
    assert all(s["ret"] == mine[0]["ret"] for s in mine)  # [rsp] = return address into main.put


@pytest.mark.parametrize("variant", ["normal", "pie"])
def test_uprobe_gives_the_same_count(toolchain, variant):
    binary = build_sample(toolchain, "mapcount", variant)
    _, fast64 = plan_of(binary)
    res, _, _ = run_probe(binary, "--addr", fast64["write_begin"][0], "--link", "--uprobe")
    (p,) = res["probes"]
    assert p["backend"] == "uprobe" and p["hits"] == N, p


def test_fifth_probe_falls_back_to_uprobe(toolchain):
    binary = build_sample(toolchain, "mapcount")
    _, fast64 = plan_of(binary)
    wb = fast64["write_begin"][0]
    res, _, _ = run_probe(binary, "--addr", ",".join([wb] * 5), "--link")
    backends = [p["backend"] for p in res["probes"]]
    assert backends == ["hw"] * 4 + ["uprobe"], res
    assert [p["hits"] for p in res["probes"]] == [N] * 5


def test_watchpoint_on_writing_flag_fires_twice_per_write(toolchain):
    binary = build_sample(toolchain, "mapcount")
    j, _ = plan_of(binary)
    t = Target(binary)
    g = start_probe(t, "--watch1", hex(t.map + FLAG_DISP[j["map_impl"]]))
    t.go()
    t.finish()
    res = json.loads(g.communicate(timeout=60)[0])
    (p,) = res["probes"]
    assert p["backend"] == "hw" and p["kind"] == "write1"
    assert p["hits"] == 2 * N, p


def test_sigkill_of_gort_leaves_target_unharmed(toolchain):
    binary = build_sample(toolchain, "mapcount")
    j, fast64 = plan_of(binary)
    n = 40 * N
    t = Target(binary, n)
    g = start_probe(t, "--func", "runtime.mapassign_fast64", "--addr", fast64["write_begin"][0], "--link",
                    "--watch1", hex(t.map + FLAG_DISP[j["map_impl"]]), "--samples", "0")
    t.go()
    # mid-run: 20 ms of the loop's CPU time, of some seconds (each write costs tens of
    # microseconds with three probes)
    assert lldb_wait.ran_on(t.p.pid, 2), "the target neither ran nor ended"
    assert t.p.poll() is None, "the target finished before gort was killed: raise n"
    g.send_signal(signal.SIGKILL)
    g.wait(timeout=30)
    res = t.finish()
    assert int(res["writes"]) == n and int(res["len"]) == n
