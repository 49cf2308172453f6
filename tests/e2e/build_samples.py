"""Builds every sample the integration tests use with one Go version, ahead of the tests.

    python3 tests/e2e/build_samples.py 1.23 [1.26 ...]

ctest runs it once per Go version (e2e_samples_go1.NN, a fixture of that version's parts):
the tests then find their binaries cached (conftest.build_sample) instead of waiting on
`go build`, and no timing-sensitive test shares the CPUs with a compiler. A build the list
below misses is still made on demand by the test that needs it.
"""
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import conftest  # noqa: E402
import racecmp  # noqa: E402

EVERY = ("normal", "stripped", "pie", "noswiss")
# Builds only some tests use: (sample, variant)
SPECIAL = [("dangling", "checkptr"), ("mapcount", "cgo")]
RACE = ("unlocked_path", "synced", "mapchurn")


def jobs(tc):
    samples = sorted(p.name for p in (conftest.SOURCE_DIR / "samples").iterdir() if (p / "go.mod").exists())
    out = [(conftest.build_sample, tc, s, v, False) for s in samples for v in conftest.variants_for(tc, EVERY)]
    out += [(conftest.build_sample, tc, s, v, False) for s, v in SPECIAL]
    out += [(racecmp.build_race, tc, s) for s in RACE]
    return out


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for spec in argv:
        minor = int(spec.split(".")[1])
        tc = conftest.toolchain_for(minor)   # under CI=true a missing toolchain fails here
        start = time.monotonic()
        todo = jobs(tc)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
            for f in [ex.submit(fn, *args) for fn, *args in todo]:
                f.result()   # a failed build raises with go build's output
        print(f"{tc.version}: {len(todo)} sample builds ready in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
