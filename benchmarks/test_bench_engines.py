"""Matching engines at 100k, 1M (and 10M with HASHMATCH_BENCH_10M=1) PDQ codes.

    pytest benchmarks/test_bench_engines.py --benchmark-json=/tmp/engines.json -q
    HASHMATCH_BENCH_10M=1 pytest benchmarks/test_bench_engines.py -k 10m ...
    python benchmarks/ratios.py /tmp/engines.json

Groups (one test_hashmatch_* against one reference each, as ratios.py expects):

* ``lookup-{size}-{data}``: single queries (one Python call per query), hashmatch MIH vs
  FAISS IndexBinaryMultiHash(256, 16, 16) with nflip=1 inside IndexBinaryIDMap2, as
  python-threatexchange's PDQ index configures it (exact at radius 31: 16 * (1 + 1) > 31;
  FAISS range search is strict, so it is asked for radius 32).
* ``lookup-{size}-{data}-vs-flat``: the same, MIH vs hashmatch's flat engine (FAISS flat).
* ``batch-{size}-{data}``: all queries in one call, MIH vs the FAISS MultiHash peer.
* ``build-{size}-{data}``: building the index, MIH vs the peer.

Every timed round answers the same QUERIES_PER_ROUND queries, so means compare directly;
queries/s = QUERIES_PER_ROUND / mean. extra_info carries queries_per_s, bytes_per_entry,
candidates_per_query (MIH) and recall against numpy brute force (exactly 1.0 for hashmatch).
Data: "uniform" random codes; "clustered" families of near-duplicates (N/100 seeds, copies
flipped in 0-40 bits) plus 2% blank-image codes (all zero), a skewed PDQ-like list. Queries
are non-blank list members flipped in 0-24 bits (see make_queries). Radius 31.
``python benchmarks/engine_table.py JSON`` prints the README's table.
"""
from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest

from hashmatch.index.engines import build_engine

faiss = pytest.importorskip("faiss")

RADIUS = 31
QUERIES_PER_ROUND = 20
SIZES = {"100k": 100_000, "1m": 1_000_000}
if os.environ.get("HASHMATCH_BENCH_10M") == "1":
    SIZES["10m"] = 10_000_000
DATA = ("uniform", "clustered")
CASES = [(s, d) for s in SIZES for d in DATA]


