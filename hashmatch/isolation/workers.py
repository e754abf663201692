"""Hashing in isolated worker processes: a file that crashes, hangs or exhausts memory in
a decoder costs only its own outcome, never the process that asked for it.

* ``HashJob`` says what to compute (algorithms, PDQ convention, limits); ``hash_file``
  reads one file and hashes it, taking the exact hashes (always sha256) of every byte
  before decoding.
* ``WorkerPool`` runs N worker processes. Each runs under an address-space limit
  (RLIMIT_AS) and each file under a wall-clock limit; a worker that dies or overruns is
  killed and replaced, and the file gets a typed ``worker_crashed`` / ``timeout`` /
  ``out_of_memory`` outcome, still carrying the exact hashes the worker reported before
  decoding started.
* Nothing crosses the pipes as pickle: tasks and results are JSON documents (a decoder
  exploit inside a worker must not reach the parent through an unpickler). The job
  itself reaches the worker as a JSON string too.
* isolated.py's ``IsolatedHasher`` gives single calls the same protection (the Python
  API with ``Matcher(isolate=True)``, ``hashmatch hash --timeout``, the service) over
  these worker processes.
* A worker never outlives the process that asked for it (a watchdog on that process, and
  PR_SET_PDEATHSIG on the forkserver), and with
  a CPU budget (``HashJob.cpu_limit_s``) the kernel stops it when a file has used it up.
* A task names the file the walk saw (``WalkedFile``: path, device, inode): the worker
  opens it without following a symbolic link planted since (unless the walk followed
  links) and only if it is still the same file.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable, Iterator

from hashmatch.decode.image import DecodeLimits, WalkedFile
from hashmatch.errors import ConfigurationError, ImageError
from hashmatch.isolation.forkserver import worker_context
from hashmatch.signals.hasher import Hasher

#: Default wall-clock limit per file, in seconds (a 12 MP JPEG hashes in ~0.1 s).
DEFAULT_TIMEOUT_S = 60.0
#: Default memory one file may take in a worker (address space above the worker's own
#: footprint), in bytes: a 100 MP image needs about 2 GiB on the PDQ path.
DEFAULT_MEMORY_LIMIT = 4 << 30
#: Slowest read rate a file's time limit allows for (bytes/s): a file is first read whole
#: through its exact hashes, and a 20 GB video on a USB disk must not time out there.
READ_RATE = 32 << 20
#: Seconds of decoding a worker is given per second of video, on top of its time limit:
#: decoding at realtime, the slowest a video the caps admit (8K) decodes on one core here.
VIDEO_DECODE_S_PER_S = 1.0


def _video_time(seconds: Any) -> float:
    """The extra time a video that declares `seconds` gets (a hostile value counts as 0)."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return 0.0
    return value * VIDEO_DECODE_S_PER_S if 0 <= value < 1e6 else 0.0

WORKER_CRASHED = {"type": "WorkerCrashedError", "code": "worker_crashed",
            "message": "the hashing process died on this file (a decoder crash, a signal or the memory limit)"}


@dataclass(frozen=True)
class HashJob:
    """What a worker needs to hash files; travels to the worker as JSON."""

    algorithms: tuple[str, ...]
    pdq_mode: str
    dihedral: bool
    limits: DecodeLimits
    exif_transpose: bool
    memory_limit: int | None
    trim_borders: bool = False
    seconds_per_hash: float = 1.0
    cpu_limit_s: float | None = None  # CPU seconds one file may use (all its threads together)
    crop_robust: bool = False

    @classmethod
    def of(cls, hasher: Hasher, memory_limit: int | None, also: tuple[str, ...] = (),
           cpu_limit_s: float | None = None) -> "HashJob":
        """The job of `hasher` (plus the algorithms `also` names), each worker under
        `memory_limit` and each file under `cpu_limit_s`."""
        algorithms = hasher.algorithms + tuple(a for a in also if a not in hasher.algorithms)
        return cls(algorithms, hasher.pdq_mode, hasher.dihedral, hasher.limits, hasher.exif_transpose,
                   memory_limit, hasher.trim_borders, hasher.seconds_per_hash, cpu_limit_s, hasher.crop_robust)

    def hasher(self) -> Hasher:
        return Hasher(self.algorithms, pdq_mode=self.pdq_mode, dihedral=self.dihedral, limits=self.limits,
                      exif_transpose=self.exif_transpose, trim_borders=self.trim_borders,
                      seconds_per_hash=self.seconds_per_hash, crop_robust=self.crop_robust)

    def to_json(self) -> str:
        limits = {**asdict(self.limits), "formats": sorted(self.limits.formats),
                  "video_formats": sorted(self.limits.video_formats)}
        return json.dumps({**asdict(self), "limits": limits})

    @classmethod
    def from_json(cls, text: str) -> "HashJob":
        data = json.loads(text)
        limits = data.pop("limits")
        return cls(**{**data, "algorithms": tuple(data["algorithms"]),
                      "limits": DecodeLimits(**{**limits, "formats": frozenset(limits["formats"]),
                                                "video_formats": frozenset(limits["video_formats"])})})


