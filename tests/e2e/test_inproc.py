"""gort record --backend inproc: probes patched into the running program (docs/inproc.md).

- samples/mapcount (N writes to one map through a noinline function): exactly N
  write-begin and N write-end events for its map, none lost, launched and attached; normal,
  PIE, stripped and cgo builds; the program's own output is unchanged.
- samples/concurrent_writes: the same writer pair named as with the perf backend; the
  happens-before samples (unlocked_path, synced) give the same findings with either
  backend (a differential test, on the newest Go and 1.23).
- samples/mapsoak attached: repeated record/detach cycles and a kill -9 of gort mid-recording
  leave the program running to its correct output, untraced.
"""
import json
import re
import subprocess
import time

import pytest

import racecmp
from conftest import BUILD_DIR, build_sample, is_primary, run_gort
from test_detach import loops_for, soak  # noqa: F401 (the fixture: a running samples/mapsoak)
from test_record import dump_events, report_json, wait_for_events

GORT = BUILD_DIR / "bin" / "gort"
N = 100_000


def counts(trace, map_addr):
    """write-begin / write-end events of MAP_ADDR, and every site's backend."""
    evs = dump_events(trace)
    header = evs[0]
    begin = sum(1 for e in evs[1:] if e.get("kind") == "write-begin" and e.get("map") == map_addr)
    end = sum(1 for e in evs[1:] if e.get("kind") == "write-end" and e.get("map") == map_addr)
    return begin, end, header, evs


def check_counts(out, trace, n):
    m = re.search(r"^pid=\d+ map=(0x[0-9a-f]+)$", out, re.M)
    assert m, out
    assert f"writes={n} " in out and f"len={n}" in out, out
    begin, end, header, evs = counts(trace, m[1])
    backends = {s["backend"] for s in header["sites"] if "mapassign_fast64" in s["function"]}
    assert backends == {"inproc"}, header["sites"]
    assert (begin, end) == (n, n), f"{begin} write-begin, {end} write-end for {n} writes\n{out}"
    # Each event names the goroutine and has the caller's frames (main.put, main.main).
    e = next(e for e in evs[1:] if e.get("kind") == "write-begin" and e.get("map") == m[1])
    assert e["goid"] == 1 and len(e["stack"]) >= 3, e
    link = [hex(int(pc, 16) - header["slide"]) for pc in e["stack"][:3]]  # PIE: minus the load slide
    sym = run_gort("symbolize", str(header["executable"]), *link)
    assert "main.put" in sym.stdout, sym.stdout + sym.stderr
    rep = report_json(trace)
    assert rep["stats"]["lost"] == 0 and rep["findings"] == [], rep["stats"]


