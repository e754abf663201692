"""The store: generations, atomic 0600 files, checksums, versioned lists, removal,
disabling, and the matcher on top (thresholds, quality gate, dihedral, evidence)."""
from __future__ import annotations

import json
import os
import stat
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from imagegen import make_rgb

from hashmatch import Hasher
from hashmatch.lists import Retracted
from hashmatch.matching.matcher import Matcher
from hashmatch.store.store import Store, StoreError, StoreIntegrityError


def parsed(algorithm: str, hashes: list[str], *, category="test", retracted=()):
    n = len(hashes)
    return SimpleNamespace(format="test", algorithms=[algorithm] * n, hashes=hashes, categories=[category] * n,
                           entry_ids=[f"e{i}" for i in range(n)], dates=[None] * n, tags=[("t",)] * n,
                           retracted=list(retracted))


def random_hex(rng, n, nbytes=32):
    return [bytes(row).hex() for row in rng.integers(0, 256, (n, nbytes), dtype=np.uint8)]


def flip_bits(hex_hash: str, bits: list[int]) -> str:
    value = int(hex_hash, 16)
    for b in bits:
        value ^= 1 << b
    return format(value, f"0{len(hex_hash)}x")


@pytest.fixture
def store(tmp_path):
    return Store.create(tmp_path / "store")


def test_files_are_private_and_the_manifest_lists_their_checksums(store):
    rng = np.random.default_rng(0)
    store = store.import_list(parsed("pdq", random_hex(rng, 50)), name="L", version="1")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o700
    names = sorted(p.name for p in store.path.iterdir())
    assert "manifest.json" in names and not [n for n in names if n.endswith(".tmp")]
    for path in store.path.iterdir():
        if path.name != ".lock":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    # Besides the manifest's data files: the manifest, the writers' lock and the audit log.
    assert set(store.manifest.files) == {n for n in names if n not in ("manifest.json", ".lock", "audit.jsonl")}
    assert store.manifest.counts["pdq"] == {"active": 50, "disabled": 0}
    changes = [json.loads(line) for line in (store.path / "audit.jsonl").read_text().splitlines()]
    assert [(c["event"], c["generation"], c["change"]) for c in changes] == [
        ("store_change", 1, "create"), ("store_change", 2, "import list L version 1")]
    assert changes[1]["entries_added"] == 50 and changes[1]["user"]


def test_a_flipped_bit_in_any_data_file_is_refused(store):
    rng = np.random.default_rng(1)
    store = store.import_list(parsed("pdq", random_hex(rng, 20)), name="L", version="1")
    for name in store.manifest.files:
        path = store.path / name
        original = path.read_bytes()
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(StoreIntegrityError, match=name):
            Store.open(store.path)
        path.write_bytes(original)
    Store.open(store.path)


def test_reimporting_a_new_version_replaces_the_list_atomically_and_old_readers_keep_theirs(store):
    rng = np.random.default_rng(2)
    v1, v2 = random_hex(rng, 30), random_hex(rng, 40)
    store = store.import_list(parsed("pdq", v1), name="L", version="1")
    old_matcher = Matcher(store)
    store = store.import_list(parsed("pdq", v2), name="L", version="2")
    assert [(info.name, info.version, info.entries) for info in store.lists()] == [("L", "2", 40)]
    # The open matcher still sees version 1 until it reloads.
    assert old_matcher.match_hashes({"pdq": v1[0]}).matches[0].list_version == "1"
    new = old_matcher.reload()
    assert new.match_hashes({"pdq": v1[0]}).status == "no_match"
    assert new.match_hashes({"pdq": v2[0]}).matches[0].list_version == "2"


