"""The interface every exchange type implements, python-threatexchange's model made
explicit: `fetch(source, checkpoint, context)` yields Batches, each the upserts (a
ParsedList whose entry ids are the source's own keys) and the deleted keys of one step,
with the checkpoint to resume from once that batch is committed. A type never touches the
store: the fetcher commits each batch and its checkpoint together."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

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
