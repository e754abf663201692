"""Scanning trees of files against a store: the job behind `hashmatch scan`.

    walk (this process)  ->  hash (worker processes)  ->  match (this process)  ->  report

* ``walk_tree`` lists every entry under the roots in sorted order without following
  symlinks (unless asked, then with loop detection by device and inode). Each regular file
  becomes a task; anything else that cannot be hashed (FIFO, socket, device, a symlink not
  followed, an unreadable folder) becomes an error row right away, so nothing found is
  ever silently left out.
* ``WorkerPool`` hashes in separate processes: a decoder that crashes, hangs or eats
  memory costs only its own file. Each worker runs under an address-space limit
  (RLIMIT_AS) and each file under a wall-clock limit; a worker that dies or overruns is
  killed and replaced, and the file gets an error row. Workers read the file, take its
  size and sha256, and hash it; they never see the store.
* Matching runs in this process against one Matcher (engines built once), then each row
  is written and flushed to the report (report.py) as soon as it is known.
* ``--resume`` reads the existing report, keeps its complete rows, and skips their paths:
  no file is missing and none is counted twice after any interruption.

No image is ever displayed or copied; the report and the audit record are the output.
"""
from __future__ import annotations

import getpass
import json
import multiprocessing as mp
import os
import socket
import stat
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable, Iterator

from . import __version__
from .decode import DecodeLimits
from .errors import ConfigurationError, ImageError, NotARegularFileError, UnreadableInputError
from .hashing import Hasher, usable_cores
from .matcher import Matcher
from .report import ReportWriter, read_report_rows

#: Default wall-clock limit per file, in seconds (a 12 MP JPEG hashes in ~0.1 s).
DEFAULT_TIMEOUT_S = 60.0
#: Default memory one file may take in a worker (address space above the worker's own
#: footprint), in bytes: a 100 MP image needs about 2 GiB on the PDQ path.
DEFAULT_MEMORY_LIMIT = 4 << 30

#: Slowest read rate a file's time limit allows for (bytes/s): a file is first read whole
#: through its exact hashes, and a 20 GB video on a USB disk must not time out there.
READ_RATE = 32 << 20

STATUSES = ("match", "no_match", "low_quality", "error")


# ----------------------------------------------------------------------------- walking

@dataclass(frozen=True)
class Found:
    """One entry of a walk: a regular file to hash (error None) or an entry that gets an
    error row without being opened."""

    path: str
    error: ImageError | None = None


class SymlinkNotFollowedError(ImageError):
    """A symbolic link found in the tree; links are not followed unless asked."""

    code = "symlink_not_followed"


def walk_tree(roots: Iterable[str | os.PathLike], *, follow_symlinks: bool = False) -> Iterator[Found]:
    """Every entry under the roots, sorted by name at each level (deterministic order, so a
    resumed scan sees the same sequence). Names that are not valid UTF-8 keep their bytes
    through surrogate escapes (os.fsdecode)."""
    seen_dirs: set[tuple[int, int]] = set()
    for root in roots:
        path = os.fspath(root)
        try:
            st = os.stat(path) if follow_symlinks else os.lstat(path)
        except OSError as exc:
            yield Found(path, UnreadableInputError(f"cannot open: {exc.strerror or exc}"))
            continue
        yield from _visit(path, st, follow_symlinks, seen_dirs)


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
        return Found(path)
    if stat.S_ISLNK(st.st_mode) and not follow:
        return Found(path, SymlinkNotFollowedError("symbolic link, not followed (see --follow-symlinks)"))
    kind = ("FIFO" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode)
            else "device" if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode) else "special file")
    return Found(path, NotARegularFileError(f"{kind}, not a regular file: skipped without opening"))


# ----------------------------------------------------------------------------- workers

@dataclass(frozen=True)
class HashJob:
    """What a worker needs to hash files (picklable: sent once per worker)."""

    algorithms: tuple[str, ...]
    pdq_mode: str
    dihedral: bool
    limits: DecodeLimits
    exif_transpose: bool
    memory_limit: int | None
    trim_borders: bool = False

    def hasher(self) -> Hasher:
        return Hasher(self.algorithms, pdq_mode=self.pdq_mode, dihedral=self.dihedral, limits=self.limits,
                      exif_transpose=self.exif_transpose, trim_borders=self.trim_borders)


def _error_record(exc: BaseException) -> dict[str, Any]:
    code = getattr(exc, "code", None) or ("out_of_memory" if isinstance(exc, MemoryError) else "internal")
    message = str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        message = "out of memory while decoding (worker memory limit)"
    return {"type": type(exc).__name__, "code": code, "message": message}


