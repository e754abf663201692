"""Writing generation N+1 of a store from one change: the change runs on a copy of the
entry database and returns its delta (entry ids that stopped matching, rows that
started), the delta is applied to the previous generation's code arrays, the arrays and
multi-index tables are written (temp file, fsync, rename, 0600) and checksummed, then the
manifest is replaced (the commit), the generation recorded (the rollback mark in .lock,
a line in the audit log), and older generations' files removed once no opener needs
them. Also the bulk SQL the changes use."""
from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from hashmatch import signals
from hashmatch.base.files import append_jsonl, atomic_write, temp_file, who
from hashmatch.errors import StoreError
from hashmatch.index.engines import AUTO_MIH_MIN_ENTRIES, mih_tables
from hashmatch.store import overlay as store_overlay
from hashmatch.store.audit import record_unrecorded
from hashmatch.store.files import (
    AUDIT_LOG,
    LOCK,
    MANIFEST,
    CodeArray,
    _algorithms,
    _folder_lock,
    _fsync_dir,
    _remember_verified,
    _sha256,
    check_unchanged,
    copy_verified,
    entry_codes,
    load_code_array,
)
from hashmatch.store.manifest import Manifest, write_high_water
from hashmatch.store.manifest import now as _now

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


def _record_removals(db: sqlite3.Connection, select_ids: str, params, when: str, reason: str) -> None:
    db.execute(
        "INSERT INTO removed (id, list_name, list_version, algorithm, hash, entry_id, removed_at, reason)"
        " SELECT e.id, e.list_name, l.version, e.algorithm, e.hash, e.entry_id, ?, ?"
        f" FROM entries e LEFT JOIN lists l ON l.name = e.list_name WHERE e.id IN ({select_ids})",
        (when, reason, *params))


class Generation(NamedTuple):
    """A generation just committed, as Store's constructor takes it: the folder, its
    manifest, the code arrays as written and checksummed, and the loaded tables."""

    root: Path
    manifest: Manifest
    arrays: dict[str, CodeArray]
    loaded: dict[str, np.ndarray]


@dataclass
class _Delta:
    """What one change did to the active codes: entry ids that stopped matching (removed
    or disabled) and rows that started (imported or re-enabled). The writer applies it to
    the previous generation's arrays instead of re-reading every row from SQLite."""

    gone: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    added: dict[str, CodeArray] = field(default_factory=dict)
    # How the change alters the exchange sources (a fetch's checkpoint commits with its
    # entries): old sources -> new, applied to the newest generation's under the writers'
    # lock (two sources fetched at once never undo each other); None keeps them.
    sources: Callable[[dict[str, dict[str, Any]]], dict[str, dict[str, Any]]] | None = None


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
        out[algorithm] = entry_codes(algorithm, np.array(entry_ids, np.int64)[order], [blobs[i] for i in order])
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


