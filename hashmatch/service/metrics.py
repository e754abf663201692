"""The service's Prometheus metrics, in a registry of their own (one per app): requests
and latency by endpoint and outcome, matches by list and category, worker restarts,
queue depth, store generation and entries, swaps."""
from __future__ import annotations

from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Latency buckets (s): lookups take well under a millisecond, video uploads seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("hashmatch_requests", "Requests by endpoint and outcome", ["endpoint", "outcome"],
                                registry=r)
        self.latency = Histogram("hashmatch_request_seconds", "Request latency by endpoint and outcome",
                                 ["endpoint", "outcome"], buckets=BUCKETS, registry=r)
        self.matches = Counter("hashmatch_matches", "Matches reported, by list and category", ["list", "category"],
                               registry=r)
        self.queue_depth = Gauge("hashmatch_queue_depth", "Uploads waiting for or in a hashing worker", registry=r)
        self.worker_restarts = Gauge("hashmatch_worker_restarts", "Hashing workers replaced after a failure",
                                     registry=r)
        self.generation = Gauge("hashmatch_store_generation", "Store generation being matched", registry=r)
        self.entries = Gauge("hashmatch_store_entries", "Active entries by algorithm", ["algorithm"], registry=r)
        self.swaps = Counter("hashmatch_store_swaps", "Store generations swapped in while serving", registry=r)
        self.audit_failures = Gauge("hashmatch_audit_write_failures", "Failed writes of the audit log (retried)",
                                    registry=r)
        self.audit_pending = Gauge("hashmatch_audit_pending", "Audit lines waiting to be written", registry=r)
        # Exchange sources (serve --fetch-every), per source.
        self.exchange_success = Gauge("hashmatch_exchange_last_success_timestamp_seconds",
                                      "When the source was last fetched successfully", ["source"], registry=r)
        self.exchange_attempt = Gauge("hashmatch_exchange_last_attempt_timestamp_seconds",
                                      "When the source's fetch was last tried", ["source"], registry=r)
        self.exchange_failures = Gauge("hashmatch_exchange_consecutive_failures",
                                       "Fetches of the source that failed in a row", ["source"], registry=r)
        self.exchange_entries = Gauge("hashmatch_exchange_entries", "Entries of the list the source feeds",
                                      ["source"], registry=r)
        self.exchange_records = Counter("hashmatch_exchange_records", "Records fetched, by what became of them",
                                        ["source", "kind"], registry=r)

    def bind(self, restarts: Callable[[], float], audit: Any = None) -> None:
        """Read the worker restarts (they live in the hashing pool) and the audit log's
        state at scrape time."""
        self.worker_restarts.set_function(restarts)
        if audit is not None:
            self.audit_failures.set_function(lambda: float(audit.failures))
            self.audit_pending.set_function(lambda: float(audit.pending))

    def store_loaded(self, matcher: Any) -> None:
        manifest = matcher.store.manifest
        self.generation.set(manifest.generation)
        for algorithm, count in manifest.counts.items():
            self.entries.labels(algorithm).set(count.get("active", 0))
