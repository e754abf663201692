"""A real `hashmatch serve` on a free loopback port, as deployed (a subprocess), the CLI
as a process, and a process's peak memory: shared by the service's test modules and
benchmarks/measure_service_hardening.py."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hashmatch.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd="/")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, store: Path, tokens: Path | None, *extra: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        auth = ["--tokens", str(tokens)] if tokens else ["--no-auth"]
        self.log = open(store.parent / f"server-{self.port}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hashmatch.cli", "serve", "-s", str(store), "--port", str(self.port),
             "--workers", "2", "--poll", "0.2", *auth, *extra], stdout=self.log, stderr=subprocess.STDOUT, cwd="/")
        self.wait("/healthz")

    def wait(self, path: str, status: int = 200, limit: float = 60) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + path, timeout=2).status_code == status:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{path} never answered {status}; log: {Path(self.log.name).read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


class PeakRSS:
    """The peak resident memory of process `pid` while the block runs (sampled every 10 ms)."""

    def __init__(self, pid: int):
        import psutil

        self.process = psutil.Process(pid)
        self.before = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.before) / (1 << 20)
