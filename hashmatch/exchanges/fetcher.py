"""Recording sources in the store and fetching them.

A fetch of one source holds that source's lock (STORE/.exchange-NAME.lock): a second fetch
of it at the same time fails at once with a clear message, so two fetchers never race on
one checkpoint. Each Batch the source's type yields is committed as one store generation
together with the new checkpoint (Store.apply_source_batch): a kill at any point resumes
from the last committed checkpoint with nothing lost and nothing doubled. Each commit
appends an `exchange_fetch` line to the store's audit log (source, list, counts,
checkpoint, generation; never a hash value or a secret). Sources are independent: one
failing never stops the others.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from hashmatch import exchanges
from hashmatch.base.files import append_jsonl, who
from hashmatch.errors import ConfigurationError, HashmatchError
from hashmatch.exchanges.base import FetchContext
from hashmatch.exchanges.credentials import read_credentials
from hashmatch.exchanges.http import FetchError, HttpClient
from hashmatch.store.files import AUDIT_LOG, SPOOL
from hashmatch.store.manifest import now
from hashmatch.store.store import Store

SOURCE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def add_source(store: Store, name: str, *, type: str, list_name: str, url: str | None = None,
               credentials: str | None = None, category: str | None = None, format: str | None = None,
               options: dict[str, str] | None = None, ca_bundle: str | None = None) -> Store:
    """Record source `name` (its settings, no secret: a credentials file by its path) in the store."""
    kind = exchanges.get(type)
    if not name or len(name) > 64 or not set(name) <= SOURCE_NAME_CHARS:
        raise ConfigurationError("a source name is 1 to 64 of A-Z a-z 0-9 . _ -")
    if name in store.sources:
        raise ConfigurationError(f"a source named {name!r} exists; remove it first")
    url = url or kind.default_url
    if kind.url_required and not url:
        raise ConfigurationError(f"a {type} source needs --url (for `file`, the file's path)")
    if type == "file" and url:
        url = os.path.abspath(url)
    category = category or kind.default_category
    if category is None:
        raise ConfigurationError(f"a {type} source needs --category")
    if credentials is not None:
        credentials = os.path.abspath(credentials)
        read_credentials(credentials)  # refused now, not at the first fetch
    spec = {"type": type, "list": list_name, "url": url, "category": category, "format": format,
            "options": dict(options or {}), "credentials": credentials, "ca_bundle": ca_bundle,
            "added": now(), "checkpoint": None}
    return store.set_sources(lambda old: {**old, name: spec}, f"add exchange source {name}")


def remove_source(store: Store, name: str, *, drop_list: bool) -> Store:
    spec = _spec(store, name)
    store = store.set_sources(lambda old: {k: v for k, v in old.items() if k != name}, f"remove exchange source {name}")
    if drop_list and any(info.name == spec["list"] for info in store.lists()):
        store = store.remove_list(spec["list"], f"its exchange source {name} was removed")
    return store


def _spec(store: Store, name: str) -> dict[str, Any]:
    spec = store.sources.get(name)
    if spec is None:
        raise ConfigurationError(f"no exchange source named {name!r} in this store")
    return spec


@dataclass
class Summary:
    """What one source's fetch did."""

    source: str
    list: str = ""
    added: int = 0  # source records (keys) new to the list
    updated: int = 0  # records that replaced what the list held for their key
    deleted: int = 0  # records removed from the list
    skipped: Counter = field(default_factory=Counter)
    invalid: int = 0
    checkpoint: Any = None
    generation: int | None = None
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "list": self.list, "added": self.added, "updated": self.updated,
                "deleted": self.deleted,
                "skipped": dict(self.skipped), "invalid": self.invalid, "checkpoint": self.checkpoint,
                "generation": self.generation, "seconds": round(self.seconds, 3), "error": self.error}


