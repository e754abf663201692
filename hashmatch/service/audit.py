"""The service's audit log: one JSON line per match decision, appended by a background
thread in batches (one write and one fsync per batch, at least every FLUSH_S seconds)
instead of a write and an fsync per request, which would cost a disk sync inside every
lookup. A line is durable within FLUSH_S of its decision; `close()` drains the rest. The
file is created 0600 (an existing one is tightened to 0600), opened O_APPEND so lines from
other writers (scans, store changes) stay whole."""
from __future__ import annotations

import json
import os
import queue
import threading
from typing import Any

#: Longest a decided line waits before it is written and synced.
FLUSH_S = 0.2
#: Lines held at most before a request waits for the writer (bounded memory).
MAX_PENDING = 100_000


class AuditLog:
    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._lines: queue.Queue[str | None] = queue.Queue(MAX_PENDING)
        self._thread = threading.Thread(target=self._run, name="hashmatch-audit", daemon=True)
        self._thread.start()

    def append(self, record: dict[str, Any]) -> None:
        self._lines.put(json.dumps(record, sort_keys=True) + "\n")

    def close(self) -> None:
        self._lines.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        done = False
        while not done:
            batch: list[str] = []
            try:
                first = self._lines.get(timeout=FLUSH_S)
            except queue.Empty:
                continue
            if first is None:
                break
            batch.append(first)
            while True:  # everything queued meanwhile goes into the same write
                try:
                    line = self._lines.get_nowait()
                except queue.Empty:
                    break
                if line is None:
                    done = True
                    break
                batch.append(line)
            self._write("".join(batch))

    def _write(self, text: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.fchmod(fd, 0o600)
            data = text.encode()
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
