"""The LLDB plugin loads in batch mode and its `gort info` agrees with `gort inspect`.

Differential: the plugin and the CLI are two front ends over the same core/, so the
plugin's whole `gort info` output must be what `gort inspect --json` implies."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import BUILD_DIR, build_sample, missing, run_gort

PLUGIN = BUILD_DIR / "lib" / "libgort-lldb.so"


# LLDB 19 now and then reports a process that ran to its end as "exited with status = -1
# (0xffffffff) lost connection". The cause, seen in lldb-server's log: the program exits
# while lldb-server is still resuming its threads one by one (a resume within microseconds
# of the program's end: a --continue breakpoint's last hit, or a stop right before the
# exit); the group exit kills a thread not yet resumed, PTRACE_CONT fails with ESRCH, and
# lldb-server fails the whole vCont (E1e), which LLDB takes for a lost connection. The
# program's own output is complete. Samples that tests stop near their end linger a little
# before exiting (samples/mapwrites); for the rest, as LLVM's own test suite does, rerun
# once on exactly that signature and no other; every assertion still applies to the rerun.
LLDB_FLAKE = "exited with status = -1 (0xffffffff) lost connection"


# LLDB 19's lldb-server also hangs, now and then, when the program creates a thread just as
# it exits: the new thread is killed by the group exit and stops at its ptrace exit event
# (do_exit -> ptrace_notify) before lldb-server knows it exists, so nothing resumes it; the
# leader stays a zombie and `lldb -b` waits forever (seen once in ~40 rounds of
# test_break_wb.py, in --sw and --hw modes and in plain LLDB breakpoints alike). The same
# rule: rerun once on exactly that state, seen for EXIT_RACE_S seconds, and no other.
EXIT_RACE_S = 5


def _children(pid):
    try:
        return [int(c) for t in os.listdir(f"/proc/{pid}/task")
                for c in open(f"/proc/{pid}/task/{t}/children").read().split()]
    except OSError:
        return []


def _stuck_at_exit(pid):
    """PID is a zombie leader with a thread held in a ptrace stop (its exit event)."""
    try:
        if open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            return False
        return any(open(f"/proc/{pid}/task/{t}/wchan").read() == "ptrace_stop"
                   for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return False


def _exit_race(lldb_pid):
    """An inferior of this LLDB (a child of its lldb-server) stuck as _stuck_at_exit says."""
    return any(_stuck_at_exit(inferior) for server in _children(lldb_pid) for inferior in _children(server))


def _run_once(args, timeout, **popen):
    """(CompletedProcess, hit the exit race); TimeoutExpired as subprocess.run raises it."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, **{"stderr": subprocess.PIPE, **popen})
    deadline = time.monotonic() + timeout
    stuck_since = None
    while True:
        try:
            out, err = p.communicate(timeout=0.5)
            return subprocess.CompletedProcess(args, p.returncode, out, err), False
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        stuck_since = (stuck_since or now) if _exit_race(p.pid) else None
        if (stuck_since and now - stuck_since >= EXIT_RACE_S) or now >= deadline:
            for server in _children(p.pid):
                for inferior in _children(server):
                    os.kill(inferior, signal.SIGKILL)
                os.kill(server, signal.SIGKILL)
            p.kill()
            out, err = p.communicate()
            if stuck_since and now - stuck_since >= EXIT_RACE_S:
                return subprocess.CompletedProcess(args, p.returncode, out, err), True
            raise subprocess.TimeoutExpired(args, timeout, output=out, stderr=err)


def run_lldb(args, timeout=120, **popen):
    """Runs `lldb -b` ARGS (POPEN: cwd, env, stderr=subprocess.STDOUT to merge), once more
    on LLDB's own two exit flakes above and no other failure."""
    r, race = _run_once(args, timeout, **popen)
    if race or LLDB_FLAKE in r.stdout + (r.stderr or ""):
        print(f"run_lldb: {'lldb-server hung at the exit' if race else 'lost connection at the exit'}: rerunning once",
              file=sys.stderr)
        r, race = _run_once(args, timeout, **popen)
        assert not race, f"lldb-server hung at the program's exit twice in a row:\n{r.stdout}{r.stderr}"
    return r


def lldb_path():
    lldb = shutil.which("lldb-19") or shutil.which("lldb")
    if not lldb:
        missing("lldb-19")
    if not PLUGIN.exists():
        missing(f"{PLUGIN} (build with scripts/build)")
    return lldb


