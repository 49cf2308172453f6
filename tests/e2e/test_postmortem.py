"""gort postmortem BIN CORE and `gort crash` in LLDB on real cores: samples/concurrent_writes
(two goroutines writing one map until the runtime throws "concurrent map writes") run
under GOTRACEBACK=crash with cores enabled, 20 times per Go version; gort must name both
writer functions from each core (at least 19 of 20). Bad inputs: one line, exit 2."""
import json
import os
import re
import resource
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD_DIR, build_sample, run_gort
from test_core import need_cores_in_cwd
from test_plugin import command_output, lldb_batch

RUNS = 20
NEEDED = 19



def crash_once(exe: Path, workdir: Path):
    """Runs EXE once under GOTRACEBACK=crash; (core path or None, {writerA: goid, ...}, stderr)."""
    for old in workdir.glob("core*"):
        old.unlink()

    def limits():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    env = dict(os.environ, GOTRACEBACK="crash")
    r = subprocess.run([str(exe)], cwd=workdir, env=env, capture_output=True, text=True,
                       preexec_fn=limits, timeout=120)
    cores = sorted(workdir.glob("core*"))
    ids = {k: int(v) for k, v in re.findall(r"(writer[AB]) goroutine (\d+)", r.stdout)}
    if r.returncode == 0 or "concurrent map writes" not in r.stderr or not cores:
        return None, ids, r.stderr
    return cores[0], ids, r.stderr


def writers_named(verdict: dict, ids: dict):
    """Both writer functions, each on the goroutine the program says runs it."""
    found = {}
    for w in verdict["writers"]:
        for f in w["stack"]:
            if f["function"] in ("main.writerA", "main.writerB"):
                found[f["function"][5:]] = w["goroutine"]
                break
    return found == ids and len(ids) == 2, found


@pytest.mark.exclusive  # a rate (N of 20 crashes): timing-sensitive, run alone
def test_postmortem_names_both_writers(toolchain, tmp_path):
    need_cores_in_cwd()
    exe = build_sample(toolchain, "concurrent_writes")
    ok, failures, runs, guessed = 0, [], 0, 0
    for i in range(RUNS):
        core, ids, stderr = crash_once(exe, tmp_path)
        if core is None:
            failures.append(f"run {i}: no concurrent-map-writes core: {stderr[-300:]}")
            continue
        runs += 1
        r = run_gort("postmortem", exe, core, "--json")
        core.unlink()
        if r.returncode != 0:
            failures.append(f"run {i}: exit {r.returncode}: {r.stderr}")
            continue
        v = json.loads(r.stdout)
        good, found = writers_named(v, ids)
        if not good:
            failures.append(f"run {i}: ids {ids}, found {found}: {json.dumps(v)[:1500]}")
            continue
        assert v["fatal"] == "concurrent map writes", v
        assert v["map"] and v["writers"][0]["role"] == "threw", v
        inside = [w for w in v["writers"] if w.get("function")]
        assert all(w["function"].startswith("runtime.map") and w["map"] == v["map"] for w in inside), v
        # Both inside a map write: complete. Else the other one is a named guess (a note says so).
        assert v["complete"] is (len(inside) >= 2), v
        guessed += len(inside) < 2
        ok += 1
    print(f"\n{toolchain.label}: gort postmortem named both writers in {ok}/{RUNS} cores"
          f" ({guessed} with the other writer between two map writes)")
    for f in failures:
        print(f"  {f}")
    assert ok >= NEEDED, f"{ok}/{RUNS} ({runs} cores):\n" + "\n".join(failures)