@pytest.mark.parametrize("variant", ["normal", "pie", "stripped", "cgo"])
def test_exact_counts_launched(toolchain, tmp_path, variant):
    exe = build_sample(toolchain, "mapcount", variant)
    trace = tmp_path / "c.trace"
    r = subprocess.run([str(GORT), "record", "--backend", "inproc", "-o", str(trace), "--", str(exe), "-n", str(N)],
                       input="\n", capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert re.search(r"\d+ in-process \(installed in [\d.]+ ms\)", out), out
    check_counts(out, trace, N)


def test_exact_counts_attached(toolchain, tmp_path):
    exe = build_sample(toolchain, "mapcount")
    out_f = tmp_path / "mc.out"
    with open(out_f, "w") as o:
        prog = subprocess.Popen([str(exe), "-n", str(N)], stdin=subprocess.PIPE, stdout=o, stderr=subprocess.STDOUT)
    while "map=" not in out_f.read_text():
        time.sleep(0.01)
    trace = tmp_path / "a.trace"
    rec = subprocess.Popen([str(GORT), "record", "--backend", "inproc", "-p", str(prog.pid), "-o", str(trace)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while not (trace.exists() and trace.stat().st_size > 0):
        assert rec.poll() is None and time.monotonic() < deadline, rec.communicate()[0]
        time.sleep(0.01)
    prog.stdin.write(b"\n")
    prog.stdin.close()
    assert prog.wait(timeout=60) == 0, out_f.read_text()
    out = rec.communicate(timeout=60)[0]
    assert rec.returncode == 0 and "ended: target exited" in out, out
    check_counts(out_f.read_text() + out, trace, N)


def test_concurrent_writers_named(toolchain, tmp_path):
    exe = build_sample(toolchain, "concurrent_writes")
    named = 0
    for i in range(5):
        trace = tmp_path / f"cw{i}.trace"
        r = subprocess.run([str(GORT), "record", "-q", "--backend", "inproc", "-o", str(trace), "--", str(exe)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = report_json(trace)
        for f in rep["findings"]:
            fns = {fn["function"] for a in f["accesses"] for fn in a["stack"]}
            named += {"main.writerA", "main.writerB"} <= fns
            break
    assert named >= 4, f"both writers named in {named} of 5 runs"


def rss_kb(pid):
    return int(re.search(r"^VmRSS:\s+(\d+) kB", open(f"/proc/{pid}/status").read(), re.M)[1])


def test_record_detach_cycles(toolchain, soak, tmp_path):
    """Attach, record 0.1 s, remove the patches, 100 times (20 with other Go versions) on
    mapsoak under GC churn and CPU profiling (SIGPROF on every thread, landing in
    trampolines too): the program runs on unharmed and untraced, nothing of gort stays
    mapped in it, and the writes gort saw are never reported as concurrent."""
    s = soak("-cpuprofile", str(tmp_path / "cpu.prof"))
    n = 2 * loops_for(toolchain)
    rss0 = rss_kb(s.pid)
    for i in range(n):
        trace = tmp_path / f"r{i % 2}.trace"
        r = subprocess.run([str(GORT), "record", "-q", "--backend", "inproc", "-p", str(s.pid), "-o", str(trace),
                            "--duration", "0.1", "--stack-depth", "4"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "ended: duration" in r.stderr, f"round {i + 1}: {r.stderr}"
        assert s.p.poll() is None and s.tracer() == 0, f"round {i + 1}\n{s.output()}"
        rep = report_json(trace)
        assert rep["stats"]["events"] > 1000 and rep["findings"] == [], f"round {i + 1}: {json.dumps(rep)[:3000]}"
        maps = open(f"/proc/{s.pid}/maps").read()
        assert "gort-inproc-ring" not in maps or "stay mapped" in r.stderr, f"round {i + 1}: the ring is still mapped"
    # Each recording maps a 32 MiB ring: n of them left behind would show.
    assert rss_kb(s.pid) < rss0 + 64 * 1024, (rss0, rss_kb(s.pid))
    s.finish(f"{n} in-process record/detach cycles")
    assert (tmp_path / "cpu.prof").stat().st_size > 0


def test_kill9_recorder(toolchain, soak, tmp_path):
    """gort killed while the patches are live: they keep writing into a ring nobody reads
    (then count drops); the program finishes correctly."""
    for i in range(2):
        s = soak()
        trace = tmp_path / f"k{i}.trace"
        p = subprocess.Popen([str(GORT), "record", "-q", "--backend", "inproc", "-p", str(s.pid), "-o", str(trace)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for_events(trace, p)
        p.kill()
        p.communicate()
        time.sleep(0.5)  # the ring fills: every further hit is a counted drop
        s.finish(f"kill -9 of gort record --backend inproc, round {i + 1}")
        rep = report_json(trace, "--partial")
        assert rep["stats"]["events"] > 0


@pytest.mark.parametrize("sample,args,reads", [("unlocked_path", ("write",), False), ("unlocked_path", ("read",), True),
                                               *[("synced", (m,), False) for m in
                                                 ("mutex", "rwmutex", "chan", "waitgroup", "once", "select")]])
def test_same_findings_as_perf(toolchain, tmp_path, sample, args, reads):
    """`gort record --sync` with each backend on the same program: the same unsynchronized
    pairs (by function), and none where the sample synchronizes its map."""
    if not is_primary(toolchain):
        pytest.skip("the differential runs on the newest Go and 1.23 (a perf --sync recording takes ~10 s)")
    exe = build_sample(toolchain, sample)
    pairs = {}
    for backend in ("perf", "inproc"):
        trace = tmp_path / f"{backend}.trace"
        r = subprocess.run([str(GORT), "record", "-q", "--sync", *(["--reads"] if reads else []), "--backend", backend,
                            "-o", str(trace), "--", str(exe), *args], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = report_json(trace)
        assert rep["stats"]["lost"] == 0, rep["stats"]
        pairs[backend] = racecmp.gort_pairs(rep)
        if backend == "inproc":
            sites = dump_events(trace, "--limit", "0")[0]["sites"]
            assert sum(s["backend"] == "inproc" for s in sites) > 0.8 * len(sites), sites
    assert pairs["perf"] == pairs["inproc"], pairs
    assert (pairs["perf"] != set()) == (sample == "unlocked_path"), pairs


# --- The same engine behind the LLDB plugin's `gort record start --backend inproc` -----
# LLDB is the program's tracer there, so the world is stopped, stepped and written through
# the SB API (plugin/lldb_world.cpp) instead of gort's own ptrace.

def lldb_run(args, timeout=180):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return (r.stdout + r.stderr).replace("\r\n", "\n")


def lldb_launch_args(exe, *cmds, stdin=None, prog_args=()):
    from test_plugin import PLUGIN, lldb_path
    launch = "process launch --stop-at-entry" + (f" -i {stdin}" if stdin else "") + \
        (" -- " + " ".join(prog_args) if prog_args else "")
    args = [lldb_path(), "--no-lldbinit", "-b", "-o", f"plugin load {PLUGIN}", "-o", f"target create {exe}",
            "-o", launch]
    for c in cmds:
        args += ["-o", c]
    return args


HARMED = ("SIGSEGV", "SIGBUS", "SIGILL", "fatal error", "error: gort")


@pytest.mark.parametrize("variant", ["normal", "pie"])
def test_lldb_exact_counts(toolchain, tmp_path, variant):
    """Launched under LLDB, stopped at entry: every one of N writes recorded once."""
    exe = build_sample(toolchain, "mapcount", variant)
    nl = tmp_path / "nl"
    nl.write_text("\n")
    trace = tmp_path / "l.trace"
    out = lldb_run(lldb_launch_args(exe, f"gort record start --backend inproc -o {trace}", "process continue",
                                    "gort record stop", stdin=nl, prog_args=("-n", str(N))))
    assert re.search(r"gort: recording map writes of process \d+ to .*: \d+ sites, \d+ in-process \(installed in", out), out
    assert "exited with status = 0" in out and "ended: target exited" in out, out
    assert not any(h in out for h in HARMED), out
    check_counts(out, trace, N)


def test_lldb_concurrent_writers_named(toolchain, tmp_path):
    exe = build_sample(toolchain, "concurrent_writes")
    named = 0
    for i in range(3):
        trace = tmp_path / f"lc{i}.trace"
        out = lldb_run(lldb_launch_args(exe, f"gort record start --backend inproc -o {trace}", "process continue",
                                        "gort record stop"))
        assert "in-process (installed in" in out and "ended: target exited" in out, out
        fns = {fn["function"] for f in report_json(trace)["findings"] for a in f["accesses"] for fn in a["stack"]}
        named += {"main.writerA", "main.writerB"} <= fns
    assert named >= 2, f"both writers named in {named} of 3 runs"


def no_gort_mapping(pid):
    return "gort-inproc-ring" not in open(f"/proc/{pid}/maps").read()


def test_lldb_cycles_running_and_stopped(toolchain, soak, tmp_path):
    """On one running mapsoak (GC churn, CPU profiling: SIGPROF and SIGURG arrive while
    gort steps threads), attach with LLDB and, in turn: start and stop while the program
    runs (LLDB interrupts it for the install and the removal, then resumes it), start again
    and detach while it runs; or, synchronously, start while stopped, continue, stop at an
    interrupt, start again and end `lldb -b` recording (the quit path). Every round: the
    program runs on untraced, nothing of gort stays mapped, the traces read, and mapsoak's
    own lock-protected writes are never reported."""
    from test_detach import lldb_args, interrupt_after, LINGER
    s = soak("-cpuprofile", str(tmp_path / "cpu.prof"))
    n = max(2, loops_for(toolchain) // 5)
    for i in range(n):
        t1, t2 = tmp_path / f"a{i}.trace", tmp_path / f"b{i}.trace"
        if i % 2 == 0:
            cmds = ["script lldb.debugger.SetAsync(True)", "process continue", "script import time; time.sleep(0.2)",
                    f"gort record start --backend inproc -o {t1}", "script time.sleep(0.3)", "gort record stop",
                    "script time.sleep(0.2)", f"gort record start --backend inproc -o {t2}", "script time.sleep(0.3)",
                    "process detach", LINGER]
        else:
            cmds = [f"gort record start --backend inproc -o {t1}", interrupt_after(0.3), "process continue",
                    "gort record stop", f"gort record start --backend inproc -o {t2}", interrupt_after(0.3),
                    "process continue"]
        out = lldb_run(lldb_args(s.pid, *cmds))
        assert out.count("in-process (installed in") == 2, f"round {i + 1}:\n{out}"
        assert not any(h in out for h in HARMED), f"round {i + 1}:\n{out}"
        time.sleep(0.3)
        assert s.p.poll() is None and s.tracer() == 0, f"round {i + 1}\n{s.output()}\n{out}"
        # Left mapped only with the warning that says why (a thread in a signal handler).
        assert no_gort_mapping(s.pid) or "stay mapped" in out, f"round {i + 1}: the ring is still mapped\n{out}"
        for t in (t1, t2):
            rep = report_json(t)
            assert rep["stats"]["events"] > 0 and rep["findings"] == [], f"round {i + 1}: {json.dumps(rep)[:2000]}"
    s.finish(f"{n} LLDB in-process record rounds")


def test_lldb_killed_while_recording(toolchain, soak, tmp_path):
    """kill -9 of LLDB while its in-process probes are live: lldb-server detaches, the
    patches keep writing into a ring nobody reads, and the program finishes correctly."""
    from test_detach import lldb_args, kill_lldb
    s = soak()
    trace = tmp_path / "k.trace"
    lldb = subprocess.Popen(lldb_args(s.pid, f"gort record start --backend inproc -o {trace}", "process continue"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for_events(trace, lldb)
    time.sleep(0.3)
    kill_lldb(lldb, False, s)
    s.finish("kill -9 of LLDB recording in-process")
