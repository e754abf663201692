"""Scans on a Dask cluster (the optional extra ``hashmatch[dask]``).

The client (hashmatch.scan.scanner.scan) walks the tree, resumes and writes the report as for a
local scan; this executor only turns the regular files into results on the cluster:

* the unit of work is a *shard* of SHARD_SIZE paths; at most ``max_in_flight`` shards
  are submitted at a time (backpressure), so a huge listing never sits in the scheduler;
* each Dask worker opens the store once, from a path every worker can read, and keeps a
  Matcher cached by the store's path and manifest sha256 (never shipped per task; a
  store that changed under a running scan is refused, not silently mixed);
* inside a worker, files are hashed by a hashmatch WorkerPool (one subprocess, per-file
  time and memory limits), so a poison file costs only its row there too. When the Dask
  worker is a daemon process (Dask's default; set ``distributed.worker.daemon: false``
  to allow subprocesses) files are hashed in the worker itself, and a shard whose worker
  dies is split in halves and resubmitted until the poison file is alone and gets a
  ``worker_crashed`` row;
* a shard's rows come back together and are written when it completes: a shard that
  Dask retries on another worker (a lost worker) never yields duplicate rows, and a
  client that dies loses only unfinished shards, which --resume redoes.
"""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Iterator

from hashmatch.errors import ConfigurationError, HashmatchError
from hashmatch.isolation.workers import WORKER_CRASHED, HashJob, WorkerPool, hash_file
from hashmatch.matching.matcher import MatchConfig, Matcher
from hashmatch.scan.scanner import ScanOptions, ScanSummary, file_row, hash_job

SHARD_SIZE = 1000


@dataclass(frozen=True)
class MatchSpec:
    """How a worker rebuilds the client's Matcher (picklable, small)."""

    store_path: str
    manifest_sha256: str
    config: MatchConfig  # the client's, with its algorithms made explicit

    @classmethod
    def of(cls, matcher: Matcher) -> "MatchSpec":
        return cls(str(matcher.store.path.resolve()), manifest_sha256(matcher.store.path),
                   replace(matcher.config, algorithms=matcher.algorithms, isolate=False))


