"""Scanning trees of files against a store: the job behind `hashmatch scan`.

    walk (this process)  ->  hash (worker processes)  ->  match (this process)  ->  report

* ``walk_tree`` lists every entry under the roots in sorted order without following
  symlinks (unless asked, then with loop detection by device and inode). Each regular file
  becomes a task; anything else that cannot be hashed (FIFO, socket, device, a symlink not
  followed, an unreadable folder) becomes an error row right away, so nothing found is
  ever silently left out.
* ``workers.WorkerPool`` hashes in separate processes: a decoder that crashes, hangs or
  eats memory costs only its own file (isolation/workers.py owns the limits, the replacement of
  dead workers and the JSON pipe protocol). Workers read the file (the very one the walk
  saw: same device and inode, no symlink planted since), take its size and exact hashes,
  and hash it; they never see the store.
* Matching runs in this process against one Matcher (engines built once), then each row
  is written and flushed to the report (report.py) as soon as it is known.
* ``--resume`` reads the existing report, keeps its complete rows, and skips their paths:
  no file is missing and none is counted twice after any interruption.

No image is ever displayed or copied; the report and the audit record are the output.
"""
from __future__ import annotations

import os
import stat
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator

from hashmatch import signals
from hashmatch.base.files import append_jsonl, who
from hashmatch.config import __version__, usable_cores
from hashmatch.decode.image import WalkedFile
from hashmatch.errors import (
    ConfigurationError,
    ImageError,
    NotARegularFileError,
    SymlinkNotFollowedError,
    UnreadableInputError,
)
from hashmatch.isolation.workers import DEFAULT_MEMORY_LIMIT, DEFAULT_TIMEOUT_S, HashJob, WorkerPool, error_record
from hashmatch.matching.matcher import Matcher
from hashmatch.scan.report import ReportWriter, read_report_rows

STATUSES = ("match", "no_match", "low_quality", "error")


# ----------------------------------------------------------------------------- walking

@dataclass(frozen=True)
class Found:
    """One entry of a walk: a regular file to hash (error None) or an entry that gets an
    error row without being opened."""

    path: str
    error: ImageError | None = None
    identity: tuple[int, int] | None = None  # (device, inode) the walk saw, for a regular file


def walk_tree(roots: Iterable[str | os.PathLike], *, follow_symlinks: bool = False) -> Iterator[Found]:
    """Every entry under the roots, sorted by name at each level (deterministic order, so a
    resumed scan sees the same sequence). Names that are not valid UTF-8 keep their bytes
    through surrogate escapes (os.fsdecode). A root that another root's walk reaches
    anyway (given twice, or inside another root) is walked once: one row per entry."""
    seen_dirs: set[tuple[int, int]] = set()
    for path in _distinct_roots([os.fspath(r) for r in roots], follow_symlinks):
        try:
            st = os.stat(path) if follow_symlinks else os.lstat(path)
        except OSError as exc:
            yield Found(path, UnreadableInputError(f"cannot open: {exc.strerror or exc}"))
            continue
        yield from _visit(path, st, follow_symlinks, seen_dirs)


def _distinct_roots(roots: list[str], follow: bool) -> list[str]:
    """The roots, in order, without those another root's walk covers: the same path again,
    or a path inside another root that its walk reaches (no symbolic link on the way,
    unless links are followed)."""
    absolute = [os.path.abspath(r) for r in roots]

    def covers(outer: str, inner: str) -> bool:
        if not inner.startswith(outer.rstrip(os.sep) + os.sep):
            return False
        if follow:
            return True
        step = os.path.dirname(inner)
        while len(step) > len(outer):  # each folder between the two must be a real folder
            if os.path.islink(step):
                return False
            step = os.path.dirname(step)
        return True

    kept = []
    for i, path in enumerate(roots):
        if any(absolute[i] == absolute[j] for j in range(i)):
            continue
        if any(covers(absolute[j], absolute[i]) for j in range(len(roots)) if j != i):
            continue
        kept.append(path)
    return kept


def _visit(path: str, st: os.stat_result, follow: bool, seen: set[tuple[int, int]]) -> Iterator[Found]:
    if stat.S_ISDIR(st.st_mode):
        yield from _walk_dir(path, st, follow, seen)
    else:
        yield _classify(path, st, follow)


