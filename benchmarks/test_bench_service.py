"""`hashmatch serve` under load, beside the in-process Matcher on the same inputs, in the
same run: a real server (a subprocess, 2 hashing workers) on 127.0.0.1, driven by a
bounded async httpx client.

    pytest benchmarks/test_bench_service.py -q -s --benchmark-json=/tmp/service.json

* ``service-uploads``: UPLOADS 1024x768 JPEGs posted to /v1/match with CONCURRENCY
  requests in flight, against `Matcher.match_many(paths, threads=2)` (isolate=True, the
  same worker processes a service uses) on the same files. Target: service >= 0.8 of it;
  p99 < 4x median at saturation.
* ``service-lookups``: single PDQ queries to /v1/lookup against a LOOKUP_ENTRIES store
  (10M by default; HASHMATCH_BENCH_LOOKUP_ENTRIES to change), CONCURRENCY in flight,
  against single `Matcher.match_hashes` calls in a loop. Target: >= 0.5 of it. The
  client shares the 2 cores, so the server's CPU per request (and the capacity of one
  core it implies) is reported beside the end-to-end rate.
* ``service-swaps``: a 60 s lookup run while the store is re-imported every 5 s: failed
  requests (target 0); then 100 swaps and the server's resident memory after the first
  and after the hundredth (target within 10%).

Requests/s, p50/p95/p99 and errors go to extra_info and are printed; each timed callable
runs once (rounds=1), as a load run is long and its own statistics are the percentiles.
"""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

from hashmatch import Hasher  # noqa: E402
from hashmatch.evaluation.bench import random_pdq_store  # noqa: E402
from hashmatch.matching.matcher import Matcher  # noqa: E402
from hashmatch.store.store import Store  # noqa: E402