def manifest_sha256(store_path) -> str:
    with open(f"{store_path}/manifest.json", "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


# ---------------------------------------------------------------------------- worker side

_MATCHERS: dict[tuple[str, str], Matcher] = {}
_MATCHERS_LOCK = threading.Lock()
# One WorkerPool per Dask worker thread: a pool serves one caller at a time.
_POOLS = threading.local()


def _matcher(spec: MatchSpec) -> Matcher:
    key = (spec.store_path, spec.manifest_sha256)
    with _MATCHERS_LOCK:
        return _MATCHERS.get(key) or _load_matcher(spec, key)


def _load_matcher(spec: MatchSpec, key: tuple[str, str]) -> Matcher:
    from hashmatch.store.store import Store

    store = Store.open(spec.store_path)  # verifies every file's sha256
    if manifest_sha256(spec.store_path) != spec.manifest_sha256:
        raise ConfigurationError(f"the store at {spec.store_path} changed during the scan; start it again")
    matcher = Matcher(store, spec.config)
    _MATCHERS.clear()  # one store generation per worker at a time
    _MATCHERS[key] = matcher
    return matcher


def scan_shard(spec: MatchSpec, job: HashJob, timeout_s: float,
               paths: list[str | os.PathLike]) -> tuple[list[dict], dict]:
    """Runs on a Dask worker: the rows of one shard, and (worker, files, busy seconds)."""
    started = time.monotonic()
    matcher = _matcher(spec)
    if mp.current_process().daemon:  # no subprocesses allowed: hash here
        hasher = job.hasher()
        rows = [file_row(os.fspath(path), hash_file(path, hasher), matcher) for path in paths]
    else:
        pools = _POOLS.__dict__.setdefault("pools", {})
        pool = pools.get((job, timeout_s))
        if pool is None:
            pool = pools[(job, timeout_s)] = WorkerPool(job, 1, timeout_s)
        try:
            rows = [file_row(path, record, matcher) for path, record in pool.imap(paths)]
        except BaseException:
            # Files may still be in flight in the pool: never reuse it for another shard.
            pools.pop((job, timeout_s), None)
            pool.close()
            raise
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = "local"
    return rows, {"worker": worker, "files": len(paths), "busy_s": time.monotonic() - started}


# ---------------------------------------------------------------------------- client side

class DaskExecutor:
    """Runs a scan's files on a Dask cluster; pass to hashmatch.scan.scanner.scan(executor=...)."""

    def __init__(self, client, *, shard_size: int = SHARD_SIZE, max_in_flight: int | None = None):
        self.client = client
        self.shard_size = int(shard_size)
        if self.shard_size < 1:
            raise ConfigurationError("shard_size must be at least 1")
        self.workers = max(1, len(client.scheduler_info().get("workers", {})))
        self.max_in_flight = max_in_flight or 2 * self.workers

    def rows(self, matcher: Matcher, options: ScanOptions, paths: Iterator[str],
             summary: ScanSummary) -> Iterator[dict[str, Any]]:
        from distributed import as_completed

        spec = MatchSpec.of(matcher)
        job = hash_job(matcher, options)
        pending: list[list[str | os.PathLike]] = []  # split shards waiting to be resubmitted
        source = iter(paths)
        exhausted = False
        running = as_completed()
        shards: dict[Any, list[str | os.PathLike]] = {}

        def submit(shard: list[str | os.PathLike]) -> None:
            future = self.client.submit(scan_shard, spec, job, options.timeout_s, shard, pure=False)
            shards[future] = shard
            running.add(future)

        def next_shard() -> list[str | os.PathLike] | None:
            nonlocal exhausted
            if pending:
                return pending.pop()
            if exhausted:
                return None
            shard: list[str | os.PathLike] = []
            for path in source:
                shard.append(path)
                if len(shard) >= self.shard_size:
                    break
            exhausted = len(shard) < self.shard_size
            return shard or None

        def fill() -> None:
            while len(shards) < self.max_in_flight:
                shard = next_shard()
                if shard is None:
                    return
                submit(shard)

        fill()
        while shards:
            future = next(running)
            shard = shards.pop(future)
            try:
                rows, stats = future.result()
            except HashmatchError:  # a setup problem (store changed, unreadable store): stop the scan
                raise
            except Exception as exc:  # noqa: BLE001 - a worker died on this shard (Dask gave up)
                if len(shard) > 1:  # find the poison file: halves until it is alone
                    half = len(shard) // 2
                    pending += [shard[half:], shard[:half]]
                else:
                    message = f"{WORKER_CRASHED['message']} ({type(exc).__name__})"
                    yield {"path": os.fspath(shard[0]), "status": "error",
                           "error": {**WORKER_CRASHED, "message": message}}
            else:
                summary.add_worker_time(stats["worker"], stats["files"], stats["busy_s"])
                yield from rows
            future.release()
            fill()


def connect(address: str):
    """A Dask client for `address`: a scheduler (tcp://host:8786), or local[:N] to start
    a local cluster of N worker processes (default: the usable cores). Returns (client,
    cluster or None); close both when done."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ConfigurationError("--dask needs the dask extra: pip install 'hashmatch[dask]'") from exc
    if address == "local" or address.startswith("local:"):
        from hashmatch.config import usable_cores

        n = int(address.split(":", 1)[1]) if ":" in address else usable_cores()
        if n < 1:
            raise ConfigurationError("local:N needs N >= 1")
        # Non-daemonic workers may start the per-file subprocess that isolates poison files.
        with dask.config.set({"distributed.worker.daemon": False}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), cluster
    return Client(address), None
