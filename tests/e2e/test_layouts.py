"""Runtime layouts: the per-version tables (core/goruntime/layouts_table.cpp) must equal
what each toolchain's own DWARF says, field by field, for both map implementations; and a
binary without DWARF must get its layouts from the table.

Observed through the developer command `gort layouts BIN --json [--source ...]`.
Run every toolchain with GORT_GO_VERSIONS=all.
"""
import json

import pytest

from conftest import build_sample, run_gort, variants_for


def layouts(binary, source):
    r = run_gort("layouts", binary, "--json", "--source", source, check=True)
    return json.loads(r.stdout)


def dwarf_builds(tc):
    """(variant, expected map implementation) with DWARF for this toolchain."""
    builds = [("normal", "swiss" if tc.minor >= 24 else "hmap")]
    if "noswiss" in variants_for(tc, ("noswiss",)):
        builds.append(("noswiss", "hmap"))
    return builds


# Structs only programs that use them have in DWARF (the table answers for the others,
# with a note): the sync objects and select cases of gort record --sync.
OPTIONAL_STRUCTS = ("sync.RWMutex", "sync.Once", "runtime.scase", "internal/sync.Mutex|sync.Mutex")


def test_dwarf_equals_table(toolchain):
    # samples/synced uses every optional struct: there, no note is allowed at all.
    for sample, variant, impl in [(s, v, i) for v, i in dwarf_builds(toolchain) for s in ("mapwrites", "synced")]:
        binary = build_sample(toolchain, sample, variant)
        from_dwarf = layouts(binary, "dwarf")
        from_table = layouts(binary, "table")
        where = f"{toolchain.version} {sample} {variant}"
        if sample == "mapwrites":
            from_dwarf["notes"] = [n for n in from_dwarf["notes"]
                                   if not (n.startswith(OPTIONAL_STRUCTS) and "not in DWARF (unused by the program)" in n)]

        assert from_dwarf["map_impl"] == impl, where
        assert from_table["map_impl"] == impl, where
        assert from_dwarf["go_version"].startswith(toolchain.version), where
        assert from_dwarf["source"] == "dwarf", where
        assert from_table["source"] == "table", where
        # No note means every struct was found in DWARF (no table fallback) and no field
        # disagreed with the table: the comparison below is DWARF against table.
        assert from_dwarf["notes"] == [], f"{where}: {from_dwarf['notes']}"

        assert from_dwarf["fields"].keys() == from_table["fields"].keys()
        diffs = {name: (off, from_table["fields"][name])
                 for name, off in from_dwarf["fields"].items() if off != from_table["fields"][name]}
        assert diffs == {}, f"{where}: field: (dwarf, table) {diffs}"

        # The other implementation's fields are absent, this one's key fields present.
        fields = from_dwarf["fields"]
        if impl == "swiss":
            assert fields["smap_writing"] == 0x22
            assert fields["hmap_flags"] is None and fields["hmaptype_bucketsize"] is None
        else:
            assert fields["hmap_flags"] == 8
            assert fields["smap_writing"] is None and fields["stable_groups_data"] is None
        assert fields["g_goid"] is not None and fields["m_curg"] is not None


def test_auto_uses_dwarf_when_present(toolchain):
    binary = build_sample(toolchain, "mapwrites", "normal")
    auto = layouts(binary, "auto")
    assert auto["source"] == "dwarf"
    assert auto["fields"] == layouts(binary, "dwarf")["fields"]


def test_stripped_binary_uses_table(toolchain):
    stripped = build_sample(toolchain, "mapwrites", "stripped")
    auto = layouts(stripped, "auto")
    assert auto["source"] == "table"
    assert any("no DWARF" in n for n in auto["notes"]), auto["notes"]
    normal = layouts(build_sample(toolchain, "mapwrites", "normal"), "dwarf")
    assert auto["fields"] == normal["fields"]

    r = run_gort("layouts", stripped, "--source", "dwarf")
    assert r.returncode == 2
    assert "no DWARF" in r.stderr


def test_text_output_names_source_and_fields(toolchain):
    binary = build_sample(toolchain, "mapwrites", "normal")
    r = run_gort("layouts", binary, check=True)
    first = r.stdout.splitlines()[0]
    assert toolchain.version in first and "layouts from dwarf" in first
    goid = layouts(binary, "dwarf")["fields"]["g_goid"]
    rows = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()[1:] if line.startswith("  ")}
    assert rows["g_goid"] == hex(goid)


