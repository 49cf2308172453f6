"""gort dump on a synthetic trace (written by the hidden `gort dump --write-sample`, so no
target process is needed): the text and JSON output of a valid trace, and one clear line
on stderr with exit code 2 for a non-trace, a truncated trace (with the offset and the
--partial hint), a corrupt block, a newer format version and usage errors. The format
itself is tested byte by byte in tests/unit/test_trace.cpp."""
import json
import re
import struct

import pytest

from conftest import run_gort

SAMPLE_EVENTS = 20000  # what --write-sample writes


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("dump") / "sample.gort"
    run_gort("dump", "--write-sample", path, check=True, timeout=60)
    return path


def records(data: bytes):
    """(offset, tag, length, count) of each record after the 12-byte preamble (docs/trace-format.md)."""
    out, off = [], 12
    while off + 16 <= len(data):
        tag, length, count, _crc = struct.unpack_from("<4sIII", data, off)
        out.append((off, tag.decode(), length, count))
        off += 16 + length
    return out


def check_one_line_error(r, *needles):
    assert r.returncode == 2, f"exit {r.returncode}, stderr: {r.stderr!r}"
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"want one line, got: {r.stderr!r}"
    assert lines[0].startswith("gort dump: "), lines[0]
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def json_lines(stdout):
    return [json.loads(l) for l in stdout.splitlines()]


def test_sample_is_a_valid_trace(sample):
    data = sample.read_bytes()
    assert data[:8] == b"GORTTRC\0"
    assert struct.unpack_from("<I", data, 8)[0] == 2  # trace format version (docs/trace-format.md)
    recs = records(data)
    assert recs[0][1] == "HEAD" and recs[-1][1] == "SUMM"
    blocks = [r for r in recs if r[1] == "EVNT"]
    assert len(blocks) >= 2, "the sample should span several blocks"
    assert sum(r[3] for r in blocks) == SAMPLE_EVENTS
    end = recs[-1][0] + 16 + recs[-1][2]
    assert end == len(data)


def test_dump_text(sample):
    r = run_gort("dump", sample, check=True, timeout=60)
    out = r.stdout
    for want in ("executable   /tmp/gort-synthetic/server", "go           go1.26.0, swiss maps", "pid          4242",
                 "write-begin  hw", "runtime.newproc1", "events       20000 written", "(stopped)"):
        assert want in out, want
    events = [l for l in out.splitlines() if re.match(r"\s+-?\d+\.\d{3}\s", l)]  # "  12.345  TID ..."
    assert len(events) == SAMPLE_EVENTS
    assert all("[0x" in l for l in events if " go-start " not in l)  # the sample has 4-frame stacks
    first = events[0].split()
    assert first[0] == "0.319", first  # µs since start, ns precision
    assert r.stderr == ""


def test_dump_json(sample):
    r = run_gort("dump", sample, "--json", check=True, timeout=60)
    objs = json_lines(r.stdout)
    assert objs[0]["type"] == "header" and objs[-1]["type"] == "summary"
    events = objs[1:-1]
    assert len(events) == SAMPLE_EVENTS == objs[0]["events"] == objs[-1]["events"]
    assert all(e["type"] == "event" for e in events)
    sites = objs[0]["sites"]
    times = [e["time_ns"] for e in events]
    assert times == sorted(times)
    assert all(e["rel_ns"] == e["time_ns"] - objs[0]["start_ns"] for e in events)
    assert all(e["kind"] == sites[e["site"]]["kind"] for e in events)
    # Goroutine ids: a g's events after its go-start carry that go-start's goid until go-exit.
    live = {}
    for e in events:
        if e["kind"] == "go-start":
            live[e["g"]] = e["goid"]
        elif e["g"] in live:
            assert e["goid"] == live[e["g"]], e
            if e["kind"] == "go-exit":
                del live[e["g"]]
    assert any(e["kind"] == "go-start" for e in events)
    assert objs[-1]["missing"] is False and objs[-1]["end_reason"] == "stopped"


def test_limit(sample):
    r = run_gort("dump", sample, "--json", "--limit", "5", check=True, timeout=60)
    objs = json_lines(r.stdout)
    assert [o["type"] for o in objs] == ["header"] + ["event"] * 5 + ["summary"]
    r = run_gort("dump", sample, "--limit", "5", check=True, timeout=60)
    assert f"... {SAMPLE_EVENTS - 5} more events (--limit)" in r.stdout


