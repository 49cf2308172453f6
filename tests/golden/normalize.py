"""Normalise a whole `lldb -b` transcript so that it can be compared with a `.golden` file.

Used by tests/e2e/test_golden.py and scripts/regen-golden (stdlib only). Everything that
varies from run to run, machine to machine or Go patch release to patch release is
replaced by a placeholder; everything else (our sample's line numbers, counts, map
contents, messages, column alignment) is kept exactly. Rules, in the order applied:

1. Paths. Given directories are replaced, longest first:
     the per-test temporary dir (rendered scripts, redirected output) -> `$TMP/`
     the build dir (plugin, sample binaries)                          -> `$BUILD/`
     samples/<name>/ of the source tree (sample sources)               -> `$SAMPLE/`
     the source tree                                                   -> `$SRC/`
   and any Go's source dir (`.../go/src/`, `.../go-1.NN/src/`: /usr/local/go/src/,
   /var/cache/gort/go/1.23/usr/lib/go-1.23/src/)                       -> `$GOROOT/`.
2. Go version strings: `go1.26.8`, `go1.23`, `go1.24rc1`, and a build's experiment
   suffix (`go1.24.4 X:noswissmap`) -> `goX.Y.Z` (noswissmap builds share the hmap golden).
3. Line numbers in Go's own sources, which move between patch releases:
   `$GOROOT/x/y.go:123[:7]` -> `$GOROOT/x/y.go:N`; a bare `y.go:123` / `y.s:123` (LLDB
   frame lines print basenames) whose basename is not a sample file -> `y.go:N`; and in
   JSON, the `"line": 123` of an object whose `"file"` is under `$GOROOT/` -> `"line": N`.
   Line numbers in sample files are ours and are kept. Go 1.24/1.25 select their map
   sources by build tag with `_swiss`/`_noswiss` file suffixes, which 1.23 did not have
   and 1.26 dropped: `runtime_faststr_swiss.go` -> `runtime_faststr.go`,
   `map_faststr_noswiss.go` -> `map_faststr.go`.
3b. `gort info`'s probe counts (`probes   5 map-write functions, 8 write-barrier
   entries`) -> `probes   N map-write functions, N write-barrier entries`: they count the
   runtime's map-write functions and gcWriteBarrierN variants the linker kept, which
   differ within one map implementation (Go 1.21: 4 and 6, 1.22: 4 and 8, 1.23: 5 and 8
   for samples/goroutines); tests/e2e/test_plugin.py checks the numbers against
   `gort inspect`.
4. Process ids: `Process 1234 ...` (LLDB) and `in process 1234` (gort's memory errors)
   -> `Process PID` / `in process PID`.
5. Thread ids (Linux tids), numbered by first appearance: `thread 1234]` (gort bt),
   `"thread": 1234` (JSON), `tid = 1234` (LLDB), and the THREAD column of the
   `gort goroutines` table -> `TID1`, `TID2`, ... LLDB's own thread index
   (`thread #5`: which OS thread runs main's goroutine varies) -> `thread #N`. The thread
   of gort's break/watch hit lines (`gort: goroutine 1 thread 1234 assign ...`) -> `TID`,
   unnumbered: the scheduler moves a goroutine between threads from one hit to the next.
6. Goroutine ids (goid caches are per P: they vary run to run), numbered by first
   appearance: the GOID column of the `gort goroutines` table, `goroutine 20 [` (gort bt
   header), `"goid": 20` (JSON) -> `G1`, `G2`, ... A goid the user typed (`gort bt
   999999`) and the error about it are kept literally.
   Table columns are replaced width-preserving (right-aligned in the column's width), so
   the golden still shows the table's alignment.
7. Hex numbers of 5 or more significant digits (>= 0x10000: addresses of code, data,
   heap, goroutines, type descriptors) -> `0xADDR`; smaller ones (`0x10`, `flags=0x0`,
   `status = 0 (0x00000000)`) are literal values and are kept.
8. Times and durations (`1.5s`, `12ms`, `300us`, `7ns`) -> `T`.
9. Lines LLDB prints that vary by environment are kept, with the rules above applied
   (`Process PID launched: '$BUILD/...' (x86_64)`). LLDB's asynchronous diagnostics
   (`warning: This version of LLDB has no plugin for the language "go". ...`, printed by
   its event thread the first time a Go frame is shown, so anywhere among the next
   commands' output) are moved, once each, to the end under a
   `--- asynchronous LLDB diagnostics` line. Trailing whitespace is stripped from every
   line (LLDB's source listing pads lines).

Usage: normalize.py [--dir NAME=PATH ...] [--sample-file BASENAME ...] < raw > normalised
"""
from __future__ import annotations

