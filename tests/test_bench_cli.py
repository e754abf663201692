"""`hashmatch bench`: every part runs and reports sane, self-consistent numbers (no
timing assertions: this only checks the measurement machinery and its outputs)."""
from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner
from imagegen import encode, make_rgb

from hashmatch.cli import main
from hashmatch.errors import ConfigurationError
from hashmatch.evaluation.bench import parse_sizes


def test_bench_command(tmp_path):
    pytest.importorskip("matplotlib")
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        (images / f"i{i}.jpg").write_bytes(encode(make_rgb(160, 120, seed=i, kind="shapes"), "JPEG"))
    out = tmp_path / "bench.json"
    got = CliRunner().invoke(main, ["bench", "--sizes", "3000", "--images", str(images), "--scan-files", "6",
                                    "--compare", "-o", str(out), "--plot", str(tmp_path / "charts"), "-q"])
    assert got.exit_code == 0, got.output
    result = json.loads(out.read_text())
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    parts = {r["part"] for r in result["rows"]}
    assert parts == {"hashing", "hashing-compare", "matching", "scan"}
    matching = {r["engine"]: r for r in result["rows"] if r["part"] == "matching"}
    assert set(matching) == {"flat", "mih", "faiss-multihash"}
    assert all(r["recall"] == 1.0 and r["lookups_per_s"] > 0 for r in matching.values())
    assert 32 <= matching["flat"]["bytes_per_entry"] < 33  # the codes, plus a fixed header
    scan = next(r for r in result["rows"] if r["part"] == "scan")
    assert scan["files"] == 6 and scan["files_per_s"] > 0
    hashing = [r for r in result["rows"] if r["part"] == "hashing"]
    assert {r["what"] for r in hashing} >= {"decode only (Pillow)", "hashmatch pdq", "hashmatch phash"}
    assert "| entries | engine |" in got.stdout
    assert (tmp_path / "charts" / "lookups.png").exists() and (tmp_path / "charts" / "hashing.png").exists()


def test_sizes():
    assert parse_sizes("100k, 1m,10m,5000") == [100_000, 1_000_000, 10_000_000, 5000]
    with pytest.raises(ConfigurationError):
        parse_sizes("lots")
