"""What a store generation is on disk, and reading it safely: the file names, the code
arrays (CodeArray), loading a file only after its sha256 matches the manifest, reading
the manifest itself (manifest.py checks it), and the two locks: the writers' lock
(STORE/.lock, exclusive) and the openers' lock (the store folder, shared; a writer takes
it exclusively to remove old generations). store.py's docstring tells the protocol."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from hashmatch import signals
from hashmatch.errors import StoreError, StoreIntegrityError
from hashmatch.store.manifest import Manifest, check_not_rolled_back, read_high_water

MANIFEST = "manifest.json"
LOCK = ".lock"
AUDIT_LOG = "audit.jsonl"  # one line per change (and per scan against the store)
SPOOL = ".hashmatch-spool"  # private working files of the service and of fetches (0700), never part of a generation
CLEANUP_WAIT = 2.0  # seconds a writer tries to get the openers' lock (module docstring)
OPEN_ATTEMPTS = 10  # times Store.open reads a manifest that moved under it before giving up


def code_bytes(algorithm: str) -> int:
    return signals.get(algorithm).code_bytes


def entry_codes(algorithm: str, ids: np.ndarray, blobs: list[bytes]) -> "CodeArray":
    """The rows the store indexes for entries `ids` whose stored values are `blobs`: one
    row per entry for a fixed-length type; a variable type's index_codes (zero or more
    rows per entry, the entry's id repeated), in id order."""
    signal = signals.get(algorithm)
    if not signal.variable:
        codes = np.frombuffer(b"".join(blobs), np.uint8).reshape(len(blobs), signal.code_bytes)
        return CodeArray(codes, np.asarray(ids, np.int64))
    parts = [signal.index_codes(blob) for blob in blobs]
    counts = np.fromiter((len(p) for p in parts), np.int64, len(parts))
    codes = np.concatenate(parts) if parts else np.zeros((0, signal.code_bytes), np.uint8)
    return CodeArray(np.ascontiguousarray(codes, np.uint8).reshape(-1, signal.code_bytes),
                     np.repeat(np.asarray(ids, np.int64), counts))


def _algorithms(*present: Iterable[str]) -> list[str]:
    """Every known signal type, then any other algorithm a store already holds."""
    names = list(signals.names())
    return names + sorted({a for group in present for a in group} - set(names))


def _sha256(data: bytes | memoryview | np.ndarray) -> str:
    return hashlib.sha256(data.data if isinstance(data, np.ndarray) else data).hexdigest()


@dataclass
class CodeArray:
    """Active codes of one algorithm and the entry id of each row.

    In a generation with an overlay (overlay.py) `codes`/`ids`/`mih` are the base's
    rows, `hidden` the sorted ids of base entries no longer active as they stand there
    (removed, disabled or changed since), and `delta` the overlay's active rows: the
    active rows are active() (the base minus hidden, plus delta, by id)."""

    codes: np.ndarray  # (N, nbytes) uint8
    ids: np.ndarray  # (N,) int64
    mih: tuple[np.ndarray, np.ndarray] | None = None  # prebuilt multi-index tables (engines.mih_tables)
    hidden: np.ndarray | None = None
    delta: "CodeArray | None" = None

    @classmethod
    def empty(cls, algorithm: str) -> "CodeArray":
        return cls(np.zeros((0, code_bytes(algorithm)), np.uint8), np.zeros(0, np.int64))

    @property
    def layered(self) -> bool:
        hides = self.hidden is not None and len(self.hidden) > 0
        return hides or (self.delta is not None and len(self.delta.ids) > 0)

    def active(self) -> "CodeArray":
        """The active rows as one array ordered by entry id (base rows in their order)."""
        if not self.layered:
            return CodeArray(self.codes, self.ids)
        keep = ~np.isin(self.ids, self.hidden) if self.hidden is not None and len(self.hidden) else slice(None)
        codes, ids = self.codes[keep], self.ids[keep]
        if self.delta is not None and len(self.delta.ids):
            codes, ids = np.concatenate([codes, self.delta.codes]), np.concatenate([ids, self.delta.ids])
            order = np.argsort(ids, kind="stable")
            codes, ids = codes[order], ids[order]
        return CodeArray(np.ascontiguousarray(codes), np.ascontiguousarray(ids))


#: Files this process hashed and found equal to their manifest checksum, by path: the
#: file's identity and change times then, and the checksum. A writer reuses a verified
#: file only while its stat fingerprint is unchanged (a byte written in place changes its
#: ctime, which no program can set back); otherwise it hashes the file again.
_VERIFIED: dict[str, tuple[tuple[int, ...], str]] = {}


