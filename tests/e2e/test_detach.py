"""Never harm the target: attach to a running Go program, set gort's breakpoints and
watchpoints, leave (detach, or LLDB killed), and the program finishes with its correct
output and no stray SIGTRAP.

Each run here: start samples/mapsoak (tests/e2e/attach.py), attach with `lldb -b`, set
hardware (perf) and software breakpoints and a map watchpoint, leave, let it run on
(anything left behind would fire: it writes ~10M map entries a CPU-second), check that no
tracer is left (/proc/PID/status TracerPid), then end it and check its output.

Rounds per Go version: conftest.rounds() (the detach loop: 8 on the newest Go and 1.23, 4
on the others, 52 under `scripts/test --soak`; every round must pass).
"""
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from attach import interrupt_when_logged, kill_lldb, kill_lldb_mid_run, linger, lldb_args, run, sourced
from conftest import build_sample, rounds

HIT = re.compile(r"^gort: goroutine \d+ thread \d+ assign map 0x[0-9a-f]+ key \S+ in runtime.mapassign_faststr "
                 r"from main\.\(\*store\)\.put at \S+mapsoak/main.go:\d+$", re.M)


def set_everything(soak_, log, continue_sw=False):
    """Hardware (perf, sampling) on fast64, a perf watchpoint on the map, a software
    breakpoint on faststr (--continue too with CONTINUE_SW): 2 of the 4 debug registers,
    and LLDB's int3."""
    return [f"gort break maps --hw --continue --func runtime.mapassign_fast64 --log {log}",
            f"gort watch map {soak_.map} --continue",
            f"gort break maps --sw{' --continue' if continue_sw else ''} --func runtime.mapassign_faststr"]


LEFT = re.compile(r"^gort: before detaching: (\d+) perf probe set\(s\) closed, (\d+) breakpoint\(s\) and (\d+) "
                  r"watchpoint\(s\) deleted", re.M)


def after_continue(out):
    return out.split("process continue", 1)[1]


def stray(out):
    """STRAY: the probes of kinds 0 and 1 are sampling (--continue) ones, which never stop
    the program; but in these VMs a hardware breakpoint hit now and then arrives as a plain
    SIGTRAP (docs/record.md, "Hardware breakpoints in virtual machines"), and lldb-server
    stops there. The detach must then work as at any other stop."""
    return "stop reason = signal SIGTRAP" in after_continue(out)


def test_detach_loop(toolchain, soak, tmp_path):
    """Four kinds of round, in turn:
    0. stopped at the software breakpoint's first hit, the hardware probes live: detach;
    1. hardware probes only, interrupted once they logged a hit: detach (LLDB lost every
       interrupt while auto-continuing a --continue software breakpoint);
    2. everything set, the software breakpoint with --continue too, before resuming: detach;
    3. everything in stop mode (perf SIGTRAP, LLDB watchpoint, int3): detach at whichever
       fires first."""
    r = rounds(toolchain, full=8, smoke=4, soak=52)
    for i in range(r.of):
        s = soak()
        log = tmp_path / f"hits{i}.jsonl"
        kind = i % 4
        if kind == 0:
            # `continue` stops at the first faststr write (the sw breakpoint); detach there.
            out = run(lldb_args(s.pid, sourced(tmp_path, *set_everything(s, log), "process continue",
                                               "process detach", linger(s.pid))))
            # (or at a stray SIGTRAP: see STRAY)
            assert len(HIT.findall(out)) == 1 or stray(out), out
            m = LEFT.search(out)
            assert m and m.groups() == ("2", "1", "0"), out
        elif kind == 1:
            out = run(lldb_args(s.pid, sourced(tmp_path, *set_everything(s, log)[:2],
                                               interrupt_when_logged(log, '"function":"runtime.mapassign_fast64"'),
                                               "process continue", "process detach", linger(s.pid))))
            # the interrupt's SIGSTOP, or a stray SIGTRAP that came first: either way the
            # detach happens at a stop
            assert "stop reason = signal SIGSTOP" in after_continue(out) or stray(out), out
            # a hit logged before the interrupt; a stray SIGTRAP can come before any (the
            # hit that arrived as a plain signal is not in the log)
            assert stray(out) or '"function":"runtime.mapassign_fast64"' in log.read_text(), \
                f"round {i + 1}: no hardware hit logged\n{out}"
            m = LEFT.search(out)
            assert m and m.groups() == ("2", "0", "0"), out
        elif kind == 2:
            out = run(lldb_args(s.pid, *set_everything(s, log, continue_sw=True), "process detach", linger(s.pid)))
            m = LEFT.search(out)
            assert m and m.groups() == ("2", "1", "0"), out
        else:
            cmds = [c.replace(" --continue", "") for c in set_everything(s, log)]
            out = run(lldb_args(s.pid, sourced(tmp_path, *cmds, "process continue", "process detach", linger(s.pid))))
            assert "stop reason = " in after_continue(out), out
            m = LEFT.search(out)   # the stop-mode hardware set, the int3, the LLDB watchpoint
            assert m and m.groups() == ("1", "1", "1"), out
        assert "detached" in out and "error:" not in out, out
        assert "hardware  assign runtime.mapassign_fast64" in out, out
        s.finish(f"round {i + 1} of {r.of}, kind {kind}")


