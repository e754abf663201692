"""Exact hashes for every regular file: a file that is not an image (a video, a PDF) or a
broken one still gets its MD5/SHA outcome, through hash, scan (local and Dask), and the
Python API; the decode problem stays in the row and never hides a match.

Oracle: hashlib over the file's bytes, and the list the test writes."""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from imagegen import encode, make_rgb

from hashmatch import DecodeLimits, Hasher, ImageError, InputTooLargeError, UnsupportedFormatError
from hashmatch.cli import main
from hashmatch.lists import read_list
from hashmatch.matching.matcher import Matcher
from hashmatch.store.store import Store


def digest(path: Path, name: str) -> str:
    return hashlib.new(name, path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("exact")
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(7)
    # A benign stand-in for a video: an MP4 box header followed by noise (no decoder here reads it).
    (data / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + rng.bytes(50_000))
    (data / "doc.pdf").write_bytes(b"%PDF-1.4\n" + rng.bytes(3_000) + b"\n%%EOF\n")
    jpeg = encode(make_rgb(200, 150, seed=3, kind="shapes"), "JPEG")
    (data / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (data / "other.bin").write_bytes(rng.bytes(2_000))  # not listed: no_match
    image = make_rgb(120, 90, seed=5, kind="shapes")
    (data / "photo.png").write_bytes(encode(image, "PNG"))
    listed_pdq = Hasher(("pdq",)).hash(data / "photo.png").hashes["pdq"]
    lst = root / "list.csv"
    lst.write_text("algorithm,hash,category,id\n"
                   f"md5,{digest(data / 'clip.mp4', 'md5')},video-cat,v1\n"
                   f"sha256,{digest(data / 'doc.pdf', 'sha256')},doc-cat,d1\n"
                   f"md5,{digest(data / 'cut.jpg', 'md5')},cut-cat,c1\n"
                   f"pdq,{listed_pdq},photo-cat,p1\n")
    return {"root": root, "data": data, "list": lst}


EXPECTED = {  # file -> (status, decode error code or None, [(algorithm, entry id)])
    "clip.mp4": ("match", "unsupported_format", [("md5", "v1")]),
    "doc.pdf": ("match", "unsupported_format", [("sha256", "d1")]),
    "cut.jpg": ("match", "truncated", [("md5", "c1")]),
    "other.bin": ("no_match", "unsupported_format", []),
    "photo.png": ("match", None, [("pdq", "p1")]),
}


def outcome(row: dict) -> tuple:
    return (row["status"], (row.get("decode_error") or {}).get("code"),
            sorted((m["algorithm"], m["entry_id"]) for m in row["matches"]))


def scan_rows(report: Path) -> tuple[dict[str, dict], dict]:
    records = [json.loads(line) for line in report.read_text().splitlines()]
    return {Path(r["path"]).name: r for r in records[:-1]}, records[-1]["summary"]


def test_scan_matches_files_that_are_not_images_by_their_exact_hashes(tree, tmp_path):
    report = tmp_path / "r.jsonl"
    result = CliRunner().invoke(main, ["scan", str(tree["data"]), "--list", str(tree["list"]), "-a", "pdq,md5,sha256",
                                       "--report", str(report), "--quiet"], catch_exceptions=False)
    assert result.exit_code == 1  # a match: before, every non-image was an error row and the exit status 0
    rows, summary = scan_rows(report)
    assert {name: outcome(row) for name, row in rows.items()} == EXPECTED
    for name, row in rows.items():
        path = tree["data"] / name
        assert row["size"] == path.stat().st_size and row["sha256"] == digest(path, "sha256")
        assert row["hashes"]["md5"] == digest(path, "md5")
        if row.get("decode_error"):
            assert "image" not in row and "pdq" not in row["hashes"] and row["decode_error"]["message"]
    clip = rows["clip.mp4"]["matches"][0]
    assert (clip["category"], clip["distance"], clip["threshold"], clip["list_name"]) == ("video-cat", 0, 0, "list")
    assert summary["not_decoded"] == 4 and summary["errors"] == 0
    assert summary["not_decoded_by_code"] == {"unsupported_format": 3, "truncated": 1}
    assert "4 not decoded as images" in result.stderr


def test_csv_report_keeps_the_decode_error_and_resumes(tree, tmp_path):
    import csv

    report = tmp_path / "r.csv"
    args = ["scan", str(tree["data"]), "--list", str(tree["list"]), "-a", "pdq,md5,sha256", "--format", "csv",
            "--report", str(report), "--quiet"]
    CliRunner().invoke(main, args, catch_exceptions=False)
    rows = list(csv.DictReader(report.open(newline="")))
    by_name = {Path(r["path"]).name: r for r in rows[:-1]}
    assert json.loads(by_name["cut.jpg"]["decode_error"])["code"] == "truncated"
    assert by_name["cut.jpg"]["status"] == "match" and not by_name["photo.png"]["decode_error"]
    lines = report.read_text().splitlines(keepends=True)
    report.write_text("".join(lines[:3]))  # cut after two rows, then resume
    CliRunner().invoke(main, args + ["--resume"], catch_exceptions=False)
    rows = list(csv.DictReader(report.open(newline="")))
    summary = json.loads(rows[-1]["summary"])
    assert len(rows) - 1 == len(EXPECTED) and summary["not_decoded"] == 4 and summary["resumed_rows"] == 2


def test_dask_scan_gives_the_same_exact_outcomes(tree, tmp_path):
    pytest.importorskip("distributed")
    report = tmp_path / "r.jsonl"
    result = CliRunner().invoke(main, ["scan", str(tree["data"]), "--list", str(tree["list"]), "-a", "pdq,md5,sha256",
                                       "--report", str(report), "--quiet", "--dask", "local:1"],
                                catch_exceptions=False)
    assert result.exit_code == 1
    rows, summary = scan_rows(report)
    assert {name: outcome(row) for name, row in rows.items()} == EXPECTED
    assert summary["not_decoded"] == 4


@pytest.mark.parametrize("kind", ["path", "bytes", "file"])
def test_matcher_match_on_a_non_image_returns_its_exact_outcome(tree, kind):
    store = Store.create(tree["root"] / f"store-{kind}").import_list(read_list(tree["list"]), name="known", version="1")
    matcher = Matcher(store)  # the store's algorithms: pdq, md5, sha256
    for name, (status, code, hits) in EXPECTED.items():
        path = tree["data"] / name
        source = {"path": path, "bytes": path.read_bytes(), "file": io.BytesIO(path.read_bytes())}[kind]
        result = matcher.match(source)
        assert result.status == status, name
        assert sorted((m.algorithm, m.entry_id) for m in result.matches) == hits, name
        assert (result.decode_error.code if result.decode_error else None) == code, name
        assert result.hashes["md5"] == digest(path, "md5")
        record = result.to_dict()
        assert (record.get("decode_error") or {}).get("code") == code


def test_a_matcher_without_exact_hashes_still_raises(tree):
    store = Store.create(tree["root"] / "store-pdq").import_list(
        read_list(tree["list"]), name="known", version="1")
    matcher = Matcher(store, algorithms=("pdq",))
    with pytest.raises(UnsupportedFormatError):
        matcher.match(tree["data"] / "clip.mp4")


def test_hasher_error_carries_the_exact_hashes(tree):
    path = tree["data"] / "clip.mp4"
    with pytest.raises(UnsupportedFormatError) as info:
        Hasher(("pdq", "md5", "sha1")).hash(path)
    assert info.value.file_hashes == {"md5": digest(path, "md5"), "sha1": digest(path, "sha1")}
    assert info.value.file_size == path.stat().st_size
    # Only exact hashes asked for: nothing is decoded, every readable file hashes.
    result = Hasher(("md5", "sha256")).hash(path)
    assert result.hashes == {"md5": digest(path, "md5"), "sha256": digest(path, "sha256")}
    assert result.width is None and result.to_dict() == {**result.hashes, "size": path.stat().st_size}


@pytest.mark.parametrize("kind", ["path", "bytes", "file"])
def test_files_over_the_decode_cap_are_streamed_through_their_exact_hashes(tmp_path, kind):
    path = tmp_path / "big.bin"
    path.write_bytes(np.random.default_rng(1).bytes(3 * 1024 * 1024 + 17))  # several stream chunks
    source = {"path": path, "bytes": path.read_bytes(), "file": open(path, "rb")}[kind]
    hasher = Hasher(("pdq", "md5", "sha256"), limits=DecodeLimits(max_bytes=100_000))
    with pytest.raises(InputTooLargeError, match="byte cap") as info:
        hasher.hash(source)
    assert info.value.file_hashes == {"md5": digest(path, "md5"), "sha256": digest(path, "sha256")}
    assert info.value.file_size == path.stat().st_size
    if kind == "file":
        source.close()


def test_scan_matches_a_file_over_the_byte_cap(tree, tmp_path):
    big = tmp_path / "data" / "big.mov"
    big.parent.mkdir()
    big.write_bytes(np.random.default_rng(2).bytes(2 * 1024 * 1024))
    lst = tmp_path / "l.csv"
    lst.write_text(f"algorithm,hash\nmd5,{digest(big, 'md5')}\n")
    report = tmp_path / "r.jsonl"
    result = CliRunner().invoke(main, ["scan", str(big.parent), "--list", str(lst), "-a", "pdq,md5",
                                       "--max-bytes", "1000", "--report", str(report), "--quiet"])
    assert result.exit_code == 1
    rows, _ = scan_rows(report)
    assert outcome(rows["big.mov"]) == ("match", "too_large", [("md5", None)])


def test_a_decode_that_times_out_or_kills_its_worker_keeps_the_exact_match(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    big = data / "big.png"
    big.write_bytes(encode(make_rgb(4000, 4000, seed=1, kind="gradient"), "PNG", compress_level=1))
    (data / "small.png").write_bytes(encode(make_rgb(64, 64, seed=2, kind="noise"), "PNG"))
    lst = tmp_path / "l.csv"
    lst.write_text(f"algorithm,hash,id\nmd5,{digest(big, 'md5')},big1\n")
    for limit, codes in ((["--timeout", "0.05"], {"timeout"}),
                         (["--memory-limit", "64"], {"out_of_memory", "worker_crashed"})):
        report = tmp_path / "r.jsonl"
        CliRunner().invoke(main, ["scan", str(data), "--list", str(lst), "-a", "pdq,md5", "--workers", "1",
                                  "--report", str(report), "--quiet", *limit], catch_exceptions=False)
        rows, _ = scan_rows(report)
        assert rows["big.png"]["status"] == "match", limit
        assert rows["big.png"]["decode_error"]["code"] in codes
        assert rows["big.png"]["matches"][0]["entry_id"] == "big1"
        assert rows["big.png"]["sha256"] == digest(big, "sha256")
        assert rows["small.png"]["status"] == "no_match"


def test_hash_command_keeps_exact_hashes_of_files_that_do_not_decode(tree):
    runner = CliRunner()
    result = runner.invoke(main, ["hash", "-a", "pdq,md5", str(tree["data"])])
    records = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert result.exit_code == 1  # some files could not be hashed with PDQ
    clip = records["clip.mp4"]
    assert clip["md5"] == digest(tree["data"] / "clip.mp4", "md5") and clip["error"]["code"] == "unsupported_format"
    assert "pdq" not in clip and clip["size"] == (tree["data"] / "clip.mp4").stat().st_size
    assert "error" not in records["photo.png"] and records["photo.png"]["pdq"]
    only_exact = runner.invoke(main, ["hash", "-a", "md5,sha256", str(tree["data"])])
    assert only_exact.exit_code == 0  # nothing to decode: every readable file hashes
    for record in map(json.loads, only_exact.stdout.splitlines()):
        path = Path(record["path"])
        assert record["md5"] == digest(path, "md5") and record["sha256"] == digest(path, "sha256")
        assert "error" not in record


def test_unreadable_files_stay_error_rows(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ImageError) as info:
        Hasher(("md5",)).hash(tmp_path / "pipe")
    assert info.value.code == "not_regular_file" and info.value.file_hashes is None
