"""Importing a list into a store generation: the change a Store.import_list makes, from a
parsed list or from its parts (lists.read_list_parts), so a list of 100M entries streams
through in parts of a few million instead of being held whole; and the bulk SQL it uses
(codes decoded in one bytes.fromhex per algorithm and part, rows inserted in multi-row
statements with list-wide values as literals)."""
from __future__ import annotations

import json
import sqlite3
from itertools import chain, islice, repeat
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from hashmatch import signals
from hashmatch.errors import StoreError
from hashmatch.store import overlay as store_overlay
from hashmatch.store.files import CodeArray, code_bytes, entry_codes
from hashmatch.store.manifest import now as _now
from hashmatch.store.writer import _Delta, _ids, _record_removals

#: Rows per INSERT statement in a bulk import (at most 7 bound values a row: far below
#: SQLite's 32,766 variables per statement).
BULK_ROWS = 250
#: Entries from which the list-name index is dropped for the import and rebuilt after it.
REBUILD_INDEX_ROWS = 100_000


def import_change(parsed: Any, *, name: str, version: str, store_pdq_mode: str, pdq_mode: str | None,
                  source_sha256: str | None) -> tuple[Callable[[sqlite3.Connection], _Delta], int | None]:
    """The change importing list `name` at `version` (every entry of an earlier version
    replaced) and about how many rows it touches (None: unknown, a list in parts).

    `parsed`: a lists.ParsedList, or an iterable of them (the parts of one list, imported
    as one version in one generation). The first part's retractions remove the earlier
    version's entries as retracted by the source (audited so); a later part's retractions
    remove the entries listed before them. A part made with another PDQ convention than
    the store's, or an unknown algorithm, aborts the import (nothing is committed)."""
    parts: Iterator[Any]
    if hasattr(parsed, "hashes"):
        parts, first, whole = iter(()), parsed, True
    else:
        parts = iter(parsed)
        first = next(parts, None)
        if first is None:
            raise StoreError("no list parts given")
        second = next(parts, None)
        whole = second is None
        parts = iter(()) if whole else chain([second], parts)

    def check(part: Any) -> None:
        if pdq_mode is not None and pdq_mode != store_pdq_mode and "pdq" in set(part.algorithms):
            raise StoreError(f"this store holds PDQ made with the {store_pdq_mode!r} convention; "
                             f"the list was made with {pdq_mode!r}")

    check(first)
    first_added = _group_by_algorithm(first)  # malformed input fails here, before the writer starts
    first_rows = sum(len(group[0]) for group in first_added.values())

    def apply(db: sqlite3.Connection) -> _Delta:
        now = _now()
        gone = _ids(db, "SELECT id FROM entries WHERE list_name = ?", (name,))
        for item in first.retracted:  # the source says these are gone (lists.Retracted): audit them as such first
            _retract(db, name, item, now)
        _record_removals(db, "SELECT id FROM entries WHERE list_name = ?", (name,), now,
                         f"replaced by version {version}")
        db.execute("DELETE FROM entries WHERE list_name = ?", (name,))
        db.execute("INSERT OR REPLACE INTO lists VALUES (?, ?, ?, ?, ?, ?)",
                   (name, version, getattr(first, "format", None), source_sha256, now, store_pdq_mode))
        # Explicit ids above every id ever used (removed ones included), so an id in the
        # removal audit never names a later entry.
        next_id = 1 + store_overlay.max_id(db)
        pieces: dict[str, list[CodeArray]] = {}
        retracted_later = False
        bulk = not whole or first_rows >= REBUILD_INDEX_ROWS
        if bulk:  # maintained row by row the index costs more than one rebuild at the end
            db.execute("DROP INDEX IF EXISTS entries_by_list")
        for part, added in chain([(first, first_added)], ((p, None) for p in parts)):
            if added is None:
                check(part)
                added = _group_by_algorithm(part)
                for item in part.retracted:  # withdrawn after an earlier part listed it
                    retracted_later = True
                    db.execute(f"DELETE FROM entries WHERE {_LISTED}", _listed_key(name, item))
            for algorithm, (codes, columns) in added.items():
                ids = np.arange(next_id, next_id + len(codes), dtype=np.int64)
                next_id += len(codes)
                _bulk_insert(db, name, algorithm, ids, codes, columns)
                pieces.setdefault(algorithm, []).append(
                    entry_codes(algorithm, ids, codes) if isinstance(codes, list) else CodeArray(codes, ids))
            del added
        if bulk:
            db.execute("CREATE INDEX entries_by_list ON entries (list_name)")
        delta = _Delta(gone=gone)
        for algorithm, arrays in pieces.items():
            delta.added[algorithm] = arrays[0] if len(arrays) == 1 else CodeArray(
                np.concatenate([a.codes for a in arrays]), np.concatenate([a.ids for a in arrays]))
            arrays.clear()  # the parts' copies go as soon as the whole is made
        if retracted_later:  # rows a later part's retraction removed are not active codes
            _drop_deleted(db, delta, name)
        return delta

    return apply, first_rows if whole else None


