"""The parts ctest runs the integration tests in, from the tests themselves.

tests/CMakeLists.txt runs this at configure time. It collects tests/e2e with every
supported Go (GORT_GO_VERSIONS=all) and prints one line per part:

    FILE|VERSION|FLAGS

FILE is a test file's stem (test_record), VERSION the Go version of its tests that take a
toolchain ("1.23"), or "-" for the file's tests that take none (run once); FLAGS is
"exclusive" for the part holding the file's tests marked `pytest.mark.exclusive`
(timing-sensitive: ctest runs it with nothing beside it), "-" for the others. ctest then
gives each part its own test (`e2e_record_go1.23`, `e2e_record_go1.23_timing`, `e2e_cli`)
with GORT_GO_VERSIONS, GORT_TEST_SCOPE and GORT_TEST_EXCLUSIVE set (conftest.py), so
`ctest -j2` can run two parts at once and a failure names its Go version.
"""
import io
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


class Collector:
    def __init__(self):
        self.parts = set()   # (stem, minor or None, exclusive)

    def pytest_collection_finish(self, session):
        for item in session.items:
            stem = Path(str(item.fspath)).stem
            cs = getattr(item, "callspec", None)
            minor = cs.params.get("toolchain") if cs and "toolchain" in item.fixturenames else None
            self.parts.add((stem, minor, item.get_closest_marker("exclusive") is not None))


def main():
    os.environ["GORT_GO_VERSIONS"] = "all"
    for var in ("GORT_TEST_SCOPE", "GORT_TEST_EXCLUSIVE", "GORT_SOAK"):  # every part, whatever the caller set
        os.environ.pop(var, None)
    col = Collector()
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "--rootdir", str(HERE), str(HERE)],
                         plugins=[col])
    if rc != 0:
        sys.stderr.write(buf.getvalue())
        sys.stderr.write(f"ctest_parts: collecting tests/e2e failed (pytest exit {rc})\n")
        return 1
    for stem, minor, excl in sorted(col.parts, key=lambda p: (p[0], p[1] or 0, p[2])):
        print(f"{stem}|{'-' if minor is None else f'1.{minor}'}|{'exclusive' if excl else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
