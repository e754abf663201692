"""What every list format shares: the format names, the limits, the column and key names,
and the small row tuples a read gives besides its entries (ListEntry, Rejected, Retracted).
Imports nothing of hashmatch, so every module of the package may import it."""
from __future__ import annotations

import re
from typing import NamedTuple

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
