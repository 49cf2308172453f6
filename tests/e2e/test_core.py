"""The read-only plugin commands on a core file: a real "concurrent map writes" crash
(GOTRACEBACK=crash, which aborts and leaves a core), opened with `lldb BIN -c core`."""
import os
import re
import resource
import subprocess
from pathlib import Path

import pytest

from conftest import IN_CI, build_sample
from test_plugin import command_output, lldb_batch


def need_cores_in_cwd():
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern:
        msg = f"core_pattern is {pattern!r}: cores do not land in the working directory"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


def crash_with_core(exe: Path, workdir: Path):
    need_cores_in_cwd()

    def limits():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    env = dict(os.environ, GOTRACEBACK="crash")
    for attempt in range(5):  # the runtime notices the race by luck; it nearly always does
        for old in workdir.glob("core*"):
            old.unlink()
        r = subprocess.run([str(exe)], cwd=workdir, env=env, capture_output=True, text=True,
                           preexec_fn=limits, timeout=120)
        cores = list(workdir.glob("core*"))
        if r.returncode != 0 and "concurrent map writes" in r.stderr and cores:
            ids = dict(re.findall(r"(writer[AB]) goroutine (\d+)", r.stdout))
            return cores[0], {k: int(v) for k, v in ids.items()}, r.stderr
    pytest.fail(f"no concurrent-map-writes core after 5 runs: rc={r.returncode} stderr={r.stderr[-500:]}")


def test_goroutines_and_bt_on_core(toolchain, tmp_path):
    exe = build_sample(toolchain, "concurrent_writes")
    core, ids, stderr = crash_with_core(exe, tmp_path)
    assert set(ids) == {"writerA", "writerB"}, ids
    # "goroutine 18 gp=0x.. m=3 mp=0x.. [running]:" (1.22+ with GOTRACEBACK=crash) or
    # "goroutine 18 [running]:" (1.21): the first one after "fatal error" threw.
    thrower = int(re.search(r"goroutine (\d+)(?: gp=\S+ m=\S+ mp=\S+)? \[running\]", stderr).group(1))
    r = lldb_batch(None, f"target create {exe} --core {core}", "gort goroutines",
                   f"gort bt {ids['writerA']}", f"gort bt {ids['writerB']}")
    assert r.returncode == 0, r.stdout + r.stderr
    listing = command_output(r.stdout, "gort goroutines")
    rows = {int(m.group(1)): line for line in listing if (m := re.match(r"^[* ]\s+(\d+)\s", line))}
    assert ids["writerA"] in rows and ids["writerB"] in rows, listing
    assert "running" in rows[thrower], rows[thrower]
    for name, goid in ids.items():
        bt = command_output(r.stdout, f"gort bt {goid}")
        funcs = [m.group(1) for line in bt if (m := re.match(r"#\d+\s+0x[0-9a-f]+ (\S+) at ", line))]
        assert f"main.{name}" in funcs, bt
        assert funcs[-1] == "runtime.goexit", bt
        if goid == thrower:
            # The thrower is inside the map write that noticed the race.
            assert any(f.startswith("runtime.mapassign") for f in funcs), bt
            assert funcs.index(f"main.{name}") > next(i for i, f in enumerate(funcs) if f.startswith("runtime.mapassign"))
