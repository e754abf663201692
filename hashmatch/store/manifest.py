"""The store's manifest: what a generation is made of, and the proof that it is intact.

``manifest.json`` names the generation, the PDQ convention, every data file with its
sha256 and size, the code arrays and the lists. It protects itself: it carries the
sha256 of its own canonical content (``manifest_sha256``), and every field is checked
against a strict schema on reading (file names of the store's own pattern, array sizes
that agree with their entry counts, ...). Any damage, a flipped bit or an edit that
changes what the manifest says, is a StoreIntegrityError, never a KeyError or an
SQLite error later.

Rollback: the generation last committed is also written into the writers' lock file
(``.lock``: a high-water mark) when a change commits; a manifest of an older generation
than the mark (an old manifest.json copied back) is refused. What this cannot detect: a
deliberate edit that also recomputes ``manifest_sha256`` (the checksum has no secret
key), or a restore of the whole folder, ``.lock`` included, from a backup; the audit log
(STORE/audit.jsonl, one line per change) is where an operator sees the history.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashmatch import signals
from hashmatch.errors import StoreError, StoreIntegrityError
from hashmatch.signals.pdq import PDQ_MODES

#: 2: the manifest carries its own checksum. 3: it also records the base's facts, and a
#: generation may be a base plus an overlay (overlay.py). 1 (no checksum) is still read.
FORMAT_VERSION = 2
OVERLAY_FORMAT_VERSION = 3
#: A manifest that records exchange sources (their settings and checkpoints, committed
#: with the entries a fetch brought): an older hashmatch must not open it as if it had none.
SOURCES_FORMAT_VERSION = 4
_READABLE_VERSIONS = (1, 2, 3, 4)
_FILE_NAME = re.compile(r"^(entries|[a-z0-9]+)\.(\d{6})\.(sqlite|codes|ids|mih-dirs|mih-packed|delta-codes|delta-ids)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class Manifest:
    generation: int = 0
    pdq_mode: str = "full"
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrays: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    lists: list[dict[str, Any]] = field(default_factory=list)
    database: str | None = None
    # A base plus an overlay (overlay.py): the overlay database, the hidden base ids,
    # and the facts of the base the overlay's counts are computed from.
    overlay: str | None = None
    hidden: dict[str, Any] | None = None
    base: dict[str, Any] | None = None
    # Exchange sources (exchanges/): name -> settings and checkpoint. Never a secret: a
    # credentials file is named by its path only.
    sources: dict[str, dict[str, Any]] | None = None

    def to_json(self) -> str:
        fields = dict(self.__dict__)
        layered = self.overlay is not None or self.base is not None
        if not layered:  # the version 2 layout, byte for byte
            for key in ("overlay", "hidden", "base"):
                fields.pop(key)
        if not self.sources:  # versions 2 and 3 byte for byte
            fields.pop("sources")
        version = SOURCES_FORMAT_VERSION if self.sources else OVERLAY_FORMAT_VERSION if layered else FORMAT_VERSION
        body = {"format_version": version, **fields}
        return json.dumps({**body, "manifest_sha256": _checksum(body)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = "manifest.json") -> "Manifest":
        """The manifest `text` holds, checked; StoreIntegrityError for anything damaged."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise StoreIntegrityError(f"{where} is damaged: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise StoreIntegrityError(f"{where} is damaged: not a JSON object")
        version = data.get("format_version")
        if version not in _READABLE_VERSIONS:
            if isinstance(version, int) and version > SOURCES_FORMAT_VERSION:
                raise StoreError(f"store format version {version} is newer than this hashmatch reads "
                                 f"({SOURCES_FORMAT_VERSION}); upgrade hashmatch")
            raise StoreIntegrityError(f"{where} is damaged: format version {version!r}")
        if version >= 2:
            claimed = data.pop("manifest_sha256", None)
            if claimed != _checksum(data):
                raise StoreIntegrityError(f"{where} does not match its own checksum (damaged or edited); "
                                          "refusing to use the store")
        data.pop("format_version")
        try:
            manifest = cls(**data)
        except TypeError as exc:  # unknown or missing top-level keys
            raise StoreIntegrityError(f"{where} is damaged: {exc}") from exc
        missing = sorted(a for a in (manifest.arrays if isinstance(manifest.arrays, dict) else ())
                         if isinstance(a, str) and signals.find(a) is None)
        if missing and version >= 2:  # intact, so these are signal types of a plug-in not installed here
            raise StoreError(f"the store holds {', '.join(missing)} entries: install the plug-in that provides "
                             f"{'that signal type' if len(missing) == 1 else 'those signal types'}")
        problem = _problem(manifest)
        if problem:
            raise StoreIntegrityError(f"{where} is damaged: {problem}")
        return manifest


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _problem(m: Manifest) -> str | None:
    """What is wrong with a parsed manifest, or None: every field of the right type, every
    file named in the store's pattern and listed with a checksum, array sizes that agree."""
    if not (isinstance(m.generation, int) and not isinstance(m.generation, bool) and m.generation >= 0):
        return f"bad generation {m.generation!r}"
    if m.pdq_mode not in PDQ_MODES:
        return f"bad PDQ mode {m.pdq_mode!r}"
    if not all(isinstance(v, str) for v in (m.created, m.updated)):
        return "bad dates"
    if not isinstance(m.files, dict) or not isinstance(m.arrays, dict) or not isinstance(m.counts, dict) \
            or not isinstance(m.lists, list):
        return "bad section types"
    for name, meta in m.files.items():
        named = _FILE_NAME.match(name)
        # A base's files stay in use by later generations: any generation up to this one.
        if not named or int(named.group(2)) > m.generation:
            return f"bad file name {name!r}"
        if not (isinstance(meta, dict) and isinstance(meta.get("sha256"), str) and _HEX64.match(meta["sha256"])
                and _count(meta.get("bytes")) and set(meta) == {"sha256", "bytes"}):
            return f"bad checksum record for {name}"
    if m.database is not None and (m.database not in m.files or not m.database.endswith(".sqlite")):
        return f"bad database {m.database!r}"
    if m.database is None and m.generation > 0:
        return "no database"
    for algorithm, meta in m.arrays.items():
        problem = _array_problem(m, algorithm, meta)
        if problem:
            return problem
    for algorithm, count in m.counts.items():
        if (not isinstance(count, dict) or set(count) != {"active", "disabled"}
                or not all(_count(v) for v in count.values())):
            return f"bad counts for {algorithm!r}"
        signal = signals.find(algorithm)
        rows = (m.arrays.get(algorithm) or {}).get("count", 0)
        # A variable type's array holds several codes per entry, or none (a video with no
        # frame good enough to match): only a fixed type's rows are its active entries;
        # with an overlay they are the base's rows less the hidden ones plus the delta's.
        if signal is not None and not signal.variable and m.overlay is None and count["active"] != rows:
            return f"{algorithm}: counts disagree with the arrays"
    problem = _overlay_problem(m)
    if problem:
        return problem
    for item in m.lists:
        if not (isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("version"), str)
                and _count(item.get("entries"))):
            return "bad list record"
    if m.sources is not None and not (isinstance(m.sources, dict) and all(
            isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("type"), str)
            and isinstance(v.get("list"), str) for k, v in m.sources.items())):
        return "bad sources"
    return None