def _walk_dir(path: str, st: os.stat_result, follow: bool, seen: set[tuple[int, int]]) -> Iterator[Found]:
    key = (st.st_dev, st.st_ino)
    if key in seen:  # a loop (or a second link to the same folder): list it once
        return
    seen.add(key)
    try:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield Found(path, UnreadableInputError(f"cannot list folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        child = os.path.join(path, entry.name)
        try:
            est = entry.stat(follow_symlinks=follow)
        except OSError as exc:  # vanished, or a broken link when following
            reason = "broken symbolic link" if follow and entry.is_symlink() else f"cannot stat: {exc.strerror or exc}"
            yield Found(child, UnreadableInputError(reason))
            continue
        yield from _visit(child, est, follow, seen)


def _classify(path: str, st: os.stat_result, follow: bool) -> Found:
    if stat.S_ISREG(st.st_mode):
        return Found(path, identity=(st.st_dev, st.st_ino))
    if stat.S_ISLNK(st.st_mode) and not follow:
        return Found(path, SymlinkNotFollowedError("symbolic link, not followed (see --follow-symlinks)"))
    kind = ("FIFO" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode)
            else "device" if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode) else "special file")
    return Found(path, NotARegularFileError(f"{kind}, not a regular file: skipped without opening"))


# ----------------------------------------------------------------------------- scanning

@dataclass
class ScanOptions:
    workers: int = 0  # 0: the usable cores
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT
    follow_symlinks: bool = False
    resume: bool = False
    report_format: str = "jsonl"


@dataclass
class ScanSummary:
    files: int = 0
    statuses: Counter = field(default_factory=Counter)
    categories: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    not_decoded: Counter = field(default_factory=Counter)  # decode_error code -> files matched by exact hashes only
    resumed: int = 0  # rows kept from the interrupted run
    elapsed_s: float = 0.0
    workers: int = 0
    workers_replaced: int = 0
    per_worker: dict[str, dict[str, float]] = field(default_factory=dict)  # Dask: files and busy seconds

    def add_worker_time(self, worker: str, files: int, busy_s: float) -> None:
        entry = self.per_worker.setdefault(worker, {"files": 0, "busy_s": 0.0})
        entry["files"] += files
        entry["busy_s"] += busy_s

    def add(self, row: dict[str, Any]) -> None:
        self.files += 1
        self.statuses[row["status"]] += 1
        if row["status"] == "error":
            self.errors[row["error"]["code"]] += 1
        elif row.get("decode_error"):
            self.not_decoded[row["decode_error"].get("code")] += 1
        for category in {m.get("category") or "(none)" for m in row.get("matches", ())}:
            self.categories[category] += 1

    def to_record(self) -> dict[str, Any]:
        scanned = self.files - self.resumed
        return {"summary": {
            "files": self.files, "matched": self.statuses["match"], "no_match": self.statuses["no_match"],
            "low_quality": self.statuses["low_quality"], "errors": self.statuses["error"],
            "errors_by_code": dict(self.errors),
            "not_decoded": sum(self.not_decoded.values()), "not_decoded_by_code": dict(self.not_decoded),
            "matched_by_category": dict(self.categories),
            "resumed_rows": self.resumed, "elapsed_s": round(self.elapsed_s, 3),
            "files_per_s": round(scanned / self.elapsed_s, 2) if self.elapsed_s > 0 else None,
            "workers": self.workers, "workers_replaced": self.workers_replaced,
            **({"per_worker": {w: {"files": int(v["files"]), "busy_s": round(v["busy_s"], 3),
                                   "files_per_s": round(v["files"] / v["busy_s"], 2) if v["busy_s"] else None}
                               for w, v in sorted(self.per_worker.items())}} if self.per_worker else {})}}


def hash_job(matcher: Matcher, options: ScanOptions) -> HashJob:
    """What the workers hash for this matcher (its algorithms, plus sha256 for the row)."""
    return HashJob.of(matcher.hasher, options.memory_limit, also=("sha256",))


class LocalExecutor:
    """The default executor: a WorkerPool of local processes, matching in this process."""

    def __init__(self, workers: int):
        self.workers = workers

    def rows(self, matcher: Matcher, options: ScanOptions, paths: Iterator[WalkedFile],
             summary: "ScanSummary") -> Iterator[dict[str, Any]]:
        with WorkerPool(hash_job(matcher, options), self.workers, options.timeout_s) as pool:
            for path, record in pool.imap(paths):
                yield file_row(path, record, matcher)
            summary.workers_replaced = pool.replaced


