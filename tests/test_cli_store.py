"""`hashmatch list ...` and `hashmatch lookup`: import (all or nothing, --skip-invalid),
show, export round trip, remove, disable/enable, lookups from arguments and stdin, exit
statuses. The expected matches come from numpy brute force over the same hashes."""
from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner

from hashmatch.cli import main
from hashmatch.lists import read_list
from hashmatch.store.store import Store


def cli(*args, input=None):
    result = CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def random_codes(seed: int, n: int, nbytes: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, nbytes), dtype=np.uint8)


def flip(code: np.ndarray, nbits: int, seed: int) -> np.ndarray:
    out = code.copy()
    for b in np.random.default_rng(seed).choice(8 * len(code), nbits, replace=False):
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


@pytest.fixture
def lists(tmp_path):
    pdq = random_codes(1, 200)
    md5 = random_codes(2, 20, 16)
    csv_path = tmp_path / "gifct.csv"
    rows = ["hash,signal_type,category,id,tags"]
    rows += [f"{c.tobytes().hex().upper()},pdq,terrorism,g{i},a;b" for i, c in enumerate(pdq)]
    rows += [f"{c.tobytes().hex()},md5,terrorism,m{i}," for i, c in enumerate(md5)]
    csv_path.write_text("\n".join(rows) + "\n")
    text_path = tmp_path / "ncii.txt"
    other = random_codes(3, 50)
    text_path.write_text("".join(f"pdq {c.tobytes().hex()}\n" for c in other))
    return {"dir": tmp_path, "csv": csv_path, "text": text_path, "pdq": pdq, "md5": md5, "other": other}


def test_import_show_lookup_export(lists, tmp_path):
    store = tmp_path / "store"
    code, _, err = cli("list", "import", lists["csv"], "--store", store, "--version", "2026-11")
    assert code == 0, err
    assert "imported 220 entries (20 md5, 200 pdq)" in err
    code, _, err = cli("list", "import", lists["text"], "--store", store, "--name", "ncii", "--category", "ncii")
    assert code == 0, err

    # every data file is private
    for path in store.iterdir():
        if path.is_file() and path.name != ".lock":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    code, out, _ = cli("list", "show", "--store", store, "--json")
    shown = json.loads(out)
    assert {(info["name"], info["version"], info["entries"]) for info in shown["lists"]} == {
        ("gifct", "2026-11", 220), ("ncii", _sha12(lists["text"]), 50)}

    # a near copy of entry 7 (20 bits off) matches it and whatever else brute force finds
    query = flip(lists["pdq"][7], 20, seed=9)
    everything = np.concatenate([lists["pdq"], lists["other"]])
    want = np.bitwise_count(everything ^ query).sum(axis=1)
    code, out, _ = cli("lookup", "--store", store, "pdq " + query.tobytes().hex())
    record = json.loads(out)
    assert code == 1 and record["status"] == "match"
    got = sorted(m["distance"] for m in record["matches"])
    assert got == sorted(want[want <= 31].tolist())
    hit = [m for m in record["matches"] if m["entry_id"] == "g7"][0]
    assert hit == {**hit, "algorithm": "pdq", "distance": 20, "threshold": 31, "list_name": "gifct",
                   "list_version": "2026-11", "category": "terrorism"}

    # stdin, bare hex (length decides the algorithm), an exact md5, a miss, a bad line
    far = flip(lists["pdq"][3], 40, seed=1)
    stdin = "\n".join([lists["md5"][4].tobytes().hex(), far.tobytes().hex(), "sha1 xyz", ""])
    code, out, _ = cli("lookup", "--store", store, input=stdin)
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and len(records) == 3
    assert [m["entry_id"] for m in records[0]["matches"]] == ["m4"]
    d_far = np.bitwise_count(everything ^ far).sum(axis=1)
    assert records[1]["status"] == ("match" if (d_far <= 31).any() else "no_match")
    assert "error" in records[2]

    # a tighter threshold from the command line drops the 20-bit match
    code, out, _ = cli("lookup", "--store", store, "-t", "pdq=19", "pdq " + query.tobytes().hex())
    assert all(m["distance"] <= 19 for m in json.loads(out)["matches"])

    # export round trip in every format
    for fmt in ("text", "csv", "jsonl"):
        target = tmp_path / f"export.{fmt}"
        code, _, err = cli("list", "export", "--store", store, "--name", "gifct", "--format", fmt, "-o", target)
        assert code == 0, err
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        back = read_list(target, format=fmt)
        assert sorted(back.hashes) == sorted([c.tobytes().hex() for c in lists["pdq"]]
                                             + [c.tobytes().hex() for c in lists["md5"]])
        if fmt != "text":
            assert set(back.categories) == {"terrorism"}
            assert sorted(back.entry_ids) == sorted([f"g{i}" for i in range(200)] + [f"m{i}" for i in range(20)])


