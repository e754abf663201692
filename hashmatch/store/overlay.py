"""Small store changes in O(change): a generation as a shared base plus a small overlay.

A full generation (writer.py) is a base: the entry database, the code arrays and
the multi-index tables, all immutable. A small change (disabling, enabling or removing a
few entries, importing or replacing a small list) does not copy them: it writes an
*overlay* next to them, and the new generation's manifest names the base's files (written
by an earlier generation, checksummed as ever) and the overlay's:

    STORE/overlay.<gen>.sqlite     entries added or changed since the base (whole rows),
                                   `hidden` (base ids not visible as they stand there:
                                   removed, or overridden by an overlay row), the lists
                                   table, the removal audit since the base
    STORE/hidden.<gen>.ids         the hidden ids, sorted int64 (for the matchers)
    STORE/<alg>.<gen>.delta-codes  the overlay's active codes, and their entry ids
    STORE/<alg>.<gen>.delta-ids

The change pulls the rows it touches into the overlay (hiding them in the base) and runs
the same SQL a full change runs, on the overlay's tables. Readers attach the overlay to
the base and read through views (base rows not hidden, then overlay rows); matchers keep
the base's engine, drop hidden ids from its hits, and search the delta too. A change that
would grow the overlay past OVERLAY_MAX_ROWS (or past OVERLAY_MAX_SHARE of the base), or
a large one, writes a full generation instead, which folds the overlay into a new base
(compaction).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Sequence

from hashmatch.store.manifest import Manifest

#: Rows a base needs before small changes go into an overlay: copying a smaller store
#: whole takes well under a second anyway.
OVERLAY_MIN_BASE = 100_000
#: Rows (overlay entries + hidden ids) an overlay may hold before the next change compacts.
OVERLAY_MAX_ROWS = 200_000
#: ... and at most this share of the base's rows.
OVERLAY_MAX_SHARE = 0.05

OVERLAY_SCHEMA = """
CREATE TABLE entries (
    id INTEGER PRIMARY KEY, list_name TEXT NOT NULL, algorithm TEXT NOT NULL, hash BLOB NOT NULL,
    category TEXT, entry_id TEXT, date_added TEXT, tags TEXT,
    disabled INTEGER NOT NULL DEFAULT 0, disabled_reason TEXT, disabled_at TEXT
);
CREATE INDEX entries_by_list ON entries (list_name);
CREATE TABLE hidden (id INTEGER PRIMARY KEY);
CREATE TABLE lists (
    name TEXT PRIMARY KEY, version TEXT NOT NULL, source_format TEXT, source_sha256 TEXT,
    imported_at TEXT NOT NULL, pdq_mode TEXT
);
CREATE TABLE removed (
    id INTEGER NOT NULL, list_name TEXT NOT NULL, list_version TEXT, algorithm TEXT NOT NULL,
    hash BLOB NOT NULL, entry_id TEXT, removed_at TEXT NOT NULL, reason TEXT
);
"""


def _uri(path: Path) -> str:
    return path.resolve().as_uri() + "?mode=ro&immutable=1"


def fits(manifest: Manifest, rows: int | None) -> bool:
    """Whether a change touching about `rows` rows can go into an overlay (None: the
    change is large by nature, e.g. a list of unknown size)."""
    if rows is None or manifest.database is None or manifest.base is None:
        return False  # no base yet, or one written before overlays existed: a full change records its facts
    if manifest.base["total"] < OVERLAY_MIN_BASE:
        return False
    limit = min(OVERLAY_MAX_ROWS, max(1_000, int(OVERLAY_MAX_SHARE * manifest.base["total"])))
    return manifest.base["overlay_rows"] + 2 * rows <= limit


def attach_views(conn: sqlite3.Connection, root: Path, manifest: Manifest) -> None:
    """TEMP views a reader queries: v_entries, v_lists, v_removed (the base alone, or the
    base with the overlay laid over it)."""
    if manifest.overlay is None:
        conn.executescript("CREATE TEMP VIEW v_entries AS SELECT * FROM main.entries;"
                           "CREATE TEMP VIEW v_lists AS SELECT * FROM main.lists;"
                           "CREATE TEMP VIEW v_removed AS SELECT * FROM main.removed;")
        return
    conn.execute("ATTACH DATABASE ? AS ov", (_uri(root / manifest.overlay),))
    conn.executescript(
        "CREATE TEMP VIEW v_entries AS SELECT * FROM main.entries WHERE id NOT IN (SELECT id FROM ov.hidden)"
        " UNION ALL SELECT * FROM ov.entries;"
        "CREATE TEMP VIEW v_lists AS SELECT * FROM ov.lists;"
        "CREATE TEMP VIEW v_removed AS SELECT * FROM main.removed UNION ALL SELECT * FROM ov.removed;")


def fold_into(db: sqlite3.Connection, root: Path, manifest: Manifest) -> None:
    """Apply the manifest's overlay to `db`, a writable copy of its base: the full
    database of that generation (a full change, or compaction, starts from it)."""
    if manifest.overlay is None:
        return
    db.execute("ATTACH DATABASE ? AS ov", (_uri(root / manifest.overlay),))
    db.executescript("DELETE FROM entries WHERE id IN (SELECT id FROM ov.hidden);"
                     "INSERT INTO entries SELECT * FROM ov.entries;"
                     "DELETE FROM lists; INSERT INTO lists SELECT * FROM ov.lists;"
                     "INSERT INTO removed SELECT * FROM ov.removed;")
    db.commit()
    db.execute("DETACH DATABASE ov")


def start(db: sqlite3.Connection, root: Path, manifest: Manifest, fresh: bool) -> None:
    """Prepare a writable overlay `db` (a copy of the previous overlay, or `fresh`) with
    the base attached as `base`."""
    if fresh:
        db.executescript(OVERLAY_SCHEMA)
    assert manifest.database is not None
    db.execute("ATTACH DATABASE ? AS base", (_uri(root / manifest.database),))
    if fresh:
        db.execute("INSERT INTO lists SELECT * FROM base.lists")


def pull(db: sqlite3.Connection, where: str, params: Sequence[Any]) -> None:
    """Bring the base rows matching `where` (a condition on entries' columns) into the
    overlay, hidden in the base, so the change's SQL finds them in the overlay's tables."""
    db.execute(f"INSERT INTO entries SELECT * FROM base.entries WHERE ({where})"
               " AND id NOT IN (SELECT id FROM hidden)", params)
    db.execute(f"INSERT OR IGNORE INTO hidden SELECT id FROM base.entries WHERE ({where})", params)


def max_id(db: sqlite3.Connection) -> int:
    """The largest entry id ever used, base and overlay, removed ones included."""
    names = [row[1] for row in db.execute("PRAGMA database_list")]
    sources = ["entries", "removed"] + (["base.entries", "base.removed"] if "base" in names else [])
    return max(db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0] for table in sources)


def facts(db: sqlite3.Connection, manifest: Manifest) -> dict[str, Any]:
    """The generation's counts from the base's facts and the overlay (no scan of the base):
    per algorithm active and disabled, per list entries, and the overlay's size."""
    base = manifest.base or {}
    per_alg: dict[str, dict[str, int]] = {}

    def add(algorithm: str, key: str, value: int) -> None:
        slot = per_alg.setdefault(algorithm, {"active": 0, "disabled": 0})
        slot[key] += value
    for algorithm, value in base.get("active", {}).items():
        add(algorithm, "active", int(value))
    for algorithm, value in base.get("disabled", {}).items():
        add(algorithm, "disabled", int(value))
    for algorithm, disabled, count in db.execute(
            "SELECT algorithm, disabled, COUNT(*) FROM base.entries WHERE id IN (SELECT id FROM hidden)"
            " GROUP BY algorithm, disabled"):
        add(algorithm, "disabled" if disabled else "active", -count)
    for algorithm, disabled, count in db.execute(
            "SELECT algorithm, disabled, COUNT(*) FROM entries GROUP BY algorithm, disabled"):
        add(algorithm, "disabled" if disabled else "active", count)
    lists = {name: int(value) for name, value in base.get("lists", {}).items()}
    for name, count in db.execute("SELECT list_name, COUNT(*) FROM base.entries WHERE id IN"
                                  " (SELECT id FROM hidden) GROUP BY list_name"):
        lists[name] = lists.get(name, 0) - count
    for name, count in db.execute("SELECT list_name, COUNT(*) FROM entries GROUP BY list_name"):
        lists[name] = lists.get(name, 0) + count
    rows = db.execute("SELECT (SELECT COUNT(*) FROM entries) + (SELECT COUNT(*) FROM hidden)").fetchone()[0]
    return {"counts": per_alg, "lists": lists, "overlay_rows": int(rows)}
