"""`gort inspect --json` probe plans checked against the binaries themselves.

For samples/mapwrites built with each toolchain (normal, stripped, PIE, noswissmap on
1.24/1.25, checkptr, debug -N -l: the runtime too, so spills interleave), every probe address is checked independently of gort:
  * entries against `go tool nm` of the same unstripped file; for the Go-stripped build
    (-ldflags=-s -w, whose text is NOT byte-identical to the normal build: RIP-relative
    displacements to rodata move) against Go's own pclntab reader (`go tool addr2line`),
    and for a copy of the normal build stripped with `strip` (identical text) against the
    normal build's nm;
  * write_begin/write_end against the bytes at the address: a MOVB of a byte register to
    disp8(base) with disp 0x08 (hmap flags) or 0x22 (swiss writing), fed by the expected
    MOVZX / XOR $4 / AND $-5 / XOR $1 just before it;
  * returns are RET bytes.
Facts: ../shared/reference/go-runtime.md sections 1, 2, 4, 8.
"""
import json
import re
import shutil
import subprocess

import pytest

from conftest import BUILD_DIR, ElfImage, build_sample, go_nm, missing, run_gort

MAP_FUNCS = {
    "runtime.mapassign": "map-assign",
    "runtime.mapassign_fast32": "map-assign",
    "runtime.mapassign_fast32ptr": "map-assign",
    "runtime.mapassign_fast64": "map-assign",
    "runtime.mapassign_fast64ptr": "map-assign",
    "runtime.mapassign_faststr": "map-assign",
    "internal/runtime/maps.(*Map).PutSlot": "map-assign",
    "runtime.mapdelete": "map-delete",
    "runtime.mapdelete_fast32": "map-delete",
    "runtime.mapdelete_fast64": "map-delete",
    "runtime.mapdelete_faststr": "map-delete",
    "internal/runtime/maps.(*Map).Delete": "map-delete",
    "runtime.mapclear": "map-clear",
    "internal/runtime/maps.(*Map).Clear": "map-clear",
    "maps.clone": "map-clone",
    "runtime.mapclone2": "map-clone",
    "internal/runtime/maps.(*Map).Clone": "map-clone",
}
FAST_ASSIGN = [f"runtime.mapassign_{s}" for s in ("fast32", "fast32ptr", "fast64", "fast64ptr", "faststr")]
FLAG_DISP = {"hmap": 0x08, "swiss": 0x22}
REGS = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]


def inspect(binary):
    r = run_gort("inspect", binary, "--json", check=True)
    return json.loads(r.stdout)


def expected_impl(tc, variant):
    return "swiss" if tc.minor >= 24 and variant != "noswiss" else "hmap"


def decode_flag_store(img, addr):
    """(base register, disp, length) of `MOVB r8, disp8(base)` at ADDR, or None."""
    b = img.read(addr, 5)
    i, rex = 0, 0
    if 0x40 <= b[0] <= 0x4F:
        rex, i = b[0], 1
    if b[i] != 0x88:
        return None
    modrm = b[i + 1]
    mod, rm = modrm >> 6, modrm & 7
    if mod != 1:
        return None
    n = i + 2
    if rm == 4:  # SIB: only base-without-index is a plain field access
        sib = b[n]
        if (sib >> 3) & 7 != 4 or rex & 2:
            return None
        rm, n = sib & 7, n + 1
    base = REGS[rm + (8 if rex & 1 else 0)]
    return base, b[n], n + 1


def has_movzx_of(window, disp):
    """Whether WINDOW holds `MOVZX disp8(base), r32` (0f b6 modrm [sib] disp8) of DISP."""
    for k in range(len(window) - 3):
        if window[k] == 0x0F and window[k + 1] == 0xB6 and window[k + 2] >> 6 == 1:
            off = k + 4 if window[k + 2] & 7 == 4 else k + 3
            if off < len(window) and window[off] == disp:
                return True
    return False


def imm8_ops(window):
    """(reg-field, imm8) of every `83 /r ib` with a register operand in WINDOW."""
    out = []
    for k in range(len(window) - 2):
        if window[k] == 0x83 and window[k + 1] >> 6 == 3:
            out.append(((window[k + 1] >> 3) & 7, window[k + 2]))
    return out


def check_site(img, impl, site, kind, func):
    addr = int(site["address"], 16)
    dec = decode_flag_store(img, addr)
    assert dec, f"{func}: {kind} at {addr:#x} is not a MOVB reg8, disp8(base): {img.read(addr, 5).hex()}"
    base, disp, length = dec
    assert disp == FLAG_DISP[impl], f"{func}: {kind} at {addr:#x} stores to +{disp:#x}"
    assert site["disp"] == disp and site["length"] == length and site["map_reg"] == base, (func, site, dec)
    # The value comes from a MOVZX of the same field and an 8-bit-immediate op just before.
    window = img.read(addr - 24, 24)
    assert has_movzx_of(window, disp), f"{func}: no MOVZX of +{disp:#x} before {addr:#x}: {window.hex()}"
    ops = imm8_ops(window)
    if impl == "swiss":
        want = (6, 0x01)                                       # XORL $0x1
    else:
        want = (6, 0x04) if kind == "write_begin" else (4, 0xFB)  # XORL $0x4 / ANDL $-0x5
    assert want in ops, f"{func}: {kind} at {addr:#x} lacks the {want} op before it: {window.hex()}"