def error_record(exc: BaseException) -> dict[str, Any]:
    code = getattr(exc, "code", None) or ("out_of_memory" if isinstance(exc, MemoryError) else "internal")
    message = str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        message = "out of memory while decoding (worker memory limit)"
    return {"type": type(exc).__name__, "code": code, "message": message}


def hash_file(path: str | os.PathLike | bytes, hasher: Hasher,
              on_file_hashes: Callable[[dict[str, Any]], None] | None = None,
              on_video_open: Callable[[float], None] | None = None) -> dict[str, Any]:
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
        result = hasher.hash(path, on_file_hashes=got, on_video_open=on_video_open).to_dict()
    except (ImageError, MemoryError) as exc:
        return {**facts, "error": error_record(exc)}
    return {**facts, "result": result}


def _send(conn: Connection, message: Any) -> None:
    conn.send_bytes(json.dumps(message).encode())


def _recv(conn: Connection) -> Any:
    return json.loads(conn.recv_bytes())


def _task(item: str | os.PathLike) -> list[Any]:
    if isinstance(item, WalkedFile):
        return [item.path, item.device, item.inode, item.follow_symlinks]
    return [os.fspath(item), None, None, True]


def _send_task(conn: Connection, item: str | os.PathLike | bytes) -> None:
    """A path travels as a JSON task; bytes as a JSON marker followed by the raw bytes."""
    if isinstance(item, bytes):
        _send(conn, [None, None, None, None])
        conn.send_bytes(item)
    else:
        _send(conn, _task(item))


def _source(conn: Connection, task: list[Any]) -> str | WalkedFile | bytes:
    path, device, inode, follow = task
    if path is None:
        return conn.recv_bytes()
    return path if device is None else WalkedFile(path, device, inode, follow)


def _worker_main(conn: Connection, job_json: str, owner: int) -> None:
    """A worker process: hash each task received until told to stop (null). Before
    decoding a file it sends {"partial": facts} (size and exact hashes), so the pool can
    still match those if the decode then crashes or hangs."""
    _die_with_parent(owner)
    _keep_freed_memory()
    job = HashJob.from_json(job_json)
    hasher = job.hasher()
    memory_limit = job.memory_limit
    _warm_up(hasher)
    if memory_limit:
        # The limit is what one file may add on top of the worker's own footprint (the
        # interpreter, numpy, Pillow and its plugins, loaded by the warm-up): the address
        # space in use now plus memory_limit.
        import resource

        limit = _address_space_in_use() + memory_limit
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _send(conn, "ready")  # the pool starts a file's clock only once its worker is ready

    def partial(facts: dict[str, Any]) -> None:
        _send(conn, {"partial": facts})

    def video_open(seconds: float) -> None:
        _send(conn, {"video_seconds": float(seconds)})

    while True:
        try:
            task = _recv(conn)
        except EOFError:
            return
        if task is None:
            return
        if job.cpu_limit_s:
            _limit_cpu(job.cpu_limit_s)
        try:
            record = hash_file(_source(conn, task), hasher, partial, video_open)
        except BaseException as exc:  # noqa: BLE001 - anything odd becomes this file's row
            record = {"error": error_record(exc)}
        _send(conn, record)


