"""Collecting entries: validating rows chunk by chunk in bulk (algorithms, hashes,
categories, ids, dates, tags), rejections or errors with file and line, retractions,
merging identical repeated lines, and the ParsedList at the end."""
from __future__ import annotations

import sys
from itertools import compress
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from hashmatch.errors import ListFormatError
from hashmatch.lists.model import ParsedList
from hashmatch.lists.schema import MAX_REJECTED, Rejected, Retracted
from hashmatch.lists.values import (
    _Bad,
    _canonical_algorithm,
    _check_date,
    _clip,
    _normalise_bulk,
    _normalise_one,
    _prefix_keys,
    _split_tags,
    _strip_ids,
)


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
        self.taken = self.rejected_total = 0  # entries and rejections of the parts taken (take_part)
        # tx-csv: rows of one signal are one entry (one row per collab listing it).
        self.merge_signals = fmt == "tx-csv"

    def fail(self, line: int | None, reason: str) -> ListFormatError:
        return ListFormatError(self.path, line, reason)

    def reject(self, line: int, reason: str, text: str) -> None:
        self.rejected.append(Rejected(int(line), reason, _clip(text)))
        if len(self.rejected) + self.rejected_total > self.max_rejected and self.skip_invalid:
            self.rejected.sort(key=lambda r: r.line)
            raise ListFormatError(self.path, int(line), f"more than {self.max_rejected} entries rejected, giving up "
                                                        "(is the format or the algorithm right?)", self.rejected)

    def check(self) -> None:
        """All-or-nothing mode: raise the earliest rejection found so far."""
        if self.rejected and not self.skip_invalid:
            first = min(self.rejected, key=lambda r: r.line)
            raise self.fail(first.line, first.reason)

    def add(self, linenos: np.ndarray, hashes: list[str], texts: Callable[[int], str], *,
            algs: str | Sequence[str | None] | None = None, cats: Sequence[str | None] | None = None,
            ids: Sequence[str | None] | None = None, dates: Sequence[str | None] | None = None,
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
            for spelling in set(algs):
                if spelling is None or not spelling.strip():
                    mapping[spelling] = self._default_algorithm(int(linenos[algs.index(spelling)]))
                else:
                    try:
                        mapping[spelling] = sys.intern(_canonical_algorithm(spelling))
                    except _Bad as exc:
                        mapping[spelling] = exc
            names = set(mapping.values())
            if len(names) == 1 and isinstance(next(iter(names)), str):
                single = next(iter(names))  # type: ignore[assignment]
            else:
                per_row = []
                for i, spelling in enumerate(algs):
                    got = mapping[spelling]
                    if isinstance(got, _Bad):
                        bad[i] = got.reason
                        per_row.append(None)
                    else:
                        per_row.append(got)

        # Hashes, one algorithm at a time, in bulk where possible.
        raw: bytes | None = None
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
                self.retracted.append(Retracted(int(linenos[i]), alg_col[i], out[i], id_col[i], str(retract[i])))
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
    def _map_unique(values: Sequence[Any], fn: Callable[[Any], Any], bad: dict[int, str]) -> list:
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
        """The last (or only) part; ListFormatError if the whole list held nothing valid."""
        part = self.take_part()
        if not self.taken and not len(part.retracted):
            if self.rejected_total:
                raise ListFormatError(self.path, None, f"no valid entries: all {self.rejected_total} were rejected",
                                      part.rejected)
            raise self.fail(None, "no entries (the list is empty)")
        return part

    def take_part(self) -> ParsedList:
        """The entries collected so far, merged and checked as a list of their own, with
        their rejections; the columns start afresh (read_list_parts)."""
        lines = np.concatenate(self.lines) if self.lines else np.zeros(0, np.int64)
        keys = np.concatenate(self.keys) if self.keys else np.zeros(0, np.uint64)
        self.keys, self.lines = [], []
        lines = self._compact(self._repeats(keys), lines)
        if self.retracted:
            lines = self._compact(self._retraction_conflicts(lines), lines)
        self.rejected.sort(key=lambda r: r.line)
        part = ParsedList(self.format, self.path, self.algorithms, self.hashes, self.categories, self.entry_ids,
                          self.dates, self.tags, lines, self.rejected, self.retracted, self.merged)
        self.taken += len(part)
        self.rejected_total += len(part.rejected)
        self.algorithms, self.hashes, self.categories, self.entry_ids, self.dates, self.tags = [], [], [], [], [], []
        self.rejected, self.retracted, self.merged = [], [], 0
        return part

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
        others: list[list[Any]] = [self.algorithms] if self.merge_signals else \
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