def test_removed_entries_leave_an_audit_trail_and_disabled_ones_never_match(store):
    rng = np.random.default_rng(3)
    hashes = random_hex(rng, 10)
    store = store.import_list(parsed("pdq", hashes), name="L", version="1")
    ids = {e.hash: e.id for e in store.iter_entries()}
    store = store.set_disabled([ids[hashes[0]]], True, reason="false positive: a meme")
    store = store.remove_entries([ids[hashes[1]]], reason="retracted")
    matcher = Matcher(store)
    assert matcher.match_hashes({"pdq": hashes[0]}).status == "no_match"
    assert matcher.match_hashes({"pdq": hashes[1]}).status == "no_match"
    assert matcher.match_hashes({"pdq": hashes[2]}).status == "match"
    disabled = store.find("pdq", hashes[0])
    assert disabled[0].disabled and disabled[0].disabled_reason == "false positive: a meme"
    assert store.find("pdq", hashes[1]) == []
    removed = store.removed()
    assert [(r["reason"], r["hash"], r["list_version"]) for r in removed] == [("retracted", hashes[1], "1")]
    store = store.set_disabled([ids[hashes[0]]], False)
    assert Matcher(store).match_hashes({"pdq": hashes[0]}).status == "match"


def test_retracted_entries_of_a_source_are_removed(store):
    rng = np.random.default_rng(4)
    hashes = random_hex(rng, 5)
    gone = Retracted(line=2, algorithm="pdq", hash=hashes[1], entry_id="e1", reason="deleted")
    store = store.import_list(parsed("pdq", hashes[:3]), name="TaT", version="1")
    store = store.import_list(parsed("pdq", [hashes[0], hashes[2]], retracted=[gone]), name="TaT", version="2")
    assert sorted(e.hash for e in store.iter_entries()) == sorted([hashes[0], hashes[2]])
    reasons = {r["hash"]: r["reason"] for r in store.removed()}
    assert reasons[hashes[1]] == "retracted by the source (deleted)"
    assert reasons[hashes[0]] == reasons[hashes[2]] == "replaced by version 2"


def test_threshold_is_inclusive_and_matches_carry_their_evidence(store):
    rng = np.random.default_rng(5)
    base = random_hex(rng, 1)[0]
    store = store.import_list(parsed("pdq", [base], category="terrorism"), name="GIFCT", version="2026-11")
    matcher = Matcher(store)
    at_31 = matcher.match_hashes({"pdq": flip_bits(base, list(range(31)))}, pdq_quality=90)
    assert at_31.status == "match"
    match = at_31.matches[0]
    assert (match.algorithm, match.distance, match.threshold, match.list_name, match.list_version,
            match.category, match.entry_id, match.query_quality) == ("pdq", 31, 31, "GIFCT", "2026-11",
                                                                     "terrorism", "e0", 90)
    assert matcher.match_hashes({"pdq": flip_bits(base, list(range(32)))}).status == "no_match"
    assert Matcher(store, thresholds={"pdq": 32}).match_hashes({"pdq": flip_bits(base, list(range(32)))}).matched


def test_quality_gate(store):
    rng = np.random.default_rng(6)
    base = random_hex(rng, 1)[0]
    store = store.import_list(parsed("pdq", [base]), name="L", version="1")
    low = Matcher(store).match_hashes({"pdq": base}, pdq_quality=49)
    assert low.status == "low_quality" and low.gated == ("pdq",) and not low.matches
    assert Matcher(store, pdq_quality_gate=40).match_hashes({"pdq": base}, pdq_quality=49).matched


def test_images_match_through_the_store_including_dihedral_variants(store):
    from PIL import Image, ImageOps
    original = Image.fromarray(make_rgb(320, 240, seed=11, kind="shapes"))
    hashes = Hasher(("pdq", "md5")).hash(_png(original))
    store = store.import_list(parsed("pdq", [hashes.hashes["pdq"]]), name="L", version="1")
    store = store.import_list(parsed("md5", [hashes.hashes["md5"]]), name="M", version="1")
    plain = Matcher(store)
    assert {m.algorithm for m in plain.match(_png(original)).matches} == {"pdq", "md5"}
    mirrored = _png(ImageOps.mirror(original))
    assert plain.match(mirrored).status == "no_match"
    flipped = Matcher(store, dihedral=True).match(mirrored)
    assert flipped.status == "match" and flipped.matches[0].variant == "flipy"