def test_clear_then_detach(toolchain, soak):
    """Stop-mode hardware breakpoints (perf sigtrap) and an LLDB watchpoint, removed with
    `gort break clear` before the detach: the way to leave that docs/plugin.md gives."""
    for i in range(rounds(toolchain, full=2, smoke=1, soak=5).of):
        s = soak()
        out = run(lldb_args(s.pid, "gort break maps --hw --func runtime.mapassign_fast64", f"gort watch map {s.map}",
                            "gort break clear", "process detach", linger(s.pid)))
        assert "1 perf probe set(s) closed, 0 breakpoint(s) and 1 watchpoint(s) deleted, stop-hook removed" in out, out
        s.finish(f"round {i + 1}")


def test_detach_with_stop_mode_probes(toolchain, soak, tmp_path):
    """Stop-mode hardware breakpoints (perf sigtrap) and an LLDB watchpoint, then a plain
    `process detach` (or its alias `detach`): gort's override of the command closes the
    perf fds and deletes the watchpoint (LLDB 19 would leave it in the debug registers)
    before LLDB detaches. Stopped at a hit, and while the program runs."""
    for i, how in enumerate(["process detach", "detach"]):
        s = soak()
        out = run(lldb_args(s.pid, sourced(tmp_path, "gort break maps --hw --func runtime.mapassign_fast64",
                                           f"gort watch map {s.map}", "process continue", how, linger(s.pid))))
        m = LEFT.search(out)
        assert m and m[1] == "1" and m[3] == "1", out
        assert "stop reason = " in after_continue(out), out
        s.finish(f"stop-mode probes, {how}")
    s = soak()
    # Asynchronous mode: `process continue` returns at once and the detach comes right
    # after it, while the program runs or just as its first hit stops it: either way the
    # probes are closed first and the program runs on.
    out = run(lldb_args(s.pid, "script lldb.debugger.SetAsync(True)",
                        "gort break maps --hw --func runtime.mapassign_fast64", "process continue",
                        "process detach", linger(s.pid)))
    assert LEFT.search(out), out
    s.finish("stop-mode probes, detach while running")


def test_user_watchpoint_deleted_on_detach(toolchain, soak):
    """LLDB 19 leaves even its own `watchpoint set` armed after a detach; with gort loaded
    the detach deletes it first and says so."""
    s = soak()
    # The map's writing flag, set and cleared on every write: swiss Map.writing (1.24+),
    # hmap.flags before (an independent oracle for the layout gort reads from DWARF).
    flag = int(s.map, 16) + (0x22 if toolchain.minor >= 24 else 8)
    watch = f"script print(lldb.target.WatchAddress({flag}, 1, False, True, lldb.SBError()))"
    out = run(lldb_args(s.pid, watch, "process detach", linger(s.pid)))
    assert "Watchpoint 1: addr = " in out, out
    assert "1 more watchpoint(s) deleted" in out, out
    s.finish("user watchpoint, detach")


def test_quit_with_stop_mode_probes(toolchain, soak):
    """The end of `lldb -b` (and `quit`) detaches from an attached program: the debugger's
    destroy callback closes the probes before that."""
    s = soak()
    out = run(lldb_args(s.pid, "gort break maps --hw --func runtime.mapassign_fast64", f"gort watch map {s.map}"))
    assert "hardware  assign runtime.mapassign_fast64" in out, out
    s.finish("stop-mode probes, end of lldb -b")


@pytest.mark.parametrize("also_server", [False, True], ids=["lldb", "lldb+server"])
def test_kill_lldb_with_hw_breakpoints(toolchain, soak, tmp_path, also_server):
    """Hardware only (perf fds in LLDB's process, sampling): the kernel closes them when
    LLDB dies."""
    for i in range(rounds(toolchain, full=2, smoke=1, soak=10).of):
        s = soak()
        log = tmp_path / f"h{i}.jsonl"
        kill_lldb_mid_run(s, log, [f"gort break maps --hw --continue --func runtime.mapassign_fast64 --log {log}",
                                   f"gort watch map {s.map} --continue"], also_server)
        s.finish(f"kill -9 round {i + 1}")


