"""`gort map` decodes live maps: what samples/mapdump printed must be what the plugin reads.

Differential: the sample prints each map's header address, type descriptor address and
sorted entries (to a file, through `process launch -o`); the plugin decodes the same maps
from memory at main.stopHere (--type from the sample's own print: type descriptors sit at
fixed addresses in a non-PIE binary) and at the entry of runtime.mapassign_faststr (no
arguments: RBX = map, RAX = type)."""
import json
import re

import pytest

from conftest import build_sample, go_nm
from test_plugin import command_output, lldb_batch

SIGURG = "process handle SIGURG -n false -p true -s false"


def parse_output(text):
    """{'m1': {'addr', 'count', 'type', 'entries': {key: value}}} from the sample's stdout."""
    maps = {}
    for line in text.splitlines():
        if m := re.match(r"(m[12]) (0x[0-9a-f]+) (\d+) type (0x[0-9a-f]+)$", line):
            maps[m[1]] = {"addr": int(m[2], 16), "count": int(m[3]), "type": m[4], "entries": {}}
        elif m := re.match(r"(m[12]) (.*?)=(.*)$", line):
            maps[m[1]]["entries"][m[2]] = m[3]
    return maps


def json_after(stdout, cmd):
    lines = command_output(stdout, cmd)
    assert lines, stdout
    return json.loads(lines[0])


@pytest.mark.parametrize("variant", ["normal", "noswiss"])
def test_map_at_stophere(toolchain, variant, tmp_path):
    exe = build_sample(toolchain, "mapdump", variant)
    import subprocess
    types = parse_output(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)
    stop = go_nm(toolchain, exe)["main.stopHere"]
    out = tmp_path / "out.txt"
    c1 = f"gort map $rax --type {types['m1']['type']} --json"
    c2 = f"gort map $rbx --type {types['m2']['type']} --json --limit 100000"
    c3 = "gort map $rbx"
    r = lldb_batch(exe, SIGURG, f"breakpoint set -s {exe.name} -a {stop:#x}", f"process launch -o {out}",
                   c1, c2, c3)
    assert r.returncode == 0, r.stdout + r.stderr
    want = parse_output(out.read_text())
    impl = "hmap" if toolchain.minor <= 23 or variant == "noswiss" else "swiss"
    for name, cmd in (("m1", c1), ("m2", c2)):
        j = json_after(r.stdout, cmd)
        assert int(j["addr"], 16) == want[name]["addr"]
        assert j["impl"] == impl
        assert j["count"] == want[name]["count"] == j["found"]
        assert j["writing"] is False
        assert j["warnings"] == []
        assert not j["truncated"]
        assert {e["key"]: e["elem"] for e in j["entries"]} == want[name]["entries"]
    m1, m2 = json_after(r.stdout, c1), json_after(r.stdout, c2)
    assert m1["type"]["key"] == {"kind": "string", "size": 16}
    assert m2["type"]["key"] == {"kind": "int64", "size": 8}
    if impl == "swiss":
        assert m1["small"] and not m2["small"]
        assert len(m2["tables"]) >= 2  # 2000 entries > one table's 1024 slots
        assert sum(t["used"] for t in m2["tables"]) == 2000
    else:
        assert m1["B"] == 0 and m2["B"] >= 8
    # Without a type: the header, and how to get entries.
    text = command_output(r.stdout, c3)
    assert text[0].startswith(f"map      {want['m2']['addr']:#x} {impl} count=2000 writing=false"), text
    assert text[1].startswith("note: map type unknown: pass --type TYPEADDR"), text


@pytest.mark.parametrize("variant", ["normal", "noswiss"])
def test_map_at_mapassign_entry(toolchain, variant, tmp_path):
    exe = build_sample(toolchain, "mapdump", variant)
    syms = go_nm(toolchain, exe)
    out = tmp_path / "out.txt"
    # Decode at stops at the entry of runtime.mapassign_faststr once main runs, until m1
    # holds three words. One call can stop more than once at its entry: the stack-check
    # prologue calls morestack, which re-runs the function from its first instruction
    # (go-runtime.md 1.3); and a stop longer than 10 ms makes sysmon ask the goroutine to
    # yield at that same check, so a slow stop can repeat many times before the call goes
    # on. So a fixed number of stops proves nothing: an LLDB script loop continues (at
    # most 40 times) until the map has grown, and states may repeat; they must only grow,
    # one word at a time.
    loop = ("import json; ci = lldb.debugger.GetCommandInterpreter(); "
            "p = lldb.debugger.GetSelectedTarget().GetProcess(); states = []\n"
            "for i in range(40):\n"
            "    p.Continue()\n"
            "    if p.GetState() != lldb.eStateStopped: break\n"
            "    ro = lldb.SBCommandReturnObject(); ci.HandleCommand('gort map --json', ro)\n"
            "    states.append(ro.GetOutput().strip())\n"
            "    if json.loads(states[-1])['count'] >= 3: break\n"
            "print('STATES ' + json.dumps(states))")
    script = tmp_path / "loop.py"
    script.write_text(loop + "\n")
    cmds = [SIGURG, f"breakpoint set -s {exe.name} -a {syms['main.main']:#x}", f"process launch -o {out}",
            "breakpoint delete 1", f"breakpoint set -s {exe.name} -a {syms['runtime.mapassign_faststr']:#x}",
            f"script exec(open('{script}').read())"]
    r = lldb_batch(exe, *cmds, "breakpoint delete 2", "continue")  # run to exit: out.txt complete
    assert r.returncode == 0, r.stdout + r.stderr
    m1 = parse_output(out.read_text())["m1"]
    words = ['"alpha"', '"bravo"', '"charlie"', '"delta"', '"echo"']
    line = next(l for l in r.stdout.splitlines() if l.startswith("STATES "))
    states = [json.loads(x) for x in json.loads(line[len("STATES "):])]
    assert 1 <= len(states) <= 40, r.stdout
    counts = [j["count"] for j in states]
    assert counts[0] == 0 and all(b - a in (0, 1) for a, b in zip(counts, counts[1:])) and counts[-1] >= 3, counts
    for j in states:
        assert int(j["addr"], 16) == m1["addr"]
        assert j["source"] == "runtime.mapassign_faststr"
        assert j["writing"] is False  # set only after hashing, not at entry
        assert j["found"] == j["count"] and j["warnings"] == []
        assert j["type"]["key"] == {"kind": "string", "size": 16}
        assert j["type"]["elem"] == {"kind": "int", "size": 8}
        want = {w: m1["entries"][w] for w in words[:j["count"]]}
        assert {e["key"]: e["elem"] for e in j["entries"]} == want
