"""The GDB extension (scripts/gort-gdb.py over libgort-gdb.so) against the LLDB plugin.

Each scenario of the LLDB golden tests (tests/golden/*.lldb) that has a GDB equivalent is
run under both `lldb -b` and `gdb -batch` on the same binary: the setup is written in each
debugger's words (stops at the same exact addresses), the gort commands are the same.
Each gort command's output is cut out between markers and normalised (thread ids, heap
addresses, the debugger's own command hints), then both front ends must print the same.
Hit lines printed while the program runs (`gort: goroutine ...`) are compared too.

Also: GDB's `gort crash` on a real "concurrent map writes" core against the LLDB
plugin's, Go's runtime-gdb.py loaded alongside, and the detach rounds (conftest.rounds:
2 of each kind on the primary versions, 1 on the others, 13 under `scripts/test --soak`):
attach, arm hardware and software map breakpoints and a map watchpoint, stop at a hit,
detach; the program must run on untraced and finish with its exact checksum.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from conftest import BUILD_DIR, SOURCE_DIR, build_sample, go_nm, missing, rounds, run_rounds
from test_core import crash_with_core
from test_golden import mapdump_types
import test_plugin
from test_plugin import PLUGIN

sys.path.insert(0, str(SOURCE_DIR / "tests" / "golden"))
from normalize import normalize  # noqa: E402

GDB_SCRIPT = SOURCE_DIR / "scripts" / "gort-gdb.py"
GDB_LIB = BUILD_DIR / "lib" / "libgort-gdb.so"
MARK = "@@gort@@"
# GDB's own line for each breakpoint or watchpoint created (gort's line follows it)
# LLDB's asynchronous note, printed once, wherever its event thread gets to it
LLDB_NO_GO = 'has no plugin for the language "go"'
# and GDB 13's complaints about Linux 6's larger xsave notes when it reads a core's
# threads (which of the two it prints depends on the CPU's xsave size)
GDB_MENTION = re.compile(r"^((Breakpoint|Hardware assisted breakpoint|Hardware watchpoint|Watchpoint) \d+[: ]"
                         r"|warning: Unexpected size of section `\.reg-xstate/"
                         r"|warning: Section `\.reg-xstate/\d+' in core file too small)")


def tools():
    gdb = shutil.which("gdb")
    lldb = shutil.which("lldb-19") or shutil.which("lldb")
    if not gdb:
        missing("gdb")
    if not lldb:
        missing("lldb-19")
    if not GDB_LIB.exists():
        missing(f"{GDB_LIB} (build with scripts/build)")
    if not PLUGIN.exists():
        missing(f"{PLUGIN} (build with scripts/build)")
    return gdb, lldb


def run_lldb(lldb, lines, cwd, env):
    script = Path(cwd) / "s.lldb"
    script.write_text("\n".join(lines) + "\n")
    # test_plugin.run_lldb: once more on LLDB 19's own exit flakes (documented there)
    r = test_plugin.run_lldb([lldb, "--no-lldbinit", "-b", "-o", f"command source -e false -s 0 {script}"],
                             timeout=300, cwd=cwd, env=env, stderr=subprocess.STDOUT)
    return r.stdout


def run_gdb(gdb, lines, cwd, env, extra=()):
    args = [gdb, "-nx", "-q", "-batch", *extra]
    for line in lines:
        args += ["-ex", line]
    r = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=300)
    return r.stdout


def with_markers(cmds, flavour):
    """Each gort command between two marker lines, in the debugger's echo syntax; a
    command written `~gort ...` runs unmarked (its output is the debugger's business)."""
    out = []
    for c in cmds:
        if c.startswith("~"):
            out.append(c[1:])
        elif c.startswith("gort "):
            if flavour == "lldb":
                out += [f"script print('{MARK} {c}')", c, f"script print('{MARK}')"]
            else:
                out += [f"echo {MARK} {c}\\n", c, f"echo {MARK}\\n"]
        else:
            out.append(c)
    return out


def sections(text):
    """{'gort CMD #i': normalised output} and the hit lines, in order."""
    secs, hits = {}, []
    cur, buf, n = None, [], 0
    for line in text.splitlines():
        if line.startswith(MARK):
            if cur is not None:
                secs[f"{n:02d} {cur}"] = buf
                n += 1
            rest = line[len(MARK):].strip()
            cur, buf = (rest or None), []
            continue
        if line.startswith("gort: goroutine "):
            hits.append(line)
        if cur is not None:
            # LLDB's command echo and error prefix are LLDB's, not gort's
            if line.startswith("(lldb) ") or GDB_MENTION.match(line) or LLDB_NO_GO in line:
                continue
            buf.append(re.sub(r"^error: ", "", line))
    return secs, hits


def normalise(lines, dirs):
    """The golden tests' normalisation (tests/golden/normalize.py: thread and goroutine ids,
    addresses, Go versions and GOROOT lines), and each debugger's own commands in hints."""
    text = normalize("\n".join(lines) + "\n", dirs)
    text = re.sub(r"`[^`]*`", "`CMD`", text)
    text = text.replace(", stop-hook removed", "")
    text = re.sub(r"\b(create|load) one first", "create one first", text)  # "target create" / "file"  # LLDB reports its stop-hook (GDB needs none)
    text = re.sub(r"^gort: goroutine \d+ ", "gort: goroutine G ", text, flags=re.M)  # hit lines: GC workers' goids vary
    text = re.sub(r"in \d+\.\d+ s \([^)]*\)", "in T (RATE)", text)
    return text.splitlines()


def compare(lldb_out, gdb_out, what, dirs):
    ls, lh = sections(lldb_out)
    gs, gh = sections(gdb_out)
    assert list(ls) == list(gs), f"{what}: different commands ran\nLLDB:\n{lldb_out}\nGDB:\n{gdb_out}"
    for k in ls:
        a, b = normalise(ls[k], dirs), normalise(gs[k], dirs)
        assert a == b, f"{what}: `{k[3:]}` differs\n--- LLDB\n" + "\n".join(a) + "\n--- GDB\n" + "\n".join(b)
    assert normalise(lh, dirs) == normalise(gh, dirs), f"{what}: hit lines differ\nLLDB: {lh}\nGDB: {gh}"
    return ls


def _dirs(tmp_path):
    return {"$TMP": str(tmp_path), "$BUILD": str(BUILD_DIR), "$SRC": str(SOURCE_DIR)}


def _env():
    # GORT_GDB_LIB: the library of the build under test, never one gort-gdb.py would find
    # beside the source tree (../build/lib) when GORT_BUILD_DIR points elsewhere.
    return dict(os.environ, GODEBUG="asyncpreemptoff=1", GORT_GDB_LIB=str(GDB_LIB))


def setups(exe, nm, variant, types):
    """Per scenario: (LLDB setup, GDB setup, gort commands, after)."""
    stop_here = nm.get("main.stopHere", 0)
    fast64 = nm.get("runtime.mapassign_fast64", 0)

    def gbreak(sym, addr):  # a stripped binary has no symbols for GDB (it is not a PIE here)
        return f"break *{addr:#x}" if variant == "stripped" else f"break *'{sym}'"

    return {
        # tests/golden/goroutines-bt.lldb
        # Both stop at a function's exact entry: LLDB by module-relative file address, GDB by
        # `*'symbol'`; both follow a PIE's load address.
        "goroutines-bt": (
            [f"target create {exe}", f"breakpoint set -s {exe.name} -a {stop_here:#x}", "process launch -o out.txt"],
            [f"file {exe}", gbreak("main.stopHere", stop_here), "run > out.txt"],
            ["gort goroutines", "gort bt", "gort goroutines --json", "gort bt --json", "gort goroutines --all",
             "gort bt 1", "gort ptr $rsp", "gort ptr $rsp --json"]),
        # tests/golden/map-mapassign.lldb
        "map-mapassign": (
            [f"target create {exe}", f"breakpoint set -s {exe.name} -a {fast64:#x}", "process launch -o out.txt"],
            [f"file {exe}", gbreak("runtime.mapassign_fast64", fast64), "run > out.txt"],
            ["gort map", "gort map $rbx --type $rax --limit 5", "gort map --json", "gort map $rbx",
             "gort map $rbx --key-size 8 --elem-size 8", "gort ptr $rbx", "gort bt"]),
        # tests/golden/map-stophere.lldb: samples/mapdump at main.stopHere, RAX = m1
        "map-stophere": (
            [f"target create {exe}", f"breakpoint set -s {exe.name} -a {stop_here:#x}", "process launch -o out.txt"],
            [f"file {exe}", gbreak("main.stopHere", stop_here), "run > out.txt"],
            [f"gort map $rax --type {types.get('m1_type')}", f"gort map $rax --type {types.get('m1_type')} --json",
             "gort map $rax", "gort map $rax --key-size 16 --elem-size 8"]),
        # tests/golden/errors-no-target.lldb
        "errors-no-target": ([], [], ["gort info", "gort goroutines", "gort bt", "gort map", "gort map 0x10",
                                      "gort break maps", "gort heap scan"]),
        # tests/golden/errors-non-go.lldb
        "errors-non-go": (["target create /usr/bin/true"], ["file /usr/bin/true"],
                          ["gort info", "gort goroutines", "gort bt", "gort map 0x10", "gort break maps"]),
        # tests/golden/break-maps-hw-stop.lldb: the hit line (placing differs: LLDB's perf
        # breakpoint waits for the process; GDB's hbreak needs one, hence `starti`)
        "break-maps-hw-stop": (
            [f"target create {exe}", "~gort break maps --hw --func runtime.mapassign_fast64",
             "process launch -o out.txt"],
            [f"file {exe}", "starti > out.txt", "~gort break maps --hw --func runtime.mapassign_fast64", "continue"],
            ["gort map", "~gort break clear"]),  # LLDB closes a perf set, GDB deletes an hbreak
        # tests/golden/errors-no-process.lldb
        "errors-no-process": (
            [f"target create {exe}"], [f"file {exe}"],
            ["gort goroutines", "gort bt", "gort map 0x10", "gort heap scan", "gort ptr 0x10", "gort crash"]),
        # tests/golden/errors-bad-args.lldb
        "errors-bad-args": (
            [f"target create {exe}", f"breakpoint set -s {exe.name} -a {stop_here:#x}", "process launch -o out.txt"],
            [f"file {exe}", gbreak("main.stopHere", stop_here), "run > out.txt"],
            ["gort goroutines --bogus", "gort bt notanumber", "gort bt 99999", "gort map --limit",
             "gort map 1 2", "gort map --key-size 8", "gort ptr", "gort ptr --bogus", "gort heap scan --bogus",
             "gort crash --bogus", "gort map 0x10", "gort break maps --bogus", "gort break maps --func main.main",
             "gort watch map", "gort break wb --bogus"]),
        # tests/golden/load-info-help.lldb (gort info)
        "info": ([f"target create {exe}"], [f"file {exe}"], ["gort info"]),
        # tests/golden/break-maps-stop.lldb: the first hit, then clear and run to the end
        "break-maps-stop": (
            [f"target create {exe}", "gort break maps --sw --func runtime.mapassign_fast64",
             "process launch -o out.txt"],
            [f"file {exe}", "gort break maps --sw --func runtime.mapassign_fast64", "run > out.txt"],
            ["gort map", "gort break clear"]),
        # tests/golden/watch-map-stop.lldb: at the first fast64 write, a watchpoint on that
        # map's writing flag; `continue` stops where the same call sets it
        "watch-map-stop": (
            [f"target create {exe}", "gort break maps --sw --func runtime.mapassign_fast64",
             "process launch -o out.txt"],
            [f"file {exe}", "gort break maps --sw --func runtime.mapassign_fast64", "run > out.txt"],
            ["gort break clear", "gort watch map $rbx", "continue", "gort break clear"]),
        # test_break_wb.py's stop mode: the first write-barrier hit, then clear
        "break-wb-stop": (
            [f"target create {exe}", "gort break wb --sw", "process launch -o out.txt"],
            [f"file {exe}", "gort break wb --sw", "run > out.txt"],
            ["gort break clear"]),
    }


SCENARIOS = ["goroutines-bt", "map-mapassign", "map-stophere", "errors-no-process", "errors-no-target",
             "errors-non-go", "errors-bad-args", "info", "break-maps-stop", "break-maps-hw-stop", "watch-map-stop",
             "break-wb-stop"]
SAMPLE = {"goroutines-bt": "goroutines", "errors-bad-args": "goroutines", "break-wb-stop": "wbstores",
          "map-stophere": "mapdump"}


# mapdump prints its type descriptors' link-time addresses: map-stophere needs a
# fixed-address build, so it has no PIE case.
CASES = [(s, v) for v in ("normal", "pie", "stripped") for s in SCENARIOS if (s, v) != ("map-stophere", "pie")]


@pytest.mark.parametrize("scenario,variant", CASES)
def test_same_output_as_lldb(toolchain, scenario, variant, tmp_path):
    gdb, lldb = tools()
    sample = SAMPLE.get(scenario, "mapwrites")
    exe = tmp_path / sample
    shutil.copy2(build_sample(toolchain, sample, variant), exe)
    nm = go_nm(toolchain, build_sample(toolchain, sample, "normal" if variant == "stripped" else variant))
    types = mapdump_types(exe) if sample == "mapdump" else {}
    lsetup, gsetup, cmds = setups(exe, nm, variant, types)[scenario]
    lo = run_lldb(lldb, [f"plugin load {PLUGIN}"] + with_markers(lsetup + cmds, "lldb"), tmp_path, _env())
    go = run_gdb(gdb, [f"source {GDB_SCRIPT}"] + with_markers(gsetup + cmds, "gdb"), tmp_path, _env())
    secs = compare(lo, go, f"{scenario} {toolchain.version} {variant}", _dirs(tmp_path))
    assert len(secs) == sum(c.startswith("gort ") for c in gsetup + cmds), f"not every gort command ran:\n{go}"
    if scenario == "break-maps-hw-stop":
        assert "1 hardware (GDB hbreak, stops), 0 software; each hit stops" in go, go
        assert "gort: 0 perf probe set(s) closed, 1 breakpoint(s) and 0 watchpoint(s) deleted" in go, go
    # The scenarios check something real: a stop where one was set up, no stray Python error.
    assert "Python Exception" not in go and "Traceback" not in go, go
    if scenario == "goroutines-bt":
        first = next(v for k, v in secs.items() if k.endswith("gort goroutines"))
        assert any(l.startswith("*") and "main.stopHere" in l for l in first), first
    if scenario == "break-maps-stop":
        assert re.search(r"gort: goroutine 1 thread \d+ assign map 0x[0-9a-f]+ key 0 in runtime.mapassign_fast64 "
                         r"from main.put64", go), go


def _log_shape(path: Path):
    """The --log lines of the sample's own writes (callers in package main: the runtime's
    init writes depend on map iteration order), in the order they happened, without what
    varies run to run: time, thread, and map addresses."""
    out = []
    for line in path.read_text().splitlines():
        j = json.loads(line)
        if not ((j.get("caller") or {}).get("function") or "").startswith("main."):
            continue
        out.append(j)
    out.sort(key=lambda j: j["time_ns"])
    for j in out:
        j.pop("time_ns", None)
        j.pop("thread", None)
        j.pop("map", None)
    return [json.dumps(j, sort_keys=True) for j in out]


def _dedupe(lines):
    return [l for i, l in enumerate(lines) if i == 0 or l != lines[i - 1]]


@pytest.mark.parametrize("mode", ["--sw", "--hw"])
def test_continue_log_same_as_lldb(toolchain, mode, tmp_path):
    """`gort break maps --continue --log`: the same JSON lines from both debuggers (software
    breakpoints that do not stop; or perf hardware breakpoints sampling, as in LLDB).

    Both stop at main.clearRange (the sample's last call, after every probed write) and run
    `gort break clear` there, which drains every sample while the program's memory is
    still there: a hit drained after the program exited cannot read its string key or
    goroutine (its log line then says so, "undecoded"), and the debuggers drain at
    different moments. (LLDB 19 did not stop at a breakpoint on runtime.exit.abi0 here.)"""
    gdb, lldb = tools()
    exe = tmp_path / "mapwrites"
    shutil.copy2(build_sample(toolchain, "mapwrites", "normal"), exe)
    arm = f"gort break maps {mode} --continue --log {{log}} --func runtime.mapassign_fast64 --func runtime.mapassign_faststr"
    nm = go_nm(toolchain, exe)
    last = nm["main.clearRange"]
    lo = run_lldb(lldb, [f"plugin load {PLUGIN}", f"target create {exe}", arm.format(log=tmp_path / "l.log"),
                         f"breakpoint set -s {exe.name} -a {last:#x}", "process launch -o out-l.txt", "gort break clear",
                         "process continue"], tmp_path, _env())
    go = run_gdb(gdb, [f"source {GDB_SCRIPT}", f"file {exe}", arm.format(log=tmp_path / "g.log"),
                       f"break *{last:#x}", "run > out-g.txt", "gort break clear", "continue"], tmp_path, _env())
    for out in (lo, go):
        assert "hits are logged, the program keeps running" in out, out
    assert "Python Exception" not in go, go
    assert re.search(r"stop reason = breakpoint \d+\.\d+", lo) and "main.clearRange" in lo, lo
    assert re.search(r"Breakpoint \d+, main\.clearRange", go), go
    # and then ran to its end
    assert "exited with status = 0" in lo and "exited normally" in go, (lo, go)
    if mode == "--hw":
        assert "2 hardware (sampling, non-stop), 0 software" in go, go
    # nothing lost by the kernel (`gort break clear` says "N samples lost" otherwise)
    assert "samples lost" not in lo + go, (lo, go)
    assert (tmp_path / "out-l.txt").read_text() == (tmp_path / "out-g.txt").read_text()
    want, got = _log_shape(tmp_path / "l.log"), _log_shape(tmp_path / "g.log")
    assert len(want) >= 200, f"LLDB logged {len(want)} hits:\n{lo}"
    # Every hit decoded: the program was stopped, not gone, when the last ones were read.
    assert not any("undecoded" in l for l in want + got), [l for l in want + got if "undecoded" in l][:5]
    # A breakpoint at a function's entry is hit again when the call re-enters it after
    # morestack (a stack growth, or sysmon's preemption request of a goroutine that a
    # slow debugger kept past 10 ms): the same event twice in a row, more often under the
    # slower debugger. Compare the distinct events in order (perf samples in the order
    # they were taken: the rings are drained CPU by CPU).
    want, got = _dedupe(want), _dedupe(got)
    assert got == want, f"logs differ: LLDB {len(want)} lines, GDB {len(got)}\n" + "\n".join(
        f"{a}\n{b}" for a, b in zip(want, got) if a != b)[:3000]


def test_greeting_sigurg_and_runtime_gdb_coexist(toolchain, tmp_path):
    """Loaded after Go's runtime-gdb.py (auto-loaded from the binary's GOROOT): both command sets work."""
    gdb, _ = tools()
    exe = tmp_path / "goroutines"
    shutil.copy2(build_sample(toolchain, "goroutines", "normal"), exe)
    nm = go_nm(toolchain, exe)
    out = run_gdb(gdb, [f"file {exe}", f"source {GDB_SCRIPT}", "info signals SIGURG", f"break *{nm['main.stopHere']:#x}",
                        "run > out.txt", "info goroutines", "gort goroutines", "help gort", "kill"],
                  tmp_path, _env(), extra=["-iex", "set auto-load safe-path /"])
    assert re.search(rf"gort: {re.escape(str(exe))} {toolchain.version} \((swiss|hmap) maps, layouts from \w+\); "
                     r"SIGURG \(Go preemption\) passed silently", out), out
    assert re.search(r"SIGURG\s+No\s+No\s+Yes", out), out          # nostop noprint pass
    assert "Loading Go Runtime support." in out, out                # runtime-gdb.py ran
    assert re.search(r"^\* 1 running ", out, re.M), out   # its `info goroutines`
    assert re.search(r"^\*\s+1\s+running\s+\d+\s+main\.stopHere at ", out, re.M), out  # gort's
    for sub in ("gort goroutines", "gort break maps", "gort watch map", "gort record start", "gort crash"):
        assert sub in out, f"help gort lacks {sub}:\n{out}"


def test_crash_on_core_same_as_lldb(toolchain, tmp_path):
    gdb, lldb = tools()
    exe = tmp_path / "concurrent_writes"
    shutil.copy2(build_sample(toolchain, "concurrent_writes", "normal"), exe)
    core, ids, _ = crash_with_core(exe, tmp_path)
    cmds = ["gort crash", "gort crash --json", "gort goroutines", "gort heap scan"]
    lo = run_lldb(lldb, [f"plugin load {PLUGIN}", f"target create {exe} --core {core}"] + with_markers(cmds, "lldb"),
                  tmp_path, _env())
    go = run_gdb(gdb, [f"source {GDB_SCRIPT}", f"file {exe}", f"core-file {core}"] + with_markers(cmds, "gdb"),
                 tmp_path, _env())
    # The verdict names its evidence source ("LLDB" / "GDB"): the one expected difference.
    lo = lo.replace("LLDB", "DEBUGGER")
    go = go.replace("GDB", "DEBUGGER")
    secs = compare(lo, go, f"crash core {toolchain.version}", _dirs(tmp_path))
    text = next(v for k, v in secs.items() if k.endswith("gort crash"))
    joined = "\n".join(text)
    assert "concurrent map writes" in joined or "concurrent map" in joined, joined
    assert "main.writerA" in joined and "main.writerB" in joined, joined


@pytest.mark.parametrize("kind", ["hw", "sw", "watch", "armed"])
def test_detach_leaves_program_running(toolchain, kind, soak, tmp_path):
    """Attach, arm gort's probes, stop at a hit (or, `armed`, detach with every kind armed
    before resuming), detach: the program runs on untraced and finishes with its checksum,
    every round (2 rounds of each kind on the primary versions, 1 elsewhere, 13 under
    --soak)."""
    gdb, _ = tools()
    for i in range(rounds(toolchain, full=2, smoke=1, soak=13).of):
        s = soak()
        arm = {"hw": ["gort break maps --hw --func runtime.mapassign_fast64", "continue"],
               "sw": ["gort break maps --sw --func runtime.mapassign_faststr", "continue"],
               "watch": ["gort break maps --sw --func runtime.mapassign_fast64", "continue", "gort break clear",
                         "gort watch map $rbx", "continue"],
               "armed": ["gort break maps --hw --func runtime.mapassign_fast64",
                         "gort break maps --sw --func runtime.mapassign_faststr",
                         "gort break maps --continue --hw --func runtime.mapassign",
                         f"gort watch map {s.map}"]}[kind]
        out = run_gdb(gdb, [f"source {GDB_SCRIPT}", f"attach {s.pid}", *arm, "detach"], tmp_path, _env())
        assert "Python Exception" not in out, out
        if kind == "armed":
            assert "gort: before detaching: 1 perf probe set(s) closed, 2 breakpoint(s) and 1 watchpoint(s) " \
                "deleted" in out, out
        else:
            assert re.search(r"gort: goroutine \d+ thread \d+ (assign|write-begin|write-end) map", out), \
                f"round {i}: no hit reported\n{out}"
        assert re.search(r"\[Inferior 1 \(process \d+\) detached\]|Detaching from (program|process)", out), out
        s.finish(f"GDB round {i + 1}, {kind}")


def test_record_under_gdb_names_both_writers(toolchain, tmp_path):
    """`gort record start` in GDB (the plugin's recorder, perf backend) on a racy program:
    the trace's report names both writers; in-process probes are refused with the reason.
    Naming both depends on their writes meeting in time: test_record.CONCURRENT_ROUNDS'
    smoke rule (1 of 2)."""
    from test_record import CONCURRENT_ROUNDS, writers_named
    gdb, _ = tools()
    exe = tmp_path / "concurrent_writes"
    shutil.copy2(build_sample(toolchain, "concurrent_writes", "normal"), exe)

    def one(i):
        trace = tmp_path / f"gdb{i}.trace"
        out = run_gdb(gdb, [f"source {GDB_SCRIPT}", f"file {exe}", "gort record start", "starti > out.txt",
                            "gort record start --backend inproc", f"gort record start -o {trace}",
                            f"gort record start -o {trace}", "continue", "gort record stop"], tmp_path, _env())
        assert "gort record start: needs a live process" in out, out
        assert "gort record start: --backend inproc is not available under GDB" in out, out
        assert re.search(rf"gort: recording map writes of process \d+ to {re.escape(str(trace))}: \d+ sites", out), out
        assert f"gort record start: already recording to {trace}" in out, out
        assert re.search(r"gort: recorded \d+ events \(0 lost\) to .*; ended: target exited; next: gort report",
                         out), out
        assert "gort record stop: not recording" in out, out   # the exit ended it
        r = subprocess.run([str(BUILD_DIR / "bin" / "gort"), "report", str(trace)], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        rep = json.loads(subprocess.run([str(BUILD_DIR / "bin" / "gort"), "report", str(trace), "--json"],
                                        capture_output=True, text=True, timeout=300).stdout)
        # each on the goroutine the program printed for it (its output went to out.txt)
        prog = types.SimpleNamespace(stdout=(tmp_path / "out.txt").read_text())
        why = writers_named(prog, rep)
        if why is None:  # and the text report says the same
            assert "concurrent-map-write" in r.stdout, r.stdout
            assert "main.writerA" in r.stdout and "main.writerB" in r.stdout, r.stdout
        return why
    run_rounds(CONCURRENT_ROUNDS["smoke"], one, f"{toolchain.version} gort record start under GDB")


def test_gdb_killed_with_perf_probes_leaves_program_running(toolchain, soak, tmp_path):
    """`kill -9` of GDB while gort's --continue hardware breakpoints (perf, sampling) log
    hits: the kernel closes the perf fds and detaches; the program finishes correctly.
    (GDB's own break/hbreak stay in a program whose debugger is killed: docs/gdb.md.)"""
    gdb, _ = tools()
    for i in range(rounds(toolchain, full=2, smoke=1, soak=10).of):
        s = soak()
        log = tmp_path / f"k{i}.log"
        g = subprocess.Popen([gdb, "-nx", "-q", "-batch", "-ex", f"source {GDB_SCRIPT}", "-ex", f"attach {s.pid}",
                              "-ex", f"gort break maps --hw --continue --log {log} --func runtime.mapassign_fast64",
                              "-ex", "continue"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=_env())
        try:
            deadline = time.monotonic() + 30
            while not (log.exists() and log.stat().st_size > 0):
                assert time.monotonic() < deadline and g.poll() is None, "no hit logged before the kill"
                time.sleep(0.02)
            g.kill()
            g.wait()
        finally:
            if g.poll() is None:
                g.kill()
                g.wait()
        s.finish(f"kill -9 of GDB, round {i + 1}")