def _png(image) -> bytes:
    import io
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_exact_hashes_match_by_equality_only(store):
    rng = np.random.default_rng(7)
    md5s = random_hex(rng, 100, nbytes=16)
    store = store.import_list(parsed("md5", md5s), name="NCMEC", version="1")
    matcher = Matcher(store)
    assert matcher.match_hashes({"md5": md5s[42]}).matches[0].distance == 0
    assert matcher.match_hashes({"md5": flip_bits(md5s[42], [0])}).status == "no_match"


def test_concurrent_readers_and_a_writer(store):
    rng = np.random.default_rng(8)
    hashes = random_hex(rng, 200)
    store = store.import_list(parsed("pdq", hashes), name="L", version="1")
    matcher = Matcher(store)
    errors = []

    def read():
        try:
            for h in hashes:
                assert matcher.match_hashes({"pdq": h}).matched
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    store.import_list(parsed("pdq", random_hex(rng, 10)), name="Other", version="1")
    for t in threads:
        t.join()
    assert not errors


def test_bad_store_operations(tmp_path, store):
    with pytest.raises(StoreError, match="not a hashmatch store"):
        Store.open(tmp_path)
    with pytest.raises(StoreError, match="already holds"):
        Store.create(store.path)
    with pytest.raises(StoreError, match="no list"):
        store.remove_list("nope")
    with pytest.raises(StoreError, match="no entries"):
        store.set_disabled([12345], True)


def test_arrays_follow_the_database_through_any_sequence_of_changes(store):
    """The writer updates the code arrays from each change's delta; after every step they
    must equal what the database says row by row (check_consistency), ids never reused."""
    rng = np.random.default_rng(21)
    seen_ids: set[int] = set()
    for step in range(40):
        op = rng.integers(0, 5)
        lists = [info.name for info in store.lists()]
        active = [e.id for e in store.iter_entries()]
        if op <= 1 or not lists:
            name = f"L{rng.integers(0, 4)}"
            algorithm = str(rng.choice(["pdq", "phash", "md5"]))
            nbytes = {"pdq": 32, "phash": 8, "md5": 16}[algorithm]
            hashes = list(dict.fromkeys(random_hex(rng, int(rng.integers(1, 30)), nbytes)))
            mixed = parsed(algorithm, hashes)
            if rng.random() < 0.5:  # a second algorithm in the same list
                extra = list(dict.fromkeys(random_hex(rng, 5, 8)))
                mixed.algorithms += ["dhash"] * len(extra)
                for column, values in (("hashes", extra), ("categories", ["x"] * 5), ("entry_ids", [None] * 5),
                                       ("dates", [None] * 5), ("tags", [()] * 5)):
                    getattr(mixed, column).extend(values[:len(extra)])
            store = store.import_list(mixed, name=name, version=str(step))
        elif op == 2:
            store = store.remove_list(str(rng.choice(lists)))
        elif op == 3 and active:
            store = store.remove_entries(rng.choice(active, min(3, len(active)), replace=False).tolist())
        elif active:
            store = store.set_disabled(rng.choice(active, min(4, len(active)), replace=False).tolist(),
                                       bool(rng.random() < 0.6), "fp")
        store.check_consistency()
        ids = {e.id for e in store.iter_entries()}
        removed_ids = {r["id"] for r in store.removed()}
        assert not (ids & removed_ids), "an id of a removed entry was given to a new one"
        seen_ids |= ids
    assert len(seen_ids) > 100


@pytest.mark.parametrize("category", ["it's", "a'); DROP TABLE entries; --", "nul\x00byte", None])
def test_list_wide_values_survive_the_bulk_insert(store, category):
    rng = np.random.default_rng(8)
    hashes = random_hex(rng, 4)
    store = store.import_list(parsed("pdq", hashes, category=category), name="it's", version="v'1")
    assert [(e.category, e.list_name, e.list_version) for e in store.iter_entries()] == [(category, "it's", "v'1")] * 4
    store.check_consistency()