def _fingerprint(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _remember_verified(path: Path, handle: Any, sha256: str) -> None:
    _VERIFIED[str(path)] = (_fingerprint(os.fstat(handle.fileno())), sha256)


def _mismatch(path: Path) -> StoreIntegrityError:
    _VERIFIED.pop(str(path), None)
    return StoreIntegrityError(
        f"store file {path.name} does not match its checksum in the manifest; refusing to use it")


def _verify_file(path: Path, meta: dict[str, Any]) -> None:
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            before = _fingerprint(os.fstat(handle.fileno()))
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
                size += len(block)
            if size != meta["bytes"] or digest.hexdigest() != meta["sha256"]:
                raise _mismatch(path)
            if _fingerprint(os.fstat(handle.fileno())) == before:  # not written to while we read it
                _remember_verified(path, handle, meta["sha256"])
    except FileNotFoundError as exc:
        raise StoreIntegrityError(f"store file {path.name} is missing") from exc


def check_unchanged(path: Path, meta: dict[str, Any]) -> None:
    """Before a writer attaches an earlier generation's file: it must still be the bytes
    the manifest lists. Free when this process verified it and it has not been touched
    since; else hashed again (StoreIntegrityError on a mismatch: damage never reaches a
    new generation)."""
    known = _VERIFIED.get(str(path))
    if known is not None and known[1] == meta["sha256"]:
        try:
            if _fingerprint(os.stat(path)) == known[0]:
                return
        except FileNotFoundError:
            pass
    _verify_file(path, meta)


def copy_verified(source: Path, meta: dict[str, Any], target: str | os.PathLike) -> None:
    """Copy an earlier generation's file into `target` (a writer's temp file), hashing the
    very bytes copied: StoreIntegrityError unless they are the bytes the manifest lists."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open(source, "rb") as src, open(target, "wb") as dst:
            for block in iter(lambda: src.read(1 << 22), b""):
                digest.update(block)
                size += len(block)
                dst.write(block)
    except FileNotFoundError as exc:
        raise StoreIntegrityError(f"store file {source.name} is missing") from exc
    if size != meta["bytes"] or digest.hexdigest() != meta["sha256"]:
        raise _mismatch(source)


def _read_verified(path: Path, meta: dict[str, Any]) -> np.ndarray:
    """The file's bytes as a uint8 array, after their sha256 check. Read into numpy's own
    allocation, not a Python bytes object: numpy asks the kernel for transparent huge pages
    (madvise) for large arrays, and the engines' random reads over hundreds of MB of codes
    and multi-index tables then miss the TLB far less (measured: 1.5-2x faster lookups on
    a 10M store than over the same arrays held in bytes)."""
    # Hash the very bytes we go on to use, so nothing can change between check and use.
    size = meta["bytes"]
    data = np.empty(size, np.uint8)
    try:
        with open(path, "rb") as handle:
            view, got = data.data, 0
            while got < size:
                n = handle.readinto(view[got:])
                if not n:
                    break
                got += n
            longer = bool(handle.read(1))
    except FileNotFoundError as exc:
        raise StoreIntegrityError(f"store file {path.name} is missing") from exc
    if got != size or longer or _sha256(data) != meta["sha256"]:
        raise StoreIntegrityError(
            f"store file {path.name} does not match its checksum in the manifest; refusing to use it")
    data.setflags(write=False)
    return data


def _load_array(root: Path, manifest: Manifest, name: str, dtype) -> np.ndarray:
    """A data file of the manifest as a read-only 1-D array, after its sha256 check."""
    return _read_verified(root / name, manifest.files[name]).view(dtype)


def load_code_array(root: Path, manifest: Manifest, algorithm: str,
                    loaded: dict[str, np.ndarray] | None = None) -> CodeArray:
    """One algorithm's arrays of a generation, each file verified against the manifest:
    the base's codes, ids and multi-index tables, and with an overlay the hidden ids and
    the delta. `loaded`: arrays already verified by name (a reload reuses the base's)."""
    def load(name: str, dtype) -> np.ndarray:
        if loaded is not None and name in loaded:
            return loaded[name]
        array = _load_array(root, manifest, name, dtype)
        if loaded is not None:
            loaded[name] = array
        return array

    meta = manifest.arrays[algorithm]
    width = code_bytes(algorithm)
    if meta.get("codes") is None:  # an overlay's type the base does not hold
        codes, ids = np.zeros((0, width), np.uint8), np.zeros(0, np.int64)
    else:
        codes = load(meta["codes"], np.uint8).reshape(-1, width)
        ids = load(meta["ids"], np.int64)
    mih = None
    if "mih" in meta:
        m = meta["mih"]
        mih = (load(m["dirs"], np.uint32).reshape(m["tables"], -1),
               load(m["packed"], np.uint32).reshape(m["tables"], -1))
    hidden = delta = None
    if manifest.overlay is not None:
        hidden = load(manifest.hidden["ids"], np.int64) if manifest.hidden else np.zeros(0, np.int64)
        delta = CodeArray.empty(algorithm)
        if "delta" in meta:
            d = meta["delta"]
            delta = CodeArray(load(d["codes"], np.uint8).reshape(-1, width), load(d["ids"], np.int64))
    return CodeArray(codes, ids, mih, hidden, delta)


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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


