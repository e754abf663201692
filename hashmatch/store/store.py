"""The index store: one directory holding hash lists ready for matching. This module owns
the Store API (open, read, change); files.py the on-disk layout, verified loading
and the locks; writer.py the writing of a generation; manifest.py the manifest.

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
A small change on a large store writes only an overlay over the previous generation's
base (overlay.py: milliseconds and kilobytes, not a copy of everything); a large
one, or an overlay grown too big, writes a full generation, the next base.
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

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from hashmatch import signals
from hashmatch.base.files import make_private_dirs
from hashmatch.errors import StoreError, StoreIntegrityError
from hashmatch.signals.pdq import PDQ_MODES
from hashmatch.store import overlay as store_overlay
from hashmatch.store.files import (
    CLEANUP_WAIT,
    MANIFEST,
    OPEN_ATTEMPTS,
    CodeArray,
    _algorithms,
    _folder_lock,
    _read_manifest,
    _verify_file,
    _writer_lock,
    code_bytes,
    load_code_array,
)
from hashmatch.store.importer import import_change, keyed_change
from hashmatch.store.manifest import Manifest
from hashmatch.store.manifest import now as _now
from hashmatch.store.writer import (
    SCHEMA,
    _active_codes,
    _Delta,
    _GenerationWriter,
    _ids,
    _record_removals,
    _rows_as_arrays,
)

__all__ = ["CLEANUP_WAIT", "CodeArray", "EntryInfo", "ListInfo", "Store", "StoreError", "StoreIntegrityError",
           "code_bytes", "SCHEMA"]

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


class MatchedEntry(NamedTuple):
    """What a match reports of its entry (Store.matched_entries): EntryInfo's share that
    the lookup path needs, read without the hash and dates."""

    list_name: str
    list_version: str
    category: str | None
    entry_id: str | None
    tags: tuple[str, ...]


class _NoChange(Exception):
    """Raised by a change's apply() that finds nothing to change: nothing is committed."""


