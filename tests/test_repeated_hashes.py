"""Repeated hashes end to end: a list holding one hash on several lines imports (every
line its own entry), and a lookup or scan reports every entry it hits, each with its own
evidence; a tx CSV's DISPUTED entries match and say so."""
from __future__ import annotations

import json

from click.testing import CliRunner
from imagegen import encode, make_rgb

from hashmatch import Hasher
from hashmatch.cli import main


def test_one_pdq_hash_twice_with_different_ids_both_reported(tmp_path):
    image = tmp_path / "data" / "photo.png"
    image.parent.mkdir()
    image.write_bytes(encode(make_rgb(120, 90, seed=4, kind="shapes"), "PNG"))
    pdq = Hasher(("pdq",)).hash(image).hashes["pdq"]
    lst = tmp_path / "list.csv"
    lst.write_text("algorithm,hash,category,id\n"
                   f"pdq,{pdq},csam,source-a-17\n"
                   f"pdq,{pdq.upper()},csam,source-b-9\n"  # the same picture from a second source
                   f"pdq,{pdq},csam,source-a-17\n")  # an exact repeat: merged
    runner = CliRunner()
    imported = runner.invoke(main, ["list", "import", str(lst), "--store", str(tmp_path / "s")])
    assert imported.exit_code == 0, imported.output
    assert "imported 2 entries (2 pdq)" in imported.stderr and "1 repeated lines merged" in imported.stderr
    looked = runner.invoke(main, ["lookup", "--store", str(tmp_path / "s"), f"pdq {pdq}"])
    record = json.loads(looked.stdout)
    assert looked.exit_code == 1
    assert sorted(m["entry_id"] for m in record["matches"]) == ["source-a-17", "source-b-9"]
    report = tmp_path / "r.jsonl"
    scanned = runner.invoke(main, ["scan", str(image.parent), "--list", str(lst), "--report", str(report), "--quiet"])
    assert scanned.exit_code == 1  # `scan --list` with repeats used to exit 2 without scanning
    row = json.loads(report.read_text().splitlines()[0])
    assert sorted((m["entry_id"], m["distance"]) for m in row["matches"]) == [("source-a-17", 0), ("source-b-9", 0)]


def test_disputed_tx_entries_match_and_carry_the_opinion(tmp_path):
    pdq, other = "f" * 32 + "0" * 32, "0" * 32 + "f" * 32
    lst = tmp_path / "tx.csv"
    lst.write_bytes(b"collab,signal_type,signal_str,category,tags\r\n"
                    + f"Sample Data,pdq,{pdq},DISPUTED,\r\n".encode()
                    + f"Sample Data,pdq,{other},POSITIVE_CLASS,t1 t2\r\n".encode())
    store = tmp_path / "s"
    runner = CliRunner()
    assert runner.invoke(main, ["list", "import", str(lst), "--store", str(store)]).exit_code == 0
    record = json.loads(runner.invoke(main, ["lookup", "--store", str(store), f"pdq {pdq}"]).stdout)
    assert record["status"] == "match" and record["matches"][0]["tags"] == ["disputed", "collab:Sample Data"]
    record = json.loads(runner.invoke(main, ["lookup", "--store", str(store), f"pdq {other}"]).stdout)
    assert record["matches"][0]["tags"] == ["t1", "t2", "collab:Sample Data"]