#: The entries of one list holding one hash (a retraction's target), and its parameters.
_LISTED = "list_name = ? AND algorithm = ? AND hash = ?"


def _listed_key(name: str, item: Any) -> tuple[str, str, bytes]:
    return name, item.algorithm, signals.get(item.algorithm).to_blob(item.hash)


def _retract(db: sqlite3.Connection, name: str, item: Any, now: str) -> None:
    """An earlier version's entries the source retracted: audited as such, then deleted."""
    key = _listed_key(name, item)
    _record_removals(db, f"SELECT id FROM entries WHERE {_LISTED}", key, now,
                     f"retracted by the source ({item.reason})")
    db.execute(f"DELETE FROM entries WHERE {_LISTED}", key)


def _drop_deleted(db: sqlite3.Connection, delta: _Delta, name: str) -> None:
    """Remove from the added arrays the entries a later part's retraction deleted."""
    for algorithm, array in list(delta.added.items()):
        present = _ids(db, "SELECT id FROM entries WHERE list_name = ? AND algorithm = ?", (name, algorithm))
        if len(present) == len(np.unique(array.ids)):
            continue
        keep = np.isin(array.ids, present)
        delta.added[algorithm] = CodeArray(np.ascontiguousarray(array.codes[keep]), array.ids[keep])


def _group_by_algorithm(parsed: Any) -> dict[str, tuple[np.ndarray | list[bytes], tuple[list, ...]]]:
    """Per algorithm: the codes (n, nbytes) uint8, decoded in one bytes.fromhex (for a
    variable type: the list of stored blobs), and the SQLite columns (category, entry id,
    date, tags json) in entry order."""
    algorithms = list(parsed.algorithms)
    unknown = {a for a in set(algorithms) if signals.find(a) is None}  # per name, not per row (10M rows: 7 s)
    if unknown:
        raise StoreError(f"unknown algorithms {sorted(unknown)}")
    tag_json: dict[tuple, str | None] = {}

    def tags_json(tags) -> str | None:
        key = tuple(tags or ())
        if key not in tag_json:
            tag_json[key] = json.dumps(list(key)) if key else None
        return tag_json[key]

    grouped: dict[str, tuple[np.ndarray | list[bytes], tuple[list, ...]]] = {}
    for algorithm in sorted(set(algorithms)):
        # One algorithm: every row, no index list.
        rows = None if len(set(algorithms)) == 1 else [i for i, a in enumerate(algorithms) if a == algorithm]

        def pick(column: Sequence[Any], rows: list[int] | None = rows) -> list[Any]:
            return list(column) if rows is None else [column[i] for i in rows]

        codes: np.ndarray | list[bytes]
        signal = signals.get(algorithm)
        if signal.variable:  # one blob per entry (vPDQ: the packed frames)
            try:
                codes = [signal.to_blob(value) for value in pick(parsed.hashes)]
            except ValueError as exc:
                raise StoreError(f"{algorithm}: {exc}") from exc
        else:
            try:
                codes = np.frombuffer(bytes.fromhex("".join(pick(parsed.hashes))), np.uint8)
            except ValueError as exc:
                raise StoreError(f"{algorithm}: a hash is not hex") from exc
            codes = codes.reshape(-1, code_bytes(algorithm))
        columns = (pick(parsed.categories), pick(parsed.entry_ids), pick(parsed.dates),
                   _tags_column(pick(parsed.tags), tags_json))
        if len(codes) != len(columns[0]):
            raise StoreError(f"{algorithm}: a hash has the wrong length")
        grouped[algorithm] = (codes, columns)
    return grouped


