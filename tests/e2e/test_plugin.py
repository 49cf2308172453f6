"""The LLDB plugin loads in batch mode and its `gort info` agrees with `gort inspect`.

Differential: the plugin and the CLI are two front ends over the same core/, so the
plugin's whole `gort info` output must be what `gort inspect --json` implies."""
import json
import shutil
import subprocess

import pytest

from conftest import BUILD_DIR, build_sample, missing, run_gort

PLUGIN = BUILD_DIR / "lib" / "libgort-lldb.so"


def lldb_batch(target, *cmds, timeout=120):
    lldb = shutil.which("lldb-19") or shutil.which("lldb")
    if not lldb:
        missing("lldb-19")
    if not PLUGIN.exists():
        missing(f"{PLUGIN} (build with scripts/build)")
    args = [lldb, "--no-lldbinit", "-b", "-o", f"plugin load {PLUGIN}"]
    for c in cmds:
        args += ["-o", c]
    if target:
        args.append(str(target))
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


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
