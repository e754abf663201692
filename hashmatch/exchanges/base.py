"""The interface every exchange type implements, python-threatexchange's model made
explicit: `fetch(source, checkpoint, context)` yields Batches, each the upserts (a
ParsedList whose entry ids are the source's own keys) and the deleted keys of one step,
with the checkpoint to resume from once that batch is committed. A type never touches the
store: the fetcher commits each batch and its checkpoint together."""
from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from hashmatch import signals

#: Records a type should gather into one batch at most (bounded memory; a generation each).
BATCH_RECORDS = 100_000


@dataclass
class Batch:
    upserts: Any  # a lists.ParsedList (entry ids = source keys), or None
    deleted: list[str] = field(default_factory=list)  # source keys the source removed
    checkpoint: Any = None  # JSON-able; where the next fetch resumes once this batch is committed
    skipped: Counter = field(default_factory=Counter)  # records not imported, by reason (e.g. "photodna")
    invalid: int = 0  # records that did not parse, on a page that did


@dataclass
class FetchContext:
    """What a fetch may use: the source's credentials (already checked), an HTTP client,
    the keys the list holds now (for sources that publish whole lists), and where to put
    downloads (a private folder in the store)."""

    credentials: str | None
    http: Callable[[], Any]
    current_keys: Callable[[], set[str]]
    spool: Any
    clock: Callable[[], float] = time.time  # seconds since the epoch, UTC (tests set it)


class ExchangeType:
    """One kind of source. Subclasses set `name`, and may set `default_url` and
    `default_category` (None: `--category` is required), and implement fetch()."""

    name: str = ""
    default_url: str | None = None
    default_category: str | None = None
    url_required: bool = False

    def fetch(self, source: dict[str, Any], checkpoint: Any, context: FetchContext) -> Iterator[Batch]:
        raise NotImplementedError

    def describe(self, source: dict[str, Any]) -> str:
        return source.get("url") or self.default_url or ""


_HEX = re.compile(r"^[0-9a-fA-F]+$")


class Records:
    """Upserts of a batch gathered record by record, keyed by the source's key: a later
    record of a key replaces an earlier one (and a deletion both), so a batch holds each
    key once. `rows` -> a ParsedList whose entry ids are the keys."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.upserts: dict[str, list[tuple[str, str, str | None, str | None, tuple[str, ...]]]] = {}
        self.deleted: dict[str, None] = {}
        self.invalid = 0
        self.skipped: Counter = Counter()

    def __len__(self) -> int:
        return len(self.upserts) + len(self.deleted)

    def upsert(self, key: str, hashes: list[tuple[str, Any]], *, category: str | None, date: str | None = None,
               tags: tuple[str, ...] = ()) -> None:
        """Record `key` with its (algorithm, hex) hashes; a hash that is not valid hex of its
        type's length counts as invalid; a record left with none is not listed."""
        rows = []
        for algorithm, value in hashes:
            signal = signals.find(algorithm)
            if signal is None:
                self.skipped[f"{algorithm}_not_installed"] += 1
                continue
            if signal.variable or not isinstance(value, str) or len(value) != signal.hex_length \
                    or not _HEX.match(value):
                self.invalid += 1
                continue
            rows.append((signal.name, value.lower(), category, date, tags))
        self.deleted.pop(key, None)
        if rows:
            self.upserts[key] = rows
        else:
            self.upserts.pop(key, None)

    def delete(self, key: str) -> None:
        self.upserts.pop(key, None)
        self.deleted[key] = None

    def batch(self, checkpoint: Any) -> Batch:
        from hashmatch.lists import ParsedList

        rows = [(key, *row) for key, found in self.upserts.items() for row in found]
        upserts = None
        if rows:
            upserts = ParsedList(format="exchange", path="", algorithms=[r[1] for r in rows],
                                 hashes=[r[2] for r in rows], categories=[r[3] for r in rows],
                                 entry_ids=[r[0] for r in rows], dates=[r[4] for r in rows],
                                 tags=[r[5] for r in rows], lines=np.arange(1, len(rows) + 1, dtype=np.int64))
        done = Batch(upserts, list(self.deleted), checkpoint, skipped=self.skipped, invalid=self.invalid)
        self._reset()  # ready for the next batch
        return done


def json_page(body: bytes, items: str, where: str, *, required: bool = True) -> tuple[dict[str, Any], list[Any]]:
    """A JSON page and its records (the list under `items`); a FetchError naming `where`
    when the page does not parse (the fetch stops there, and the next one retries it)."""
    import json

    from hashmatch.exchanges.http import FetchError

    try:
        page = json.loads(body)
    except ValueError:
        page = None
    if not isinstance(page, dict) or (required and items not in page) or not isinstance(page.get(items) or [], list):
        raise FetchError(f"{where} sent a malformed page")
    return page, page.get(items) or []


def typed_key(records: Records, kind: Any, value: str, algorithms: dict[str, str]) -> tuple[str, str] | None:
    """(algorithm, key) of a record whose source names its hash type `kind`, the key being
    `kind:value`; None, counted as skipped under `kind`, for a type hashmatch does not keep."""
    kind = str(kind)
    algorithm = algorithms.get(kind)
    if algorithm is None:
        records.skipped[kind] += 1
        return None
    return algorithm, f"{kind}:{value.lower()}"
