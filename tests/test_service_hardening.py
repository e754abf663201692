"""The audit of `hashmatch serve` (issue 24), items 3-17: each test reproduces the attack
as the audit ran it, against a real server on a loopback port."""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
psutil = pytest.importorskip("psutil")

from servicehelp import PeakRSS, Server, _cli  # noqa: E402


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hardening")
    listed = root / "known.txt"
    listed.write_text("md5 " + "0" * 32 + "\n")
    path = root / "store"
    assert _cli("list", "import", str(listed), "-s", str(path)).returncode == 0
    return path


def _raw_post(port: int, length: int, sent: bytes) -> socket.socket:
    """A POST /v1/match that declares `length` bytes of body and sends only `sent`."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST /v1/match HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + sent)
    return sock


def test_admission_happens_before_the_body_is_read(store):
    """Item 3: a full queue answers 503 at once, without waiting for (or buffering) the body."""
    server = Server(store, None, "--queue", "2", "--workers", "1")
    try:
        server.wait("/readyz")
        holders = [_raw_post(server.port, 10 << 20, b"x" * 1024) for _ in range(2)]  # admitted, still sending
        time.sleep(0.5)
        third = _raw_post(server.port, 10 << 20, b"x" * 1024)
        third.settimeout(5)
        answer = third.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"retry-after: 1" in answer.lower()
        for sock in (*holders, third):
            sock.close()
    finally:
        server.stop()


def test_memory_stays_bounded_under_concurrent_maximum_size_uploads(store):
    """Item 3: 8 concurrent 48 MiB uploads all admitted (queue 8): the server holds at most
    --spool-above of each in memory and spools the rest, instead of 384 MiB of bodies."""
    size = 48 << 20
    server = Server(store, None, "--queue", "8", "--workers", "1", "--max-body", str(64 << 20))
    try:
        server.wait("/readyz")
        body = os.urandom(1 << 20) * 48
        statuses: list[int] = []

        def upload() -> None:
            statuses.append(httpx.post(server.url + "/v1/match", content=body, timeout=120).status_code)

        with PeakRSS(server.process.pid) as memory:
            senders = [threading.Thread(target=upload) for _ in range(8)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
        assert statuses == [200] * 8, statuses  # all admitted and answered (md5 only: no_match)
        growth = memory.growth_mib
        print(f"server RSS growth under 8 x {size >> 20} MiB uploads: {growth:.0f} MiB")
        assert growth < 100, growth
        assert not list((store / ".hashmatch-spool").iterdir())  # every spool file removed
    finally:
        server.stop()


def test_an_audit_outage_fails_closed_and_loses_no_decision(store, tmp_path):
    """Item 4: the audit folder removed for a while, lookups running: decisions are refused
    (503) while lines cannot be written, /readyz says so, and once the folder is back every
    answered decision is in the log."""
    folder = tmp_path / "audit"
    folder.mkdir()
    log = folder / "audit.jsonl"
    server = Server(store, None, "--audit-log", str(log))
    try:
        server.wait("/readyz")
        answered: list[str] = []
        refused = 0
        stop = threading.Event()

        def lookups() -> None:
            nonlocal refused
            while not stop.is_set():
                got = httpx.post(server.url + "/v1/lookup", json={"hashes": {"md5": "1" * 32}}, timeout=10)
                if got.status_code == 200:
                    answered.append(got.json()["request_id"])
                else:
                    assert got.status_code == 503 and got.json()["error"]["code"] == "audit_unavailable"
                    refused += 1
                time.sleep(0.01)

        runner = threading.Thread(target=lookups)
        runner.start()
        time.sleep(0.5)
        os.rename(folder, tmp_path / "audit-away")  # the folder is gone
        deadline = time.monotonic() + 10
        while httpx.get(server.url + "/readyz").status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(server.url + "/readyz").status_code == 503
        time.sleep(3)
        assert "hashmatch_audit_write_failures" in httpx.get(server.url + "/metrics").text
        os.rename(tmp_path / "audit-away", folder)  # and back
        deadline = time.monotonic() + 10
        while httpx.get(server.url + "/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)
        stop.set()
        runner.join()
        time.sleep(1)  # the last lines flushed
        written = [json.loads(line)["request_id"] for line in log.read_text().splitlines()]
        print(f"audit outage: {len(answered)} decisions answered, {refused} refused, {len(written)} lines")
        assert refused > 0
        assert sorted(written) == sorted(answered)
    finally:
        server.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_no_auth_refuses_addresses_that_are_not_loopback(store, host):
    """Item 7: an unauthenticated server bound to every interface imported a list."""
    done = _cli("serve", "-s", str(store), "--no-auth", "--host", host, "--port", "0")
    assert done.returncode == 2 and "loopback" in done.stderr, done.stderr[-500:]


def test_token_add_into_a_missing_folder_is_a_clear_error(tmp_path):
    """Item 15: a traceback and exit 1 before."""
    done = _cli("token", "add", "x", "--tokens", str(tmp_path / "missing" / "tokens.json"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "folder does not exist" in done.stderr


def test_parallel_token_changes_all_land(tmp_path):
    """Item 8: 10 parallel `token add` all exit 0 but only 2-5 landed; a remove racing adds
    was undone. Every change must land, and none may undo another."""
    from concurrent.futures import ThreadPoolExecutor

    from hashmatch.service import tokens as token_store

    path = tmp_path / "tokens.json"
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda i: _cli("token", "add", f"t{i}", "--tokens", str(path)), range(10)))
    assert all(r.returncode == 0 for r in results)
    assert sorted(t.name for t in token_store.load(path)) == sorted(f"t{i}" for i in range(10))
    for round_ in range(3):
        with ThreadPoolExecutor(6) as pool:
            jobs = [pool.submit(_cli, "token", "remove", f"t{round_}", "--tokens", str(path))]
            jobs += [pool.submit(_cli, "token", "add", f"r{round_}-{i}", "--tokens", str(path)) for i in range(5)]
            assert all(job.result().returncode == 0 for job in jobs)
        names = {t.name for t in token_store.load(path)}
        assert f"t{round_}" not in names and {f"r{round_}-{i}" for i in range(5)} <= names
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_removed_token_stops_working_without_a_restart(store, tmp_path):
    """Item 8: a removed token still worked until the server restarted."""
    tokens = tmp_path / "tokens.json"
    secret = _cli("token", "add", "client", "--tokens", str(tokens)).stdout.strip()
    _cli("token", "add", "other", "--tokens", str(tokens))
    server = Server(store, tokens)
    try:
        server.wait("/readyz")
        headers = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(server.url + "/v1/lists", headers=headers).status_code == 200
        assert _cli("token", "remove", "client", "--tokens", str(tokens)).returncode == 0
        removed = time.monotonic()
        while httpx.get(server.url + "/v1/lists", headers=headers).status_code == 200:
            assert time.monotonic() - removed < 5, "the removed token still works"
            time.sleep(0.05)
        print(f"token removal took effect after {time.monotonic() - removed:.2f} s")
        assert httpx.get(server.url + "/v1/lists", headers=headers).status_code == 401
    finally:
        server.stop()


@pytest.fixture(scope="module")
def admin_server(store, tmp_path_factory):
    """A server with an admin token, over a copy of the module's store."""
    import shutil

    root = tmp_path_factory.mktemp("admin")
    copy = root / "store"
    shutil.copytree(store, copy)
    tokens = root / "tokens.json"
    secret = _cli("token", "add", "ops", "--scope", "match,admin,metrics", "--tokens", str(tokens)).stdout.strip()
    server = Server(copy, tokens)
    server.wait("/readyz")
    yield server, {"Authorization": f"Bearer {secret}"}, copy
    server.stop()


