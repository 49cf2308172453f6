"""gort record --sync / gort report: map writers not ordered by happens-before (issue 6).

- samples/unlocked_path: a Registry's map written under r.mu by Register and without it by
  refreshUnlocked; the writes almost never overlap in time. The report names the pair of
  functions as an unsynchronized-map-write (9 of 10 runs on the primary versions), on the
  program's own map, with the program's mutex held on the Register side and no lock on
  the other. Its `read` mode (peekUnlocked reads without the lock) with --reads: an
  unsynchronized-map-read-write naming Register and peekUnlocked.
- samples/synced, every mode (mutex, rwmutex, chan, waitgroup, once, select): no finding;
  rwmutex also with --reads.
- The race detector next to gort (tests/e2e/racecmp.py): the same samples built with
  `go build -race`; the unordered pairs of user functions in its DATA RACE reports equal
  those of gort's findings, sample by sample.

Only the CLI is used: `gort record --sync [--reads] -o T -- BIN ARGS`, `gort report T --json`.
Recordings use the in-process backend (about half a second each; the perf backend's ~60
uprobes take 10-25 s to place and remove in these VMs), shared by the tests that read
them; test_perf_backend_names_pair makes one perf recording per Go version, which covers
the uprobe placement of every sync site kind. test_inproc.py compares the two backends.
"""
import json
import re
import subprocess
from dataclasses import dataclass

import pytest

from conftest import GORT, Rounds, build_sample, missing, rounds, run_gort, run_rounds
import racecmp


SYNCED_MODES = ["mutex", "rwmutex", "chan", "waitgroup", "once", "select"]
REGISTER = "main.(*Registry).Register"
REFRESH = "main.(*Registry).refreshUnlocked"
PEEK = "main.(*Registry).peekUnlocked"
WRITE_KIND, READ_KIND = racecmp.UNSYNC_KINDS

_sync_supported = {}


def need_sync_recording():
    """gort record --sync (and --reads) exists in this build."""
    if not GORT.exists():
        missing(f"{GORT} (build gort first: cmake --build build)")
    if "ok" not in _sync_supported:
        h = subprocess.run([str(GORT), "help", "record"], capture_output=True, text=True, timeout=60)
        _sync_supported["ok"] = "--sync" in h.stdout + h.stderr
    if not _sync_supported["ok"]:
        missing("`gort record --sync` in this build of gort (issue 6)")


