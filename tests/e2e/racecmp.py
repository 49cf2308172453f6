"""The race detector next to gort: the same sample built with `go build -race`, its
"WARNING: DATA RACE" reports reduced to unordered pairs of user functions, and the same
pairs taken from `gort report --json` findings, so that the two can be compared.

A pair is the first user frame (not runtime.*, internal/*) of each side's stack: for a
map race the race detector's stack starts at runtime.mapassign_faststr (or mapaccess*),
gort's at the user's caller, so both give e.g.
{"main.(*Registry).Register", "main.(*Registry).refreshUnlocked"}.

  python3 tests/e2e/racecmp.py SAMPLE [ARGS...]   # prints the race detector's pairs
"""
import fcntl
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import BUILD_DIR, SOURCE_DIR, GoToolchain  # noqa: E402

NON_USER = ("runtime.", "internal/", "sync/atomic.")

# gort's finding kinds from the happens-before analysis (and the overlap analysis, which
# finds a subset of the same bugs).
UNSYNC_KINDS = ("unsynchronized-map-write", "unsynchronized-map-read-write")
ALL_MAP_KINDS = UNSYNC_KINDS + ("concurrent-map-write", "concurrent-map-read-write")


def is_user(fn: str) -> bool:
    return bool(fn) and not fn.startswith(NON_USER)


def pair(a: str, b: str) -> frozenset:
    """An unordered pair; the same function on both sides is a one-element set."""
    return frozenset((a, b))


def fmt_pairs(pairs) -> str:
    return "{" + ", ".join(" <-> ".join(sorted(p)) if len(p) == 2 else f"{next(iter(p))} <-> itself"
                           for p in sorted(pairs, key=sorted)) + "}"


# ---------------------------------------------------------------------------- race detector

@dataclass
class Access:
    op: str                  # "write" or "read"
    goroutine: str           # "7", "main"
    functions: list          # frames, innermost first, without the "()"

    @property
    def user_function(self):
        return next((f for f in self.functions if is_user(f)), None)


@dataclass
class Race:
    current: Access
    previous: Access
    text: str

    @property
    def pair(self):
        a, b = self.current.user_function, self.previous.user_function
        return pair(a, b) if a and b else None

    @property
    def kind(self):
        return "write-write" if self.current.op == self.previous.op == "write" else "read-write"


@dataclass
class RaceRun:
    returncode: int
    stdout: str
    stderr: str
    races: list = field(default_factory=list)

    @property
    def pairs(self) -> set:
        return {r.pair for r in self.races if r.pair}

    def pairs_of(self, kind) -> set:
        return {r.pair for r in self.races if r.pair and r.kind == kind}


_ACCESS = re.compile(r"^(Previous )?(write|read|Write|Read)(?: of size \d+)? at 0x[0-9a-f]+ by (?:goroutine (\d+)|(main) goroutine):$")
_FRAME = re.compile(r"^  (\S.*?)(?:\(\))?$")


def parse_races(text: str) -> list:
    """Every "WARNING: DATA RACE" block of TEXT (a -race program's stderr) as a Race. A
    block whose second stack the race runtime could not restore ("[failed to restore the
    stack]") keeps an empty function list on that side."""
    races = []
    for block in text.split("==================\n"):
        if "WARNING: DATA RACE" not in block:
            continue
        accesses, cur = [], None
        for line in block.splitlines():
            m = _ACCESS.match(line)
            if m:
                cur = Access(m[2].lower(), m[3] or m[4], [])
                accesses.append(cur)
                continue
            if not line.strip() or (line and not line.startswith(" ")):
                cur = None  # "Goroutine 7 (running) created at:" and the like end a stack
                continue
            if cur is not None:
                f = _FRAME.match(line)
                if f and not line.startswith("      "):
                    cur.functions.append(f[1])
        if len(accesses) >= 2:
            races.append(Race(accesses[0], accesses[1], block))
    return races


def build_race(tc: GoToolchain, name: str) -> Path:
    """samples/NAME built with `go build -race` by TC (cgo on), cached beside conftest's builds."""
    src = SOURCE_DIR / "samples" / name
    out_dir = BUILD_DIR / "samples" / tc.version
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{name}-race"
    newest_src = max(p.stat().st_mtime for p in src.rglob("*") if p.is_file())
    with open(out_dir / f".lock-{out.name}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out.exists() and out.stat().st_mtime >= newest_src):
            r = subprocess.run([str(tc.go), "build", "-race", "-o", str(out), "."], cwd=src,
                               env=tc.env(CGO_ENABLED="1"), capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                raise RuntimeError(f"go build -race of {name} with {tc.version} failed:\n{r.stderr}")
    return out


def run_race(exe: Path, *args, timeout=300) -> RaceRun:
    """Runs a -race binary with every race reported (halt_on_error=0) and parses them. The
    race runtime exits 66 when it found races (and would sleep a second before exiting
    without atexit_sleep_ms=0)."""
    env = dict(os.environ, GORACE="halt_on_error=0 exitcode=66 atexit_sleep_ms=0")
    r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)
    return RaceRun(r.returncode, r.stdout, r.stderr, parse_races(r.stderr))


# ---------------------------------------------------------------------------- gort

def access_function(access: dict):
    """The first user frame of a gort finding's access."""
    return next((f["function"] for f in access.get("stack") or [] if is_user(f["function"])), None)


def gort_pairs(report: dict, kinds=UNSYNC_KINDS) -> set:
    """The unordered pairs of user functions of REPORT's findings (gort report --json) of
    the given KINDS."""
    out = set()
    for f in report.get("findings", []):
        if f["kind"] not in kinds:
            continue
        fns = [access_function(a) for a in f["accesses"]]
        if len(fns) == 2 and all(fns):
            out.add(pair(*fns))
    return out


def trim_race_report(text: str, max_frames=3) -> str:
    """The first race block of TEXT with at most MAX_FRAMES frames per stack, for docs."""
    blocks = [b for b in text.split("==================\n") if "WARNING: DATA RACE" in b]
    if not blocks:
        return ""
    out, n = [], 0
    for line in blocks[0].splitlines():
        if not line.startswith(" "):
            n = 0
            out.append(line)
        elif not line.startswith("      "):
            n += 1
            if n <= max_frames:
                out.append(line)
        elif n <= max_frames:
            out.append(line)
    return "\n".join(out)


def _main(argv):
    from conftest import toolchain_for
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    tc = toolchain_for(None)
    run = run_race(build_race(tc, argv[0]), *argv[1:])
    print(f"{tc.version} {' '.join(argv)}: exit {run.returncode}, {len(run.races)} race report(s)")
    for r in run.races:
        print(f"  {r.kind}: {fmt_pairs([r.pair]) if r.pair else '(a stack was not restored)'}")
    print(trim_race_report(run.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
