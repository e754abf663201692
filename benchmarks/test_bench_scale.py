"""Speed at the scale platforms run (issue 15), measured as the user runs it: the CLI as
whole processes, Matcher on a store opened from disk, held-out-style data (heldout.py).

    pytest benchmarks/test_bench_scale.py -q -s --benchmark-json=/tmp/scale.json
    HASHMATCH_BENCH_SCALE_ENTRIES=1000000 pytest benchmarks/test_bench_scale.py ...   # smaller

Groups:

* ``startup``: `hashmatch --help` and `hashmatch hash one.jpg` as processes (targets: under
  0.3 s each), beside `python -c pass` (the floor of any Python command).
* ``cli-hash-dir``: `hashmatch hash DIR` on 200 JPEGs of 1024x768 against a script calling
  `pdqhash.compute` on Pillow's convert("RGB") pixels per file, both whole processes pinned
  to one core (target: hashmatch at least 4x).
* ``lookups-10m``: single queries through `Matcher.match_hashes` on the held-out list (a
  third uniform, a third near-duplicate families, a third PDQ-like correlated codes, 5%
  repeats; ENTRIES entries, queries are members with 0-24 bits flipped), one thread, two
  threads, and `match_hashes_many` on one and two threads (batches of 256 queries per
  kernel call); results checked against brute force on a sample. Targets: 6,000 q/s on
  one thread, 10,000 on two. Beside them, the engine's search_one alone on the same
  queries (the ceiling of the public path) and uploads that match nothing (a platform's
  usual traffic: no metadata read, no evidence built).
* ``cli-lookup-10m``: `hashmatch lookup` as a process on 1 and 20,000 queries.
* ``store-change``: disabling one entry and importing a 1,000-entry list on that store,
  and the Matcher's reload after it (target: under 1 s each).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hashmatch.lists import ParsedList
from hashmatch.matching.matcher import Matcher
from hashmatch.store.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from heldout import heldout_codes, near_queries  # noqa: E402

ENTRIES = int(os.environ.get("HASHMATCH_BENCH_SCALE_ENTRIES", "10000000"))
QUERIES = 5_000
HASH_DIR_FILES = 200


def _run(args: list[str], core: int | None = None) -> float:
    def pin() -> None:
        if core is not None:
            os.sched_setaffinity(0, {core})
    started = time.perf_counter()
    done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=pin, cwd="/")
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-500:]
    return elapsed


# -- start-up and whole-process hashing ---------------------------------------------------------
@pytest.fixture(scope="module")
def jpeg_dir(tmp_path_factory, make_jpegs) -> Path:
    folder = tmp_path_factory.mktemp("hash-dir")
    make_jpegs(folder, HASH_DIR_FILES, first_seed=50_000)
    return folder


@pytest.mark.benchmark(group="startup")
@pytest.mark.parametrize("what", ["python -c pass", "hashmatch --help", "hashmatch hash one.jpg"])
def test_hashmatch_startup(benchmark, jpeg_dir: Path, what: str) -> None:
    one = str(next(jpeg_dir.iterdir()))
    args = {"python -c pass": [sys.executable, "-c", "pass"],
            "hashmatch --help": [sys.executable, "-m", "hashmatch.cli", "--help"],
            "hashmatch hash one.jpg": [sys.executable, "-m", "hashmatch.cli", "hash", one]}[what]
    benchmark.extra_info.update(side="hashmatch", command=what)
    benchmark.pedantic(_run, args=(args,), rounds=7, iterations=1, warmup_rounds=1)


_PDQHASH_SCRIPT = """
import os, sys, json
import numpy as np, pdqhash
from PIL import Image
for name in sorted(os.listdir(sys.argv[1])):
    with Image.open(os.path.join(sys.argv[1], name)) as image:
        bits, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
    print(json.dumps({"path": name, "pdq": np.packbits(bits).tobytes().hex(), "quality": int(quality)}))
