"""gort symbolize against the Go toolchain's own answers.

(a) Every function entry `go tool nm` lists for samples/mapwrites (normal, stripped, PIE,
    and noswissmap on 1.24/1.25) symbolizes to that function's name.
(b) On the toolchain's own `compile` binary (a large real Go program, ~20k functions),
    as built and stripped with `objcopy --strip-all`, gort agrees with
    `go tool addr2line` on every one of 2,500+ deterministically sampled PCs.
(c) The inlined frames agree exactly with what runtime.CallersFrames reports inside the
    running program itself (addr2line knows nothing of inlining, so (b) cannot check them).
    Go 1.23+ expands the whole inline chain of a bare PC; 1.21/1.22 give only the
    innermost frame, so there only that one is compared.

What `go tool addr2line` prints (cmd/addr2line/main.go, debug/gosym): it has no notion of
inlining. Its function is the *physical* function containing the PC (the function-table
entry), while its file:line comes from that function's pcfile/pcln tables at the PC, which
hold the position of the *innermost* inlined callee. So for our frames (innermost first)
the rule is: addr2line function == frames[-1].function, addr2line file:line ==
frames[0].file:frames[0].line. For a PC in no function it prints "?" and "?:0".
"""
import bisect
import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD_DIR, build_sample, go_nm, go_tool, missing, run_gort, variants_for

SEED = 20240611


