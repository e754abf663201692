"""`hashmatch hash`: records, formats, options, errors as records, exit status, output file."""
from __future__ import annotations

import csv
import io
import json
import os
import stat

import pytest
from click.testing import CliRunner
from imagegen import encode, make_rgb

from hashmatch import Hasher
from hashmatch.cli import main


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "a.jpg").write_bytes(encode(make_rgb(120, 90, seed=1, kind="shapes"), "JPEG"))
    (tmp_path / "sub" / "b.png").write_bytes(encode(make_rgb(64, 80, seed=2, kind="gradient"), "PNG"))
    (tmp_path / "sub" / "deeper" / "c.webp").write_bytes(encode(make_rgb(99, 77, seed=3), "WEBP"))
    (tmp_path / "sub" / "broken.jpg").write_bytes(encode(make_rgb(120, 90, seed=4), "JPEG")[:300])
    (tmp_path / "notes.txt").write_text("not an image")
    os.mkfifo(tmp_path / "sub" / "pipe.jpg")
    return tmp_path


def run(*args):
    result = CliRunner().invoke(main, ["hash", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout


def test_folder_recursive_jsonl_one_record_per_file_errors_as_records(tree):
    code, out = run("-a", "pdq", "--algorithm", "phash,md5", tree)
    records = [json.loads(line) for line in out.splitlines()]
    by_name = {os.path.relpath(r["path"], tree): r for r in records}
    assert sorted(by_name) == ["a.jpg", "notes.txt", "sub/b.png", "sub/broken.jpg", "sub/deeper/c.webp", "sub/pipe.jpg"]
    expected = Hasher(("pdq", "phash", "md5")).hash(tree / "a.jpg")
    assert {k: by_name["a.jpg"][k] for k in ("pdq", "phash", "md5")} == expected.hashes
    assert by_name["a.jpg"]["pdq_quality"] == expected.pdq_quality
    assert by_name["sub/broken.jpg"]["error"]["type"] == "TruncatedImageError"
    assert by_name["notes.txt"]["error"]["code"] == "unsupported_format"
    assert by_name["sub/pipe.jpg"]["error"]["code"] == "not_regular_file"
    assert code == 1  # some files failed


def test_exit_zero_when_every_file_hashed_and_csv_format(tree):
    code, out = run("--format", "csv", "-a", "pdq,sha256", "--dihedral", tree / "a.jpg", tree / "sub" / "b.png")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2 and rows[0]["error_type"] == ""
    result = Hasher(("pdq", "sha256"), dihedral=True).hash(tree / "a.jpg")
    assert rows[0]["pdq"] == result.hashes["pdq"] and rows[0]["sha256"] == result.hashes["sha256"]
    assert rows[0]["pdq_rot90"] == result.pdq_dihedral["rot90"]


def test_pdq_mode_option(tree):
    _, out = run("--pdq-mode", "cimg512", tree / "a.jpg")
    record = json.loads(out)
    assert record["pdq_mode"] == "cimg512"
    assert record["pdq"] == Hasher(pdq_mode="cimg512").hash(tree / "a.jpg").hashes["pdq"]


def test_output_file_is_private_and_complete(tree, tmp_path):
    target = tmp_path / "out" / "hashes.jsonl"
    target.parent.mkdir()
    code, out = run("-o", target, "-w", "2", tree / "sub")
    assert out == "" and code == 1
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert len(target.read_text().splitlines()) == 4
    assert [p.name for p in target.parent.iterdir()] == ["hashes.jsonl"]  # no temp file left


def test_usage_errors_exit_2(tree):
    assert run("-a", "sha512", tree)[0] == 2
    assert run("--dihedral", "-a", "phash", tree)[0] == 2
    assert run(tree / "missing.jpg")[0] == 2
