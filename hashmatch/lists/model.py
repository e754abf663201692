"""The data a list read gives: ParsedList (columnar entries), ListEntry, Rejected and
Retracted, and the limits and column names every format shares."""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from .. import signals
from ..errors import ConfigurationError

#: Formats read_list() understands; detect_format() returns one of them.
FORMATS = ("text", "csv", "tsv", "jsonl", "tx-csv", "tat-json", "vpdq-txt")
#: Formats write_list() writes.
WRITE_FORMATS = ("text", "csv", "jsonl")

#: Longest line accepted, in bytes; a longer line is rejected without being read whole.
MAX_LINE_BYTES = 64 * 1024
#: Largest JSON document (tat-json) read, in bytes: the document is parsed whole.
MAX_DOCUMENT_BYTES = 1 << 30
#: Bytes read per chunk.
CHUNK_BYTES = 8 << 20
#: Entries per part of read_list_parts (a part of 2M entries holds ~0.6 GB of Python
#: strings; a 100M-entry list is read and imported in 50 of them).
PART_ENTRIES = 2_000_000
#: Rejected.text keeps at most this many characters of the offending line.
REJECT_TEXT_CHARS = 200
#: skip_invalid gives up after this many rejected entries (a wrong format or algorithm
#: would otherwise collect a rejection per line of a huge file).
MAX_REJECTED = 1_000_000
#: Bytes detect_format() looks at.
SNIFF_BYTES = 64 * 1024

#: Column (CSV/TSV header) or key (JSON) names of each field, case-insensitive, in
#: order of preference where a source has several.
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "hash": ("hash", "signal_str", "indicator", "hash_digest", "hash_value", "value"),
    "algorithm": ("algorithm", "signal_type", "hash_type", "type"),
    "category": ("category", "labels", "label", "ideology"),
    "entry_id": ("id", "entry_id", "hash_id"),
    "date": ("date", "date_added", "created", "created_at", "created_on"),
    "tags": ("tags",),
}
#: Header written by write_list(format="csv"); every name is one read_list() knows.
CSV_HEADER = ("algorithm", "hash", "category", "entry_id", "date_added", "tags")

_JSON_LIST_KEYS = ("results", "hashes", "data", "items", "entries", "hash_list", "hashlist")
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=")
_TAG_SPLIT = re.compile(r"[;,]")
_WS = re.compile(r"[ \t\n\r]*")
_ASCII_WS_CHARS = " \t\r\x0b\x0c"  # bytes.strip()'s whitespace, less the newline
_ASCII_WS = re.compile(f"[{_ASCII_WS_CHARS}]+")




class Rejected(NamedTuple):
    """One entry skip_invalid left out: its line, why, and (the start of) its text."""

    line: int
    reason: str
    text: str


class Retracted(NamedTuple):
    """An entry the source withdrew (TaT ``deleted``, tx NEGATIVE_CLASS): not imported;
    the store should remove it. `reason` is "deleted" or "negative_class"."""

    line: int
    algorithm: str
    hash: str
    entry_id: str | None
    reason: str


class ListEntry(NamedTuple):
    """One entry as a tuple, for convenience (ParsedList[i], iteration); the bulk data
    stays in ParsedList's columns."""

    algorithm: str
    hash: str
    category: str | None
    entry_id: str | None
    date: str | None
    tags: tuple[str, ...]
    line: int


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
        from .values import _digest_array  # values.py imports this module

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
        from .writer import write_list  # writer.py imports this module

        return write_list(path, format=format, **self.columns())