def make_codes(n: int, kind: str, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.integers(0, 256, (n, 32), dtype=np.uint8)
    nseeds = max(1, n // 100)
    seeds = rng.integers(0, 256, (nseeds, 32), dtype=np.uint8)
    codes = seeds[rng.integers(0, nseeds, n)]
    # flip 0-40 bits per copy, in blocks to bound memory
    for a in range(0, n, 1_000_000):
        block = codes[a:a + 1_000_000]
        nflip = rng.integers(0, 41, len(block))
        mask = rng.random((len(block), 256), dtype=np.float32) < (nflip / 256)[:, None]
        block ^= np.packbits(mask, axis=1)
    codes[rng.choice(n, n // 50, replace=False)] = 0  # blank images
    return codes


def make_queries(codes: np.ndarray, n: int, seed: int = 11) -> np.ndarray:
    """List members (never the blank codes: a blank image has PDQ quality 0 and the quality
    gate stops it before any lookup) flipped in 0-24 bits. The blank codes stay in the list,
    where they skew one bucket of every table."""
    rng = np.random.default_rng(seed)
    members = np.flatnonzero(codes.any(axis=1))
    q = codes[members[rng.integers(0, len(members), n)]].copy()
    for row in q:
        for b in rng.choice(256, int(rng.integers(0, 25)), replace=False):
            row[b // 8] ^= np.uint8(1 << (b % 8))
    return q


def brute_force(codes: np.ndarray, queries: np.ndarray, radius: int) -> list[np.ndarray]:
    out = []
    for q in queries:
        d = np.zeros(len(codes), np.int32)
        for a in range(0, len(codes), 2_000_000):
            d[a:a + 2_000_000] = np.bitwise_count(codes[a:a + 2_000_000] ^ q).sum(axis=1, dtype=np.int32)
        out.append(np.flatnonzero(d <= radius))
    return out


def recall(results, truth) -> float:
    """Fraction of the brute-force matches returned (extra results would fail the asserts)."""
    found = sum(len(np.intersect1d(np.asarray(ids), t)) for (ids, _), t in zip(results, truth))
    total = sum(len(t) for t in truth)
    return found / total if total else 1.0


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeerMultiHash:
    """FAISS IndexBinaryMultiHash(256, 16, 16), nflip=1, in IndexBinaryIDMap2."""

    def __init__(self, codes: np.ndarray):
        faiss.omp_set_num_threads(1)
        self.inner = faiss.IndexBinaryMultiHash(256, 16, 16)
        self.inner.nflip = 1
        self.index = faiss.IndexBinaryIDMap2(self.inner)
        self.index.add_with_ids(codes, np.arange(len(codes), dtype=np.int64))

    def range_search(self, queries: np.ndarray, radius: int):
        faiss.omp_set_num_threads(1)
        lims, dists, ids = self.index.range_search(queries, radius + 1)  # strict <
        return [(ids[a:b], dists[a:b]) for a, b in zip(lims[:-1], lims[1:])]


_cache: dict = {}


def dataset(size: str, kind: str) -> dict:
    """One dataset (codes, queries, truth) alive at a time: 10M lists are large."""
    key = (size, kind)
    if _cache.get("key") != key:
        _cache.clear()
        gc.collect()
        codes = make_codes(SIZES[size], kind)
        queries = make_queries(codes, QUERIES_PER_ROUND)
        _cache.update(key=key, codes=codes, queries=queries,
                      truth=brute_force(codes, queries, RADIUS))
    return _cache


def engine(size: str, kind: str, which: str):
    ds = dataset(size, kind)
    if which not in ds:
        if which == "peer":
            ds.pop("flat", None)
            gc.collect()
        rss, t = rss_bytes(), time.perf_counter()
        ds[which] = (PeerMultiHash(ds["codes"]) if which == "peer"
                     else build_engine(ds["codes"], which, max_radius=RADIUS))
        ds[which + "_build_s"] = time.perf_counter() - t
        ds[which + "_rss"] = rss_bytes() - rss
    return ds[which]


def memory_per_entry(size: str, kind: str, which: str) -> float:
    ds = dataset(size, kind)
    n = len(ds["codes"])
    eng = engine(size, kind, which)
    if which == "peer":
        # FAISS exposes no size: the RSS growth while building, plus the codes it keeps.
        return (ds["peer_rss"]) / n
    return eng.memory_bytes() / n


def _single(eng, queries):
    for i in range(len(queries)):
        eng.range_search(queries[i:i + 1], RADIUS)


def _run_lookup(benchmark, size, kind, which, mode):
    ds = dataset(size, kind)
    eng = engine(size, kind, which)
    queries = ds["queries"]
    results = eng.range_search(queries, RADIUS)
    rec = recall(results, ds["truth"])
    slow = which == "peer" or which == "flat"
    rounds = 3 if (slow and size == "10m") else 5 if slow else 30
    fn = (lambda: _single(eng, queries)) if mode == "single" else (lambda: eng.range_search(queries, RADIUS))
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    mean = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        engine=which, size=SIZES[size], data=kind, mode=mode, radius=RADIUS,
        queries_per_round=len(queries), queries_per_s=len(queries) / mean,
        recall=rec, matches=int(sum(len(t) for t in ds["truth"])),
        bytes_per_entry=memory_per_entry(size, kind, which),
        build_s=ds.get(which + "_build_s"))
    if which == "mih":
        benchmark.extra_info["candidates_per_query"] = eng.candidates(queries, RADIUS) / len(queries)
    if which != "peer":
        assert rec == 1.0
    return rec


@pytest.fixture(scope="module", params=CASES, ids=[f"{s}-{d}" for s, d in CASES])
def case(request):
    """Module-scoped so pytest runs every test of one dataset before building the next."""
    return request.param


# ---------------------------------------------------------------- lookups: MIH vs peer

def test_hashmatch_mih_lookup(benchmark, case):
    size, kind = case
    benchmark.group = f"lookup-{size}-{kind}"
    _run_lookup(benchmark, size, kind, "mih", "single")


def test_peer_faiss_multihash_lookup(benchmark, case):
    size, kind = case
    benchmark.group = f"lookup-{size}-{kind}"
    _run_lookup(benchmark, size, kind, "peer", "single")


def test_hashmatch_mih_batch(benchmark, case):
    size, kind = case
    benchmark.group = f"batch-{size}-{kind}"
    _run_lookup(benchmark, size, kind, "mih", "batch")


def test_peer_faiss_multihash_batch(benchmark, case):
    size, kind = case
    benchmark.group = f"batch-{size}-{kind}"
    _run_lookup(benchmark, size, kind, "peer", "batch")


# ---------------------------------------------------------------- lookups: MIH vs flat

def test_hashmatch_mih_lookup_vs_flat(benchmark, case):
    size, kind = case
    benchmark.group = f"lookup-{size}-{kind}-vs-flat"
    _run_lookup(benchmark, size, kind, "mih", "single")


def test_baseline_flat_lookup(benchmark, case):
    size, kind = case
    benchmark.group = f"lookup-{size}-{kind}-vs-flat"
    _run_lookup(benchmark, size, kind, "flat", "single")


# ---------------------------------------------------------------- two threads (MIH)

def test_hashmatch_mih_lookup_2threads(benchmark, case):
    size, kind = case
    """Two Python threads each issuing single queries (QUERIES_PER_ROUND in all per round)."""
    import threading

    benchmark.group = f"lookup-{size}-{kind}-2threads"
    ds = dataset(size, kind)
    eng = engine(size, kind, "mih")
    q = ds["queries"]
    halves = [q[0::2], q[1::2]]

    def run():
        ts = [threading.Thread(target=_single, args=(eng, h)) for h in halves]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    benchmark.pedantic(run, rounds=30, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(engine="mih", mode="single-2threads", size=SIZES[size], data=kind,
                                queries_per_s=len(q) / benchmark.stats.stats.mean)


def test_baseline_mih_lookup_1thread(benchmark, case):
    size, kind = case
    benchmark.group = f"lookup-{size}-{kind}-2threads"
    ds = dataset(size, kind)
    eng = engine(size, kind, "mih")
    benchmark.pedantic(lambda: _single(eng, ds["queries"]), rounds=30, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(engine="mih", mode="single-1thread", size=SIZES[size], data=kind,
                                queries_per_s=len(ds["queries"]) / benchmark.stats.stats.mean)


# ---------------------------------------------------------------- builds

def test_hashmatch_mih_build(benchmark, case):
    size, kind = case
    benchmark.group = f"build-{size}-{kind}"
    codes = dataset(size, kind)["codes"]
    eng = benchmark.pedantic(lambda: build_engine(codes, "mih", max_radius=RADIUS), rounds=3, iterations=1)
    benchmark.extra_info.update(bytes_per_entry=eng.memory_bytes() / len(codes))
    del eng


def test_peer_faiss_multihash_build(benchmark, case):
    size, kind = case
    benchmark.group = f"build-{size}-{kind}"
    codes = dataset(size, kind)["codes"]
    dataset(size, kind).pop("peer", None)
    gc.collect()
    benchmark.pedantic(lambda: PeerMultiHash(codes), rounds=1 if size == "10m" else 3, iterations=1)
