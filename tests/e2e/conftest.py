"""Shared fixtures for gort's integration tests.

Samples under samples/ are built at test time with each Go toolchain under test, in
several variants (normal, stripped, PIE, noswissmap), and cached under
$GORT_BUILD_DIR/samples/<go version>/ (tests/e2e/build_samples.py builds them all ahead).

GORT_GO_VERSIONS selects the toolchains (the supported ones: tests/go_versions.txt):
  unset / "default"  the newest supported Go and Go 1.23 (hmap maps): the primary versions
  "all"              every supported Go
  "1.22,1.25"        an explicit list
GORT_TEST_SCOPE splits a file as ctest runs it (tests/e2e/ctest_parts.py): "versioned"
keeps the tests that take a toolchain, "versionless" the others; unset keeps all.
GORT_TEST_EXCLUSIVE=1 keeps only the tests marked exclusive (timing-sensitive: ctest runs
them alone), =0 only the others; unset keeps all.
GORT_SOAK=1 (`scripts/test --soak`) runs every repeated test its long soak form.
Toolchains come from scripts/setup (cached in ${GORT_CACHE:-/var/cache/gort}/go/1.NN).
Under CI=true a missing toolchain or tool fails the test instead of skipping it, and so
does any other skip not on the allow-list below.
"""
import fcntl
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

