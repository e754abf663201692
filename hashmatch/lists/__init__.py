"""Reading and writing hash lists: the files clearing houses share (NCMEC, GIFCT,
StopNCII, Tech Against Terrorism, python-threatexchange exports) and the lists
hashmatch exports itself.

The package: one module per format (text.py, delimited.py for csv and tsv, tx_csv.py,
jsonl.py, tat_json.py), each a ListFormat in FORMAT_REGISTRY behind one small protocol
(a parser fed chunks of whole lines, or a reader of a whole document; optionally a sniff
function for detection); reader.py reads the bytes in bounded chunks, builder.py
validates and collects the entries, values.py normalises the values (algorithm names and
hash spellings come from the signal types, plug-ins included), model.py holds the
result, writer.py writes lists back. A package adds a format through the
``hashmatch.list_formats`` entry point (a ListFormat); read_list(format=NAME) then reads
it, and detect_format asks its sniff function.

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
read_list_parts hands a text, CSV or TSV list over in parts of PART_ENTRIES entries, so
Store.import_list never holds a 100M-entry list whole.

The package also holds hasher-independent pieces: schema.py (format names, limits, row
tuples). May import: hashmatch.signals (algorithm names and hash spellings),
hashmatch.base, hashmatch.errors; never the store, which imports lists.
"""
from __future__ import annotations

import codecs
import logging
import os
import re
import stat
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from hashmatch.errors import ConfigurationError, ListFormatError
from hashmatch.lists.builder import _Builder
from hashmatch.lists.delimited import _DelimitedParser
from hashmatch.lists.jsonl import _JsonlParser
from hashmatch.lists.model import ParsedList
from hashmatch.lists.reader import _LongLine, _Reader
from hashmatch.lists.schema import (
    _B64_CHARS,
    CHUNK_BYTES,
    COLUMN_NAMES,
    CSV_HEADER,
    FORMATS,
    MAX_DOCUMENT_BYTES,
    MAX_LINE_BYTES,
    MAX_REJECTED,
    PART_ENTRIES,
    REJECT_TEXT_CHARS,
    SNIFF_BYTES,
    WRITE_FORMATS,
    ListEntry,
    Rejected,
    Retracted,
)
from hashmatch.lists.tat_json import _parse_tat
from hashmatch.lists.text import _TextParser
from hashmatch.lists.tx_csv import TxCsvParser
from hashmatch.lists.values import _BOUNDED_DECODER, _clip, canonical_algorithm, normalise_hash
from hashmatch.lists.vpdq_txt import _parse_vpdq_txt
from hashmatch.lists.writer import write_list, write_rejects

__all__ = ["CHUNK_BYTES", "COLUMN_NAMES", "CSV_HEADER", "ENTRY_POINT_GROUP", "FORMATS", "MAX_DOCUMENT_BYTES",
           "MAX_LINE_BYTES", "MAX_REJECTED", "PART_ENTRIES", "REJECT_TEXT_CHARS", "SNIFF_BYTES", "WRITE_FORMATS",
           "ListEntry", "ListFormat", "ListFormatError", "ParsedList", "Rejected", "Retracted", "canonical_algorithm",
           "detect_format", "formats", "normalise_hash", "read_list", "read_list_parts", "register_format",
           "write_list", "write_rejects"]

ENTRY_POINT_GROUP = "hashmatch.list_formats"


@dataclass(frozen=True)
class ListFormat:
    """One list format behind the protocol read_list uses.

    `parser(builder, reader)` makes an object with feed(block) and finish(): it gets the
    file in chunks of whole lines (reader.py's _Block) and hands rows to builder.add;
    or `read_document(builder, path, handle, max_document_bytes)` reads a whole-document
    format. `sniff(sample_text, extension)` says whether a file's first bytes are this
    format (plug-ins; the built-in formats are told apart by detect_format itself)."""

    name: str
    parser: Callable[[Any, Any], Any] | None = None
    read_document: Callable[[Any, str, Any, int], None] | None = None
    sniff: Callable[[str, str], bool] | None = None
    #: Rows stand alone (no row retracts another or merges into another's signal), so
    #: read_list_parts may hand the list over in parts.
    streams: bool = False


_BUILTIN_FORMATS = (
    ListFormat("text", parser=_TextParser, streams=True),
    ListFormat("csv", parser=lambda builder, reader: _DelimitedParser(builder, reader, ","), streams=True),
    ListFormat("tsv", parser=lambda builder, reader: _DelimitedParser(builder, reader, "\t"), streams=True),
    ListFormat("jsonl", parser=_JsonlParser),
    ListFormat("tx-csv", parser=lambda builder, reader: TxCsvParser(builder, reader, ",")),
    ListFormat("tat-json", read_document=_parse_tat),
    ListFormat("vpdq-txt", read_document=_parse_vpdq_txt),
)
_log = logging.getLogger(__name__)
_lock = threading.Lock()
FORMAT_REGISTRY: dict[str, ListFormat] = {f.name: f for f in _BUILTIN_FORMATS}
_plugins_loaded = False


