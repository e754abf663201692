"""`hashmatch scan` throughput: SCAN_FILES JPEGs of 1024x768 against a 1M-entry PDQ store.

    pytest benchmarks/test_bench_scan.py --benchmark-json=/tmp/scan.json -q
    python benchmarks/ratios.py /tmp/scan.json

Groups (ratios.py):

* ``scan-workers``: the scan with 2 worker processes against the same scan with 1
  (target: 2 workers at least 1.7x);
* ``scan-vs-hashing``: the full scan (walk, worker processes, sha256, PDQ, matching,
  report rows) with 2 workers against bare hashing of the same files,
  ``Hasher(("pdq", "sha256")).hash_many(paths, threads=2)`` (target: the scan at least
  80% of bare hashing's throughput, i.e. ratio >= 0.8).

Files/s = SCAN_FILES / mean, in extra_info. The store holds 1M random PDQ codes plus the
PDQ of every 10th benchmark image, so the scan reports real matches. Each round scans the
whole folder into a fresh report; the worker processes start inside the timed region
(a scan pays for them too).
"""
from __future__ import annotations

import pytest

from hashmatch import Hasher
from hashmatch.evaluation.bench import random_pdq_store
from hashmatch.matching.matcher import Matcher
from hashmatch.scan.scanner import ScanOptions, scan

SCAN_FILES = 1000
LIST_ENTRIES = 1_000_000
ROUNDS = 3


@pytest.fixture(scope="module")
def scan_dir(tmp_path_factory, make_jpegs):
    folder = tmp_path_factory.mktemp("scan-jpegs")
    return folder, make_jpegs(folder, SCAN_FILES, first_seed=10_000)


@pytest.fixture(scope="module")
def matcher(tmp_path_factory, scan_dir):
    _, paths = scan_dir
    hasher = Hasher(("pdq",))
    found = [hasher.hash(p).hashes["pdq"] for p in paths[::10]]
    return Matcher(random_pdq_store(tmp_path_factory.mktemp("scan-store") / "store", LIST_ENTRIES, seed=5,
                                    extra=found, category="bench"))


def _scan(matcher, folder, tmp_path, workers: int):
    report = tmp_path / f"report-{workers}.jsonl"
    summary = scan([str(folder)], matcher, str(report), ScanOptions(workers=workers))
    assert summary.files == SCAN_FILES and summary.statuses["error"] == 0
    assert summary.statuses["match"] >= SCAN_FILES // 10
    return summary


def _bench_scan(benchmark, matcher, folder, tmp_path, workers: int, group: str) -> None:
    benchmark.group = group
    benchmark.pedantic(_scan, args=(matcher, folder, tmp_path, workers), rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(files=SCAN_FILES, workers=workers, list_entries=LIST_ENTRIES,
                                files_per_s=SCAN_FILES / benchmark.stats.stats.mean)


def test_baseline_scan_1_worker(benchmark, matcher, scan_dir, tmp_path):
    _bench_scan(benchmark, matcher, scan_dir[0], tmp_path, 1, "scan-workers")


def test_hashmatch_scan_2_workers(benchmark, matcher, scan_dir, tmp_path):
    _bench_scan(benchmark, matcher, scan_dir[0], tmp_path, 2, "scan-workers")


def test_baseline_bare_hashing(benchmark, scan_dir):
    _, paths = scan_dir
    benchmark.group = "scan-vs-hashing"
    hasher = Hasher(("pdq", "sha256"))

    def run():
        return sum(1 for _ in hasher.hash_many(paths, threads=2))

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(files=SCAN_FILES, threads=2, files_per_s=SCAN_FILES / benchmark.stats.stats.mean)


def test_hashmatch_scan_vs_hashing(benchmark, matcher, scan_dir, tmp_path):
    _bench_scan(benchmark, matcher, scan_dir[0], tmp_path, 2, "scan-vs-hashing")
