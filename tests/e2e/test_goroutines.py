"""`gort goroutines` and `gort bt` on samples/goroutines, stopped at main.stopHere.

The sample parks one goroutine in each of: channel receive, sync.Mutex.Lock, time.Sleep,
select; prints runtime.NumGoroutine(); then calls stopHere. The plugin must list exactly
that many user goroutines (runtime ones hidden, as NumGoroutine does), with the right
wait reasons, and `gort bt` of the current goroutine must be stopHere <- main <- runtime.main.
Whole outputs are compared after normalising goids, thread ids, addresses and paths.
Variants: normal, PIE (load slide), stripped (allgs decoded from code; breakpoint by
address at the function's entry, before its frame exists)."""
import re

import pytest

from conftest import SOURCE_DIR, build_sample, go_nm
from test_plugin import command_output, lldb_batch

SRC = SOURCE_DIR / "samples" / "goroutines" / "main.go"


def src_line(text: str) -> int:
    """1-based line of the first source line containing TEXT."""
    for i, line in enumerate(SRC.read_text().splitlines(), 1):
        if text in line:
            return i
    raise AssertionError(f"{text!r} not in {SRC}")


def run_stopped(toolchain, variant, *cmds, check=True):
    exe = build_sample(toolchain, "goroutines", variant)
    if variant == "stripped":
        # No symbols for LLDB: break at stopHere's entry, taken from the same build unstripped
        # (-s -w does not move code). lldb-19 never hits an address breakpoint set on a
        # stripped executable before launch, so launch stopped at the entry first.
        addr = go_nm(toolchain, build_sample(toolchain, "goroutines", "normal"))["main.stopHere"]
        start = ["process launch -s", f"breakpoint set -a {addr:#x}", "continue"]
    else:
        start = ["breakpoint set -n main.stopHere", "run"]
    r = lldb_batch(exe, "process handle SIGURG -n false -p true -s false", *start, *cmds, timeout=240)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    else:
        return r.stdout + r.stderr, 0, 0
    m = re.search(r"^goroutines (\d+)$", r.stdout, re.M)
    assert m, r.stdout
    pid = re.search(r"Process (\d+) launched", r.stdout)
    assert pid, r.stdout
    return r.stdout, int(m.group(1)), int(pid.group(1))


ROW = re.compile(r"^([* ]) +(\d+)  (\S+) +(.*?) +(\d*)  (.*)$")


def normalise_list(lines, pid):
    out = []
    for line in lines:
        m = ROW.match(line)
        if not m:
            out.append(re.sub(r"\(\d+ runtime", "(N runtime", line))
            continue
        mark, _goid, status, reason, tid, where = m.groups()
        where = where.replace(str(SRC.parent), "SRC")
        out.append((mark.strip(), status, reason.strip(), "TID" if tid else "", where))
    return out


@pytest.mark.parametrize("variant", ["normal", "pie", "stripped"])
def test_goroutines_and_bt(toolchain, variant):
    out, printed, pid = run_stopped(toolchain, variant, "gort goroutines", "gort bt")
    entry = variant == "stripped"  # stopped at the entry: the line is the func line
    stop_line = src_line("func stopHere(") if entry else src_line('fmt.Fprintln(os.Stderr, "stopHere"')

    lst = command_output(out, "gort goroutines")
    assert normalise_list(lst, pid) == [
        "    GOID  STATUS     WAIT REASON              THREAD  WHERE",
        ("*", "running", "", "TID", f"main.stopHere at SRC/main.go:{stop_line}"),
        ("", "waiting", "chan receive", "", f"main.chanRecv at SRC/main.go:{src_line('<-never')}"),
        ("", "waiting", "sync.Mutex.Lock", "", f"main.mutexLock at SRC/main.go:{src_line('	mu.Lock()')}"),
        ("", "waiting", "sleep", "", f"main.sleeper at SRC/main.go:{src_line('time.Sleep(time.Hour)')}"),
        ("", "waiting", "select", "", f"main.selector at SRC/main.go:{src_line('select {')}"),
        f"{printed} goroutines (N runtime goroutines hidden; --all shows them and dead ones)",
    ], out
    assert printed == 5

    # main's goroutine runs on whichever thread the scheduler picked: the same in both outputs.
    tid = ROW.match(lst[1]).group(5)
    bt = [re.sub(r"0x[0-9a-f]{16}", "ADDR", l) for l in command_output(out, "gort bt")]
    bt = [re.sub(r" at \S*/src/runtime/(\S+):\d+$", r" at GOROOT/runtime/\1:L", l) for l in bt]
    bt = [l.replace(str(SRC.parent), "SRC") for l in bt]
    assert bt == [
        f"goroutine 1 [running, thread {tid}]:",
        f"#0   ADDR main.stopHere at SRC/main.go:{stop_line}",
        f"#1   ADDR main.main at SRC/main.go:{src_line('	stopHere(n)')}",
        "#2   ADDR runtime.main at GOROOT/runtime/proc.go:L",
        "#3   ADDR runtime.goexit at GOROOT/runtime/asm_amd64.s:L",
    ], out


# goids differ from run to run (per-P goid caches), so the goroutine list and the bt of a
# parked goroutine must come from one session: LLDB's Python runs both commands.
PARKED_BT = (
    "script import json; ci = lldb.debugger.GetCommandInterpreter(); ro = lldb.SBCommandReturnObject(); "
    "ci.HandleCommand('gort goroutines --json', ro); gs = json.loads(ro.GetOutput()); "
    "g = [x for x in gs if x.get('where', {}).get('function') == 'main.chanRecv']; "
    "ro2 = lldb.SBCommandReturnObject(); ci.HandleCommand('gort bt %d --json' % g[0]['goid'], ro2); "
    "print('PARKED ' + json.dumps({'list': g, 'bt': json.loads(ro2.GetOutput())}))"
)


def test_bt_of_parked_goroutine_and_json(toolchain):
    """A parked goroutine unwinds from g.sched through gopark to its own function."""
    import json
    out, _, _ = run_stopped(toolchain, "normal", PARKED_BT)
    m = re.search(r"^PARKED (.*)$", out, re.M)
    assert m, out
    j = json.loads(m.group(1))
    assert len(j["list"]) == 1, j
    g = j["list"][0]
    assert g["wait_reason"] == "chan receive" and g["thread"] is None and g["status"] == "waiting", g
    bt = j["bt"]
    fns = [f["function"] for f in bt["frames"]]
    assert bt["goid"] == g["goid"] and bt["stop_reason"] == "runtime.goexit", bt
    assert fns[0] == "runtime.gopark" and fns[-1] == "runtime.goexit" and fns[-2] == "main.chanRecv", fns


def test_bt_errors(toolchain):
    out, _, _ = run_stopped(toolchain, "normal", "gort bt 999999", check=False)
    assert "error: gort bt: no live goroutine 999999" in out


def test_goroutines_without_process():
    r = lldb_batch("/bin/true", "gort goroutines")
    assert "error: gort goroutines: /bin/true: not a Go binary" in r.stdout + r.stderr
