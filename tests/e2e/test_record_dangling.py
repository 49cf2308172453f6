"""gort record --dangling / gort report on samples/dangling: the heap is scanned after each
GC cycle while the program is recorded; the report names every stale handle (held in
main.handles' array, filled by main.register) and the later conversions of the stale
values back to pointers through the --convert-hook function (main.lookup) with their
stacks; the controls (kept, random, and a program doing hundreds of GCs) give no finding;
killing gort (kill -9, during the scans) leaves the program running correctly."""
import json
import re
import signal
import subprocess
import time

import pytest

from conftest import GORT, build_sample, rounds, run_gort



def record(exe, mode, trace, *extra):
    """Launches `gort record --dangling ... -- exe mode`; returns (stale, kept, proc) once the
    program says ready (its stdout is gort's: the child inherits it)."""
    p = subprocess.Popen([str(GORT), "record", "--dangling", "-q", "-o", str(trace), *extra, "--", str(exe), mode],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    head = p.stdout.readline()
    ready = p.stdout.readline()
    assert ready.startswith("ready pid="), (head, ready, p.stderr.read() if p.poll() is not None else "")
    m = re.search(r"stale=(\S*) kept=(\S*)", head)
    stale = {int(x, 16) for x in m.group(1).split(",") if x}
    kept = {int(x, 16) for x in m.group(2).split(",") if x}
    return stale, kept, p


def wait_for_scan(trace, cycle=2, timeout=30):
    """Until TRACE holds a heap scan after GC cycle CYCLE or later (the scan records are
    written as they are taken): the program's two runtime.GC() calls come before "ready"."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if trace.exists() and any(int(n) >= cycle for n in re.findall(rb'"gc_cycles":(\d+)', trace.read_bytes())):
            return
        time.sleep(0.05)
    raise AssertionError(f"no heap scan after GC cycle {cycle} in {timeout} s")


def finish(p, trace):
    # The scan after the program's second GC runs within milliseconds of it; wait for it
    # before the program goes on to reuse the memory.
    wait_for_scan(trace)
    out, err = p.communicate("go\n", timeout=120)
    assert p.returncode == 0, err
    return out, err


def report(trace):
    r = run_gort("report", trace, "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    return rep, [f for f in rep["findings"] if f["kind"] == "dangling-pointer"]


@pytest.mark.parametrize("variant", ["normal", pytest.param("pie", marks=pytest.mark.primary_only),
                                     pytest.param("stripped", marks=pytest.mark.primary_only)])
def test_stale_handles_and_their_conversions(toolchain, variant, tmp_path):
    exe = build_sample(toolchain, "dangling", variant)
    trace = tmp_path / "d.trace"
    stale, kept, p = record(exe, "stale", trace, "--convert-hook", "main.lookup:AX")  # Go's name for rax
    out, err = finish(p, trace)
    # the program read every stale handle (how many slots new objects took varies by run)
    assert re.search(r"reading another object: \d+ of 32", out), out
    assert re.search(r"--dangling: \d+ GC cycles, [1-9]\d* heap scans", err), err
    rep, fs = report(trace)
    st = rep["stats"]["dangling"]
    assert st["scans"] >= 1 and st["gc_marks"] >= 2 and st["pause_max_ns"] > 0, st
    values = {int(f["target"]["value"], 16) for f in fs}
    assert values <= stale, ("findings that are not stale handles", sorted(values - stale))
    assert not values & kept, "a handle whose object is alive was reported"
    # a stripped binary has no symbol for the variable: it is named by its section
    names = ("main.handles",) if variant != "stripped" else (".bss", ".noptrbss", ".data", ".noptrdata")
    table = [f for f in fs if any(r.startswith(names) for r in f["holder"].get("referenced_from", []))]
    assert {int(f["target"]["value"], 16) for f in table} == stale, "stale handles not attributed to main.handles"
    for f in table:
        if variant != "stripped":
            assert "main.register" in " ".join(f["holder"].get("filled_by", [])), f["holder"]
        assert f["established_by"] and f["first_gc_cycle"] >= 1
        # the program reads each stale handle once through lookup, after the GCs
        assert f["conversion_count"] == 1, (f, rep["stats"]["dangling"])
        c = f["conversions"][0]
        assert c["function"] == "main.lookup" and int(c["value"], 16) == int(f["target"]["value"], 16)
        funcs = [fr["function"] for fr in c["stack"]]
        assert funcs[:2] == ["main.lookup", "main.main"], funcs
        assert c["time_ns"] > f["first_ns"] and c["goroutine"] == 1, c
    assert st["conversions"] == 32 and st["conversions_matched"] == 32, st
    text = run_gort("report", trace).stdout
    assert "dangling-pointer: 32 stale addresses held in heap object" in text, text
    assert "main.lookup(0x" in text, text
    if variant != "stripped":
        assert "referenced from: main.handles" in text, text


def test_checkptr_build_conversion_recorded(toolchain, tmp_path):
    """A checkptr build (-gcflags=all=-d=checkptr) calls runtime.checkptrArithmetic for
    unsafe.Pointer(h): gort records it without any hook. checkptr itself then kills the
    program at that first conversion ("pointer arithmetic result points to invalid
    allocation"), and the recording names that conversion and its stack."""
    exe = build_sample(toolchain, "dangling", "checkptr")
    trace = tmp_path / "cp.trace"
    stale, _, p = record(exe, "stale", trace)
    wait_for_scan(trace)
    out, err = p.communicate("go\n", timeout=120)
    assert p.returncode == 0, err  # gort's status; the program's is in its summary
    assert "exited with status 2" in err and "checkptr" in err, err[-2000:]
    rep, fs = report(trace)
    conv = [c for f in fs for c in f["conversions"]]
    assert conv, rep["stats"]["dangling"]
    c = conv[0]
    assert c["function"] == "runtime.checkptrArithmetic" and int(c["value"], 16) in stale, c
    funcs = [fr["function"] for fr in c["stack"]]
    assert "main.lookup" in funcs and "main.main" in funcs, funcs


@pytest.mark.parametrize("mode", ["kept", "random"])
def test_controls_no_findings(toolchain, mode, tmp_path):
    exe = build_sample(toolchain, "dangling")
    for i in range(rounds(toolchain, full=2, smoke=1, soak=10).of):
        trace = tmp_path / f"{mode}{i}.trace"
        _, _, p = record(exe, mode, trace, "--convert-hook", "main.lookup")
        finish(p, trace)
        rep, fs = report(trace)
        assert fs == [], fs[:3]
        assert rep["stats"]["dangling"]["scans"] >= 1, rep["stats"]["dangling"]


def churn(exe, secs):
    """The sample churning for SECS seconds, or until a line is written to its stdin."""
    p = subprocess.Popen([str(exe), "churn", str(secs)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().startswith("ready pid="), p.stderr.read()
    return p


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
def test_churn_many_gcs_no_findings(toolchain, tmp_path):
    """A program doing a GC every ~10 ms: every cycle scanned, no finding, output intact."""
    exe = build_sample(toolchain, "dangling")
    prog = churn(exe, 4)
    trace = tmp_path / "churn.trace"
    r = run_gort("record", "--dangling", "-q", "-p", prog.pid, "-o", trace, "--duration", "2", timeout=120)
    assert r.returncode == 0, r.stderr
    out, err = prog.communicate(timeout=60)  # stdin closed: EOF, the churn runs its 4 s
    assert prog.returncode == 0 and "churn ok" in out, (out, err)
    rep, fs = report(trace)
    st = rep["stats"]["dangling"]
    assert fs == [], fs[:3]
    assert st["scans"] >= 20 and st["scans"] <= st["gc_marks"], st


def tracer_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return None


def scans_in(trace):
    """Heap scan records gort has written to TRACE so far."""
    return len(re.findall(rb'"gc_cycles":', trace.read_bytes())) if trace.exists() else 0


def test_kill_gort_during_scans(toolchain, tmp_path):
    """kill -9 of gort at moments of a --dangling recording of a program doing a GC every
    ~10 ms (so gort is often holding it for a scan): round I kills it once the trace holds
    I + 1 scans. The program is soon neither stopped nor traced (the scan runs in a child
    that lets go as soon as gort is dead; the kernel takes seconds more to remove gort's
    uprobes, which do not stop it), and it finishes correctly."""
    exe = build_sample(toolchain, "dangling")
    for i in range(rounds(toolchain, full=6, smoke=2, soak=30).of):
        # until told to stop: the kill comes within the first 6 scans (~0.2-0.4 s after the
        # attach here, more on a loaded machine), and the program must still be running then
        prog = churn(exe, 60)
        trace = tmp_path / f"k{i}.trace"
        g = subprocess.Popen([str(GORT), "record", "--dangling", "-q", "-p", str(prog.pid), "-o", str(trace)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while scans_in(trace) < i % 6 + 1 and time.time() < deadline and g.poll() is None:
            time.sleep(0.005)
        assert scans_in(trace) > i % 6 and g.poll() is None, \
            g.stderr.read() if g.poll() is not None else f"{scans_in(trace)} scans in 30 s"
        g.send_signal(signal.SIGKILL)
        deadline = time.time() + 10
        while time.time() < deadline and tracer_of(prog.pid) not in (0, None):
            time.sleep(0.01)
        assert prog.poll() is None, "the program died with gort"
        assert tracer_of(prog.pid) == 0, f"round {i}: the program is still traced 10 s after gort died"
        g.wait(timeout=60)
        out, err = prog.communicate("stop\n", timeout=60)
        assert prog.returncode == 0 and "churn ok" in out, (i, out, err)
        # the trace is cut short but readable
        r = run_gort("report", trace, "--partial")
        assert r.returncode == 0, r.stderr


def test_convert_hook_errors(toolchain, tmp_path):
    exe = build_sample(toolchain, "dangling")
    r = run_gort("record", "--convert-hook", "main.lookup", "-o", tmp_path / "x.trace", "--", exe, "kept",
                 input="\n")
    assert r.returncode != 0 and "add --dangling" in r.stderr, r.stderr
    r = run_gort("record", "--dangling", "--convert-hook", "main.nosuch", "-o", tmp_path / "x.trace", "--", exe,
                 "kept", input="\n")
    assert r.returncode != 0 and "no function 'main.nosuch'" in r.stderr, r.stderr
    r = run_gort("record", "--dangling", "--convert-hook", "main.lookup:xmm0", "-o", tmp_path / "x.trace", "--",
                 exe, "kept", input="\n")
    # not a register: the whole text is taken as the function's name (Go names can hold ':')
    assert r.returncode != 0 and "no function 'main.lookup:xmm0'" in r.stderr, r.stderr
