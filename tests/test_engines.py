"""Exactness of the matching engines (hashmatch.index.engines) against numpy brute force."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from hashmatch._native import hamming as _hamming
from hashmatch.errors import ConfigurationError
from hashmatch.index.engines import FlatEngine, MultiIndexEngine, build_engine, uniform_probe_fraction

RADII_256 = [0, 10, 31, 32, 63]
RADII_64 = list(range(21))


# ---------------------------------------------------------------- data

def distances(codes: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(Q, N) Hamming distances by numpy popcount."""
    out = np.empty((len(queries), len(codes)), dtype=np.int32)
    for i, q in enumerate(queries):
        out[i] = np.bitwise_count(codes ^ q).sum(axis=1, dtype=np.int32)
    return out


def expected(dist: np.ndarray, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
    res = []
    for row in dist:
        ids = np.flatnonzero(row <= radius)
        res.append((ids, row[ids]))
    return res


def flip_bits(rng: np.random.Generator, code: np.ndarray, nflip: int) -> np.ndarray:
    out = code.copy()
    for b in rng.choice(out.size * 8, nflip, replace=False):
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


def uniform_codes(rng, n: int, nbytes: int) -> np.ndarray:
    return rng.integers(0, 256, (n, nbytes), dtype=np.uint8)


def clustered_codes(rng, nseeds: int, nbytes: int, lo: int = 20, hi: int = 200, maxflip: int = 40) -> np.ndarray:
    """Families of near-duplicates: each seed with lo..hi copies flipped in 0..maxflip bits."""
    seeds = uniform_codes(rng, nseeds, nbytes)
    sizes = rng.integers(lo, hi + 1, nseeds)
    codes = np.repeat(seeds, sizes, axis=0)
    nbits = nbytes * 8
    nflip = rng.integers(0, maxflip + 1, len(codes))
    mask = rng.random((len(codes), nbits)) < (nflip / nbits)[:, None]
    codes = np.packbits(np.unpackbits(codes, axis=1) ^ mask.astype(np.uint8), axis=1)
    return np.ascontiguousarray(codes[rng.permutation(len(codes))])


def skewed_codes(rng, n: int, nbytes: int) -> np.ndarray:
    """Like hashes of flat images: many codes share chunk values 0x0000/0xffff in several chunks."""
    codes = uniform_codes(rng, n, nbytes)
    m = nbytes // 2
    for row in range(n):
        if rng.random() < 0.6:
            k = int(rng.integers(1, max(2, m * 3 // 4)))
            chunks = rng.choice(m, k, replace=False)
            value = 0x00 if rng.random() < 0.7 else 0xFF
            for c in chunks:
                codes[row, 2 * c: 2 * c + 2] = value
    codes[: n // 50] = 0  # a block of all-zero codes (blank images)
    return codes


def queries_near(rng, codes: np.ndarray, nq: int, maxflip: int) -> np.ndarray:
    picks = codes[rng.integers(0, len(codes), nq)]
    return np.stack([flip_bits(rng, c, int(rng.integers(0, maxflip + 1))) for c in picks])


def assert_same(got, want) -> None:
    assert len(got) == len(want)
    for (gi, gd), (wi, wd) in zip(got, want):
        assert gi.dtype == np.int64 and gd.dtype == np.int32
        np.testing.assert_array_equal(gi, wi)
        np.testing.assert_array_equal(gd, wd)


def engines_for(codes: np.ndarray, max_radius: int):
    mih = MultiIndexEngine(codes, max_radius=max_radius)
    return {"flat": FlatEngine(codes, max_radius=max_radius),
            "flat-native": FlatEngine(codes, max_radius=max_radius, backend="native"),
            "mih": mih}


def check_all(codes, queries, radii, max_radius) -> None:
    dist = distances(codes, queries)
    engines = engines_for(codes, max_radius)
    mih = engines["mih"]
    for r in radii:
        want = expected(dist, r)
        for eng in engines.values():
            assert_same(eng.range_search(queries, r), want)
            # The single-query path (a lookup's): the same pairs, as Python ints.
            for query, (wi, wd) in zip(queries, want):
                assert eng.search_one(query.tobytes(), r) == list(zip(wi.tolist(), wd.tolist()))
        # The probe itself, without the sequential-scan shortcut.
        ids, dists, lims, _ = mih._search(queries, r, allow_scan=False)
        got = [(ids[a:b], dists[a:b]) for a, b in zip(lims[:-1], lims[1:])]
        assert_same(got, want)


# ---------------------------------------------------------------- exactness

@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(20240611)


def test_uniform_pdq(rng):
    codes = uniform_codes(rng, 100_000, 32)
    queries = np.concatenate([queries_near(rng, codes, 60, 70), uniform_codes(rng, 20, 32)])
    check_all(codes, queries, RADII_256, 63)


def test_clustered_pdq(rng):
    codes = clustered_codes(rng, 300, 32)
    assert 6_000 <= len(codes) <= 60_000
    queries = queries_near(rng, codes, 80, 30)
    check_all(codes, queries, RADII_256, 63)


def test_skewed_pdq(rng):
    codes = skewed_codes(rng, 30_000, 32)
    queries = np.concatenate([queries_near(rng, codes, 60, 20), np.zeros((2, 32), np.uint8),
                              np.full((1, 32), 0xFF, np.uint8)])
    check_all(codes, queries, RADII_256, 63)
    # The plan skips the crowded tables of a blank-ish query and still finds everything.
    mih = MultiIndexEngine(codes, max_radius=63)
    q = codes[np.flatnonzero((codes[:, :8] == 0).all(axis=1) & (codes[:, 8:] != 0).any(axis=1))[0]]
    plan, cands = mih.plan(q, 31)
    assert sum(s + 1 for s in plan) >= 32
    assert min(plan) == -1


@pytest.mark.parametrize("maker", ["uniform", "clustered", "skewed"])
def test_64bit(rng, maker):
    if maker == "uniform":
        codes = uniform_codes(rng, 50_000, 8)
    elif maker == "clustered":
        codes = clustered_codes(rng, 200, 8, maxflip=12)
    else:
        codes = skewed_codes(rng, 20_000, 8)
    queries = queries_near(rng, codes, 40, 12)
    check_all(codes, queries, RADII_64, 20)


def test_pdq_reference_needles_vs_haystack(reference):
    pdq_input = reference / "pdq" / "data" / "reg-test-input"
    pdq_truth = reference / "expected" / "generated_here_needles_vs_haystack_bruteforce_le32.csv"

    def read(path):
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        return np.array([np.frombuffer(bytes.fromhex(ln), np.uint8) for ln in lines])

    needles, haystack = read(pdq_input / "needles.txt"), read(pdq_input / "haystack.txt")
    truth: dict[int, list[tuple[int, int]]] = {i: [] for i in range(len(needles))}
    rows = pdq_truth.read_text().splitlines()[1:]
    for line in rows:
        n, h, d = (int(v) for v in line.split(","))
        truth[n].append((h, d))
    assert sum(len(v) for v in truth.values()) == len(rows) > 0
    for r in (31, 32):
        for eng in engines_for(haystack, 32).values():
            got = eng.range_search(needles, r)
            for i, (ids, dists) in enumerate(got):
                want = sorted((h, d) for h, d in truth[i] if d <= r)
                assert list(zip(ids.tolist(), dists.tolist())) == want


# ---------------------------------------------------------------- edges

@pytest.mark.parametrize("nbytes,radius", [(32, 0), (32, 31), (32, 63), (32, 200), (8, 0), (8, 7), (8, 20), (8, 63)])
def test_inclusive_boundary(rng, nbytes, radius):
    q = uniform_codes(rng, 1, nbytes)[0]
    nbits = nbytes * 8
    at = flip_bits(rng, q, radius)
    beyond = flip_bits(rng, q, radius + 1) if radius + 1 <= nbits else None
    rows = [uniform_codes(rng, 20_000, nbytes), at[None]]
    if beyond is not None:
        rows.append(beyond[None])
    codes = np.concatenate(rows)
    i_at = 20_000
    for kind in ("flat", "mih"):
        eng = build_engine(codes, kind, max_radius=radius)
        ids, dists = eng.range_search(q[None], radius)[0]
        assert i_at in ids.tolist()
        assert dists[ids.tolist().index(i_at)] == radius
        if beyond is not None:
            assert i_at + 1 not in ids.tolist()
        # what brute force says
        want = expected(distances(codes, q[None]), radius)
        assert_same(eng.range_search(q[None], radius), want)


@pytest.mark.parametrize("kind", ["flat", "mih"])
def test_empty_and_single(kind):
    empty = np.zeros((0, 32), np.uint8)
    eng = build_engine(empty, kind, max_radius=31)
    assert len(eng) == 0
    res = eng.range_search(np.zeros((3, 32), np.uint8), 31)
    assert len(res) == 3 and all(len(i) == 0 and i.dtype == np.int64 and d.dtype == np.int32 for i, d in res)
    assert eng.range_search(np.zeros((0, 32), np.uint8), 31) == []
    assert eng.search_one(bytes(32), 31) == []

    one = np.arange(32, dtype=np.uint8)[None]
    eng = build_engine(one, kind, max_radius=31)
    assert len(eng) == 1
    (ids, d), (ids2, d2) = eng.range_search(np.concatenate([one, ~one]), 31)
    assert ids.tolist() == [0] and d.tolist() == [0]
    assert ids2.tolist() == []
    assert eng.search_one(one.tobytes(), 31) == [(0, 0)] and eng.search_one((~one).tobytes(), 31) == []


def test_thousands_of_matches_and_duplicates(rng):
    """A degenerate code with thousands of near and exact copies (found in many tables)."""
    base = np.zeros(32, np.uint8)
    near = np.stack([flip_bits(rng, base, int(rng.integers(0, 12))) for _ in range(6_000)])
    dups = np.repeat(uniform_codes(rng, 50, 32), 40, axis=0)
    codes = np.concatenate([uniform_codes(rng, 20_000, 32), near, np.zeros((500, 32), np.uint8), dups])
    codes = np.ascontiguousarray(codes[rng.permutation(len(codes))])
    queries = np.concatenate([base[None], flip_bits(rng, base, 5)[None], dups[:3]])
    dist = distances(codes, queries)
    engines = engines_for(codes, 63)
    for r in (0, 10, 31, 63):
        want = expected(dist, r)
        if r >= 31:
            assert len(want[0][0]) >= 6_500
        for eng in engines.values():
            assert_same(eng.range_search(queries, r), want)
            # The single-query path (a lookup's): the same pairs, as Python ints.
            for query, (wi, wd) in zip(queries, want):
                assert eng.search_one(query.tobytes(), r) == list(zip(wi.tolist(), wd.tolist()))
        ids, dists, lims, _ = engines["mih"]._search(queries, r, allow_scan=False)
        assert_same([(ids[a:b], dists[a:b]) for a, b in zip(lims[:-1], lims[1:])], want)


def test_engines_agree_and_threads(rng):
    codes = clustered_codes(rng, 200, 32)
    queries = queries_near(rng, codes, 200, 35)
    flat = build_engine(codes, "flat", max_radius=31)
    mih = build_engine(codes, "mih", max_radius=31)
    want = flat.range_search(queries, 31)
    assert_same(mih.range_search(queries, 31), want)

    results: dict[tuple[str, int], list] = {}
    errors: list[BaseException] = []

    def worker(tid: int) -> None:
        try:
            for eng in (mih, flat):
                for _ in range(3):
                    # single queries and batches interleaved
                    got = [eng.range_search(queries[i:i + 1], 31)[0] for i in range(len(queries))]
                    results[(eng.name, tid)] = got
                    assert_same(eng.range_search(queries, 31), want)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for got in results.values():
        assert_same(got, want)


def test_memmap_not_copied(tmp_path, rng):
    codes = uniform_codes(rng, 10_000, 32)
    path = tmp_path / "codes.u8"
    codes.tofile(path)
    mm = np.memmap(path, dtype=np.uint8, mode="r", shape=codes.shape)
    eng = MultiIndexEngine(mm, max_radius=31)
    assert np.shares_memory(eng._codes, mm)
    # 10k PDQ codes: 11 tables of 23-bit chunks, prefix P clamped up to b - 8 = 15, so per
    # table a (2**15 + 1)-entry uint32 directory and one uint32 (row, residue) word per
    # entry, plus the 2**15 prefix masks and their P + 2 level starts.
    assert (eng.chunk_bits, eng.ntables, eng.prefix_bits) == (23, 11, 15)
    assert eng.memory_bytes() == (codes.nbytes + 11 * (2**15 + 1) * 4 + 11 * 10_000 * 4
                                  + 2**15 * 4 + 17 * 4)
    q = queries_near(rng, codes, 10, 20)
    assert_same(eng.range_search(q, 31), expected(distances(codes, q), 31))


def test_native_flat_kernel(rng):
    codes = uniform_codes(rng, 5_000, 32)
    q = codes[7]
    ids, d = _hamming.hamming_range_flat(codes, q, 100)
    want = expected(distances(codes, q[None]), 100)[0]
    np.testing.assert_array_equal(ids, want[0])
    np.testing.assert_array_equal(d, want[1])
    assert _hamming.popcount_impl() in ("popcnt", "swar", "builtin")


def test_auto_choice(rng):
    small = uniform_codes(rng, 1_000, 32)
    big = uniform_codes(rng, 20_000, 32)
    assert build_engine(small, max_radius=31).name == "flat"
    assert build_engine(big, max_radius=31).name == "mih"
    assert build_engine(uniform_codes(rng, 20_000, 8), max_radius=10).name == "mih"
    assert build_engine(uniform_codes(rng, 20_000, 8), max_radius=20).name == "flat"
    # Radius 31 needs sum(s_t + 1) >= 32 over 11 tables of 23 bits. The cheapest plan probes
    # 10 tables at s = 2 (ball of 1 + 23 + 253 = 277 keys) and one at s = 1 (24 keys):
    # 30 + 2 = 32 units for 2794 keys (11 tables at s = 2 cost 3047; 2 at s = 3 plus 8 at
    # s = 2 cost 2 * 2048 + 8 * 277 = 6312), each key holding 1 / 2**23 of a uniform list.
    assert uniform_probe_fraction(256, 31) == pytest.approx(2794 / 2**23)
    # 64-bit codes, radius 10: 4 tables of 16 bits need 11 units: 3 at s = 2 (137 keys),
    # one at s = 1 (17 keys) -> 3 * 137 + 17 = 428 keys of 65536.
    assert uniform_probe_fraction(64, 10) == pytest.approx(428 / 65536)


# ---------------------------------------------------------------- bad arguments

def test_bad_arguments(rng):
    codes = uniform_codes(rng, 100, 32)
    bad_codes = [
        [[0] * 32],                                  # not an array
        codes.astype(np.int16),                      # dtype
        codes.ravel(),                               # 1-D
        np.asfortranarray(uniform_codes(rng, 10, 32)),  # not C-contiguous
        codes[:, :7],                                # not contiguous / bad width
        np.zeros((3, 12), np.uint8),                 # nbytes not a multiple of 8
        np.zeros((3, 0), np.uint8),
    ]
    for kind in ("auto", "flat", "mih"):
        for bad in bad_codes:
            with pytest.raises(ConfigurationError):
                build_engine(bad, kind, max_radius=31)
        for mr in (-1, 256, 1.5, True, "31"):
            with pytest.raises(ConfigurationError):
                build_engine(codes, kind, max_radius=mr)
    with pytest.raises(ConfigurationError):
        build_engine(codes, "hnsw", max_radius=31)
    with pytest.raises(ConfigurationError):
        build_engine(np.zeros((3, 8), np.uint8), "mih", max_radius=64)
    for kind in ("flat", "mih"):
        eng = build_engine(codes, kind, max_radius=31)
        q = codes[:2].copy()
        for r in (-1, 32, 2.0, None):
            with pytest.raises(ConfigurationError):
                eng.range_search(q, r)
        for badq in (q.astype(np.int64), q[0], q[:, :8].copy(), np.zeros((2, 8), np.uint8),
                     np.asfortranarray(uniform_codes(rng, 3, 32)), list(q)):
            with pytest.raises(ConfigurationError):
                eng.range_search(badq, 10)
        for r in (-1, 32, 2.0, None):
            with pytest.raises(ConfigurationError):
                eng.search_one(q[0].tobytes(), r)
        for badq in (q[0], q[0].tobytes()[:31], q[0].tobytes() + b"x", bytearray(q[0].tobytes()), q[0].tobytes().hex()):
            with pytest.raises(ConfigurationError):
                eng.search_one(badq, 10)


def test_prebuilt_tables_keep_the_layout_they_were_built_with(rng):
    codes = uniform_codes(rng, 20_000, 32)
    built = MultiIndexEngine(codes, max_radius=31, prefix_bits=16)
    reused = MultiIndexEngine(codes, max_radius=31, tables=built.tables())
    assert reused.prefix_bits == 16 != MultiIndexEngine(codes, max_radius=31).prefix_bits
    q = queries_near(rng, codes, 30, 24)
    assert_same(reused.range_search(q, 31), expected(distances(codes, q), 31))


@pytest.mark.parametrize("prefix_distance", [2, 3, 4])
def test_a_full_candidate_segment_left_by_the_residue_filter(prefix_distance):
    """Regression (found on a 100M store): the branch-free residue filter can leave the
    4,096-candidate segment exactly full, and the next bucket's first candidate was then
    written past its end (a heap overflow, a crash here). Eleven groups of 4,096 copies of
    the query, group t with `prefix_distance` bits flipped in table t's prefix (P = 22,
    R = 1): a group fills the segment exactly at that table's last probe level, and the
    next table starts with the other groups in its level-0 bucket."""
    rng = np.random.default_rng(11)
    query = rng.integers(0, 256, 32, dtype=np.uint8)
    bits = np.unpackbits(query, bitorder="little")
    groups = []
    for t in range(11):
        group = np.repeat(bits[None], 4096, 0)
        group[:, 23 * t + 1: 23 * t + 1 + prefix_distance] ^= 1  # key bits 1.. of chunk t: its prefix
        groups.append(group)
    codes = np.ascontiguousarray(np.packbits(np.concatenate(groups), axis=1, bitorder="little"))
    engine = MultiIndexEngine(codes, max_radius=63, prefix_bits=22)
    want = expected(distances(codes, query[None]), 31)
    ids, dists, lims, _ = engine._search(query[None], 31, allow_scan=False)
    assert_same([(ids, dists)], want)
    assert len(ids) == len(codes)
