"""Golden batch tests: whole `lldb -b` transcripts of the plugin, normalised, against files.

Each scenario is tests/golden/<scenario>.lldb, an LLDB command script. Its leading
`#` lines say what it runs on (they are not passed to LLDB):

    # sample: goroutines      a sample under samples/, built by the toolchain under test
    # sample: none            no target
    # sample: /bin/true       that file (not a Go program)
    # goldens: per-impl       expected output differs by map implementation:
                              <scenario>.swiss.golden / <scenario>.hmap.golden
                              (default: one <scenario>.golden for every Go)

The rest is rendered (a tiny template: `{PLUGIN}`; `{EXE}` the sample binary, copied to
`{TMP}`, a per-test directory, under the sample's name; `{EXE_NAME}` its basename, LLDB's
module name; `{addr:SYM}` SYM's address from `go tool nm`; `{m1_type}`/`{m2_type}` the map
type descriptors samples/mapdump prints) and run as

    lldb-19 --no-lldbinit -b -o "command source -e false -s 0 SCENARIO.lldb"

with stderr merged into stdout, GODEBUG=asyncpreemptoff=1 and cwd {TMP}. Each script
creates its target itself (before or after `plugin load`: the greeting differs). It is
sourced with `-e false` rather than passed with `-s`, because `-b -s` stops at the first
command that fails and the error scenarios want every error. The transcript and LLDB's
exit status are normalised (tests/golden/normalize.py) and compared whole.

Go 1.24+ builds are `swiss`, except GOEXPERIMENT=noswissmap builds (1.24/1.25 only); Go
1.21-1.23 are `hmap`. GORT_REGEN_GOLDEN=1 (scripts/regen-golden) writes the goldens
instead of comparing; a single-golden scenario whose output differs between two
toolchains then fails on the second one."""
import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BUILD_DIR, IN_CI, SOURCE_DIR, build_sample, go_nm, missing
from test_plugin import PLUGIN

GOLDEN_DIR = SOURCE_DIR / "tests" / "golden"
sys.path.insert(0, str(GOLDEN_DIR))
from normalize import normalize  # noqa: E402

REGEN = os.environ.get("GORT_REGEN_GOLDEN") == "1"
if REGEN and IN_CI:
    # A rewrite passes whatever the output: in CI the goldens are compared, never written.
    raise pytest.UsageError("GORT_REGEN_GOLDEN=1 under CI=true: goldens are compared in CI, never rewritten")
_written_this_session = set()


def parse_script(path: Path):
    meta = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        if m := re.match(r"#\s*(\w+):\s*(.*?)\s*$", lines[i]):
            meta[m[1]] = m[2]
        i += 1
    body = lines[i:]
    return meta, "\n".join(body) + "\n"


def mapdump_types(exe: Path) -> dict:
    """{'m1_type': '0x...', 'm2_type': '0x...'} from what samples/mapdump prints (non-PIE:
    type descriptors are at the same addresses inside and outside LLDB)."""
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=60).stdout
    return {f"{m[1]}_type": m[2] for m in re.finditer(r"^(m[12]) 0x[0-9a-f]+ \d+ type (0x[0-9a-f]+)$", out, re.M)}


def render(text: str, values: dict, nm) -> str:
    def sub(m):
        key, arg = m[1], m[2]
        if key == "addr":
            return f"{nm()[arg]:#x}"
        if key not in values:
            raise KeyError(f"template value {{{m[0]}}} unknown")
        return str(values[key])
    return re.sub(r"\{(\w+)(?::([^}]+))?\}", sub, text)


def impl_of(toolchain, variant):
    return "hmap" if toolchain.minor <= 23 or variant == "noswiss" else "swiss"


def _cases():
    """(scenario, variant): per-impl scenarios also run on GOEXPERIMENT=noswissmap builds."""
    for p in sorted(GOLDEN_DIR.glob("*.lldb")):
        yield p.stem, "normal"
        if parse_script(p)[0].get("goldens") == "per-impl":
            yield p.stem, "noswiss"


@pytest.mark.parametrize("scenario,variant", list(_cases()))
def test_golden(toolchain, scenario, variant, tmp_path):
    lldb = shutil.which("lldb-19") or shutil.which("lldb")
    if not lldb:
        missing("lldb-19")
    if not PLUGIN.exists():
        missing(f"{PLUGIN} (build with scripts/build)")
    meta, body = parse_script(GOLDEN_DIR / f"{scenario}.lldb")
    sample = meta.get("sample", "none")
    per_impl = meta.get("goldens") == "per-impl"

    exe, dirs = None, {"$TMP": str(tmp_path), "$BUILD": str(BUILD_DIR), "$SRC": str(SOURCE_DIR)}
    values = {"PLUGIN": PLUGIN, "TMP": tmp_path}
    if sample.startswith("/"):
        exe = Path(sample)
    elif sample != "none":
        # A copy named after the sample: LLDB's module and thread names then do not
        # depend on the variant (the build cache names binaries NAME-VARIANT).
        exe = tmp_path / sample
        shutil.copy2(build_sample(toolchain, sample, variant), exe)
        dirs["$SAMPLE"] = str(SOURCE_DIR / "samples" / sample)
        if sample == "mapdump":
            values.update(mapdump_types(exe))
    if exe:
        values.update(EXE=exe, EXE_NAME=exe.name)
    nm_cache = []

    def nm():
        if not nm_cache:
            nm_cache.append(go_nm(toolchain, exe))
        return nm_cache[0]

    script = tmp_path / f"{scenario}.lldb"
    script.write_text(render(body, values, nm))
    args = [lldb, "--no-lldbinit", "-b", "-o", f"command source -e false -s 0 {script.name}"]
    env = dict(os.environ, GODEBUG="asyncpreemptoff=1")
    r = subprocess.run(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=300)
    got = normalize(r.stdout + f"--- lldb exit status {r.returncode}\n", dirs)

    golden = GOLDEN_DIR / (f"{scenario}.{impl_of(toolchain, variant)}.golden" if per_impl else f"{scenario}.golden")
    if REGEN and golden not in _written_this_session:
        golden.write_text(got)
        _written_this_session.add(golden)
        return
    if not golden.exists():
        pytest.fail(f"{golden} missing: run scripts/regen-golden")
    want = golden.read_text()
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                            f"{golden.relative_to(SOURCE_DIR)} (expected)",
                                            f"{scenario} with {toolchain.version} {variant} (actual)"))
        pytest.fail(f"{scenario}: output differs from {golden.name} "
                    f"(if the change is intended: scripts/regen-golden)\n{diff}", pytrace=False)
