"""Runtime variables (core/goruntime/runtime_vars.cpp): runtime.mheap_, runtime.gcphase and
runtime.memstats come from .symtab when the binary has one, and are decoded from machine
code when it does not ("how": "symtab" / "decoded from <function>").

Observed through `gort inspect BIN --json` ("runtime_vars"), and checked three ways:
  * with .symtab, against `go tool nm`;
  * a copy of the same build with .symtab removed by binutils `strip` (same bytes at the
    same addresses): the decoded address must equal the symbol exactly. Also on PIE, and on
    a -gcflags=all=-N -l build, where setGCPhase is not inlined;
  * a `-ldflags=-s -w` build of the same source with the same toolchain: same code, but
    from Go 1.24 on the longer -ldflags setting in .go.buildinfo moves every later data
    section by 0x20, so the decoded address must sit at the symbol's offset in the
    same-named section of the normal build (the sections have the same sizes).
Run every toolchain with GORT_GO_VERSIONS=all.
"""
import json
import shutil
import struct
import subprocess
from pathlib import Path

from conftest import build_sample, go_tool, missing, run_gort

VARS = {"mheap": "runtime.mheap_", "gcphase": "runtime.gcphase", "memstats": "runtime.memstats"}
DECODED_FROM = {"mheap": "runtime.mallocinit", "gcphase": "runtime.gcStart", "memstats": "runtime.(*mcache).refill"}
SAMPLES = ("mapwrites", "synced")


def runtime_vars(binary):
    r = run_gort("inspect", binary, "--json", check=True)
    return json.loads(r.stdout)["runtime_vars"]


def addr(var, where):
    assert "error" not in var, f"{where}: {var['error']}"
    return int(var["addr"], 16)


def data_symbols(tc, binary):
    """name -> address of the runtime variables, from `go tool nm` (unstripped binaries)."""
    syms = {}
    for line in go_tool(tc, "nm", binary).splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] in VARS.values():
            syms[parts[2]] = int(parts[0], 16)
    return syms


def gnu_strip(binary: Path) -> Path:
    """BINARY without .symtab (binutils strip keeps every loaded byte where it was)."""
    strip = shutil.which("strip")
    if strip is None:
        missing("strip (binutils)")
    out = binary.with_name(binary.name + "-gnustrip")
    if not out.exists() or out.stat().st_mtime < binary.stat().st_mtime:
        subprocess.run([strip, "-o", str(out), str(binary)], check=True, timeout=120)
    return out


def sections(binary: Path) -> dict:
    """section name -> (address, size) of the allocated sections, from the ELF64 headers."""
    d = binary.read_bytes()
    shoff, = struct.unpack_from("<Q", d, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = hdrs[shstrndx][4]
    out = {}
    for name_off, _, flags, sh_addr, _, size, *_ in hdrs:
        if flags & 2:  # SHF_ALLOC
            name = d[strtab_off + name_off:d.index(b"\0", strtab_off + name_off)].decode()
            out[name] = (sh_addr, size)
    return out


def section_of(secs: dict, a: int):
    for name, (start, size) in secs.items():
        if start <= a < start + size:
            return name
    raise AssertionError(f"{a:#x} is in no allocated section")


def test_symtab_matches_go_nm(toolchain):
    for sample in SAMPLES:
        for variant in ("normal", "pie"):
            binary = build_sample(toolchain, sample, variant)
            where = f"{toolchain.version} {sample} {variant}"
            got = runtime_vars(binary)
            want = data_symbols(toolchain, binary)
            for key, sym in VARS.items():
                assert got[key].get("how") == "symtab", f"{where} {key}: {got[key]}"
                assert addr(got[key], f"{where} {key}") == want[sym], f"{where} {key}: {got[key]} != {want[sym]:#x}"


def test_decoded_equals_symtab_same_build(toolchain):
    builds = [(s, v) for s in SAMPLES for v in ("normal", "pie")] + [("mapwrites", "debug")]
    for sample, variant in builds:
        binary = build_sample(toolchain, sample, variant)
        with_syms = runtime_vars(binary)
        decoded = runtime_vars(gnu_strip(binary))
        where = f"{toolchain.version} {sample} {variant}"
        for key in VARS:
            want_how = "decoded from " + ("runtime.setGCPhase" if key == "gcphase" and variant == "debug"
                                          else DECODED_FROM[key])
            assert with_syms[key].get("how") == "symtab", f"{where} {key}: {with_syms[key]}"
            assert decoded[key].get("how") == want_how, f"{where} stripped {key}: {decoded[key]}"
            assert addr(decoded[key], f"{where} stripped {key}") == addr(with_syms[key], f"{where} {key}"), \
                f"{where} {key}: decoded {decoded[key]['addr']} != symtab {with_syms[key]['addr']}"


def test_ldflags_stripped_decoded_equals_symtab(toolchain):
    for sample in SAMPLES:
        normal_bin = build_sample(toolchain, sample, "normal")
        stripped_bin = build_sample(toolchain, sample, "stripped")
        normal, stripped = runtime_vars(normal_bin), runtime_vars(stripped_bin)
        normal_secs, stripped_secs = sections(normal_bin), sections(stripped_bin)
        assert normal_secs[".text"] == stripped_secs[".text"], f"{toolchain.version} {sample}: different code"
        for key in VARS:
            where = f"{toolchain.version} {sample} {key}"
            assert normal[key].get("how") == "symtab", f"{where}: {normal[key]}"
            assert stripped[key].get("how") == f"decoded from {DECODED_FROM[key]}", f"{where}: {stripped[key]}"
            sym, dec = addr(normal[key], where), addr(stripped[key], f"{where} stripped")
            sec = section_of(normal_secs, sym)
            (n_start, n_size), (s_start, s_size) = normal_secs[sec], stripped_secs[sec]
            assert n_size == s_size, f"{where}: {sec} is {n_size:#x} bytes normal, {s_size:#x} stripped"
            assert dec - s_start == sym - n_start, \
                f"{where}: decoded {dec:#x} is {sec}+{dec - s_start:#x}, symtab {sym:#x} is {sec}+{sym - n_start:#x}"