import argparse
import re
import sys

GOROOT_RE = re.compile(r"(?:/[\w.+@-]+)*?/go(?:-1\.\d+)?/src/")
GO_VERSION_RE = re.compile(r"\bgo1\.\d+(?:\.\d+)?(?:(?:rc|beta)\d+)?\b(?: X:[\w,]+)?")
MAP_SOURCE_SUFFIX_RE = re.compile(r"(\w)_(?:no)?swiss\.go\b")
PROBE_COUNTS_RE = re.compile(r"^probes   \d+ map-write functions, \d+ write-barrier entries$")
GOROOT_LINE_RE = re.compile(r"(\$GOROOT/[^\s:'\"]+\.(?:go|s)):\d+(?::\d+)?")
BARE_LINE_RE = re.compile(r"(?<![\w/$.-])([\w.-]+\.(?:go|s)):\d+(?::\d+)?")
JSON_FILE_RE = re.compile(r'"file": "([^"]*)"')
JSON_LINE_RE = re.compile(r'^(\s*"line": )\d+')
PID_RE = re.compile(r"\bProcess \d+\b")
GORT_PID_RE = re.compile(r"\bin process \d+\b")
LLDB_THREAD_INDEX_RE = re.compile(r"\bthread #\d+")
TID_RES = [re.compile(r"(\bthread )(\d+)(\])"), re.compile(r'("thread": )(\d+)\b'),
           re.compile(r"(\btid = )(\d+)\b")]
HIT_TID_RE = re.compile(r"^(gort: goroutine \d+ thread )\d+ ")
GOID_RES = [re.compile(r"(\bgoroutine )(\d+)( \[)"), re.compile(r'("goid": )(\d+)\b')]
HEX_RE = re.compile(r"\b0x([0-9a-fA-F]+)\b")
TIME_RE = re.compile(r"\b\d+(?:\.\d+)?(?:ns|us|µs|ms)\b|\b\d+\.\d+s\b")
ASYNC_DIAGNOSTIC_RE = re.compile(r'^warning: This version of LLDB has no plugin for the language "\w+"')
TABLE_HEADER_RE = re.compile(r"^ +GOID  STATUS +WAIT REASON +THREAD  WHERE$")


class Ids:
    """Stable names for varying ids, by order of first appearance."""

    def __init__(self, prefix: str):
        self.prefix, self.seen = prefix, {}

    def __call__(self, raw: str) -> str:
        return self.seen.setdefault(raw, f"{self.prefix}{len(self.seen) + 1}")


def _in_width(token: str, field: str) -> str:
    """TOKEN right-aligned in FIELD's width (a right-aligned numeric column)."""
    return token.rjust(len(field)) if len(field) >= len(token) else token