HOSTILE_LOOKUPS = [{"hashes": 5}, {"hashes": [None]}, {"hashes": [[1]]}, {"hashes": [5]}, {"hashes": [{"a": 1}]},
                   {"hashes": {}}, {"hashes": {"pdq": 5}}, {"hashes": {"pdq": None}}, {"hashes": {"pdq": "zz"}},
                   {"hashes": {"nope": "00"}}, {"nothing": 1}, [], [5], "text", None, 5]


@pytest.mark.parametrize("body", HOSTILE_LOOKUPS, ids=[json.dumps(b) for b in HOSTILE_LOOKUPS])
def test_every_lookup_body_shape_gets_a_typed_400(admin_server, body):
    """Items 9, 10 and 17: bodies that answered 500 (or 200 with an error inside)."""
    server, headers, _ = admin_server
    got = httpx.post(server.url + "/v1/lookup", json=body, headers=headers)
    assert got.status_code == 400, got.text
    assert got.json()["error"]["code"] == "bad_request" and got.json()["request_id"]


def test_a_batch_keeps_its_malformed_queries_in_place(admin_server):
    server, headers, _ = admin_server
    got = httpx.post(server.url + "/v1/lookup", headers=headers,
                     json=[{"hashes": {"md5": "0" * 32}}, {"hashes": [None]}, {"hashes": {"pdq": "zz"}}])
    assert got.status_code == 200
    results = got.json()["results"]
    assert results[0]["status"] == "match" and "error" in results[1] and "error" in results[2]