#: What a store's data files end with (anything else in the folder is not ours to remove).
_DATA_SUFFIXES = (".sqlite", ".codes", ".ids", ".mih-dirs", ".mih-packed", ".delta-codes", ".delta-ids")


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

    def commit(self, apply, change: str, scope: tuple[str, Sequence[Any], int | None] | None = None) -> Generation:
        """Apply the change, write the arrays, commit the manifest, record the generation
        (rollback mark, audit line), drop old files. `scope` (a condition on entries'
        columns, its parameters, about how many rows): a small change goes into an
        overlay (overlay.py) instead of a copy of everything."""
        self._remove_stale_temp_files()
        record_unrecorded(self.root, self.old, who())  # a writer killed after its commit left no line
        if scope is not None and store_overlay.fits(self.old, scope[2]):
            return self._commit_overlay(apply, change, scope[0], scope[1])
        files: dict[str, dict[str, Any]] = {}
        db_name = self._name("entries", "sqlite")
        with temp_file(self.root) as temp:
            if self.old.database:
                copy_verified(self.root / self.old.database, self.old.files[self.old.database], temp)
            if self.old.overlay is not None:  # fold_into attaches it
                check_unchanged(self.root / self.old.overlay, self.old.files[self.old.overlay])
            db = sqlite3.connect(temp)
            try:
                # A private temp file made durable by fsync + rename below: no journal needed.
                db.execute("PRAGMA journal_mode = OFF")
                db.execute("PRAGMA synchronous = OFF")
                if not self.old.database:
                    db.executescript(SCHEMA)
                store_overlay.fold_into(db, self.root, self.old)  # the whole previous generation
                delta = apply(db)
                db.commit()
                arrays = {a: _apply_delta(self._old_array(a).active(), delta, a)
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
                # A variable type's rows are not its entries (store_files.entry_codes): count
                # those entries in the database (few: one per listed video).
                variable_active = {a: db.execute("SELECT COUNT(*) FROM entries WHERE algorithm = ? AND disabled = 0",
                                                 (a,)).fetchone()[0]
                                   for a in arrays if signals.get(a).variable and (
                                       len(arrays[a].ids) or a in delta.added
                                       or self.old.counts.get(a, {}).get("active"))}
                lists = [{"name": n, "version": v, "entries": c} for n, v, c in db.execute(
                    "SELECT l.name, l.version, COUNT(e.id) FROM lists l LEFT JOIN entries e ON e.list_name = l.name"
                    " GROUP BY l.name ORDER BY l.name")]
            finally:
                db.close()
            self._install(temp, db_name, files)
        counts = {a: {"active": int(variable_active.get(a, 0) if a in variable_active else len(arrays[a].ids)),
                      "disabled": int(disabled.get(a, 0))}
                  for a in _algorithms(arrays, disabled, variable_active)}
        if sum(c["active"] + c["disabled"] for c in counts.values()) != total:  # a change forgot part of its delta
            raise StoreError("internal error: the code arrays disagree with the database; nothing committed")
        array_meta = {}
        opened: dict[str, CodeArray] = {}
        loaded: dict[str, np.ndarray] = {}  # written and checksummed here: a reload reuses them
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
            loaded.update({entry["codes"]: array.codes, entry["ids"]: array.ids})
            if tables is not None:
                loaded.update({entry["mih"]["dirs"]: tables[0], entry["mih"]["packed"]: tables[1]})
        base = {"total": int(total), "lists": {item["name"]: item["entries"] for item in lists},
                "active": {a: c["active"] for a, c in counts.items() if c["active"]},
                "disabled": {a: c["disabled"] for a, c in counts.items() if c["disabled"]}, "overlay_rows": 0}
        manifest = Manifest(generation=self.generation, pdq_mode=self.old.pdq_mode, created=self.old.created,
                            updated=_now(), files=files, arrays=array_meta, counts=counts, lists=lists,
                            database=db_name, base=base,
                            sources=_sources(self.old, delta))
        self._publish(manifest, change, delta)
        # The new generation, from the arrays just written and checksummed (a Store.open
        # would read and hash them all again: ~3 s at 10M entries).
        return Generation(self.root, manifest, opened, loaded)

    def _publish(self, manifest: Manifest, change: str, delta: _Delta) -> None:
        """Commit: the manifest replaced, the rollback mark, the audit line, old files gone."""
        with atomic_write(self.root / MANIFEST, "w", encoding="utf-8") as handle:
            handle.write(manifest.to_json())
        _fsync_dir(self.root)
        write_high_water(self.lock_fd, self.generation)
        append_jsonl(self.root / AUDIT_LOG, {
            "event": "store_change", "generation": self.generation, "change": change, "at": manifest.updated,
            "entries_added": int(sum(len(a.ids) for a in delta.added.values())),
            "entries_stopped": int(len(delta.gone)), **who()})
        self._remove_old_generations(set(manifest.files))

    def _commit_overlay(self, apply, change: str, where: str, params: Sequence[Any]) -> Generation:
        """The small change as an overlay over the previous generation's base (module
        docstring of overlay.py): bytes written in proportion to the overlay."""
        old = self.old
        files: dict[str, dict[str, Any]] = {}
        name = self._name("overlay", "sqlite")
        with temp_file(self.root) as temp:
            if old.overlay is not None:
                copy_verified(self.root / old.overlay, old.files[old.overlay], temp)
            assert old.database is not None  # overlay.fits: there is a base
            check_unchanged(self.root / old.database, old.files[old.database])  # overlay.start attaches it
            db = sqlite3.connect(temp)
            try:
                db.execute("PRAGMA journal_mode = OFF")
                db.execute("PRAGMA synchronous = OFF")
                store_overlay.start(db, self.root, old, fresh=old.overlay is None)
                store_overlay.pull(db, where, params)
                delta = apply(db)
                db.commit()
                info = store_overlay.facts(db, old)
                hidden = _ids(db, "SELECT id FROM hidden ORDER BY id")
                deltas = {a: _active_codes(db, a) for (a,) in db.execute("SELECT DISTINCT algorithm FROM entries")}
                versions = dict(db.execute("SELECT name, version FROM lists").fetchall())
                db.commit()
                db.execute("DETACH DATABASE base")
            finally:
                db.close()
            self._install(temp, name, files)
        files[old.database] = old.files[old.database]
        hidden_name = self._write_array("hidden", "ids", hidden, files) if len(hidden) else None
        array_meta: dict[str, dict[str, Any]] = {}
        opened: dict[str, CodeArray] = {}
        loaded: dict[str, np.ndarray] = {}
        for algorithm in _algorithms(old.arrays, deltas):
            meta = {k: v for k, v in (old.arrays.get(algorithm) or {}).items() if k != "delta"}
            base = self._old_array(algorithm)
            added = deltas.get(algorithm)
            if not meta and (added is None or not len(added.ids)):
                continue
            if meta.get("codes") is not None:  # the base's files, as an earlier generation wrote them
                for part in (meta["codes"], meta["ids"], *((meta["mih"]["dirs"], meta["mih"]["packed"])
                                                           if "mih" in meta else ())):
                    files[part] = old.files[part]
            elif added is None or not len(added.ids):
                continue  # neither base rows nor overlay rows of this type
            else:  # a type the base does not hold: no base files, only the delta
                meta = {"codes": None, "ids": None, "count": 0}
            layer = CodeArray.empty(algorithm)
            if added is not None and len(added.ids):
                meta["delta"] = {"codes": self._write_array(algorithm, "delta-codes", added.codes, files),
                                 "ids": self._write_array(algorithm, "delta-ids", added.ids, files),
                                 "count": int(len(added.ids))}
                layer = added
            array_meta[algorithm] = meta
            opened[algorithm] = CodeArray(base.codes, base.ids, base.mih, hidden, layer)
            if meta["codes"] is not None:
                loaded.update({meta["codes"]: base.codes, meta["ids"]: base.ids})
                if "mih" in meta and base.mih is not None:
                    loaded.update({meta["mih"]["dirs"]: base.mih[0], meta["mih"]["packed"]: base.mih[1]})
        counts = {a: {"active": max(0, info["counts"].get(a, {}).get("active", 0)),
                      "disabled": max(0, info["counts"].get(a, {}).get("disabled", 0))}
                  for a in _algorithms(array_meta, info["counts"])}
        lists = [{"name": n, "version": v, "entries": int(info["lists"].get(n, 0))}
                 for n, v in sorted(versions.items())]
        manifest = Manifest(generation=self.generation, pdq_mode=old.pdq_mode, created=old.created, updated=_now(),
                            files=files, arrays=array_meta, counts=counts, lists=lists, database=old.database,
                            overlay=name,
                            hidden={"ids": hidden_name, "count": int(len(hidden))} if hidden_name else None,
                            base={**(old.base or {}), "overlay_rows": info["overlay_rows"]},
                            sources=_sources(old, delta))
        self._publish(manifest, change, delta)
        return Generation(self.root, manifest, opened, loaded)

    def _install(self, temp: str, name: str, files: dict[str, dict[str, Any]]) -> None:
        """A database written to `temp` becomes this generation's file `name`: 0600,
        synced, checksummed into `files`, renamed into place."""
        os.chmod(temp, 0o600)
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
            handle.seek(0)
            digest = hashlib.file_digest(handle, "sha256")
            size = handle.tell()
        os.replace(temp, self.root / name)
        files[name] = {"sha256": digest.hexdigest(), "bytes": size}
        with open(self.root / name, "rb") as handle:  # hashed just now: a later writer need not hash it again
            _remember_verified(self.root / name, handle, files[name]["sha256"])

    def _write_array(self, algorithm: str, kind: str, payload: np.ndarray, files: dict[str, dict[str, Any]]) -> str:
        """Write one array file of this generation (atomic, 0600), record its checksum in
        `files`, return its name."""
        name = self._name(algorithm, kind)
        # .data: the array's memoryview (an empty one cannot be cast: write no bytes)
        blob = np.ascontiguousarray(payload).data.cast("B") if payload.size else memoryview(b"")
        with atomic_write(self.root / name, "wb") as handle:
            handle.write(blob)
        files[name] = {"sha256": _sha256(blob), "bytes": len(blob)}
        return name

    def _old_array(self, algorithm: str) -> CodeArray:
        """The previous generation's array: its base rows, with its hidden ids and delta."""
        meta = self.old.arrays.get(algorithm)
        if meta is None:
            return CodeArray.empty(algorithm)
        if self.current is not None and algorithm in self.current:
            return self.current[algorithm]
        return load_code_array(self.root, self.old, algorithm)

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
                        and path.suffix in _DATA_SUFFIXES:
                    with contextlib.suppress(OSError):
                        path.unlink()


def _sources(old: Manifest, delta: _Delta) -> dict[str, dict[str, Any]] | None:
    return old.sources if delta.sources is None else delta.sources(dict(old.sources or {}))


def _active_codes(db: sqlite3.Connection, algorithm: str, table: str = "entries") -> CodeArray:
    """The active codes read row by row from the database (or a view of it): what the
    arrays must equal (Store.check_consistency; an overlay's delta, which is small); too
    slow to build every generation with at 10M entries."""
    rows = db.execute(f"SELECT id, hash FROM {table} WHERE algorithm = ? AND disabled = 0 ORDER BY id",
                      (algorithm,)).fetchall()
    if not rows:
        return CodeArray.empty(algorithm)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return entry_codes(algorithm, ids, [r[1] for r in rows])
