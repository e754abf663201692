"""Scans on a Dask LocalCluster against the local process pool, same files, same run.

    pytest benchmarks/test_bench_dask.py --benchmark-json=/tmp/dask.json -q
    python benchmarks/ratios.py /tmp/dask.json

FILES JPEGs of 1024x768 against a 100k-entry PDQ store. Groups (ratios.py):

* ``dask-vs-local-1w`` / ``dask-vs-local-2w``: the local pool with N workers (reference)
  against a LocalCluster of N worker processes (target: Dask within 15%, ratio >= 0.85);
* files/s per worker count in extra_info (1 and 2 workers).

The clusters start outside the timed region (an existing cluster is already running);
the first shard on each worker pays for opening the store and starting its hashing
subprocess, inside it. Shards of SHARD files.
"""
from __future__ import annotations

import pytest

pytest.importorskip("distributed")

from hashmatch.evaluation.bench import random_pdq_store  # noqa: E402
from hashmatch.matching.matcher import Matcher  # noqa: E402
from hashmatch.scan.dask_executor import DaskExecutor, connect  # noqa: E402
from hashmatch.scan.scanner import LocalExecutor, ScanOptions, scan  # noqa: E402

FILES = 600
SHARD = 50
ENTRIES = 100_000
ROUNDS = 3


@pytest.fixture(scope="module")
def files(tmp_path_factory, make_jpegs):
    folder = tmp_path_factory.mktemp("dask-jpegs")
    make_jpegs(folder, FILES, first_seed=50_000)
    return folder


@pytest.fixture(scope="module")
def matcher(tmp_path_factory):
    return Matcher(random_pdq_store(tmp_path_factory.mktemp("dask-store") / "s", ENTRIES, seed=3))


@pytest.fixture(scope="module", params=[1, 2], ids=["1w", "2w"])
def cluster(request):
    client, cluster = connect(f"local:{request.param}")
    yield request.param, client
    client.close()
    cluster.close()


def _run(matcher, folder, tmp_path, executor):
    summary = scan([str(folder)], matcher, str(tmp_path / "r.jsonl"), ScanOptions(), executor=executor)
    assert summary.files == FILES and summary.statuses["error"] == 0


def test_baseline_local_pool(benchmark, files, matcher, tmp_path, cluster):
    workers, _ = cluster
    benchmark.group = f"dask-vs-local-{workers}w"
    benchmark.pedantic(_run, args=(matcher, files, tmp_path, LocalExecutor(workers)), rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(workers=workers, files_per_s=FILES / benchmark.stats.stats.mean)


def test_hashmatch_dask(benchmark, files, matcher, tmp_path, cluster):
    workers, client = cluster
    benchmark.group = f"dask-vs-local-{workers}w"
    executor = DaskExecutor(client, shard_size=SHARD)
    benchmark.pedantic(_run, args=(matcher, files, tmp_path, executor), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(workers=workers, files_per_s=FILES / benchmark.stats.stats.mean)