@pytest.mark.parametrize("entry", ["1_0", "%D9%A3", "99999999999999999999", "0", "-1", "+1", " 1", "1e3"])
def test_entry_ids_are_ascii_digits_in_range(admin_server, entry):
    """Item 11: `1_0` disabled entry 10, Arabic-Indic 3 disabled entry 3, 2**64+ was a 500."""
    server, headers, _ = admin_server
    got = httpx.post(f"{server.url}/v1/entries/{entry}/disable", headers=headers, json={"reason": "test"})
    assert got.status_code == 400, (entry, got.status_code, got.text)


@pytest.mark.parametrize("reason", [5, ["x"], {"a": 1}, "x" * 501])
def test_a_disable_reason_is_a_short_string(admin_server, reason):
    server, headers, _ = admin_server
    got = httpx.post(f"{server.url}/v1/entries/1/disable", headers=headers, json={"reason": reason})
    assert got.status_code == 400


@pytest.mark.parametrize("name", ["a\x00b", "a\x1bb", "a\u202eb", "x" * 60000, ".hidden", "a/b", "a b"])
def test_admin_list_names_are_a_safe_set(admin_server, name):
    """Item 16: NUL, ESC, RLO and 60,000-character names were accepted."""
    server, headers, _ = admin_server
    got = httpx.put(server.url + "/v1/lists/" + urllib.parse.quote(name, safe=""), headers=headers,
                    content=b"md5 " + b"1" * 32 + b"\n")
    assert got.status_code in (400, 404, 414), got.status_code  # 404/414: not even routed
    assert got.status_code != 200


def test_admin_changes_are_audited_with_the_token_and_no_ops_commit_nothing(admin_server):
    """Item 16: a list PUT was audited without the token's name; a no-op enable committed
    a new generation."""
    server, headers, store = admin_server
    got = httpx.put(server.url + "/v1/lists/extra?version=7", headers=headers, content=b"md5 " + b"2" * 32 + b"\n")
    assert got.status_code == 200, got.text
    time.sleep(0.5)
    lines = [json.loads(line) for line in (store / "audit.jsonl").read_text().splitlines()]
    imports = [line for line in lines if line.get("event") == "service_admin" and line.get("action") == "import"]
    assert imports and imports[-1]["token"] == "ops" and imports[-1]["list"] == "extra"
    generation = httpx.get(server.url + "/v1/lists", headers=headers).json()["generation"]
    answer = httpx.post(server.url + "/v1/entries/1/enable", headers=headers).json()  # already enabled
    assert answer["generation"] == generation
    assert httpx.get(server.url + "/v1/lists", headers=headers).json()["generation"] == generation


def test_every_response_is_counted(admin_server):
    """Item 9: 500s were neither counted nor audited; now every answer is counted."""
    server, headers, _ = admin_server
    httpx.post(server.url + "/v1/lookup", json={"hashes": [None]}, headers=headers)
    text = httpx.get(server.url + "/metrics", headers=headers).text
    assert 'hashmatch_requests_total{endpoint="lookup",outcome="bad_request"}' in text


def test_a_killed_writer_leaves_no_sensitive_partial_file(tmp_path):
    """Item 14: `hashmatch hash DIR -o out.jsonl` killed with -9 left `.hashmatch-*.tmp`
    (the partial output) that no later run removed."""
    import signal
    import subprocess
    import sys

    from imagegen import encode, make_rgb

    images = tmp_path / "images"
    images.mkdir()
    for i in range(20):  # hashed first: the output is partly written when the kill comes
        (images / f"a{i:02d}.png").write_bytes(encode(make_rgb(320, 240, seed=i, kind="noise"), "PNG"))
    for i in range(4):  # then JPEG magic and 8 MiB of 0xFF: seconds each for the decoder to reject
        (images / f"z{i}.jpg").write_bytes(b"\xff\xd8\xff" + b"\xff" * (8 << 20))
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "hashmatch.cli", "hash", "-a", "pdq,phash", "-w", "1",
                                str(images), "-o", str(out / "hashes.jsonl")], cwd="/")
    time.sleep(2.5)  # hashing, the output partly written
    assert process.poll() is None, "the run ended before it could be killed; make it longer"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(out.iterdir()) == []


