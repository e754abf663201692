"""A signal type from an installed plug-in (examples/plugin-whash, imagehash's wavelet
hash) works everywhere with no change to hashmatch: hash, list import, lookup, scan and
the API, with results equal to imagehash.whash. CI installs the plug-in and sets
HASHMATCH_REQUIRE_PLUGIN=1, so there this test can never be skipped."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

if os.environ.get("HASHMATCH_REQUIRE_PLUGIN") == "1":
    import hashmatch_whash  # noqa: F401 - must be installed in CI
else:
    pytest.importorskip("hashmatch_whash",
                        reason="the example plug-in is not installed (pip install ./examples/plugin-whash)")

import imagehash  # noqa: E402
from imagegen import encode, make_rgb  # noqa: E402
from PIL import Image  # noqa: E402

from hashmatch import Hasher, signals  # noqa: E402
from hashmatch.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("whash")
    data = root / "data"
    data.mkdir()
    for i in range(6):
        (data / f"img{i}.png").write_bytes(encode(make_rgb(160, 120, seed=70 + i, kind=("shapes", "blocks")[i % 2]),
                                                  "PNG"))
    (data / "img0-copy.jpg").write_bytes(encode(Image.open(data / "img0.png"), "JPEG", quality=70))
    return root, data


def whash_of(path) -> str:
    return str(imagehash.whash(Image.open(path)))


def test_the_plugin_is_registered_by_its_entry_point():
    signal = signals.get("whash")
    assert signal.bits == 64 and not signal.exact and signals.get("wavelet_hash") is signal
    assert "whash" in signals.names()


def test_hash_command_equals_imagehash(tree):
    _, data = tree
    result = CliRunner().invoke(main, ["hash", "-a", "pdq,whash", str(data)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 7
    for record in records:
        assert record["whash"] == whash_of(record["path"])
        assert record["pdq"] == Hasher(("pdq",)).hash(record["path"]).hashes["pdq"]


def test_list_import_lookup_and_scan(tree, tmp_path):
    root, data = tree
    listed = {f"img{i}.png": whash_of(data / f"img{i}.png") for i in (0, 3)}
    lst = tmp_path / "known.csv"
    lst.write_text("algorithm,hash,category,id\n" + "".join(
        f"whash,{h},test,{name}\n" for name, h in listed.items()))
    store = tmp_path / "store"
    runner = CliRunner()
    imported = runner.invoke(main, ["list", "import", str(lst), "--store", str(store)])
    assert imported.exit_code == 0 and "imported 2 entries (2 whash)" in imported.stderr, imported.output
    looked = runner.invoke(main, ["lookup", "--store", str(store), f"whash {listed['img3.png']}"])
    assert looked.exit_code == 1 and json.loads(looked.stdout)["matches"][0]["entry_id"] == "img3.png"
    report = tmp_path / "r.jsonl"
    scanned = runner.invoke(main, ["scan", str(data), "--store", str(store), "--report", str(report), "--quiet"])
    assert scanned.exit_code == 1, scanned.output
    rows = {os.path.basename(r["path"]): r for r in map(json.loads, report.read_text().splitlines()[:-1])}
    for name, row in rows.items():
        assert row["hashes"]["whash"] == whash_of(data / name)
        hits = {m["entry_id"]: m["distance"] for m in row["matches"]}
        want = {entry: bin(int(row["hashes"]["whash"], 16) ^ int(h, 16)).count("1")
                for entry, h in listed.items()}
        assert hits == {e: d for e, d in want.items() if d <= signals.get("whash").default_threshold}, name
    assert rows["img0.png"]["matches"][0]["distance"] == 0
    assert rows["img3.png"]["matches"][0]["entry_id"] == "img3.png"
