"""The service's audit log: one JSON line per match decision, appended by a background
thread in batches (one write and one fsync per batch, at least every FLUSH_S seconds)
instead of a write and an fsync per request, which would cost a disk sync inside every
lookup. A line is durable within FLUSH_S of its decision; `close()` drains the rest. The
file is created 0600 (an existing one is tightened to 0600), opened O_APPEND so lines from
other writers (scans, store changes) stay whole.

A failed write (the folder gone, the disk full) is never the end of the log: the batch
stays queued and is retried with a growing pause until it lands, so no line is lost when
the folder comes back. While writes fail, or while MAX_PENDING lines wait, `healthy` is
False: the service then answers decisions with 503 and /readyz with 503 (it fails closed:
no decision goes unrecorded). `append` never blocks: it refuses (AuditUnavailable) when
the queue is full.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from typing import Any

#: Longest a decided line waits before it is written and synced.
FLUSH_S = 0.2
#: Lines held at most; beyond, `append` refuses (bounded memory, never a blocked event loop).
MAX_PENDING = 100_000
#: Pause after a failed write, doubled after each further failure up to RETRY_MAX_S.
RETRY_S = 0.1
RETRY_MAX_S = 2.0

_log = logging.getLogger("hashmatch.service")


class AuditUnavailable(Exception):
    """The audit log cannot take a line now (writes failing, or the queue full)."""


class AuditLog:
    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._lines: deque[str] = deque()
        self._ready = threading.Condition()
        self._closing = False
        self.failing: str | None = None  # why the last write failed, until one succeeds
        self.failures = 0  # failed writes so far (a metric)
        self._offset = 0  # bytes of the first queued line already written (a write cut short)
        self._thread = threading.Thread(target=self._run, name="hashmatch-audit", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self._lines)

    @property
    def healthy(self) -> bool:
        return self.failing is None and len(self._lines) < MAX_PENDING

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with self._ready:
            if len(self._lines) >= MAX_PENDING:
                raise AuditUnavailable(f"{len(self._lines)} audit lines are waiting to be written")
            self._lines.append(line)
            self._ready.notify()

    def close(self, timeout: float = 30.0) -> None:
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join(timeout=timeout)
        if self._lines:
            _log.error("audit log %s: %d lines could not be written before shutdown", self.path, len(self._lines))

    def _run(self) -> None:
        pause = RETRY_S
        while True:
            with self._ready:
                if not self._lines and not self._closing:
                    self._ready.wait(FLUSH_S)
                if not self._lines:
                    if self._closing:
                        return
                    continue
                batch = [line.encode() for line in self._lines]
            written, error = self._write(b"".join(batch)[self._offset:])
            self._consume(batch, self._offset + written)
            if error is None:
                if self.failing is not None:
                    _log.warning("audit log %s is written again", self.path)
                self.failing, pause = None, RETRY_S
                continue
            self.failures += 1
            if self.failing is None:
                _log.error("audit log %s cannot be written (%s); decisions are refused until it can",
                           self.path, error.strerror or type(error).__name__)
            self.failing = error.strerror or type(error).__name__
            if self._closing and pause >= RETRY_MAX_S:
                return  # close() reports what is left
            with self._ready:
                self._ready.wait(pause)
            pause = min(RETRY_MAX_S, pause * 2)

    def _consume(self, batch: list[bytes], done: int) -> None:
        """Drop the lines of `batch` whose bytes are all written (`done` bytes from the
        first); a line written in part is finished, not repeated, by the next write."""
        with self._ready:
            for line in batch:
                if done < len(line):
                    break
                done -= len(line)
                self._lines.popleft()
        self._offset = done

    def _write(self, data: bytes) -> tuple[int, OSError | None]:
        """Append `data` (O_APPEND: a batch stays together) and fsync; returns the bytes
        written and the error that stopped it, if any."""
        written = 0
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            return 0, exc
        try:
            os.fchmod(fd, 0o600)
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError as exc:
            return written, exc
        finally:
            os.close(fd)
        return written, None
