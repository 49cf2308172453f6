"""Shared fixtures for gort's integration tests.

Samples under samples/ are built at test time with each Go toolchain under test, in
several variants (normal, stripped, PIE, noswissmap), and cached under
$GORT_BUILD_DIR/samples/<go version>/.

GORT_GO_VERSIONS selects the toolchains:
  unset / "default"  the newest installed Go and Go 1.23 (hmap maps)
  "all"              every Go from 1.21 to 1.26 (the `matrix` ctest label)
  "1.22,1.25"        an explicit list
Toolchains come from scripts/setup (cached in ${GORT_CACHE:-/var/cache/gort}/go/1.NN).
Under CI=true a missing toolchain or tool fails the test instead of skipping it.
"""
import fcntl
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE_DIR = Path(os.environ.get("GORT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD_DIR = Path(os.environ.get("GORT_BUILD_DIR", SOURCE_DIR / "build"))
CACHE = Path(os.environ.get("GORT_CACHE", "/var/cache/gort"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
GORT = BUILD_DIR / "bin" / "gort"


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
    """[(label, minor or None for 'the newest installed')]"""
    spec = os.environ.get("GORT_GO_VERSIONS", "default").strip()
    if spec in ("", "default"):
        return [None, 23]
    if spec == "all":
        return list(range(21, 27))
    return [int(s.split(".")[1]) for s in spec.split(",") if s.strip()]


def is_primary(tc) -> bool:
    """The newest installed Go and Go 1.23: the versions the issues' acceptance numbers are
    measured on. Expensive tests run their full rounds there and fewer on the others."""
    sys_go = _system_go()
    return tc.minor == 23 or (sys_go is not None and tc.minor == sys_go.minor)


def toolchain_for(minor):
    if minor is None:
        tc = _system_go()
        if tc is None:
            missing("a Go toolchain >= 1.21 on PATH")
        return tc
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
        # Dedupe "newest installed" against explicit minors.
        ids = ["newest" if v is None else f"go1.{v}" for v in vers]
        metafunc.parametrize("toolchain", vers, ids=ids, indirect=True, scope="session")


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


def build_sample(tc: GoToolchain, name: str, variant: str = "normal") -> Path:
    """Builds samples/NAME with TC in VARIANT; cached by toolchain version and variant."""
    src = SOURCE_DIR / "samples" / name
    out_dir = BUILD_DIR / "samples" / tc.version
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{name}-{variant}"
    flags, extra_env = VARIANTS[variant]
    newest_src = max(p.stat().st_mtime for p in src.rglob("*") if p.is_file())
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists() and out.stat().st_mtime >= newest_src:
            return out
        cmd = [str(tc.go), "build", "-o", str(out), *flags, "."]
        r = subprocess.run(cmd, cwd=src, env=tc.env(**extra_env), capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"building {name} ({variant}) with {tc.version} failed:\n{r.stderr}")
    return out


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
