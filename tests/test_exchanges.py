"""Sources that keep lists current (hashmatch/exchanges/), the `file` and `url` types
against local files and a loopback HTTP fake: first and incremental fetches (additions
and deletions, compared with the fake's ground truth entry by entry), conditional
requests, retries on 429 and 500, a hanging server, a malformed list, two fetches at once,
a kill -9 in the middle of a large first fetch, credentials refused when others can read
them, and the CLI."""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from click.testing import CliRunner

pytest.importorskip("httpx")

from hashmatch.cli import main  # noqa: E402
from hashmatch.exchanges.fetcher import _source_lock, add_source, fetch  # noqa: E402
from hashmatch.exchanges.http import HttpClient  # noqa: E402
from hashmatch.matching.matcher import Matcher  # noqa: E402
from hashmatch.store.store import Store  # noqa: E402


def md5s(*words: str) -> list[str]:
    return [hashlib.md5(w.encode()).hexdigest() for w in words]


def listed(store: Store, list_name: str) -> set[str]:
    return {f"{e.algorithm}:{e.hash}" for e in store.iter_entries(list_name)}


def write_list(path, hashes: list[str]) -> None:
    path.write_text("".join(f"md5 {h}\n" for h in hashes))


def test_a_file_source_follows_its_file(tmp_path):
    lst = tmp_path / "partner.txt"
    write_list(lst, md5s("a", "b", "c"))
    store = add_source(Store.create(tmp_path / "store"), "partner", type="file", list_name="partner",
                       url=str(lst), category="csam")
    [first] = fetch(tmp_path / "store")
    assert first.ok and (first.added, first.deleted) == (3, 0)
    store = Store.open(tmp_path / "store")
    assert listed(store, "partner") == {f"md5:{h}" for h in md5s("a", "b", "c")}
    generation = store.generation
    [same] = fetch(tmp_path / "store")
    assert same.ok and (same.added, same.deleted) == (0, 0)
    assert Store.open(tmp_path / "store").generation == generation  # no change, no generation
    write_list(lst, md5s("b", "c", "d"))  # a retracted, d added
    [second] = fetch(tmp_path / "store")
    assert (second.added, second.deleted) == (1, 1)
    store = Store.open(tmp_path / "store")
    assert listed(store, "partner") == {f"md5:{h}" for h in md5s("b", "c", "d")}
    matcher = Matcher(store)
    assert matcher.match_hashes({"md5": md5s("d")[0]}).status == "match"  # an addition matches at once
    assert matcher.match_hashes({"md5": md5s("a")[0]}).status == "no_match"  # a deletion stops at once
    assert matcher.match_hashes({"md5": md5s("d")[0]}).matches[0].category == "csam"
    audit = [json.loads(line) for line in (tmp_path / "store" / "audit.jsonl").read_text().splitlines()]
    fetches = [line for line in audit if line["event"] == "exchange_fetch"]
    assert [(f["added"], f["updated"], f["deleted"]) for f in fetches] == [(3, 0, 0), (1, 0, 1)]
    assert not any(h in json.dumps(fetches) for h in md5s("a", "b", "c", "d"))  # no hash values in the audit