def _sql_literal(value: str | None) -> str | None:
    """value as an SQLite literal, or None where it must be bound (NUL characters)."""
    if value is None:
        return "NULL"
    if "\x00" in value:
        return None
    return "'" + value.replace("'", "''") + "'"


def _bulk_insert(db: sqlite3.Connection, name: str, algorithm: str, ids: np.ndarray,
                 codes: np.ndarray | list[bytes], columns: tuple[list, ...]) -> None:
    """Insert one algorithm's rows of an import. Per-row cost is dominated by binding
    parameters, so a column holding one value for every row (a list-wide category, no
    dates, no tags) is written into the statement as a literal instead of bound per row:
    about a third faster on a 10M-row list. (import_change drops the list-name index
    around a large import: one rebuild costs less than maintaining it row by row.)"""
    names = ("category", "entry_id", "date_added", "tags")
    first = int(ids[0]) if len(ids) else 0  # ids are consecutive (np.arange): bind a range, not a list
    values = ["?", "?", _sql_literal(name) or "?", _sql_literal(algorithm) or "?"]
    blobs: Iterable[bytes]
    if isinstance(codes, list):
        blobs = codes
    else:
        # The blobs come from a C-level iterator (map over slices): a generator would cost
        # a Python frame per row, ~3 s at 10M.
        width, flat = codes.shape[1], codes.tobytes()
        blobs = map(flat.__getitem__, map(slice, range(0, len(flat), width), range(width, len(flat) + width, width)))
    bound: list[Iterable] = [range(first, first + len(ids)), blobs]
    if values[2] == "?":
        bound.append(repeat(name))
    if values[3] == "?":
        bound.append(repeat(algorithm))
    for column in columns:
        literal = _sql_literal(column[0]) if column and column.count(column[0]) == len(column) else None
        values.append(literal or "?")
        if literal is None:
            bound.append(column)
    head = f"INSERT INTO entries (id, hash, list_name, algorithm, {', '.join(names)}) VALUES "
    one = f"({', '.join(values)})"
    # BULK_ROWS rows per statement: one statement step per row costs ~40% more (measured:
    # 1M rows in 2.0 s one by one, 1.2 s in statements of 200-500 rows).
    rows = zip(*bound)
    whole, rest = divmod(len(ids), BULK_ROWS)
    db.executemany(head + ",".join([one] * BULK_ROWS),
                   (list(chain.from_iterable(islice(rows, BULK_ROWS))) for _ in range(whole)))
    if rest:
        db.execute(head + ",".join([one] * rest), list(chain.from_iterable(rows)))


def _tags_column(tags: list, to_json: Callable[[Any], str | None]) -> list[str | None]:
    """Tags as JSON per row; one conversion when every row has the same tags (the usual
    list-wide case), which _bulk_insert then writes as a literal."""
    if tags and tags.count(tags[0]) == len(tags):
        return [to_json(tags[0])] * len(tags)
    return [to_json(t) for t in tags]


