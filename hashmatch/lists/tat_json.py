"""The `tat-json` format: Tech Against Terrorism's hash list v2, one JSON document
holding a list of entries (or an object holding one); `deleted` entries are retractions."""
from __future__ import annotations

import codecs
import json
from typing import TYPE_CHECKING, Any

from hashmatch.errors import ListFormatError
from hashmatch.lists.jsonl import _JsonEntries
from hashmatch.lists.schema import _JSON_LIST_KEYS, _WS, REJECT_TEXT_CHARS
from hashmatch.lists.values import _BOUNDED_DECODER, _DECODER, _SUSPECT_ESCAPE, _printable

if TYPE_CHECKING:  # pragma: no cover
    from hashmatch.lists.builder import _Builder

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

    pos = _skip_ws(text, 0)
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
    rest = _skip_ws(text, end)
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
    pos = _skip_ws(text, start + 1)
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
        pos = _skip_ws(text, end)
        if text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
    entries.add(objects, linenos, texts, numbers, check_text)


def _undecodable(text: str, pos: int, decoder: json.JSONDecoder, depth: int = 0) -> tuple[int, int | None]:
    """Where, in the JSON array or object at `pos`, the value `decoder` cannot decode
    (nested too deeply) starts, looking two levels down: (position, entry number) of
    the first such element of an array of entries, else (position, None)."""
    if depth >= 2 or text[pos] not in "[{":
        return pos, None
    array = text[pos] == "["
    p = _skip_ws(text, pos + 1)
    number = 0
    try:
        while text[p] not in "]}":
            if not array:  # a key and its ':'
                p = _skip_ws(text, decoder.raw_decode(text, p)[1]) + 1
                p = _skip_ws(text, p)
            number += 1
            try:
                end = decoder.raw_decode(text, p)[1]
            except (ValueError, RecursionError):
                inner, inner_number = _undecodable(text, p, decoder, depth + 1)
                if inner_number is not None:
                    return inner, inner_number
                return (p, number) if array else (inner, None)
            p = _skip_ws(text, end)
            if text[p] == ",":
                p = _skip_ws(text, p + 1)
    except (ValueError, RecursionError, IndexError):
        pass
    return pos, None


def _find_entry_list(text: str, pos: int, decoder: json.JSONDecoder, path: str, malformed) -> tuple[int, int]:
    """In a top-level object, the start of the array holding the entries, and the end
    of the object."""
    arrays: dict[str, tuple[int, int, Any]] = {}
    pos = _skip_ws(text, pos + 1)
    try:
        while text[pos] != "}":
            key, pos = decoder.raw_decode(text, pos)
            pos = _skip_ws(text, pos)
            if text[pos] != ":" or not isinstance(key, str):
                raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
            pos = _skip_ws(text, pos + 1)
            value, end = decoder.raw_decode(text, pos)
            if isinstance(value, list) and all(isinstance(v, dict) for v in value):
                arrays[key] = (pos, end, value)
            pos = _skip_ws(text, end)
            if text[pos] == ",":
                pos = _skip_ws(text, pos + 1)
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
    for _name, (start, _, value) in arrays.items():
        if value:
            return start, end_of_object
    raise ListFormatError(path, None, "no list of entries found in the JSON object (looked for "
                                      f"{', '.join(_JSON_LIST_KEYS)}); keys: {_printable(', '.join(arrays)[:200])}")


def _skip_ws(text: str, pos: int) -> int:
    """The position after the JSON whitespace at `pos` (none: `pos` itself)."""
    match = _WS.match(text, pos)
    assert match is not None  # the pattern matches the empty string
    return match.end()
