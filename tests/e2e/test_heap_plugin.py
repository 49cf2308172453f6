"""`gort heap scan` and `gort ptr` in LLDB on samples/dangling, on a core and on the live
process LLDB attached to. Differential: the plugin and the CLI are two front ends over the
same core/, so the plugin must report every stale handle and no kept one (test_heap.py's
check_stale), with the same findings and the same address descriptions as `gort heap`."""
import json

from conftest import build_sample, run_gort
from test_heap import Running, check_stale, stale_core
from test_plugin import command_output, lldb_batch


def finding_keys(rep):
    return sorted((f["holder"]["kind"], f["holder"]["addr"], f["target"]["value"], f["target"]["state"],
                   f["target"]["base"]) for f in rep["findings"])


def lldb_json(stdout, command):
    lines = command_output(stdout, command)
    assert lines, stdout
    return json.loads("\n".join(lines))


def test_plugin_heap_on_core(toolchain, tmp_path):
    exe, run, core = stale_core(toolchain, tmp_path)
    s, k = min(run.stale), min(run.kept)

    r = lldb_batch(None, f"target create {exe} --core {core}", "gort heap scan --json", "gort heap scan",
                   f"gort ptr {hex(s)} {k} --json", f"gort ptr {hex(s)}", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = lldb_json(r.stdout, "gort heap scan --json")
    check_stale(rep, run)
    cli = json.loads(run_gort("heap", "scan", exe, core, "--json", check=True, timeout=600).stdout)
    assert finding_keys(rep) == finding_keys(cli)
    assert rep["heap"] == cli["heap"]
    text = "\n".join(command_output(r.stdout, "gort heap scan"))
    assert f"{len(rep['findings'])} dangling pointer(s)" in text, text

    ptrs = lldb_json(r.stdout, f"gort ptr {hex(s)} {k} --json")
    a, b = ptrs
    assert a["kind"] == "heap" and a["object"]["state"] == "free" and not a["object"]["allocated"], a
    assert b["kind"] == "heap" and b["object"]["state"] == "live" and b["object"]["base"] == hex(k), b
    assert ptrs == json.loads(run_gort("heap", "ptr", exe, core, hex(s), hex(k), "--json", check=True).stdout)
    text = "\n".join(command_output(r.stdout, f"gort ptr {hex(s)}"))
    assert "free" in text and "span" in text, text

    # lldb -b stops at the first failing command: the bad address comes last.
    r = lldb_batch(None, f"target create {exe} --core {core}", "gort ptr zzz")
    assert "error: gort ptr: cannot evaluate 'zzz' to an address" in r.stdout + r.stderr, r.stdout + r.stderr


def test_plugin_heap_on_live_process(toolchain):
    run = Running(build_sample(toolchain, "dangling", "pie"), "stale")
    try:
        s = min(run.stale)
        r = lldb_batch(None, f"process attach -p {run.pid}", "gort heap scan --json", f"gort ptr {hex(s)} --json",
                       "process detach", timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = lldb_json(r.stdout, "gort heap scan --json")
        check_stale(rep, run)
        assert any("main.handles" in x for f in rep["findings"] for x in f["holder"]["referenced_from"])
        (a,) = lldb_json(r.stdout, f"gort ptr {hex(s)} --json")
        assert a["kind"] == "heap" and a["object"]["state"] == "free", a
        # The same findings from the CLI, once LLDB has let go (the sample waits, idle).
        cli = json.loads(run_gort("heap", "scan", "-p", run.pid, "--json", check=True, timeout=600).stdout)
        assert finding_keys(rep) == finding_keys(cli)
        # The program runs on after the detach, and the bug is real.
        rc, out, err = run.finish()
        assert rc == 0, err
        assert f"of {len(run.stale)}" in out, out
    finally:
        run.p.kill()


def test_plugin_heap_errors(toolchain):
    r = lldb_batch("/bin/true", "gort heap scan")
    assert "error: gort heap scan: /bin/true: not a Go binary" in r.stdout + r.stderr, r.stdout + r.stderr
    exe = build_sample(toolchain, "dangling")
    # lldb -b stops at the first failing command: one per session.
    for cmd, want in [("gort ptr 0x1000", "error: gort ptr: no process"),
                      ("gort heap scan", "error: gort heap scan: no process"),
                      ("gort ptr", "error: gort ptr: give at least one ADDR"),
                      ("gort heap scan --bogus", "error: gort heap scan: unknown argument '--bogus'")]:
        r = lldb_batch(exe, cmd)
        assert want in r.stdout + r.stderr, (cmd, r.stdout + r.stderr)