"""


@pytest.mark.benchmark(group="cli-hash-dir")
def test_peer_pdqhash_script(benchmark, jpeg_dir: Path) -> None:
    pytest.importorskip("pdqhash")
    benchmark.extra_info.update(side="peer", impl="python script: pdqhash.compute(convert('RGB')) per file, 1 core")
    benchmark.pedantic(_run, args=([sys.executable, "-c", _PDQHASH_SCRIPT, str(jpeg_dir)], 0), rounds=3,
                       iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="cli-hash-dir")
def test_hashmatch_hash_dir(benchmark, jpeg_dir: Path) -> None:
    benchmark.extra_info.update(side="hashmatch", impl="hashmatch hash DIR (-w 1), 1 core")
    benchmark.pedantic(_run, args=([sys.executable, "-m", "hashmatch.cli", "hash", "-w", "1", str(jpeg_dir)], 0),
                       rounds=3, iterations=1, warmup_rounds=1)


# -- lookups on a held-out 10M store -------------------------------------------------------------
@pytest.fixture(scope="module")
def scale_store(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    folder = tmp_path_factory.mktemp("scale")
    codes = heldout_codes(ENTRIES, seed=1)
    hexes = codes.tobytes().hex()
    parsed = ParsedList.from_hashes("pdq", [hexes[64 * i:64 * i + 64] for i in range(ENTRIES)])
    del hexes
    Store.create(folder / "store").import_list(parsed, name="heldout", version="1")
    return folder / "store", codes, near_queries(codes, QUERIES, seed=2)


def _brute_force_check(matcher: Matcher, codes: np.ndarray, queries: np.ndarray) -> None:
    """A sample of queries against a numpy scan of every code: the same entries."""
    for query in queries[:20]:
        distances = np.unpackbits(codes ^ query, axis=1).sum(axis=1)
        want = set((np.flatnonzero(distances <= 31) + 1).tolist())  # entry ids are rows + 1
        got = {m.store_id for m in matcher.match_hashes({"pdq": query.tobytes().hex()}).matches}
        assert got == want


def _threaded(call, items: list, threads: int) -> None:
    """call(item) for every item, the items split over `threads` threads."""
    def part(chunk: list) -> None:
        for item in chunk:
            call(item)
    workers = [threading.Thread(target=part, args=(items[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


@pytest.mark.benchmark(group="lookups-10m")
@pytest.mark.parametrize("threads", [1, 2])
def test_hashmatch_single_queries(benchmark, scale_store, threads: int) -> None:
    path, codes, queries = scale_store
    matcher = Matcher(Store.open(path))
    _brute_force_check(matcher, codes, queries)
    hexes = [q.tobytes().hex() for q in queries]
    for h in hexes[:500]:
        matcher.match_hashes({"pdq": h})

    benchmark.pedantic(_threaded, args=(lambda h: matcher.match_hashes({"pdq": h}), hexes, threads),
                       rounds=3, iterations=1)
    candidates = matcher._engines["pdq"].candidates(queries[:500], 31) / 500
    benchmark.extra_info.update(side="hashmatch", threads=threads, entries=ENTRIES,
                                queries_per_s=round(QUERIES / benchmark.stats.stats.min),
                                candidates_per_query=round(candidates))
    print(f"\n{threads} thread(s): {QUERIES / benchmark.stats.stats.min:.0f} queries/s")


@pytest.mark.benchmark(group="lookups-10m")
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_single_queries(benchmark, scale_store, threads: int) -> None:
    """The same queries through the engine's search_one alone (the native kernel and its
    thin wrapper, no parsing, metadata or evidence): the ceiling of match_hashes."""
    path, _, queries = scale_store
    matcher = Matcher(Store.open(path))
    [(engine, ids, _)] = matcher._layers["pdq"]
    raw = [q.tobytes() for q in queries]
    for q in raw[:20]:
        assert sorted(int(ids[row]) for row, _ in engine.search_one(q, 31)) == sorted(
            m.store_id for m in matcher.match_hashes({"pdq": q.hex()}).matches)
    benchmark.pedantic(_threaded, args=(lambda q: engine.search_one(q, 31), raw, threads), rounds=3, iterations=1)
    benchmark.extra_info.update(side="hashmatch-kernel", threads=threads,
                                queries_per_s=round(QUERIES / benchmark.stats.stats.min))
    print(f"\nkernel alone, {threads} thread(s): {QUERIES / benchmark.stats.stats.min:.0f} queries/s")


@pytest.mark.benchmark(group="lookups-10m")
@pytest.mark.parametrize("threads", [1, 2])
def test_hashmatch_uploads(benchmark, scale_store, threads: int) -> None:
    """A platform's usual traffic: uploads that match nothing (fresh held-out-style codes,
    not members), so no metadata is read and no evidence built."""
    path, _, _ = scale_store
    matcher = Matcher(Store.open(path))
    hexes = [q.tobytes().hex() for q in heldout_codes(QUERIES, seed=77)]
    matched = sum(matcher.match_hashes({"pdq": h}).matched for h in hexes)
    benchmark.pedantic(_threaded, args=(lambda h: matcher.match_hashes({"pdq": h}), hexes, threads),
                       rounds=3, iterations=1)
    benchmark.extra_info.update(side="hashmatch", threads=threads, matched=matched,
                                queries_per_s=round(QUERIES / benchmark.stats.stats.min))
    print(f"\nuploads (matching nothing: {matched} of {QUERIES} matched), {threads} thread(s): "
          f"{QUERIES / benchmark.stats.stats.min:.0f} queries/s")


@pytest.mark.benchmark(group="lookups-10m")
@pytest.mark.parametrize("threads", [1, 2])
def test_hashmatch_match_hashes_many(benchmark, scale_store, threads: int) -> None:
    """The batched path: 256 queries per kernel call, split over the threads."""
    path, _, queries = scale_store
    matcher = Matcher(Store.open(path))
    batch = [{"pdq": q.tobytes().hex()} for q in queries]
    single = [matcher.match_hashes(q).to_dict() for q in batch[:300]]
    assert [r.to_dict() for r in matcher.match_hashes_many(batch[:300], threads=threads)] == single
    benchmark.pedantic(lambda: list(matcher.match_hashes_many(batch, threads=threads)), rounds=3, iterations=1)
    benchmark.extra_info.update(side="hashmatch", threads=threads,
                                queries_per_s=round(QUERIES / benchmark.stats.stats.min))
    print(f"\nmatch_hashes_many, {threads} thread(s): {QUERIES / benchmark.stats.stats.min:.0f} queries/s")


@pytest.mark.benchmark(group="cli-lookup-10m")
@pytest.mark.parametrize("queries", [1, 4 * QUERIES])
def test_hashmatch_lookup_process(benchmark, scale_store, tmp_path, queries: int) -> None:
    """`hashmatch lookup -s STORE < FILE` as a whole process: one query (opening and
    verifying the store) and 20,000 (the queries four times over); the difference is the
    lookup rate a user sees."""
    path, _, near = scale_store
    lines = "".join(f"pdq {near[i % len(near)].tobytes().hex()}\n" for i in range(queries))
    (tmp_path / "q.txt").write_text(lines)

    def run() -> None:
        with open(tmp_path / "q.txt") as stdin:
            done = subprocess.run(["hashmatch", "lookup", "-s", str(path)], stdin=stdin, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, cwd="/")
        assert done.returncode == 1, done.stderr[-500:]  # 1: something matched
    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info.update(side="hashmatch", queries=queries)
    print(f"\nhashmatch lookup, {queries} queries: {benchmark.stats.stats.min:.2f} s")


# -- changes on a 10M store -------------------------------------------------------------------------
def test_store_changes(scale_store, tmp_path) -> None:
    """Not a timing assertion: the seconds each change and reload takes, printed."""
    path, _, _ = scale_store
    store = Store.open(path)
    matcher = Matcher(store)
    timings = {}
    started = time.perf_counter()
    store = store.set_disabled([12345], True, "false positive")
    timings["disable one entry"] = time.perf_counter() - started
    started = time.perf_counter()
    matcher = matcher.reload()
    timings["Matcher.reload after it"] = time.perf_counter() - started
    rng = np.random.default_rng(3)
    extra = ParsedList.from_hashes("pdq", [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex()
                                           for _ in range(1000)])
    started = time.perf_counter()
    store.import_list(extra, name="small", version="1")
    timings["import a 1,000-entry list"] = time.perf_counter() - started
    for what, seconds in timings.items():
        print(f"{what}: {seconds:.2f} s")
