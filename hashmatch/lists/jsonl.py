"""The `jsonl` format (one JSON object a line) and the JSON entry reading it shares
with tat-json: keys found by name, types checked, hostile values (deep nesting,
over-long integers, lone surrogates, NUL) rejected per entry."""
from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from hashmatch.lists.schema import COLUMN_NAMES
from hashmatch.lists.values import (
    _BOUNDED_DECODER,
    _DECODER,
    _SUSPECT_ESCAPE,
    _Bad,
    _checked_text,
    _HugeNumber,
    _json_error,
    _json_type,
    _split_tags,
)

if TYPE_CHECKING:  # pragma: no cover
    from hashmatch.lists.builder import _Builder
    from hashmatch.lists.reader import _Block, _Reader

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


