"""Never harm the target: attach to a running Go program, set gort's breakpoints and
watchpoints, leave (detach, or LLDB killed), and the program finishes with its correct
output and no stray SIGTRAP.

samples/mapsoak writes two maps under a mutex from two goroutines with GC churn until a
line arrives on its stdin, then checks every value and prints a checksum that does not
depend on how long it ran. Each run here: start it, attach with `lldb -b`, set hardware
(perf) and software breakpoints and a map watchpoint, leave, let it run on for a moment
(anything left behind would fire: it writes ~10M map entries a second), check that no
tracer is left (/proc/PID/status TracerPid), then end it and check its output.

GORT_DETACH_LOOPS (default 50) is the number of attach/detach rounds with the newest Go;
Go 1.23 (and any other toolchain) runs a fifth of it (at least 1)."""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import build_sample
from test_plugin import PLUGIN, lldb_path

LOOPS = int(os.environ.get("GORT_DETACH_LOOPS", "50"))
EXPECTED = f"mapsoak len=1000 strs=100 sum={sum(k ^ (k * k + 7) for k in range(1000))} ok"
HARM = ("SIGTRAP", "trace trap", "fatal error", "panic:")
HIT = re.compile(r"^gort: goroutine \d+ thread \d+ assign map 0x[0-9a-f]+ key \S+ in runtime.mapassign_faststr "
                 r"from main\.\(\*store\)\.put at \S+mapsoak/main.go:\d+$", re.M)


