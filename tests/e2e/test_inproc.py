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