def scan(roots: list[str], matcher: Matcher, report_path: str, options: ScanOptions,
         progress: Callable[[dict[str, Any]], None] | None = None, executor: Any = None) -> ScanSummary:
    """Scan the roots into the report (one row per entry found) and return the summary,
    which is also the report's last record. `progress` is called with every row.

    `executor` runs the hashing and matching of regular files: LocalExecutor (the
    default, worker processes on this machine) or hashmatch.scan.dask_executor.DaskExecutor
    (a Dask cluster); anything with the same rows() method works. Walking, resuming and
    the report stay here, so every executor gives the same report."""
    started = time.monotonic()
    executor = executor or LocalExecutor(options.workers or usable_cores())
    summary = ScanSummary(workers=getattr(executor, "workers", 0))
    done: set[str] = set()
    if options.resume and os.path.exists(report_path):
        for row in read_report_rows(report_path, options.report_format):
            if "path" in row and row["path"] not in done:
                done.add(row["path"])
                summary.add(row)
        summary.resumed = summary.files
    writer = ReportWriter(report_path, options.report_format, matcher.algorithms, resume=options.resume)

    def emit(row: dict[str, Any]) -> None:
        writer.write(row)
        summary.add(row)
        if progress:
            progress(row)

    def tasks() -> Iterator[WalkedFile]:
        for found in walk_tree(roots, follow_symlinks=options.follow_symlinks):
            if found.path in done:
                continue
            if found.error is not None or found.identity is None:
                assert found.error is not None  # a Found has an error or an identity
                emit({"path": found.path, "status": "error", "error": error_record(found.error)})
                continue
            yield WalkedFile(found.path, *found.identity, follow_symlinks=options.follow_symlinks)

    try:
        for row in executor.rows(matcher, options, tasks(), summary):
            emit(row)
    finally:
        summary.elapsed_s = time.monotonic() - started
        writer.close(summary.to_record())
    return summary


def file_row(path: str, record: dict[str, Any], matcher: Matcher) -> dict[str, Any]:
    """The report row of one file from its worker record, matched in this process.

    A file whose content did not decode (not an image, corrupt, too large, or its decode
    crashed or timed out) is still matched by the exact hashes of its bytes when the
    matcher has any: its status is then match or no_match, and `decode_error` says why
    the perceptual hashes are missing. Without exact hashes to match it is an error row."""
    row: dict[str, Any] = {"path": path}
    for key in ("size", "sha256"):
        if record.get(key) is not None:
            row[key] = record[key]
    if "error" in record:
        exact = {a: h for a, h in (record.get("file_hashes") or {}).items() if a in matcher.algorithms}
        if not exact:
            row["status"] = "error"
            row["error"] = record["error"]
            return row
        return _matched(row, matcher, exact, decode_error=record["error"])
    return _matched(row, matcher, record["result"])


def _matched(row: dict[str, Any], matcher: Matcher, result: dict[str, Any],
             decode_error: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        matched = matcher.match_record(result)
    except ConfigurationError as exc:  # cannot happen for hashes we computed; keep the row anyway
        row.update(status="error", error={"type": type(exc).__name__, "code": "internal", "message": str(exc)})
        return row
    row["status"] = matched.status
    row["hashes"] = matched.hashes
    for name, value in matched.values.items():
        row.update(signals.get(name).report_fields(value))
    image = {k: result[k] for k in ("width", "height", "format", "mode", "frames") if k in result}
    if image:
        row["image"] = image
    if decode_error is not None:
        row["decode_error"] = decode_error
    row["matches"] = [m.to_dict() for m in matched.matches]
    return row


# ----------------------------------------------------------------------------- audit

def audit_record(matcher: Matcher, roots: list[str], report_path: str, options: ScanOptions,
                 summary: ScanSummary, started_at: str, list_files: list[str] | None = None) -> dict[str, Any]:
    """Who scanned what against which lists, with which settings and outcome counts. No
    hash values and no image data."""
    store = matcher.store
    lists = [{"name": info.name, "version": info.version, "entries": info.entries,
              "source_sha256": info.source_sha256}
             for info in store.lists()]
    counts = summary.to_record()["summary"]
    return {
        "event": "scan", "started_at": started_at, "finished_at": _now_iso(), **who(),
        "hashmatch_version": __version__,
        "roots": [os.path.abspath(r) for r in roots], "report": os.path.abspath(report_path),
        "store": None if list_files else str(store.path.resolve()), "store_generation": store.generation,
        "list_files": list_files, "lists": lists,
        "settings": {"algorithms": list(matcher.algorithms), "pdq_mode": store.pdq_mode,
                     "thresholds": matcher.thresholds, "pdq_quality_gate": matcher.config.pdq_quality_gate,
                     "dihedral": matcher.config.dihedral, "trim_borders": matcher.config.trim_borders,
                     "crop_robust": matcher.config.crop_robust,
                     **({"seconds_per_hash": matcher.config.seconds_per_hash,
                         "video_query_percent": matcher.config.video_query_percent,
                         "video_compared_percent": matcher.config.video_compared_percent}
                        if any(signals.get(a).content == "video" for a in matcher.algorithms) else {}),
                     **{k: v for k, v in asdict(options).items()}},
        "counts": counts,
    }


def append_audit(path: str, record: dict[str, Any]) -> None:
    """Append one JSON line to the audit log (0600; O_APPEND keeps lines whole)."""
    append_jsonl(path, record)


def _now_iso() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