def _sha12(path) -> str:
    import hashlib
    return hashlib.sha256(open(path, "rb").read()).hexdigest()[:12]


def test_disable_enable_and_remove(lists, tmp_path):
    store = tmp_path / "store"
    assert cli("list", "import", lists["csv"], "--store", store)[0] == 0
    target = lists["pdq"][11].tobytes().hex()
    assert cli("lookup", "--store", store, "pdq " + target)[0] == 1
    code, _, err = cli("list", "disable", "--store", store, "--hash", f"pdq:{target}", "--reason", "false positive")
    assert code == 0, err
    code, out, _ = cli("lookup", "--store", store, "pdq " + target)
    assert all(m["entry_id"] != "g11" for m in json.loads(out)["matches"])
    # disabled entries stay auditable
    entries = Store.open(store).find("pdq", target)
    assert [(e.disabled, e.disabled_reason) for e in entries] == [(True, "false positive")]
    assert cli("list", "enable", "--store", store, "--hash", f"pdq:{target}")[0] == 0
    assert cli("lookup", "--store", store, "pdq " + target)[0] == 1
    assert cli("list", "remove", "--store", store, "--name", "gifct")[0] == 0
    assert cli("lookup", "--store", store, "pdq " + target)[0] == 0
    assert len(Store.open(store).removed()) == 220


def test_bad_line_imports_nothing_unless_skip_invalid(lists, tmp_path):
    store = tmp_path / "store"
    bad = lists["dir"] / "bad.txt"
    lines = [f"pdq {c.tobytes().hex()}" for c in lists["other"][:5]]
    lines.insert(3, "pdq 1234")
    bad.write_text("\n".join(lines) + "\n")
    code, _, err = cli("list", "import", bad, "--store", store)
    assert code == 2 and "line 4" in err and "bad.txt" in err
    assert not (store / "manifest.json").exists() or Store.open(store).lists() == []

    rejects = tmp_path / "rejects.csv"
    code, _, err = cli("list", "import", bad, "--store", store, "--skip-invalid", "--rejects", rejects)
    assert code == 0, err
    assert Store.open(store).lists()[0].entries == 5
    assert "pdq 1234" in rejects.read_text() and stat.S_IMODE(rejects.stat().st_mode) == 0o600


def test_setup_errors_exit_2(tmp_path, lists):
    assert cli("lookup", "--store", tmp_path / "missing", "00" * 32)[0] == 2
    store = tmp_path / "store"
    assert cli("list", "import", lists["text"], "--store", store)[0] == 0
    assert cli("lookup", "--store", store, "-t", "md5=3", "00" * 32)[0] == 2
    assert cli("list", "export", "--store", store, "--name", "nope", "-o", tmp_path / "x.csv")[0] == 2
    # a corrupted data file is refused, not matched against
    codes = next(p for p in store.iterdir() if p.suffix == ".codes")
    os.chmod(codes, 0o600)
    data = bytearray(codes.read_bytes())
    data[5] ^= 1
    codes.write_bytes(bytes(data))
    code, _, err = cli("lookup", "--store", store, "00" * 32)
    assert code == 2 and "checksum" in err