def _array_problem(m: Manifest, algorithm: str, meta: Any) -> str | None:
    signal = signals.find(algorithm)
    if signal is None or signal.name != algorithm or not isinstance(meta, dict):
        return f"bad array {algorithm!r}"
    count = meta.get("count")
    if not _count(count):
        return f"{algorithm}: bad count"
    assert count is not None  # _count: a non-negative int
    width = signal.code_bytes
    no_base = count == 0 and meta.get("codes") is None and meta.get("ids") is None and "delta" in meta
    for kind, size in () if no_base else (("codes", count * width), ("ids", count * 8)):
        name = meta.get(kind)
        if not isinstance(name, str) or name not in m.files or not name.startswith(f"{algorithm}.") \
                or not name.endswith(f".{kind}") or m.files[name]["bytes"] != size:
            return f"{algorithm}: bad {kind} file record"
    mih = meta.get("mih")
    if mih is not None:
        if not isinstance(mih, dict) or not _count(mih.get("tables")) or not mih["tables"]:
            return f"{algorithm}: bad multi-index record"
        for kind in ("dirs", "packed"):
            name = mih.get(kind)
            if not isinstance(name, str) or name not in m.files or not name.startswith(f"{algorithm}.") \
                    or m.files[name]["bytes"] % (4 * mih["tables"]):
                return f"{algorithm}: bad multi-index {kind} file record"
    delta = meta.get("delta")
    if delta is not None:
        if not isinstance(delta, dict) or set(delta) != {"codes", "ids", "count"} or not _count(delta["count"]) \
                or m.overlay is None:
            return f"{algorithm}: bad delta record"
        for kind, size in (("codes", delta["count"] * width), ("ids", delta["count"] * 8)):
            name = delta[kind]
            if not isinstance(name, str) or name not in m.files or not name.startswith(f"{algorithm}.") \
                    or not name.endswith(f".delta-{kind}") or m.files[name]["bytes"] != size:
                return f"{algorithm}: bad delta {kind} file record"
    extra = set(meta) - {"codes", "ids", "count", "mih", "delta"}
    return f"{algorithm}: unknown keys {sorted(extra)}" if extra else None


def _overlay_problem(m: Manifest) -> str | None:
    base = m.base
    if base is not None and (not isinstance(base, dict)
                             or set(base) != {"total", "lists", "active", "disabled", "overlay_rows"}
                             or not _count(base["total"]) or not _count(base["overlay_rows"])
                             or not all(isinstance(base[k], dict) for k in ("lists", "active", "disabled"))):
        return "bad base facts"
    if m.overlay is None:
        return None if m.hidden is None else "hidden ids without an overlay"
    if base is None:
        return "an overlay without base facts"
    if m.overlay not in m.files or not m.overlay.startswith("overlay.") or not m.overlay.endswith(".sqlite"):
        return f"bad overlay {m.overlay!r}"
    hidden = m.hidden
    if hidden is not None and (not isinstance(hidden, dict) or set(hidden) != {"ids", "count"}
                               or not _count(hidden["count"]) or hidden["ids"] not in m.files
                               or not str(hidden["ids"]).startswith("hidden.")
                               or m.files[hidden["ids"]]["bytes"] != 8 * hidden["count"]):
        return "bad hidden ids record"
    return None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# -- rollback high-water mark ------------------------------------------------------------

def read_high_water(lock_path: Path) -> int:
    """The generation last committed, as the lock file records it (0: none recorded)."""
    try:
        text = lock_path.read_text(errors="replace").strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() and len(text) < 12 else 0


def write_high_water(fd: int, generation: int) -> None:
    """Record `generation` in the (open, exclusively locked) lock file."""
    import os

    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{generation}\n".encode(), 0)
    os.fsync(fd)


def check_not_rolled_back(manifest: Manifest, mark: int, where: str) -> None:
    """`mark` must have been read before the manifest: a writer replaces the manifest
    first and then raises the mark, so a mark read first never exceeds an intact manifest."""
    if manifest.generation < mark:
        raise StoreIntegrityError(
            f"{where} is generation {manifest.generation}, but generation {mark} was committed: the store was "
            "rolled back (an older manifest copied in?); refusing to use it")