class Store:
    """An opened, verified generation of a store directory. Thread-safe for readers."""

    def __init__(self, path: Path, manifest: Manifest, arrays: dict[str, CodeArray],
                 loaded: dict[str, np.ndarray] | None = None):
        self.path = path
        self.manifest = manifest
        self.arrays = arrays
        # Opened now, not lazily: a writer may delete this generation's file once a newer
        # one is committed, and an open descriptor keeps it readable (POSIX). The file
        # never changes, so SQLite may treat it as immutable (no locks, no journal). One
        # connection shared under a lock: metadata is read only for hits.
        assert manifest.database is not None  # a checked manifest names one from generation 1 on
        uri = (path / manifest.database).resolve().as_uri() + "?mode=ro&immutable=1"
        self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        # A hit's metadata is a few random B-tree reads: through a memory map (no read()
        # call per page; SQLite caps the map at 2 GiB by default) with the interior pages
        # kept in a 32 MiB cache (10M entries: ~18 -> ~14 us for a lookup's ~3 hits).
        self._conn.execute("PRAGMA mmap_size = 2147418112")
        self._conn.execute("PRAGMA cache_size = -32768")
        store_overlay.attach_views(self._conn, path, manifest)  # v_entries, v_lists, v_removed
        self._lock = threading.Lock()
        self._loaded: dict[str, np.ndarray] = loaded or {}  # arrays verified, by file name (reload reuses them)
        self._list_versions: dict[str, str] | None = None

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, *, known: "Store | None" = None) -> "Store":
        """Open and verify the store at `path` (every file's sha256 against the manifest),
        holding the openers' lock (module docstring) so no writer removes the files meanwhile.
        `known`: an open generation of the same store whose verified files are reused."""
        root = Path(path)
        with _folder_lock(root, exclusive=False):
            for _ in range(OPEN_ATTEMPTS - 1):
                text, manifest = _read_manifest(root)
                try:
                    return cls._load(root, manifest, known)
                except StoreIntegrityError:  # damage, unless a writer replaced and removed that generation
                    if _read_manifest(root)[0] == text:
                        raise
            return cls._load(root, _read_manifest(root)[1], known)

    @classmethod
    def _load(cls, root: Path, manifest: Manifest, known: "Store | None" = None) -> Store:
        for name, meta in manifest.files.items():
            # A database this process verified when it opened an earlier generation (the
            # base a small change leaves in place) is not read and hashed again.
            if name.endswith(".sqlite") and not (known is not None and known.manifest.files.get(name) == meta
                                                 and name in (known.manifest.database, known.manifest.overlay)):
                _verify_file(root / name, meta)
        loaded = {name: array for name, array in (known._loaded.items() if known is not None else ())
                  if known is not None and known.manifest.files.get(name) == manifest.files.get(name)}
        arrays = {algorithm: load_code_array(root, manifest, algorithm, loaded) for algorithm in manifest.arrays}
        try:
            return cls(root, manifest, arrays, loaded)
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
        """The store's newest generation (self is unchanged: it is immutable). Files it
        shares with this one (a base under a new overlay) are reused, not read again."""
        return Store.open(self.path, known=self)

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

    def _rows_by_id(self, columns: str, ids: Iterable[int]) -> Iterator[tuple]:
        """Rows of v_entries (`columns`, the id first) for the given ids, in id order
        (neighbouring B-tree pages), 500 ids a statement."""
        wanted = sorted({int(i) for i in ids})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            yield from self._query(f"SELECT {columns} FROM v_entries WHERE id IN ({','.join('?' * len(chunk))})",
                                   chunk)

    def entries(self, ids: Iterable[int]) -> dict[int, EntryInfo]:
        """Metadata of the given entry ids."""
        # No join: a generation's list versions never change, and are read once.
        versions = self._versions()
        return {row[0]: _entry_info((*row[:4], versions.get(row[3]), *row[4:])) for row in self._rows_by_id(
            "id, algorithm, hash, list_name, category, entry_id, date_added, tags, disabled, disabled_reason", ids)}

    def matched_entries(self, ids: Iterable[int]) -> dict[int, MatchedEntry]:
        """What a match reports of the given entry ids (the lookup path: ~3 ids a query)."""
        versions = self._versions()
        return {entry: MatchedEntry(list_name, versions.get(list_name, ""), category, entry_id,
                                    tuple(json.loads(tags)) if tags else ())
                for entry, list_name, category, entry_id, tags
                in self._rows_by_id("id, list_name, category, entry_id, tags", ids)}

    def _versions(self) -> dict[str, str]:
        if self._list_versions is None:
            self._list_versions = dict(self._query("SELECT name, version FROM v_lists"))
        return self._list_versions

    def blobs(self, ids: Iterable[int]) -> dict[int, bytes]:
        """The stored values of the given entry ids, as the store keeps them (a variable
        type's packed codes: vPDQ's frames)."""
        return {entry: bytes(blob) for entry, blob in self._rows_by_id("id, hash", ids)}

    def iter_entries(self, list_name: str | None = None, *, include_disabled: bool = True) -> Iterator[EntryInfo]:
        """Every entry (of one list), in id order, for export and audit."""
        sql = ("SELECT e.id, e.algorithm, e.hash, e.list_name, l.version, e.category, e.entry_id, e.date_added,"
               " e.tags, e.disabled, e.disabled_reason FROM v_entries e JOIN v_lists l ON l.name = e.list_name")
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
        from hashmatch.lists import write_list  # lists imports nothing from here; keep the module graph one-way

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
            " l.source_sha256 FROM v_lists l LEFT JOIN v_entries e ON e.list_name = l.name GROUP BY l.name"
            " ORDER BY l.name")
        return [ListInfo(*row) for row in rows]

    def find(self, algorithm: str, hex_hash: str) -> list[EntryInfo]:
        """Entries (active or disabled) holding exactly this hash."""
        signal = signals.get(algorithm)
        blob = signal.to_blob(signal.parse(hex_hash) if signal.variable else hex_hash)
        rows = self._query("SELECT id FROM v_entries WHERE algorithm = ? AND hash = ?", (signal.name, blob))
        return sorted(self.entries([r[0] for r in rows]).values(), key=lambda e: e.id)

    # -- changing --------------------------------------------------------------------------
    def import_list(self, parsed: Any, *, name: str, version: str, pdq_mode: str | None = None,
                    source_sha256: str | None = None) -> "Store":
        """Add list `name` at `version`, replacing every entry of an earlier version in the
        same generation (atomically). `parsed` is a lists.ParsedList, or an iterable of the
        parts of one list (lists.read_list_parts: a 100M-entry list streams through in
        parts, never held whole; importer.py). Returns the new Store."""
        if not name or not version:
            raise StoreError("a list needs a name and a version")
        apply, size = import_change(parsed, name=name, version=version, store_pdq_mode=self.pdq_mode,
                                    pdq_mode=pdq_mode, source_sha256=source_sha256)
        replacing = next((int(item["entries"]) for item in self.manifest.lists if item["name"] == name), 0)
        scope = None if size is None else ("list_name = ?", (name,), size + replacing)
        return self._change(apply, f"import list {name} version {version}", scope)

    def apply_source_batch(self, list_name: str, upserts: Any, deleted: Sequence[str], *, version: str,
                           sources: Callable[[dict[str, Any]], dict[str, Any]],
                           source_format: str = "exchange", stats: dict[str, int] | None = None) -> "Store":
        """One batch of an exchange fetch as one generation: the entries whose source keys
        (entry ids) are `deleted` or upserted are removed (audited), `upserts` (a ParsedList
        whose entry ids are the source keys) inserted, and the store's exchange sources
        replaced by `sources(the newest generation's)` (the fetch's new checkpoint), all atomically: a kill at any point
        leaves the previous generation or this one, never half (importer.keyed_change)."""
        apply, scope = keyed_change(list_name, upserts, deleted, version=version, source_format=source_format,
                                    store_pdq_mode=self.pdq_mode, sources=sources, stats=stats)
        count = len(upserts) if upserts is not None else 0
        return self._change(apply, f"exchange batch into {list_name}: {count} upserted, {len(deleted)} deleted",
                            scope)

    def set_sources(self, sources: Callable[[dict[str, Any]], dict[str, Any]], change: str) -> "Store":
        """Change the store's exchange sources (`sources(the newest generation's)`: added,
        changed or removed), entries untouched."""
        return self._change(lambda db: _Delta(sources=sources), change, ("0", (), 0))

    @property
    def sources(self) -> dict[str, dict[str, Any]]:
        """The exchange sources this generation records (settings and checkpoints)."""
        return dict(self.manifest.sources or {})

    def remove_list(self, name: str, reason: str = "list removed") -> "Store":
        self._require_list(name)

        def apply(db: sqlite3.Connection) -> _Delta:
            gone = _ids(db, "SELECT id FROM entries WHERE list_name = ?", (name,))
            _record_removals(db, "SELECT id FROM entries WHERE list_name = ?", (name,), _now(), reason)
            db.execute("DELETE FROM entries WHERE list_name = ?", (name,))
            db.execute("DELETE FROM lists WHERE name = ?", (name,))
            return _Delta(gone=gone)

        size = next((int(item["entries"]) for item in self.manifest.lists if item["name"] == name), None)
        return self._change(apply, f"remove list {name}: {reason}", ("list_name = ?", (name,), size))

    def remove_entries(self, ids: Iterable[int], reason: str = "retracted by the source") -> "Store":
        wanted = self._require_entries(ids)

        def apply(db: sqlite3.Connection) -> _Delta:
            marks = ",".join("?" * len(wanted))
            _record_removals(db, f"SELECT id FROM entries WHERE id IN ({marks})", wanted, _now(), reason)
            db.execute(f"DELETE FROM entries WHERE id IN ({marks})", wanted)
            return _Delta(gone=np.array(wanted, np.int64))

        return self._change(apply, f"remove {len(wanted)} entries: {reason}", _id_scope(wanted))

    def set_disabled(self, ids: Iterable[int], disabled: bool, reason: str | None = None) -> "Store":
        """Disable entries locally (false positives): they never match but stay auditable."""
        wanted = self._require_entries(ids)

        def apply(db: sqlite3.Connection) -> _Delta:
            marks = ",".join("?" * len(wanted))
            # Entries already in the wanted state change nothing in the arrays.
            flipping = _ids(db, f"SELECT id FROM entries WHERE disabled != ? AND id IN ({marks})",
                            [int(disabled), *wanted])
            if not len(flipping):
                raise _NoChange  # every entry is in that state already: no new generation
            db.execute(
                f"UPDATE entries SET disabled = ?, disabled_reason = ?, disabled_at = ? WHERE id IN ({marks})",
                [int(disabled), reason if disabled else None, _now() if disabled else None, *wanted])
            if disabled:
                return _Delta(gone=flipping)
            return _Delta(added=_rows_as_arrays(db, flipping))

        change = f"{'disable' if disabled else 'enable'} {len(wanted)} entries" + (f": {reason}" if reason else "")
        return self._change(apply, change, _id_scope(wanted))

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

    def _change(self, apply, change: str, scope: tuple[str, Sequence[Any], int | None] | None = None) -> "Store":
        with _writer_lock(self.path) as lock_fd:
            # Build on the newest generation on disk, not on this (possibly stale) one.
            manifest = _read_manifest(self.path)[1]
            # When this store is that generation, its verified arrays are the starting point
            # (re-reading and re-hashing them from disk costs ~0.5 s at 10M entries).
            current = self.arrays if manifest.to_json() == self.manifest.to_json() else None
            try:
                return Store(*_GenerationWriter(self.path, manifest, lock_fd, current).commit(apply, change, scope))
            except _NoChange:
                return self if current is not None else Store.open(self.path)

    def check_consistency(self) -> None:
        """Compare every code array with the database row by row (slow; for tests and
        audits): raises StoreIntegrityError on any difference."""
        with self._lock:
            stored = [r[0] for r in self._conn.execute("SELECT DISTINCT algorithm FROM v_entries")]
            for algorithm in _algorithms(stored, self.arrays):
                want = _active_codes(self._conn, algorithm, "v_entries")
                got = self.arrays.get(algorithm, CodeArray.empty(algorithm)).active()
                if not (np.array_equal(want.ids, got.ids) and np.array_equal(want.codes, got.codes)):
                    raise StoreIntegrityError(f"{algorithm} codes disagree with the entry database")

    def removed(self) -> list[dict[str, Any]]:
        """The removal audit: what was removed, from which list version, when and why."""
        rows = self._query("SELECT id, list_name, list_version, algorithm, hash, entry_id, removed_at, reason"
                           " FROM v_removed ORDER BY removed_at, id")
        keys = ("id", "list_name", "list_version", "algorithm", "hash", "entry_id", "removed_at", "reason")
        return [{**dict(zip(keys, row)), "hash": _hash_text(row[3], row[4])} for row in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _id_scope(ids: list[int]) -> tuple[str, Sequence[Any], int] | None:
    """The overlay scope of a change to these entries (too many for one statement: none)."""
    if len(ids) > 10_000:
        return None
    return f"id IN ({','.join('?' * len(ids))})", ids, len(ids)


def _hash_text(algorithm: str, blob: bytes) -> str:
    signal = signals.find(algorithm)
    return signal.from_blob(blob) if signal is not None else bytes(blob).hex()


def _entry_info(row: tuple) -> EntryInfo:
    return EntryInfo(id=row[0], algorithm=row[1], hash=_hash_text(row[1], row[2]), list_name=row[3],
                     list_version=row[4], category=row[5], entry_id=row[6], date_added=row[7],
                     tags=tuple(json.loads(row[8])) if row[8] else (), disabled=bool(row[9]),
                     disabled_reason=row[10])


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
        writer = _GenerationWriter(root, Manifest(pdq_mode=pdq_mode), lock_fd)
        return Store(*writer.commit(lambda db: _Delta(), "create"))