def _die_with_parent(owner: int) -> None:
    """A worker never outlives the hashmatch process that asked for it (`owner`), even in
    the middle of a decode. Its parent is the forkserver, which lives as long as any of its
    workers does (each holds the forkserver's "alive" pipe), so the parent alone is not
    enough: a watchdog thread waits on the owner itself (a pidfd, where Linux has them:
    no PID reuse race; else a liveness check every 0.5 s) and exits the worker when it is
    gone; the kernel also kills it when the forkserver dies (PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    try:
        pidfd = os.pidfd_open(owner)
    except (OSError, AttributeError):
        pidfd = None
    if pidfd is None and not _alive(owner):
        os._exit(1)

    def watch() -> None:
        if pidfd is not None:
            import select

            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.poll()  # readable once the owner has exited
        else:
            while _alive(owner):
                time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="hashmatch-owner-watchdog", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _limit_cpu(seconds: float) -> None:
    """The next file may use `seconds` of CPU time (every thread of its decoder counted):
    past that the kernel stops this worker (SIGXCPU), and the file's outcome is `timeout`."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


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

    if any(s.content == "video" for s in hasher.signal_types()):
        with contextlib.suppress(ImportError):
            import av  # noqa: F401 - FFmpeg's libraries in place before the memory limit
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"):
        buffer = io.BytesIO()
        try:
            Image.new("RGB", (16, 16), (90, 120, 150)).save(buffer, fmt)
            hasher.hash(buffer.getvalue())
        except Exception:  # noqa: BLE001,S110 - a format this Pillow lacks: nothing to warm up
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
        self.process = ctx.Process(target=_worker_main, args=(child, job.to_json(), os.getpid()), daemon=True)
        self.process.start()
        child.close()
        self.inflight: deque[str | os.PathLike] = deque()  # sent, not yet answered; the head is being hashed
        self.deadline = 0.0  # when the head's time runs out
        self.partial: dict[str, Any] = {}  # the head's size and exact hashes, once the worker sent them
        self.eof = False  # its pipe has closed (the process is gone)
        self.started = False  # IsolatedHasher: its "ready" was received

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
    error outcome, the files queued behind it go back to the front of the line. Workers
    come from a 'forkserver' that has preloaded hashmatch (never a fork of a process
    holding FAISS/OpenMP threads, and no per-worker import cost). Like any
    multiprocessing code, a script that uses it must guard its entry point with
    ``if __name__ == "__main__":``."""

    PIPELINE = 2

    def __init__(self, job: HashJob, workers: int, timeout_s: float):
        if workers < 1:
            raise ConfigurationError("workers must be at least 1")
        if timeout_s <= 0:
            raise ConfigurationError("the per-file time limit must be positive")
        self.job = job
        self.timeout_s = timeout_s
        self._ctx = worker_context()
        self._workers = [_Worker(self._ctx, job) for _ in range(workers)]
        self._starting: dict[Connection, _Worker] = {w.conn: w for w in self._workers}
        self._ready: dict[Connection, _Worker] = {}
        self._retry: deque[str | os.PathLike] = deque()  # files to hand out again (their worker was replaced)
        self.replaced = 0

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for w in self._workers:
            if w.process.is_alive() and not w.inflight:
                try:
                    _send(w.conn, None)
                except OSError:
                    pass
        for w in self._workers:
            w.process.join(2)
            w.kill()

    def imap(self, files: Iterable[str | os.PathLike]) -> Iterator[tuple[str, dict[str, Any]]]:
        """(path, record) for every file (a path or a WalkedFile), in completion order."""
        pending = iter(files)
        exhausted = False
        while True:
            if self._starting:
                self._await_ready(block=not self._ready)
            # Keep every ready worker's queue full.
            for worker in list(self._ready.values()):
                while len(worker.inflight) < self.PIPELINE:
                    item = self._retry.popleft() if self._retry else None
                    if item is None and not exhausted:
                        item = next(pending, None)
                        exhausted = item is None
                    if item is None:
                        break
                    worker.inflight.append(item)
                    if len(worker.inflight) == 1:
                        self._start_head(worker)
                    try:
                        _send_task(worker.conn, item)
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
                    record = _recv(conn)
                except (EOFError, OSError, ValueError):  # died (or wrote garbage): the liveness check handles it
                    worker.eof = True
                    continue
                if not isinstance(record, dict):
                    worker.eof = True  # not a message of ours: treated as a dead worker below
                    worker.process.kill()
                    continue
                if "partial" in record:  # read and exact-hashed; decoding starts now, with its own time
                    worker.partial = record["partial"]
                    worker.deadline = time.monotonic() + self.timeout_s
                    continue
                if "video_seconds" in record:  # a video opened: time in proportion to its duration
                    worker.deadline = time.monotonic() + self.timeout_s + _video_time(record["video_seconds"])
                    continue
                item = worker.inflight.popleft()
                if worker.inflight:
                    self._start_head(worker)  # the next file starts now
                if (record.get("error") or {}).get("code") == "out_of_memory":
                    self._replace(worker)  # a process that ran out of memory is not trusted again
                yield os.fspath(item), record
            now = time.monotonic()
            for conn, worker in list(busy.items()):
                if conn not in self._ready or not worker.inflight:
                    continue
                dead = not worker.process.is_alive() and (worker.eof or not _poll(conn))
                if dead or worker.deadline <= now:
                    item = worker.inflight.popleft()
                    error = _death_error(worker.process) if dead else _timeout_error(self.timeout_s)
                    facts = worker.partial  # the exact hashes still match a file whose decode killed its worker
                    self._replace(worker)
                    yield os.fspath(item), {**facts, "error": error}

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
                    message = _recv(conn)
                except (EOFError, OSError, ValueError):
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


def _size(path: str | os.PathLike) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _timeout_error(timeout_s: float) -> dict[str, str]:
    return {"type": "HashTimeoutError", "code": "timeout",
            "message": f"hashing took longer than {timeout_s:g} s; the worker was stopped"}


def _death_error(process: Any) -> dict[str, str]:
    """The outcome of a file whose worker died: its CPU budget spent (SIGXCPU), or a crash."""
    process.join(1)
    if process.exitcode == -signal.SIGXCPU:
        return {"type": "HashTimeoutError", "code": "timeout",
                "message": "hashing used up its CPU time budget; the worker was stopped"}
    return dict(WORKER_CRASHED)


