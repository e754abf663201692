"""The data a list read gives: ParsedList, its entries in columns (the shared limits and
row tuples are in schema.py)."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from hashmatch import signals
from hashmatch.errors import ConfigurationError
from hashmatch.lists.schema import ListEntry, Rejected, Retracted
from hashmatch.lists.values import _digest_array
from hashmatch.lists.writer import write_list


@dataclass
class ParsedList:
    """A parsed list, columnar: entry i is (algorithms[i], hashes[i], categories[i],
    entry_ids[i], dates[i], tags[i], lines[i]). Entries keep their file order.
    A hash may occur in several entries (lines that differ in some metadata); lines
    repeating an earlier line exactly are counted in `merged` (see the module docs).

    `algorithms` and `categories` hold shared (interned) string objects, so millions of
    entries cost one pointer each there; `lines` is an int64 numpy array.
    """

    format: str
    path: str
    algorithms: list[str]
    hashes: list[str]  # lowercase hex, signals.get(algorithm).hex_length digits
    categories: list[str | None]
    entry_ids: list[str | None]
    dates: list[str | None]  # ISO 8601 date or datetime, as the source wrote it
    tags: list[tuple[str, ...]]
    lines: np.ndarray  # int64, 1-based source line of each entry
    rejected: list[Rejected] = field(default_factory=list)
    retracted: list[Retracted] = field(default_factory=list)
    #: Lines merged into an earlier entry instead of becoming one: a line identical to
    #: an earlier line (same algorithm, hash, category, entry id, date and tags), or,
    #: in tx-csv, another collab's row for a signal already listed (its tags joined).
    merged: int = 0

    @classmethod
    def from_hashes(cls, algorithm: str, hashes: Sequence[str], *, category: str | None = None) -> "ParsedList":
        """A list built in memory from hex hashes of one algorithm (already normalised:
        lowercase, the algorithm's length), e.g. for Store.import_list in code or benchmarks."""
        n = len(hashes)
        name = signals.get(algorithm).name
        return cls(format="memory", path="", algorithms=[name] * n, hashes=list(hashes), categories=[category] * n,
                   entry_ids=[None] * n, dates=[None] * n, tags=[()] * n, lines=np.arange(1, n + 1, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.hashes)

    def __getitem__(self, i: int) -> ListEntry:
        return ListEntry(self.algorithms[i], self.hashes[i], self.categories[i], self.entry_ids[i],
                         self.dates[i], self.tags[i], int(self.lines[i]))

    def __iter__(self) -> Iterator[ListEntry]:
        for values in zip(self.algorithms, self.hashes, self.categories, self.entry_ids, self.dates,
                          self.tags, self.lines.tolist()):
            yield ListEntry(*values)

    def counts(self) -> dict[str, int]:
        """Entries per algorithm."""
        return dict(Counter(self.algorithms))

    def digests(self, algorithm: str) -> tuple[np.ndarray, np.ndarray]:
        """(indices, digests) of the entries of one algorithm: int64 entry indices and a
        (n, code bytes) uint8 array of their hashes, for Hamming search or storage."""
        signal = signals.find(algorithm)
        if signal is None:
            raise ConfigurationError(f"unknown algorithm {algorithm!r}")
        idx = np.flatnonzero(np.fromiter((a == signal.name for a in self.algorithms), bool, len(self)))
        return idx, _digest_array(self.hashes, idx, signal.code_bytes)

    def columns(self) -> dict[str, Any]:
        """The columns write_list() takes, as keyword arguments."""
        return {"algorithms": self.algorithms, "hashes": self.hashes, "categories": self.categories,
                "entry_ids": self.entry_ids, "dates": self.dates, "tags": self.tags}

    def write(self, path: str | os.PathLike, format: str = "csv") -> int:
        """Export with write_list(); returns the number of entries written."""
        return write_list(path, format=format, **self.columns())


