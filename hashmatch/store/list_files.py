"""Importing a list file into a store, as the CLI (`list import`, `scan --list`) and the
service's admin endpoint do: read in parts (a 100M-entry list is never held whole), named
after the file and versioned by its sha256 unless told otherwise, with a summary of what
the parts held."""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from typing import Any, Iterable, Iterator

from hashmatch import lists
from hashmatch.store.store import Store


def import_list_file(store: Store, file: str, *, name: str | None = None, version: str | None = None,
                     pdq_mode: str | None = None, **read_options) -> tuple[Store, ImportSummary, str, str]:
    """Read a list file in parts (lists.read_list_parts: a 100M-entry list is never held
    whole) and import it: named after the file unless `name`, versioned by the first 12
    digits of its sha256 unless `version`. Returns (store, summary, name, version)."""
    digest = file_sha256(file)
    name = name or os.path.splitext(os.path.basename(file))[0]
    version = version or digest[:12]
    summary = ImportSummary()
    parts = summary.track(lists.read_list_parts(file, **read_options))
    return store.import_list(parts, name=name, version=version, pdq_mode=pdq_mode, source_sha256=digest), \
        summary, name, version


class ImportSummary:
    """What the parts of an imported list held, gathered as they stream past."""

    def __init__(self) -> None:
        self.entries = self.merged = 0
        self.per_algorithm: Counter[str] = Counter()
        self.rejected: list[Any] = []

    def track(self, parts: Iterable[Any]) -> Iterator[Any]:
        for part in parts:
            self.entries += len(part)
            self.merged += part.merged
            self.per_algorithm.update(part.counts())
            self.rejected += part.rejected
            yield part

    def __len__(self) -> int:
        return self.entries

    def counts(self) -> dict[str, int]:
        return dict(self.per_algorithm)


def file_sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
