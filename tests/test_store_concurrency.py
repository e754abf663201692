"""Stores shared between processes: readers opening or reloading while writers commit
new generations never see a half-removed generation, concurrent creators of a new store
lose no list, and real corruption is still refused."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

import hashmatch.store.files as store_files
import hashmatch.store.store as store_module
from hashmatch.lists import ParsedList
from hashmatch.store.store import Store, StoreIntegrityError

PDQ_BASE = 3_000  # version v of list "L" holds PDQ_BASE + v PDQ entries and MD5_COUNT md5 ones
MD5_COUNT = 400
READERS, OPENS_PER_READER = 4, 250  # at least 1,000 opens and reloads in all
WRITERS, IMPORTS_PER_WRITER = 2, 10  # 20 re-imports of "L"


def _random_hex(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    return [row.tobytes().hex() for row in rng.integers(0, 256, (n, nbytes), dtype=np.uint8)]


def list_version(version: int) -> ParsedList:
    """Version `version` of list "L": PDQ and md5 entries, so a store has several files."""
    rng = np.random.default_rng(version)
    pdq = ParsedList.from_hashes("pdq", _random_hex(rng, PDQ_BASE + version, 32), category="c")
    md5 = ParsedList.from_hashes("md5", _random_hex(rng, MD5_COUNT, 16), category="c")
    return ParsedList(format="memory", path="", algorithms=pdq.algorithms + md5.algorithms,
                      hashes=pdq.hashes + md5.hashes, categories=pdq.categories + md5.categories,
                      entry_ids=pdq.entry_ids + md5.entry_ids, dates=pdq.dates + md5.dates,
                      tags=pdq.tags + md5.tags, lines=np.arange(1, len(pdq) + len(md5) + 1, dtype=np.int64))


def check_generation(store: Store) -> int:
    """The opened generation is whole: its database, arrays and manifest agree. Returns
    the version of "L" it holds."""
    (info,) = store.lists()
    version = int(info.version)
    assert info.entries == PDQ_BASE + version + MD5_COUNT, (store.generation, info)
    assert store.manifest.lists == [{"name": "L", "version": info.version, "entries": info.entries}]
    for algorithm, want in (("pdq", PDQ_BASE + version), ("md5", MD5_COUNT)):
        assert store.manifest.counts[algorithm] == {"active": want, "disabled": 0}, store.generation
        assert len(store.arrays[algorithm].ids) == len(store.arrays[algorithm].codes) == want, store.generation
    return version


def _wait_for(flag: Path) -> None:
    while not flag.exists():
        time.sleep(0.005)


def _reader(path: str, flags: Path) -> dict:
    from hashmatch.matching.matcher import Matcher

    opens, failures, versions = 0, [], set()
    _wait_for(flags / "go")
    matcher = None
    # At least OPENS_PER_READER opens, and on until the writers are done, so every open
    # races a writer.
    while opens < OPENS_PER_READER or (not (flags / "writers-done").exists() and opens < 20 * OPENS_PER_READER):
        try:
            if matcher is None or opens % 2 == 0:
                matcher = Matcher(Store.open(path))
            else:
                matcher = matcher.reload()
            versions.add(check_generation(matcher.store))
            if opens % 50 == 0:
                matcher.store.check_consistency()
        except Exception:  # noqa: BLE001 (every failure is reported)
            failures.append(traceback.format_exc(limit=4))
        opens += 1
    return {"opens": opens, "failures": failures, "versions": sorted(versions)}


def _writer(path: str, flags: Path, first_version: str) -> dict:
    # Busy readers may keep the openers' lock taken all along; waiting the full default for
    # it on every import would only slow the test (the files left are checked at the end).
    store_files.CLEANUP_WAIT = 0.2
    _wait_for(flags / "go")
    store = Store.open(path)
    for version in range(int(first_version), int(first_version) + IMPORTS_PER_WRITER):
        store = store.import_list(list_version(version), name="L", version=str(version))
    return {"failures": []}


def _creator(path: str, flags: Path, index: str) -> dict:
    _wait_for(flags / "go")
    hexes = _random_hex(np.random.default_rng(1000 + int(index)), 20, 32)
    Store.open_or_create(path).import_list(ParsedList.from_hashes("pdq", hexes), name=f"L{index}", version="1")
    return {"failures": []}


def _child_main(argv: list[str]) -> None:
    role, path, flags, *rest = argv
    print(json.dumps({"_reader": _reader, "_writer": _writer, "_creator": _creator}[role](path, Path(flags), *rest)))


class _Children:
    """Worker processes running this module's _reader/_writer/_creator (separate
    interpreters, like separate `hashmatch` commands), released together by a flag file."""

    def __init__(self, tmp_path: Path):
        self.flags = tmp_path / "flags"
        self.flags.mkdir()
        self.procs: list[subprocess.Popen] = []

    def start(self, role: str, path: Path, *args: object) -> subprocess.Popen:
        code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                "import test_store_concurrency as t; t._child_main(sys.argv[1:])")
        # cwd: not the checkout, whose uncompiled source package would shadow the installed one.
        proc = subprocess.Popen([sys.executable, "-c", code, role, str(path), str(self.flags), *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.flags)
        self.procs.append(proc)
        return proc

    def release(self, flag: str = "go") -> None:
        (self.flags / flag).touch()

    @staticmethod
    def result(proc: subprocess.Popen) -> dict:
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            raise
        assert proc.returncode == 0, err[-3000:]
        return json.loads(out.strip().splitlines()[-1])

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:  # pragma: no cover - only after a failure
                proc.kill()
                proc.wait()


@pytest.fixture
def children(tmp_path):
    group = _Children(tmp_path)
    yield group
    group.kill_all()


def test_readers_never_see_a_half_removed_generation_while_writers_reimport(tmp_path, children):
    path = tmp_path / "store"
    Store.create(path).import_list(list_version(0), name="L", version="0")
    readers = [children.start("_reader", path) for _ in range(READERS)]
    writers = [children.start("_writer", path, 1 + w * IMPORTS_PER_WRITER) for w in range(WRITERS)]
    children.release()
    for proc in writers:
        children.result(proc)
    children.release("writers-done")
    reports = [children.result(proc) for proc in readers]
    failures = [f for r in reports for f in r["failures"]]
    opens = sum(r["opens"] for r in reports)
    assert not failures, f"{len(failures)} of {opens} opens failed; first:\n{failures[0]}"
    assert opens >= READERS * OPENS_PER_READER
    assert len(set().union(*(r["versions"] for r in reports))) > 1  # the list did change under the readers
    final = Store.open(path)
    assert check_generation(final) in {IMPORTS_PER_WRITER * w for w in range(1, WRITERS + 1)}
    final.check_consistency()
    # With nobody opening, the next change removes every older generation's files (the
    # ones a busy writer had to leave) and never the lock or the manifest.
    final = final.import_list(list_version(99), name="L", version="99")
    assert {p.name for p in path.iterdir()} == set(final.manifest.files) | {"manifest.json", ".lock", "audit.jsonl"}
    check_generation(Store.open(path))


def test_concurrent_creators_of_a_new_store_lose_no_list(tmp_path, children):
    creators = 6
    for attempt in range(2):
        path = tmp_path / f"store{attempt}"
        procs = [children.start("_creator", path, i) for i in range(creators)]
        children.release()
        for proc in procs:
            children.result(proc)
        (children.flags / "go").unlink()
        store = Store.open(path)
        assert [info.name for info in store.lists()] == [f"L{i}" for i in range(creators)]
        assert store.generation == creators + 1
        store.check_consistency()


def _generation_files(store: Store) -> set[str]:
    return set(store.manifest.files)


def test_a_writer_leaves_old_files_while_a_reader_is_opening_and_removes_them_later(tmp_path, monkeypatch):
    monkeypatch.setattr(store_files, "CLEANUP_WAIT", 0.05)
    old = Store.create(tmp_path / "s").import_list(list_version(0), name="L", version="0")
    fd = os.open(old.path, os.O_RDONLY)  # what Store.open holds while it reads a generation
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        new = old.import_list(list_version(1), name="L", version="1")
        names = {p.name for p in old.path.iterdir()}
        assert _generation_files(old) <= names and _generation_files(new) <= names
    finally:
        os.close(fd)
    assert check_generation(Store.open(old.path)) == 1
    newer = new.import_list(list_version(2), name="L", version="2")
    assert {p.name for p in old.path.iterdir()} == _generation_files(newer) | {"manifest.json", ".lock", "audit.jsonl"}


@contextlib.contextmanager
def unlockable(root, *, exclusive):
    yield None  # what _folder_lock yields where the folder cannot be locked


def test_an_opener_without_the_lock_starts_over_when_a_writer_moved_the_manifest(tmp_path, monkeypatch):
    """The fallback for stores whose folder cannot be locked (e.g. some network mounts):
    a file that vanished because a newer generation was committed means start over."""
    path = tmp_path / "s"
    Store.create(path).import_list(list_version(0), name="L", version="0")
    monkeypatch.setattr(store_module, "_folder_lock", unlockable)
    real = store_files._read_verified
    calls = []

    def racing(file: Path, meta):
        if not calls:  # a writer commits and removes this generation mid-open
            calls.append(file)
            Store.open(path).import_list(list_version(1), name="L", version="1")
            assert not file.exists()
        return real(file, meta)

    monkeypatch.setattr(store_files, "_read_verified", racing)
    assert check_generation(Store.open(path)) == 1
    assert calls


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_real_damage_is_still_refused_when_no_writer_is_active(tmp_path, damage):
    store = Store.create(tmp_path / "s").import_list(list_version(0), name="L", version="0")
    for name in store.manifest.files:
        target = store.path / name
        original = target.read_bytes()
        if damage == "flip":
            target.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
        elif damage == "truncate":
            target.write_bytes(original[:-1])
        else:
            target.unlink()
        with pytest.raises(StoreIntegrityError, match=name):
            Store.open(store.path)
        target.write_bytes(original)
        os.chmod(target, 0o600)
    check_generation(Store.open(store.path))
