"""Reading and writing hash lists: the files clearing houses share (NCMEC, GIFCT,
StopNCII, Tech Against Terrorism, python-threatexchange exports) and the lists
hashmatch exports itself.

Formats (detect_format() reads the first bytes of the content; `format=` forces one):

``text``
    One hash per line, optionally after its algorithm name and whitespace
    (``pdq 0a1b...``), as python-threatexchange's file exchange writes it. Blank lines
    and lines starting with ``#`` are skipped. Lines without a prefix take `algorithm=`.
``csv`` / ``tsv``
    A header row, then one entry per row (RFC 4180 quoting). Columns are found by
    name, case-insensitively (COLUMN_NAMES). Blank and ``#`` lines are skipped. A
    tags field holds tags separated by ``;`` or ``,``.
``jsonl``
    One JSON object per line with the same key names; ``tags`` a list of strings or
    a separated string; ``"deleted": true`` retracts the entry (see below).
``tx-csv``
    python-threatexchange ``threatexchange dataset -P --csv``: columns collab,
    signal_type, signal_str, category, tags in any order (tags separated by spaces).
    signal_type ``pdq`` -> pdq, ``photo_md5``/``md5`` -> md5, ``video_md5`` -> md5
    and ``video_sha256`` -> sha256 (digests of the file's bytes, which is what md5
    and sha256 are here) with a tag ``signal_type:video_md5`` (``video_sha256``)
    keeping where they came from; anything else (``url``, ``raw_text``, ...) is an
    error naming the type. `category` there is tx's aggregate opinion
    (AggregateSignalOpinionCategory): POSITIVE_CLASS imports; INVESTIGATION_SEED
    imports with tag ``investigation_seed``; DISPUTED (some opinions positive, some
    negative: someone reported it as a false positive) imports with tag
    ``disputed``, so it still matches and the reviewer sees the disagreement;
    NEGATIVE_CLASS is not imported but listed in `retracted`, unless another row
    lists the same signal (then that row's opinion wins). The collab becomes a tag
    ``collab:<name>``; a signal listed by several collabs is one entry with all
    their tags, as python-threatexchange models it (the rows merged into it are
    counted in `merged`).
``tat-json``
    Tech Against Terrorism hash list v2: a JSON document, a list of objects or an
    object holding one (``results``, ``hashes``, ``data``, ...), each with
    ``hash_digest``, ``algorithm`` ("PDQ", "MD5", "SHA256", ...), ``ideology``
    (-> category), ``file_type`` (-> tag ``file_type:<x>``), ``id``, ``created_on``
    (-> date) and ``deleted``. Deleted entries are not imported: they are listed in
    `retracted` so the store can remove them.

Every hash is normalised to lowercase hex of its algorithm's length (HEX_LENGTH);
PDQ is also accepted as 256-bit base64 (44 characters padded or 43 unpadded).

Repeated hashes are data, not errors (two sources list the same picture; one picture
at two sizes has one PDQ): every line is its own entry with its own id, category,
date, tags and line, so lines with the same (algorithm, hash) and any different
metadata are all kept, in file order. Only a line identical to an earlier one of the
same list (same algorithm, hash, category, entry id, date and tags) is merged into
that earlier entry; ParsedList.merged counts those lines. (tx-csv: see above.) A
repeat never rejects a line nor fails a read.

Errors: each bad entry is a ListFormatError naming the file, the line and the reason
(wrong length, non-hex character, unknown algorithm, malformed CSV/JSON, line longer
than the cap, bad date, a hash both listed and retracted). By default the first one
raises and nothing is returned; with ``skip_invalid=True`` every bad entry is
collected in `rejected` (see write_rejects) and the rest returned. Whole-file problems
(binary or non-UTF-8 content, an empty list, no hash column, no algorithm, JSON that
cannot be resynchronised) always raise. Nothing is dropped silently: a line is an
entry, a rejection, a retraction or counted in `merged`.

Unterminated quotes (csv, tsv, tx-csv): RFC 4180 lets a quoted field hold newlines, so
one stray ``"`` would otherwise swallow every line up to the next quote character.
A quoted field may span lines only if it closes within `max_line_bytes`, before the
end of the file, without a CSV error after it, and none of the lines it continues
over reads as a row of its own (the header's number of fields with a hash in the
hash column: no field hashmatch reads holds such a line). Otherwise its quote is
taken as unterminated: the line that opened it is the bad entry, its reason naming the
lines the field ran over ("a quoted field opened at line 2 runs over 65536 bytes, to
line 925 (unterminated quote?)"), and reading resumes at the next line, so every
line after it is read as written, each an entry or a rejection of its own. Without
``skip_invalid`` that reason is the error. A quote left open in the header is an
error in both modes.

Hostile content (JSON nested deeper than the parser's recursion limit, integers
longer than Python's int digit limit, lone UTF-16 surrogate or NUL escapes such as
``"\\udcff"`` in a string the entry keeps, values of the wrong JSON type) is a bad
entry like any other (a rejection with skip_invalid); in a tat-json document that
JSON cannot parse at all (too deep), the ListFormatError names the entry and its
line. read_list raises nothing but ListFormatError and ConfigurationError for what a
file holds.

Performance: the file is read in bounded chunks (CHUNK_BYTES; a line longer than
MAX_LINE_BYTES is rejected without ever being held whole), and each chunk is parsed
in bulk: numpy finds the line structure, one str.split cuts the fields, one
bytes.fromhex validates a whole column. The result is columnar (ParsedList).
"""
from __future__ import annotations

import base64
import binascii
import codecs
import csv
import io
import json
import math
import os
import re
import stat
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from .errors import ConfigurationError, ListFormatError
from .files import atomic_write
from .hashing import ALGORITHMS, HEX_LENGTH

#: Formats read_list() understands; detect_format() returns one of them.
FORMATS = ("text", "csv", "tsv", "jsonl", "tx-csv", "tat-json")
#: Formats write_list() writes.
WRITE_FORMATS = ("text", "csv", "jsonl")

#: Longest line accepted, in bytes; a longer line is rejected without being read whole.
MAX_LINE_BYTES = 64 * 1024
#: Largest JSON document (tat-json) read, in bytes: the document is parsed whole.
MAX_DOCUMENT_BYTES = 1 << 30
#: Bytes read per chunk.
CHUNK_BYTES = 8 << 20
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

#: Algorithm names as sources spell them (lower-cased) -> hashmatch's names.
ALGORITHM_ALIASES: dict[str, str] = {
    **{name: name for name in ALGORITHMS},
    "sha-1": "sha1", "sha_1": "sha1", "sha-256": "sha256", "sha_256": "sha256",
    "photo_md5": "md5", "photomd5": "md5", "photo_pdq": "pdq",
    # python-threatexchange's file digests: MD5 / SHA-256 of the file's bytes, as hashmatch's.
    "video_md5": "md5", "video_sha256": "sha256",
}
#: tx-csv signal types kept as a tag ``signal_type:<name>`` on the entry (provenance).
_TX_TAGGED_SIGNAL_TYPES = frozenset({"video_md5", "video_sha256"})