@pytest.mark.parametrize("args,message", [
    ([], "which binary"),
    (["--source", "guess", "x"], "expected dwarf, table or auto"),
    (["/nonexistent/bin"], "/nonexistent/bin"),
])
def test_usage_errors(args, message):
    r = run_gort("layouts", *args)
    assert r.returncode == 2
    assert message in r.stderr


# A swap to a minor with the same map implementation whose g.goid offset differs.
OTHER_MINOR = {21: 23, 22: 23, 23: 22, 24: 25, 25: 24, 26: 24}


def test_dwarf_wins_over_a_mismatched_table(toolchain, tmp_path):
    """Relabel the build info's Go version (same length, other minor) so the table no
    longer fits the binary: DWARF must win and every disagreement must be a note."""
    binary = build_sample(toolchain, "mapwrites", "normal")
    real = toolchain.version.encode()
    fake = real.replace(f"go1.{toolchain.minor}".encode(), f"go1.{OTHER_MINOR[toolchain.minor]}".encode(), 1)
    data = binary.read_bytes()
    assert real in data
    relabelled = tmp_path / "relabelled"
    relabelled.write_bytes(data.replace(real, fake))
    relabelled.chmod(0o755)

    truth = layouts(binary, "dwarf")
    got = layouts(relabelled, "auto")
    assert got["go_version"].startswith(fake.decode())
    assert got["source"] == "dwarf"
    assert got["fields"] == truth["fields"]
    table = layouts(relabelled, "table")["fields"]
    differing = {n for n, off in truth["fields"].items() if table[n] != off}
    assert "g_goid" in differing
    noted = {n.split(":")[0] for n in got["notes"] if "using DWARF" in n}
    assert noted == differing, got["notes"]


def test_structs_missing_from_dwarf_come_from_the_table(toolchain, tmp_path):
    """Relabel the build so gort expects the other map implementation, whose structs the
    binary's DWARF cannot have: those fields must come from the table, with a note."""
    swiss = toolchain.minor >= 24
    other = 23 if swiss else 24
    binary = build_sample(toolchain, "mapwrites", "normal")
    real = toolchain.version.encode()
    fake = real.replace(f"go1.{toolchain.minor}".encode(), f"go1.{other}".encode(), 1)
    relabelled = tmp_path / "relabelled"
    relabelled.write_bytes(binary.read_bytes().replace(real, fake))

    got = layouts(relabelled, "auto")
    table = layouts(relabelled, "table")["fields"]
    assert got["map_impl"] == ("hmap" if swiss else "swiss")
    assert got["source"] == "dwarf"
    missing = "runtime.hmap" if swiss else "internal/runtime/maps.Map"
    fallback = [n for n in got["notes"] if n.startswith(missing + " not in DWARF")]
    assert len(fallback) == 1, got["notes"]
    prefix = "hmap_" if swiss else "smap_"
    for name in (n for n in table if n.startswith(prefix)):
        assert got["fields"][name] == table[name], name
        assert name in fallback[0]
    assert got["fields"]["hmap_flags" if swiss else "smap_writing"] == (8 if swiss else 0x22)


def test_version_without_table_uses_dwarf_alone(toolchain, tmp_path):
    """A Go release newer than the tables (e.g. a forced open) still gets exact layouts
    from DWARF; --source table refuses it. (samples/synced: it has every struct gort
    reads in its DWARF, the sync objects of gort record --sync included.)"""
    binary = build_sample(toolchain, "synced", "normal")
    real = toolchain.version.encode()
    fake = real.replace(f"go1.{toolchain.minor}".encode(), b"go1.99", 1)
    relabelled = tmp_path / "relabelled"
    relabelled.write_bytes(binary.read_bytes().replace(real, fake))

    got = layouts(relabelled, "auto")
    assert got["source"] == "dwarf"
    assert any("no runtime layout table" in n for n in got["notes"]), got["notes"]
    truth = layouts(binary, "dwarf")["fields"]
    common = [n for n in truth if not n.startswith(("hmap", "smap", "stable", "smaptype"))]
    assert {n: got["fields"][n] for n in common} == {n: truth[n] for n in common}

    r = run_gort("layouts", relabelled, "--source", "table")
    assert r.returncode == 2 and "no runtime layout table" in r.stderr
