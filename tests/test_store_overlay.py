"""Small store changes as overlays (hashmatch/store/overlay.py): every change leaves a
store that reads, matches, counts and exports exactly as a full rewrite would, the
oracle being the entry database itself (SQL over every visible row) and numpy brute
force; the overlay writes only what changed, compacts when it grows, and is verified
like every other file. OVERLAY_MIN_BASE is lowered so a 6,000-entry base qualifies."""
from __future__ import annotations

import numpy as np
import pytest

from hashmatch.errors import StoreIntegrityError
from hashmatch.lists import ParsedList
from hashmatch.matching.matcher import Matcher
from hashmatch.store import overlay as store_overlay
from hashmatch.store.manifest import Manifest
from hashmatch.store.store import Store

RNG = np.random.default_rng(77)


def codes_hex(n: int, nbytes: int = 32) -> list[str]:
    raw = RNG.integers(0, 256, (n, nbytes), dtype=np.uint8).tobytes().hex()
    return [raw[2 * nbytes * i:2 * nbytes * (i + 1)] for i in range(n)]


@pytest.fixture(autouse=True)
def small_bases(monkeypatch):
    monkeypatch.setattr(store_overlay, "OVERLAY_MIN_BASE", 1_000)


@pytest.fixture()
def base(tmp_path) -> Store:
    store = Store.create(tmp_path / "store")
    store = store.import_list(ParsedList.from_hashes("pdq", codes_hex(6000), category="c"), name="big", version="1")
    store = store.import_list(ParsedList.from_hashes("md5", codes_hex(300, 16)), name="exact", version="1")
    assert store.manifest.overlay is not None  # 300 rows on a 6,000-row base: an overlay
    return store


def _visible(store: Store) -> dict[int, tuple]:
    return {e.id: (e.algorithm, e.hash, e.list_name, e.list_version, e.disabled) for e in store.iter_entries()}


