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
import types

import pytest

import attach
import racecmp
from attach import interrupt_after_cpu, kill_lldb, linger, lldb_args
from conftest import BUILD_DIR, SOAK, Rounds, build_sample, rounds, run_gort, run_rounds
from test_record import dump_events, report_json, wait_for_events, writers_named


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


@pytest.mark.parametrize("variant", ["normal", pytest.param("pie", marks=pytest.mark.primary_only),
                                     pytest.param("stripped", marks=pytest.mark.primary_only), "cgo"])
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
    deadline = time.monotonic() + 30
    while "map=" not in out_f.read_text():
        assert prog.poll() is None and time.monotonic() < deadline, out_f.read_text()
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


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
def test_concurrent_writers_named(toolchain, tmp_path):
    """Both writers named in one finding, each with the goroutine id the program prints
    (test_record.CONCURRENT_ROUNDS' rate)."""
    exe = build_sample(toolchain, "concurrent_writes")

    def one(i):
        trace = tmp_path / f"cw{i}.trace"
        r = subprocess.run([str(GORT), "record", "-q", "--backend", "inproc", "-o", str(trace), "--", str(exe)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return writers_named(r, report_json(trace))
    run_rounds(rounds(toolchain, full=Rounds(4, 5), smoke=Rounds(1, 2), soak=Rounds(45, 50)), one,
               f"{toolchain.version} concurrent_writes, in-process")


def rss_kb(pid):
    return int(re.search(r"^VmRSS:\s+(\d+) kB", open(f"/proc/{pid}/status").read(), re.M)[1])


def gort_mappings(pid):
    """The in-process ring mappings of gort in PID (one per recording left mapped)."""
    return sum("gort-inproc-ring" in line for line in open(f"/proc/{pid}/maps"))


def check_left_mapped(pid, outputs):
    """Nothing of gort stays mapped in PID but what a recording said it left (a thread
    inside a signal handler through every try, docs/inproc.md): one ring per warning, no
    silent leak. The warning is not taken as proof: the mappings are counted."""
    warned = sum(o.count("stay mapped") for o in outputs)
    assert gort_mappings(pid) == warned, f"{gort_mappings(pid)} gort ring mapping(s) left, {warned} announced"
    return warned


def test_record_detach_cycles(toolchain, soak, tmp_path):
    """Attach, record 0.1 s, remove the patches: 10 times on the primary versions (3 on the
    others, 100 under --soak) on mapsoak under GC churn and CPU profiling (SIGPROF on every
    thread, landing in trampolines too): the program runs on unharmed and untraced, nothing
    of gort stays mapped in it unannounced, and the writes gort saw are never reported as
    concurrent."""
    s = soak("-cpuprofile", str(tmp_path / "cpu.prof"))
    n = rounds(toolchain, full=10, smoke=3, soak=100).of
    rss0 = rss_kb(s.pid)
    outputs = []
    for i in range(n):
        trace = tmp_path / f"r{i % 2}.trace"
        r = subprocess.run([str(GORT), "record", "-q", "--backend", "inproc", "-p", str(s.pid), "-o", str(trace),
                            "--duration", "0.1", "--stack-depth", "4"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "ended: duration" in r.stderr, f"round {i + 1}: {r.stderr}"
        assert s.p.poll() is None and s.tracer() == 0, f"round {i + 1}\n{s.output()}"
        rep = report_json(trace)
        assert rep["stats"]["events"] > 1000 and rep["findings"] == [], f"round {i + 1}: {json.dumps(rep)[:3000]}"
        outputs.append(r.stderr)
        check_left_mapped(s.pid, outputs)
    # Each recording maps a 32 MiB ring: n of them left behind would show.
    assert rss_kb(s.pid) < rss0 + 64 * 1024, (rss0, rss_kb(s.pid))
    s.finish(f"{n} in-process record/detach cycles")
    assert (tmp_path / "cpu.prof").stat().st_size > 0


def test_kill9_recorder(toolchain, soak, tmp_path):
    """gort killed while the patches are live: they keep writing into a ring nobody reads
    (then count drops); the program finishes correctly."""
    for i in range(rounds(toolchain, full=2, smoke=1, soak=10).of):
        s = soak()
        trace = tmp_path / f"k{i}.trace"
        p = subprocess.Popen([str(GORT), "record", "-q", "--backend", "inproc", "-p", str(s.pid), "-o", str(trace)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for_events(trace, p)
        p.kill()
        p.communicate()
        # 100 ms of CPU: ~2M map writes, far more than the ring's 262,144 records: the ring
        # fills and every further hit is a counted drop
        s.ran_on(ticks=10)
        s.finish(f"kill -9 of gort record --backend inproc, round {i + 1}")
        rep = report_json(trace, "--partial")
        assert rep["stats"]["events"] > 0


DIFFERENTIAL = [("unlocked_path", ("write",), False), ("unlocked_path", ("read",), True),
                *[("synced", (m,), False) for m in ("mutex", "rwmutex", "chan", "waitgroup", "once", "select")]]
DIFFERENTIAL_SMOKE = [("unlocked_path", ("write",), False), ("synced", ("mutex",), False)]


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
@pytest.mark.primary_only
@pytest.mark.parametrize("sample,args,reads", [
    pytest.param(*d, id=f"{d[0]}-{d[1][0]}", marks=() if d in DIFFERENTIAL_SMOKE else pytest.mark.newest_only)
    for d in DIFFERENTIAL])
def test_same_findings_as_perf(toolchain, tmp_path, sample, args, reads):
    """`gort record --sync` with each backend on the same program: the same unsynchronized
    pairs (by function), and none where the sample synchronizes its map; both recorded
    writes and sync events. Every sample on the newest Go, a racy and a synchronized one on
    1.23 (a perf --sync recording takes 10-25 s here; test_happens_before records every
    version with both backends)."""
    exe = build_sample(toolchain, sample)
    pairs = {}
    for backend in ("perf", "inproc"):
        def one(i):
            trace = tmp_path / f"{backend}{i}.trace"
            r = subprocess.run([str(GORT), "record", "-q", "--sync", *(["--reads"] if reads else []), "--backend",
                                backend, "-o", str(trace), "--", str(exe), *args], capture_output=True, text=True,
                               timeout=300)
            assert r.returncode == 0, r.stdout + r.stderr
            if "fatal error:" in r.stdout + r.stderr:   # the writes overlapped (test_happens_before.UNLOCKED_ROUNDS)
                return "the program threw"
            rep = report_json(trace)
            hb = rep["stats"]["happens_before"]
            assert rep["stats"]["lost"] == 0 and hb["writes"] > 0 and hb["sync_events"] > 0, rep["stats"]
            if reads:
                assert hb["reads"] > 0, rep["stats"]
            pairs[backend] = racecmp.gort_pairs(rep)
            if backend == "inproc":
                sites = dump_events(trace, "--limit", "0")[0]["sites"]
                assert sum(s["backend"] == "inproc" for s in sites) > 0.8 * len(sites), sites
            return None
        run_rounds(Rounds(1, 2), one, f"{sample} {' '.join(args)} with the {backend} backend")
    assert pairs["perf"] == pairs["inproc"], pairs
    assert (pairs["perf"] != set()) == (sample == "unlocked_path"), pairs


# --- The same engine behind the LLDB plugin's `gort record start --backend inproc` -----
# LLDB is the program's tracer there, so the world is stopped, stepped and written through
# the SB API (plugin/lldb_world.cpp) instead of gort's own ptrace.

def lldb_run(args, timeout=180):
    return attach.run(args, timeout)


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


@pytest.mark.parametrize("variant", ["normal", pytest.param("pie", marks=pytest.mark.primary_only)])
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


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
def test_lldb_concurrent_writers_named(toolchain, tmp_path):
    """Under LLDB: both writers named with their goroutine ids (the program's output is in
    LLDB's), test_record.CONCURRENT_ROUNDS' rate."""
    exe = build_sample(toolchain, "concurrent_writes")

    def one(i):
        trace = tmp_path / f"lc{i}.trace"
        out = lldb_run(lldb_launch_args(exe, f"gort record start --backend inproc -o {trace}", "process continue",
                                        "gort record stop"))
        assert "in-process (installed in" in out and "ended: target exited" in out, out
        return writers_named(types.SimpleNamespace(stdout=out), report_json(trace))
    run_rounds(rounds(toolchain, full=Rounds(2, 3), smoke=Rounds(1, 2), soak=Rounds(9, 10)), one,
               f"{toolchain.version} concurrent_writes, in-process under LLDB")


def test_lldb_cycles_running_and_stopped(toolchain, soak, tmp_path):
    """On one running mapsoak (GC churn, CPU profiling: SIGPROF and SIGURG arrive while
    gort steps threads), attach with LLDB and, in turn: start and stop while the program
    runs (LLDB interrupts it for the install and the removal, then resumes it), start again
    and detach while it runs; or, synchronously, start while stopped, continue, stop at an
    interrupt, start again and end `lldb -b` recording (the quit path). Every round: the
    program runs on untraced, nothing of gort stays mapped unannounced, the traces read,
    and mapsoak's own lock-protected writes are never reported.

    The rounds in LLDB's asynchronous mode run under --soak only: LLDB 19 crashed in one
    of them in a CI rehearsal (about 1 in 100-200 such rounds here, not yet understood;
    docs/plugin.md, "Known problems"), and a test that fails by chance must not gate CI.
    The synchronous rounds run everywhere."""
    s = soak("-cpuprofile", str(tmp_path / "cpu.prof"))
    n = rounds(toolchain, full=4, smoke=2, soak=10).of
    outputs = []
    for i in range(n):
        t1, t2 = tmp_path / f"a{i}.trace", tmp_path / f"b{i}.trace"
        if i % 2 == 0 and SOAK:
            cmds = ["script lldb.debugger.SetAsync(True)", "process continue", linger(s.pid),
                    f"gort record start --backend inproc -o {t1}", linger(s.pid), "gort record stop",
                    linger(s.pid), f"gort record start --backend inproc -o {t2}", linger(s.pid),
                    "process detach", linger(s.pid)]
        else:
            cmds = [f"gort record start --backend inproc -o {t1}", interrupt_after_cpu(s.pid), "process continue",
                    "gort record stop", f"gort record start --backend inproc -o {t2}", interrupt_after_cpu(s.pid),
                    "process continue"]
        out = lldb_run(lldb_args(s.pid, *cmds))
        assert out.count("in-process (installed in") == 2, f"round {i + 1}:\n{out}"
        assert not any(h in out for h in HARMED), f"round {i + 1}:\n{out}"
        s.ran_on()
        assert s.p.poll() is None and s.tracer() == 0, f"round {i + 1}\n{s.output()}\n{out}"
        outputs.append(out)
        check_left_mapped(s.pid, outputs)
        for t in (t1, t2):
            rep = report_json(t)
            assert rep["stats"]["events"] > 0 and rep["findings"] == [], f"round {i + 1}: {json.dumps(rep)[:2000]}"
    s.finish(f"{n} LLDB in-process record rounds")


def test_lldb_killed_while_recording(toolchain, soak, tmp_path):
    """kill -9 of LLDB while its in-process probes are live: lldb-server detaches, the
    patches keep writing into a ring nobody reads, and the program finishes correctly."""
    s = soak()
    trace = tmp_path / "k.trace"
    lldb = subprocess.Popen(lldb_args(s.pid, f"gort record start --backend inproc -o {trace}", "process continue"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for_events(trace, lldb)
    s.ran_on()
    kill_lldb(lldb, False, s)
    s.finish("kill -9 of LLDB recording in-process")