def register_format(list_format: ListFormat) -> ListFormat:
    """Add a list format (plug-ins do this through their entry point)."""
    if not isinstance(list_format, ListFormat) or not list_format.name:
        raise ConfigurationError(f"{list_format!r} is not a hashmatch ListFormat")
    if (list_format.parser is None) == (list_format.read_document is None):
        raise ConfigurationError(f"list format {list_format.name}: give a parser or a read_document, not both")
    with _lock:
        if list_format.name in FORMAT_REGISTRY and FORMAT_REGISTRY[list_format.name] is not list_format:
            raise ConfigurationError(f"a list format named {list_format.name!r} is already registered")
        FORMAT_REGISTRY[list_format.name] = list_format
    return list_format


def _load_plugins() -> None:
    global _plugins_loaded
    with _lock:
        if _plugins_loaded:
            return
        _plugins_loaded = True
        from importlib.metadata import entry_points  # only when a list is read: its scan costs ~15 ms

        points = list(entry_points(group=ENTRY_POINT_GROUP))
    for point in points:
        try:
            loaded = point.load()
            register_format(loaded() if callable(loaded) and not isinstance(loaded, ListFormat) else loaded)
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not take list reading down
            _log.warning("list format plug-in %s (%s) not loaded: %s", point.name, point.value, exc)


def formats() -> tuple[str, ...]:
    """Every format read_list reads: the built-in FORMATS, then plug-ins'."""
    _load_plugins()
    return tuple(FORMAT_REGISTRY)


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
    _load_plugins()
    for plugin in FORMAT_REGISTRY.values():
        if plugin.sniff is not None and plugin.sniff(text, ext):
            return plugin.name
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
    [whole] = _read(path, format, algorithm, category, skip_invalid, max_line_bytes, max_document_bytes,
                    max_rejected, None)
    return whole


def read_list_parts(path: str | os.PathLike, *, part_entries: int = PART_ENTRIES, format: str | None = None,
                    algorithm: str | None = None, category: str | None = None, skip_invalid: bool = False,
                    max_line_bytes: int = MAX_LINE_BYTES, max_document_bytes: int = MAX_DOCUMENT_BYTES,
                    max_rejected: int = MAX_REJECTED) -> Iterator[ParsedList]:
    """read_list in parts of about `part_entries` entries, so a list of 100M entries is
    never held whole (Store.import_list takes the parts). Only formats whose rows stand
    alone are split (text, CSV, TSV: ListFormat.streams); any other list is one part.
    Each part carries its own rejections and merge count. A line repeating a line of an
    earlier part exactly is not merged into it (both entries are kept: each matches and
    carries its line's metadata); within a part, and in a list of one part, everything is
    as read_list does it. Errors are raised when the part holding them is read."""
    if isinstance(part_entries, bool) or not isinstance(part_entries, int) or part_entries < 1:
        raise ConfigurationError("part_entries must be a positive int")
    return _read(path, format, algorithm, category, skip_invalid, max_line_bytes, max_document_bytes,
                 max_rejected, part_entries)


def _read(path: str | os.PathLike, format: str | None, algorithm: str | None, category: str | None,
          skip_invalid: bool, max_line_bytes: int, max_document_bytes: int, max_rejected: int,
          part_entries: int | None) -> Iterator[ParsedList]:
    name = os.fspath(path)
    fmt = detect_format(name) if format is None else format.strip().lower()
    if fmt not in formats():
        raise ConfigurationError(f"unknown list format {format!r}; choose from {', '.join(formats())}")
    list_format = FORMAT_REGISTRY[fmt]
    default_alg = canonical_algorithm(algorithm) if algorithm else None
    if max_line_bytes < 1:
        raise ConfigurationError("max_line_bytes must be at least 1")
    builder = _Builder(str(name), fmt, skip_invalid, default_alg, category, max_line_bytes, max_rejected)
    if not list_format.streams:
        part_entries = None
    return _parts(name, list_format, builder, max_line_bytes, max_document_bytes, part_entries)


def _parts(name: str, list_format: ListFormat, builder: _Builder, max_line_bytes: int, max_document_bytes: int,
           part_entries: int | None) -> Iterator[ParsedList]:
    with _open(name) as handle:
        if list_format.read_document is not None:
            list_format.read_document(builder, str(name), handle, max_document_bytes)
            builder.check()
            yield builder.finish()
            return
        assert list_format.parser is not None
        reader = _Reader(handle, str(name), max_line_bytes, CHUNK_BYTES)
        parser = list_format.parser(builder, reader)
        for item in reader:
            if isinstance(item, _LongLine):
                builder.reject(item.line, f"line longer than {max_line_bytes} bytes", item.head)
            else:
                parser.feed(item)
            builder.check()
            if part_entries is not None and len(builder.hashes) >= part_entries:
                yield builder.take_part()
        parser.finish()
    yield builder.finish()
