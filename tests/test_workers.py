"""The isolated hashing workers (hashmatch.isolation.workers): files swapped after the walk are
never read through, and nothing crosses the pipes as pickle."""
from __future__ import annotations

import hashlib
import multiprocessing.connection
import multiprocessing.reduction
import os

import pytest
from imagegen import encode, make_rgb

from hashmatch import DecodeLimits
from hashmatch.decode.image import WalkedFile
from hashmatch.isolation.workers import HashJob, WorkerPool
from hashmatch.scan.scanner import walk_tree

JOB = HashJob(("pdq", "md5", "sha256"), "full", True, DecodeLimits(max_bytes=10_000_000), False, None, True)


def make_tree(root, n=24):
    data = root / "data"
    data.mkdir()
    for i in range(n):
        (data / f"f{i:02d}.png").write_bytes(encode(make_rgb(40, 30, seed=i, kind="shapes"), "PNG"))
    secret = root / "outside-secret.bin"
    secret.write_bytes(b"bytes from outside the scanned tree" * 100)
    return data, secret


def walked(data, follow=False) -> list[WalkedFile]:
    found = [f for f in walk_tree([data], follow_symlinks=follow) if f.identity is not None]
    return [WalkedFile(f.path, *f.identity, follow_symlinks=follow) for f in found]


def test_a_symlink_or_another_file_planted_after_the_walk_is_never_read(tmp_path):
    data, secret = make_tree(tmp_path)
    tasks = walked(data)
    secret_sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    swapped, replaced = set(), set()
    for i, task in enumerate(tasks):
        if i % 3 == 0:  # the race the audit found: the walked file becomes a link to a file outside the tree
            os.unlink(task.path)
            os.symlink(secret, task.path)
            swapped.add(task.path)
        elif i % 3 == 1 and i % 2:  # replaced by another regular file (new inode) under the same name
            temp = task.path + ".new"
            with open(temp, "wb") as handle:
                handle.write(secret.read_bytes())
            os.replace(temp, task.path)
            replaced.add(task.path)
    with WorkerPool(JOB, 2, timeout_s=30) as pool:
        records = dict(pool.imap(tasks))
    assert set(records) == {t.path for t in tasks}
    for path, record in records.items():
        assert record.get("sha256") != secret_sha, path  # no row ever carries the outside file
        if path in swapped or path in replaced:
            assert record["error"]["code"] == "changed" and "size" not in record, path
        else:
            assert "result" in record, path
    assert swapped and replaced


def test_with_follow_symlinks_a_swapped_link_target_is_detected(tmp_path):
    data, secret = make_tree(tmp_path, 4)
    os.symlink(data / "f00.png", data / "link.png")
    tasks = walked(data, follow=True)
    link = next(t for t in tasks if t.path.endswith("link.png"))
    os.unlink(link.path)
    os.symlink(secret, link.path)  # the link now points elsewhere
    with WorkerPool(JOB, 1, timeout_s=30) as pool:
        records = dict(pool.imap(tasks))
    assert records[link.path]["error"]["code"] == "changed"
    assert sum("result" in r for r in records.values()) == len(tasks) - 1


def test_nothing_crosses_the_pipes_as_pickle(tmp_path, monkeypatch):
    """The parent never unpickles what a worker sends: a decoder exploit inside a worker
    must not reach this process through an unpickler."""
    data, _ = make_tree(tmp_path, 6)
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used on a worker pipe")

    monkeypatch.setattr(multiprocessing.connection.Connection, "recv", refuse)
    monkeypatch.setattr(multiprocessing.connection.Connection, "send", refuse)
    monkeypatch.setattr(multiprocessing.reduction.ForkingPickler, "loads", refuse)
    with WorkerPool(JOB, 2, timeout_s=30) as pool:
        records = dict(pool.imap(walked(data)))
    assert len(records) == 7 and sum("result" in r for r in records.values()) == 6
    broken = records[str(data / "broken.png")]
    assert broken["error"]["code"] == "corrupt" and broken["file_hashes"]["md5"]


def test_the_job_round_trips_through_json():
    assert HashJob.from_json(JOB.to_json()) == JOB


@pytest.mark.parametrize("follow", [False, True])
def test_walked_file_opens_the_walked_file(tmp_path, follow):
    from hashmatch import FileChangedError, Hasher

    data, _ = make_tree(tmp_path, 2)
    task = walked(data, follow)[0]
    assert Hasher(("md5",)).hash(task).hashes["md5"] == hashlib.md5(open(task.path, "rb").read()).hexdigest()
    os.replace(data / "f01.png", task.path)
    with pytest.raises(FileChangedError):
        Hasher(("md5",)).hash(task)
