"""Writing lists (text, csv, jsonl) that read_list reads back to the same entries, and
reject reports; atomic, mode 0600."""
from __future__ import annotations

import csv
import json
import os
import sys
from typing import Any, Callable, Iterable, Sequence

from hashmatch.base.files import atomic_write
from hashmatch.errors import ConfigurationError
from hashmatch.lists.schema import CSV_HEADER, WRITE_FORMATS, Rejected
from hashmatch.lists.values import _Bad, _check_date, _normalise_bulk, _normalise_one, canonical_algorithm


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
    if fmt == "text" and any(h.startswith("[") for h in norm):
        raise ConfigurationError("text lists hold fixed-length hashes; write vPDQ entries as csv or jsonl")
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
    if any(h.startswith("[") for h in hashes):  # a variable type's value (vPDQ's JSON list) needs quoting
        probe += ","
    if any(c in probe for c in ',"\n\r'):  # some field needs quoting: let the csv module do it
        csv.writer(handle, lineterminator="\n").writerows(zip(algs, hashes, *columns))
    else:
        handle.write("\n".join(map(",".join, zip(algs, hashes, *columns))) + "\n")


def _write_jsonl_rows(handle, algs, hashes, cats, ids, dates, tags) -> None:
    enc = json.encoder.encode_basestring  # type: ignore[attr-defined]  # JSON string, non-ASCII kept
    parts = [
        [f'{{"algorithm": "{a}", "hash": {enc(h)}' if h.startswith("[") else f'{{"algorithm": "{a}", "hash": "{h}"'
         for a, h in zip(algs, hashes)],
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
