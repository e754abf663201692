"""Lists read and imported in parts (lists.read_list_parts, store/importer.py): a list of
100M entries is never held whole. The parts of a list must give what reading it whole
gives (entries, rejections, the store's rows and code arrays), apart from the documented
difference: a line repeating a line of an earlier part exactly is kept, not merged."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import hashmatch.lists as lists
from hashmatch.cli import main
from hashmatch.errors import ListFormatError, StoreError
from hashmatch.lists import read_list, read_list_parts
from hashmatch.store.store import Store

N = 5_000


def _pdq(rng, n: int) -> list[str]:
    return [row.tobytes().hex() for row in rng.integers(0, 256, (n, 32), dtype=np.uint8)]


@pytest.fixture
def small_blocks(monkeypatch):
    """4 KiB read chunks, so a few thousand lines make several blocks (and parts)."""
    monkeypatch.setattr(lists, "CHUNK_BYTES", 4096)


def _write_csv(path, hashes, *, bad_lines=(), categories=None) -> None:
    with open(path, "w") as out:
        out.write("hash,algorithm,category,id\n")
        for i, value in enumerate(hashes):
            if i in bad_lines:
                value = "zz" + value[2:]
            category = categories[i] if categories else "test"
            out.write(f"{value},pdq,{category},e{i}\n")


def _columns(parsed) -> list[tuple]:
    return list(zip(parsed.algorithms, parsed.hashes, parsed.categories, parsed.entry_ids, parsed.dates,
                    parsed.tags, parsed.lines.tolist()))


def test_parts_concatenate_to_the_whole_list(tmp_path, small_blocks):
    rng = np.random.default_rng(1)
    path = tmp_path / "list.csv"
    _write_csv(path, _pdq(rng, N), categories=[("a", "b", None)[i % 3] or "" for i in range(N)])
    whole = read_list(path)
    parts = list(read_list_parts(path, part_entries=1_000))
    assert len(parts) >= 4 and all(len(p) >= 1_000 for p in parts[:-1])
    assert sum((_columns(p) for p in parts), []) == _columns(whole)
    assert len(whole) == N


def test_rejections_are_gathered_from_every_part(tmp_path, small_blocks):
    rng = np.random.default_rng(2)
    path = tmp_path / "list.csv"
    bad = {10, 2_500, 4_990}
    _write_csv(path, _pdq(rng, N), bad_lines=bad)
    whole = read_list(path, skip_invalid=True)
    parts = list(read_list_parts(path, part_entries=1_000, skip_invalid=True))
    assert len(parts) > 2
    assert [r for p in parts for r in p.rejected] == whole.rejected
    assert sorted(r.line for r in whole.rejected) == sorted(i + 2 for i in bad)  # after the header line
    late = tmp_path / "late.csv"
    _write_csv(late, _pdq(rng, N), bad_lines={4_990})
    got = []
    with pytest.raises(ListFormatError, match="line 4992"):  # strict: raised by the part that holds it
        for part in read_list_parts(late, part_entries=1_000):
            got.append(len(part))
    assert len(got) >= 3 and sum(got) < 4_990


def test_repeats_are_merged_within_a_part_and_kept_across_parts(tmp_path, small_blocks):
    rng = np.random.default_rng(3)
    hashes = _pdq(rng, N)
    path = tmp_path / "list.csv"
    with open(path, "w") as out:
        out.write("hash,algorithm,category,id\n")
        lines = [f"{h},pdq,test,e{i}\n" for i, h in enumerate(hashes)]
        out.writelines(lines[:100] + [lines[5]] + lines[100:] + [lines[7]])  # a near and a far repeat
    whole = read_list(path)
    assert whole.merged == 2 and len(whole) == N
    parts = list(read_list_parts(path, part_entries=1_000))
    assert sum(p.merged for p in parts) == 1  # the far repeat lands in a later part: kept
    assert sum(len(p) for p in parts) == N + 1


def test_formats_whose_rows_depend_on_each_other_are_one_part(tmp_path, small_blocks):
    rng = np.random.default_rng(4)
    hashes = _pdq(rng, 3_000)
    path = tmp_path / "list.jsonl"
    with open(path, "w") as out:
        for i, h in enumerate(hashes):
            out.write(json.dumps({"hash": h, "algorithm": "pdq", "id": f"e{i}"}) + "\n")
        out.write(json.dumps({"hash": _pdq(rng, 1)[0], "algorithm": "pdq", "deleted": True}) + "\n")
    parts = list(read_list_parts(path, part_entries=100))
    assert len(parts) == 1 and len(parts[0].retracted) == 1  # a later line may withdraw an earlier one
    assert _columns(parts[0]) == _columns(read_list(path))


def test_store_import_in_parts_equals_the_whole_import(tmp_path, small_blocks):
    rng = np.random.default_rng(5)
    path = tmp_path / "list.csv"
    _write_csv(path, _pdq(rng, N) + _pdq(rng, 10)[:1] * 3)  # a hash listed three times (ids differ)
    whole = Store.create(tmp_path / "whole").import_list(read_list(path), name="l", version="1")
    parted = Store.create(tmp_path / "parts").import_list(read_list_parts(path, part_entries=700),
                                                          name="l", version="1")
    rows = [(e.id, e.algorithm, e.hash, e.category, e.entry_id) for e in whole.iter_entries()]
    assert rows == [(e.id, e.algorithm, e.hash, e.category, e.entry_id) for e in parted.iter_entries()]
    for store in (whole, parted):
        store.check_consistency()  # code arrays against the database, row by row
    np.testing.assert_array_equal(whole.arrays["pdq"].codes, parted.arrays["pdq"].codes)
    np.testing.assert_array_equal(whole.arrays["pdq"].ids, parted.arrays["pdq"].ids)
    reopened = Store.open(tmp_path / "parts")
    assert reopened.lists()[0].entries == N + 3


def test_a_bad_later_part_commits_nothing(tmp_path, small_blocks):
    rng = np.random.default_rng(6)
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    _write_csv(good, _pdq(rng, 500))
    _write_csv(bad, _pdq(rng, N), bad_lines={4_000})
    store = Store.create(tmp_path / "s").import_list(read_list(good), name="l", version="1")
    with pytest.raises(ListFormatError, match="line 4002"):
        store.import_list(read_list_parts(bad, part_entries=1_000), name="l", version="2")
    again = Store.open(tmp_path / "s")
    assert again.generation == store.generation
    assert [(i.name, i.version, i.entries) for i in again.lists()] == [("l", "1", 500)]
    with pytest.raises(StoreError, match="no list parts"):
        store.import_list(iter([]), name="l", version="3")


def test_cli_import_streams_and_reports_every_part(tmp_path, small_blocks, monkeypatch):
    monkeypatch.setattr(lists, "PART_ENTRIES", 1_000)
    monkeypatch.setattr(lists.read_list_parts, "__kwdefaults__", {**lists.read_list_parts.__kwdefaults__,
                                                                  "part_entries": 1_000})
    rng = np.random.default_rng(7)
    path = tmp_path / "list.csv"
    _write_csv(path, _pdq(rng, N), bad_lines={20, 3_000})
    seen = []
    real = lists.read_list_parts

    def spy(*args, **kwargs):
        for part in real(*args, **kwargs):
            seen.append(len(part))
            yield part
    monkeypatch.setattr(lists, "read_list_parts", spy)
    result = CliRunner().invoke(main, ["list", "import", str(path), "--store", str(tmp_path / "s"),
                                       "--skip-invalid"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(seen) > 2 and sum(seen) == N - 2
    assert f"imported {N - 2} entries ({N - 2} pdq)" in result.output
    assert "2 invalid lines skipped" in result.output
    assert Store.open(tmp_path / "s").lists()[0].entries == N - 2


def test_a_later_parts_retraction_removes_what_earlier_parts_listed(tmp_path):
    """Parts handed over by code (or a plug-in format): the later statement wins."""
    rng = np.random.default_rng(8)
    first, second = _pdq(rng, 300), _pdq(rng, 200)
    later = lists.ParsedList.from_hashes("pdq", second)
    later.retracted = [lists.Retracted(900, "pdq", first[3], None, "deleted")]
    store = Store.create(tmp_path / "s").import_list(iter([lists.ParsedList.from_hashes("pdq", first), later]),
                                                     name="l", version="1")
    store.check_consistency()
    assert store.lists()[0].entries == 499
    assert not store.find("pdq", first[3]) and store.find("pdq", first[4])
    assert len(store.arrays["pdq"].ids) == 499
