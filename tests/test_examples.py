"""The bundled example data stays consistent with the code that made it."""
from __future__ import annotations

from pathlib import Path

from hashmatch import Hasher

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def test_example_list_holds_the_pdq_hashes_of_the_originals():
    listed = [line.split() for line in (EXAMPLES / "lists" / "originals-pdq.txt").read_text().splitlines()]
    hasher = Hasher(("pdq",))
    originals = sorted((EXAMPLES / "images" / "originals").glob("*.jpg"))
    assert [["pdq", hasher.hash(p).hashes["pdq"]] for p in originals] == listed


def test_transformed_copies_are_near_their_originals_and_unrelated_ones_are_not():
    hasher = Hasher(("pdq",), dihedral=True)
    originals = {p.stem: hasher.hash(p) for p in (EXAMPLES / "images" / "originals").glob("*.jpg")}
    for copy in (EXAMPLES / "images" / "copies").iterdir():
        original = originals[copy.name[: len("scene-N")]]
        result = hasher.hash(copy)
        nearest = min(hamming(v, original.hashes["pdq"]) for v in result.pdq_dihedral.values())
        if "cropped" in copy.name:  # PDQ's known blind spot, shown on purpose in the demo
            assert nearest > 31, copy.name
        elif "flipped" in copy.name:  # found only through the dihedral variants
            assert hamming(result.hashes["pdq"], original.hashes["pdq"]) > 31 and nearest <= 31
        else:
            assert nearest <= 31, copy.name
    for other in (EXAMPLES / "images" / "unrelated").iterdir():
        pdq = hasher.hash(other).hashes["pdq"]
        assert min(hamming(pdq, o.hashes["pdq"]) for o in originals.values()) > 31, other.name


def test_quick_start_pipeline_hash_into_lookup(tmp_path):
    """The README's first command: import the example list, pipe `hash --dihedral` records
    into `lookup --dihedral`. The expected statuses follow from the distances the test
    above checks with its own Hamming distance; the corrupt file's error passes through."""
    import json

    from click.testing import CliRunner

    from hashmatch.cli import main

    runner = CliRunner()
    store = tmp_path / "store"
    got = runner.invoke(main, ["list", "import", str(EXAMPLES / "lists" / "originals-pdq.txt"), "--store", str(store)])
    assert got.exit_code == 0, got.output
    hashed = runner.invoke(main, ["hash", "-a", "pdq", "--dihedral", str(EXAMPLES / "images")])
    looked = runner.invoke(main, ["lookup", "--store", str(store), "--dihedral"], input=hashed.stdout)
    assert looked.exit_code == 1
    records = {Path(r["path"]).name: r for r in map(json.loads, looked.stdout.splitlines())}
    assert len(records) == len(list((EXAMPLES / "images").rglob("*.*")))
    assert records["corrupt-truncated.jpg"]["error"]["code"] == "truncated"
    for name, record in records.items():
        if name.startswith("scene-") and "cropped" not in name:
            assert record["status"] == "match", name
            assert record["matches"][0]["list_name"] == "originals-pdq"
        elif name != "corrupt-truncated.jpg":
            assert record["status"] == "no_match", name
    assert records["scene-4-flipped.jpg"]["matches"][0]["variant"] != "original"


def test_quick_start_scan(tmp_path):
    """The README's first command: scan the examples against the example list."""
    import json

    from click.testing import CliRunner

    from hashmatch.cli import main

    report = tmp_path / "example-report.jsonl"
    got = CliRunner().invoke(main, ["scan", str(EXAMPLES / "images"), "--list",
                                    str(EXAMPLES / "lists" / "originals-pdq.txt"), "--dihedral",
                                    "--report", str(report)])
    assert got.exit_code == 1, got.output
    records = [json.loads(line) for line in report.read_text().splitlines()]
    rows = {Path(r["path"]).name: r for r in records[:-1]}
    assert len(rows) == len(list((EXAMPLES / "images").rglob("*.*")))
    assert rows["corrupt-truncated.jpg"]["error"]["code"] == "truncated"
    for name, row in rows.items():
        if name.startswith("scene-") and "cropped" not in name:
            assert row["status"] == "match", name
        elif name != "corrupt-truncated.jpg":
            assert row["status"] == "no_match", name
    assert rows["scene-4-flipped.jpg"]["matches"][0]["variant"] == "flipy"
    assert records[-1]["summary"]["matched"] == 9
    assert "MATCH" in got.stderr and "9 matched" in got.stderr
