"""The `url` and `file` exchange types: a list in any format `hashmatch list import` reads,
published at an HTTP(S) URL or kept in a local file. Each fetch compares the list with
what the source brought last time (the list's entries in the store, keyed by line
identity: ALGORITHM:HASH): new lines are additions, removed lines deletions (the local
file exchange of python-threatexchange never deleted). A URL is fetched with
If-None-Match / If-Modified-Since, and a 304, like an unchanged file, is no change."""
from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any, Iterator

import numpy as np

from hashmatch.exchanges.base import BATCH_RECORDS, Batch, ExchangeType, FetchContext
from hashmatch.exchanges.http import FetchError
from hashmatch.lists import ParsedList, read_list


class FileExchange(ExchangeType):
    name = "file"
    url_required = True  # the file's path

    def fetch(self, source: dict[str, Any], checkpoint: Any, context: FetchContext) -> Iterator[Batch]:
        path = source["url"]
        try:
            with open(path, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as exc:
            raise FetchError(f"list file {path}: {exc.strerror}") from None
        if isinstance(checkpoint, dict) and checkpoint.get("sha256") == digest:
            return
        yield from _changes(_read(path, source), source, context, {"sha256": digest})


class UrlExchange(ExchangeType):
    name = "url"
    url_required = True  # the list's URL

    def fetch(self, source: dict[str, Any], checkpoint: Any, context: FetchContext) -> Iterator[Batch]:
        previous = checkpoint if isinstance(checkpoint, dict) else {}
        headers = {}
        if previous.get("etag"):
            headers["If-None-Match"] = previous["etag"]
        if previous.get("last_modified"):
            headers["If-Modified-Since"] = previous["last_modified"]
        if context.credentials:
            headers["Authorization"] = f"Bearer {context.credentials}"
        fd, download = tempfile.mkstemp(prefix=".hashmatch-fetch-", suffix=".tmp", dir=context.spool)
        try:
            with os.fdopen(fd, "wb") as handle:
                answer = context.http().request("GET", source["url"], headers=headers, into=handle)
            if answer.status == 304:
                return
            if answer.status != 200:
                raise FetchError(f"the list URL answered HTTP {answer.status}")
            with open(download, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            if previous.get("sha256") == digest:
                return
            parsed = _read(download, source)
        finally:
            os.unlink(download)
        new = {"sha256": digest, "etag": answer.headers.get("etag"),
               "last_modified": answer.headers.get("last-modified")}
        yield from _changes(parsed, source, context, new)


def _read(path: str, source: dict[str, Any]) -> ParsedList:
    from hashmatch.errors import ListFormatError

    try:
        return read_list(path, format=source.get("format"), category=source.get("category"), skip_invalid=True)
    except ListFormatError as exc:
        raise FetchError(f"the list does not parse: {exc}") from None


def _changes(parsed: ParsedList, source: dict[str, Any], context: FetchContext, checkpoint: Any) -> Iterator[Batch]:
    """The list against what the store holds for it: additions in batches of at most
    BATCH_RECORDS, then the deletions with the new checkpoint (a fetch killed between
    batches re-compares next time and finishes the rest)."""
    current = context.current_keys()
    seen: set[str] = set()
    fresh: list[int] = []
    for i, (algorithm, value) in enumerate(zip(parsed.algorithms, parsed.hashes)):
        key = f"{algorithm}:{value}"
        if key in seen:
            continue
        seen.add(key)
        if key not in current:
            fresh.append(i)
    deleted = sorted(current - seen)
    invalid = len(parsed.rejected)
    if not fresh and not deleted:
        yield Batch(None, [], checkpoint, invalid=invalid)
        return
    for start in range(0, max(len(fresh), 1), BATCH_RECORDS):
        chunk = fresh[start:start + BATCH_RECORDS]
        last = start + BATCH_RECORDS >= len(fresh)
        yield Batch(_subset(parsed, chunk, source) if chunk else None, deleted if last else [],
                    checkpoint if last else None, invalid=invalid if last else 0)


def _subset(parsed: ParsedList, rows: list[int], source: dict[str, Any]) -> ParsedList:
    pick = parsed.algorithms.__getitem__
    hashes = [parsed.hashes[i] for i in rows]
    algorithms = [pick(i) for i in rows]
    return ParsedList(format=parsed.format, path="", algorithms=algorithms, hashes=hashes,
                      categories=[parsed.categories[i] or source.get("category") for i in rows],
                      entry_ids=[f"{a}:{h}" for a, h in zip(algorithms, hashes)],
                      dates=[parsed.dates[i] for i in rows], tags=[parsed.tags[i] for i in rows],
                      lines=np.asarray([int(parsed.lines[i]) for i in rows], dtype=np.int64))
