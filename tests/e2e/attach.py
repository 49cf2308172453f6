"""A running samples/mapsoak, and LLDB attached to it in batch mode: what the never-harm
tests share (test_detach, test_record, test_inproc; the `soak` fixture is in conftest.py).

samples/mapsoak writes two maps under a mutex from two goroutines with GC churn until a
line arrives on its stdin, then checks every value and prints a checksum that does not
depend on how long it ran. Waits are on conditions (a probe hit logged, CPU time the
program used: tests/e2e/lldb_wait.py), never on a clock.
"""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import lldb_wait
from test_plugin import PLUGIN, lldb_path

EXPECTED = f"mapsoak len=1000 strs=100 sum={sum(k ^ (k * k + 7) for k in range(1000))} ok"
HARM = ("SIGTRAP", "trace trap", "fatal error", "panic:")
WAIT_PY = Path(__file__).resolve().with_name("lldb_wait.py")
# ~10 ms of CPU: mapsoak makes some 100,000 map writes in it, so anything gort left behind
# (a breakpoint, a watchpoint, a uprobe) would fire many times
RUN_ON_TICKS = 2


class Soak:
    """One running samples/mapsoak (ARGS passed on)."""

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

    def ran_on(self, ticks=RUN_ON_TICKS):
        """Returns once the program used TICKS more clock ticks of CPU (it runs), or died."""
        assert lldb_wait.ran_on(self.pid, ticks), \
            f"the program neither used {ticks} CPU ticks nor ended in {lldb_wait.TIMEOUT:.0f} s\n{self.output()}"

    def finish(self, context=""):
        """Lets it run on (anything left behind would fire), ends it, checks it was not harmed."""
        self.ran_on()
        assert self.p.poll() is None, f"the program died after gort left ({context}):\n{self.output()}"
        assert lldb_wait.state(self.pid) != "T", f"the program is stopped (by a signal) after gort left ({context})"
        assert self.tracer() == 0, f"still traced after gort left ({context})"
        self.ran_on()
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


def lldb_args(pid, *cmds, after_crash=()):
    """`lldb -b` attached to PID with gort and lldb_wait loaded, then CMDS."""
    args = [lldb_path(), "--no-lldbinit", "-b", "-o", f"plugin load {PLUGIN}", "-o", f"command script import {WAIT_PY}",
            "-o", f"process attach -p {pid}"]
    for c in cmds:
        args += ["-o", c]
    for c in after_crash:
        args += ["-k", c]
    return args


def run(args, timeout=120):
    """`lldb -b` ARGS: its output (stdout + stderr, CRLF as LF); fails if a wait in it timed
    out, or if LLDB did not end within TIMEOUT (saying what it printed: a crash's stack)."""
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = "".join(x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (e.stdout, e.stderr))
        raise AssertionError(f"lldb did not end in {timeout} s:\n{out[-12000:]}") from None
    out = (r.stdout + r.stderr).replace("\r\n", "\n")
    assert lldb_wait.TIMED_OUT not in out, out  # a wait ended on its clock, not its condition
    return out


def interrupt_when_logged(log, text):
    """An LLDB command: interrupt the running program once LOG holds TEXT."""
    return f"script lldb_wait.interrupt_when_logged(lldb.process, {str(log)!r}, {text!r})"


def interrupt_after_cpu(pid, ticks=RUN_ON_TICKS):
    """An LLDB command: interrupt the running program once it used TICKS more CPU ticks."""
    return f"script lldb_wait.interrupt_after_cpu(lldb.process, {pid}, {ticks})"


def linger(pid, ticks=RUN_ON_TICKS):
    """An LLDB command: wait, with LLDB (and any perf fd it holds) still alive after a
    detach, until the program used TICKS more CPU ticks: a probe left behind would fire."""
    return f"script lldb_wait.ran_on({pid}, {ticks})"


def sourced(tmp_path, *cmds):
    """One -o that runs CMDS from a file: `lldb -b` ends its -o list at a stop it counts as
    a crash (a SIGTRAP, a watchpoint); `command source -e false` carries on."""
    f = tmp_path / "cmds.lldb"
    f.write_text("\n".join(cmds) + "\n")
    return f"command source -e false -s 0 {f}"


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


def lldb_servers(lldb):
    servers = [c for c in children(lldb.pid) if b"lldb-server" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert servers, "no lldb-server child"
    return servers


def kill_lldb(lldb, also_server, soak_=None, server_first=False):
    """SIGKILLs LLDB (and its lldb-server when ALSO_SERVER; before LLDB when SERVER_FIRST);
    waits for the server to go (and, given SOAK_, for the program to be untraced)."""
    servers = lldb_servers(lldb)
    if server_first:
        for c in servers:
            os.kill(c, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(alive(c) for c in servers):   # dead: its tracees were let go
            assert time.monotonic() < deadline, f"lldb-server {servers} still alive 30 s after SIGKILL"
            time.sleep(0.01)
    lldb.kill()
    if also_server and not server_first:
        for c in servers:
            os.kill(c, signal.SIGKILL)
    lldb.communicate()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{c}").exists() for c in servers) or (soak_ and soak_.tracer()):
        assert time.monotonic() < deadline, \
            f"10 s after the kill: lldb-server {[c for c in servers if Path(f'/proc/{c}').exists()]} still there" \
            + (f", the program traced by {soak_.tracer()}" if soak_ else "")
        time.sleep(0.05)


def alive(pid):
    """PID exists and is not a zombie (a tracer's tracees are let go before it is one)."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_lldb_mid_run(s, log, cmds, also_server):
    """Runs LLDB attached with CMDS and `process continue`, then SIGKILLs it (and its
    lldb-server when ALSO_SERVER) while the program runs with the probes logging to LOG."""
    lldb = subprocess.Popen(lldb_args(s.pid, *cmds, "process continue"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    # Hits in the log: attached, probes set, running.
    while not (log.exists() and log.stat().st_size > 0):
        assert time.monotonic() < deadline and lldb.poll() is None, lldb.communicate()[0].decode()
        time.sleep(0.01)
    s.ran_on()
    kill_lldb(lldb, also_server)
