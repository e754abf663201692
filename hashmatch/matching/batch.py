"""Batched matching of precomputed hashes (Matcher.match_records_many, match_hashes_many,
`hashmatch lookup`, the service's batch lookup): the same answers as one match_record
per query, computed a batch at a time.

A batch of up to BATCH_QUERIES queries is parsed and checked query by query (a malformed
one yields its ConfigurationError in its place); every Hamming search of the batch goes
to the engine in one call per index layer, split over the threads (the kernels release
the GIL, so the threads search in parallel while Python waits once, not once per query);
the hits' metadata is read in one pass over the store; each query's result is then built
as the single-query path builds it (Matcher._result). Exact and video searches are cheap
or whole-video, and run per query. The next batch's kernel searches start before this
batch's results are built, so Python and the kernels overlap.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any, Iterable, Iterator, Mapping, Protocol, TypeVar

import numpy as np

from hashmatch import signals
from hashmatch.config import usable_cores
from hashmatch.errors import ConfigurationError
from hashmatch.matching.evidence import Hit, MatchResult, Search


class Matcher(Protocol):
    """What batching needs of matcher.Matcher (which calls in here with itself): its
    query parsing, searches, per-generation index layers and result building."""

    @property
    def store(self) -> Any: ...
    @property
    def thresholds(self) -> Mapping[str, int]: ...
    @property
    def search_radius(self) -> Mapping[str, int]: ...
    @property
    def _layers(self) -> Mapping[str, list[tuple[Any, Any, Any]]]: ...

    def _values_of(self, record: Mapping[str, Any], algorithms: Any) -> dict[str, dict[str, Any]]: ...
    def _searches(self, values: dict[str, dict[str, Any]]) -> tuple[list[Search], list[str]]: ...
    def _search(self, algorithm: str, code: str) -> list[Hit]: ...
    def _result(self, values: Any, searches: Any, hits: Any, gated: Any, entries: Any) -> MatchResult: ...

#: Queries per batch: large enough that a batch's per-call costs (the thread hand-off,
#: one SQL statement per 500 hits) are spread thin, small enough that a slow query
#: source (a pipe) is answered without a long wait.
BATCH_QUERIES = 256
#: Below this many rows an index is searched on the calling thread (an overlay's few
#: codes: a thread hand-off costs more than the search).
SPLIT_MIN_ROWS = 8192

Item = tuple[Mapping[str, Any], "Iterable[str] | None"]
T = TypeVar("T")


def match_batches(matcher: Matcher, batches: Iterable[list[Item]],
                  threads: int | None) -> Iterator[MatchResult | ConfigurationError]:
    """Every item's match_record answer (or its ConfigurationError), in input order. The
    next batch is searched while one's results are built; an empty batch means the source
    has nothing ready (a pipe between lines), and every pending result is yielded first."""
    threads = usable_cores() if threads is None else threads
    if threads < 1:
        raise ConfigurationError("threads must be at least 1")
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hashmatch-batch") as pool:
        pending: deque[_Batch] = deque()
        for chunk in batches:
            if chunk:
                pending.append(_Batch(matcher, chunk, pool, threads))
            while pending and (not chunk or len(pending) > 1):
                yield from pending.popleft().results()
        while pending:
            yield from pending.popleft().results()


def batches_of(items: Iterable[T], size: int = BATCH_QUERIES) -> Iterator[list[T]]:
    """The items in lists of `size` (the last one shorter)."""
    source = iter(items)
    while chunk := list(islice(source, size)):
        yield chunk


class _Batch:
    """One batch: its queries parsed and its Hamming searches started on the pool."""

    def __init__(self, matcher: Matcher, chunk: list[Item], pool: ThreadPoolExecutor, threads: int):
        self.matcher = matcher
        # Per query: (values, searches, gated), or the error that stopped it.
        self.queries: list[tuple[dict[str, dict[str, Any]], list[Search], list[str]] | ConfigurationError] = []
        # Per Hamming algorithm: which (query, search) each row of the batch's code array is.
        self.rows: dict[str, list[tuple[int, int]]] = {}
        codes: dict[str, list[bytes]] = {}
        for record, algorithms in chunk:
            try:
                values = matcher._values_of(record, algorithms)
            except ConfigurationError as exc:
                self.queries.append(exc)
                continue
            searches, gated = matcher._searches(values)
            for j, (algorithm, _, code) in enumerate(searches):
                if _batched(algorithm):
                    self.rows.setdefault(algorithm, []).append((len(self.queries), j))
                    codes.setdefault(algorithm, []).append(bytes.fromhex(code))
            self.queries.append((values, searches, gated))
        # Per Hamming algorithm and layer: futures of (lims, positions, distances) per slice.
        self.searching: dict[str, list[list[Future]]] = {}
        for algorithm, rows in codes.items():
            array = np.frombuffer(b"".join(rows), np.uint8).reshape(len(rows), -1)
            threshold = matcher.search_radius[algorithm]
            self.searching[algorithm] = [
                _start(pool, index, array, threshold, threads if len(index) >= SPLIT_MIN_ROWS else 1)
                for index, _, _ in matcher._layers[algorithm]]

    def results(self) -> Iterator[MatchResult | ConfigurationError]:
        matcher = self.matcher
        hits: dict[tuple[int, int], list[Hit]] = {}  # (query, search) -> its hits
        for algorithm, layer_futures in self.searching.items():
            rows = self.rows[algorithm]
            for row in rows:
                hits[row] = []
            for (_, ids, drop), futures in zip(matcher._layers[algorithm], layer_futures):
                row_base = 0
                for future in futures:
                    lims, positions, distances = future.result()
                    store_ids = ids[positions].tolist()
                    distances = distances.tolist()
                    bounds = lims.tolist()
                    for k in range(len(bounds) - 1):
                        row_hits = hits[rows[row_base + k]]
                        for h in range(bounds[k], bounds[k + 1]):
                            if store_ids[h] not in drop:  # a base row this generation hides
                                row_hits.append((store_ids[h], distances[h], None))
                    row_base += len(bounds) - 1
        per_query: list[list[list[Hit]] | None] = []
        wanted: set[int] = set()
        for i, query in enumerate(self.queries):
            if isinstance(query, ConfigurationError):
                per_query.append(None)
                continue
            _, searches, _ = query
            found = [hits[(i, j)] if (i, j) in hits else matcher._search(algorithm, code)
                     for j, (algorithm, _, code) in enumerate(searches)]
            per_query.append(found)
            wanted.update(hit[0] for search_hits in found for hit in search_hits)
        entries = matcher.store.matched_entries(wanted) if wanted else {}
        for query, query_hits in zip(self.queries, per_query):
            if isinstance(query, ConfigurationError) or query_hits is None:
                yield query  # type: ignore[misc]
                continue
            values, searches, gated = query
            yield matcher._result(values, searches, query_hits, gated, entries)


def _batched(algorithm: str) -> bool:
    """Whether the algorithm's searches go to the engine a batch at a time (Hamming types
    with fixed-length codes; exact lookups and whole-video matching run per query)."""
    signal = signals.get(algorithm)
    return not signal.exact and not signal.variable


def _start(pool: ThreadPoolExecutor, index: Any, codes: np.ndarray, radius: int, threads: int) -> list[Future]:
    """Search the codes on `threads` slices of rows, in order; the calling thread's share
    runs on the pool too, so the caller is free to build the previous batch's results."""
    if threads <= 1 or len(codes) < 2:
        done: Future = Future()
        done.set_result(index.range_search_flat(codes, radius))
        return [done]
    bounds = np.linspace(0, len(codes), min(threads, len(codes)) + 1).astype(int).tolist()
    return [pool.submit(index.range_search_flat, codes[a:b], radius) for a, b in zip(bounds, bounds[1:])]
