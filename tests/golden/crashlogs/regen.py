#!/usr/bin/env python3
"""Crash-log goldens for `gort triage` (tests/e2e/test_triage.py::test_golden).

  regen.py                 rewrite every NAME.expected.json from NAME.log with the built gort
  regen.py --capture       first capture the logs again by running samples/crashkinds
                           (Go 1.21, 1.23, newest; each GOTRACEBACK mode), then rewrite

The stored logs are fixed inputs: the expectations change only when gort does. Review the
diff of the *.expected.json files by hand before committing.
GORT_BUILD_DIR picks the gort to run (default build/).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[2]
GORT = Path(os.environ.get("GORT_BUILD_DIR", SRC / "build")) / "bin" / "gort"
CACHE = Path(os.environ.get("GORT_CACHE", "/var/cache/gort"))

# (name, go minor, mode, GOTRACEBACK)
CAPTURES = [
    *[(f"writes-go1.{v}-{tb}", v, "writes", tb) for v in (21, 23, 26) for tb in ("single", "all", "system", "crash")],
    *[(f"{m}-go1.{v}-crash", v, m, "crash") for v in (21, 26) for m in ("readwrite", "iterwrite", "clonewrite")],
    *[(f"readwrite-go1.{v}-single", v, "readwrite", "single") for v in (23,)],
    *[(f"freeptr-go1.{v}-{tb}", v, "freeptr", tb) for v in (21, 26) for tb in ("single", "crash")],
    *[(f"fault-go1.{v}-{tb}", v, "fault", tb) for v in (21, 26) for tb in ("single", "crash")],
    ("many-go1.26-crash", 26, "many", "crash"),
    ("many-go1.23-all", 23, "many", "all"),
]


def go_for(minor):
    return CACHE / "go" / f"1.{minor}" / "usr" / "lib" / f"go-1.{minor}" / "bin" / "go"


def capture():
    out = CACHE / "crashkinds"
    out.mkdir(parents=True, exist_ok=True)
    for minor in sorted({c[1] for c in CAPTURES}):
        go = go_for(minor)
        env = dict(os.environ, GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-mod=mod",
                   GOROOT=str(go.parent.parent), GOCACHE=str(CACHE / "gocache"))
        subprocess.run([str(go), "build", "-o", str(out / f"crashkinds-1.{minor}"), "."],
                       cwd=SRC / "samples" / "crashkinds", env=env, check=True)
    for name, minor, mode, tb in CAPTURES:
        for attempt in range(20):
            r = subprocess.run([str(out / f"crashkinds-1.{minor}"), mode], capture_output=True, text=True,
                               env=dict(os.environ, GOTRACEBACK=tb), timeout=60)
            # Keep logs whose goroutines are complete for the mode (the interesting shape).
            if "fatal error" in r.stderr or "unexpected fault" in r.stderr:
                break
        (HERE / f"{name}.log").write_text(r.stderr)
    # Derived inputs: a log-collector prefix on every line, and a cut-off log.
    base = (HERE / "writes-go1.26-crash.log").read_text().splitlines(keepends=True)
    pre = [f"2026-11-29T08:25:{i // 60 % 60:02d}.{i % 1000:03d}Z stderr F {l}" for i, l in enumerate(base)]
    (HERE / "prefixed-timestamps-go1.26-crash.log").write_text("".join(pre))
    sys_ = [f"Nov 29 08:25:19 host app[{4242}]: {l}" for l in (HERE / "writes-go1.21-crash.log").read_text().splitlines(keepends=True)]
    (HERE / "prefixed-syslog-go1.21-crash.log").write_text("".join(sys_))
    text = "".join(base)
    cut = text.index("\ngoroutine 2 ") if "\ngoroutine 2 " in text else len(text) // 2
    (HERE / "truncated-go1.26-crash.log").write_text(text[: cut // 2 + 40])
    # Frames without file lines (a collector that dropped indented lines): for --binary.
    nofiles = [l for l in (HERE / "writes-go1.26-all.log").read_text().splitlines(keepends=True) if not l.startswith("\t")]
    (HERE / "nofiles-go1.26-all.log").write_text("".join(nofiles))


def expected(log: Path) -> Path:
    return log.with_name(log.name[: -len(".log")] + ".expected.json")


def run(log: Path) -> str:
    r = subprocess.run([str(GORT), "triage", "--json", str(log)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit(f"gort triage {log.name} exited {r.returncode}: {r.stderr}")
    return r.stdout


def main():
    if "--capture" in sys.argv:
        capture()
    for log in sorted(HERE.glob("*.log")):
        expected(log).write_text(run(log))
        print("wrote", expected(log).name)


if __name__ == "__main__":
    main()