def loops_for(toolchain):
    from conftest import _system_go
    newest = _system_go()
    return LOOPS if newest and toolchain.minor == newest.minor else max(1, LOOPS // 5)


class Soak:
    """One running samples/mapsoak."""

    def __init__(self, exe: Path, tmp: Path, args=()):
        self.out, self.err = tmp / "soak.out", tmp / "soak.err"
        with open(self.out, "w") as o, open(self.err, "w") as e:
            self.p = subprocess.Popen([str(exe), *args], stdin=subprocess.PIPE, stdout=o, stderr=e)
        deadline = time.monotonic() + 30
        while "ready" not in self.out.read_text():
            assert self.p.poll() is None and time.monotonic() < deadline, self.output()
            time.sleep(0.01)
        m = re.match(r"map (0x[0-9a-f]+) strmap (0x[0-9a-f]+)$", self.out.read_text().splitlines()[0])
        self.map, self.strmap = m[1], m[2]
        self.pid = self.p.pid

    def output(self):
        return f"stdout:\n{self.out.read_text()}\nstderr:\n{self.err.read_text()[:3000]}"

    def tracer(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(r"^TracerPid:\s+(\d+)$", status, re.M)[1])

    def finish(self, context=""):
        """Lets it run on a moment, ends it and checks it was not harmed."""
        time.sleep(0.2)
        assert self.p.poll() is None, f"the program died after gort left ({context}):\n{self.output()}"
        assert self.tracer() == 0, f"still traced after gort left ({context})"
        time.sleep(0.2)
        self.p.stdin.write(b"stop\n")
        self.p.stdin.close()
        rc = self.p.wait(timeout=60)
        out, err = self.out.read_text(), self.err.read_text()
        assert rc == 0 and out.splitlines()[-1] == EXPECTED, f"exit {rc} ({context})\n{self.output()}"
        assert not any(h in out + err for h in HARM), f"({context})\n{self.output()}"

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def soak(toolchain, tmp_path):
    exe = build_sample(toolchain, "mapsoak")
    started = []

    def start(*args):
        s = Soak(exe, tmp_path, args)
        started.append(s)
        return s
    yield start
    for s in started:
        s.kill()


def lldb_args(pid, *cmds, after_crash=()):
    args = [lldb_path(), "--no-lldbinit", "-b", "-o", f"plugin load {PLUGIN}", "-o", f"process attach -p {pid}"]
    for c in cmds:
        args += ["-o", c]
    for c in after_crash:
        args += ["-k", c]
    return args


def run(args, timeout=120):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return r.stdout + r.stderr


# Interrupts the running process after S seconds (LLDB stops it with SIGSTOP). A
# threading.Timer calling SendAsyncInterrupt directly: a Python loop in a thread did not
# get to run while `process continue` waited.
def interrupt_after(s):
    return f"script import threading; threading.Timer({s}, lldb.process.SendAsyncInterrupt).start()"


LINGER = "script import time; time.sleep(0.3)"  # LLDB (and any perf fd it holds) outlives the detach


def set_everything(soak_, log):
    """Hardware (perf, sampling) on fast64, a perf watchpoint on the map, a software
    breakpoint on faststr: 2 of the 4 debug registers, and LLDB's int3."""
    return [f"gort break maps --hw --continue --func runtime.mapassign_fast64 --log {log}",
            f"gort watch map {soak_.map} --continue",
            "gort break maps --sw --func runtime.mapassign_faststr"]


LEFT = re.compile(r"^gort: before detaching: (\d+) perf probe set\(s\) closed, \d+ breakpoint\(s\) and (\d+) "
                  r"watchpoint\(s\) deleted", re.M)


def after_continue(out):
    return out.split("process continue", 1)[1]


def stray(out):
    """STRAY: the probes of kinds 0 and 1 are sampling (--continue) ones, which never stop
    the program; but in these VMs a hardware breakpoint hit now and then arrives as a plain
    SIGTRAP (docs/record.md, "Hardware breakpoints in virtual machines"), and lldb-server
    stops there. The detach must then work as at any other stop."""
    return "stop reason = signal SIGTRAP" in after_continue(out)


def sourced(tmp_path, *cmds):
    """One -o that runs CMDS from a file: `lldb -b` ends its -o list at a stop it counts as
    a crash (a SIGTRAP, a watchpoint); `command source -e false` carries on."""
    f = tmp_path / "cmds.lldb"
    f.write_text("\n".join(cmds) + "\n")
    return f"command source -e false -s 0 {f}"


def test_detach_loop(toolchain, soak, tmp_path):
    """In turn: detach while stopped at a software breakpoint hit with the hardware probes
    live; detach after interrupting the running program (hardware probes only: LLDB lost
    every interrupt while auto-continuing a --continue software breakpoint); detach with
    everything set, including --continue software breakpoints, before resuming; detach at
    whichever stop-mode probe fires first (perf SIGTRAP, LLDB watchpoint or int3)."""
    n = loops_for(toolchain)
    for i in range(n):
        s = soak()
        log = tmp_path / f"hits{i}.jsonl"
        kind = i % 4
        if kind == 0:
            # `continue` stops at the first faststr write (the sw breakpoint); detach there.
            out = run(lldb_args(s.pid, sourced(tmp_path, *set_everything(s, log), "process continue",
                                               "process detach", LINGER)))
            # (or at a stray SIGTRAP: see STRAY)
            assert len(HIT.findall(out)) == 1 or stray(out), out
        elif kind == 1:
            out = run(lldb_args(s.pid, sourced(tmp_path, *set_everything(s, log)[:2], interrupt_after(0.3),
                                               "process continue", "process detach", LINGER)))
            # the interrupt's SIGSTOP, or a stray SIGTRAP that came first: either way the
            # detach happens at a stop
            assert "stop reason = signal SIGSTOP" in after_continue(out) or stray(out), out
        assert "detached" in out and "error:" not in out, out
        assert "hardware  assign runtime.mapassign_fast64" in out, out
        s.finish(f"round {i + 1} of {n}")
        # Kind 1 ran 0.3 s with the probes live. (Kind 0 may stop at the first faststr
        # write before any fast64 write: CI saw it once in 60 rounds.)
        if kind == 1:
            assert '"function":"runtime.mapassign_fast64"' in log.read_text(), f"round {i + 1}: no hardware hit logged"


def test_clear_then_detach(toolchain, soak):
    """Stop-mode hardware breakpoints (perf sigtrap) and an LLDB watchpoint, removed with
    `gort break clear` before the detach: the way to leave that docs/plugin.md gives."""
    for i in range(max(1, loops_for(toolchain) // 10)):
        s = soak()
        out = run(lldb_args(s.pid, "gort break maps --hw --func runtime.mapassign_fast64", f"gort watch map {s.map}",
                            "gort break clear", "process detach", LINGER))
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
                                           f"gort watch map {s.map}", "process continue", how, LINGER)))
        m = LEFT.search(out)
        assert m and m[1] == "1" and m[2] == "1", out
        assert "stop reason = " in out.split("process continue")[1], out
        s.finish(f"stop-mode probes, {how}")
    s = soak()
    # Asynchronous mode: `process continue` returns at once, the detach runs while the
    # program runs and hits the probes (~10M map writes a second).
    out = run(lldb_args(s.pid, "script lldb.debugger.SetAsync(True)",
                        "gort break maps --hw --func runtime.mapassign_fast64", "process continue",
                        "script import time; time.sleep(0.2)", "process detach", LINGER))
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
    out = run(lldb_args(s.pid, watch, "process detach", LINGER))
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