SOURCE_DIR = Path(os.environ.get("GORT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD_DIR = Path(os.environ.get("GORT_BUILD_DIR", SOURCE_DIR / "build"))
CACHE = Path(os.environ.get("GORT_CACHE", "/var/cache/gort"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
GORT = BUILD_DIR / "bin" / "gort"
SOAK = os.environ.get("GORT_SOAK", "") == "1"


def _supported_minors():
    text = (SOURCE_DIR / "tests" / "go_versions.txt").read_text()
    return [int(v.split(".")[1]) for line in text.splitlines() if not line.startswith("#") for v in line.split()]


SUPPORTED = _supported_minors()   # [21, ..., 26]
NEWEST = SUPPORTED[-1]
HMAP_PRIMARY = 23                 # the newest Go whose maps are hmap in every build
PRIMARY = (NEWEST, HMAP_PRIMARY)


def missing(what: str):
    """Skip on a developer machine; fail in CI, where scripts/setup installs everything."""
    if IN_CI:
        pytest.fail(f"missing in CI: {what} (scripts/setup should have installed it)")
    pytest.skip(f"missing: {what} (run scripts/setup)")


@dataclass(frozen=True)
class GoToolchain:
    minor: int          # 26 for go1.26.x
    go: Path            # the go command
    version: str        # "go1.26.8"

    @property
    def label(self) -> str:
        return f"go1.{self.minor}"

    def env(self, **extra) -> dict:
        e = dict(os.environ)
        e.update(GOTOOLCHAIN="local", GOFLAGS="-mod=mod", CGO_ENABLED="0",
                 GOCACHE=str(CACHE / "gocache"), GOROOT=str(self.go.parent.parent))
        e.pop("GOEXPERIMENT", None)
        e.update(extra)
        return e


def _probe(go: Path):
    try:
        out = subprocess.run([str(go), "version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"go1\.(\d+)(\.\d+)?", out)
    return GoToolchain(int(m.group(1)), go, m.group(0)) if m else None


def _system_go():
    for cand in (shutil.which("go"), "/usr/local/go/bin/go", str(CACHE / "go-default")):
        if cand and os.path.exists(cand):
            tc = _probe(Path(cand).resolve())
            if tc and tc.minor >= 21:
                return tc
    return None


def _cached_go(minor: int):
    go = CACHE / "go" / f"1.{minor}" / "usr" / "lib" / f"go-1.{minor}" / "bin" / "go"
    return _probe(go) if go.exists() else None


def requested_versions():
    """The Go minors to test, from GORT_GO_VERSIONS."""
    spec = os.environ.get("GORT_GO_VERSIONS", "default").strip()
    if spec in ("", "default"):
        return list(PRIMARY)
    if spec == "all":
        return list(SUPPORTED)
    return [int(s.split(".")[1]) for s in spec.split(",") if s.strip()]


def is_primary(tc) -> bool:
    """The newest supported Go and Go 1.23: the versions the issues' acceptance numbers
    are measured on. Repeated tests run their full rounds there (rounds())."""
    return tc.minor in PRIMARY


@dataclass(frozen=True)
class Rounds:
    need: int   # successful rounds that pass the test
    of: int     # rounds at most (need of them must succeed; of == need: every one)


def rounds(tc, full, smoke=None, soak=None) -> Rounds:
    """How many rounds a repeated behavioural test runs with toolchain TC: the one rule
    of the suite. FULL on the primary versions (the newest Go and 1.23), SMOKE on the
    others (default: 1 success in at most as many tries as FULL allows to fail, plus one),
    SOAK under `scripts/test --soak` (GORT_SOAK=1; default: 5 x FULL). Each is a Rounds
    or an int n (n of n: every round must pass). A threshold below n of n rests on a
    rate measured in docs/testing.md."""
    def norm(r):
        return r if isinstance(r, Rounds) else Rounds(r, r)
    full = norm(full)
    if SOAK:
        return norm(soak) if soak is not None else Rounds(5 * full.need, 5 * full.of)
    if is_primary(tc):
        return full
    return norm(smoke) if smoke is not None else Rounds(1, 1 + full.of - full.need)


def run_rounds(r: Rounds, one: Callable[[int], Optional[str]], what: str = "rounds"):
    """Calls ONE(i) for i = 0, 1, ... until R.need of them returned None (a success; a
    string says why a round failed), and fails the test once more than R.of - R.need
    rounds failed. Under --soak every round runs (the soak measures the rate); with
    GORT_ROUNDS_LOG=FILE each call appends a JSON line (test, rounds, successes, why the
    others failed): the rates docs/testing.md gives come from there. Returns the number
    of rounds run."""
    failures = []
    ok = 0
    for i in range(r.of):
        why = one(i)
        if why is None:
            ok += 1
            if ok == r.need and not SOAK:
                break
        else:
            failures.append(f"round {i + 1}: {why}")
            if len(failures) > r.of - r.need:
                break
    ran = ok + len(failures)
    if os.environ.get("GORT_ROUNDS_LOG"):
        import json
        with open(os.environ["GORT_ROUNDS_LOG"], "a") as f:
            f.write(json.dumps({"test": os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0], "what": what.split("\n")[0],
                                "need": r.need, "of": r.of, "ran": ran, "ok": ok,
                                "failures": [x[:300] for x in failures]}) + "\n")
    if ok < r.need:
        pytest.fail(f"{what}: {ok} of {r.need} needed successes in {ran} rounds (at most {r.of}):\n" +
                    "\n".join(failures), pytrace=False)
    return ran


def toolchain_for(minor):
    """The toolchain for Go 1.MINOR (None: the newest supported one): the system's Go
    when its minor matches, else the one scripts/setup cached."""
    if minor is None:
        minor = NEWEST
    sys_go = _system_go()
    if sys_go and sys_go.minor == minor:
        return sys_go
    tc = _cached_go(minor)
    if tc is None:
        missing(f"Go 1.{minor} in {CACHE}/go/1.{minor}")
    return tc


def pytest_generate_tests(metafunc):
    if "toolchain" in metafunc.fixturenames:
        vers = requested_versions()
        metafunc.parametrize("toolchain", vers, ids=[f"go1.{v}" for v in vers], indirect=True, scope="session")


def pytest_configure(config):
    config.addinivalue_line("markers", "exclusive: a timing-sensitive test: ctest runs its part alone "
                                       "(tests/e2e/ctest_parts.py)")
    config.addinivalue_line("markers", "primary_only: runs on the primary Go versions only (the newest and 1.23); "
                                       "the others run a smoke subset (rounds(): one rule for the whole suite)")
    config.addinivalue_line("markers", "newest_only: runs on the newest supported Go only (1.23 runs a smoke subset)")


def _uses_toolchain(item) -> bool:
    return "toolchain" in getattr(item, "fixturenames", ())


def _minor_of(item):
    cs = getattr(item, "callspec", None)
    return cs.params.get("toolchain") if cs else None


def pytest_collection_modifyitems(config, items):
    """GORT_TEST_SCOPE (ctest's split of a file); tests marked primary_only (newest_only)
    on the other versions; and combinations that do not exist: a GOEXPERIMENT=noswissmap build outside
    Go 1.24/1.25 (a `variant` parameter)."""
    scope = os.environ.get("GORT_TEST_SCOPE", "")
    exclusive = os.environ.get("GORT_TEST_EXCLUSIVE", "")
    keep, drop = [], []
    for item in items:
        marked = item.get_closest_marker("exclusive") is not None
        if exclusive and marked != (exclusive == "1"):
            drop.append(item)
            continue
        cs = getattr(item, "callspec", None)
        variant = cs.params.get("variant") if cs else None
        minor = _minor_of(item)
        if scope == "versioned" and not _uses_toolchain(item):
            drop.append(item)
        elif scope == "versionless" and _uses_toolchain(item):
            drop.append(item)
        elif variant == "noswiss" and minor is not None and minor not in (24, 25):
            drop.append(item)
        elif item.get_closest_marker("primary_only") and minor is not None and minor not in PRIMARY:
            drop.append(item)
        elif item.get_closest_marker("newest_only") and minor is not None and minor != NEWEST:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# Skips CI allows (CI=true): none today. A skip elsewhere in CI means a tool or toolchain
# scripts/setup should have installed is missing, or a test that proves nothing; both
# fail the run (the hooks below), and so does an expected failure: an xfail passes on any
# exception, a missing tool's included. A harm gort cannot prevent is asserted as it is
# (test_detach.py: the program dies of SIGTRAP), not marked xfail.
ALLOWED_SKIPS_IN_CI: tuple = ()


def _ci_refusal(rep):
    """Why REP (a test's or a collection's report) fails under CI, or None."""
    if not (IN_CI and rep.skipped):
        return None
    if hasattr(rep, "wasxfail"):
        return f"an expected failure under CI=true, where none is allowed ({rep.wasxfail})"
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    if any(re.search(a, reason) for a in ALLOWED_SKIPS_IN_CI):
        return None
    return f"skipped under CI=true, where no skip is allowed ({reason})"


def _refuse_under_ci(rep):
    why = _ci_refusal(rep)
    if why:
        rep.outcome = "failed"
        rep.longrepr = why


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    _refuse_under_ci((yield).get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module-level skip (pytest.skip(allow_module_level=True), importorskip) under CI."""
    _refuse_under_ci((yield).get_result())


@pytest.fixture(scope="session")
def toolchain(request):
    return toolchain_for(request.param)


VARIANTS = {
    "normal": ([], {}),
    "stripped": (["-ldflags=-s -w"], {}),
    "pie": (["-buildmode=pie"], {}),
    "noswiss": ([], {"GOEXPERIMENT": "noswissmap"}),
    "debug": (["-gcflags=all=-N -l"], {}),
    "checkptr": (["-gcflags=all=-d=checkptr"], {}),
    # samples with a `//go:build gortcgo` file that imports "C" (samples/mapcount)
    "cgo": (["-tags=gortcgo"], {"CGO_ENABLED": "1"}),
}


def variants_for(tc: GoToolchain, wanted=("normal", "stripped", "pie", "noswiss")):
    """The variants that make sense for TC (noswissmap exists only in 1.24/1.25)."""
    return [v for v in wanted if v != "noswiss" or tc.minor in (24, 25)]


def build_sample(tc: GoToolchain, name: str, variant: str = "normal", private: bool = True) -> Path:
    """Builds samples/NAME with TC in VARIANT; cached by toolchain version and variant.

    PRIVATE (the default): the path returned is this test process's own copy. A uprobe
    lives on a file (its inode): a `gort record` with uprobes in one ctest part would
    otherwise trap in, or patch around, every other part's run of the same binary (`ctest
    -j` runs two parts at once)."""
    src = SOURCE_DIR / "samples" / name
    out_dir = BUILD_DIR / "samples" / tc.version
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{name}-{variant}"
    flags, extra_env = VARIANTS[variant]
    newest_src = max(p.stat().st_mtime for p in src.rglob("*") if p.is_file())
    with open(out_dir / f".lock-{out.name}", "w") as lock:  # one build of each at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out.exists() and out.stat().st_mtime >= newest_src):
            cmd = [str(tc.go), "build", "-o", str(out), *flags, "."]
            r = subprocess.run(cmd, cwd=src, env=tc.env(**extra_env), capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                raise RuntimeError(f"building {name} ({variant}) with {tc.version} failed:\n{r.stderr}")
    return private_copy(out, tc.version) if private else out


_private_root = []


def private_copy(path: Path, subdir: str) -> Path:
    """PATH copied (once, and again when PATH changes) into this process's own directory
    under $GORT_BUILD_DIR/samples/private/, removed when the process exits."""
    if not _private_root:
        import atexit
        import tempfile
        (BUILD_DIR / "samples" / "private").mkdir(parents=True, exist_ok=True)
        _private_root.append(Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=BUILD_DIR / "samples" / "private")))
        atexit.register(shutil.rmtree, _private_root[0], True)
    dst = _private_root[0] / subdir / path.name
    if not dst.exists() or dst.stat().st_mtime != path.stat().st_mtime:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dst.with_name(dst.name + ".tmp"))
        os.replace(dst.with_name(dst.name + ".tmp"), dst)
    return dst


def run_gort(*args, check=False, timeout=300, input=None):
    if not GORT.exists():
        missing(f"{GORT} (build gort first: cmake --build build)")
    r = subprocess.run([str(GORT), *map(str, args)], capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise AssertionError(f"gort {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}")
    return r


def go_tool(tc: GoToolchain, *args, timeout=600):
    r = subprocess.run([str(tc.go), "tool", *map(str, args)], capture_output=True, text=True,
                       env=tc.env(), timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"go tool {' '.join(map(str, args))}: {r.stderr}")
    return r.stdout


def go_nm(tc: GoToolchain, binary: Path) -> dict:
    """symbol name -> address (text symbols) from `go tool nm` (needs an unstripped binary)."""
    syms = {}
    for line in go_tool(tc, "nm", binary).splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in ("T", "t"):
            syms[parts[2]] = int(parts[0], 16)
    return syms


class ElfImage:
    """Minimal ELF64 reader (stdlib only): bytes at a virtual address, via PT_LOAD."""

    def __init__(self, path: Path):
        import struct
        self.data = Path(path).read_bytes()
        d = self.data
        assert d[:4] == b"\x7fELF"
        phoff, = struct.unpack_from("<Q", d, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", d, 0x36)
        self.loads = []
        for i in range(phnum):
            p_type, p_flags, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", d, phoff + i * phentsize)
            if p_type == 1:
                self.loads.append((p_vaddr, p_offset, p_filesz))

    def read(self, addr: int, n: int) -> bytes:
        for vaddr, off, size in self.loads:
            if vaddr <= addr and addr + n <= vaddr + size:
                return self.data[off + addr - vaddr: off + addr - vaddr + n]
        raise ValueError(f"address {addr:#x} not file-backed")


@pytest.fixture
def soak(toolchain, tmp_path):
    """Starts samples/mapsoak (attach.Soak) with the arguments given, as often as called;
    every one still running is killed at the end."""
    from attach import Soak
    exe = build_sample(toolchain, "mapsoak")
    started = []

    def start(*args):
        d = tmp_path / f"soak{len(started)}"
        d.mkdir()
        s = Soak(exe, d, args)
        started.append(s)
        return s
    yield start
    for s in started:
        s.kill()