def test_not_a_trace(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello, this is not a trace\n" * 10)
    r = run_gort("dump", f)
    check_one_line_error(r, f"{f}: offset 0: not a gort trace")
    assert r.stdout == ""


def test_missing_file(tmp_path):
    check_one_line_error(run_gort("dump", tmp_path / "nope.gort"), "no such file")


@pytest.mark.parametrize("fraction", [0.0001, 0.3, 0.5, 0.9, 0.9999])
def test_truncated(sample, tmp_path, fraction):
    data = sample.read_bytes()
    cut = int(len(data) * fraction)
    f = tmp_path / "cut.gort"
    f.write_bytes(data[:cut])
    r = run_gort("dump", f)
    assert r.stdout == ""
    if cut < records(data)[1][0]:  # inside the header
        check_one_line_error(r, "truncated header")
        return
    complete = [b for b in records(data) if b[1] == "EVNT" and b[0] + 16 + b[2] <= cut]
    torn_at = next((b[0] for b in records(data) if b[0] + 16 + b[2] > cut), None)
    n = len(complete)
    check_one_line_error(r, f"trace cut short at offset {torn_at}", "was gort record killed?",
                         f"pass --partial to read the {n} complete block{'' if n == 1 else 's'}")

    p = run_gort("dump", f, "--partial", "--json", timeout=60)
    assert p.returncode == 0, p.stderr
    objs = json_lines(p.stdout)
    assert objs[-1]["type"] == "summary" and objs[-1]["missing"] is True
    assert len(objs) - 2 == sum(b[3] for b in complete) == objs[0]["events"]
    assert f"trace cut short at offset {torn_at}" in objs[-1]["notes"][0]


def test_cut_at_block_boundary(sample, tmp_path):
    data = sample.read_bytes()
    summary = records(data)[-1]
    f = tmp_path / "nosummary.gort"
    f.write_bytes(data[: summary[0]])
    n = len([b for b in records(data) if b[1] == "EVNT"])
    check_one_line_error(run_gort("dump", f), f"trace cut short at offset {summary[0]}: no summary (was gort record "
                                              f"killed?); pass --partial to read the {n} complete blocks")
    p = run_gort("dump", f, "--partial", check=True, timeout=60)
    assert "none: the trace was cut short" in p.stdout


def test_corrupt_block(sample, tmp_path):
    data = bytearray(sample.read_bytes())
    second = [b for b in records(bytes(data)) if b[1] == "EVNT"][1]
    data[second[0] + 16 + second[2] // 2] ^= 0x10
    f = tmp_path / "corrupt.gort"
    f.write_bytes(bytes(data))
    r = run_gort("dump", f, timeout=60)
    check_one_line_error(r, f"{f}: offset {second[0]}: block checksum mismatch (the file is corrupt)")
    assert "events" in r.stdout  # the header and the first block's events came out first
    r = run_gort("dump", f, "--partial", timeout=60)  # --partial forgives a torn end, not corruption
    check_one_line_error(r, "block checksum mismatch")


def test_newer_version(sample, tmp_path):
    data = bytearray(sample.read_bytes())
    struct.pack_into("<I", data, 8, 9)
    f = tmp_path / "v9.gort"
    f.write_bytes(bytes(data))
    check_one_line_error(run_gort("dump", f), "offset 8: trace format version 9 is not supported",
                         "a newer gort may read it")


@pytest.mark.parametrize("args,needle", [([], "missing TRACE"), (["a.gort", "b.gort"], "one trace at a time"),
                                         (["--frobnicate"], "unknown option"), (["x.gort", "--limit", "many"], "--limit")])
def test_usage_errors(args, needle):
    r = run_gort("dump", *args)
    assert r.returncode == 2
    assert r.stderr.startswith("gort dump: ") and needle in r.stderr.splitlines()[0], r.stderr


def test_help_hides_test_options():
    r = run_gort("help", "dump", check=True)
    assert "--partial" in r.stdout and "--limit" in r.stdout
    assert "--write-sample" not in r.stdout and "--bench" not in r.stdout
    assert "dump" in run_gort("help", check=True).stdout
