"""Thread scaling: N_BATCH (40) 1024x768 JPEGs held in memory as encoded bytes, hashed
(decode + PDQ) with ``Hasher(("pdq",)).hash_many(batch, threads=N)``.

baseline: threads=1; hashmatch: threads=2. Both go through the same thread pool code, so
the ratio is the wall-clock speedup from the second thread, i.e. how much of the work runs
with the GIL released. Target: >= 1.7x. Only meaningful on a machine with >= 2 free cores.
"""
from __future__ import annotations

import os

import pytest

from hashmatch import Hasher, HashResult

ROUNDS = 8


def _run(hasher: Hasher, batch: list[bytes], threads: int) -> list:
    return list(hasher.hash_many(batch, threads=threads))


def _check(results, batch) -> None:
    assert len(results) == len(batch)
    assert all(isinstance(r, HashResult) for r in results), [r for r in results if not isinstance(r, HashResult)][:1]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@pytest.mark.benchmark(group="threads")
def test_baseline_threads_1(benchmark, jpeg_batch_bytes):
    hasher = Hasher(("pdq",))
    benchmark.extra_info.update(side="baseline", impl="hash_many(batch, threads=1)", inputs=len(jpeg_batch_bytes),
                                usable_cores=_cores())
    results = benchmark.pedantic(_run, args=(hasher, jpeg_batch_bytes, 1), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    _check(results, jpeg_batch_bytes)


@pytest.mark.benchmark(group="threads")
def test_hashmatch_threads_2(benchmark, jpeg_batch_bytes):
    hasher = Hasher(("pdq",))
    benchmark.extra_info.update(side="hashmatch", impl="hash_many(batch, threads=2)", inputs=len(jpeg_batch_bytes),
                                usable_cores=_cores())
    results = benchmark.pedantic(_run, args=(hasher, jpeg_batch_bytes, 2), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    _check(results, jpeg_batch_bytes)
    # Same hashes in the same order as one thread.
    assert [r.hashes for r in results] == [r.hashes for r in _run(hasher, jpeg_batch_bytes, 1)]
