"""The service's matcher over a live store: loaded in the background (the process answers
/healthz at once, /readyz only once matching works), and swapped atomically when the
store's generation changes (a `hashmatch list ...` or an admin request): each request
takes the current matcher once and finishes on it, so no request fails or mixes
generations during a swap, and the old generation is freed when its last request ends.
The hashing workers are shared by every generation and never restarted by a swap.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from hashmatch.errors import HashmatchError
from hashmatch.isolation.isolated import IsolatedHasher
from hashmatch.matching.matcher import MatchConfig, Matcher
from hashmatch.store.files import _read_manifest
from hashmatch.store.store import Store

_log = logging.getLogger("hashmatch.service")


class LiveMatcher:
    """The current Matcher of a store folder, refreshed by a background thread."""

    def __init__(self, store_path: str, config: MatchConfig, *, workers: int, timeout_s: float,
                 memory_limit: int | None, poll_s: float = 2.0, on_swap: Callable[[Matcher], None] | None = None,
                 cpu_limit_s: float | None = None):
        self.store_path = Path(store_path)
        self.config = config
        # An upload's budget is the operator's: timeout_s of wall clock from hand-over and
        # cpu_limit_s of CPU (default: the same), never raised by its size or a video's
        # declared duration (IsolatedHasher(fixed_budget=True)).
        self.workers, self.timeout_s, self.memory_limit = workers, timeout_s, memory_limit
        self.cpu_limit_s = cpu_limit_s if cpu_limit_s is not None else timeout_s
        self.poll_s = poll_s
        self.on_swap = on_swap
        self._matcher: Matcher | None = None
        self.isolated: IsolatedHasher | None = None
        self.swaps = 0
        self.load_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hashmatch-store-watch", daemon=True)
        self._lock = threading.Lock()

    @property
    def current(self) -> Matcher | None:
        return self._matcher

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self.isolated is not None:
            self.isolated.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except (HashmatchError, OSError) as exc:  # keep serving the generation we have
                self.load_error = str(exc)
                _log.warning("store %s not (re)loaded: %s", self.store_path, exc)
            self._stop.wait(self.poll_s)

    def refresh(self) -> bool:
        """Swap to the store's newest generation if it moved; True when it swapped."""
        with self._lock:
            current = self._matcher
            if current is not None and _read_manifest(self.store_path)[1].generation == current.store.generation:
                return False
            started = time.monotonic()
            # reload(): a small change (an overlay over the same base) reuses the base's
            # verified arrays and engines, so a swap costs what the change cost.
            fresh = current.reload() if current is not None else Matcher(Store.open(self.store_path), self.config)
            if self.isolated is None:
                # The row's sha256 comes from the worker, as in a scan.
                hasher = fresh.hasher
                if "sha256" not in hasher.algorithms:
                    hasher = replace(hasher, algorithms=hasher.algorithms + ("sha256",))
                self.isolated = IsolatedHasher(hasher, workers=self.workers, timeout_s=self.timeout_s,
                                               memory_limit=self.memory_limit, fixed_budget=True,
                                               cpu_limit_s=self.cpu_limit_s)
            self._matcher = fresh  # one reference assignment: requests see the old or the new matcher
            self.load_error = None
            if current is not None:
                self.swaps += 1
            _log.info("store generation %d loaded in %.2f s", fresh.store.generation, time.monotonic() - started)
            if self.on_swap is not None:
                self.on_swap(fresh)
            return True