def test_postmortem_text_and_gort_crash_agree(toolchain, tmp_path):
    need_cores_in_cwd()
    exe = build_sample(toolchain, "concurrent_writes")
    for _ in range(5):
        core, ids, _ = crash_once(exe, tmp_path)
        if core:
            break
    assert core, "no concurrent-map-writes core in 5 runs"
    assert set(ids) == {"writerA", "writerB"}, f"the program did not print both writers' ids: {ids}"
    r = run_gort("postmortem", exe, core)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("fatal error: concurrent map writes\n"), r.stdout
    for name, goid in ids.items():
        assert re.search(rf"^goroutine {goid} \[", r.stdout, re.M), r.stdout
        assert f"main.{name}\n" in r.stdout, r.stdout
    cli = json.loads(run_gort("postmortem", exe, core, "--json", check=True).stdout)

    lr = lldb_batch(None, f"target create {exe} --core {core}", "gort crash --json", "gort crash")
    assert lr.returncode == 0, lr.stdout + lr.stderr
    in_lldb = json.loads("\n".join(command_output(lr.stdout, "gort crash --json")))
    # "function" and "map": only for a writer inside a map write (the other one may be
    # between two writes when the core is taken: a named guess, docs/postmortem.md)
    key = lambda v: [(w["goroutine"], w["role"], w.get("function"), w.get("map"),
                      [(f["function"], f.get("line")) for f in w["stack"]]) for w in v["writers"]]
    assert key(in_lldb) == key(cli), (in_lldb, cli)
    assert in_lldb["map"] == cli["map"] and in_lldb["fatal"] == cli["fatal"]
    text = "\n".join(command_output(lr.stdout, "gort crash"))
    assert text.startswith("fatal error: concurrent map writes"), text
    for name in ids:
        assert f"main.{name}" in text, text

    # The batch script: gort crash, goroutines, and bt of the writers.
    script = Path(__file__).resolve().parents[2] / "scripts" / "postmortem.lldb"
    env = dict(os.environ, GORT_PLUGIN=str(BUILD_DIR.resolve() / "lib" / "libgort-lldb.so"))
    sr = subprocess.run([str(Path(__file__).resolve().parents[2] / "scripts" / "postmortem"), str(exe), str(core)],
                        capture_output=True, text=True, timeout=300, env=env)
    assert sr.returncode == 0, sr.stdout + sr.stderr
    assert script.exists()
    assert "fatal error: concurrent map writes" in sr.stdout, sr.stdout
    for name, goid in ids.items():
        assert re.search(rf"goroutine {goid} \[.*\]:\n(?:#.*\n)*#\d+\s+0x[0-9a-f]+ main\.{name} at ", sr.stdout), sr.stdout
    core.unlink()


def test_postmortem_bad_input(toolchain, tmp_path):
    need_cores_in_cwd()
    exe = build_sample(toolchain, "concurrent_writes")
    other = build_sample(toolchain, "mapwrites")
    for _ in range(5):
        core, _, _ = crash_once(exe, tmp_path)
        if core:
            break
    assert core, "no concurrent-map-writes core in 5 runs"

    def one_line_exit2(*args, want):
        r = run_gort("postmortem", *args)
        assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert lines and lines[0].startswith("gort postmortem"), r.stderr
        assert re.search(want, lines[0]), r.stderr
        assert r.stdout == ""

    one_line_exit2(exe, tmp_path / "nope", want=r"cannot open the core file: No such file")
    one_line_exit2(tmp_path / "nobin", core, want=r"nobin")
    one_line_exit2(exe, exe, want=r"not a core file \(ELF type EXEC")
    one_line_exit2(exe, "/etc/hostname", want=r"not an ELF core file")
    one_line_exit2(other, core, want=r"is not a core of .*mapwrites")
    one_line_exit2(exe, tmp_path, want=r"not a regular file")
    data = core.read_bytes()
    for n in (40, 2000, len(data) // 2, len(data) - 1):
        cut = tmp_path / f"cut{n}"
        cut.write_bytes(data[:n])
        one_line_exit2(exe, cut, want=r"truncated core|not an ELF core")
        cut.unlink()
    core.unlink()
    r = run_gort("postmortem", exe)
    assert r.returncode == 2 and "missing CORE" in r.stderr, r.stderr
    r = run_gort("postmortem", exe, "x", "--bogus")
    assert r.returncode == 2 and "unknown option" in r.stderr, r.stderr


@pytest.mark.parametrize("variant", ["pie", "stripped"])
def test_postmortem_pie_and_stripped(toolchain, variant, tmp_path):
    """PIE: the load slide from the core's AT_ENTRY; stripped: allgs decoded from code."""
    need_cores_in_cwd()
    exe = build_sample(toolchain, "concurrent_writes", variant)
    ok = 0
    for _ in range(3):
        core, ids, _ = crash_once(exe, tmp_path)
        if core is None:
            continue
        r = run_gort("postmortem", exe, core, "--json")
        core.unlink()
        assert r.returncode == 0, r.stderr
        ok += writers_named(json.loads(r.stdout), ids)[0]
    assert ok >= 2, f"{variant}: both writers named in {ok}/3 cores"