def check_plan(tc, variant, binary, plan, entries):
    """ENTRIES: symbol -> address as the independent reference for this binary."""
    impl = expected_impl(tc, variant)
    assert plan["map_impl"] == impl
    assert plan["warnings"] == [], plan["warnings"]  # includes the unplanned-flag-writer coverage check
    img = ElfImage(binary)
    probes = {p["function"]: p for p in plan["probes"]}
    assert len(probes) == len(plan["probes"]), "duplicate probes"

    for name, p in probes.items():
        assert name in entries, f"{name} probed but absent from the reference symbols"
        assert int(p["entry"], 16) == entries[name], f"{name}: entry {p['entry']} != {entries[name]:#x}"
        for r in p["returns"]:
            assert img.read(int(r, 16), 1) in (b"\xc3", b"\xc2"), f"{name}: return {r} is not a RET"
        for s in p["sites"]:
            check_site(img, impl, s, s["kind"], name)
        assert [s["address"] for s in p["sites"] if s["kind"] == "write_begin"] == p["write_begin"]
        assert [s["address"] for s in p["sites"] if s["kind"] == "write_end"] == p["write_end"]

    # Every map-write function the binary has is planned, with its role.
    for name, role in MAP_FUNCS.items():
        if name in entries:
            assert name in probes, f"{name} is in the binary but not in the plan"
            assert probes[name]["role"] == role
            if role in ("map-assign", "map-delete", "map-clear"):
                assert probes[name]["returns"], f"{name}: no RETs"
    for name in FAST_ASSIGN:
        if name in probes:
            assert probes[name]["write_begin"] and probes[name]["write_end"], f"{name}: missing flag sites"
            assert probes[name]["map_reg"] == "rbx"
    assert any(p["role"] == "map-assign" and p["write_begin"] and p["write_end"] for p in plan["probes"])
    # Where the flag is written, per implementation (reference 2.3).
    if impl == "hmap":
        for name in ("runtime.mapassign", "runtime.mapdelete_fast64", "runtime.mapclear"):
            if name in probes:
                assert probes[name]["write_begin"] and probes[name]["write_end"], name
    else:
        for name in ("internal/runtime/maps.(*Map).Delete", "internal/runtime/maps.(*Map).Clear"):
            if name in probes:
                assert probes[name]["write_begin"] and probes[name]["write_end"], name
                assert probes[name]["map_reg"] == "rax"

    wb = sorted(n for n in entries if re.fullmatch(r"runtime\.gcWriteBarrier[1-8]", n))
    assert wb, "no gcWriteBarrier1..8 in a 1.21+ binary"
    assert sorted(n for n, p in probes.items() if p["role"] == "write-barrier") == wb
    cp = sorted(n for n in entries if n in ("runtime.checkptrAlignment", "runtime.checkptrArithmetic"))
    assert sorted(n for n, p in probes.items() if p["role"] == "checkptr") == cp
    return probes


def addr2line_names(tc, binary, addrs):
    """Go's own pclntab reader: function name at each address (works on stripped files)."""
    r = subprocess.run([str(tc.go), "tool", "addr2line", str(binary)], input="".join(f"{a:#x}\n" for a in addrs),
                       capture_output=True, text=True, env=tc.env(), timeout=300, check=True)
    lines = r.stdout.splitlines()
    assert len(lines) == 2 * len(addrs), r.stdout
    return lines[0::2]


@pytest.mark.parametrize("variant", ["normal", "pie", "noswiss", "checkptr", "debug"])
def test_probe_plan_unstripped(toolchain, variant):
    binary = build_sample(toolchain, "mapwrites", variant)
    plan = inspect(binary)
    probes = check_plan(toolchain, variant, binary, plan, go_nm(toolchain, binary))
    if variant == "checkptr":
        assert any(p["role"] == "checkptr" for p in probes.values()), "checkptr build without checkptr probes"
    else:
        assert not any(p["role"] == "checkptr" for p in probes.values())
    if variant == "pie":
        assert plan["pie"] is True


def test_probe_plan_go_stripped(toolchain):
    """-ldflags=-s -w: no symbols; entries checked with Go's pclntab reader."""
    binary = build_sample(toolchain, "mapwrites", "stripped")
    plan = inspect(binary)
    assert plan["stripped"] is True
    entries = {p["function"]: int(p["entry"], 16) for p in plan["probes"]}
    # Entry is the function's first byte: addr2line names it there and not one byte before
    # (the INT3 padding belongs to the previous function).
    names_at = addr2line_names(toolchain, binary, list(entries.values()))
    names_before = addr2line_names(toolchain, binary, [a - 1 for a in entries.values()])
    for (name, addr), at, before in zip(entries.items(), names_at, names_before):
        assert at == name, f"{name}: entry {addr:#x} is in {at}"
        assert before != name, f"{name}: entry {addr:#x} is not the function's start"
    # Presence of optional functions is checked against the normal build of the same
    # toolchain (same code, so the same functions survive dead-code elimination).
    ref = go_nm(toolchain, build_sample(toolchain, "mapwrites", "normal"))
    present = {n: entries.get(n, -1) for n in ref}
    check_plan(toolchain, "stripped", binary, plan, {**present, **entries})
    for name in list(MAP_FUNCS) + [n for n in ref if n.startswith("runtime.gcWriteBarrier")]:
        assert (name in ref) == (name in entries), f"{name}: in normal build {name in ref}, in stripped plan {name in entries}"


def test_probe_plan_strip_tool(toolchain):
    """The normal build with .symtab removed by `strip`: identical text, so nm applies exactly."""
    strip = shutil.which("strip")
    if not strip:
        missing("strip (binutils)")
    normal = build_sample(toolchain, "mapwrites", "normal")
    stripped = BUILD_DIR / "samples" / toolchain.version / "mapwrites-normal-strip"
    subprocess.run([strip, "-o", str(stripped), str(normal)], check=True)
    plan = inspect(stripped)
    assert plan["stripped"] is True
    check_plan(toolchain, "normal", stripped, plan, go_nm(toolchain, normal))
    assert plan["probes"] == inspect(normal)["probes"]
