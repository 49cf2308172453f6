"""Bad input gets one clear line on stderr and exit code 2, never a crash or a hang.

Covers what issue 2 lists: a non-ELF file, a C program, a truncated Go binary, a
directory, a missing file, a Go version outside 1.21-1.26 (and --force-version, which
tries anyway)."""
import shutil
import subprocess

import pytest

from conftest import build_sample, missing, run_gort

COMMANDS = [["inspect"], ["inspect", "--json"], ["symbolize", "{bin}", "0x401000"]]


def check_one_line_error(r, *needles):
    assert r.returncode == 2, f"exit {r.returncode}, stderr: {r.stderr!r}"
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"want one line, got: {r.stderr!r}"
    assert lines[0].startswith("gort: "), lines[0]
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    assert r.stdout == ""


def run_cmd(cmd, path):
    if "{bin}" in cmd:
        return run_gort(*[c.replace("{bin}", str(path)) for c in cmd], timeout=60)
    return run_gort(*cmd, path, timeout=60)


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c))
def test_missing_file(cmd, tmp_path):
    check_one_line_error(run_cmd(cmd, tmp_path / "nope"), "no such file")


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c))
def test_directory(cmd, tmp_path):
    check_one_line_error(run_cmd(cmd, tmp_path), "is a directory")


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c))
def test_not_elf(cmd, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello, this is not a program\n" * 10)
    check_one_line_error(run_cmd(cmd, f), "not an ELF file")


def test_empty_file(tmp_path):
    f = tmp_path / "empty"
    f.write_bytes(b"")
    check_one_line_error(run_gort("inspect", f), "not an ELF file")


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c))
def test_c_program(cmd, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        missing("a C compiler (cc)")
    src = tmp_path / "hello.c"
    src.write_text('#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
    exe = tmp_path / "hello"
    subprocess.run([cc, "-o", str(exe), str(src)], check=True)
    check_one_line_error(run_cmd(cmd, exe), "not a Go binary")


@pytest.mark.parametrize("fraction", [0.02, 0.25, 0.5, 0.75, 0.95, 0.999])
def test_truncated_go_binary(toolchain, fraction, tmp_path):
    exe = build_sample(toolchain, "mapwrites")
    data = exe.read_bytes()
    cut = tmp_path / "truncated"
    cut.write_bytes(data[: int(len(data) * fraction)])
    r = run_gort("inspect", cut, timeout=60)
    check_one_line_error(r)
    assert any(w in r.stderr for w in ("truncated", "corrupt", "outside", "past its end", "not a Go binary")), r.stderr


def patch_version(data: bytes, old: str, new: str) -> bytes:
    """Rewrites the Go version inside .go.buildinfo (same length, so the varint stays)."""
    assert len(old) == len(new)
    magic = b"\xff Go buildinf:"
    at = data.index(magic)
    vat = data.index(old.encode(), at)
    assert vat - at < 64, "version string not right after the build info header"
    return data[:vat] + new.encode() + data[vat + len(old):]


@pytest.mark.parametrize("fake", ["go1.19", "go1.99"])
def test_unsupported_go_version(toolchain, fake, tmp_path):
    exe = build_sample(toolchain, "mapwrites")
    data = exe.read_bytes()
    real = f"go1.{toolchain.minor}"
    patched = tmp_path / "oldgo"
    patched.write_bytes(patch_version(data, real, fake))
    patched.chmod(0o755)
    r = run_gort("inspect", patched)
    check_one_line_error(r, fake, "1.21-1.26", "--force-version")
    # The override tries anyway and says so.
    r = run_gort("inspect", patched, "--force-version")
    assert r.returncode == 0, r.stderr
    assert "outside the supported" in r.stdout


def test_usage_errors():
    r = run_gort("inspect")
    assert r.returncode == 2 and "missing BIN" in r.stderr
    r = run_gort("inspect", "--bogus", "x")
    assert r.returncode == 2 and "unknown option '--bogus'" in r.stderr
    r = run_gort("frobnicate")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = run_gort("help", "inspect")
    assert r.returncode == 0 and r.stdout.startswith("Usage: gort inspect BIN")
    r = run_gort("inspect", "--help")
    assert r.returncode == 0 and "--json" in r.stdout