UPLOADS = 200
CONCURRENCY = 8
LOOKUP_ENTRIES = int(os.environ.get("HASHMATCH_BENCH_LOOKUP_ENTRIES", "10000000"))
LOOKUPS = 20_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Server:
    def __init__(self, store: Path, *extra: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "hashmatch.cli", "serve", "-s", str(store), "--port",
                                         str(self.port), "--workers", "2", "--no-auth", "--poll", "0.5", *extra],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server never became ready")

    def cpu_s(self) -> float:
        """CPU seconds the server process has used (user + system)."""
        with open(f"/proc/{self.process.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as handle:
            return next(int(line.split()[1]) << 10 for line in handle if line.startswith("VmRSS:"))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _load(server: _Server, requests: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """_drive, plus the CPU each side spent per request: on this 2-core machine the client
    competes with the server, so the server's own capacity is 1 / its CPU per request."""
    server_cpu, client_cpu = server.cpu_s(), time.process_time()
    result = asyncio.run(_drive(server.url, requests, concurrency))
    server_ms = 1000 * (server.cpu_s() - server_cpu) / len(requests)
    client_ms = 1000 * (time.process_time() - client_cpu) / len(requests)
    return {**result, "server_cpu_ms": round(server_ms, 3), "client_cpu_ms": round(client_ms, 3),
            "server_capacity_per_core_s": round(1000 / server_ms, 1) if server_ms else None}


async def _drive(url: str, requests: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """Send every request with `concurrency` in flight; latency percentiles and errors."""
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                request = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(**request)
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    values = np.array(latencies)
    return {"requests": len(requests), "seconds": round(elapsed, 2), "per_s": round(len(requests) / elapsed, 1),
            "p50_ms": round(1000 * float(np.percentile(values, 50)), 2),
            "p95_ms": round(1000 * float(np.percentile(values, 95)), 2),
            "p99_ms": round(1000 * float(np.percentile(values, 99)), 2), "errors": errors}


@pytest.fixture(scope="module")
def upload_setup(tmp_path_factory, make_jpegs):
    folder = tmp_path_factory.mktemp("service-jpegs")
    paths = make_jpegs(folder, UPLOADS, first_seed=30_000)
    extra = [Hasher(("pdq",)).hash(p).hashes["pdq"] for p in paths[::10]]
    store_path = folder / "store"
    random_pdq_store(store_path, 100_000, seed=5, extra=extra)
    return store_path, paths


@pytest.mark.benchmark(group="service-uploads")
def test_baseline_matcher_match_many(benchmark, upload_setup) -> None:
    store_path, paths = upload_setup
    matcher = Matcher(Store.open(store_path), isolate=True, workers=2)
    list(matcher.match_many(paths[:10], threads=2))  # workers started outside the timed run
    results = benchmark.pedantic(lambda: list(matcher.match_many(paths, threads=2)), rounds=1, iterations=1)
    matcher.close()
    assert sum(r.status == "match" for r in results) == len(paths[::10])
    benchmark.extra_info.update(side="baseline", per_s=round(len(paths) / benchmark.stats.stats.mean, 1))


@pytest.mark.benchmark(group="service-uploads")
def test_hashmatch_service_uploads(benchmark, upload_setup) -> None:
    store_path, paths = upload_setup
    server = _Server(store_path, "--queue", str(4 * CONCURRENCY))
    try:
        requests = [{"url": "/v1/match", "content": Path(p).read_bytes()} for p in paths]
        asyncio.run(_drive(server.url, requests[:10], 2))  # warm the workers
        result = benchmark.pedantic(lambda: _load(server, requests, CONCURRENCY), rounds=1, iterations=1)
    finally:
        server.stop()
    benchmark.extra_info.update(side="hashmatch", **result)
    print("\nservice uploads:", result)
    assert result["errors"] == 0


@pytest.fixture(scope="module")
def lookup_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("service-lookups")
    store = random_pdq_store(folder / "store", LOOKUP_ENTRIES, seed=9)
    rng = np.random.default_rng(10)
    codes = store.arrays["pdq"].codes[rng.integers(0, LOOKUP_ENTRIES, LOOKUPS)]
    bits = np.unpackbits(codes, axis=1)
    for row in bits:
        row[rng.choice(256, rng.integers(0, 25), replace=False)] ^= 1
    return folder / "store", [row.tobytes().hex() for row in np.packbits(bits, axis=1)]


@pytest.mark.benchmark(group="service-lookups")
def test_baseline_single_lookups(benchmark, lookup_setup) -> None:
    store_path, queries = lookup_setup
    matcher = Matcher(Store.open(store_path))
    results = benchmark.pedantic(lambda: [matcher.match_hashes({"pdq": q}) for q in queries], rounds=1, iterations=1)
    assert all(r.status == "match" for r in results)
    benchmark.extra_info.update(side="baseline", per_s=round(len(queries) / benchmark.stats.stats.mean, 1))


@pytest.mark.benchmark(group="service-lookups")
def test_hashmatch_service_lookups(benchmark, lookup_setup) -> None:
    store_path, queries = lookup_setup
    server = _Server(store_path)
    try:
        requests = [{"url": "/v1/lookup", "json": {"hashes": {"pdq": q}}} for q in queries]
        result = benchmark.pedantic(lambda: _load(server, requests, CONCURRENCY), rounds=1, iterations=1)
    finally:
        server.stop()
    benchmark.extra_info.update(side="hashmatch", **result)
    print("\nservice lookups:", result)
    assert result["errors"] == 0


def test_swaps_under_load_and_memory(tmp_path) -> None:
    """Not timed: failed requests during re-imports every 5 s for 60 s, then the server's
    RSS after 1 and after 100 swaps."""
    store = random_pdq_store(tmp_path / "store", 100_000, seed=12)
    query = store.arrays["pdq"].codes[0].tobytes().hex()
    server = _Server(tmp_path / "store", "--poll", "0.1")
    try:
        async def run_load(seconds: float) -> dict[str, Any]:
            deadline = time.monotonic() + seconds
            counts = {"requests": 0, "errors": 0}
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                async def worker() -> None:
                    while time.monotonic() < deadline:
                        response = await client.post("/v1/lookup", json={"hashes": {"pdq": query}})
                        counts["requests"] += 1
                        counts["errors"] += response.status_code != 200 or response.json()["status"] != "match"
                await asyncio.gather(*(worker() for _ in range(4)))
            return counts

        def reimport(times: int, every: float) -> None:
            for _ in range(times):
                Store.open(tmp_path / "store").set_disabled([2], True, "swap")
                Store.open(tmp_path / "store").set_disabled([2], False)
                time.sleep(every)

        import threading

        changer = threading.Thread(target=reimport, args=(12, 5.0))
        changer.start()
        counts = asyncio.run(run_load(60))
        changer.join()
        print("\nswaps under load:", counts)
        assert counts["errors"] == 0 and counts["requests"] > 0
        reimport(1, 0.5)
        first = server.rss()
        reimport(50, 0.25)  # 100 generations
        time.sleep(1)
        hundredth = server.rss()
        print(f"RSS after the first swap {first >> 20} MiB, after 100 more {hundredth >> 20} MiB")
        assert hundredth <= 1.1 * first
    finally:
        server.stop()