def test_batch_matching_of_precomputed_hashes_in_threads(store):
    """match_hashes_many: input order kept, every answer equal to numpy brute force, a
    malformed query yields its error in place."""
    from hashmatch import ConfigurationError

    rng = np.random.default_rng(31)
    codes = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    store = store.import_list(parsed("pdq", [c.tobytes().hex() for c in codes]), name="L", version="1")
    queries = [codes[i].copy() for i in rng.integers(0, 3000, 60)]
    for q in queries:
        for b in rng.choice(256, int(rng.integers(0, 40)), replace=False):
            q[b // 8] ^= np.uint8(1 << (b % 8))
    batch = [{"pdq": q.tobytes().hex()} for q in queries]
    batch.insert(7, {"pdq": "zz"})
    results = list(Matcher(store).match_hashes_many(batch, threads=2))
    assert isinstance(results.pop(7), ConfigurationError)
    for q, result in zip(queries, results):
        d = np.bitwise_count(codes ^ q).sum(axis=1)
        assert sorted(m.distance for m in result.matches) == sorted(d[d <= 31].tolist())
        assert result.status == ("match" if (d <= 31).any() else "no_match")


def test_a_list_built_in_memory(store):
    from hashmatch.lists import ParsedList

    hashes = random_hex(np.random.default_rng(12), 3)
    store = store.import_list(ParsedList.from_hashes("PDQ", hashes, category="ncii"), name="mem", version="1")
    assert sorted((e.hash, e.category) for e in store.iter_entries()) == sorted((h, "ncii") for h in hashes)


def test_large_lists_keep_their_multi_index_tables_checked(store):
    """From 8,192 entries the writer stores the multi-index tables; the matcher uses them
    as they are (no rebuild), with answers equal to brute force, and a flipped bit in a
    table file is refused like any other."""
    from hashmatch.index.engines import MultiIndexEngine, mih_tables

    rng = np.random.default_rng(17)
    codes = rng.integers(0, 256, (12_000, 32), dtype=np.uint8)
    store = store.import_list(parsed("pdq", [c.tobytes().hex() for c in codes]), name="big", version="1")
    meta = store.manifest.arrays["pdq"]
    assert set(meta["mih"]) == {"tables", "dirs", "packed"} and meta["mih"]["dirs"] in store.manifest.files
    dirs, packed = store.arrays["pdq"].mih
    fresh = mih_tables(store.arrays["pdq"].codes)
    assert np.array_equal(dirs, fresh[0]) and np.array_equal(packed, fresh[1])
    matcher = Matcher(store)
    engine = matcher._engines["pdq"]
    assert isinstance(engine, MultiIndexEngine) and np.shares_memory(engine.tables()[1], packed)
    for q in codes[rng.integers(0, 12_000, 20)]:
        q = q.copy()
        q[rng.integers(0, 32, 3)] ^= 0xFF
        d = np.bitwise_count(codes ^ q).sum(axis=1)
        got = matcher.match_hashes({"pdq": q.tobytes().hex()})
        assert sorted(m.distance for m in got.matches) == sorted(d[d <= 31].tolist())
    with pytest.raises(Exception, match="does not fit"):
        MultiIndexEngine(codes[:100], max_radius=31, tables=(dirs, packed))
    path = store.path / meta["mih"]["packed"]
    os.chmod(path, 0o600)
    data = bytearray(path.read_bytes())
    data[1000] ^= 4
    path.write_bytes(bytes(data))
    with pytest.raises(StoreIntegrityError, match="checksum"):
        Store.open(store.path)


@pytest.mark.parametrize("n", [249, 250, 251, 507])
def test_bulk_insert_batches_keep_every_row_and_its_metadata(store, n):
    rng = np.random.default_rng(n)
    hashes = random_hex(rng, n)
    p = parsed("pdq", hashes)
    p.categories = [f"c{i % 3}" for i in range(n)]  # bound per row, not a literal
    p.tags = [("a", f"t{i % 2}") for i in range(n)]
    store = store.import_list(p, name="L", version="1")
    got = [(e.hash, e.category, e.entry_id, e.tags) for e in store.iter_entries()]
    assert got == [(h, f"c{i % 3}", f"e{i}", ("a", f"t{i % 2}")) for i, h in enumerate(hashes)]
    store.check_consistency()