def test_the_service_sweeps_upload_files_a_killed_server_left(store):
    """Item 14: a server killed mid-upload left the body on disk; the next one removes it."""
    spool = store / ".hashmatch-spool"
    spool.mkdir(mode=0o700, exist_ok=True)
    stale = spool / ".hashmatch-upload-left.tmp"
    stale.write_bytes(b"a partial upload")
    server = Server(store, None)
    try:
        server.wait("/readyz")
        assert not stale.exists()
    finally:
        server.stop()


def test_slow_clients_are_cut_off(store):
    """Item 13: six connections trickling a byte a second held the server 40 s. Headers
    have --header-timeout, bodies --body-timeout (a 408)."""
    server = Server(store, None, "--header-timeout", "1.5", "--body-timeout", "1.5")
    try:
        server.wait("/readyz")
        slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(6)]
        started = time.monotonic()
        closed = set()
        request = b"POST /v1/lookup HTTP/1.1\r\nHost: x\r\n"
        for i in range(len(request)):
            for n, sock in enumerate(slow):
                if n in closed:
                    continue
                try:
                    sock.sendall(request[i:i + 1])
                    sock.settimeout(0.01)
                    if sock.recv(4096) == b"":
                        closed.add(n)
                except (BlockingIOError, socket.timeout):
                    pass
                except OSError:
                    closed.add(n)
            if len(closed) == len(slow) or time.monotonic() - started > 15:
                break
            time.sleep(0.25)
        # cut off after the 1.5 s header timeout, long before the 36-byte request line is sent (9 s)
        assert len(closed) == len(slow) and time.monotonic() - started < 8, (closed, time.monotonic() - started)
        body = _raw_post(server.port, 1000, b"x")  # headers complete, the body trickles
        body.settimeout(5)
        answer = body.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    finally:
        server.stop()


def test_damage_is_never_laundered_through_the_service(tmp_path):
    """Item 1 as the audit ran it: damage a listed MD5 in the store's database after the
    service loaded it, then one admin change through the service. The change must be
    refused (409) and the store must stay refused on open: the file is still listed."""
    import hashlib

    from hashmatch.store.manifest import Manifest
    from hashmatch.store.store import Store

    listed = tmp_path / "known.txt"
    hashes = [hashlib.md5(str(i).encode()).hexdigest() for i in range(100_001)]  # a base an overlay may sit on
    listed.write_text("".join(f"md5 {h}\n" for h in hashes))
    store = tmp_path / "store"
    assert _cli("list", "import", str(listed), "-s", str(store)).returncode == 0
    tokens = tmp_path / "tokens.json"
    secret = _cli("token", "add", "ops", "--scope", "match,admin", "--tokens", str(tokens)).stdout.strip()
    server = Server(store, tokens)
    try:
        server.wait("/readyz")
        headers = {"Authorization": f"Bearer {secret}"}
        assert httpx.post(server.url + "/v1/entries/1/disable", headers=headers, json={}).status_code == 200
        manifest = Manifest.from_json((store / "manifest.json").read_text())
        assert manifest.overlay is not None  # the audit's setting: a base and an overlay
        database = store / manifest.database
        data = bytearray(database.read_bytes())
        at = data.find(bytes.fromhex(hashes[500]))
        assert at >= 0
        data[at] ^= 0x01
        with open(database, "r+b") as handle:  # in place, as the audit did
            handle.write(bytes(data))
        got = httpx.post(server.url + "/v1/entries/2/disable", headers=headers, json={})
        assert got.status_code == 409, got.text
        assert "checksum" in got.json()["error"]["message"]
        with pytest.raises(Exception, match="checksum"):
            Store.open(store)
        assert _cli("lookup", "-s", str(store), f"md5 {hashes[500]}").returncode == 2  # refused, never "no match"
    finally:
        server.stop()