def normalize(text: str, dirs: dict | None = None, sample_files=("main.go",)) -> str:
    """Returns TEXT with the rules of the module docstring applied.

    DIRS maps a placeholder (`$TMP`, `$BUILD`, `$SAMPLE`, `$SRC`) to an absolute dir."""
    dirs = {k: v.rstrip("/") for k, v in (dirs or {}).items() if v}
    goids, tids = Ids("G"), Ids("TID")
    sample_files = set(sample_files)
    out, diagnostics = [], []
    table_cols = None  # (goid_end, thread_end) while inside a `gort goroutines` table
    goroot_json_obj = False
    for line in text.splitlines():
        if ASYNC_DIAGNOSTIC_RE.match(line):
            if line.rstrip() not in diagnostics:
                diagnostics.append(line.rstrip())
            continue
        # 1. paths, longest first so that $BUILD wins over $SRC.
        for name, d in sorted(dirs.items(), key=lambda kv: -len(kv[1])):
            line = line.replace(d + "/", name + "/").replace(d, name)
        line = GOROOT_RE.sub("$GOROOT/", line)
        # 2. Go versions.
        line = GO_VERSION_RE.sub("goX.Y.Z", line)
        # 3. Go's own line numbers.
        line = MAP_SOURCE_SUFFIX_RE.sub(r"\1.go", line)
        line = GOROOT_LINE_RE.sub(r"\1:N", line)
        line = BARE_LINE_RE.sub(lambda m: m[0] if m[1] in sample_files else f"{m[1]}:N", line)
        if m := JSON_FILE_RE.search(line):
            goroot_json_obj = m[1].startswith("$GOROOT/")
        elif goroot_json_obj and JSON_LINE_RE.match(line):
            line = JSON_LINE_RE.sub(r"\1N", line)
            goroot_json_obj = False
        elif line.strip().startswith("}"):
            goroot_json_obj = False
        line = PROBE_COUNTS_RE.sub("probes   N map-write functions, N write-barrier entries", line)
        # 4. pids.
        line = PID_RE.sub("Process PID", line)
        line = GORT_PID_RE.sub("in process PID", line)
        # 5, 6. the gort goroutines table: columns located from its header.
        if TABLE_HEADER_RE.match(line):
            goid_end = line.index("GOID") + 4
            thread_end = line.index("THREAD") + 6
            table_cols = (goid_end, thread_end)
        elif table_cols and re.match(r"^[* ] +\d+  ", line):
            goid_end, thread_end = table_cols
            head, tail = line[:thread_end], line[thread_end:]
            if (m := re.search(r"( +)(\d+)$", head)) and tail.startswith("  "):
                head = head[:m.start()] + _in_width(tids(m[2]), m[0])
            goid = head[1:goid_end]
            line = head[0] + _in_width(goids(goid.strip()), goid) + head[goid_end:] + tail
        elif not line.startswith(("*", " ")) or not line.strip():
            table_cols = None
        for r in TID_RES:
            line = r.sub(lambda m: m[1] + tids(m[2]) + (m[3] if m.lastindex >= 3 else ""), line)
        line = LLDB_THREAD_INDEX_RE.sub("thread #N", line)
        line = HIT_TID_RE.sub(r"\1TID ", line)
        for r in GOID_RES:
            line = r.sub(lambda m: m[1] + goids(m[2]) + (m[3] if m.lastindex >= 3 else ""), line)
        # 7. addresses.
        line = HEX_RE.sub(lambda m: "0xADDR" if int(m[1], 16) >= 0x10000 else m[0], line)
        # 8. times.
        line = TIME_RE.sub("T", line)
        out.append(line.rstrip())
    if diagnostics:
        out += ["--- asynchronous LLDB diagnostics", *diagnostics]
    return "\n".join(out) + ("\n" if out else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", action="append", default=[], metavar="NAME=PATH",
                    help="replace PATH by NAME ($TMP, $BUILD, $SAMPLE, $SRC)")
    ap.add_argument("--sample-file", action="append", default=[], metavar="BASENAME",
                    help="a source file basename whose line numbers are kept (default main.go)")
    a = ap.parse_args()
    dirs = dict(d.split("=", 1) for d in a.dir)
    sys.stdout.write(normalize(sys.stdin.read(), dirs, a.sample_file or ("main.go",)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