def children(pid):
    """PID's child processes, whichever of its threads started them (LLDB may spawn
    lldb-server from a thread other than the main one: /proc/PID/task/PID/children alone
    missed it once in CI)."""
    kids = []
    for t in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (t / "children").read_text().split()]
        except OSError:
            pass
    return kids


def kill_lldb_mid_run(s, log, cmds, also_server):
    """Runs LLDB attached with CMDS and `process continue`, then SIGKILLs it (and its
    lldb-server when ALSO_SERVER) while the program runs with the probes logging to LOG."""
    args = lldb_args(s.pid, *cmds, "process continue")
    lldb = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    # Hits in the log: attached, probes set, running.
    while not (log.exists() and log.stat().st_size > 0):
        assert time.monotonic() < deadline and lldb.poll() is None, lldb.communicate()[0].decode()
        time.sleep(0.01)
    time.sleep(0.5)
    kill_lldb(lldb, also_server)


def kill_lldb(lldb, also_server, soak_=None):
    """SIGKILLs LLDB (and its lldb-server when ALSO_SERVER); waits for the server to go
    (and, given SOAK_, for the program to be untraced)."""
    servers = [c for c in children(lldb.pid) if b"lldb-server" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert servers, "no lldb-server child"
    lldb.kill()
    if also_server:
        for c in servers:
            os.kill(c, signal.SIGKILL)
    lldb.communicate()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (any(Path(f"/proc/{c}").exists() for c in servers) or
                                           (soak_ and soak_.tracer())):
        time.sleep(0.05)


@pytest.mark.parametrize("also_server", [False, True], ids=["lldb", "lldb+server"])
def test_kill_lldb_with_hw_breakpoints(toolchain, soak, tmp_path, also_server):
    """Hardware only (perf fds in LLDB's process, sampling): the kernel closes them when
    LLDB dies."""
    for i in range(3):
        s = soak()
        log = tmp_path / f"h{i}.jsonl"
        kill_lldb_mid_run(s, log, [f"gort break maps --hw --continue --func runtime.mapassign_fast64 --log {log}",
                                   f"gort watch map {s.map} --continue"], also_server)
        s.finish(f"kill -9 round {i + 1}")


@pytest.mark.parametrize("also_server", [
    False,
    # The kernel, when a tracer dies, restarts a thread held in signal-delivery-stop with
    # the signal it stopped with: SIGTRAP, and Go dies. Any ptrace debugger stopped at a
    # breakpoint (LLDB's own int3 alike) loses the program this way; nothing is left for
    # gort to close. Not strict: the timing of the two kills decides.
    pytest.param(True, marks=pytest.mark.xfail(strict=False, reason="kernel: tracer killed at a SIGTRAP stop "
                                                                    "delivers the SIGTRAP")),
], ids=["lldb", "lldb+server"])
def test_kill_lldb_stopped_at_sigtrap_probe(toolchain, soak, also_server):
    """Stop-mode hardware breakpoint (perf sigtrap): LLDB killed while the program is
    stopped at a hit (a SIGTRAP pending in lldb-server's hands) and its probes armed:
    lldb-server detaches (discarding the SIGTRAP) and the perf fds died with LLDB."""
    for i in range(2):
        s = soak()
        args = lldb_args(s.pid, "gort break maps --hw --func runtime.mapassign_fast64", "process continue",
                         after_crash=("script import time; time.sleep(60)",))
        lldb = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen, deadline = "", time.monotonic() + 30
        while "stop reason = signal SIGTRAP" not in seen:
            line = lldb.stdout.readline()
            assert line and time.monotonic() < deadline, seen
            seen += line
        kill_lldb(lldb, also_server, s)
        s.finish(f"kill -9 at a sigtrap stop, round {i + 1}")


# LLDB's own behaviour, documented in docs/plugin.md: killed with software breakpoints
# inserted, it leaves their int3s in the program, which then dies of SIGTRAP (exit by
# signal 5, no Go traceback) on the next hit: 17 of 20 runs on LLDB 19. Not strict: it
# sometimes survives (no hit before the int3s went away with lldb-server's detach?).
@pytest.mark.xfail(strict=False, reason="LLDB killed with software breakpoints inserted leaves int3s: SIGTRAP")
@pytest.mark.parametrize("also_server", [False, True], ids=["lldb", "lldb+server"])
def test_kill_lldb_with_sw_breakpoints(toolchain, soak, tmp_path, also_server):
    s = soak()
    log = tmp_path / "s.jsonl"
    kill_lldb_mid_run(s, log, [f"gort break maps --sw --continue --func runtime.mapassign_faststr --log {log}"],
                      also_server)
    s.finish("kill -9 with software breakpoints")
