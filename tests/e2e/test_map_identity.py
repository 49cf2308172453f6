"""Map identity = address + lifetime (issue 27): a map freed and another allocated at its
address is another map, and reports never pair their writers.

- samples/mapchurn heap: 4 goroutines each make (through every creating path: make, make
  with a hint, a literal, maps.Clone, reflect.MakeMap), write and drop maps under GOGC=10;
  the allocator hands the same addresses to other goroutines' maps. `gort record --sync`,
  launched and attached, in-process and perf: no finding of either analysis, and the
  trace shows the reuse happened (creations at addresses already written).
- samples/mapchurn stack: goroutines one after another, each writing a map on its own
  stack (made by no runtime call); later goroutines reuse the stack and the address: no
  finding, and the trace marks those accesses as stack maps.
- samples/mapchurn shared, the control: two goroutines really share one map unordered:
  found, with both writers, and the finding says where and by whom the map was created.
- The race detector agrees, mode by mode (no DATA RACE but in `shared`).
- A real project's tests, race-free: prometheus client_golang v1.25.0's `prometheus`
  package test binary (fetched through the Go module proxy, built with the newest Go):
  no finding (it had thousands, over map literals made and dropped per call).
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import CACHE, GORT, IN_CI, build_sample, missing, private_copy, run_gort
import racecmp

PROM_MODULE, PROM_VERSION = "github.com/prometheus/client_golang", "v1.25.0"
# The tests the issue was found on (histogram_test.go:195, go_collector.go:263).
PROM_TESTS = "TestHistogramConcurrency|TestGoCollectorConcurrency|TestGoCollectorGC"


def record(trace, exe, *args, backend="inproc", timeout=600):
    r = subprocess.run([str(GORT), "record", "-q", "--sync", "--backend", backend, "-o", str(trace), "--",
                        str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def report(trace):
    r = run_gort("report", str(trace), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def brief(rep, n=3000):
    short = [{k: f.get(k) for k in ("kind", "map", "count", "created")} |
             {"sides": [[s.get("goroutine"), [fr["function"] for fr in s.get("stack", [])][:3]]
                        for s in f.get("accesses", [])]} for f in rep["findings"][:4]]
    return json.dumps({"findings": short, "lifetimes": rep["stats"].get("map_lifetimes"),
                       "warnings": rep["trace"]["warnings"]})[:n]


def assert_clean(rep, mode):
    lt = rep["stats"]["map_lifetimes"]
    assert rep["findings"] == [], brief(rep)
    assert lt["creations_recorded"] and lt["note"] == "", brief(rep)
    if mode == "heap":
        # The hazard was there: maps were made at addresses other maps had been written at.
        assert lt["creations"] >= 1000 and lt["reused_addresses"] > 0, brief(rep)
    else:
        assert lt["stack_map_accesses"] >= 200 * 8, brief(rep)
    assert rep["stats"]["happens_before"]["writes"] > 0, brief(rep)


@pytest.mark.parametrize("mode", ["heap", "stack"])
@pytest.mark.parametrize("variant", ["normal", "stripped", "pie", "noswiss"])
def test_churn_launched_inproc(toolchain, tmp_path, mode, variant):
    """Every build shape: hmap (1.21-1.23 and noswissmap 1.24/1.25) and swiss creators,
    stripped (functions from pclntab) and PIE (creation addresses slid)."""
    exe = build_sample(toolchain, "mapchurn", variant)
    trace = tmp_path / f"{mode}.trace"
    record(trace, exe, mode)
    assert_clean(report(trace), mode)


@pytest.mark.primary_only
def test_churn_launched_perf_stack(toolchain, tmp_path):
    """The perf backend, which cannot read the g at the hit: stack maps of goroutines that
    are gone by the time gort reads their samples (test_churn_attached covers creations
    through perf)."""
    exe = build_sample(toolchain, "mapchurn")
    trace = tmp_path / "stack.trace"
    record(trace, exe, "stack", backend="perf")
    assert_clean(report(trace), "stack")


@pytest.mark.newest_only
@pytest.mark.parametrize("backend", ["inproc", "perf"])
def test_churn_attached(toolchain, tmp_path, backend):
    """gort record -p on the running program, which starts churning once the probes are in.
    (Newest Go only: a perf recording costs ~12 s here, most of it placing and removing
    uprobes; the launched tests cover every version.)"""
    exe = build_sample(toolchain, "mapchurn")
    prog = subprocess.Popen([str(exe), "heap", "-wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = prog.stdout.readline()
        assert re.match(r"pid=\d+ ready", line), line
        trace = tmp_path / "attached.trace"
        rec = subprocess.Popen([str(GORT), "record", "--sync", "--backend", backend, "-p", str(prog.pid),
                                "-o", str(trace)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = []
        while True:  # the start line says the probes are in (gort prints it once armed)
            out = rec.stdout.readline()
            seen.append(out)
            if not out or f"gort record: attached to {prog.pid}" in out:
                break
        assert f"gort record: attached to {prog.pid}" in seen[-1], "".join(seen)
        prog.stdin.write("go\n")
        prog.stdin.flush()
        assert "heap ok" in prog.stdout.readline()
        assert prog.wait(timeout=60) == 0
        rest = rec.communicate(timeout=300)[0]
        assert rec.returncode == 0, "".join(seen) + rest
    finally:
        if prog.poll() is None:
            prog.kill()
            prog.wait()
    assert_clean(report(trace), "heap")


def test_shared_map_still_found(toolchain, tmp_path):
    """The control: one long-lived map, two goroutines, no synchronization. Mostly the
    writes are apart in time (an unsynchronized-map-write); when two overlap, that is a
    concurrent-map-write (and the happens-before analysis leaves that pair to it)."""
    exe = build_sample(toolchain, "mapchurn")
    trace = tmp_path / "shared.trace"
    record(trace, exe, "shared")
    rep = report(trace)
    found = [f for f in rep["findings"] if f["kind"] in ("unsynchronized-map-write", "concurrent-map-write")]
    assert found, brief(rep)
    for f in found:
        sides = [[fr["function"] for fr in a["stack"]] for a in f["accesses"]]
        assert all(s and s[0] == "main.writeShared" for s in sides), brief(rep)
        assert f["accesses"][0]["goroutine"] != f["accesses"][1]["goroutine"], brief(rep)
        c = f["created"]
        assert c and c["function"] in ("runtime.makemap_small", "internal/runtime/maps.NewMap",
                                       "runtime.makemap"), brief(rep)
        assert [fr["function"] for fr in c["stack"]][:1] == ["main.runShared"], brief(rep)
    text = run_gort("report", str(trace)).stdout
    assert re.search(r"map created at \+[\d.]+ m?s by goroutine \d+ \(\S+\) in main\.runShared main\.go:\d+", text), text


@pytest.mark.primary_only
def test_race_detector_agrees(toolchain):
    exe = racecmp.build_race(toolchain, "mapchurn")
    for mode, racy in (("heap", False), ("stack", False), ("shared", True)):
        run = racecmp.run_race(exe, mode)
        assert bool(run.races) == racy, (mode, run.stderr[-3000:])
        if racy:
            assert run.pairs == {racecmp.pair("main.writeShared", "main.writeShared")}, run.stderr[-3000:]


def prometheus_test_binary(tc) -> Path:
    """client_golang's prometheus package test binary (`go test -c`), built once per Go
    version into the cache; the module comes from the Go module proxy."""
    out_dir = CACHE / "modules" / tc.version
    out = out_dir / f"prometheus-{PROM_VERSION}.test"
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "prom-build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    (work / "go.mod").write_text("module gort.example/promtest\n\ngo 1.26\n")
    env = tc.env(GOFLAGS="-mod=mod", GOTOOLCHAIN="local")

    def go(*args, cwd=work):
        r = subprocess.run([str(tc.go), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            (missing if not IN_CI else pytest.fail)(
                f"go {' '.join(args)} failed (the Go module proxy must be reachable):\n{r.stderr[-2000:]}")
        return r.stdout.strip()

    go("get", f"{PROM_MODULE}@{PROM_VERSION}")
    src = Path(go("list", "-m", "-f", "{{.Dir}}", PROM_MODULE))
    tmp = out.with_suffix(".tmp")
    go("test", "-c", "-o", str(tmp), ".", cwd=src / "prometheus")
    tmp.rename(out)
    shutil.rmtree(work, ignore_errors=True)
    return out


@pytest.mark.newest_only
def test_prometheus_client_golang_no_findings(toolchain, tmp_path):
    exe = private_copy(prometheus_test_binary(toolchain), toolchain.version)
    trace = tmp_path / "prom.trace"
    r = subprocess.run([str(GORT), "record", "-q", "--sync", "--backend", "inproc", "--ring-pages", "16384",
                        "-o", str(trace), "--", str(exe), "-test.run", PROM_TESTS, "-test.count=1"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    rep = report(trace)
    assert rep["findings"] == [], brief(rep)
    lt = rep["stats"]["map_lifetimes"]
    assert lt["creations"] > 10000 and lt["reused_addresses"] > 1000, brief(rep)
