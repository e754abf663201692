"""Resuming reports whose rows hold hostile file names: CSV records are parsed, never
judged by physical lines (a name may hold newlines, commas, quotes and the word summary)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from imagegen import encode, make_rgb

from hashmatch import Hasher
from hashmatch.cli import main

HOSTILE = ['a\n,x,y,summary,z.jpg', 'b"\r\n"",summary,\u2028c.png', "plain.jpg", "d\x1ce\x85f.jpg"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-names")
    data = root / "data"
    data.mkdir()
    for i, name in enumerate(HOSTILE):
        (data / name).write_bytes(encode(make_rgb(80, 60, seed=40 + i, kind="shapes"), "JPEG"))
    listed = Hasher(("pdq",)).hash(data / HOSTILE[0]).hashes["pdq"]
    lst = root / "l.txt"
    lst.write_text(f"pdq {listed}\n")
    return data, lst


def scan(tree, report: Path, fmt: str, *extra: str) -> None:
    data, lst = tree
    result = CliRunner().invoke(main, ["scan", str(data), "--list", str(lst), "--report", str(report),
                                       "--format", fmt, "--workers", "1", "--quiet", *extra])
    assert result.exit_code == 1, result.output


def rows(report: Path, fmt: str) -> tuple[list[tuple], dict]:
    if fmt == "csv":
        got = list(csv.DictReader(report.open(newline="", encoding="utf-8", errors="surrogateescape")))
        assert sum(r["status"] == "summary" for r in got) == 1 and got[-1]["status"] == "summary"
        return sorted((r["path"], r["status"], r["sha256"]) for r in got[:-1]), json.loads(got[-1]["summary"])
    records = [json.loads(line) for line in report.read_text().split("\n") if line]
    assert "summary" in records[-1] and sum("summary" in r for r in records) == 1
    return sorted((r["path"], r["status"], r["sha256"]) for r in records[:-1]), records[-1]["summary"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_resume_after_every_cut_point_gives_the_full_report(tree, tmp_path, fmt):
    full = tmp_path / f"full.{fmt}"
    scan(tree, full, fmt)
    want, summary = rows(full, fmt)
    assert len(want) == len(HOSTILE) and {p.split("/")[-1] for p, _, _ in want} == set(HOSTILE)
    assert summary["files"] == len(HOSTILE) and summary["matched"] == 1
    data = full.read_bytes()
    # Cut everywhere a record could be cut: after each newline (inside a quoted name
    # too) and in the middle of each line.
    cuts = sorted({i + 1 for i, b in enumerate(data) if b == 0x0A} | {i + 3 for i, b in enumerate(data) if b == 0x0A})
    for cut in cuts:
        if cut >= len(data):
            continue
        report = tmp_path / f"cut-{cut}.{fmt}"
        report.write_bytes(data[:cut])
        scan(tree, report, fmt, "--resume")
        got, resumed = rows(report, fmt)
        assert got == want, cut
        assert resumed["files"] == len(HOSTILE) and resumed["matched"] == 1, cut
