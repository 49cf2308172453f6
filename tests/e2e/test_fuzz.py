"""Fuzzing and sanitizers (docs/testing.md, "Fuzzing and sanitizers").

scripts/build-fuzz builds, with clang, into $GORT_FUZZ_BUILD_DIR (default: the build
directory with "-fuzz" appended, e.g. build-fuzz/): the unit tests under AddressSanitizer
+ UBSan and one libFuzzer target per reader of untrusted input (tests/fuzz/fuzz_*.cpp).
It is run every time (ninja rebuilds only what changed; a no-op takes well under a second).

- gort_unit_tests_asan: every unit test under ASan + UBSan (aborting at the first report)
  with LeakSanitizer on; it must pass.
- each fuzz target for GORT_FUZZ_SECONDS (20) over its seed corpus tests/fuzz/corpus/<t>/
  (crashlog: the golden crash logs), plus seeds generated here from the mapcount sample
  built with the newest Go (compact_pclntab in tests/fuzz/make_seeds.py) when one is
  installed: no crash, no sanitizer report, no leak, no input slower than -timeout. The
  real binaries themselves (1.7 MB stripped, 2.5 MB with DWARF) run once through
  fuzz_elf and fuzz_pclntab: as mutation seeds they would cut the executions per second
  tenfold. Executions per second and inputs run are printed per target.

No Go version is under test here: the newest installed Go only builds the sample.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BUILD_DIR, SOURCE_DIR, build_sample, missing, toolchain_for

FUZZ_DIR = Path(os.environ.get("GORT_FUZZ_BUILD_DIR", f"{BUILD_DIR}-fuzz"))
SECONDS = int(os.environ.get("GORT_FUZZ_SECONDS", "20"))
CORPUS = SOURCE_DIR / "tests" / "fuzz" / "corpus"
GOLDEN_LOGS = SOURCE_DIR / "tests" / "golden" / "crashlogs"
TARGETS = ["crashlog", "elf", "pclntab", "trace", "core_file", "perf_script"]
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer")

sys.path.insert(0, str(SOURCE_DIR / "tests" / "fuzz"))
import make_seeds  # noqa: E402


@pytest.fixture(scope="module")
def fuzz_bin():
    """scripts/build-fuzz into FUZZ_DIR; skips (fails under CI=true) without clang/libFuzzer."""
    cxx = shutil.which("clang++") or shutil.which("clang++-14")
    if not cxx:
        missing("clang++ (Debian package clang)")
    rt = subprocess.run([cxx, "--print-runtime-dir"], capture_output=True, text=True).stdout.strip()
    if not (Path(rt) / "libclang_rt.fuzzer-x86_64.a").exists():
        missing(f"libFuzzer ({rt}/libclang_rt.fuzzer-x86_64.a, Debian package libclang-rt-14-dev)")
    t0 = time.monotonic()
    r = subprocess.run([str(SOURCE_DIR / "scripts" / "build-fuzz"), str(FUZZ_DIR)], capture_output=True, text=True,
                       timeout=1200)  # under ctest's 1800 s, so pytest says what hung
    assert r.returncode == 0, f"scripts/build-fuzz {FUZZ_DIR} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return {"dir": FUZZ_DIR / "bin", "build_s": time.monotonic() - t0}


def sanitizer_env():
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


def test_unit_tests_under_asan_ubsan(fuzz_bin, tmp_path, capsys):
    t0 = time.monotonic()
    r = subprocess.run([str(fuzz_bin["dir"] / "gort_unit_tests_asan")], capture_output=True, text=True, timeout=1200,
                       cwd=tmp_path, env=sanitizer_env())
    out = r.stdout + r.stderr
    report = SANITIZER_REPORT.search(out)
    assert r.returncode == 0 and not report, out[-6000:]
    with capsys.disabled():
        print(f"\nscripts/build-fuzz {FUZZ_DIR}: {fuzz_bin['build_s']:.1f} s; gort_unit_tests_asan: "
              f"{time.monotonic() - t0:.1f} s,", *[l for l in out.splitlines() if l.startswith("[doctest] test cases")])


@pytest.fixture(scope="module")
def real_sample():
    """The mapcount sample built with the newest Go, stripped and not; None without Go
    (skipped on a developer machine: the in-tree seeds still run; fails under CI=true)."""
    try:
        tc = toolchain_for(None)
    except pytest.skip.Exception:
        return None
    return {v: build_sample(tc, "mapcount", v) for v in ("stripped", "normal")}


def extra_seeds(target, real, dest: Path):
    """Seeds made at test time into DEST; returns the inputs to run once (not mutated)."""
    dest.mkdir()
    if target == "crashlog":
        for p in GOLDEN_LOGS.glob("*.log"):
            (dest / p.name).write_bytes(p.read_bytes()[:64 * 1024])
        return []
    if target not in ("elf", "pclntab") or real is None:
        return []
    for name, data in make_seeds.real_seeds(real["stripped"])[target].items():
        (dest / name).write_bytes(data)
    if target == "elf":
        return [real["stripped"], real["normal"]]
    whole = dest.parent / "mapcount-pclntab"  # the whole table, bare (no inline trees)
    g = make_seeds.GoFile(real["stripped"])
    whole.write_bytes(make_seeds.bare_pclntab(g.go_version(), g.section(".gopclntab"), b""))
    return [real["stripped"], whole]


def final_stats(stderr: str) -> dict:
    return {k: int(v) for k, v in re.findall(r"^stat::(\w+):\s+(\d+)", stderr, re.M)}


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz(target, fuzz_bin, request, tmp_path, capsys):
    fuzzer = fuzz_bin["dir"] / f"fuzz_{target}"
    real_sample = request.getfixturevalue("real_sample") if target in ("elf", "pclntab") else None
    assert fuzzer.exists(), f"{fuzzer}: not built by scripts/build-fuzz (tests/fuzz/fuzz_{target}.cpp?)"
    env = sanitizer_env()
    run_once = extra_seeds(target, real_sample, tmp_path / "extra")
    if run_once:  # the real inputs, each executed once: no sanitizer report, no crash
        r = subprocess.run([str(fuzzer), *map(str, run_once)], capture_output=True, text=True, timeout=600,
                           cwd=tmp_path, env=env)
        assert r.returncode == 0, r.stderr[-6000:]
    seeds = [d for d in (CORPUS / target, tmp_path / "extra") if d.is_dir() and any(d.iterdir())]
    assert seeds, f"no seeds for fuzz_{target}: tests/fuzz/corpus/{target}/ is empty"
    # New inputs go to the first directory, a scratch one: the tree's corpus is read only.
    (tmp_path / "new").mkdir()
    max_len = max(4096, max(p.stat().st_size for d in seeds for p in d.iterdir()))
    r = subprocess.run([str(fuzzer), str(tmp_path / "new"), *map(str, seeds), f"-max_total_time={SECONDS}",
                        f"-max_len={max_len}", "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1",
                        f"-artifact_prefix={tmp_path}/"],
                       capture_output=True, text=True, timeout=SECONDS + 600, cwd=tmp_path, env=env)
    stats = final_stats(r.stderr)
    artifacts = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "leak-", "timeout-", "oom-"))]
    assert r.returncode == 0 and not artifacts, (
        f"fuzz_{target} failed (exit {r.returncode}); inputs kept in {tmp_path}: {artifacts}; reproduce with "
        f"{fuzzer} {tmp_path}/<input>\n{r.stderr[-6000:]}")
    runs, per_s = stats.get("number_of_executed_units", 0), stats.get("average_exec_per_sec", 0)
    with capsys.disabled():
        print(f"\nfuzz_{target}: {runs} inputs in {SECONDS} s, {per_s} execs/s, "
              f"{stats.get('new_units_added', 0)} new, peak RSS {stats.get('peak_rss_mb', 0)} MB"
              + ("" if target not in ("elf", "pclntab") or real_sample else " (no Go: in-tree seeds only)"))
    assert per_s >= 100, f"fuzz_{target}: {per_s} executions/s; an input should take well under 10 ms"