def lldb_batch(target, *cmds, timeout=120):
    args = [lldb_path(), "--no-lldbinit", "-b", "-o", f"plugin load {PLUGIN}"]
    for c in cmds:
        args += ["-o", c]
    if target:
        args.append(str(target))
    return run_lldb(args, timeout=timeout)


def command_output(stdout: str, command: str) -> list:
    """Lines printed between '(lldb) COMMAND' and the next '(lldb)' prompt."""
    out, on = [], False
    for line in stdout.splitlines():
        if line.startswith("(lldb) "):
            on = line == f"(lldb) {command}"
            continue
        if on:
            out.append(line)
    return out


@pytest.mark.parametrize("variant", ["normal", "stripped", "pie"])
def test_info_matches_inspect(toolchain, variant):
    exe = build_sample(toolchain, "mapwrites", variant)
    j = json.loads(run_gort("inspect", "--json", exe, check=True).stdout)
    maps = sum(1 for p in j["probes"] if p["role"] != "write-barrier")
    wb = sum(1 for p in j["probes"] if p["role"] == "write-barrier")
    r = lldb_batch(exe, "gort info")
    assert r.returncode == 0, r.stdout + r.stderr
    flags = (" (PIE)" if j["pie"] else "") + (" (stripped)" if j["stripped"] else "")
    assert command_output(r.stdout, "gort info") == [
        f"binary   {exe}{flags}",
        f"go       {j['go_version']}",
        f"maps     {j['map_impl']}",
        f"layouts  {j['layouts']}",
        f"probes   {maps} map-write functions, {wb} write-barrier entries",
    ]
    assert maps >= 1 and j["map_impl"] == ("hmap" if toolchain.minor <= 23 else "swiss")


def test_info_on_non_go_target():
    r = lldb_batch("/bin/true", "gort info")
    assert "error: gort info: /bin/true: not a Go binary" in r.stdout + r.stderr


def test_info_without_target():
    r = lldb_batch(None, "gort info")
    assert "error: gort info: no target" in r.stdout + r.stderr


def test_help_lists_commands():
    r = lldb_batch(None, "help gort")
    lines = command_output(r.stdout, "help gort")
    assert any(l.split() and l.split()[0] == "info" for l in lines), lines
    assert any(l.split() and l.split()[0] == "version" for l in lines), lines


def test_load_on_go_target_configures_sigurg(toolchain):
    exe = build_sample(toolchain, "mapwrites")
    j = json.loads(run_gort("inspect", "--json", exe, check=True).stdout)
    r = lldb_batch(exe, "process handle SIGURG SIGTRAP")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    load = lines.index(f"(lldb) plugin load {PLUGIN}")
    assert lines[load + 1] == (f"gort: {exe} {j['go_version']} ({j['map_impl']} maps, layouts from {j['layouts']}); "
                               "SIGURG (Go preemption) passed silently")
    # Before a process exists LLDB lists only the signals the target changed: SIGURG is
    # passed without stop or notify; SIGTRAP is untouched until gort sets a hw breakpoint.
    table = command_output(r.stdout, "process handle SIGURG SIGTRAP")
    assert [l.split() for l in table if l.startswith("SIG")] == [["SIGURG", "true", "false", "false"]]


def test_load_on_non_go_target_changes_nothing():
    r = lldb_batch("/bin/true", "process handle SIGURG")
    assert "gort: loaded; /bin/true: not a Go binary (no Go build info found); " \
           "gort works on programs built by Go 1.21-1.26. Nothing was changed." in r.stdout
    # LLDB lists only the signals a target changed: none.
    table = command_output(r.stdout, "process handle SIGURG")
    assert [l for l in table if l.startswith("SIG")] == []


def test_load_without_target_sets_sigurg_for_later_targets(toolchain):
    exe = build_sample(toolchain, "mapwrites")
    r = lldb_batch(None, f"target create {exe}", "process handle SIGURG", "run 20")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "gort: loaded. Targets created from now on pass SIGURG (Go preemption) silently." in r.stdout
    table = command_output(r.stdout, "process handle SIGURG")
    assert [l.split() for l in table if l.startswith("SIGURG")] == [["SIGURG", "true", "false", "false"]]
    assert "m32=10 m64=10 mptr=20" in r.stdout and "exited with status = 0" in r.stdout