def _check(store: Store) -> None:
    """The store reads the same from disk, its arrays equal its rows, its counts and lists
    equal SQL over the visible rows, and matching equals brute force over the active codes."""
    store.check_consistency()
    again = Store.open(store.path)
    again.check_consistency()
    assert _visible(again) == _visible(store)
    rows = list(again.iter_entries())
    for algorithm, counts in again.manifest.counts.items():
        mine = [e for e in rows if e.algorithm == algorithm]
        assert counts == {"active": sum(not e.disabled for e in mine), "disabled": sum(e.disabled for e in mine)}
    assert {item["name"]: item["entries"] for item in again.manifest.lists} == \
        {info.name: info.entries for info in again.lists()}
    active = [e for e in rows if e.algorithm == "pdq" and not e.disabled]
    codes = np.frombuffer(bytes.fromhex("".join(e.hash for e in active)), np.uint8).reshape(-1, 32)
    ids = np.array([e.id for e in active])
    matcher = Matcher(again, algorithms=("pdq", "md5"))
    for e in active[:: max(1, len(active) // 15)] + rows[:3]:
        if e.algorithm != "pdq":
            continue
        query = np.frombuffer(bytes.fromhex(e.hash), np.uint8)
        want = set(ids[np.unpackbits(codes ^ query, axis=1).sum(axis=1) <= 31].tolist())
        got = {m.store_id for m in matcher.match_hashes({"pdq": e.hash}).matches}
        assert got == want
    for e in rows:
        if e.algorithm == "md5":
            hit = {m.store_id for m in matcher.match_hashes({"md5": e.hash}).matches}
            assert (e.id in hit) == (not e.disabled)


def test_small_changes_go_into_an_overlay_and_read_as_a_full_store(base: Store) -> None:
    store = base
    big = [e for e in store.iter_entries() if e.list_name == "big"]
    store = store.set_disabled([big[0].id, big[1].id, big[2].id], True, "false positive")
    assert store.manifest.overlay is not None
    _check(store)
    store = store.set_disabled([big[1].id], False)
    _check(store)
    store = store.remove_entries([big[3].id, big[0].id], "retracted")
    assert {r["id"] for r in store.removed()} >= {big[3].id, big[0].id}
    _check(store)
    store = store.import_list(ParsedList.from_hashes("pdq", codes_hex(100)), name="small", version="1")
    assert store.manifest.overlay is not None
    _check(store)
    store = store.import_list(ParsedList.from_hashes("pdq", codes_hex(80)), name="small", version="2")
    _check(store)
    assert {info.name: (info.version, info.entries) for info in store.lists()}["small"] == ("2", 80)
    store = store.remove_list("small")
    _check(store)
    assert "small" not in {info.name for info in store.lists()}
    # Ids never repeat, removed ones included.
    store = store.import_list(ParsedList.from_hashes("md5", codes_hex(5, 16)), name="late", version="1")
    late = [e.id for e in store.iter_entries() if e.list_name == "late"]
    assert min(late) > max(r["id"] for r in store.removed())
    _check(store)


def test_a_disable_writes_only_the_overlay(base: Store) -> None:
    before = {name: meta["bytes"] for name, meta in base.manifest.files.items()}
    entry = next(iter(base.iter_entries()))
    after = base.set_disabled([entry.id], True, "false positive")
    new = {name: meta["bytes"] for name, meta in after.manifest.files.items() if name not in before}
    kept = set(before) & set(after.manifest.files)
    assert base.manifest.database in kept and all(base.manifest.arrays["pdq"][k] in kept for k in ("codes", "ids"))
    assert sum(new.values()) < 0.2 * sum(before.values())
    # new: the overlay database, the hidden ids, and the overlay's delta arrays (its md5 list)
    assert set(new) - {after.manifest.overlay, after.manifest.hidden["ids"]} <= \
        {meta["delta"][k] for meta in after.manifest.arrays.values() if "delta" in meta for k in ("codes", "ids")}


def test_the_overlay_compacts_into_a_new_base(base: Store, monkeypatch) -> None:
    monkeypatch.setattr(store_overlay, "OVERLAY_MAX_ROWS", 40)
    store = base
    ids = [e.id for e in store.iter_entries()][:30]
    for chunk in (ids[:5], ids[5:10], ids[10:30]):
        store = store.set_disabled(chunk, True, "fp")
        _check(store)
    assert store.manifest.overlay is None  # the third change would have passed the limit: a full generation
    assert store.manifest.counts["pdq"]["disabled"] + store.manifest.counts.get("md5", {}).get("disabled", 0) == 30


def test_reload_reuses_the_base(base: Store) -> None:
    matcher = Matcher(base, algorithms=("pdq",))
    entry = next(e for e in base.iter_entries() if e.algorithm == "pdq")
    base.set_disabled([entry.id], True, "fp")
    fresh = matcher.reload()
    assert fresh.store.manifest.overlay is not None
    assert fresh._engines["pdq"] is matcher._engines["pdq"]  # the base's engine, not rebuilt
    assert entry.id not in {m.store_id for m in fresh.match_hashes({"pdq": entry.hash}).matches}
    assert entry.id in {m.store_id for m in matcher.match_hashes({"pdq": entry.hash}).matches}  # its own generation


def test_damaged_overlay_files_are_refused(base: Store) -> None:
    entry = next(iter(base.iter_entries()))
    store = base.set_disabled([entry.id], True, "fp")
    for name in (store.manifest.overlay, store.manifest.hidden["ids"]):
        path = store.path / name
        original = path.read_bytes()
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(StoreIntegrityError):
            Store.open(store.path)
        path.write_bytes(original)
    Store.open(store.path).check_consistency()


def test_old_overlays_are_removed(base: Store) -> None:
    """Files of earlier overlays go once a newer generation is committed; the base stays."""
    ids = [e.id for e in base.iter_entries()][:4]
    store = base
    for entry in ids:
        store = store.set_disabled([entry], True, "fp")
    on_disk = {p.name for p in store.path.iterdir() if p.name not in ("manifest.json", ".lock", "audit.jsonl")}
    assert on_disk == set(store.manifest.files)


def _damage_hash_bytes(path, blob: bytes) -> None:
    """Change one byte of a stored hash value in a database file, in place (the audit's
    attack: the same inode, written after a long-running writer loaded the store)."""
    data = bytearray(path.read_bytes())
    at = data.find(blob)
    assert at >= 0, "the hash's bytes are in the file"
    data[at] ^= 0x01
    with open(path, "r+b") as handle:
        handle.write(bytes(data))


@pytest.mark.parametrize("damaged", ["overlay", "database"])
def test_a_writer_never_launders_damage_into_a_new_generation(base, damaged):
    """Audit, issue 24 item 1: damage a listed MD5 in the overlay (or the base) after a
    writer loaded the store; its next change must be refused, not committed with a fresh
    checksum over the damaged bytes, and the store must stay refused on open."""
    writer = base.set_disabled([1], True, "first overlay change")  # a long-running writer (the service)
    assert writer.manifest.overlay is not None
    # The fixture's MD5 list went into the overlay, its PDQ list into the base database.
    listed = next(e for e in writer.iter_entries() if e.algorithm == ("md5" if damaged == "overlay" else "pdq"))
    target = writer.path / getattr(writer.manifest, damaged)
    before = writer.manifest.generation
    _damage_hash_bytes(target, bytes.fromhex(listed.hash))
    with pytest.raises(StoreIntegrityError, match="checksum"):
        writer.set_disabled([2], True, "a change after the damage")
    with pytest.raises(StoreIntegrityError, match="checksum"):
        Store.open(writer.path)
    # the manifest still names the damaged generation: nothing was committed
    assert Manifest.from_json((writer.path / "manifest.json").read_text()).generation == before


def test_a_full_rewrite_never_launders_a_damaged_base(base, monkeypatch):
    """The same attack on the full-copy path (a change too large for an overlay)."""
    monkeypatch.setattr(store_overlay, "OVERLAY_MIN_BASE", 10**9)
    pdq = next(e for e in base.iter_entries() if e.algorithm == "pdq")
    _damage_hash_bytes(base.path / base.manifest.database, bytes.fromhex(pdq.hash))
    with pytest.raises(StoreIntegrityError, match="checksum"):
        base.set_disabled([2], True, "a change after the damage")