def keyed_change(name: str, upserts: Any, deleted: Sequence[str], *, version: str, source_format: str,
                 store_pdq_mode: str, sources: Callable[[dict[str, Any]], dict[str, Any]] | None,
                 stats: dict[str, int] | None = None
                 ) -> tuple[Callable[[sqlite3.Connection], _Delta], tuple[str, tuple, int] | None]:
    """The change an exchange batch makes to list `name` (created if new): every entry whose
    source key (its entry id) is deleted or upserted is removed, audited as deleted or
    replaced by the source, and the upserts' entries are inserted; the list's version
    becomes `version` and the store's sources `sources(old sources)` (the fetch's
    checkpoint), in the same generation. Also the overlay scope of the keys it touches
    (O(change)). `stats` gets, once applied, how many upserted keys were new to the list
    (added), how many replaced what it held (updated), and how many deleted keys it held."""
    keys = sorted({*deleted, *(k for k in getattr(upserts, "entry_ids", ()) if k is not None)})
    if upserts is not None and any(k is None for k in upserts.entry_ids):
        raise StoreError("every entry an exchange brings needs its source key")
    added_groups = _group_by_algorithm(upserts) if upserts is not None and len(upserts) else {}
    deleted_set = set(deleted)

    def apply(db: sqlite3.Connection) -> _Delta:
        now = _now()
        # Source keys are looked up batch after batch: without this index every lookup
        # scans the list (quadratic over a first fetch). Kept by every later generation.
        db.execute("CREATE INDEX IF NOT EXISTS entries_by_key ON entries (list_name, entry_id)")
        gone_parts = []
        held: set[str] = set()  # keys the list holds before the change
        for start in range(0, len(keys), _KEY_CHUNK):
            chunk = keys[start:start + _KEY_CHUNK]
            marks = ",".join("?" * len(chunk))
            held.update(row[0] for row in db.execute(
                f"SELECT DISTINCT entry_id FROM entries WHERE list_name = ? AND entry_id IN ({marks})", (name, *chunk)))
            for reason, wanted in (("deleted by the source", [k for k in chunk if k in deleted_set]),
                                   ("replaced by the source", [k for k in chunk if k not in deleted_set])):
                if not wanted:
                    continue
                where = f"list_name = ? AND entry_id IN ({','.join('?' * len(wanted))})"
                gone_parts.append(_ids(db, f"SELECT id FROM entries WHERE {where}", (name, *wanted)))
                _record_removals(db, f"SELECT id FROM entries WHERE {where}", (name, *wanted), now, reason)
            db.execute(f"DELETE FROM entries WHERE list_name = ? AND entry_id IN ({marks})", (name, *chunk))
        db.execute("INSERT OR IGNORE INTO lists VALUES (?, ?, ?, ?, ?, ?)",
                   (name, version, source_format, None, now, store_pdq_mode))
        db.execute("UPDATE lists SET version = ?, imported_at = ? WHERE name = ?", (version, now, name))
        next_id = 1 + store_overlay.max_id(db)
        delta = _Delta(gone=np.concatenate(gone_parts) if gone_parts else np.zeros(0, np.int64), sources=sources)
        for algorithm, (codes, columns) in added_groups.items():
            ids = np.arange(next_id, next_id + len(codes), dtype=np.int64)
            next_id += len(codes)
            _bulk_insert(db, name, algorithm, ids, codes, columns)
            delta.added[algorithm] = entry_codes(algorithm, ids, codes) if isinstance(codes, list) \
                else CodeArray(codes, ids)
        if stats is not None:
            upserted = {k for k in keys if k not in deleted_set}
            stats.update(added=len(upserted - held), updated=len(upserted & held), deleted=len(deleted_set & held))
        return delta

    rows = 2 * len(keys) + (len(upserts) if upserts is not None else 0)
    if len(keys) > _OVERLAY_KEYS:  # too large for an overlay anyway: a full generation
        return apply, None
    if keys:
        return apply, (f"list_name = ? AND entry_id IN ({','.join('?' * len(keys))})", (name, *keys), rows)
    return apply, ("0", (), rows)


_KEY_CHUNK = 500  # source keys per SQL statement (well under SQLite's bound-parameter limit)
_OVERLAY_KEYS = 10_000  # keys of a batch an overlay scope names (one statement pulls their rows)
