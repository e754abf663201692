"""`hashmatch serve --fetch-every SECONDS`: the service keeps its lists current itself.

A background thread fetches every source of the store (exchanges.fetcher, one source at a
time, each under its own lock, so never two fetches of one source, even beside a
`hashmatch exchange fetch` run by hand) and then asks the live matcher to swap to the new
generation, as after any store change; requests are never blocked. A failing source keeps
the service ready, matching on the last good lists: /readyz does not change, and the
failure shows in the per-source metrics and in GET /v1/exchanges.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from hashmatch.service.live import LiveMatcher
from hashmatch.service.metrics import Metrics

_log = logging.getLogger("hashmatch.service")


class ExchangeLoop:
    def __init__(self, live: LiveMatcher, metrics: Metrics, every_s: float):
        self.live, self.metrics, self.every_s = live, metrics, every_s
        self.status: dict[str, dict[str, Any]] = {}  # per source: the last attempt, success, failures, counts
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hashmatch-exchange", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        delay = 0.0  # the first fetch at once, then every every_s
        while not self._stop.wait(delay):
            self.fetch_all()
            delay = self.every_s

    def fetch_all(self) -> None:
        from hashmatch.exchanges.fetcher import fetch

        try:
            summaries = fetch(self.live.store_path)
        except Exception as exc:  # noqa: BLE001 - the store itself unreadable: try again next time
            _log.warning("exchange fetch not started: %s", type(exc).__name__)
            return
        changed = False
        for summary in summaries:
            now = time.time()
            state = self.status.setdefault(summary.source, {"failures": 0, "last_success": None})
            state.update(last_attempt=now, list=summary.list, last_error=summary.error)
            labels = (summary.source,)
            self.metrics.exchange_attempt.labels(*labels).set(now)
            if summary.ok:
                state.update(failures=0, last_success=now, added=summary.added, updated=summary.updated,
                             deleted=summary.deleted,
                             skipped=dict(summary.skipped), invalid=summary.invalid)
                self.metrics.exchange_success.labels(*labels).set(now)
                self.metrics.exchange_records.labels(summary.source, "added").inc(summary.added)
                self.metrics.exchange_records.labels(summary.source, "updated").inc(summary.updated)
                self.metrics.exchange_records.labels(summary.source, "deleted").inc(summary.deleted)
                self.metrics.exchange_records.labels(summary.source, "skipped").inc(sum(summary.skipped.values()))
                changed = changed or bool(summary.added or summary.deleted)
            else:
                state["failures"] += 1
                _log.warning("exchange source %s failed (%d in a row)", summary.source, state["failures"])
            self.metrics.exchange_failures.labels(*labels).set(state["failures"])
        if changed:
            self.live.refresh()
        matcher = self.live.current
        if matcher is not None:
            entries = {info.name: info.entries for info in matcher.store.lists()}
            for name, state in self.status.items():
                self.metrics.exchange_entries.labels(name).set(entries.get(state.get("list") or "", 0))