class Fake(http.server.ThreadingHTTPServer):
    """A loopback list publisher: `content` (ETag = its sha256), and a script of
    misbehaviours for the next requests ("429", "500", "hang", "garbage")."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.content = b""
        self.script: list[str] = []
        self.requests: list[dict] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/list.txt"


class FakeHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        server: Fake = self.server  # type: ignore[assignment]
        server.requests.append(dict(self.headers))
        step = server.script.pop(0) if server.script else "ok"
        if step == "429":
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        if step == "500":
            self.send_response(500)
            self.end_headers()
            return
        if step == "hang":
            time.sleep(3)
        body = b"\x00\x01 not a list \xff" * 10 if step == "garbage" else server.content
        etag = '"' + hashlib.sha256(body).hexdigest() + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def fake():
    server = Fake()
    yield server
    server.shutdown()


def test_a_url_source_fetches_incrementally_and_rides_out_bad_answers(tmp_path, fake):
    truth = md5s(*map(str, range(50)))
    fake.content = "".join(f"md5 {h}\n" for h in truth).encode()
    root = tmp_path / "store"
    add_source(Store.create(root), "feed", type="url", list_name="feed", url=fake.url, category="terrorism")
    client = HttpClient(read_timeout=1.0, backoff_s=0.01, attempts=3)
    fake.script = ["429", "500"]  # both retried, then the list
    [first] = fetch(root, http=client)
    assert first.ok and first.added == 50
    assert listed(Store.open(root), "feed") == {f"md5:{h}" for h in truth}
    [unchanged] = fetch(root, http=client)
    assert unchanged.ok and fake.requests[-1].get("If-None-Match")  # a 304: no change
    truth = truth[10:] + md5s("new-1", "new-2")
    fake.content = "".join(f"md5 {h}\n" for h in truth).encode()
    [second] = fetch(root, http=client)
    assert (second.added, second.deleted) == (2, 10)
    assert listed(Store.open(root), "feed") == {f"md5:{h}" for h in truth}  # equal to the fake's truth
    generation = Store.open(root).generation
    fake.script = ["hang", "hang", "hang"]
    [hung] = fetch(root, http=client)
    assert not hung.ok and "ReadTimeout" in hung.error
    fake.script = ["garbage"]
    [bad] = fetch(root, http=client)
    assert not bad.ok and "does not parse" in bad.error
    assert Store.open(root).generation == generation  # nothing committed, the checkpoint untouched
    [retried] = fetch(root, http=client)
    assert retried.ok and listed(Store.open(root), "feed") == {f"md5:{h}" for h in truth}


def test_two_fetches_of_one_source_never_run_at_once(tmp_path):
    lst = tmp_path / "l.txt"
    write_list(lst, md5s("x"))
    root = tmp_path / "store"
    add_source(Store.create(root), "s", type="file", list_name="l", url=str(lst), category="c")
    with _source_lock(root, "s"):  # another fetch holds the source
        [blocked] = fetch(root)
    assert not blocked.ok and "another fetch of source s is running" in blocked.error
    assert fetch(root)[0].ok


def test_a_killed_first_fetch_resumes_to_the_same_state(tmp_path):
    """kill -9 after the first of several batches of a large first fetch: the next fetch
    finishes it, and the list equals the file entry by entry (nothing lost or doubled)."""
    truth = md5s(*map(str, range(5000)))
    lst = tmp_path / "big.txt"
    write_list(lst, truth)
    root = tmp_path / "store"
    add_source(Store.create(root), "big", type="file", list_name="big", url=str(lst), category="c")
    script = textwrap.dedent(f"""
        import os
        from hashmatch.exchanges import url_file
        from hashmatch.store.store import Store
        from hashmatch.exchanges.fetcher import fetch
        url_file.BATCH_RECORDS = 1000
        real, calls = Store.apply_source_batch, []
        def killed(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                os._exit(9)  # two batches committed, the third never
            return real(self, *args, **kwargs)
        Store.apply_source_batch = killed
        fetch({str(root)!r})
    """)
    assert subprocess.run([sys.executable, "-c", script], cwd="/").returncode == 9
    partial = Store.open(root)
    assert len(listed(partial, "big")) == 2000 and partial.sources["big"]["checkpoint"] is None
    [resumed] = fetch(root)
    assert resumed.ok and resumed.added == 3000
    store = Store.open(root)
    assert sorted(e.hash for e in store.iter_entries("big")) == sorted(truth)
    store.check_consistency()


def test_credentials_readable_by_others_are_refused(tmp_path, fake):
    secret = tmp_path / "token"
    secret.write_text("s3cret-token\n")
    os.chmod(secret, 0o644)
    root = tmp_path / "store"
    runner = CliRunner()
    got = runner.invoke(main, ["exchange", "add", "feed", "--type", "url", "--list", "feed", "--store", str(root),
                               "--url", fake.url, "--category", "c", "--credentials", str(secret)])
    assert got.exit_code == 2 and "readable by others" in got.output
    os.chmod(secret, 0o600)
    got = runner.invoke(main, ["exchange", "add", "feed", "--type", "url", "--list", "feed", "--store", str(root),
                               "--url", fake.url, "--category", "c", "--credentials", str(secret)])
    assert got.exit_code == 0, got.output
    fake.content = "".join(f"md5 {h}\n" for h in md5s("q")).encode()
    got = runner.invoke(main, ["exchange", "fetch", "--store", str(root)])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout.splitlines()[0])["added"] == 1
    assert fake.requests[-1]["Authorization"] == "Bearer s3cret-token"
    shown = runner.invoke(main, ["exchange", "show", "feed", "--store", str(root)])
    assert str(secret) in shown.stdout and "s3cret" not in shown.stdout  # the path, never the secret
    audit = (root / "audit.jsonl").read_text()
    assert "s3cret" not in audit
    os.chmod(secret, 0o640)  # loosened after it was added: the fetch refuses it, exit 2
    got = runner.invoke(main, ["exchange", "fetch", "--store", str(root)])
    assert got.exit_code == 2 and "readable by others" in got.output


def test_the_cli_manages_sources(tmp_path):
    lst = tmp_path / "l.txt"
    write_list(lst, md5s("1", "2"))
    root = tmp_path / "store"
    runner = CliRunner()
    assert runner.invoke(main, ["exchange", "add", "f", "--type", "file", "--list", "l", "--store", str(root),
                                "--url", str(lst)]).exit_code == 2  # a file source needs --category
    assert runner.invoke(main, ["exchange", "add", "f", "--type", "nope", "--list", "l", "--store", str(root),
                                "--url", str(lst), "--category", "c"]).exit_code == 2
    assert runner.invoke(main, ["exchange", "add", "f", "--type", "file", "--list", "l", "--store", str(root),
                                "--url", str(lst), "--category", "c"]).exit_code == 0
    assert runner.invoke(main, ["exchange", "fetch", "f", "--store", str(root)]).exit_code == 0
    assert "f\tfile\tl\t" in runner.invoke(main, ["exchange", "list", "--store", str(root)]).stdout
    assert runner.invoke(main, ["exchange", "fetch", "nope", "--store", str(root)]).exit_code == 2
    assert runner.invoke(main, ["exchange", "remove", "f", "--store", str(root)]).exit_code == 0
    store = Store.open(root)
    assert store.sources == {} and len(listed(store, "l")) == 2  # the list stays unless --drop-list


def test_the_service_keeps_its_lists_current(tmp_path):
    """serve --fetch-every: additions match and deletions stop without a restart; a source
    that fails keeps the service ready on the last good lists, and says so in
    /v1/exchanges and the metrics (behind a token)."""
    from servicehelp import Server

    pytest.importorskip("uvicorn")
    import httpx

    lst = tmp_path / "partner.txt"
    write_list(lst, md5s("a", "b"))
    root = tmp_path / "store"
    add_source(Store.create(root), "partner", type="file", list_name="partner", url=str(lst), category="csam")
    tokens = tmp_path / "tokens.json"
    runner = CliRunner()
    secret = runner.invoke(main, ["token", "add", "ops", "--scope", "match,admin,metrics", "--tokens",
                                  str(tokens)]).stdout.strip()
    headers = {"Authorization": f"Bearer {secret}"}
    server = Server(root, tokens, "--fetch-every", "0.3")
    try:
        server.wait("/readyz")

        def status_of(hash_: str) -> str:
            return httpx.post(server.url + "/v1/lookup", json={"hashes": {"md5": hash_}}, headers=headers).json()[
                "status"]

        deadline = time.monotonic() + 20
        while status_of(md5s("a")[0]) != "match":
            assert time.monotonic() < deadline, "the first fetch never reached the service"
            time.sleep(0.2)
        write_list(lst, md5s("b", "c"))
        while status_of(md5s("c")[0]) != "match" or status_of(md5s("a")[0]) != "no_match":
            assert time.monotonic() < deadline + 20, "the change never reached the service"
            time.sleep(0.2)
        lst.unlink()  # the source fails from now on
        while httpx.get(server.url + "/v1/exchanges", headers=headers).json()["sources"][0].get("failures", 0) < 2:
            assert time.monotonic() < deadline + 40
            time.sleep(0.2)
        assert httpx.get(server.url + "/readyz").status_code == 200  # still matching on the last good list
        assert status_of(md5s("c")[0]) == "match"
        source = httpx.get(server.url + "/v1/exchanges", headers=headers).json()["sources"][0]
        assert source["name"] == "partner" and source["last_error"] and source["last_success"]
        metrics = httpx.get(server.url + "/metrics", headers=headers).text
        assert 'hashmatch_exchange_consecutive_failures{source="partner"}' in metrics
        assert httpx.get(server.url + "/v1/exchanges").status_code == 401
    finally:
        server.stop()
