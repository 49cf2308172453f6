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
# Printed (to stderr: LLDB's own, which the tests read with its output) when a wait ends at
# TIMEOUT rather than on its condition; tests/e2e/attach.py fails a run that printed it.
TIMED_OUT = "lldb_wait: timed out"


def _timed_out(what):
    import sys
    print(f"{TIMED_OUT} after {TIMEOUT:.0f} s waiting for {what}", file=sys.__stderr__, flush=True)


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


def _interrupt_when(process, cond, what):
    deadline = time.monotonic() + TIMEOUT

    def check():
        met = cond()
        if met or time.monotonic() > deadline:
            if not met:
                _timed_out(what)
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
    _interrupt_when(process, cond, f"{text!r} in {path}")


def interrupt_after_cpu(process, pid, ticks=5):
    """Interrupts PROCESS once PID has used TICKS more clock ticks of CPU."""
    start = cpu_ticks(pid) or 0
    _interrupt_when(process, lambda: (cpu_ticks(pid) or 0) - start >= ticks, f"{ticks} CPU ticks of {pid}")


def ran_on(pid, ticks=5):
    """Returns once PID has used TICKS more clock ticks of CPU, or cannot any more (gone, a
    zombie, or stopped by a signal: the caller's checks then say so): True. False after
    TIMEOUT (a program that neither ran nor ended), said on stderr as well."""
    start = cpu_ticks(pid)
    deadline = time.monotonic() + TIMEOUT
    while start is not None and time.monotonic() < deadline:
        now = cpu_ticks(pid)
        if now is None or now - start >= ticks or state(pid) in ("Z", "X", "T"):
            return True
        time.sleep(0.005)
    if start is None:
        return True
    _timed_out(f"{ticks} CPU ticks of {pid}")
    return False