def fetch(store_path: str | os.PathLike, names: list[str] | None = None, *, full: bool = False,
          http: Any = None, clock: Any = None) -> list[Summary]:
    """Fetch the named sources (default: all) into the store, each from its checkpoint
    (`full`: from the start). `http`: an HttpClient to use, `clock`: the time (tests)."""
    root = Path(store_path)
    wanted = names or sorted(Store.open(root).sources)
    return [_fetch_one(root, name, full, http, clock or time.time) for name in wanted]


def _fetch_one(root: Path, name: str, full: bool, http: Any, clock: Any) -> Summary:
    summary = Summary(name)
    started = time.monotonic()
    client: HttpClient | None = None
    try:
        with _source_lock(root, name):
            store = Store.open(root)
            spec = _spec(store, name)
            summary.list = spec["list"]
            kind = exchanges.get(spec["type"])
            secret = read_credentials(spec["credentials"]) if spec.get("credentials") else None

            def http_client() -> Any:
                nonlocal client
                if http is not None:
                    return http
                if client is None:
                    client = HttpClient(ca_bundle=spec.get("ca_bundle"))
                return client

            spool = root / SPOOL / f"exchange-{name}"  # this source's downloads; a killed fetch's are swept here
            spool.mkdir(mode=0o700, parents=True, exist_ok=True)
            for stale in spool.iterdir():
                with contextlib.suppress(OSError):
                    stale.unlink()
            context = FetchContext(credentials=secret, http=http_client, spool=spool, clock=clock,
                                   current_keys=lambda: _current_keys(Store.open(root), spec["list"]))
            for batch in kind.fetch(spec, None if full else spec.get("checkpoint"), context):
                store = _commit(root, store, name, spec, batch, summary)
    except (HashmatchError, OSError) as exc:
        summary.error = str(exc) if isinstance(exc, HashmatchError) else f"{type(exc).__name__}: {exc.strerror}"
    finally:
        if client is not None:
            client.close()
        summary.seconds = time.monotonic() - started
    return summary


def _commit(root: Path, store: Store, name: str, spec: dict[str, Any], batch: Any, summary: Summary) -> Store:
    checkpoint = batch.checkpoint if batch.checkpoint is not None else spec.get("checkpoint")
    summary.skipped.update(batch.skipped)
    summary.invalid += batch.invalid
    upserted = len(batch.upserts) if batch.upserts is not None else 0
    if not upserted and not batch.deleted and checkpoint == spec.get("checkpoint"):
        return store  # nothing new: no generation
    fetched_at = now()

    def sources(old: dict[str, Any]) -> dict[str, Any]:
        if name not in old:
            raise ConfigurationError(f"the exchange source {name!r} was removed during its fetch")
        return {**old, name: {**old[name], "checkpoint": checkpoint, "last_fetch": fetched_at}}

    stats = {"added": 0, "updated": 0, "deleted": 0}
    if upserted or batch.deleted:
        store = store.apply_source_batch(spec["list"], batch.upserts, batch.deleted, version=fetched_at,
                                         sources=sources, stats=stats)
    else:
        store = store.set_sources(sources, f"exchange source {name}: checkpoint")
    spec["checkpoint"] = checkpoint
    summary.added += stats["added"]
    summary.updated += stats["updated"]
    summary.deleted += stats["deleted"]
    summary.checkpoint, summary.generation = checkpoint, store.generation
    append_jsonl(root / AUDIT_LOG, {
        "event": "exchange_fetch", "at": fetched_at, "source": name, "list": spec["list"], **stats,
        "skipped": dict(batch.skipped), "invalid": batch.invalid,
        "checkpoint": checkpoint, "generation": store.generation, **who()})
    return store


def _current_keys(store: Store, list_name: str) -> set[str]:
    if not any(info.name == list_name for info in store.lists()):
        return set()
    return {entry.entry_id for entry in store.iter_entries(list_name) if entry.entry_id is not None}


@contextlib.contextmanager
def _source_lock(root: Path, name: str) -> Iterator[None]:
    fd = os.open(root / f".exchange-{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FetchError(f"another fetch of source {name} is running; try again when it ends") from None
        yield
    finally:
        os.close(fd)


__all__ = ["Summary", "add_source", "fetch", "remove_source"]
