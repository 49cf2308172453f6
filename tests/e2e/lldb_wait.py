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


def cpu_ticks(pid):
    """utime + stime of PID in clock ticks (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


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
    """Returns once PID has used TICKS more clock ticks of CPU (or is gone, or TIMEOUT)."""
    start = cpu_ticks(pid)
    deadline = time.monotonic() + TIMEOUT
    while start is not None and time.monotonic() < deadline:
        now = cpu_ticks(pid)
        if now is None or now - start >= ticks:
            return
        time.sleep(0.005)
