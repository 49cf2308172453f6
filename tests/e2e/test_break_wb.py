"""`gort break wb` and `gort break clear` on samples/wbstores.

The sample stores one of four known pointers into one known heap slot (main.storeNode)
while another goroutine runs runtime.GC() in a loop, and prints the slot and the values.
Write barriers only run while the GC marks, so the sample keeps storing for 20 GC cycles.
Every logged hit whose caller is main.storeNode must name exactly that slot and one of
those values. Other hits (the runtime's own barriered stores) are only checked for shape."""
import json
import re
import subprocess

import pytest

from conftest import build_sample
from test_plugin import PLUGIN, lldb_batch, lldb_path, run_lldb

HIT = (r"^gort: goroutine \d+ thread \d+ write-barrier gcWriteBarrier[1-8] from \S+ at \S+:\d+"
       r"(: \*0x[0-9a-f]+ = (0x[0-9a-f]+|\?)(, \*0x[0-9a-f]+ = (0x[0-9a-f]+|\?))*| \(slot unknown: .*\))$")


def printed(stdout):
    slot = re.search(r"^slot (0x[0-9a-f]+)$", stdout, re.M)
    values = re.findall(r"^value \d (0x[0-9a-f]+)$", stdout, re.M)
    assert slot and len(values) == 4, stdout
    return int(slot.group(1), 16), {int(v, 16) for v in values}


def program_lines(stdout):
    return [l for l in stdout.splitlines() if l.startswith(("last id", "done"))]


def check_log(r, log):
    out = r.stdout + r.stderr
    assert "exited with status = 0" in out and "done" in r.stdout, out
    slot, values = printed(r.stdout)
    evs = [json.loads(l) for l in open(log)]
    for e in evs:
        assert set(e) >= {"goroutine", "thread", "op", "function", "caller", "writes", "time_ns"}, e
        assert e["op"] == "write-barrier" and re.fullmatch(r"runtime\.gcWriteBarrier[1-8]", e["function"]), e
    mine = [e for e in evs if e["caller"] and e["caller"]["function"] == "main.storeNode"]
    assert len(mine) >= 5, (len(evs), evs[:5])
    for e in mine:
        assert e["function"] == "runtime.gcWriteBarrier2", e
        assert e["caller"]["file"].endswith("wbstores/main.go"), e
        assert len(e["writes"]) == 1, e
        w = e["writes"][0]
        assert int(w["slot"], 16) == slot, (hex(slot), e)
        assert w["value"] is not None and int(w["value"], 16) in values, ([hex(v) for v in values], e)
    # The storer is main's goroutine, one goid for all its hits.
    assert len({e["goroutine"] for e in mine}) == 1 and mine[0]["goroutine"] > 0, mine[:3]
    return evs


@pytest.mark.parametrize("mode", ["--sw", "--hw"])
def test_continue_log_slot_and_value(toolchain, tmp_path, mode):
    exe = build_sample(toolchain, "wbstores")
    log = tmp_path / "wb.jsonl"
    r = lldb_batch(exe, f"gort break wb {mode} --continue --log {log}", "run", timeout=300)
    if mode == "--hw":
        assert "gort: hardware  write-barrier runtime.gcWriteBarrier2" in r.stdout, r.stdout
        # 4 debug registers: the other barriers the linker kept get software breakpoints.
        assert len(re.findall(r"^gort: hardware  write-barrier", r.stdout, re.M)) == 4, r.stdout
    else:
        assert "gort: software  write-barrier runtime.gcWriteBarrier2" in r.stdout, r.stdout
    assert "write barriers run only while the GC is marking" in r.stdout, r.stdout
    check_log(r, log)


def plain_output(exe):
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return program_lines(r.stdout)


def test_sw_stop_mode_prints_the_hit_then_clear(toolchain):
    exe = build_sample(toolchain, "wbstores")
    r = lldb_batch(exe, "gort break wb --sw", "run", "gort break clear", "continue")
    out = r.stdout + r.stderr
    assert len(re.findall(HIT, r.stdout, re.M)) == 1, out
    assert re.search(r"stop reason = breakpoint \d+\.1", out), out
    assert re.search(r"gort: 0 perf probe set\(s\) closed, \d+ breakpoint\(s\)", out), out
    assert "exited with status = 0" in out and "signal SIGTRAP" not in out, out
    assert program_lines(r.stdout) == plain_output(exe)


def test_hw_stop_mode_then_clear_runs_normally(toolchain):
    exe = build_sample(toolchain, "wbstores")
    # A SIGTRAP stop ends lldb -b's -o list; -k commands run after it.
    r = run_lldb([lldb_path(), "--no-lldbinit", "-b", "-o", f"plugin load {PLUGIN}", "-o", "gort break wb --hw",
                  "-o", "run", "-k", "gort break clear", "-k", "continue", str(exe)])
    out = r.stdout + r.stderr
    hits = re.findall(HIT, r.stdout, re.M)
    # Several threads can hit a barrier at once; each stopped thread is reported.
    assert 1 <= len(hits) <= 4, out
    assert "stop-hook removed" in out and "exited with status = 0" in out, out
    assert program_lines(r.stdout) == plain_output(exe)


def test_bad_arguments(toolchain):
    exe = build_sample(toolchain, "wbstores")
    r = lldb_batch(exe, "gort break wb --map 0x1")
    assert "error: gort break wb: unknown argument '--map'" in r.stdout + r.stderr, r.stdout + r.stderr
