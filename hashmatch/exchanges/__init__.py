"""Fetching hash lists from where they live, incrementally: clearing houses' APIs and any
URL or file a partner publishes. A source (its type, URL, the list it feeds, options, the
path of its credentials file, and its checkpoint) is recorded in the store's manifest; a
fetch turns what changed since the checkpoint into batches of upserts and deletions,
each committed with the new checkpoint as one store generation.

    base.py         the ExchangeType interface (fetch from a checkpoint -> batches) and Batch
    credentials.py  reading a credentials file: 0600, owned by the user, never logged
    http.py         the HTTP client: timeouts, bounded retries with backoff, size caps, TLS on
    ncmec.py        NCMEC hash sharing: XML windows of records, UTC, checkpoint per exhausted window
    stopncii.py     StopNCII: JSON pages, Withdrawn/Deleted removed, the timestamp of a finished fetch
    tat.py          Tech Against Terrorism: token auth renewed once, ids as keys, page checkpoints
    threatexchange.py  Meta ThreatExchange: threat_updates of a privacy group, [since, now) windows
    url_file.py     the `url` and `file` types: a list file anywhere, diffed against what it brought
    fetcher.py      running fetches: one lock per source, batches into the store, audit, summary

Exchange types plug in like signal types: an installed package names an ExchangeType
under the ``hashmatch.exchanges`` entry point group.

May import: hashmatch.store, hashmatch.lists and the layers below.
"""
from __future__ import annotations

import logging
import threading

from hashmatch.errors import ConfigurationError
from hashmatch.exchanges.base import Batch, ExchangeType
from hashmatch.exchanges.ncmec import NcmecExchange
from hashmatch.exchanges.stopncii import StopNciiExchange
from hashmatch.exchanges.tat import TatExchange
from hashmatch.exchanges.threatexchange import ThreatExchange
from hashmatch.exchanges.url_file import FileExchange, UrlExchange

ENTRY_POINT_GROUP = "hashmatch.exchanges"
BUILTIN: tuple[ExchangeType, ...] = (NcmecExchange(), StopNciiExchange(), TatExchange(), ThreatExchange(),
                                      UrlExchange(), FileExchange())
_log = logging.getLogger("hashmatch.exchanges")
_lock = threading.Lock()
_registry: dict[str, ExchangeType] | None = None


def _load() -> dict[str, ExchangeType]:
    global _registry
    with _lock:
        if _registry is None:
            from importlib.metadata import entry_points

            found = {t.name: t for t in BUILTIN}
            for point in entry_points(group=ENTRY_POINT_GROUP):
                try:
                    loaded = point.load()
                    exchange = loaded() if isinstance(loaded, type) else loaded
                    if not isinstance(exchange, ExchangeType) or exchange.name in found:
                        raise TypeError(f"not a new ExchangeType: {loaded!r}")
                    found[exchange.name] = exchange
                except Exception as exc:  # noqa: BLE001 - a broken plug-in is logged and skipped
                    _log.error("exchange plug-in %s not loaded: %s", point.name, exc)
            _registry = found
        return _registry


def names() -> list[str]:
    return sorted(_load())


def get(name: str) -> ExchangeType:
    exchange = _load().get(name)
    if exchange is None:
        raise ConfigurationError(f"unknown exchange type {name!r}; known: {', '.join(names())}")
    return exchange


__all__ = ["BUILTIN", "Batch", "ENTRY_POINT_GROUP", "ExchangeType", "get", "names"]
