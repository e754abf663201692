"""Isolation for single calls (workers.IsolatedHasher, Matcher(isolate=True), hash
--timeout): a slow, crashing or hostile input costs a typed error, never the caller, and
the results equal in-process hashing."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time

import pytest
from click.testing import CliRunner
from imagegen import encode, make_rgb

from hashmatch import CorruptImageError, Hasher, ImageError
from hashmatch.cli import main
from hashmatch.errors import HashTimeoutError, WorkerCrashedError
from hashmatch.isolation.isolated import IsolatedHasher
from hashmatch.lists import ParsedList
from hashmatch.matching.matcher import Matcher
from hashmatch.store.store import Store

#: JPEG magic then 0xFF bytes: Pillow takes seconds to reject it (linear in the size).
SLOW = b"\xff\xd8\xff" + b"\xff" * (8 << 20)
HASHER = Hasher(("pdq", "phash", "md5"), dihedral=True, trim_borders=True)


@pytest.fixture(scope="module")
def isolated():
    with IsolatedHasher(HASHER, workers=2, timeout_s=0.5) as hasher:
        yield hasher


def images() -> list[bytes]:
    return [encode(make_rgb(64 + 7 * i, 48 + 5 * i, seed=i, kind=("shapes", "noise", "gradient")[i % 3]),
                   ("PNG", "JPEG", "WEBP")[i % 3]) for i in range(9)]


def test_results_equal_in_process_hashing(isolated, tmp_path):
    for i, data in enumerate(images()):
        path = tmp_path / f"{i}.img"
        path.write_bytes(data)
        want = HASHER.hash(data).to_dict()
        assert isolated.hash(data).to_dict() == want
        assert isolated.hash(path).to_dict() == want
        assert isolated.hash(open(path, "rb")).to_dict() == want


def test_a_slow_input_times_out_with_its_exact_hashes(isolated):
    started = time.monotonic()
    with pytest.raises(HashTimeoutError) as info:
        isolated.hash(SLOW)
    assert time.monotonic() - started < 30  # in-process it takes several seconds; here the limit stops it
    assert info.value.code == "timeout" and info.value.file_hashes == {"md5": hashlib.md5(SLOW).hexdigest()}
    assert isolated.hash(images()[0]).hashes["pdq"]  # the replacement worker serves the next call


def test_errors_keep_their_type_and_code(isolated):
    with pytest.raises(CorruptImageError) as info:
        isolated.hash(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    assert info.value.code in ("corrupt", "truncated") and info.value.file_hashes["md5"]
    with pytest.raises(ImageError, match="isolated hashing takes"):
        isolated.hash(object())


def test_a_worker_killed_mid_file_is_a_typed_crash(tmp_path):
    with IsolatedHasher(HASHER, workers=1, timeout_s=60) as hasher:
        hasher.hash(images()[0])  # start the worker

        def kill_soon() -> None:
            time.sleep(0.5)
            for worker in list(hasher._all):
                os.kill(worker.process.pid, signal.SIGKILL)

        threading.Thread(target=kill_soon).start()
        with pytest.raises(WorkerCrashedError) as info:
            hasher.hash(SLOW)
        assert info.value.file_hashes == {"md5": hashlib.md5(SLOW).hexdigest()}
        assert hasher.hash(images()[1]).hashes["pdq"] and hasher.replaced == 1


def test_many_threads_share_the_workers(isolated):
    data = images()
    want = [HASHER.hash(d).to_dict() for d in data]
    results: list = [None] * (4 * len(data))

    def run(k: int) -> None:
        for j in range(k, len(results), 4):
            results[j] = isolated.hash(data[j % len(data)]).to_dict()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [want[j % len(data)] for j in range(len(results))]
    assert [r.to_dict() for r in isolated.hash_many(data)] == want


def test_matcher_isolate_keeps_the_exact_match_of_an_input_that_times_out(tmp_path):
    store = Store.create(tmp_path / "s").import_list(
        ParsedList.from_hashes("md5", [hashlib.md5(SLOW).hexdigest()], category="c"), name="l", version="1")
    matcher = Matcher(store, algorithms=("pdq", "md5"), isolate=True, timeout_s=0.5, workers=1)
    try:
        result = matcher.match(SLOW)
        assert result.status == "match" and result.decode_error.code == "timeout"
        assert matcher.reload().match(images()[0]).status == "no_match"  # reload shares the workers
    finally:
        matcher.close()


def test_hash_command_with_a_timeout(tmp_path):
    (tmp_path / "slow.jpg").write_bytes(SLOW)
    (tmp_path / "good.png").write_bytes(images()[0])
    result = CliRunner().invoke(main, ["hash", "-a", "pdq,md5", "--timeout", "0.5", "-w", "1", str(tmp_path)])
    records = {os.path.basename(r["path"]): r for r in map(json.loads, result.stdout.splitlines())}
    assert result.exit_code == 1
    assert records["slow.jpg"]["error"]["code"] == "timeout"
    assert records["slow.jpg"]["md5"] == hashlib.md5(SLOW).hexdigest()
    assert records["good.png"]["pdq"] == Hasher(("pdq",)).hash(images()[0]).hashes["pdq"]


def test_lookup_matches_the_exact_hashes_of_a_hash_record_with_an_error(tmp_path):
    md5 = hashlib.md5(b"not an image").hexdigest()
    store = tmp_path / "s"
    Store.create(store).import_list(ParsedList.from_hashes("md5", [md5]), name="l", version="1")
    record = {"path": "x.bin", "md5": md5, "error": {"type": "UnsupportedFormatError", "code": "unsupported_format",
                                                      "message": "not a recognised image format"}}
    result = CliRunner().invoke(main, ["lookup", "--store", str(store)], input=json.dumps(record) + "\n")
    out = json.loads(result.stdout)
    assert result.exit_code == 1 and out["status"] == "match" and out["decode_error"]["code"] == "unsupported_format"
