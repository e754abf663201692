"""Isolated hashing of single inputs: a Hasher whose work runs in worker processes
(workers.py: the processes, their limits and the JSON protocol). Used by the API
(``Matcher(isolate=True)``), ``hashmatch hash --timeout`` and the service.

Two kinds of time limit: by default a file's wall-clock limit grows with what it is (the
time to read its size at READ_RATE, then `timeout_s` from the start of decoding, plus
VIDEO_DECODE_S_PER_S per second a video declares), so that a large file on a slow disk
or a long video is hashed, not timed out. With ``fixed_budget=True`` (the service, where
the input is an upload from anyone) `timeout_s` is the whole budget from the moment the
input is handed over, and nothing in the file can raise it; ``cpu_limit_s`` adds a CPU
budget per input that counts every decoder thread.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Iterable, Iterator

from hashmatch.errors import ERRORS_BY_CODE, ConfigurationError, ImageError, InputTypeError
from hashmatch.isolation.forkserver import worker_context
from hashmatch.isolation.workers import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_TIMEOUT_S,
    READ_RATE,
    WORKER_CRASHED,
    HashJob,
    _death_error,
    _recv,
    _send_task,
    _size,
    _timeout_error,
    _video_time,
    _Worker,
)
from hashmatch.signals.hasher import Hasher, HashResult, ordered_map


class IsolatedHasher:
    """A Hasher whose reading, decoding and hashing run in worker processes, with a
    wall-clock limit per input and an address-space limit per worker: a poison input
    costs a typed error (HashTimeoutError, WorkerCrashedError, OutOfMemoryError; each
    carrying the exact hashes taken before decoding started), never the caller.

    Takes paths and bytes (file objects are read here first); PIL images and arrays are
    already decoded and have nothing to isolate. Thread-safe: up to `workers` calls run
    at once, each on a worker of its own; more wait for one. Workers start on first use
    and are replaced after any failure. Close it (or use it as a context manager) to stop
    them; they are daemon processes and also end with this one."""

    def __init__(self, hasher: Hasher, *, workers: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S,
                 memory_limit: int | None = DEFAULT_MEMORY_LIMIT, fixed_budget: bool = False,
                 cpu_limit_s: float | None = None):
        if workers < 1:
            raise ConfigurationError("workers must be at least 1")
        if timeout_s <= 0 or (cpu_limit_s is not None and cpu_limit_s <= 0):
            raise ConfigurationError("the per-file time limits must be positive")
        self.hasher = hasher
        self.timeout_s = float(timeout_s)
        self.memory_limit = memory_limit
        self.workers = workers
        self.fixed_budget = fixed_budget
        self._job = HashJob.of(hasher, memory_limit, cpu_limit_s=cpu_limit_s)
        self._ctx = worker_context()
        self._slots = threading.Semaphore(workers)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._closed = False
        self.replaced = 0

    def __enter__(self) -> "IsolatedHasher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True  # a worker being started now is killed as soon as it exists
            workers, self._idle = list(self._all), []
            self._all.clear()
        for worker in workers:
            worker.kill()

    def hash(self, source: Any) -> HashResult:
        """Like Hasher.hash, in a worker process. Raises an ImageError subclass."""
        record = self.run(source)
        if "error" in record:
            raise _error_of(record)
        return HashResult.from_dict(record["result"], self.hasher.algorithms)

    def hash_or_error(self, source: Any) -> HashResult | ImageError:
        try:
            return self.hash(source)
        except ImageError as exc:
            return exc

    def hash_many(self, sources: Iterable[Any], *, threads: int | None = None) -> Iterator[HashResult | ImageError]:
        """Hash many inputs, `threads` at a time (default: the workers), in input order."""
        return ordered_map(self.hash_or_error, sources, threads or self.workers)

    def run(self, source: Any) -> dict[str, Any]:
        """The worker's record for one input (as hash_file gives it), or a timeout /
        crash record carrying the exact hashes the worker reported before it failed."""
        item = _isolatable(source)
        with self._slots:
            checked_out = self._checkout()
            worker: _Worker | None = checked_out  # None once _exchange has retired it
            try:
                record, worker = self._exchange(checked_out, item)
            finally:
                self._checkin(worker)
        return record

    def _checkout(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        worker = _Worker(self._ctx, self._job)
        with self._lock:
            closed = self._closed
            if not closed:
                self._all.add(worker)
        if closed:
            worker.kill()  # closed while it started (a server shutting down): the input gets worker_crashed
        return worker

    def _checkin(self, worker: _Worker | None) -> None:
        if worker is None:
            return
        with self._lock:
            if worker in self._all:
                self._idle.append(worker)

    def _fresh(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
            self.replaced += 1
        worker.kill()

    def _exchange(self, worker: _Worker, item: str | os.PathLike | bytes) -> tuple[dict[str, Any], _Worker | None]:
        if not worker.started and not self._await_start(worker):
            self._fresh(worker)
            return {"error": dict(WORKER_CRASHED)}, None
        size = len(item) if isinstance(item, bytes) else _size(item)
        deadline = time.monotonic() + self.timeout_s + (0.0 if self.fixed_budget else size / READ_RATE)
        partial: dict[str, Any] = {}
        try:
            _send_task(worker.conn, item)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not worker.conn.poll(remaining):
                    self._fresh(worker)
                    return {**partial, "error": _timeout_error(self.timeout_s)}, None
                message = _recv(worker.conn)
                if isinstance(message, dict) and "partial" in message:
                    partial = message["partial"]
                    if not self.fixed_budget:
                        deadline = time.monotonic() + self.timeout_s  # decoding starts now, with its own time
                    continue
                if isinstance(message, dict) and "video_seconds" in message:
                    if not self.fixed_budget:
                        deadline = time.monotonic() + self.timeout_s + _video_time(message["video_seconds"])
                    continue
                if not isinstance(message, dict):
                    raise ValueError("not a worker record")
                if (message.get("error") or {}).get("code") == "out_of_memory":
                    self._fresh(worker)  # a process that ran out of memory is not trusted again
                    return message, None
                return message, worker
        except (EOFError, OSError, ValueError):
            error = _death_error(worker.process)
            self._fresh(worker)
            return {**partial, "error": error}, None

    def _await_start(self, worker: _Worker) -> bool:
        try:
            if worker.conn.poll(max(60.0, self.timeout_s)) and _recv(worker.conn) == "ready":
                worker.started = True
        except (EOFError, OSError, ValueError):
            return False
        return worker.started


def _isolatable(source: Any) -> str | os.PathLike | bytes:
    if isinstance(source, (str, os.PathLike)):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise InputTypeError("file objects must be opened in binary mode")
        return bytes(data)
    raise InputTypeError(f"isolated hashing takes a path, bytes or a binary file, not a {type(source).__name__}")


def _error_of(record: dict[str, Any]) -> ImageError:
    """The typed ImageError a worker record describes, with its exact hashes."""
    error = record["error"]
    cls = ERRORS_BY_CODE.get(error.get("code"), ImageError)
    exc = cls(error.get("message") or error.get("code") or "hashing failed")
    exc.file_hashes = record.get("file_hashes")
    exc.file_size = record.get("size")
    return exc
