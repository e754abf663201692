"""Values in lists: algorithm names (any signal type's name or alias, plug-ins included),
hashes normalised to lowercase hex (each type's own spellings too: PDQ in base64),
dates, tags, ids, and the JSON details hostile files need (over-long integers, lone
surrogates, NUL). A per-entry problem is a _Bad, which becomes a rejection or an error."""
from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
from datetime import datetime
from typing import Any, Sequence, cast

import numpy as np

from hashmatch import signals
from hashmatch.errors import ConfigurationError
from hashmatch.lists.schema import _HEXDIGITS, _TAG_SPLIT, REJECT_TEXT_CHARS
from hashmatch.signals.base import SignalType


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
    signal = signals.find(raw.strip())
    found = signal.name if signal is not None else None
    if found is None:
        shown = raw.strip()[:40]
        raise _Bad(f"unknown algorithm {shown!r} (supported: {', '.join(signals.names())})")
    return found


def normalise_hash(algorithm: str, value: str) -> str:
    """One hash -> lowercase hex of the right length (PDQ also from base64);
    ConfigurationError with the reason otherwise."""
    if signals.find(algorithm) is None:
        raise ConfigurationError(f"unknown algorithm {algorithm!r}")
    try:
        return _normalise_one(signals.get(algorithm).name, value)
    except _Bad as exc:
        raise ConfigurationError(exc.reason) from None


def _normalise_one(algorithm: str, value: str) -> str:
    signal = signals.get(algorithm)
    text = value.strip()
    if signal.variable:  # not hex at all (vPDQ: a list of frames): the type's own parser
        if not text:
            raise _Bad(f"empty {algorithm} hash")
        try:
            return signal.parse(text)
        except ValueError as exc:
            raise _Bad(str(exc)) from None
    want = signal.hex_length
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
    other_spelling = _reads_other_spellings(signal)  # e.g. PDQ in base64
    if other_spelling:
        try:
            return signal.parse(text)
        except ValueError as exc:
            if not str(exc).startswith(("wrong length", "non-hex")):  # the type's own reason
                raise _Bad(str(exc)) from None
    if len(text) != want:
        raise _Bad(f"wrong length: {algorithm} hashes have {want} hex digits, this one has "
                   f"{len(text)} characters (non-hex character {text[bad]!r} at position {bad + 1})")
    raise _Bad(f"non-hex character {text[bad]!r} at position {bad + 1} of the {algorithm} hash")


def _normalise_bulk(algorithm: str, values: list[str]) -> tuple[list[str], bytes] | None:
    """The whole column at once: (lowercase values, their bytes), or None when some
    value needs the per-entry path (an error to locate, whitespace, base64)."""
    signal = signals.get(algorithm)
    want = signal.hex_length
    if signal.variable or not values or set(map(len, values)) != {want}:
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
        try:
            raw = bytes.fromhex("".join([h[:16] if h else "0" * 16 for h in hashes]))
        except ValueError:  # a variable type's value (vPDQ's JSON): a digest of the text instead
            raw = b"".join(hashlib.blake2b(h.encode(), digest_size=8).digest() if not _is_hex16(h)
                           else bytes.fromhex(h[:16]) for h in hashes)
        return np.frombuffer(raw, np.uint64).copy()
    rows = np.frombuffer(raw, np.uint8).reshape(len(hashes), -1)
    return np.ascontiguousarray(rows[:, :8]).view(np.uint64).ravel()


def _is_hex16(value: str) -> bool:
    return len(value) >= 16 and all(c in _HEXDIGITS for c in value[:16])


def _strip_ids(ids: Sequence[str | None]) -> list[str | None]:
    """Entry ids stripped, blank ones None; C-level map when the column holds only strings."""
    if None in ids:
        return [(s.strip() or None) if s else None for s in ids]
    out: list[str | None] = list(map(str.strip, cast("Sequence[str]", ids)))  # no None: checked above
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
    return _hash_like(signals.names()).fullmatch(value.strip().strip('"')) is not None


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




def _reads_other_spellings(signal: SignalType) -> bool:
    """Whether the type parses more than plain hex (it overrides SignalType.parse)."""
    return type(signal).parse is not SignalType.parse


@functools.lru_cache(maxsize=8)
def _hash_like(names: tuple[str, ...]) -> re.Pattern[str]:
    lengths = sorted({signals.get(n).hex_length for n in names})
    return re.compile("|".join(f"[0-9a-fA-F]{{{n}}}" for n in lengths) + r"|[A-Za-z0-9+/_-]{43}=?")