#: python-threatexchange AggregateSignalOpinionCategory names (lower-cased) ->
#: (retraction reason or None to import, tag added to the entry or None).
_TX_OPINIONS: dict[str, tuple[str | None, str | None]] = {
    "positive_class": (None, None),
    "investigation_seed": (None, "investigation_seed"),
    "disputed": (None, "disputed"),  # some opinions positive, some negative: still matches, flagged
    "negative_class": ("negative_class", None),
    # The names of python-threatexchange before 1.0 (SignalOpinionCategory), in older exports.
    "true_positive": (None, None),
    "worth_investigating": (None, "investigation_seed"),
    "false_positive": ("false_positive", None),
}
_JSON_LIST_KEYS = ("results", "hashes", "data", "items", "entries", "hash_list", "hashlist")
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=")
_TAG_SPLIT = re.compile(r"[;,]")
_HASH_LIKE = re.compile("|".join(f"[0-9a-fA-F]{{{n}}}" for n in sorted(set(HEX_LENGTH.values())))
                        + r"|[A-Za-z0-9+/_-]{43}=?")
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
    hashes: list[str]  # lowercase hex, HEX_LENGTH[algorithm] digits
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
        name = canonical_algorithm(algorithm)
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
        (n, HEX_LENGTH // 2) uint8 array of their hashes, for Hamming search or storage."""
        if algorithm not in HEX_LENGTH:
            raise ConfigurationError(f"unknown algorithm {algorithm!r}")
        idx = np.flatnonzero(np.fromiter((a == algorithm for a in self.algorithms), bool, len(self)))
        return idx, _digest_array(self.hashes, idx, HEX_LENGTH[algorithm] // 2)

    def columns(self) -> dict[str, Any]:
        """The columns write_list() takes, as keyword arguments."""
        return {"algorithms": self.algorithms, "hashes": self.hashes, "categories": self.categories,
                "entry_ids": self.entry_ids, "dates": self.dates, "tags": self.tags}

    def write(self, path: str | os.PathLike, format: str = "csv") -> int:
        """Export with write_list(); returns the number of entries written."""
        return write_list(path, format=format, **self.columns())


# --------------------------------------------------------------------------------------
# Values


class _Bad(Exception):
    """A per-entry problem; becomes a Rejected or a ListFormatError."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def canonical_algorithm(name: str) -> str:
    """A source's algorithm name ("PDQ", "SHA-256", "photo_md5") -> hashmatch's name;
    ConfigurationError for anything else."""
    try:
        return _canonical_algorithm(name)
    except _Bad as exc:
        raise ConfigurationError(exc.reason) from None


def _canonical_algorithm(raw: str) -> str:
    found = ALGORITHM_ALIASES.get(raw.strip().lower())
    if found is None:
        shown = raw.strip()[:40]
        raise _Bad(f"unknown algorithm {shown!r} (supported: {', '.join(ALGORITHMS)})")
    return found


def normalise_hash(algorithm: str, value: str) -> str:
    """One hash -> lowercase hex of the right length (PDQ also from base64);
    ConfigurationError with the reason otherwise."""
    if algorithm not in HEX_LENGTH:
        raise ConfigurationError(f"unknown algorithm {algorithm!r}")
    try:
        return _normalise_one(algorithm, value)
    except _Bad as exc:
        raise ConfigurationError(exc.reason) from None


def _normalise_one(algorithm: str, value: str) -> str:
    text = value.strip()
    want = HEX_LENGTH[algorithm]
    if len(text) == want:  # the common case, quickly
        try:
            if 2 * len(bytes.fromhex(text)) == want:
                return text.lower()
        except ValueError:
            pass
    if not text:
        raise _Bad(f"empty {algorithm} hash")
    bad = next((i for i, c in enumerate(text) if c not in _HEXDIGITS), None)
    if bad is None:
        if len(text) == want:
            return text.lower()
        raise _Bad(f"wrong length: {algorithm} hashes have {want} hex digits, this one has {len(text)}")
    if algorithm == "pdq" and len(text) in (43, 44) and all(c in _B64_CHARS for c in text):
        padded = text + "=" * (-len(text) % 4)
        altchars = b"-_" if ("-" in text or "_" in text) else b"+/"
        try:
            raw = base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 32:
            return raw.hex()
        raise _Bad("not a PDQ hash: neither 64 hex digits nor 256-bit base64")
    if len(text) != want and not (algorithm == "pdq" and len(text) in (43, 44)):
        raise _Bad(f"wrong length: {algorithm} hashes have {want} hex digits, this one has "
                   f"{len(text)} characters (non-hex character {text[bad]!r} at position {bad + 1})")
    raise _Bad(f"non-hex character {text[bad]!r} at position {bad + 1} of the {algorithm} hash")


def _normalise_bulk(algorithm: str, values: list[str]) -> tuple[list[str], bytes] | None:
    """The whole column at once: (lowercase values, their bytes), or None when some
    value needs the per-entry path (an error to locate, whitespace, base64)."""
    want = HEX_LENGTH[algorithm]
    if not values or set(map(len, values)) != {want}:
        return None
    joined = "".join(values)
    try:
        raw = bytes.fromhex(joined)
    except ValueError:
        return None
    if 2 * len(raw) != len(joined):  # fromhex skips whitespace between bytes
        return None
    if any(c in joined for c in "ABCDEF"):
        return list(map(str.lower, values)), raw
    return values, raw


def _prefix_keys(hashes: Sequence[str], raw: bytes | None = None) -> np.ndarray:
    """uint64 of each hash's first 8 bytes (every algorithm has at least 8): equal
    hashes have equal keys, so only equal keys need comparing for duplicates."""
    if raw is None:
        raw = bytes.fromhex("".join([h[:16] if h else "0" * 16 for h in hashes]))
        return np.frombuffer(raw, np.uint64).copy()
    rows = np.frombuffer(raw, np.uint8).reshape(len(hashes), -1)
    return np.ascontiguousarray(rows[:, :8]).view(np.uint64).ravel()


def _strip_ids(ids: list[str | None]) -> list[str | None]:
    """Entry ids stripped, blank ones None; C-level map when the column holds only strings."""
    if None in ids:
        return [(s.strip() or None) if s else None for s in ids]
    out: list[str | None] = list(map(str.strip, ids))
    if "" in out:
        out = [s or None for s in out]
    return out


class _HugeNumber:
    """A JSON integer longer than Python's int digit limit (sys.get_int_max_str_digits):
    kept as a marker so that only an entry that uses it is rejected."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))


def _parse_int(text: str) -> Any:
    limit = sys.get_int_max_str_digits()
    if limit and len(text) > limit and len(text.lstrip("-")) > limit:
        return _HugeNumber(text)
    return int(text)


#: json's decoder, and one that turns over-long integers into _HugeNumber instead of
#: failing the whole document (used once the first one has raised on such a number).
_DECODER = json.JSONDecoder()
_BOUNDED_DECODER = json.JSONDecoder(parse_int=_parse_int)
#: A JSON escape that decodes to a lone UTF-16 surrogate (unencodable: breaks SQLite and
#: every UTF-8 writer) or to NUL: strings holding them are checked (_checked_text).
_SUSPECT_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null", _HugeNumber: "a number"}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _json_error(exc: BaseException) -> str:
    """The reason for a JSON text json cannot decode."""
    if isinstance(exc, RecursionError):
        return "malformed JSON: nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON: {exc.msg}"
    if "integer string conversion" in str(exc):
        return f"malformed JSON: a number with more than {sys.get_int_max_str_digits()} digits"
    return f"malformed JSON: {str(exc)[:200]}"


def _checked_text(value: str, key: str) -> str:
    """`value` if it is text hashmatch can store (no lone surrogate, no NUL)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Bad(f"{key!r} holds a lone surrogate (\\u{ord(value[exc.start]):04x}): not valid Unicode "
                   "text") from None
    if "\0" in value:
        raise _Bad(f"{key!r} holds a NUL character (\\u0000)")
    return value


def _printable(text: str) -> str:
    """`text` with anything UTF-8 cannot encode (lone surrogates) escaped, for messages."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _looks_like_hash(value: str) -> bool:
    """Hex of some algorithm's length, or a PDQ in base64 (shape only)."""
    return _HASH_LIKE.fullmatch(value.strip().strip('"')) is not None


def _check_date(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    probe = text[:-1] + "+00:00" if text[-1:] in "zZ" else text
    try:
        datetime.fromisoformat(probe.replace(",", "."))
    except (ValueError, OverflowError):
        raise _Bad(f"invalid date {text[:40]!r}: expected an ISO 8601 date or datetime") from None
    return text


def _split_tags(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(t for t in (p.strip() for p in _TAG_SPLIT.split(value)) if t)


def _clip(text: str) -> str:
    return text[:REJECT_TEXT_CHARS]


def _digest_array(hashes: Sequence[str], idx: np.ndarray | None, nbytes: int) -> np.ndarray:
    n = len(hashes) if idx is None else len(idx)
    out = np.empty((n, nbytes), np.uint8)
    step = 1 << 20
    for start in range(0, n, step):
        if idx is None:
            part = hashes[start:start + step]
        else:
            part = [hashes[i] for i in idx[start:start + step].tolist()]
        out[start:start + len(part)] = np.frombuffer(bytes.fromhex("".join(part)), np.uint8).reshape(-1, nbytes)
    return out


# --------------------------------------------------------------------------------------
# Reading bytes: bounded chunks, whole lines, long lines cut out, binary refused


class _Block:
    """Whole lines of the file: `data` (each line ends in b"\\n"), its decoded `text`,
    the offsets of the newlines `nl`, and each line's number `linenos`. `last`: nothing
    follows in the file; `before_long`: a line over the cap follows (so a CSV record
    cannot continue past this block)."""

    __slots__ = ("data", "text", "nl", "linenos", "last", "before_long")

    def __init__(self, data: bytes, text: str, nl: np.ndarray, linenos: np.ndarray, last: bool = False,
                 before_long: bool = False):
        self.data, self.text, self.nl, self.linenos = data, text, nl, linenos
        self.last, self.before_long = last, before_long

    @property
    def n(self) -> int:
        return len(self.nl)

    def start(self, i: int) -> int:
        return int(self.nl[i - 1]) + 1 if i else 0

    def line_text(self, i: int) -> str:
        return self.data[self.start(i):int(self.nl[i])][:4 * REJECT_TEXT_CHARS].decode("utf-8", "replace")

    def full_line(self, i: int) -> str:
        return self.data[self.start(i):int(self.nl[i])].decode("utf-8")

    def lines(self) -> list[str]:
        lines = self.text.split("\n")
        lines.pop()
        return lines

    def after(self, k: int) -> "_Block":
        """The block without its first k lines."""
        if k == 0:
            return self
        off = self.start(k)
        data = self.data[off:]
        return _Block(data, data.decode("utf-8"), self.nl[k:] - off, self.linenos[k:], self.last, self.before_long)

    def prefiltered(self, comments: bool) -> "_Block":
        """Without blank (empty or whitespace-only) lines and, if `comments`, lines
        starting with '#'."""
        if not self.n:
            return self
        starts = np.empty(self.n, np.int64)
        starts[0] = 0
        starts[1:] = self.nl[:-1] + 1
        lengths = self.nl - starts
        arr = np.frombuffer(self.data, np.uint8)
        first = arr[starts]  # an empty line's first byte is its b"\n"
        drop = lengths == 0
        if comments:
            drop |= first == ord("#")
        # Whitespace-only lines start with whitespace: check those few one by one.
        for i in np.flatnonzero((first == 32) | (first == 9) | (first == 13)).tolist():
            drop[i] = not self.data[starts[i]:self.nl[i]].strip()
        if not drop.any():
            return self
        keep = ~drop
        kept = arr[np.repeat(keep, lengths + 1)].tobytes()
        nl = np.flatnonzero(np.frombuffer(kept, np.uint8) == 10)
        return _Block(kept, kept.decode("utf-8"), nl, self.linenos[keep], self.last, self.before_long)


class _LongLine(NamedTuple):
    line: int
    head: str


class _Reader:
    """Iterates a binary file as _Block and _LongLine items. Holds at most about
    CHUNK_BYTES + 2 x max_line bytes, whatever the file holds: a line over the cap is
    reported from its first bytes and skipped chunk by chunk."""

    def __init__(self, handle, path: str, max_line: int, chunk: int | None = None) -> None:
        self.handle, self.path, self.max_line = handle, path, max_line
        self.chunk = max(CHUNK_BYTES if chunk is None else chunk, 1)  # the module constant, read now
        self.line = 1  # number of the first line of `carry`
        self.carry = b""  # bytes read but not handed out yet (no complete line, or given back)
        self.eof = False
        self._pushed: tuple[bytes, int] | None = None

    def unread(self, data: bytes, line: int) -> None:
        """Give back the tail of the block just handed out, from line `line` on (a CSV
        record that continues in the next chunk); it comes again with more lines."""
        self._pushed = (data, line)

    def _read(self) -> bytes:
        try:
            chunk = self.handle.read(self.chunk)
        except OSError as exc:
            raise ListFormatError(self.path, None, f"cannot read: {exc.strerror or exc}") from exc
        nul = chunk.find(b"\0")
        if nul >= 0:
            line = self.line + self.carry.count(b"\n") + chunk.count(b"\n", 0, nul)
            raise ListFormatError(self.path, line, "binary file: NUL byte (a hash list is UTF-8 text)")
        return chunk

    def __iter__(self) -> Iterator[_Block | _LongLine]:
        first = True
        while True:
            chunk = b"" if self.eof else self._read()
            if first:
                first = False
                if chunk[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
                    raise ListFormatError(self.path, None, "UTF-16 text: save the list as UTF-8")
                if chunk.startswith(codecs.BOM_UTF8):
                    chunk = chunk[len(codecs.BOM_UTF8):]
            if not chunk:
                self.eof = True
                if not self.carry:
                    return
                data, self.carry = self.carry, b""
                if not data.endswith(b"\n"):
                    data += b"\n"
                yield from self._blocks(data, self.line, last=True)
                continue
            data = self.carry + chunk if self.carry else chunk
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            long_tail = len(rest) > self.max_line
            self.carry = b"" if long_tail else rest
            if cut:
                yield from self._blocks(data[:cut], self.line, before_long=long_tail)
                if self._pushed is not None:  # pragma: no cover - a parser never gives back before a long line
                    continue
            if long_tail:
                # A line longer than the cap: report it, then skip to its end without keeping it.
                yield _LongLine(self.line, _clip(rest[:4 * REJECT_TEXT_CHARS].decode("utf-8", "replace")))
                del data, rest
                while not self.eof:
                    chunk = self._read()
                    if not chunk:
                        self.eof = True
                        break
                    pos = chunk.find(b"\n")
                    if pos >= 0:
                        self.carry = chunk[pos + 1:]
                        break
                self.line += 1

    def _blocks(self, data: bytes, line0: int, last: bool = False,
                before_long: bool = False) -> Iterator[_Block | _LongLine]:
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        arr = np.frombuffer(data, np.uint8)
        nl = np.flatnonzero(arr == 10)
        self.line = line0 + len(nl)
        lengths = np.diff(nl, prepend=-1) - 1
        long_lines = np.flatnonzero(lengths > self.max_line).tolist()
        begin = 0  # first line of the current run of normal lines
        for k in long_lines + [len(nl)]:
            if k > begin:
                lo = int(nl[begin - 1]) + 1 if begin else 0
                hi = int(nl[k - 1]) + 1
                piece = data[lo:hi]
                try:
                    text = piece.decode("utf-8")
                except UnicodeDecodeError as exc:
                    good = piece.count(b"\n", 0, exc.start)  # whole lines before the bad byte
                    if good:  # read first (an earlier bad entry is the first error whatever the chunking)
                        cut = int(nl[begin + good - 1]) + 1 - lo
                        yield _Block(piece[:cut], piece[:cut].decode("utf-8"), nl[begin:begin + good] - lo,
                                     np.arange(line0 + begin, line0 + begin + good, dtype=np.int64))
                        self._pushed = None  # the file is refused below: nothing is read again
                    bad_line = line0 + begin + good
                    raise ListFormatError(
                        self.path, bad_line,
                        f"not UTF-8 text (binary file?): invalid byte 0x{piece[exc.start]:02x}") from None
                at_end = k == len(nl)
                yield _Block(piece, text, nl[begin:k] - lo, np.arange(line0 + begin, line0 + k, dtype=np.int64),
                             last and at_end, before_long if at_end else True)
                if self._pushed is not None:
                    tail, line = self._pushed
                    self._pushed = None
                    self.carry = tail + data[hi:] + self.carry
                    self.line = line
                    return
            if k < len(nl):
                lo = int(nl[k - 1]) + 1 if k else 0
                yield _LongLine(line0 + k, _clip(data[lo:lo + 4 * REJECT_TEXT_CHARS].decode("utf-8", "replace")))
            begin = k + 1


# --------------------------------------------------------------------------------------
# Collecting entries


class _Builder:
    """Validates rows chunk by chunk and accumulates the columns."""

    def __init__(self, path: str, fmt: str, skip_invalid: bool, algorithm: str | None,
                 category: str | None, max_line: int, max_rejected: int = MAX_REJECTED) -> None:
        self.max_rejected = max_rejected
        self.path, self.format, self.skip_invalid = path, fmt, skip_invalid
        self.default_algorithm = algorithm
        self.default_category = sys.intern(category) if category else None
        self.max_line = max_line
        self.algorithms: list[str] = []
        self.hashes: list[str] = []
        self.categories: list[str | None] = []
        self.entry_ids: list[str | None] = []
        self.dates: list[str | None] = []
        self.tags: list[tuple[str, ...]] = []
        self.lines: list[np.ndarray] = []
        self.keys: list[np.ndarray] = []  # _prefix_keys of the entries
        self.rejected: list[Rejected] = []
        self.retracted: list[Retracted] = []
        self.merged = 0  # lines merged into an earlier entry (ParsedList.merged)
        # tx-csv: rows of one signal are one entry (one row per collab listing it).
        self.merge_signals = fmt == "tx-csv"

    def fail(self, line: int | None, reason: str) -> ListFormatError:
        return ListFormatError(self.path, line, reason)

    def reject(self, line: int, reason: str, text: str) -> None:
        self.rejected.append(Rejected(int(line), reason, _clip(text)))
        if len(self.rejected) > self.max_rejected and self.skip_invalid:
            self.rejected.sort(key=lambda r: r.line)
            raise ListFormatError(self.path, int(line), f"more than {self.max_rejected} entries rejected, giving up "
                                                        "(is the format or the algorithm right?)", self.rejected)

    def check(self) -> None:
        """All-or-nothing mode: raise the earliest rejection found so far."""
        if self.rejected and not self.skip_invalid:
            first = min(self.rejected, key=lambda r: r.line)
            raise self.fail(first.line, first.reason)

    def add(self, linenos: np.ndarray, hashes: list[str], texts: Callable[[int], str], *,
            algs: str | list[str | None] | None = None, cats: list[str | None] | None = None,
            ids: list[str | None] | None = None, dates: list[str | None] | None = None,
            tags: list[tuple[str, ...]] | None = None, tags_raw: list[str] | None = None,
            retract: list[str | None] | None = None, numbers: np.ndarray | None = None) -> None:
        """Validate one batch of rows (columns of raw values) and keep the good ones.
        `texts(i)` gives row i's source text for a rejection; `numbers`, the entry
        numbers of a JSON document, are named in the reasons."""
        n = len(hashes)
        if n == 0:
            return
        bad: dict[int, str] = {}

        # Algorithms: map each distinct spelling once.
        single: str | None = None
        per_row: list[str | None] | None = None
        if isinstance(algs, str):  # one name for every row
            try:
                single = sys.intern(_canonical_algorithm(algs))
            except _Bad:
                algs = [algs] * n  # every row is rejected below, each with its line
        if algs is None:
            single = self._default_algorithm(int(linenos[0]))
        elif single is None:
            mapping: dict[Any, str | _Bad] = {}
            for raw in set(algs):
                if raw is None or not raw.strip():
                    mapping[raw] = self._default_algorithm(int(linenos[algs.index(raw)]))
                else:
                    try:
                        mapping[raw] = sys.intern(_canonical_algorithm(raw))
                    except _Bad as exc:
                        mapping[raw] = exc
            names = set(mapping.values())
            if len(names) == 1 and isinstance(next(iter(names)), str):
                single = next(iter(names))  # type: ignore[assignment]
            else:
                per_row = []
                for i, raw in enumerate(algs):
                    got = mapping[raw]
                    if isinstance(got, _Bad):
                        bad[i] = got.reason
                        per_row.append(None)
                    else:
                        per_row.append(got)

        # Hashes, one algorithm at a time, in bulk where possible.
        raw = None
        if single is not None:
            bulk = _normalise_bulk(single, hashes)
            if bulk is None and hashes[0] != hashes[0].strip():  # "hash, category" and the like
                hashes = list(map(str.strip, hashes))
                bulk = _normalise_bulk(single, hashes)
            if bulk is None:
                out = self._normalise_rows(single, hashes, range(n), bad)
            else:
                out, raw = bulk
        else:
            assert per_row is not None
            groups: dict[str, list[int]] = {}
            for i, name in enumerate(per_row):
                if name is not None:
                    groups.setdefault(name, []).append(i)
            out = [""] * n
            for name, idx in groups.items():
                values = [hashes[i] for i in idx]
                bulk = _normalise_bulk(name, values)
                norm = self._normalise_rows(name, values, idx, bad) if bulk is None else bulk[0]
                for i, h in zip(idx, norm):
                    out[i] = h
        keys = _prefix_keys(out, raw)

        default_cat = self.default_category
        cat_col = [default_cat] * n if cats is None else self._map_unique(cats, self._category, bad)
        id_col = [None] * n if ids is None else _strip_ids(ids)
        date_col = [None] * n if dates is None else self._map_unique(dates, _check_date, bad)
        if tags is not None:
            tag_col = tags
        elif tags_raw is not None:
            tag_col = self._map_unique(tags_raw, _split_tags, bad)
        else:
            tag_col = [()] * n

        alg_col: list[str] = [single] * n if single is not None else per_row  # type: ignore[assignment,list-item]
        if bad:
            for i in sorted(bad):
                where = "" if numbers is None else f"entry {numbers[i]}: "
                self.reject(int(linenos[i]), where + bad[i], texts(i))
            keep = np.ones(n, bool)
            keep[list(bad)] = False
            mask = keep.tolist()
            alg_col, out, cat_col, id_col, date_col, tag_col = (
                list(compress(c, mask)) for c in (alg_col, out, cat_col, id_col, date_col, tag_col))
            linenos = linenos[keep]
            keys = keys[keep]
            if retract is not None:
                retract = list(compress(retract, mask))
        if retract is not None and any(retract):
            mask = [r is None for r in retract]
            for i in np.flatnonzero(~np.array(mask, bool)).tolist():
                self.retracted.append(Retracted(int(linenos[i]), alg_col[i], out[i], id_col[i], retract[i]))
            alg_col, out, cat_col, id_col, date_col, tag_col = (
                list(compress(c, mask)) for c in (alg_col, out, cat_col, id_col, date_col, tag_col))
            linenos = linenos[np.array(mask, bool)]
            keys = keys[np.array(mask, bool)]
        if not out:
            return
        self.algorithms += alg_col
        self.hashes += out
        self.categories += cat_col
        self.entry_ids += id_col
        self.dates += date_col
        self.tags += tag_col
        self.lines.append(np.asarray(linenos, np.int64))
        self.keys.append(keys)

    def _default_algorithm(self, line: int) -> str:
        if self.default_algorithm is None:
            raise self.fail(line, "no algorithm: pass --algorithm (this list does not name the hash algorithm)")
        return self.default_algorithm

    def _category(self, value: str | None) -> str | None:
        if value is None:
            return self.default_category
        return sys.intern(value.strip()) if value.strip() else self.default_category

    @staticmethod
    def _normalise_rows(name: str, values: Sequence[str], idx: Sequence[int], bad: dict[int, str]) -> list[str]:
        out = []
        for i, value in zip(idx, values):
            try:
                out.append(_normalise_one(name, value))
            except _Bad as exc:
                bad.setdefault(i, exc.reason)
                out.append("")
        return out

    @staticmethod
    def _map_unique(values: list, fn: Callable[[Any], Any], bad: dict[int, str]) -> list:
        if values and values.count(values[0]) == len(values):  # one value for the whole batch (C-speed check)
            try:
                return [fn(values[0])] * len(values)
            except _Bad as exc:
                for i in range(len(values)):
                    bad.setdefault(i, exc.reason)
                return [None] * len(values)
        mapping: dict[Any, Any] = {}
        failed = False
        for raw in set(values):
            try:
                mapping[raw] = fn(raw)
            except _Bad as exc:
                mapping[raw] = exc
                failed = True
        mapped = list(map(mapping.__getitem__, values))
        if failed:
            for i, got in enumerate(mapped):
                if isinstance(got, _Bad):
                    bad.setdefault(i, got.reason)
                    mapped[i] = None
        return mapped

    def finish(self) -> ParsedList:
        lines = np.concatenate(self.lines) if self.lines else np.zeros(0, np.int64)
        keys = np.concatenate(self.keys) if self.keys else np.zeros(0, np.uint64)
        self.keys = []
        lines = self._compact(self._repeats(keys), lines)
        if self.retracted:
            lines = self._compact(self._retraction_conflicts(lines), lines)
        self.rejected.sort(key=lambda r: r.line)
        if not self.hashes and not self.retracted:
            if self.rejected:
                raise ListFormatError(self.path, None, f"no valid entries: all {len(self.rejected)} were rejected",
                                      self.rejected)
            raise self.fail(None, "no entries (the list is empty)")
        return ParsedList(self.format, self.path, self.algorithms, self.hashes, self.categories, self.entry_ids,
                          self.dates, self.tags, lines, self.rejected, self.retracted, self.merged)

    def _compact(self, drop: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """Remove the entries `drop` marks from every column; returns the lines kept."""
        if not drop.any():
            return lines
        mask = (~drop).tolist()
        for name in ("algorithms", "hashes", "categories", "entry_ids", "dates", "tags"):
            setattr(self, name, list(compress(getattr(self, name), mask)))
        return lines[~drop]

    def _repeats(self, keys: np.ndarray) -> np.ndarray:
        """Mask of the entries merged into an earlier one; counts them in `merged`.

        Repeated hashes are kept: a line is merged only when it repeats an earlier
        line exactly (algorithm, hash, category, entry id, date, tags), or, in tx-csv,
        when it lists a signal already listed (another collab's opinion: the tags are
        joined). Only entries whose prefix key repeats (numpy sort) are compared, in
        one C-level pass over those, so a list without repeats costs one sort."""
        n = len(self.hashes)
        drop = np.zeros(n, bool)
        ordered = np.sort(keys)
        if not (ordered[1:] == ordered[:-1]).any():  # the usual case: one sort, done
            return drop
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        same = ordered[1:] == ordered[:-1]
        candidate = np.zeros(n, bool)
        candidate[order[1:][same]] = True
        candidate[order[:-1][same]] = True
        idx = np.flatnonzero(candidate)  # ascending: file order, so the first of a kind is kept
        rows = idx.tolist()
        others = [self.algorithms] if self.merge_signals else \
            [self.algorithms, self.categories, self.entry_ids, self.dates, self.tags]
        # A column holding one value throughout (the usual category, date, ...) cannot
        # tell entries apart: leave it out of the key (list.count runs at C speed).
        others = [c for c in others if c.count(c[0]) != n]
        full_keys: Iterable[Any] = map(self.hashes.__getitem__, rows)
        if others:
            full_keys = zip(full_keys, *(map(column.__getitem__, rows) for column in others))
        first_of: dict[Any, int] = {}
        firsts = np.fromiter(map(first_of.setdefault, full_keys, rows), np.int64, len(rows))
        later = firsts != idx
        drop[idx[later]] = True
        if self.merge_signals:  # one signal, several collabs: the first row takes every row's tags
            tags = self.tags
            for i, first in zip(idx[later].tolist(), firsts[later].tolist()):
                tags[first] = tuple(dict.fromkeys(tags[first] + tags[i]))
        self.merged += int(np.count_nonzero(later))
        return drop

    def _retraction_conflicts(self, lines: np.ndarray) -> np.ndarray:
        """An entry both listed and retracted in one file. tx-csv: another collab's
        row that imports the signal (positive, seed or disputed) wins: the hash is
        imported, not retracted. Otherwise it is contradictory: the later of the two
        lines is the bad one."""
        drop = np.zeros(len(self.hashes), bool)
        retracted = {(r.algorithm, r.hash): r for r in self.retracted}
        if not retracted:
            return drop
        hits = [i for i, h in enumerate(self.hashes) if (self.algorithms[i], h) in retracted]
        if not hits:
            return drop
        if self.format == "tx-csv":
            listed = {(self.algorithms[i], self.hashes[i]) for i in hits}
            self.retracted = [r for r in self.retracted if (r.algorithm, r.hash) not in listed]
            return drop
        bad_retractions = set()
        for i in hits:
            r = retracted[(self.algorithms[i], self.hashes[i])]
            entry_line = int(lines[i])
            if r.line < entry_line:
                reason = f"listed here but retracted (deleted) at line {r.line}"
                problem = (entry_line, reason, f"{self.algorithms[i]} {self.hashes[i]}")
                drop[i] = True
            else:
                if r.line in bad_retractions:  # a repeated hash listed before it: rejected once
                    continue
                reason = f"retracted (deleted) here but listed at line {entry_line}"
                problem = (r.line, reason, f"{r.algorithm} {r.hash}")
                bad_retractions.add(r.line)
            if not self.skip_invalid:
                raise self.fail(problem[0], problem[1])
            self.reject(*problem)
        self.retracted = [r for r in self.retracted if r.line not in bad_retractions]
        return drop


# --------------------------------------------------------------------------------------
# Formats


class _TextParser:
    def __init__(self, builder: _Builder, reader: _Reader) -> None:
        self.b = builder

    def feed(self, block: _Block) -> None:
        block = block.prefiltered(comments=True)
        if not block.n:
            return
        data = block.data
        if b" " not in data and b"\t" not in data:  # bare hashes
            self.b.add(block.linenos, block.lines(), block.line_text)
            return
        if b"\t" not in data:
            arr = np.frombuffer(data, np.uint8)
            spaces = np.flatnonzero(arr == 32)
            per_line = np.diff(np.searchsorted(spaces, block.nl), prepend=0)
            starts = np.concatenate(([0], block.nl[:-1] + 1))
            if (per_line == 1).all() and not (arr[starts] == 32).any() and not (arr[block.nl - 1] == 32).any():
                text = block.text
                prefix = text[:text.index(" ") + 1]
                if text.count("\n" + prefix) == block.n - 1:  # the same name on every line
                    hashes = text.replace("\n" + prefix, "\n")[len(prefix):].split("\n")
                    hashes.pop()
                    self.b.add(block.linenos, hashes, block.line_text, algs=prefix[:-1])
                    return
                flat = text.replace("\n", " ").split(" ")
                flat.pop()
                self.b.add(block.linenos, flat[1::2], block.line_text, algs=flat[0::2])
                return
        # Mixed or irregular whitespace: line by line.
        lines = block.lines()
        keep, algs, hashes = [], [], []
        for i, line in enumerate(lines):
            parts = _ASCII_WS.split(line.strip(_ASCII_WS_CHARS))  # as prefiltered(): NBSP and the like are text
            if not parts[0] or parts[0].startswith("#"):
                continue
            if len(parts) == 1:
                algs.append(None)
                hashes.append(parts[0])
            elif len(parts) == 2:
                algs.append(parts[0])
                hashes.append(parts[1])
            else:
                self.b.reject(int(block.linenos[i]), f"expected 'algorithm hash' or a bare hash, found "
                                                     f"{len(parts)} fields", line)
                continue
            keep.append(i)
        self.b.add(block.linenos[keep], hashes, lambda k: lines[keep[k]], algs=algs)

    def finish(self) -> None:
        pass


class _DelimitedParser:
    """csv, tsv and tx-csv."""

    def __init__(self, builder: _Builder, reader: _Reader, delimiter: str, tx: bool = False) -> None:
        self.b, self.reader, self.delim, self.tx = builder, reader, delimiter, tx
        self.roles: dict[str, int] | None = None
        self.ncols = 0

    def _set_header(self, fields: list[str], line: int) -> None:
        names = [f.strip().lstrip("\ufeff").strip().lower() for f in fields]
        roles: dict[str, int] = {}
        if self.tx:
            for role, name in (("hash", "signal_str"), ("algorithm", "signal_type"), ("opinion", "category"),
                               ("tags", "tags"), ("collab", "collab")):
                if name in names:
                    roles[role] = names.index(name)
            if "hash" not in roles or "algorithm" not in roles:
                raise self.b.fail(line, "not a python-threatexchange CSV: the header needs signal_type and "
                                        f"signal_str columns; found: {', '.join(names)[:200]}")
        else:
            for role, keys in COLUMN_NAMES.items():
                for key in keys:
                    if key in names:
                        roles[role] = names.index(key)
                        break
            if "hash" not in roles:
                raise self.b.fail(line, f"no hash column in the header (expected one of: "
                                        f"{', '.join(COLUMN_NAMES['hash'])}); found: {', '.join(names)[:200]}")
        self.roles, self.ncols = roles, len(names)

    def feed(self, block: _Block) -> None:
        if self.roles is None:
            # Before the header, blank lines and '#' comments may stand (a preamble).
            # After it, a line starting with '#' is a row like any other: never dropped.
            # The header is one line: a quote left open there is an error.
            for k in range(block.n):
                line = block.full_line(k)
                if line.strip() and not line.lstrip().startswith("#"):
                    self._set_header(self._header_fields(line, int(block.linenos[k])), int(block.linenos[k]))
                    block = block.after(k + 1)
                    break
            else:
                return
        if b'"' in block.data:
            self._feed_quoted(block)
        else:
            self._feed_plain(block)

    def _header_fields(self, line: str, lineno: int) -> list[str]:
        if '"' not in line:
            return line.split(self.delim)
        try:
            return next(csv.reader([line], delimiter=self.delim, strict=True))
        except csv.Error as exc:
            raise self.b.fail(lineno, f"malformed CSV header: {exc} (unterminated quote?)") from None

    def _feed_plain(self, block: _Block) -> None:
        """A block without quote characters: one field per delimiter, in bulk."""
        block = block.prefiltered(comments=False)
        if not block.n:
            return
        arr = np.frombuffer(block.data, np.uint8)
        if self.ncols == 1:
            uniform = self.delim.encode() not in block.data
        else:
            cuts = np.flatnonzero(arr == ord(self.delim))
            uniform = bool((np.diff(np.searchsorted(cuts, block.nl), prepend=0) == self.ncols - 1).all())
        if uniform:
            flat = block.text.replace("\n", self.delim).split(self.delim)
            flat.pop()
            assert self.roles is not None
            columns = {role: flat[i::self.ncols] for role, i in self.roles.items()}
            self._add(block.linenos, columns, block.line_text)
            return
        lines = block.lines()
        rows, keep = [], []
        for i, line in enumerate(lines):
            fields = line.split(self.delim)
            if len(fields) != self.ncols:
                self.b.reject(int(block.linenos[i]), f"expected {self.ncols} fields, found {len(fields)}", line)
                continue
            rows.append(fields)
            keep.append(i)
        self._add_rows(block.linenos[keep], rows, lambda k: lines[keep[k]])

    def _feed_quoted(self, block: _Block) -> None:
        """Blocks with quote characters go through the csv module (multi-line fields).

        A record spanning lines is checked (_spanning_problem); a quote judged
        unterminated rejects the line that opened it, and a new csv reader resumes at
        the next line (see "Unterminated quotes" in the module docs)."""
        reader = csv.reader(io.StringIO(block.text), delimiter=self.delim, strict=True)
        base = 0  # line of the block where `reader` starts
        lines: list[str] | None = None  # the block's lines, once a reader has to start mid-block
        rows: list[list[str]] = []
        keep: list[int] = []
        ncols = self.ncols
        append_row, append_keep = rows.append, keep.append
        done = 0  # lines of the block consumed by complete records (or rejected)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                first, end = done, base + reader.line_num
                at_end = "unexpected end of data" in str(exc)  # a quoted field runs past this block
                if at_end and not block.last and not block.before_long and \
                        self._span(block, first, block.n) <= self.b.max_line:
                    self.reader.unread(block.data[block.start(first):], int(block.linenos[first]))
                    break
                if not at_end and end - first <= 1:  # an error within one line: that line is bad
                    self.b.reject(int(block.linenos[first]), f"malformed CSV: {exc}", block.line_text(first))
                    done = end
                    continue
                problem = self._spanning_problem(block, first, max(end, first + 1), exc, at_end)
            else:
                first = done
                done = base + reader.line_num
                if len(row) == ncols and done - first == 1 and row[0] and not row[0].isspace():
                    append_row(row)  # the common case, quickly
                    append_keep(first)
                    continue
                if len(row) == ncols and (done - first == 1 or self._spanning_problem(block, first, done) is None):
                    if "".join(row).strip() or not self._blank(block, first, done):
                        append_row(row)
                        append_keep(first)
                    continue
                problem = None if done - first == 1 else self._spanning_problem(block, first, done)
                if problem is None:
                    if row and not self._blank(block, first, done):
                        self.b.reject(int(block.linenos[first]), f"expected {ncols} fields, found {len(row)}",
                                      block.line_text(first))
                    continue
            # An unterminated quote: reject the line that opened it, read on from the next.
            if not self.b.skip_invalid:
                self._add_rows(block.linenos[keep], rows, lambda k: block.line_text(keep[k]))
                self.b.check()  # an earlier bad line is the error
                raise self.b.fail(int(block.linenos[first]), problem)
            self.b.reject(int(block.linenos[first]),
                          f"{problem}; the lines after it are read on their own", block.line_text(first))
            done = first + 1
            if done >= block.n:
                break
            if block.data.find(b'"', block.start(done)) < 0:  # the rest has no quote: in bulk
                self._add_rows(block.linenos[keep], rows, lambda k: block.line_text(keep[k]))
                self._feed_plain(block.after(done))
                return
            if lines is None:
                lines = block.lines()
            base = done
            reader = csv.reader((lines[i] + "\n" for i in range(base, block.n)), delimiter=self.delim, strict=True)
        self._add_rows(block.linenos[keep], rows, lambda k: block.line_text(keep[k]))

    @staticmethod
    def _blank(block: _Block, first: int, end: int) -> bool:
        """Lines first..end-1 are one blank line (whitespace only, delimiters included), as
        prefiltered() drops it."""
        return end - first == 1 and not block.data[block.start(first):int(block.nl[first])].strip()

    @staticmethod
    def _span(block: _Block, first: int, end: int) -> int:
        """Bytes of lines first..end-1 of the block, newlines included."""
        return int(block.nl[end - 1]) + 1 - block.start(first)

    def _spanning_problem(self, block: _Block, first: int, end: int, exc: csv.Error | None = None,
                          at_end: bool = False) -> str | None:
        """Why a record read over lines first..end-1 (or one the csv module gave up on
        there) is an unterminated quote, or None when it is a sound multi-line record."""
        opened = int(block.linenos[first])
        cap = self.b.max_line
        if self._span(block, first, end) > cap or (at_end and block.before_long and not block.last):
            if self._span(block, first, block.n) > cap:
                past = int(np.searchsorted(block.nl, block.start(first) + cap))
                to = int(block.linenos[past])
            else:  # the next line is itself over the cap
                to = int(block.linenos[-1]) + 1
            return f"malformed CSV: a quoted field opened at line {opened} runs over {cap} bytes, to line {to} " \
                   "(unterminated quote?)"
        last = int(block.linenos[end - 1])
        if at_end:
            return f"malformed CSV: unterminated quoted field: the quote opened at line {opened} is still open " \
                   f"at the end of the file (line {last})"
        if exc is not None:
            return f"malformed CSV: a quoted field opened at line {opened} runs to line {last}, where: {exc} " \
                   "(unterminated quote?)"
        assert self.roles is not None
        column = self.roles["hash"]
        for i in range(first + 1, end):
            fields = block.full_line(i).split(self.delim)
            if len(fields) == self.ncols and _looks_like_hash(fields[column]):
                return f"malformed CSV: a quoted field opened at line {opened} runs to line {last}, over line " \
                       f"{int(block.linenos[i])}, which reads as a row of its own (unterminated quote?)"
        return None

    def _add_rows(self, linenos: np.ndarray, rows: list[list[str]], texts: Callable[[int], str]) -> None:
        if not rows:
            return
        assert self.roles is not None
        columns = {role: [r[i] for r in rows] for role, i in self.roles.items()}
        self._add(linenos, columns, texts)

    def _add(self, linenos: np.ndarray, columns: dict[str, list[str]], texts: Callable[[int], str]) -> None:
        if not self.tx:
            self.b.add(linenos, columns["hash"], texts, algs=columns.get("algorithm"), cats=columns.get("category"),
                       ids=columns.get("entry_id"), dates=columns.get("date"), tags_raw=columns.get("tags"))
            return
        n = len(columns["hash"])
        opinions = columns.get("opinion", [""] * n)
        tag_fields = columns.get("tags", [""] * n)
        collabs = columns.get("collab", [""] * n)
        signal_types = columns["algorithm"]
        tags, retract, keep = [], [], []
        for i, (opinion, tag_field, collab, signal_type) in enumerate(zip(opinions, tag_fields, collabs,
                                                                           signal_types)):
            name = opinion.strip().lower()
            if name and name not in _TX_OPINIONS:
                self.b.reject(int(linenos[i]), f"unknown threatexchange opinion category {opinion.strip()[:40]!r} "
                                               "(expected POSITIVE_CLASS, INVESTIGATION_SEED, DISPUTED or "
                                               "NEGATIVE_CLASS, or the older TRUE_POSITIVE, WORTH_INVESTIGATING or "
                                               "FALSE_POSITIVE)", texts(i))
                continue
            reason, opinion_tag = _TX_OPINIONS.get(name, (None, None))  # blank: imported as listed
            row_tags = tag_field.split()
            if opinion_tag:
                row_tags.append(opinion_tag)
            kind = signal_type.strip().lower()
            if kind in _TX_TAGGED_SIGNAL_TYPES:
                row_tags.append(f"signal_type:{kind}")
            if collab.strip():
                row_tags.append(f"collab:{collab.strip()}")
            tags.append(tuple(dict.fromkeys(row_tags)))
            retract.append(reason)
            keep.append(i)
        if len(keep) != n:
            columns = {role: [col[i] for i in keep] for role, col in columns.items()}
            linenos = linenos[keep]
            inner = texts
            texts = lambda k: inner(keep[k])  # noqa: E731
        self.b.add(linenos, columns["hash"], texts, algs=columns["algorithm"], tags=tags, retract=retract)

    def finish(self) -> None:
        pass


class _JsonEntries:
    """Turns JSON objects (jsonl lines, tat-json entries) into rows for the builder."""

    def __init__(self, builder: _Builder) -> None:
        self.b = builder
        self.key_cache: dict[tuple, dict[str, str]] = {}

    def _roles(self, obj: dict) -> dict[str, str]:
        keys = tuple(obj)
        roles = self.key_cache.get(keys)
        if roles is None:
            lower: dict[str, str] = {}
            for key in keys:
                if isinstance(key, str):
                    lower.setdefault(key.strip().lower(), key)
            roles = {}
            for role, names in COLUMN_NAMES.items():
                for name in names:
                    if name in lower:
                        roles[role] = lower[name]
                        break
            for extra in ("deleted", "file_type"):
                if extra in lower:
                    roles[extra] = lower[extra]
            if len(keys) <= 64:  # a bounded cache: hostile objects with many or varying keys are not kept
                if len(self.key_cache) >= 4096:
                    self.key_cache.clear()
                self.key_cache[keys] = roles
        return roles

    def add(self, objects: Sequence[Any], linenos: Sequence[int], texts: Sequence[str],
            numbers: Sequence[int] | None = None, check_text: bool = False) -> None:
        """`check_text`: the source holds escapes that decode to a lone surrogate or
        NUL (_SUSPECT_ESCAPE), so every kept string is checked."""
        hashes: list[str] = []
        algs: list[str | None] = []
        cats: list[str | None] = []
        ids: list[str | None] = []
        dates: list[str | None] = []
        tags: list[tuple[str, ...]] = []
        retract: list[str | None] = []
        keep: list[int] = []
        for i, obj in enumerate(objects):
            try:
                row = self._row(obj)
                if check_text:
                    self._check_row(obj, row)
            except _Bad as exc:
                reason = exc.reason if numbers is None else f"entry {numbers[i]}: {exc.reason}"
                self.b.reject(linenos[i], reason, texts[i])
                continue
            hashes.append(row[0])
            algs.append(row[1])
            cats.append(row[2])
            ids.append(row[3])
            dates.append(row[4])
            tags.append(row[5])
            retract.append(row[6])
            keep.append(i)
        if not keep:
            return
        self.b.add(np.asarray([linenos[i] for i in keep], np.int64), hashes, lambda k: texts[keep[k]],
                   algs=algs, cats=cats, ids=ids, dates=dates, tags=tags, retract=retract,
                   numbers=None if numbers is None else np.asarray([numbers[i] for i in keep], np.int64))

    def _row(self, obj: Any) -> tuple:
        if not isinstance(obj, dict):
            raise _Bad(f"expected a JSON object, found {_json_type(obj)}")
        roles = self._roles(obj)
        key = roles.get("hash")
        if key is None:
            raise _Bad(f"no hash field (expected one of: {', '.join(COLUMN_NAMES['hash'])})")
        value = obj[key]
        if not isinstance(value, str):
            raise _Bad(f"{key!r} must be a string, found {_json_type(value)}")
        alg = self._text(obj, roles, "algorithm")
        cat = self._text(obj, roles, "category")
        entry_id = obj.get(roles["entry_id"]) if "entry_id" in roles else None
        if entry_id is not None and type(entry_id) is not str:
            if isinstance(entry_id, bool) or not isinstance(entry_id, (int, float)) or \
                    (isinstance(entry_id, float) and not math.isfinite(entry_id)):
                if isinstance(entry_id, _HugeNumber):
                    raise _Bad(f"{roles['entry_id']!r} is a number of {entry_id.digits} digits, too long for an id")
                raise _Bad(f"{roles['entry_id']!r} must be a string or a number, found {_json_type(entry_id)} "
                           f"{str(entry_id)[:40] if isinstance(entry_id, float) else ''}".rstrip())
            entry_id = str(entry_id)
        date = self._text(obj, roles, "date")
        raw_tags = obj.get(roles["tags"]) if "tags" in roles else None
        if raw_tags is None:
            tags: tuple[str, ...] = ()
        elif isinstance(raw_tags, str):
            tags = _split_tags(raw_tags)
        elif isinstance(raw_tags, list) and all(isinstance(t, str) for t in raw_tags):
            tags = tuple(t.strip() for t in raw_tags if t.strip())
        else:
            raise _Bad(f"{roles['tags']!r} must be a list of strings or a string, found {_json_type(raw_tags)}")
        file_type = self._text(obj, roles, "file_type")
        if file_type and file_type.strip():
            tags = tags + (f"file_type:{file_type.strip()}",)
        deleted = obj.get(roles["deleted"]) if "deleted" in roles else None
        if deleted in (None, False, 0, "false", "False", "0", ""):
            retract = None
        elif deleted in (True, 1, "true", "True", "1"):
            retract = "deleted"
        else:
            shown = repr(deleted[:40]) if isinstance(deleted, str) else _json_type(deleted)
            raise _Bad(f"{roles['deleted']!r} must be true or false, found {shown}")
        return value, alg, cat, entry_id, date, tags, retract

    def _check_row(self, obj: dict, row: tuple) -> None:
        """Every string the entry keeps is storable text (see _checked_text)."""
        roles = self._roles(obj)
        for role, value in zip(("hash", "algorithm", "category", "entry_id", "date"), row[:5]):
            if isinstance(value, str):
                _checked_text(value, roles[role])
        for tag in row[5]:
            from_file_type = "file_type" in roles and tag.startswith("file_type:")
            _checked_text(tag, roles["file_type"] if from_file_type else roles.get("tags", "tags"))

    @staticmethod
    def _text(obj: dict, roles: dict[str, str], role: str) -> str | None:
        key = roles.get(role)
        if key is None:
            return None
        value = obj[key]
        if value is None or isinstance(value, str):
            return value
        raise _Bad(f"{key!r} must be a string, found {_json_type(value)}")


class _JsonlParser:
    def __init__(self, builder: _Builder, reader: _Reader) -> None:
        self.b = builder
        self.entries = _JsonEntries(builder)

    def feed(self, block: _Block) -> None:
        block = block.prefiltered(comments=False)
        if not block.n:
            return
        lines = block.lines()
        objects = self._parse_bulk(lines)
        linenos = block.linenos.tolist()
        if objects is None:
            objects, keep = [], []
            for i, line in enumerate(lines):
                if not line.strip():
                    continue
                try:
                    try:
                        objects.append(_DECODER.decode(line))
                    except ValueError as exc:
                        if isinstance(exc, json.JSONDecodeError):
                            raise
                        objects.append(_BOUNDED_DECODER.decode(line))  # an over-long integer
                except (ValueError, RecursionError) as exc:
                    self.b.reject(linenos[i], _json_error(exc), line)
                    continue
                keep.append(i)
            linenos = [linenos[i] for i in keep]
            lines = [lines[i] for i in keep]
        self.entries.add(objects, linenos, lines, check_text=_SUSPECT_ESCAPE.search(block.text) is not None)

    @staticmethod
    def _parse_bulk(lines: list[str]) -> list[Any] | None:
        """The lines' values from one C-level parse, or None when some line is not
        exactly one JSON value (then each line is parsed on its own, to locate it).

        The lines are joined with a random number S between them. S can only come
        from a joiner (whoever wrote the file does not know it), so n - 1 top-level
        copies of S mean every joiner is at the top level, and 2n - 1 values then
        mean one value per line: no fragment (``[1``) pairs up with the next line,
        no line holding two values (``{..}, {..}``) passes for one."""
        # 53 random bits, within a machine word: cheap to parse.
        sentinel = int.from_bytes(os.urandom(7), "big") & ((1 << 52) - 1) | 1 << 52
        try:
            values = json.loads("[" + f",{sentinel},".join(lines) + "]")
        except (ValueError, RecursionError):
            return None
        n = len(lines)
        if len(values) != 2 * n - 1 or values.count(sentinel) != n - 1:
            return None
        del values[1::2]
        return values

    def finish(self) -> None:
        pass


def _read_document(path: str, handle, limit: int) -> str:
    try:
        data = handle.read(limit + 1)
    except OSError as exc:
        raise ListFormatError(path, None, f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise ListFormatError(path, None, f"JSON document larger than {limit} bytes (MAX_DOCUMENT_BYTES)")
    nul = data.find(b"\0")
    if nul >= 0:
        raise ListFormatError(path, data.count(b"\n", 0, nul) + 1, "binary file: NUL byte (a hash list is UTF-8 text)")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ListFormatError(path, data.count(b"\n", 0, exc.start) + 1,
                              f"not UTF-8 text (binary file?): invalid byte 0x{data[exc.start]:02x}") from None


def _parse_tat(builder: _Builder, path: str, handle, limit: int) -> None:
    text = _read_document(path, handle, limit)

    def malformed(exc: json.JSONDecodeError) -> ListFormatError:
        return ListFormatError(path, exc.lineno, f"malformed JSON: {exc.msg} (column {exc.colno})")

    def locate(decoder: json.JSONDecoder) -> tuple[int, int]:
        if text[pos] == "[":
            try:
                return pos, decoder.raw_decode(text, pos)[1]
            except json.JSONDecodeError as exc:
                raise malformed(exc) from None
        return _find_entry_list(text, pos, decoder, path, malformed)

    pos = _WS.match(text, 0).end()
    if pos == len(text):
        raise ListFormatError(path, None, "no entries (the list is empty)")
    if text[pos] not in "[{":
        raise ListFormatError(path, text.count("\n", 0, pos) + 1,
                              "not a TaT hash list: expected a JSON array or object")
    decoder = _DECODER
    try:
        try:
            start, end = locate(decoder)
        except ValueError as exc:
            if isinstance(exc, (json.JSONDecodeError, ListFormatError)):
                raise
            # An integer over Python's digit limit: read again keeping it as a marker, so
            # that only an entry using it is bad.
            decoder = _BOUNDED_DECODER
            start, end = locate(decoder)
    except RecursionError:
        where, number = _undecodable(text, pos, decoder)
        raise ListFormatError(path, text.count("\n", 0, where) + 1,
                              ("" if number is None else f"entry {number}: ") +
                              "malformed JSON: nested too deeply (the document cannot be read)") from None
    rest = _WS.match(text, end).end()
    if rest != len(text):
        raise ListFormatError(path, text.count("\n", 0, rest) + 1, "malformed JSON: extra data after the document")

    # Walk the array element by element to know each entry's line.
    entries = _JsonEntries(builder)
    check_text = _SUSPECT_ESCAPE.search(text) is not None
    objects: list[Any] = []
    linenos: list[int] = []
    texts: list[str] = []
    numbers: list[int] = []
    line, counted = 1, 0
    pos = _WS.match(text, start + 1).end()
    number = 0
    while text[pos] != "]":
        obj, end = decoder.raw_decode(text, pos)  # already parsed once: cannot fail
        line += text.count("\n", counted, pos)
        counted = pos
        number += 1
        objects.append(obj)
        linenos.append(line)
        texts.append(text[pos:min(end, pos + 4 * REJECT_TEXT_CHARS)])
        numbers.append(number)
        if len(objects) >= 100_000:
            entries.add(objects, linenos, texts, numbers, check_text)
            builder.check()
            objects, linenos, texts, numbers = [], [], [], []
        pos = _WS.match(text, end).end()
        if text[pos] == ",":
            pos = _WS.match(text, pos + 1).end()
    entries.add(objects, linenos, texts, numbers, check_text)


def _undecodable(text: str, pos: int, decoder: json.JSONDecoder, depth: int = 0) -> tuple[int, int | None]:
    """Where, in the JSON array or object at `pos`, the value `decoder` cannot decode
    (nested too deeply) starts, looking two levels down: (position, entry number) of
    the first such element of an array of entries, else (position, None)."""
    if depth >= 2 or text[pos] not in "[{":
        return pos, None
    array = text[pos] == "["
    p = _WS.match(text, pos + 1).end()
    number = 0
    try:
        while text[p] not in "]}":
            if not array:  # a key and its ':'
                p = _WS.match(text, decoder.raw_decode(text, p)[1]).end() + 1
                p = _WS.match(text, p).end()
            number += 1
            try:
                end = decoder.raw_decode(text, p)[1]
            except (ValueError, RecursionError):
                inner, inner_number = _undecodable(text, p, decoder, depth + 1)
                if inner_number is not None:
                    return inner, inner_number
                return (p, number) if array else (inner, None)
            p = _WS.match(text, end).end()
            if text[p] == ",":
                p = _WS.match(text, p + 1).end()
    except (ValueError, RecursionError, IndexError):
        pass
    return pos, None


def _find_entry_list(text: str, pos: int, decoder: json.JSONDecoder, path: str, malformed) -> tuple[int, int]:
    """In a top-level object, the start of the array holding the entries, and the end
    of the object."""
    arrays: dict[str, tuple[int, int, Any]] = {}
    pos = _WS.match(text, pos + 1).end()
    try:
        while text[pos] != "}":
            key, pos = decoder.raw_decode(text, pos)
            pos = _WS.match(text, pos).end()
            if text[pos] != ":" or not isinstance(key, str):
                raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
            pos = _WS.match(text, pos + 1).end()
            value, end = decoder.raw_decode(text, pos)
            if isinstance(value, list) and all(isinstance(v, dict) for v in value):
                arrays[key] = (pos, end, value)
            pos = _WS.match(text, end).end()
            if text[pos] == ",":
                pos = _WS.match(text, pos + 1).end()
                if text[pos] == "}":
                    raise json.JSONDecodeError("Illegal trailing comma before end of object", text, pos)
            elif text[pos] != "}":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
        end_of_object = pos + 1
    except json.JSONDecodeError as exc:
        raise malformed(exc) from None
    except IndexError:
        raise ListFormatError(path, text.count("\n") + 1, "malformed JSON: the document ends early") from None
    for key in _JSON_LIST_KEYS:
        for name, (start, _, _) in arrays.items():
            if name.lower() == key:
                return start, end_of_object
    for name, (start, _, value) in arrays.items():
        if value:
            return start, end_of_object
    raise ListFormatError(path, None, "no list of entries found in the JSON object (looked for "
                                      f"{', '.join(_JSON_LIST_KEYS)}); keys: {_printable(', '.join(arrays)[:200])}")


# --------------------------------------------------------------------------------------
# Public API


def _open(path: str | os.PathLike):
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except IsADirectoryError:
        raise ListFormatError(str(name), None, "is a directory, not a list file") from None
    except OSError as exc:
        raise ListFormatError(str(name), None, f"cannot open: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ListFormatError(str(name), None, "not a regular file (directory, FIFO, socket or device)")
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def detect_format(path: str | os.PathLike) -> str:
    """The list's format, from its first bytes (the extension only settles what the
    content leaves open):

    * ``[`` -> tat-json; ``{`` -> jsonl if the first line is a whole JSON object with a
      hash key, tat-json if it is a document (spans lines, or holds a list of entries);
    * a header naming collab, signal_type and signal_str -> tx-csv;
    * a header with a hash column (COLUMN_NAMES) split by tabs -> tsv, by commas -> csv;
    * a hash, or a name and a hash, separated by whitespace -> text;
    * otherwise the extension (.csv .tsv .jsonl .ndjson .json .txt), else an error.

    Raises ListFormatError for an empty, binary or non-UTF-8 file.
    """
    name = os.fspath(path)
    with _open(name) as handle:
        try:
            sample = handle.read(SNIFF_BYTES)
        except OSError as exc:
            raise ListFormatError(str(name), None, f"cannot read: {exc.strerror or exc}") from exc
    if sample[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        raise ListFormatError(str(name), None, "UTF-16 text: save the list as UTF-8")
    if b"\0" in sample:
        raise ListFormatError(str(name), sample.count(b"\n", 0, sample.find(b"\0")) + 1,
                              "binary file: NUL byte (a hash list is UTF-8 text)")
    if sample.startswith(codecs.BOM_UTF8):
        sample = sample[len(codecs.BOM_UTF8):]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3 or len(sample) < SNIFF_BYTES:  # not just a character cut in two
            raise ListFormatError(str(name), sample.count(b"\n", 0, exc.start) + 1,
                                  f"not UTF-8 text (binary file?): invalid byte 0x{sample[exc.start]:02x}") from None
        text = sample[:exc.start].decode("utf-8")
    ext = os.path.splitext(name)[1].lower()
    stripped = text.lstrip()
    if not stripped:
        raise ListFormatError(str(name), None, "no entries (the file is empty)")
    if stripped[0] == "[":
        return "tat-json"
    if stripped[0] == "{":
        first_line = stripped.split("\n", 1)[0]
        try:
            obj = _BOUNDED_DECODER.decode(first_line)  # an over-long integer does not make it a document
        except RecursionError:
            return "jsonl"  # one whole line, nested too deeply: a bad entry of a jsonl list
        except ValueError:
            return "tat-json"  # a document spread over lines (or a first line past the sample)
        if isinstance(obj, dict):
            keys = {str(k).strip().lower() for k in obj}
            if keys & set(COLUMN_NAMES["hash"]):
                return "jsonl"
            if any(isinstance(v, list) for v in obj.values()):
                return "tat-json"
        return "jsonl"
    first = next((ln for ln in stripped.split("\n") if ln.strip() and not ln.lstrip().startswith("#")), "")
    first = first.rstrip("\r")
    by_comma = {f.strip().strip('"').lower() for f in first.split(",")}
    by_tab = {f.strip().strip('"').lower() for f in first.split("\t")}
    if {"collab", "signal_type", "signal_str"} <= by_comma:
        return "tx-csv"
    hash_names = set(COLUMN_NAMES["hash"])
    if "\t" in first and by_tab & hash_names:
        return "tsv"
    if by_comma & hash_names:
        return "tsv" if ext == ".tsv" and len(by_comma) == 1 else "csv"
    tokens = first.split()
    if 1 <= len(tokens) <= 2 and all(c in _B64_CHARS for c in tokens[-1]) and (
            len(tokens) == 1 or re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", tokens[0])):
        return "text"
    by_ext = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".json": "tat-json", ".txt": "text"}
    if ext in by_ext:
        return by_ext[ext]
    raise ListFormatError(str(name), None, f"cannot tell the list format from its first line "
                                           f"{_clip(first)[:80]!r}: pass the format ({', '.join(FORMATS)})")


def read_list(path: str | os.PathLike, *, format: str | None = None, algorithm: str | None = None,
              category: str | None = None, skip_invalid: bool = False,
              max_line_bytes: int = MAX_LINE_BYTES, max_document_bytes: int = MAX_DOCUMENT_BYTES,
              max_rejected: int = MAX_REJECTED) -> ParsedList:
    """Read a hash list (see the module docstring for the formats).

    `format`: one of FORMATS, or None to detect it. `algorithm` and `category` are
    defaults for entries whose source does not name them (a text list without prefixes
    needs `algorithm`). With `skip_invalid`, bad entries land in `rejected` instead of
    raising; a list left with nothing valid, or with more than `max_rejected` bad
    entries, still raises ListFormatError. `max_line_bytes` caps a line (a record, for
    CSV), `max_document_bytes` a tat-json document.
    """
    name = os.fspath(path)
    fmt = detect_format(name) if format is None else format.strip().lower()
    if fmt not in FORMATS:
        raise ConfigurationError(f"unknown list format {format!r}; choose from {', '.join(FORMATS)}")
    default_alg = canonical_algorithm(algorithm) if algorithm else None
    if max_line_bytes < 1:
        raise ConfigurationError("max_line_bytes must be at least 1")
    builder = _Builder(str(name), fmt, skip_invalid, default_alg, category, max_line_bytes, max_rejected)
    with _open(name) as handle:
        if fmt == "tat-json":
            _parse_tat(builder, str(name), handle, max_document_bytes)
            builder.check()
            return builder.finish()
        reader = _Reader(handle, str(name), max_line_bytes)
        parser: Any
        if fmt == "text":
            parser = _TextParser(builder, reader)
        elif fmt == "jsonl":
            parser = _JsonlParser(builder, reader)
        else:
            parser = _DelimitedParser(builder, reader, "\t" if fmt == "tsv" else ",", tx=fmt == "tx-csv")
        for item in reader:
            if isinstance(item, _LongLine):
                builder.reject(item.line, f"line longer than {max_line_bytes} bytes", item.head)
            else:
                parser.feed(item)
            builder.check()
        parser.finish()
    return builder.finish()


def write_rejects(rejected: Iterable[Rejected], path: str | os.PathLike) -> int:
    """The rejected entries as CSV (line, reason, text), written atomically with mode
    0600 (rejected lines are list content). Returns the number of rows."""
    count = 0
    with atomic_write(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("line", "reason", "text"))
        for r in rejected:
            writer.writerow((r.line, r.reason, r.text))
            count += 1
    return count


def write_list(path: str | os.PathLike, *, hashes: Sequence[str], algorithms: str | Sequence[str],
               categories: Sequence[str | None] | None = None, entry_ids: Sequence[str | None] | None = None,
               dates: Sequence[str | None] | None = None, tags: Sequence[Sequence[str]] | None = None,
               format: str = "csv") -> int:
    """Export a list atomically (mode 0600); read_list() reads it back to the same entries.

    `algorithms` is one name for all entries or one per entry. Formats:

    * ``text``: ``algorithm hash`` per line (algorithm and hash only);
    * ``csv``: header ``algorithm,hash,category,entry_id,date_added,tags``, tags joined
      by ``;`` (a tag may not contain ``;`` or ``,``); empty field = none;
    * ``jsonl``: ``{"algorithm", "hash", "category", "entry_id", "date_added", "tags"}``
      per line, absent fields left out.

    Hashes are validated and normalised as on reading. Returns the number of entries.
    """
    fmt = format.strip().lower()
    if fmt not in WRITE_FORMATS:
        raise ConfigurationError(f"cannot write list format {format!r}; choose from {', '.join(WRITE_FORMATS)}")
    n = len(hashes)
    algs: Sequence[str] = [canonical_algorithm(algorithms)] * n if isinstance(algorithms, str) else \
        _canonical_column(algorithms)
    for label, column in (("algorithms", algs), ("categories", categories), ("entry_ids", entry_ids),
                          ("dates", dates), ("tags", tags)):
        if column is not None and len(column) != n:
            raise ConfigurationError(f"{label} has {len(column)} values for {n} hashes")
    norm = _normalise_column(algs, list(hashes))
    cats = categories if categories is not None else [None] * n
    ids = entry_ids if entry_ids is not None else [None] * n
    when = dates if dates is not None else [None] * n
    tag_col = tags if tags is not None else [()] * n
    if dates is not None:
        for value in set(when):
            if value:
                try:
                    _check_date(value)
                except _Bad as exc:
                    raise ConfigurationError(exc.reason) from None
    step = 100_000
    with atomic_write(path, "w", newline="", encoding="utf-8") as handle:
        if fmt == "csv":
            handle.write(",".join(CSV_HEADER) + "\n")
        for start in range(0, n, step):
            end = start + step
            if fmt == "text":
                handle.write("".join([f"{a} {h}\n" for a, h in zip(algs[start:end], norm[start:end])]))
            elif fmt == "csv":
                _write_csv_rows(handle, algs[start:end], norm[start:end], cats[start:end], ids[start:end],
                                when[start:end], tag_col[start:end])
            else:
                _write_jsonl_rows(handle, algs[start:end], norm[start:end], cats[start:end], ids[start:end],
                                  when[start:end], tag_col[start:end])
    return n


def _per_value(values: Sequence, fn: Callable[[Any], str]) -> list[str]:
    """fn of each value, computed once per distinct value."""
    mapping = {value: fn(value) for value in set(values)}
    return [mapping[value] for value in values]


def _write_csv_rows(handle, algs, hashes, cats, ids, dates, tags) -> None:
    columns = [_per_value(cats, _or_blank), [_or_blank(v) for v in ids], _per_value(dates, _or_blank),
               _per_value(list(map(_tag_key, tags)), _join_tags)]
    probe = "\x1f".join(set(columns[0]) | set(columns[2]) | set(columns[3])) + "\x1f".join(columns[1])
    if any(c in probe for c in ',"\n\r'):  # some field needs quoting: let the csv module do it
        csv.writer(handle, lineterminator="\n").writerows(zip(algs, hashes, *columns))
    else:
        handle.write("\n".join(map(",".join, zip(algs, hashes, *columns))) + "\n")


def _write_jsonl_rows(handle, algs, hashes, cats, ids, dates, tags) -> None:
    enc = json.encoder.encode_basestring  # type: ignore[attr-defined]  # JSON string, non-ASCII kept
    parts = [
        [f'{{"algorithm": "{a}", "hash": "{h}"' for a, h in zip(algs, hashes)],
        _per_value(cats, lambda v: f', "category": {enc(v)}' if v else ""),
        [f', "entry_id": {enc(v)}' if v else "" for v in ids],
        _per_value(dates, lambda v: f', "date_added": {enc(v)}' if v else ""),
        _per_value(list(map(_tag_key, tags)),
                   lambda v: f', "tags": {json.dumps(list(_check_tags(v)), ensure_ascii=False)}' if v else ""),
    ]
    handle.write("}\n".join(map("".join, zip(*parts))) + "}\n")


def _tag_key(tags: Sequence[str]) -> Any:
    return tags if isinstance(tags, (str, tuple)) else tuple(tags)  # a str fails in _check_tags


def _or_blank(value: str | None) -> str:
    return "" if value is None else value


def _canonical_column(algorithms: Sequence[str]) -> list[str]:
    mapping = {name: sys.intern(canonical_algorithm(name)) for name in set(algorithms)}
    return [mapping[name] for name in algorithms]


def _normalise_column(algs: Sequence[str], hashes: list[str]) -> list[str]:
    out = list(hashes)
    groups: dict[str, list[int]] = {}
    if len(set(algs)) == 1:
        groups[algs[0]] = list(range(len(hashes)))  # type: ignore[index]
    else:
        for i, name in enumerate(algs):
            groups.setdefault(name, []).append(i)
    for name, idx in groups.items():
        values = [hashes[i] for i in idx]
        bulk = _normalise_bulk(name, values)
        norm = None if bulk is None else bulk[0]
        if norm is None:
            norm = []
            for i, value in zip(idx, values):
                try:
                    norm.append(_normalise_one(name, value))
                except _Bad as exc:
                    raise ConfigurationError(f"entry {i}: {exc.reason}") from None
        for i, h in zip(idx, norm):
            out[i] = h
    return out


def _check_tags(tags: Sequence[str]) -> Sequence[str]:
    if isinstance(tags, str):
        raise ConfigurationError(f"tags must be a sequence of strings, not the string {tags!r}")
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or tag != tag.strip():
            raise ConfigurationError(f"bad tag {tag!r}: tags are non-empty strings without surrounding spaces")
    return tags


def _join_tags(tags: Sequence[str]) -> str:
    if not tags:
        return ""
    for tag in _check_tags(tags):
        if ";" in tag or "," in tag:
            raise ConfigurationError(f"tag {tag!r} contains ';' or ',', the CSV tag separators")
    return ";".join(tags)
