"""The index store: one directory holding hash lists ready for matching.

    STORE/manifest.json              format version, generation, PDQ convention, counts,
                                     lists, and the sha256 of every data file
    STORE/entries.<gen>.sqlite       entry metadata (list, version, category, source id,
                                     date, tags, disabled state) and the removal audit
    STORE/<alg>.<gen>.codes          active (not disabled) codes of one algorithm, raw
                                     uint8 rows of the signal type's bits / 8 bytes
    STORE/<alg>.<gen>.ids            int64 entry ids aligned with the codes
    STORE/<alg>.<gen>.mih-dirs       the multi-index tables of a perceptual algorithm with
    STORE/<alg>.<gen>.mih-packed     8,192+ entries (engines.mih_tables), so opening skips the build

Every change writes a new *generation*: new files (temp file, fsync, rename, mode 0600),
then the manifest is replaced last, which is the commit point. Files of a generation
never change after they are written, so an open Store keeps matching against its own
generation until it is explicitly reloaded, and a reader never sees half an update.
Opening verifies every file against the manifest's sha256 (FAISS and numpy would happily
match against silently corrupted bytes) and refuses a store that fails. No pickle.

Concurrent openers: Store.open reads the manifest, then every file it lists (once open, a
Store needs no file by name). It holds flock(LOCK_SH) on the store folder itself (no lock
file, so a read-only mount is covered too) from before reading the manifest until its
database is open. After committing, a writer tries flock(LOCK_EX | LOCK_NB) on the folder
for up to CLEANUP_WAIT seconds and removes older generations' files only once it has it;
else they stay until a later change. Where the folder cannot be locked at all (some network
file systems) writers remove them anyway and an opener that finds a file missing or
different starts over if the manifest has moved meanwhile (at most OPEN_ATTEMPTS times), so
an integrity error means real damage. Writers are serialised by flock(LOCK_EX) on STORE/.lock.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from itertools import chain, islice, repeat
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .errors import StoreError, StoreIntegrityError
from .files import append_jsonl, atomic_write, make_private_dirs
from .manifest import Manifest, check_not_rolled_back, read_high_water, write_high_water
from .manifest import now as _now
from .engines import AUTO_MIH_MIN_ENTRIES, mih_tables
from . import signals
from .signals.pdq import PDQ_MODES

#: Rows per INSERT statement in a bulk import (at most 7 bound values a row: far below
#: SQLite's 32,766 variables per statement).
BULK_ROWS = 250
MANIFEST = "manifest.json"
LOCK = ".lock"
AUDIT_LOG = "audit.jsonl"  # one line per change (and per scan against the store)
CLEANUP_WAIT = 2.0  # seconds a writer tries to get the openers' lock (module docstring)
OPEN_ATTEMPTS = 10  # times Store.open reads a manifest that moved under it before giving up

SCHEMA = """
CREATE TABLE lists (
    name TEXT PRIMARY KEY, version TEXT NOT NULL, source_format TEXT, source_sha256 TEXT,
    imported_at TEXT NOT NULL, pdq_mode TEXT
);
CREATE TABLE entries (
    id INTEGER PRIMARY KEY, list_name TEXT NOT NULL, algorithm TEXT NOT NULL, hash BLOB NOT NULL,
    category TEXT, entry_id TEXT, date_added TEXT, tags TEXT,
    disabled INTEGER NOT NULL DEFAULT 0, disabled_reason TEXT, disabled_at TEXT
);
CREATE INDEX entries_by_list ON entries (list_name);
CREATE INDEX entries_disabled ON entries (algorithm) WHERE disabled = 1;
CREATE TABLE removed (
    id INTEGER NOT NULL, list_name TEXT NOT NULL, list_version TEXT, algorithm TEXT NOT NULL,
    hash BLOB NOT NULL, entry_id TEXT, removed_at TEXT NOT NULL, reason TEXT
);
"""


def code_bytes(algorithm: str) -> int:
    return signals.get(algorithm).code_bytes


def _algorithms(*present: Iterable[str]) -> list[str]:
    """Every known signal type, then any other algorithm a store already holds."""
    names = list(signals.names())
    return names + sorted({a for group in present for a in group} - set(names))


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ListInfo:
    name: str
    version: str
    imported_at: str
    source_format: str | None
    entries: int
    disabled: int
    source_sha256: str | None = None  # of the file the list was imported from


@dataclass(frozen=True)
class EntryInfo:
    """One list entry's metadata, as a match reports it."""

    id: int
    algorithm: str
    hash: str
    list_name: str
    list_version: str
    category: str | None
    entry_id: str | None
    date_added: str | None
    tags: tuple[str, ...]
    disabled: bool
    disabled_reason: str | None = None