def symbolize_json(binary, pcs):
    inp = "".join(f"{pc:#x}\n" for pc in pcs)
    r = run_gort("symbolize", binary, "-", "--json", input=inp, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [int(e["pc"], 16) for e in out] == list(pcs)
    return out


# ---------------------------------------------------------------------------------------
# (a) function entries of the sample

def test_sample_function_entries(toolchain):
    for variant in variants_for(toolchain):
        binary = build_sample(toolchain, "mapwrites", variant)
        # -s -w drops .symtab but leaves the text layout alone: take the names from the
        # unstripped build of the same source.
        nm_binary = build_sample(toolchain, "mapwrites", "normal") if variant == "stripped" else binary
        # runtime.text/etext are linker labels at the text bounds, not functions. Symbol
        # names are the ELF ones, normalised to pclntab's (elf_name).
        entries = sorted({(a, elf_name(n)) for a, _, n in text_symbols(toolchain, nm_binary, sized=False)
                          if n not in ("runtime.text", "runtime.etext")})
        assert len(entries) > 1000, f"{variant}: only {len(entries)} text symbols"
        out = symbolize_json(binary, [a for a, _ in entries])
        wrong = [(hex(a), n, e["frames"][-1]["function"] if e["frames"] else None)
                 for (a, n), e in zip(entries, out)
                 if not e["frames"] or elf_name(e["frames"][-1]["function"]) != n]
        assert not wrong, f"{toolchain.label} {variant}: {len(wrong)} of {len(entries)} entries wrong, e.g. {wrong[:10]}"
        # An entry PC is never inside an inlined body.
        assert all(len(e["frames"]) == 1 and not e["frames"][0]["inlined"] for e in out)
        mains = [e for (a, n), e in zip(entries, out) if n == "main.main"]
        assert mains and mains[0]["frames"][0]["file"].endswith("samples/mapwrites/main.go")


def test_human_output_and_unknown_pcs(toolchain):
    binary = build_sample(toolchain, "mapwrites", "normal")
    main = go_nm(toolchain, binary)["main.main"]
    r = run_gort("symbolize", binary, hex(main), str(main), "0x10")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{main:#x} main.main ") and "/samples/mapwrites/main.go:" in lines[0]
    assert lines[1] == lines[0]  # decimal and hex name the same PC
    assert lines[2] == "0x10 ?? ??:0"
    assert "1 of 3 PCs are in no Go function" in r.stderr
    bad = run_gort("symbolize", binary, "0xzz")
    assert bad.returncode == 2 and "not a PC" in bad.stderr


# ---------------------------------------------------------------------------------------
# (b) agreement with go tool addr2line on the toolchain's compile binary

def compile_binary(tc) -> Path:
    """An unstripped `compile` for TC: the toolchain's own when it has symbols, else (Debian
    ships its tools stripped) cmd/compile rebuilt with TC, cached next to the samples."""
    own = Path(go_tool(tc, "-n", "compile").strip())
    if subprocess.run([str(tc.go), "tool", "nm", "-n", str(own)], capture_output=True, env=tc.env()).returncode == 0:
        return own
    out = BUILD_DIR / "samples" / tc.version / "compile"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        subprocess.run([str(tc.go), "build", "-o", str(tmp), "cmd/compile"], env=tc.env(), check=True,
                       capture_output=True, timeout=1200)
        tmp.rename(out)
    return out


def text_symbols(tc, binary, sized=True):
    """[(addr, size, name)] of text symbols (with SIZED, only those of non-zero size), by
    address. Names may contain spaces ("interface {}"), so split at most 3 times."""
    syms = []
    for line in go_tool(tc, "nm", "-size", "-sort", "address", binary).splitlines():
        p = line.split(None, 3)
        if len(p) == 4 and p[2] in ("T", "t") and (int(p[1]) > 0 or not sized):
            syms.append((int(p[0], 16), int(p[1]), p[3]))
    return syms


def elf_name(name):
    """A function name as the ELF symbol table spells it: ABI0 (assembly) functions get a
    ".abi0" suffix there only (cmd/link, so both ABIs can have symbols), and the linker
    writes the middle dot of compiler-generated names ("type:.eq.T·7") as "."."""
    return name.removesuffix(".abi0").replace("\u00b7", ".")


def sample_pcs(syms, n, seed):
    """N PCs: a third at function entries, a third uniform inside a random function (mid-
    function PCs), a third uniform over the whole text range (large functions weigh more,
    and alignment padding between functions is included)."""
    rng = random.Random(seed)
    lo, hi = syms[0][0], syms[-1][0] + syms[-1][1]
    pcs = []
    for i in range(n):
        a, s, _ = rng.choice(syms)
        pcs.append(a if i % 3 == 0 else a + rng.randrange(s) if i % 3 == 1 else rng.randrange(lo, hi))
    return pcs


def addr2line(tc, binary, pcs):
    r = subprocess.run([str(tc.go), "tool", "addr2line", str(binary)], input="".join(f"{pc:#x}\n" for pc in pcs),
                       capture_output=True, text=True, env=tc.env(), timeout=600, check=True)
    lines = r.stdout.splitlines()
    assert len(lines) == 2 * len(pcs)
    return [(lines[2 * i], lines[2 * i + 1]) for i in range(len(pcs))]


@pytest.mark.parametrize("form", ["as-built", "stripped"])
def test_addr2line_agreement_on_compile(toolchain, form, tmp_path):
    objcopy = shutil.which("objcopy")
    if form == "stripped" and not objcopy:
        missing("objcopy (binutils)")
    unstripped = compile_binary(toolchain)
    syms = text_symbols(toolchain, unstripped)
    assert len(syms) > 10000, "compile should be a large binary"
    binary = unstripped
    if form == "stripped":
        # --strip-all drops .symtab/.strtab and DWARF; .gopclntab, .noptrdata and (1.26)
        # .go.module are allocated sections and survive with their names. Addresses are
        # unchanged, so the unstripped symbols still describe it.
        binary = tmp_path / "compile-stripped"
        subprocess.run([objcopy, "--strip-all", str(unstripped), str(binary)], check=True)
        assert subprocess.run([str(toolchain.go), "tool", "nm", str(binary)], capture_output=True,
                              env=toolchain.env()).returncode != 0, "objcopy left symbols behind"
    pcs = sample_pcs(syms, 3000, SEED)
    theirs = addr2line(toolchain, binary, pcs)
    ours = symbolize_json(binary, pcs)
    mismatches = []
    inlined = padding = 0
    for pc, (fn, fileline), e in zip(pcs, theirs, ours):
        fr = e["frames"]
        mine = (fr[-1]["function"], f'{fr[0]["file"]}:{fr[0]["line"]}') if fr else ("?", "?:0")
        inlined += len(fr) > 1
        if fileline == ":-1" and mine[1] == "?:0":
            # No pcfile/pcln value at this PC: the alignment padding after a function's last
            # instruction, or a linker marker without code (go:textfipsend in 1.24+).
            # debug/gosym prints the -1 "no value" raw; gort says "?:0" like
            # runtime.funcline1. Same answer, other spelling; the function must still agree.
            padding += 1
            fileline = "?:0"
        if (fn, fileline) != mine:
            mismatches.append((hex(pc), (fn, fileline), mine))
    # Exact agreement on every PC: both read the same tables.
    assert not mismatches, f"{len(mismatches)} of {len(pcs)} differ, e.g. {mismatches[:5]}"
    assert padding < len(pcs) // 10
    assert inlined > 100, f"only {inlined} sampled PCs were in inlined code: the sample misses inlining"


def test_self_benchmark_reports(toolchain):
    r = run_gort("symbolize", compile_binary(toolchain), "--self-benchmark", "200000", check=True)
    j = json.loads(r.stdout)
    assert j["pcs"] == 200000 and j["unresolved"] == 0 and j["pcs_per_sec"] > 0 and j["load_ms"] > 0


# ---------------------------------------------------------------------------------------
# (c) inlined frames against runtime.CallersFrames in the program itself

CALLERSFRAMES_PROG = r'''
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// Reads PCs (hex) and prints, for each, the frames runtime.CallersFrames gives for the
// instruction at that PC: one "function<TAB>file<TAB>line" per frame, then "--".
func main() {
	m := map[string]int{}
	m["x"]++ // keep some map code and its inlining around
	keys := []string{"b", "a"}
	sort.Strings(keys)
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		pc, err := strconv.ParseUint(strings.TrimPrefix(in.Text(), "0x"), 16, 64)
		if err != nil {
			panic(err)
		}
		// CallersFrames takes return addresses and looks up pc-1; the trailing 0 makes it
		// expand the inlined callers of the first PC (it only does so when more PCs follow).
		frames := runtime.CallersFrames([]uintptr{uintptr(pc) + 1, 0})
		for {
			f, more := frames.Next()
			fmt.Fprintf(out, "%s\t%s\t%d\n", f.Function, f.File, f.Line)
			if !more {
				break
			}
		}
		fmt.Fprintln(out, "--")
	}
	out.Flush()
}
'''


def print_name(name):
    """runtime.funcNameForPrint (funcNamePiecesForPrint): everything from the first "[" to
    the last "]" prints as "[...]"."""
    i = name.find("[")
    j = name.rfind("]")
    return name if i < 0 or j < i else name[:i] + "[...]" + name[j + 1:]


def test_inlined_frames_match_callersframes(toolchain, tmp_path):
    src = tmp_path / "cf"
    src.mkdir()
    (src / "go.mod").write_text("module cf\n\ngo 1.21\n")
    (src / "main.go").write_text(CALLERSFRAMES_PROG)
    exe = tmp_path / "cf.bin"
    subprocess.run([str(toolchain.go), "build", "-o", str(exe), "."], cwd=src, env=toolchain.env(), check=True,
                   capture_output=True, timeout=600)
    syms = text_symbols(toolchain, exe)
    # CallersFrames looks the function up at pc+1 (it takes return addresses), so keep PCs
    # whose next byte is still in the same function: not its last byte, not in padding.
    starts = [a for a, _, _ in syms]

    def inside(pc):
        a, s, _ = syms[bisect.bisect_right(starts, pc) - 1]
        return a <= pc < a + s - 1
    pcs = [pc for pc in sample_pcs(syms, 4000, SEED) if inside(pc)]
    r = subprocess.run([str(exe)], input="".join(f"{pc:#x}\n" for pc in pcs), capture_output=True, text=True,
                       timeout=300, check=True)
    theirs, cur = [], []
    for line in r.stdout.splitlines():
        if line == "--":
            theirs.append(cur)
            cur = []
        elif line != "\t\t0":  # the trailing 0 PC gives an empty Frame{}: skip
            cur.append(tuple(line.split("\t")))
    assert len(theirs) == len(pcs)
    ours = symbolize_json(exe, pcs)
    # Before Go 1.23, CallersFrames expands inlined callers only through the virtual PCs
    # runtime.Callers puts in the list; for a bare PC it reports just the innermost frame
    # (runtime/symtab.go Frames.Next@go1.22.12). There, compare that frame only.
    full_chain = toolchain.minor >= 23
    compared = inlined = elided = 0
    mismatches = []
    for pc, t, e in zip(pcs, theirs, ours):
        mine = [(print_name(f["function"]), f["file"], str(f["line"])) for f in e["frames"]]
        if not full_chain:
            mine = mine[:1]
        # runtime.funcname returns "" for nameOff 0, so the runtime cannot name whichever
        # function comes first in funcnametab (internal/abi.BoundsDecode in 1.26); gort
        # (like debug/gosym) reads the name at offset 0. Compare file:line only there.
        t = [(mine[k][0] if f[0] == "" and k < len(mine) else f[0], f[1], f[2]) for k, f in enumerate(t)]
        if len(t) == len(mine):
            compared += 1
            inlined += len(mine) > 1
            if t != mine:
                mismatches.append((hex(pc), t, mine))
            continue
        # CallersFrames skips caller frames that are wrappers (abi.FuncIDWrapper, e.g. the
        # deferwrap closures, via elideWrapperCalling in runtime/symtab.go); gort lists
        # every frame. Then the runtime's frames must be ours, in order, minus some outer
        # ones, with the innermost identical.
        it = iter(mine)
        if t and t[0] == mine[0] and len(t) < len(mine) and all(f in it for f in t):
            elided += 1
        else:
            mismatches.append((hex(pc), t, mine))
    assert not mismatches, f"{len(mismatches)} differ, e.g. {mismatches[:3]}"
    assert elided <= 0.02 * len(pcs), f"{elided} of {len(pcs)} PCs had frames elided: more than wrappers explain"
    if full_chain:
        assert inlined > 50, f"only {inlined} PCs with inlined frames"
    else:
        assert sum(len(e["frames"]) > 1 for e in ours) > 50, "the sample misses inlined code"
