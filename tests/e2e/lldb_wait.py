"""Waits on conditions, not clocks, inside an `lldb -b` run (tests/e2e/test_detach.py).

Loaded with `command script import`; the tests call it from `script` commands:

    script lldb_wait.interrupt_when_logged(lldb.process, LOG, TEXT)   # stop the running program
    script lldb_wait.interrupt_after_cpu(lldb.process, PID, TICKS)    # once TEXT is in LOG, or
    script lldb_wait.ran_on(PID, TICKS)                               # once it used TICKS more CPU

An interrupt is a chain of threading.Timers, each checking once and re-arming: a Python
loop in a thread did not get to run while `process continue` waited in LLDB 19, a Timer
does. CPU time comes from /proc/PID/stat in clock ticks (10 ms): a program that used more
CPU demonstrably ran (mapsoak writes some ten million map entries a CPU-second).
"""
import threading
import time

TIMEOUT = 60.0  # seconds: a condition not met by then is the test's failure, not a hang


def _stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def state(pid):
    """PID's state letter (R, S, D, T stopped, t traced, Z zombie), None once it is gone."""
    fields = _stat(pid)
    return fields[0] if fields else None


def cpu_ticks(pid):
    """utime + stime of PID in clock ticks (None once it is gone)."""
    fields = _stat(pid)
    return int(fields[11]) + int(fields[12]) if fields else None


def _interrupt_when(process, cond):
    deadline = time.monotonic() + TIMEOUT

    def check():
        if cond() or time.monotonic() > deadline:
            process.SendAsyncInterrupt()
        else:
            threading.Timer(0.01, check).start()
    threading.Timer(0.01, check).start()


def interrupt_when_logged(process, path, text):
    """Interrupts PROCESS once the file PATH holds TEXT (a probe hit was logged)."""
    def cond():
        try:
            with open(path) as f:
                return text in f.read()
        except OSError:
            return False
    _interrupt_when(process, cond)


def interrupt_after_cpu(process, pid, ticks=5):
    """Interrupts PROCESS once PID has used TICKS more clock ticks of CPU."""
    start = cpu_ticks(pid) or 0
    _interrupt_when(process, lambda: (cpu_ticks(pid) or 0) - start >= ticks)


def ran_on(pid, ticks=5):
    """Returns once PID has used TICKS more clock ticks of CPU, or cannot any more (gone, a
    zombie, or stopped by a signal: the caller's checks then say so), or after TIMEOUT."""
    start = cpu_ticks(pid)
    deadline = time.monotonic() + TIMEOUT
    while start is not None and time.monotonic() < deadline:
        now = cpu_ticks(pid)
        if now is None or now - start >= ticks or state(pid) in ("Z", "X", "T"):
            return
        time.sleep(0.005)