@dataclass
class CodeArray:
    """Active codes of one algorithm and the entry id of each row."""

    codes: np.ndarray  # (N, nbytes) uint8
    ids: np.ndarray  # (N,) int64
    mih: tuple[np.ndarray, np.ndarray] | None = None  # prebuilt multi-index tables (engines.mih_tables)

    @classmethod
    def empty(cls, algorithm: str) -> "CodeArray":
        return cls(np.zeros((0, code_bytes(algorithm)), np.uint8), np.zeros(0, np.int64))


class Store:
    """An opened, verified generation of a store directory. Thread-safe for readers."""

    def __init__(self, path: Path, manifest: Manifest, arrays: dict[str, CodeArray]):
        self.path = path
        self.manifest = manifest
        self.arrays = arrays
        # Opened now, not lazily: a writer may delete this generation's file once a newer
        # one is committed, and an open descriptor keeps it readable (POSIX). The file
        # never changes, so SQLite may treat it as immutable (no locks, no journal). One
        # connection shared under a lock: metadata is read only for hits.
        uri = (path / manifest.database).resolve().as_uri() + "?mode=ro&immutable=1"
        self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> "Store":
        """Open and verify the store at `path` (every file's sha256 against the manifest),
        holding the openers' lock (module docstring) so no writer removes the files meanwhile."""
        root = Path(path)
        with _folder_lock(root, exclusive=False):
            for _ in range(OPEN_ATTEMPTS - 1):
                text, manifest = _read_manifest(root)
                try:
                    return cls._load(root, manifest)
                except StoreIntegrityError:  # damage, unless a writer replaced and removed that generation
                    if _read_manifest(root)[0] == text:
                        raise
            return cls._load(root, _read_manifest(root)[1])

    @classmethod
    def _load(cls, root: Path, manifest: Manifest) -> Store:
        for name, meta in manifest.files.items():
            if name.endswith(".sqlite"):
                _verify_file(root / name, meta)
        arrays = {}
        for algorithm, meta in manifest.arrays.items():
            codes = _load_array(root, manifest, meta["codes"], np.uint8).reshape(-1, code_bytes(algorithm))
            ids = _load_array(root, manifest, meta["ids"], np.int64)
            mih = None
            if "mih" in meta:
                m = meta["mih"]
                mih = (_load_array(root, manifest, m["dirs"], np.uint32).reshape(m["tables"], -1),
                       _load_array(root, manifest, m["packed"], np.uint32).reshape(m["tables"], -1))
            arrays[algorithm] = CodeArray(codes, ids, mih)
        try:
            return cls(root, manifest, arrays)
        except sqlite3.Error as exc:  # e.g. removed since it was verified
            raise StoreIntegrityError(f"store file {manifest.database} cannot be opened: {exc}") from exc

    @classmethod
    def create(cls, path: str | os.PathLike, *, pdq_mode: str = "full") -> "Store":
        """Create an empty store (the folder is made 0700) and return it opened."""
        store = _create(Path(path), pdq_mode)
        if store is None:
            raise StoreError(f"{path} already holds a store")
        return store

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, *, pdq_mode: str = "full") -> "Store":
        """Open the store at `path`, creating it first if there is none (also when another
        process creates it at the same time: one creates, the others open)."""
        if (Path(path) / MANIFEST).exists():
            return cls.open(path)
        return _create(Path(path), pdq_mode) or cls.open(path)

    def reload(self) -> "Store":
        """The store's newest generation (self is unchanged: it is immutable)."""
        return Store.open(self.path)

    # -- reading ---------------------------------------------------------------------------
    @property
    def pdq_mode(self) -> str:
        return self.manifest.pdq_mode

    @property
    def generation(self) -> int:
        return self.manifest.generation

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def entries(self, ids: Sequence[int]) -> dict[int, EntryInfo]:
        """Metadata of the given entry ids."""
        result: dict[int, EntryInfo] = {}
        wanted = [int(i) for i in ids]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = self._query(
                "SELECT e.id, e.algorithm, e.hash, e.list_name, l.version, e.category, e.entry_id, e.date_added,"
                " e.tags, e.disabled, e.disabled_reason FROM entries e JOIN lists l ON l.name = e.list_name"
                f" WHERE e.id IN ({','.join('?' * len(chunk))})", chunk)
            for row in rows:
                result[row[0]] = _entry_info(row)
        return result

    def iter_entries(self, list_name: str | None = None, *, include_disabled: bool = True) -> Iterator[EntryInfo]:
        """Every entry (of one list), in id order, for export and audit."""
        sql = ("SELECT e.id, e.algorithm, e.hash, e.list_name, l.version, e.category, e.entry_id, e.date_added,"
               " e.tags, e.disabled, e.disabled_reason FROM entries e JOIN lists l ON l.name = e.list_name")
        clauses, params = [], []
        if list_name is not None:
            clauses.append("e.list_name = ?")
            params.append(list_name)
        if not include_disabled:
            clauses.append("e.disabled = 0")
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        # Paged by id so an export of millions never holds the lock (or all rows) at once.
        last = -1
        while True:
            page = self._query(sql + (" AND" if clauses else " WHERE") + " e.id > ? ORDER BY e.id LIMIT 10000",
                               [*params, last])
            if not page:
                return
            for row in page:
                yield _entry_info(row)
            last = page[-1][0]

    def export(self, path: str | os.PathLike, format: str = "csv", *, list_name: str | None = None,
               include_disabled: bool = False) -> int:
        """Write the entries (of one list; disabled ones only on request) with
        lists.write_list (atomic, 0600): text, csv or jsonl, which read_list reads back.
        Returns the number of entries written."""
        from .lists import write_list  # lists imports nothing from here; keep the module graph one-way

        if list_name is not None:
            self._require_list(list_name)
        columns: dict[str, list] = {k: [] for k in ("algorithms", "hashes", "categories", "entry_ids", "dates", "tags")}
        for e in self.iter_entries(list_name, include_disabled=include_disabled):
            for key, value in zip(columns, (e.algorithm, e.hash, e.category, e.entry_id, e.date_added, e.tags)):
                columns[key].append(value)
        return write_list(path, format=format, **columns)

    def lists(self) -> list[ListInfo]:
        rows = self._query(
            "SELECT l.name, l.version, l.imported_at, l.source_format, COUNT(e.id), COALESCE(SUM(e.disabled), 0),"
            " l.source_sha256 FROM lists l LEFT JOIN entries e ON e.list_name = l.name GROUP BY l.name ORDER BY l.name")
        return [ListInfo(*row) for row in rows]

    def find(self, algorithm: str, hex_hash: str) -> list[EntryInfo]:
        """Entries (active or disabled) holding exactly this hash."""
        blob = bytes.fromhex(hex_hash)
        rows = self._query("SELECT id FROM entries WHERE algorithm = ? AND hash = ?", (algorithm, blob))
        return sorted(self.entries([r[0] for r in rows]).values(), key=lambda e: e.id)

    # -- changing --------------------------------------------------------------------------
    def import_list(self, parsed: Any, *, name: str, version: str, pdq_mode: str | None = None,
                    source_sha256: str | None = None) -> "Store":
        """Add list `name` at `version`, replacing every entry of an earlier version in the
        same generation (atomically). `parsed` is a lists.ParsedList. Returns the new Store."""
        if pdq_mode is not None and pdq_mode != self.pdq_mode and "pdq" in set(parsed.algorithms):
            raise StoreError(f"this store holds PDQ made with the {self.pdq_mode!r} convention; "
                             f"the list was made with {pdq_mode!r}")
        if not name or not version:
            raise StoreError("a list needs a name and a version")
        added = _group_by_algorithm(parsed)
        retracted = list(getattr(parsed, "retracted", None) or [])

        def apply(db: sqlite3.Connection) -> _Delta:
            now = _now()
            gone = _ids(db, "SELECT id FROM entries WHERE list_name = ?", (name,))
            for item in retracted:  # the source says these are gone (lists.Retracted): audit them as such first
                key = (name, item.algorithm, bytes.fromhex(item.hash))
                _record_removals(db, "SELECT id FROM entries WHERE list_name = ? AND algorithm = ? AND hash = ?",
                                 key, now, f"retracted by the source ({item.reason})")
                db.execute("DELETE FROM entries WHERE list_name = ? AND algorithm = ? AND hash = ?", key)
            _record_removals(db, "SELECT id FROM entries WHERE list_name = ?", (name,), now, f"replaced by version {version}")
            db.execute("DELETE FROM entries WHERE list_name = ?", (name,))
            db.execute("INSERT OR REPLACE INTO lists VALUES (?, ?, ?, ?, ?, ?)",
                       (name, version, getattr(parsed, "format", None), source_sha256, now, self.pdq_mode))
            # Explicit ids above every id ever used (removed ones included), so an id in the
            # removal audit never names a later entry.
            next_id = 1 + max(db.execute("SELECT COALESCE(MAX(id), 0) FROM entries").fetchone()[0],
                              db.execute("SELECT COALESCE(MAX(id), 0) FROM removed").fetchone()[0])
            delta = _Delta(gone=gone)
            for algorithm, (codes, columns) in added.items():
                ids = np.arange(next_id, next_id + len(codes), dtype=np.int64)
                next_id += len(codes)
                _bulk_insert(db, name, algorithm, ids, codes, columns)
                delta.added[algorithm] = CodeArray(codes, ids)
            return delta

        return self._change(apply, f"import list {name} version {version}")

    def remove_list(self, name: str, reason: str = "list removed") -> "Store":
        self._require_list(name)

        def apply(db: sqlite3.Connection) -> _Delta:
            gone = _ids(db, "SELECT id FROM entries WHERE list_name = ?", (name,))
            _record_removals(db, "SELECT id FROM entries WHERE list_name = ?", (name,), _now(), reason)
            db.execute("DELETE FROM entries WHERE list_name = ?", (name,))
            db.execute("DELETE FROM lists WHERE name = ?", (name,))
            return _Delta(gone=gone)

        return self._change(apply, f"remove list {name}: {reason}")

    def remove_entries(self, ids: Iterable[int], reason: str = "retracted by the source") -> "Store":
        wanted = self._require_entries(ids)

        def apply(db: sqlite3.Connection) -> _Delta:
            marks = ",".join("?" * len(wanted))
            _record_removals(db, f"SELECT id FROM entries WHERE id IN ({marks})", wanted, _now(), reason)
            db.execute(f"DELETE FROM entries WHERE id IN ({marks})", wanted)
            return _Delta(gone=np.array(wanted, np.int64))

        return self._change(apply, f"remove {len(wanted)} entries: {reason}")

    def set_disabled(self, ids: Iterable[int], disabled: bool, reason: str | None = None) -> "Store":
        """Disable entries locally (false positives): they never match but stay auditable."""
        wanted = self._require_entries(ids)

        def apply(db: sqlite3.Connection) -> _Delta:
            marks = ",".join("?" * len(wanted))
            # Entries already in the wanted state change nothing in the arrays.
            flipping = _ids(db, f"SELECT id FROM entries WHERE disabled != ? AND id IN ({marks})",
                            [int(disabled), *wanted])
            db.execute(
                f"UPDATE entries SET disabled = ?, disabled_reason = ?, disabled_at = ? WHERE id IN ({marks})",
                [int(disabled), reason if disabled else None, _now() if disabled else None, *wanted])
            if disabled:
                return _Delta(gone=flipping)
            return _Delta(added=_rows_as_arrays(db, flipping))

        change = f"{'disable' if disabled else 'enable'} {len(wanted)} entries" + (f": {reason}" if reason else "")
        return self._change(apply, change)

    def _require_list(self, name: str) -> None:
        if not any(info.name == name for info in self.lists()):
            raise StoreError(f"no list named {name!r} in this store")

    def _require_entries(self, ids: Iterable[int]) -> list[int]:
        wanted = sorted({int(i) for i in ids})
        found = self.entries(wanted)
        missing = [i for i in wanted if i not in found]
        if missing:
            raise StoreError(f"no entries with ids {missing[:10]}")
        if not wanted:
            raise StoreError("no entries given")
        return wanted

    def _change(self, apply, change: str) -> "Store":
        with _writer_lock(self.path) as lock_fd:
            # Build on the newest generation on disk, not on this (possibly stale) one.
            manifest = _read_manifest(self.path)[1]
            # When this store is that generation, its verified arrays are the starting point
            # (re-reading and re-hashing them from disk costs ~0.5 s at 10M entries).
            current = self.arrays if manifest.to_json() == self.manifest.to_json() else None
            return _GenerationWriter(self.path, manifest, lock_fd, current).commit(apply, change)

    def check_consistency(self) -> None:
        """Compare every code array with the database row by row (slow; for tests and
        audits): raises StoreIntegrityError on any difference."""
        with self._lock:
            stored = [r[0] for r in self._conn.execute("SELECT DISTINCT algorithm FROM entries")]
            for algorithm in _algorithms(stored, self.arrays):
                want = _active_codes(self._conn, algorithm)
                got = self.arrays.get(algorithm, CodeArray.empty(algorithm))
                if not (np.array_equal(want.ids, got.ids) and np.array_equal(want.codes, got.codes)):
                    raise StoreIntegrityError(f"{algorithm} codes disagree with the entry database")

    def removed(self) -> list[dict[str, Any]]:
        """The removal audit: what was removed, from which list version, when and why."""
        rows = self._query("SELECT id, list_name, list_version, algorithm, hash, entry_id, removed_at, reason"
                           " FROM removed ORDER BY removed_at, id")
        keys = ("id", "list_name", "list_version", "algorithm", "hash", "entry_id", "removed_at", "reason")
        return [{**dict(zip(keys, row)), "hash": bytes(row[4]).hex()} for row in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _entry_info(row: tuple) -> EntryInfo:
    return EntryInfo(id=row[0], algorithm=row[1], hash=bytes(row[2]).hex(), list_name=row[3], list_version=row[4],
                     category=row[5], entry_id=row[6], date_added=row[7],
                     tags=tuple(json.loads(row[8])) if row[8] else (), disabled=bool(row[9]),
                     disabled_reason=row[10])


def _record_removals(db: sqlite3.Connection, select_ids: str, params, when: str, reason: str) -> None:
    db.execute(
        "INSERT INTO removed (id, list_name, list_version, algorithm, hash, entry_id, removed_at, reason)"
        " SELECT e.id, e.list_name, l.version, e.algorithm, e.hash, e.entry_id, ?, ?"
        f" FROM entries e LEFT JOIN lists l ON l.name = e.list_name WHERE e.id IN ({select_ids})",
        (when, reason, *params))


def _group_by_algorithm(parsed: Any) -> dict[str, tuple[np.ndarray, tuple[list, ...]]]:
    """Per algorithm: the codes (n, nbytes) uint8, decoded in one bytes.fromhex, and the
    SQLite columns (category, entry id, date, tags json) in entry order."""
    algorithms = list(parsed.algorithms)
    unknown = {a for a in algorithms if signals.find(a) is None}
    if unknown:
        raise StoreError(f"unknown algorithms {sorted(unknown)}")
    tag_json: dict[tuple, str | None] = {}

    def tags_json(tags) -> str | None:
        key = tuple(tags or ())
        if key not in tag_json:
            tag_json[key] = json.dumps(list(key)) if key else None
        return tag_json[key]

    grouped = {}
    for algorithm in sorted(set(algorithms)):
        if len(set(algorithms)) == 1:
            pick = lambda column: list(column)  # noqa: E731 (one algorithm: every row, no index list)
        else:
            rows = [i for i, a in enumerate(algorithms) if a == algorithm]
            pick = lambda column: [column[i] for i in rows]  # noqa: E731
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


def _bulk_insert(db: sqlite3.Connection, name: str, algorithm: str, ids: np.ndarray, codes: np.ndarray,
                 columns: tuple[list, ...]) -> None:
    """Insert one algorithm's rows of an import. Per-row cost is dominated by binding
    parameters, so a column holding one value for every row (a list-wide category, no
    dates, no tags) is written into the statement as a literal instead of bound per row:
    about a third faster on a 10M-row list. For large imports the list-name index is
    dropped and rebuilt afterwards, which is cheaper than maintaining it row by row."""
    width = codes.shape[1]
    flat = codes.tobytes()
    names = ("category", "entry_id", "date_added", "tags")
    first = int(ids[0]) if len(ids) else 0  # ids are consecutive (np.arange): bind a range, not a list
    values = ["?", "?", _sql_literal(name) or "?", _sql_literal(algorithm) or "?"]
    # The blobs come from a C-level iterator (map over slices): a generator would cost a
    # Python frame per row, ~3 s at 10M.
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
    rebuild = len(ids) >= 100_000
    if rebuild:
        db.execute("DROP INDEX IF EXISTS entries_by_list")
    # BULK_ROWS rows per statement: one statement step per row costs ~40% more (measured:
    # 1M rows in 2.0 s one by one, 1.2 s in statements of 200-500 rows).
    rows = zip(*bound)
    whole, rest = divmod(len(ids), BULK_ROWS)
    db.executemany(head + ",".join([one] * BULK_ROWS),
                   (list(chain.from_iterable(islice(rows, BULK_ROWS))) for _ in range(whole)))
    if rest:
        db.execute(head + ",".join([one] * rest), list(chain.from_iterable(rows)))
    if rebuild:
        db.execute("CREATE INDEX entries_by_list ON entries (list_name)")


def _tags_column(tags: list, to_json: Callable[[Any], str | None]) -> list[str | None]:
    """Tags as JSON per row; one conversion when every row has the same tags (the usual
    list-wide case), which _bulk_insert then writes as a literal."""
    if tags and tags.count(tags[0]) == len(tags):
        return [to_json(tags[0])] * len(tags)
    return [to_json(t) for t in tags]


@dataclass
class _Delta:
    """What one change did to the active codes: entry ids that stopped matching (removed
    or disabled) and rows that started (imported or re-enabled). The writer applies it to
    the previous generation's arrays instead of re-reading every row from SQLite."""

    gone: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    added: dict[str, CodeArray] = field(default_factory=dict)


def _ids(db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> np.ndarray:
    rows = db.execute(sql, params).fetchall()
    return np.fromiter((r[0] for r in rows), np.int64, len(rows))


def _rows_as_arrays(db: sqlite3.Connection, ids: np.ndarray) -> dict[str, CodeArray]:
    """The (id, code) rows of the given entries, per algorithm, ordered by id."""
    rows: dict[str, tuple[list[int], list[bytes]]] = {}
    wanted = ids.tolist()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for algorithm, entry_id, blob in db.execute(
                f"SELECT algorithm, id, hash FROM entries WHERE id IN ({','.join('?' * len(chunk))})", chunk):
            got = rows.setdefault(algorithm, ([], []))
            got[0].append(entry_id)
            got[1].append(blob)
    out = {}
    for algorithm, (entry_ids, blobs) in rows.items():
        order = np.argsort(np.array(entry_ids, np.int64), kind="stable")
        codes = np.frombuffer(b"".join(blobs), np.uint8).reshape(len(blobs), code_bytes(algorithm))
        out[algorithm] = CodeArray(np.ascontiguousarray(codes[order]), np.array(entry_ids, np.int64)[order])
    return out


def _apply_delta(old: CodeArray, delta: _Delta, algorithm: str) -> CodeArray:
    """old minus delta.gone plus delta.added[algorithm], ordered by entry id."""
    keep = ~np.isin(old.ids, delta.gone) if len(delta.gone) and len(old.ids) else slice(None)
    codes, ids = old.codes[keep], old.ids[keep]
    new = delta.added.get(algorithm)
    if new is not None and len(new.ids):
        codes, ids = np.concatenate([codes, new.codes]), np.concatenate([ids, new.ids])
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            order = np.argsort(ids, kind="stable")
            codes, ids = codes[order], ids[order]
    return CodeArray(np.ascontiguousarray(codes), np.ascontiguousarray(ids))


def _verify_file(path: Path, meta: dict[str, Any]) -> None:
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
                size += len(block)
    except FileNotFoundError as exc:
        raise StoreIntegrityError(f"store file {path.name} is missing") from exc
    if size != meta["bytes"] or digest.hexdigest() != meta["sha256"]:
        raise StoreIntegrityError(
            f"store file {path.name} does not match its checksum in the manifest; refusing to use it")


def _read_verified(path: Path, meta: dict[str, Any]) -> bytes:
    # Hash the very bytes we go on to use, so nothing can change between check and use.
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise StoreIntegrityError(f"store file {path.name} is missing") from exc
    if len(data) != meta["bytes"] or _sha256(data) != meta["sha256"]:
        raise StoreIntegrityError(
            f"store file {path.name} does not match its checksum in the manifest; refusing to use it")
    return data


def _load_array(root: Path, manifest: Manifest, name: str, dtype) -> np.ndarray:
    """A data file of the manifest as a read-only 1-D array, after its sha256 check."""
    return np.frombuffer(_read_verified(root / name, manifest.files[name]), dtype)


def _read_manifest(root: Path) -> tuple[str, Manifest]:
    """The manifest's text and content, checked (manifest.py): its own checksum, its
    schema, and that it is not older than the generation last committed."""
    mark = read_high_water(root / LOCK)  # before the manifest (manifest.check_not_rolled_back)
    try:
        text = (root / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise StoreError(f"{root} is not a hashmatch store (no {MANIFEST})") from exc
    except (UnicodeDecodeError, OSError) as exc:
        raise StoreIntegrityError(f"{root / MANIFEST} cannot be read: {exc}") from exc
    manifest = Manifest.from_json(text, str(root / MANIFEST))
    check_not_rolled_back(manifest, mark, str(root / MANIFEST))
    return text, manifest


def _create(root: Path, pdq_mode: str) -> Store | None:
    """A new empty store, or None where one exists (checked again under the writer lock)."""
    if pdq_mode not in PDQ_MODES:
        raise StoreError(f"unknown PDQ mode {pdq_mode!r}")
    make_private_dirs(root)  # the store and any missing parent 0700, whatever the umask
    if (root / MANIFEST).exists():  # without creating .lock in a (perhaps read-only) store
        return None
    with _writer_lock(root) as lock_fd:
        if (root / MANIFEST).exists():
            return None
        return _GenerationWriter(root, Manifest(pdq_mode=pdq_mode), lock_fd).commit(lambda db: _Delta(), "create")


@contextlib.contextmanager
def _folder_lock(root: Path, *, exclusive: bool) -> Iterator[bool | None]:
    """The openers' lock on the store folder (module docstring). Shared: waits for it.
    Exclusive: tried for CLEANUP_WAIT seconds, never blocking. Yields True when held, False
    when openers kept it busy, None where the folder cannot be locked."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        fd = None
    held, deadline = None, time.monotonic() + CLEANUP_WAIT
    while fd is not None and held is None:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX | fcntl.LOCK_NB) if exclusive else fcntl.LOCK_SH)
            held = True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                held = False
            else:
                time.sleep(0.01)
        except OSError:
            break
    try:
        yield held
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def _writer_lock(root: Path) -> Iterator[int]:
    """The writers' lock (STORE/.lock, held exclusively); yields its descriptor, through
    which a commit records its generation (the rollback mark, manifest.py)."""
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class _GenerationWriter:
    """Writes generation N+1 of a store: database, arrays, then the manifest (commit)."""

    def __init__(self, root: Path, manifest: Manifest, lock_fd: int, current: dict[str, CodeArray] | None = None):
        self.root = root
        self.lock_fd = lock_fd
        self.old = manifest
        self.current = current  # the old generation's arrays, already verified, when at hand
        self.generation = manifest.generation + 1

    def _name(self, stem: str, ext: str) -> str:
        return f"{stem}.{self.generation:06d}.{ext}"

    def commit(self, apply, change: str) -> Store:
        """Apply the change to a copy of the database, write the arrays, commit the
        manifest, record the generation (rollback mark, audit line), drop old files."""
        self._remove_stale_temp_files()
        files: dict[str, dict[str, Any]] = {}
        db_name = self._name("entries", "sqlite")
        fd, temp = tempfile.mkstemp(dir=self.root, prefix=".hashmatch-", suffix=".tmp")
        os.close(fd)
        try:
            if self.old.database:
                shutil.copyfile(self.root / self.old.database, temp)
            db = sqlite3.connect(temp)
            try:
                # A private temp file made durable by fsync + rename below: no journal needed.
                db.execute("PRAGMA journal_mode = OFF")
                db.execute("PRAGMA synchronous = OFF")
                if not self.old.database:
                    db.executescript(SCHEMA)
                delta = apply(db)
                db.commit()
                arrays = {a: _apply_delta(self._old_array(a), delta, a)
                          for a in _algorithms(self.old.arrays, delta.added)}
                # The multi-index tables of large perceptual lists are built once per
                # generation and checked like every other file on open (opening a 10M store
                # then skips a 3-5 s build); they build while the database is synced and hashed.
                builder = ThreadPoolExecutor(1, thread_name_prefix="hashmatch-store-mih")
                pending_tables = {a: builder.submit(mih_tables, arrays[a].codes) for a in arrays
                                  if not signals.get(a).exact and len(arrays[a].ids) >= AUTO_MIH_MIN_ENTRIES}
                builder.shutdown(wait=False)
                # Active counts come from the arrays; disabled ones from a partial index; the
                # total checks that the change's delta agrees with the database (cheap: a
                # count over the narrowest index, not a scan of 10M rows).
                disabled = dict(db.execute(
                    "SELECT algorithm, COUNT(*) FROM entries WHERE disabled = 1 GROUP BY algorithm").fetchall())
                total = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
                lists = [{"name": n, "version": v, "entries": c} for n, v, c in db.execute(
                    "SELECT l.name, l.version, COUNT(e.id) FROM lists l LEFT JOIN entries e ON e.list_name = l.name"
                    " GROUP BY l.name ORDER BY l.name")]
            finally:
                db.close()
            os.chmod(temp, 0o600)
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
                handle.seek(0)
                digest = hashlib.file_digest(handle, "sha256")
                size = handle.tell()
            os.replace(temp, self.root / db_name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        files[db_name] = {"sha256": digest.hexdigest(), "bytes": size}
        counts = {a: {"active": int(len(arrays[a].ids)), "disabled": int(disabled.get(a, 0))}
                  for a in _algorithms(arrays, disabled)}
        if sum(c["active"] + c["disabled"] for c in counts.values()) != total:  # a change forgot part of its delta
            raise StoreError("internal error: the code arrays disagree with the database; nothing committed")
        array_meta = {}
        opened: dict[str, CodeArray] = {}
        for algorithm, array in arrays.items():
            if not len(array.ids):
                continue
            tables = None
            entry: dict[str, Any] = {"codes": self._write_array(algorithm, "codes", array.codes, files),
                                     "ids": self._write_array(algorithm, "ids", array.ids, files),
                                     "count": int(len(array.ids))}
            if algorithm in pending_tables:
                dirs, packed = tables = pending_tables[algorithm].result()
                entry["mih"] = {"tables": int(dirs.shape[0]),
                                "dirs": self._write_array(algorithm, "mih-dirs", dirs, files),
                                "packed": self._write_array(algorithm, "mih-packed", packed, files)}
            array_meta[algorithm] = entry
            for part in (array.codes, array.ids, *(tables or ())):
                part.setflags(write=False)
            opened[algorithm] = CodeArray(array.codes, array.ids, tables)
        manifest = Manifest(generation=self.generation, pdq_mode=self.old.pdq_mode, created=self.old.created,
                            updated=_now(), files=files, arrays=array_meta, counts=counts, lists=lists,
                            database=db_name)
        with atomic_write(self.root / MANIFEST, "w", encoding="utf-8") as handle:
            handle.write(manifest.to_json())
        _fsync_dir(self.root)
        write_high_water(self.lock_fd, self.generation)
        append_jsonl(self.root / AUDIT_LOG, {
            "event": "store_change", "generation": self.generation, "change": change, "at": manifest.updated,
            "entries_added": int(sum(len(a.ids) for a in delta.added.values())),
            "entries_stopped": int(len(delta.gone)), **_who()})
        self._remove_old_generations(set(files))
        # The new generation, from the arrays just written and checksummed (a Store.open
        # would read and hash them all again: ~3 s at 10M entries).
        return Store(self.root, manifest, opened)

    def _write_array(self, algorithm: str, kind: str, payload: np.ndarray, files: dict[str, dict[str, Any]]) -> str:
        """Write one array file of this generation (atomic, 0600), record its checksum in
        `files`, return its name."""
        name = self._name(algorithm, kind)
        blob = memoryview(np.ascontiguousarray(payload)).cast("B")
        with atomic_write(self.root / name, "wb") as handle:
            handle.write(blob)
        files[name] = {"sha256": _sha256(blob), "bytes": len(blob)}
        return name

    def _old_array(self, algorithm: str) -> CodeArray:
        meta = self.old.arrays.get(algorithm)
        if meta is None:
            return CodeArray.empty(algorithm)
        if self.current is not None and algorithm in self.current:
            return self.current[algorithm]
        return CodeArray(_load_array(self.root, self.old, meta["codes"], np.uint8).reshape(-1, code_bytes(algorithm)),
                         _load_array(self.root, self.old, meta["ids"], np.int64))

    def _remove_stale_temp_files(self) -> None:
        """Temp files a killed writer left (up to hundreds of MB): only writers make them
        here, and this one holds the writers' lock, so any that exist are stale."""
        for path in self.root.glob(".hashmatch-*.tmp"):
            with contextlib.suppress(OSError):
                path.unlink()

    def _remove_old_generations(self, keep: set[str]) -> None:
        """Remove every data file not in `keep` (older generations, also ones an earlier
        writer had to leave) once no Store.open is reading; else leave them for later.
        Open Stores keep their database's (unlinked) file; POSIX frees it on close."""
        with _folder_lock(self.root, exclusive=True) as held:
            if held is False:
                return
            for path in self.root.iterdir():
                if path.name not in keep and path.name not in (MANIFEST, LOCK) and path.is_file() \
                        and (path.suffix in (".sqlite", ".codes", ".ids", ".mih-dirs", ".mih-packed")):
                    with contextlib.suppress(OSError):
                        path.unlink()


def _active_codes(db: sqlite3.Connection, algorithm: str) -> CodeArray:
    """The active codes read row by row from the database: what the arrays must equal
    (Store.check_consistency); too slow to build every generation with at 10M entries."""
    rows = db.execute("SELECT id, hash FROM entries WHERE algorithm = ? AND disabled = 0 ORDER BY id",
                      (algorithm,)).fetchall()
    if not rows:
        return CodeArray.empty(algorithm)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    codes = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint8).reshape(len(rows), code_bytes(algorithm))
    return CodeArray(codes, ids)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _who() -> dict[str, str]:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname()}