def hash_file(path: str, hasher: Hasher,
              on_file_hashes: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Read and hash one file: {"size", "sha256", "file_hashes", "result"} or the same
    with "error" instead of "result". The exact hashes (file_hashes, always sha256 for the
    row) come from every byte of any readable file, image or not, and stay in the record
    when decoding fails; size/sha256/file_hashes are absent only when the file could not
    be read. `on_file_hashes(facts)` gets them before decoding starts."""
    facts: dict[str, Any] = {}

    def got(size: int, digests: dict[str, str]) -> None:
        facts.update(size=size, sha256=digests.get("sha256"), file_hashes=digests)
        if on_file_hashes is not None:
            on_file_hashes(dict(facts))

    try:
        result = hasher.hash(path, on_file_hashes=got).to_dict()
    except (ImageError, MemoryError) as exc:
        return {**facts, "error": _error_record(exc)}
    return {**facts, "result": result}


def _worker_main(conn: Connection, job: HashJob) -> None:
    """A worker process: hash each path received until told to stop (None). Before
    decoding a file it sends {"partial": facts} (size and exact hashes), so the pool can
    still match those if the decode then crashes or hangs."""
    _keep_freed_memory()
    hasher = job.hasher()
    _warm_up(hasher)
    if job.memory_limit:
        # The limit is what one file may add on top of the worker's own footprint (the
        # interpreter, numpy, Pillow and its plugins, loaded by the warm-up): the address
        # space in use now plus memory_limit.
        import resource

        limit = _address_space_in_use() + job.memory_limit
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send("ready")  # the pool starts a file's clock only once its worker is ready

    def partial(facts: dict[str, Any]) -> None:
        conn.send({"partial": facts})

    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        if path is None:
            return
        try:
            record = hash_file(path, hasher, partial)
        except BaseException as exc:  # noqa: BLE001 - anything odd becomes this file's row
            record = {"error": _error_record(exc)}
        conn.send(record)


def _keep_freed_memory() -> None:
    """glibc hands the multi-megabyte decode and PDQ buffers back to the kernel after
    every file and takes them again for the next, page fault by page fault: measured at
    ~1,900 faults and 5 ms of system time per 1024x768 JPEG, doubling a worker's CPU per
    file. Buffers up to 32 MiB come from the heap and freed memory is kept (a worker is a
    short-lived, single-purpose process). No-op outside glibc."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: the largest glibc accepts
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _warm_up(hasher: Hasher) -> None:
    """Hash a tiny generated image in each common format once, so that lazily loaded
    decoders and buffers are in place before the memory limit and the clock apply."""
    import io

    from PIL import Image

    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"):
        buffer = io.BytesIO()
        try:
            Image.new("RGB", (16, 16), (90, 120, 150)).save(buffer, fmt)
            hasher.hash(buffer.getvalue())
        except Exception:  # noqa: BLE001 - a format this Pillow lacks: nothing to warm up
            pass


def _address_space_in_use() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _Worker:
    def __init__(self, ctx, job: HashJob):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, job), daemon=True)
        self.process.start()
        child.close()
        self.inflight: deque[str] = deque()  # sent, not yet answered; the head is being hashed
        self.deadline = 0.0  # when the head's time runs out
        self.partial: dict[str, Any] = {}  # the head's size and exact hashes, once the worker sent them
        self.eof = False  # its pipe has closed (the process is gone)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class WorkerPool:
    """N hashing processes; results in completion order.

    Each worker has up to PIPELINE files in flight, so it never waits for the main
    process between files. Only the head of a worker's queue is being hashed; its clock
    starts when the worker turns to it. A worker that exceeds `timeout_s` on its head, or
    dies (a crash, the OOM killer, a signal), is killed and replaced: the head gets an
    error row, the files queued behind it go back to the front of the line. Workers come
    from a 'forkserver' that has preloaded hashmatch (never a fork of a process holding
    FAISS/OpenMP threads, and no per-worker import cost). Like any multiprocessing code,
    a script that scans must guard its entry point with ``if __name__ == "__main__":``."""

    PIPELINE = 2

    def __init__(self, job: HashJob, workers: int, timeout_s: float):
        if workers < 1:
            raise ConfigurationError("workers must be at least 1")
        if timeout_s <= 0:
            raise ConfigurationError("the per-file time limit must be positive")
        self.job = job
        self.timeout_s = timeout_s
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(["hashmatch.scan"])
        self._workers = [_Worker(self._ctx, job) for _ in range(workers)]
        self._starting: dict[Connection, _Worker] = {w.conn: w for w in self._workers}
        self._ready: dict[Connection, _Worker] = {}
        self._retry: deque[str] = deque()  # paths to hand out again (their worker was replaced)
        self.replaced = 0

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for w in self._workers:
            if w.process.is_alive() and not w.inflight:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        for w in self._workers:
            w.process.join(2)
            w.kill()

    def imap(self, paths: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """(path, record) for every path, in completion order."""
        pending = iter(paths)
        exhausted = False
        while True:
            if self._starting:
                self._await_ready(block=not self._ready)
            # Keep every ready worker's queue full.
            for worker in list(self._ready.values()):
                while len(worker.inflight) < self.PIPELINE:
                    path = self._retry.popleft() if self._retry else None
                    if path is None and not exhausted:
                        path = next(pending, None)
                        exhausted = path is None
                    if path is None:
                        break
                    worker.inflight.append(path)
                    if len(worker.inflight) == 1:
                        self._start_head(worker)
                    try:
                        worker.conn.send(path)
                    except OSError:  # died while waiting: the liveness check below handles it
                        break
            if not any(w.inflight for w in self._ready.values()):
                if self._starting and (self._retry or not exhausted):
                    continue
                return
            busy = {c: w for c, w in self._ready.items() if w.inflight}
            timeout = max(0.0, min(w.deadline for w in busy.values()) - time.monotonic())
            if self._starting:
                timeout = min(timeout, 0.05)
            ready = wait(list(busy) + [w.process.sentinel for w in busy.values()], timeout)
            for conn in [c for c in ready if c in busy]:
                worker = busy[conn]
                try:
                    record = conn.recv()
                except (EOFError, OSError):
                    worker.eof = True  # it died: reported by the liveness check below
                    continue
                if "partial" in record:  # read and exact-hashed; decoding starts now, with its own time
                    worker.partial = record["partial"]
                    worker.deadline = time.monotonic() + self.timeout_s
                    continue
                path = worker.inflight.popleft()
                if worker.inflight:
                    self._start_head(worker)  # the next file starts now
                if (record.get("error") or {}).get("code") == "out_of_memory":
                    self._replace(worker)  # a process that ran out of memory is not trusted again
                yield path, record
            now = time.monotonic()
            for conn, worker in list(busy.items()):
                if conn not in self._ready or not worker.inflight:
                    continue
                dead = not worker.process.is_alive() and (worker.eof or not _poll(conn))
                if dead or worker.deadline <= now:
                    path = worker.inflight.popleft()
                    error = dict(_CRASHED) if dead else {
                        "type": "TimeoutError", "code": "timeout",
                        "message": f"hashing took longer than {self.timeout_s:g} s; the worker was stopped"}
                    facts = worker.partial  # the exact hashes still match a file whose decode killed its worker
                    self._replace(worker)
                    yield path, {**facts, "error": error}

    def _start_head(self, worker: _Worker) -> None:
        """The head of the worker's queue starts now: its time limit, plus time to read
        a large file through its exact hashes (at READ_RATE) before decoding starts."""
        worker.partial = {}
        try:
            size = os.stat(worker.inflight[0]).st_size
        except OSError:
            size = 0
        worker.deadline = time.monotonic() + self.timeout_s + size / READ_RATE

    def _await_ready(self, block: bool) -> None:
        """Move workers that finished starting to ready; replace any that died starting."""
        conns = list(self._starting)
        ready = wait(conns + [w.process.sentinel for w in self._starting.values()], None if block else 0)
        for conn in conns:
            worker = self._starting[conn]
            if conn in ready or worker.process.sentinel in ready:
                del self._starting[conn]
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    message = None
                if message == "ready":
                    self._ready[conn] = worker
                elif self.replaced > 4 * len(self._workers) + 16 and not self._ready:
                    raise RuntimeError("hashing workers keep dying while starting; giving up")
                else:
                    self._replace(worker)

    def _replace(self, worker: _Worker) -> _Worker:
        """Kill a worker, put the files queued behind its head back in line, start another."""
        self._ready.pop(worker.conn, None)
        self._retry.extendleft(reversed(worker.inflight))
        worker.inflight.clear()
        worker.kill()
        fresh = _Worker(self._ctx, self.job)
        self._workers[self._workers.index(worker)] = fresh
        self._starting[fresh.conn] = fresh
        self.replaced += 1
        return fresh


def _poll(conn: Connection) -> bool:
    try:
        return conn.poll()
    except (EOFError, OSError):
        return False


_CRASHED = {"type": "WorkerCrashedError", "code": "worker_crashed",
            "message": "the hashing process died on this file (a decoder crash, a signal or the memory limit)"}


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
    hasher = matcher.hasher
    return HashJob(hasher.algorithms if "sha256" in hasher.algorithms else (*hasher.algorithms, "sha256"),
                   hasher.pdq_mode, hasher.dihedral, hasher.limits, hasher.exif_transpose, options.memory_limit,
                   hasher.trim_borders)


class LocalExecutor:
    """The default executor: a WorkerPool of local processes, matching in this process."""

    def __init__(self, workers: int):
        self.workers = workers

    def rows(self, matcher: Matcher, options: ScanOptions, paths: Iterator[str],
             summary: "ScanSummary") -> Iterator[dict[str, Any]]:
        with WorkerPool(hash_job(matcher, options), self.workers, options.timeout_s) as pool:
            for path, record in pool.imap(paths):
                yield _row(path, record, matcher)
            summary.workers_replaced = pool.replaced


def scan(roots: list[str], matcher: Matcher, report_path: str, options: ScanOptions,
         progress: Callable[[dict[str, Any]], None] | None = None, executor: Any = None) -> ScanSummary:
    """Scan the roots into the report (one row per entry found) and return the summary,
    which is also the report's last record. `progress` is called with every row.

    `executor` runs the hashing and matching of regular files: LocalExecutor (the
    default, worker processes on this machine) or hashmatch.dask_executor.DaskExecutor
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

    def tasks() -> Iterator[str]:
        for found in walk_tree(roots, follow_symlinks=options.follow_symlinks):
            if found.path in done:
                continue
            if found.error is not None:
                emit({"path": found.path, "status": "error", "error": _error_record(found.error)})
                continue
            yield found.path

    try:
        for row in executor.rows(matcher, options, tasks(), summary):
            emit(row)
    finally:
        summary.elapsed_s = time.monotonic() - started
        writer.close(summary.to_record())
    return summary


def _row(path: str, record: dict[str, Any], matcher: Matcher) -> dict[str, Any]:
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
        hashes = {a: h for a, h in (record.get("file_hashes") or {}).items() if a in matcher.algorithms}
        if not hashes:
            row["status"] = "error"
            row["error"] = record["error"]
            return row
        return _matched(row, matcher, hashes, {}, decode_error=record["error"])
    result = record["result"]
    return _matched(row, matcher, {a: result[a] for a in matcher.algorithms if a in result}, result)


def _matched(row: dict[str, Any], matcher: Matcher, hashes: dict[str, str], result: dict[str, Any],
             decode_error: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        matched = matcher.match_hashes(hashes, pdq_quality=result.get("pdq_quality"),
                                       pdq_dihedral=result.get("pdq_dihedral"), pdq_trimmed=result.get("pdq_trimmed"),
                                       pdq_trimmed_quality=result.get("pdq_trimmed_quality"))
    except ConfigurationError as exc:  # cannot happen for hashes we computed; keep the row anyway
        row.update(status="error", error={"type": type(exc).__name__, "code": "internal", "message": str(exc)})
        return row
    row["status"] = matched.status
    row["hashes"] = hashes
    if result.get("pdq_quality") is not None:
        row["pdq_quality"] = result["pdq_quality"]
    if result.get("pdq_trimmed") is not None:
        row["pdq_trimmed"] = result["pdq_trimmed"]
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
    lists = [{"name": l.name, "version": l.version, "entries": l.entries, "source_sha256": l.source_sha256}
             for l in store.lists()]
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        user = str(os.getuid())
    counts = summary.to_record()["summary"]
    return {
        "event": "scan", "started_at": started_at, "finished_at": _now_iso(), "user": user,
        "host": socket.gethostname(), "hashmatch_version": __version__,
        "roots": [os.path.abspath(r) for r in roots], "report": os.path.abspath(report_path),
        "store": None if list_files else str(store.path.resolve()), "store_generation": store.generation,
        "list_files": list_files, "lists": lists,
        "settings": {"algorithms": list(matcher.algorithms), "pdq_mode": store.pdq_mode,
                     "thresholds": matcher.options.thresholds, "pdq_quality_gate": matcher.options.pdq_quality_gate,
                     "dihedral": matcher.options.dihedral, **{k: v for k, v in asdict(options).items()}},
        "counts": counts,
    }


def append_audit(path: str, record: dict[str, Any]) -> None:
    """Append one JSON line to the audit log (created 0600; O_APPEND keeps lines whole)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _now_iso() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