def stopped_at_sigtrap(soak_):
    """LLDB attached, a stop-mode hardware breakpoint armed, stopped at its first hit (a
    SIGTRAP that lldb-server holds, not yet given to the program)."""
    args = lldb_args(soak_.pid, "gort break maps --hw --func runtime.mapassign_fast64", "process continue",
                     after_crash=("script import time; time.sleep(60)",))
    lldb = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen, deadline = "", time.monotonic() + 30
    while "stop reason = signal SIGTRAP" not in seen:
        line = lldb.stdout.readline()
        assert line and time.monotonic() < deadline, seen
        seen += line
    return lldb


def test_kill_lldb_stopped_at_sigtrap_probe(toolchain, soak):
    """LLDB killed while the program is stopped at a stop-mode hardware hit (a SIGTRAP
    pending in lldb-server's hands): lldb-server loses its client, detaches (discarding the
    SIGTRAP), and the perf fds died with LLDB."""
    for i in range(rounds(toolchain, full=2, smoke=1, soak=10).of):
        s = soak()
        kill_lldb(stopped_at_sigtrap(s), False, s)
        s.finish(f"kill -9 at a sigtrap stop, round {i + 1}")


def died_of_sigtrap(rc, err):
    """A Go program's death by a SIGTRAP it did not raise itself: the runtime's own report
    ("SIGTRAP: trace trap", exit 2), or the signal itself when it came before the handler."""
    return rc == -signal.SIGTRAP or (rc == 2 and "SIGTRAP: trace trap" in err)


def test_kill_lldb_server_stopped_at_sigtrap_probe_kills_program(toolchain, soak):
    """Documents a harm no tool can prevent (docs/plugin.md): the same stop, but lldb-server
    itself is killed first, so it cannot detach, and the kernel restarts the thread with the
    SIGTRAP it stopped with (ptrace(2): a tracer's death ends a signal-delivery-stop with
    that signal). Any ptrace debugger stopped at a breakpoint (LLDB's own int3 alike) loses
    the program this way; nothing is left for gort to close. Asserted as it is: the program
    dies of exactly that SIGTRAP, and of nothing else; if a kernel ever spares it, this
    fails and docs/plugin.md must change."""
    s = soak()
    kill_lldb(stopped_at_sigtrap(s), True, s, server_first=True)
    rc = s.p.wait(timeout=60)
    err = s.err.read_text()
    assert died_of_sigtrap(rc, err), f"exit {rc}: expected death by the pending SIGTRAP\n{s.output()}"


@pytest.mark.parametrize("also_server", [False, True], ids=["lldb", "lldb+server"])
def test_kill_lldb_with_sw_breakpoints_kills_program(toolchain, tmp_path, also_server):
    """Documents LLDB's own behaviour (docs/plugin.md): LLDB (or lldb-server, killed first)
    killed with software breakpoints inserted leaves their int3s in the program, which dies
    of SIGTRAP at the next hit. samples/mapcount waits on its stdin before its first
    runtime.mapassign_fast64 call: the breakpoint there is inserted and never being stepped
    over when LLDB dies, so whether an int3 is left does not depend on timing; the newline
    then runs into it. Asserted as it is (death by SIGTRAP and nothing else): if LLDB ever
    removes its int3s on such a death, this fails and docs/plugin.md must change."""
    exe = build_sample(toolchain, "mapcount")
    p = subprocess.Popen([str(exe), "-n", "1000"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("pid="), "mapcount did not start"
        lldb = subprocess.Popen(lldb_args(p.pid, "gort break maps --sw --func runtime.mapassign_fast64",
                                          "process continue"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # attached, the breakpoint inserted, the program resumed (blocked reading stdin)
        deadline = time.monotonic() + 30
        while not running_traced(p.pid):
            assert time.monotonic() < deadline and lldb.poll() is None, lldb.communicate()[0].decode()
            time.sleep(0.02)
        kill_lldb(lldb, also_server, server_first=also_server)
        out, err = p.communicate("\n", timeout=60)
        assert "writes=1000" not in out and died_of_sigtrap(p.returncode, err), \
            f"exit {p.returncode}: expected death by the int3 LLDB left\n{out}\n{err[-2000:]}"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def running_traced(pid):
    """PID is traced and blocked in a read, not held in a ptrace stop: LLDB resumed it."""
    status = Path(f"/proc/{pid}/status").read_text()
    traced = int(re.search(r"^TracerPid:\s+(\d+)$", status, re.M)[1]) != 0
    state = re.search(r"^State:\s+(\S)", status, re.M)[1]
    return traced and state == "S" and all(
        Path(f"/proc/{pid}/task/{t.name}/stat").read_text().rsplit(")", 1)[1].split()[0] != "t"
        for t in Path(f"/proc/{pid}/task").iterdir())