def record_sync(trace, exe, *args, reads=False, backend="inproc", timeout=300):
    """`gort record --sync [--reads] --backend BACKEND -o TRACE -- EXE ARGS`; returns (the
    CompletedProcess, stdout+stderr)."""
    need_sync_recording()
    cmd = [str(GORT), "record", "-q", "--sync", *(["--reads"] if reads else []), "--backend", backend,
           "-o", str(trace), "--", str(exe), *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r, r.stdout + r.stderr


def report_json(trace):
    r = run_gort("report", str(trace), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def brief(rep, n=4000):
    return json.dumps({"findings": rep.get("findings"), "stats": rep.get("stats"),
                       "warnings": rep.get("trace", {}).get("warnings")})[:n]


def frames(seq):
    return [f["function"] for f in seq or []]


def addr(v):
    """An address as gort or fmt's %p prints it ("0x1c5192d92c30") -> int; None otherwise."""
    try:
        return int(str(v), 16)
    except ValueError:
        return None


def program_addrs(out):
    """samples/unlocked_path's first line: "registry map=0x... mu=0x..."."""
    m = re.search(r"^registry map=(0x[0-9a-f]+) mu=(0x[0-9a-f]+)$", out, re.M)
    assert m, out
    return int(m[1], 16), int(m[2], 16)


def check_locks(finding, locked_fn, unlocked_fn, mu):
    """LOCKED_FN's side held the program's mutex MU, taken in LOCKED_FN; UNLOCKED_FN's side held
    nothing. Returns a reason it does not hold, or None."""
    sides = {racecmp.access_function(a): a for a in finding["accesses"]}
    locked, unlocked = sides.get(locked_fn), sides.get(unlocked_fn)
    if locked is None or unlocked is None:
        return f"accesses are {list(sides)}"
    if "locks" not in locked or "locks" not in unlocked:
        return "no 'locks' field on an access"
    if unlocked["locks"] != []:
        return f"{unlocked_fn} holds {unlocked['locks']}"
    held = [lk for lk in locked["locks"] if addr(lk.get("object")) == mu]
    if not held:
        return f"{locked_fn} holds {locked['locks']}, not the mutex at {mu:#x}"
    if not any(locked_fn in frames(lk.get("locked_at")) for lk in held):
        return f"{locked_fn}'s mutex was not locked in {locked_fn}: {held}"
    return None


@dataclass
class Recording:
    trace: object       # Path
    proc: object        # the CompletedProcess of gort record
    out: str            # its stdout + stderr (the program's and gort's)
    report: dict = None  # gort report --json, None when the program threw

    @property
    def threw(self):
        return "fatal error:" in self.out


# Each recording is made once and shared by the tests that read it: the agreement test
# compares the race detector with the recordings the other tests made.
_recordings = {}


def recording(toolchain, tmp_path_factory, sample, args, reads=False, i=0, backend="inproc"):
    """The I-th recording of samples/SAMPLE ARGS (with --reads if READS) by TOOLCHAIN."""
    key = (toolchain.version, sample, tuple(args), reads, i, backend)
    if key not in _recordings:
        exe = build_sample(toolchain, sample)
        d = tmp_path_factory.mktemp(f"hb-{toolchain.label}-{sample}-{'-'.join(args)}{'-reads' if reads else ''}")
        trace = d / f"{i}.trace"
        r, out = record_sync(trace, exe, *args, reads=reads, backend=backend)
        assert r.returncode == 0, out
        rec = Recording(trace, r, out)
        # The writers almost never overlap: a runtime throw is a failed run, not the test's end.
        if not rec.threw:
            assert "ended: target exited with status 0" in out, out
            rec.report = report_json(trace)
        _recordings[key] = rec
    return _recordings[key]


def unlocked_run(toolchain, tmp_path_factory, i, mode="write", reads=False, backend="inproc"):
    """One recorded run of samples/unlocked_path MODE: (finding naming the pair or None, why not, rep)."""
    rec = recording(toolchain, tmp_path_factory, "unlocked_path", (mode,), reads, i, backend)
    if rec.threw:
        return None, f"the program threw:\n{rec.out[-2000:]}", None
    the_map, mu = program_addrs(rec.proc.stdout)
    rep = rec.report
    kind, other = (READ_KIND, PEEK) if mode == "read" else (WRITE_KIND, REFRESH)
    why = f"no {kind} finding naming {REGISTER} and {other}"
    for f in rep["findings"]:
        if f["kind"] != kind or racecmp.gort_pairs({"findings": [f]}, (kind,)) != {racecmp.pair(REGISTER, other)}:
            continue
        if addr(f["map"]) != the_map and the_map not in {addr(m) for m in f.get("maps", [])}:
            why = f"the finding's map is {f['map']}, the program's {the_map:#x}"
            continue
        bad = check_locks(f, REGISTER, other, mu)
        if bad:
            why = bad
            continue
        assert f["count"] >= 1, f
        return f, None, rep
    return None, why, rep


# A run of unlocked_path misses the pair only when its writes happen to overlap and the
# runtime throws "concurrent map writes" first (docs/testing.md gives the measured rate):
# 9 of 10 on the primary versions, 1 of 2 elsewhere.
UNLOCKED_ROUNDS = dict(full=Rounds(9, 10), smoke=Rounds(1, 2), soak=Rounds(45, 50))


def pair_named(toolchain, tmp_path_factory, mode, reads, backend="inproc"):
    """run_rounds' one round: recording I names the pair (None) or why it does not."""
    def one(i):
        f, why, rep = unlocked_run(toolchain, tmp_path_factory, i, mode, reads, backend)
        return None if f else f"{why}\n{brief(rep) if rep else ''}"
    return one


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
def test_unlocked_path_pair_named(toolchain, tmp_path_factory):
    """Register (holding r.mu) and refreshUnlocked (holding nothing) named as an
    unsynchronized pair (UNLOCKED_ROUNDS), and the text report says who holds what."""
    n = run_rounds(rounds(toolchain, **UNLOCKED_ROUNDS), pair_named(toolchain, tmp_path_factory, "write", False),
                   f"{toolchain.version} unlocked_path write")
    good = next(i for i in range(n) if unlocked_run(toolchain, tmp_path_factory, i)[0])
    trace = recording(toolchain, tmp_path_factory, "unlocked_path", ("write",), False, good).trace
    text = run_gort("report", str(trace), check=True).stdout
    assert WRITE_KIND in text and REGISTER in text and REFRESH in text, text
    assert "holds: nothing" in text, text


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
def test_perf_backend_names_pair(toolchain, tmp_path_factory):
    """The perf backend (uprobes on every sync site kind: inlined Lock/Unlock, channel and
    goroutine entry points) gives the same finding: one recording per Go version (the same
    rate as above: a second run only if the first one threw)."""
    run_rounds(Rounds(1, 2), pair_named(toolchain, tmp_path_factory, "write", False, backend="perf"),
               f"{toolchain.version} unlocked_path write, perf backend")


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
def test_unlocked_read_named(toolchain, tmp_path_factory):
    """--reads: peekUnlocked's unlocked read against Register's locked write is an
    unsynchronized-map-read-write (UNLOCKED_ROUNDS' rule, fewer rounds: 2 of 3)."""
    run_rounds(rounds(toolchain, full=Rounds(2, 3), smoke=Rounds(1, 2), soak=Rounds(18, 20)),
               pair_named(toolchain, tmp_path_factory, "read", True), f"{toolchain.version} unlocked_path read")


def synced_clean(toolchain, tmp_path_factory, mode, reads=False):
    rec = recording(toolchain, tmp_path_factory, "synced", (mode,), reads)
    assert f"{mode} ok" in rec.proc.stdout and not rec.threw, rec.out
    rep = rec.report
    assert rep["findings"] == [], brief(rep)
    assert rep["stats"]["lost"] == 0, rep["stats"]
    hb = rep["stats"].get("happens_before")
    assert hb and hb["sync_events"] > 0 and hb["writes"] > 0, rep["stats"]
    if reads:
        assert hb["reads"] > 0, rep["stats"]


@pytest.mark.parametrize("mode", SYNCED_MODES)
def test_synced_no_findings(toolchain, tmp_path_factory, mode):
    synced_clean(toolchain, tmp_path_factory, mode)


def test_rwmutex_reads_no_findings(toolchain, tmp_path_factory):
    synced_clean(toolchain, tmp_path_factory, "rwmutex", reads=True)


# The side-by-side agreement: (sample, args, --reads) -> the race detector's pairs == gort's.
# Every sample on the primary versions; one racy and one synchronized one elsewhere (the
# race detector's own pairs are checked on every version by test_race_detector_pairs).
AGREEMENT = [("unlocked_path", ("write",), False), ("unlocked_path", ("read",), True)] + \
            [("synced", (m,), False) for m in SYNCED_MODES] + [("synced", ("rwmutex",), True)]
AGREEMENT_SMOKE = [("unlocked_path", ("write",), False), ("synced", ("mutex",), False)]


@pytest.mark.parametrize("sample,args,reads", [
    pytest.param(*a, id=f"{a[0]}-{a[1][0]}{'-reads' if a[2] else ''}",
                 marks=() if a in AGREEMENT_SMOKE else pytest.mark.primary_only) for a in AGREEMENT])
def test_agrees_with_race_detector(toolchain, tmp_path_factory, sample, args, reads):
    need_sync_recording()
    try:
        race_exe = racecmp.build_race(toolchain, sample)
    except RuntimeError as e:
        missing(f"go build -race (cgo, gcc) with {toolchain.version}: {e}")
    race = racecmp.run_race(race_exe, *args)
    assert race.returncode in (0, 66), race.stderr[-3000:]
    assert all(r.pair for r in race.races), race.stderr[-3000:]  # every stack restored

    def one(i):
        rec = recording(toolchain, tmp_path_factory, sample, args, reads, i)
        if rec.threw:
            return "the program threw"
        ours = racecmp.gort_pairs(rec.report, racecmp.ALL_MAP_KINDS)
        if ours != race.pairs:
            return f"gort: {racecmp.fmt_pairs(ours)}\n{brief(rec.report, 2000)}"
        return None
    # A racy sample's run misses its pair only when the program threw (UNLOCKED_ROUNDS): the
    # recordings the other tests made are reused.
    run_rounds(Rounds(1, 3 if race.pairs else 1), one,
               f"{toolchain.version} {sample} {' '.join(args)}: the race detector reports "
               f"{racecmp.fmt_pairs(race.pairs)}\n{racecmp.trim_race_report(race.stderr)}")


def test_race_detector_pairs(toolchain):
    """The comparison's other half on its own (no gort needed): the race detector reports
    exactly the unlocked path's pairs, and nothing on any synced mode."""
    try:
        up, sy = racecmp.build_race(toolchain, "unlocked_path"), racecmp.build_race(toolchain, "synced")
    except RuntimeError as e:
        missing(f"go build -race (cgo, gcc) with {toolchain.version}: {e}")
    w = racecmp.run_race(up)
    assert w.pairs == {racecmp.pair(REGISTER, REFRESH)} and w.returncode == 66, w.stderr[-3000:]
    assert {r.kind for r in w.races} == {"write-write"}
    rd = racecmp.run_race(up, "read")
    assert rd.pairs == {racecmp.pair(REGISTER, PEEK)}, rd.stderr[-3000:]
    assert {r.kind for r in rd.races} == {"read-write"}
    for m in SYNCED_MODES:
        s = racecmp.run_race(sy, m)
        assert s.returncode == 0 and s.races == [] and f"{m} ok" in s.stdout, (m, s.stderr[-3000:])


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
@pytest.mark.primary_only
def test_lldb_record_sync(toolchain, tmp_path):
    """The plugin's recording: `gort record start --sync` in LLDB runs the same engine, and
    the report names the same pair with the same locks (the plugin's engine is the
    recorder's: the primary versions only)."""
    from test_plugin import PLUGIN, lldb_path, run_lldb
    need_sync_recording()
    exe = build_sample(toolchain, "unlocked_path")

    def one(i):
        trace = tmp_path / f"lldb{i}.trace"
        r = run_lldb([lldb_path(), "--no-lldbinit", "-b", "-o", f"plugin load {PLUGIN}", "-o", f"target create {exe}",
                      "-o", "process launch --stop-at-entry", "-o", f"gort record start --sync --backend inproc -o {trace}",
                      "-o", "process continue", "-o", "gort record stop"], timeout=300)
        out = r.stdout + r.stderr
        assert re.search(r"gort: recorded (\d+) events \(0 lost\) to .*; ended: target exited", out), out
        if "fatal error:" in out:   # the writes overlapped: the runtime threw (UNLOCKED_ROUNDS)
            return f"the program threw:\n{out[-1500:]}"
        _, mu = program_addrs(out)
        rep = report_json(trace)
        fs = [f for f in rep["findings"] if f["kind"] == WRITE_KIND
              and racecmp.gort_pairs({"findings": [f]}, (WRITE_KIND,)) == {racecmp.pair(REGISTER, REFRESH)}]
        assert fs, brief(rep)
        assert check_locks(fs[0], REGISTER, REFRESH, mu) is None, brief(rep)
        return None
    run_rounds(Rounds(1, 2), one, f"{toolchain.version} gort record start --sync in LLDB")


@pytest.mark.exclusive  # a rate or an exact count: timing-sensitive, run alone
@pytest.mark.parametrize("variant", [pytest.param("pie", marks=pytest.mark.primary_only),
                                     pytest.param("stripped", marks=pytest.mark.primary_only), "noswiss"])
def test_variants_pie_stripped_noswiss(toolchain, tmp_path, variant):
    """PIE (every sync object and site moves with the load slide), stripped (-s -w: the
    inline tree and the layouts table do the work, no DWARF, no symbols) and noswissmap
    builds (1.24/1.25: hmap maps): the pair is named, with the program's mutex on
    Register's side; synced's mutex mode stays clean."""
    need_sync_recording()
    exe = build_sample(toolchain, "unlocked_path", variant)

    def one(i):
        trace = tmp_path / f"{variant}{i}.trace"
        r, out = record_sync(trace, exe, "write")
        assert r.returncode == 0, out
        if "fatal error:" in out:
            return "the program threw"
        _, mu = program_addrs(r.stdout)
        rep = report_json(trace)
        fs = [f for f in rep["findings"] if f["kind"] == WRITE_KIND
              and racecmp.gort_pairs({"findings": [f]}, (WRITE_KIND,)) == {racecmp.pair(REGISTER, REFRESH)}]
        bad = check_locks(fs[0], REGISTER, REFRESH, mu) if fs else "pair not named"
        return None if bad is None else f"{bad}: {brief(rep)}"
    run_rounds(Rounds(1, 2), one, f"{variant}: unlocked_path write")
    exe = build_sample(toolchain, "synced", variant)
    trace = tmp_path / f"{variant}-synced.trace"
    r, out = record_sync(trace, exe, "mutex")
    assert r.returncode == 0 and "mutex ok" in r.stdout, out
    rep = report_json(trace)
    assert rep["findings"] == [], f"{variant}: {brief(rep)}"


def test_inspect_sync_sites(toolchain):
    """`gort inspect --sync --json` on every build variant finds the synchronization the
    samples use: the Lock/Unlock inlined into their methods (through the inline tree),
    RLock/RUnlock, Once.Do and doSlow's store, the channel, select and WaitGroup entry
    points, goroutine creation; and says nothing is missing. No recording: cheap enough
    for every Go version."""
    from conftest import variants_for

    def sites(exe):
        r = run_gort("inspect", str(exe), "--sync", "--reads", "--json")
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)["sync"]
        assert s["warnings"] == [], s["warnings"]
        return {(x["kind"], x["op"], x["function"]) for x in s["sites"]}, s

    for variant in variants_for(toolchain, ("normal", "stripped", "pie", "noswiss")):
        got, raw = sites(build_sample(toolchain, "unlocked_path", variant))
        for want in [("acquire", "mutex.lock", REGISTER), ("release", "mutex.unlock", REGISTER),
                     ("sync-call", "chan.send", "runtime.chansend"), ("sync-return", "chan.recv", "runtime.chanrecv"),
                     ("go-create", "", "runtime.newproc1"), ("map-read", "read", None)]:
            assert any(k == want[0] and op == want[1] and (want[2] is None or fn == want[2]) for k, op, fn in got), \
                (variant, want, sorted(got))
        assert raw["inlined_sites"] >= 2, raw
        got, _ = sites(build_sample(toolchain, "synced", variant))
        kinds = {(k, op) for k, op, _ in got}
        for want in [("acquire", "rwmutex.rlock"), ("release", "rwmutex.runlock"), ("sync-call", "rwmutex.lock"),
                     ("release", "rwmutex.unlock"), ("acquire", "once.do"), ("release", "once.done"),
                     ("release", "wg.add"), ("sync-call", "wg.wait"), ("sync-call", "select"),
                     ("sync-return", "select"), ("release", "chan.close"), ("sync-call", "mutex.lock")]:
            assert want in kinds, (variant, want, sorted(kinds))
        assert any(k == "acquire" and op == "mutex.lock" and fn == "main.(*counter).add" for k, op, fn in got), \
            (variant, sorted(got))
        # RLock inlined into (*table).get: Go 1.21-1.23 give its XADD the caller's line.
        for want in [("acquire", "rwmutex.rlock", "main.(*table).get"), ("release", "rwmutex.runlock", "main.(*table).get")]:
            assert want in got, (variant, want, sorted(got))
        for exe in (build_sample(toolchain, "synced", variant), build_sample(toolchain, "unlocked_path", variant)):
            assert_releases_before_atomics(exe, sites(exe)[1]["sites"])


def assert_releases_before_atomics(exe, sites):
    """Every inlined release is probed on the instruction right before its atomic: a probe
    after it lets another goroutine take the lock before the release is seen (a false pair
    in CI on Go 1.23, whose Unlock reloads the mutex from a stack slot before its XADD)."""
    releases = [s for s in sites if s["kind"] == "release" and s["inlined"]]
    assert releases, sites
    for s in releases:
        a = int(s["addr"], 16)
        r = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={a:#x}",
                            f"--stop-address={a + 24:#x}", str(exe)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        insns = [l for l in r.stdout.splitlines() if re.match(r"^\s+[0-9a-f]+:\t", l)]
        assert len(insns) >= 2 and int(insns[0].split(":")[0], 16) == a, (s, r.stdout)
        assert re.search(r"\block\b|\bxchg\b", insns[1]), (exe, s, insns[:2])
