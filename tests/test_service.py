"""`hashmatch serve` with a real server on a loopback port (a subprocess, as deployed):
responses equal `hashmatch scan` rows for the same files, hostile uploads, 401/403/413/
503, readiness before and after the store exists, live swaps under load, admin changes,
metrics, tokens stored hashed."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from imagegen import encode, make_rgb  # noqa: E402
from servicehelp import Server, _cli  # noqa: E402

from hashmatch import Hasher  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("service")
    files = root / "files"
    files.mkdir()
    listed = []
    for i in range(6):
        data = encode(make_rgb(320, 240, seed=700 + i, kind="shapes"), "JPEG", quality=90)
        (files / f"img{i}.jpg").write_bytes(data)
        if i % 2 == 0:
            listed.append(Hasher(("pdq",)).hash(data).hashes["pdq"])
    (files / "cut.jpg").write_bytes((files / "img1.jpg").read_bytes()[:3000])
    (files / "notes.txt").write_bytes(b"not an image at all\n" * 10)
    lst = root / "known.txt"
    lst.write_text("".join(f"pdq {h}\n" for h in listed) + "md5 " + __import__("hashlib").md5(
        (files / "notes.txt").read_bytes()).hexdigest() + "\n")
    store = root / "store"
    assert _cli("list", "import", str(lst), "-s", str(store)).returncode == 0
    tokens = root / "tokens.json"
    secrets = {}
    for name, scope in (("client", "match"), ("ops", "match,admin"), ("monitor", "metrics")):
        done = _cli("token", "add", name, "--scope", scope, "--tokens", str(tokens))
        assert done.returncode == 0, done.stderr
        secrets[name] = done.stdout.strip()
    server = Server(store, tokens, "--max-body", str(1 << 20), "--queue", "2", "--timeout", "3")
    server.wait("/readyz")
    yield {"root": root, "files": files, "store": store, "tokens": tokens, "secrets": secrets, "server": server,
           "list": lst}
    server.stop()


def _auth(setup: dict, name: str = "client") -> dict[str, str]:
    return {"Authorization": f"Bearer {setup['secrets'][name]}"}


def test_tokens_are_stored_hashed(setup: dict) -> None:
    text = setup["tokens"].read_text()
    assert all(secret not in text for secret in setup["secrets"].values())
    assert oct(setup["tokens"].stat().st_mode & 0o777) == "0o600"
    names = _cli("token", "list", "--tokens", str(setup["tokens"])).stdout
    assert "client\tmatch" in names and "ops\tadmin,match" in names


def test_match_answers_equal_scan_rows(setup: dict) -> None:
    report = setup["root"] / "scan.jsonl"
    done = _cli("scan", str(setup["files"]), "-s", str(setup["store"]), "--report", str(report), "-q")
    assert done.returncode == 1, done.stderr
    rows = {Path(r["path"]).name: r for r in map(json.loads, report.read_text().splitlines()) if "path" in r}
    assert {r["status"] for r in rows.values()} >= {"match", "no_match"}
    for name, row in rows.items():
        data = (setup["files"] / name).read_bytes()
        raw = httpx.post(setup["server"].url + "/v1/match", content=data, headers=_auth(setup), timeout=60)
        multi = httpx.post(setup["server"].url + "/v1/match", files={"file": (name, data)}, headers=_auth(setup),
                           timeout=60)
        for response, path in ((raw, "upload"), (multi, name)):
            got = response.json()
            failed = row["status"] == "error" or (row.get("decode_error") and row["status"] != "match")
            assert response.status_code == (422 if failed else 200), got
            assert got.pop("path") == path and len(got.pop("request_id")) == 32
            want = {k: v for k, v in row.items() if k != "path"}
            assert got == want, name
    time.sleep(1)  # the audit writer syncs in batches (service/audit.py FLUSH_S)
    audit = [json.loads(line) for line in (setup["store"] / "audit.jsonl").read_text().splitlines()]
    served = [a for a in audit if a.get("event") == "service_match"]
    assert served and all(a["token"] == "client" and "hashes" not in a for a in served)
    assert any(a["lists"] == [{"name": "known", "version": a["lists"][0]["version"]}] for a in served if a["lists"])


def test_hostile_uploads_get_typed_errors(setup: dict) -> None:
    url, headers = setup["server"].url + "/v1/match", _auth(setup)
    bomb = bytearray(encode(make_rgb(8, 8, seed=1), "PNG"))
    bomb[16:24] = (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big")  # IHDR width/height
    slow = b"\xff\xd8\xff" + b"\xff" * (900 << 10)  # JPEG magic and a long run of fill bytes
    for data, codes in ((bytes(bomb), {"decompression_bomb", "corrupt"}), (slow, {"timeout", "corrupt", "truncated"}),
                        (os.urandom(5000), {"unsupported_format"})):
        response = httpx.post(url, content=data, headers=headers, timeout=60)
        row = response.json()
        assert response.status_code == 422 and (row.get("error") or row.get("decode_error"))["code"] in codes, row
    assert httpx.get(setup["server"].url + "/readyz").status_code == 200  # still serving


def test_auth_and_limits(setup: dict) -> None:
    base = setup["server"].url
    jpeg = (setup["files"] / "img0.jpg").read_bytes()
    assert httpx.post(base + "/v1/match", content=jpeg).status_code == 401
    assert httpx.post(base + "/v1/match", content=jpeg, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.post(base + "/v1/entries/1/disable", headers=_auth(setup)).status_code == 403
    big = httpx.post(base + "/v1/match", content=b"\0" * (2 << 20), headers=_auth(setup))
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
    slow = b"\xff\xd8\xff" + b"\xff" * (900 << 10)
    results: list[int] = []

    def post() -> None:
        results.append(httpx.post(base + "/v1/match", content=slow, headers=_auth(setup), timeout=60).status_code)
    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 503 in results and set(results) <= {422, 503}
    refused = httpx.post(base + "/v1/match", content=slow, headers=_auth(setup), timeout=60)
    assert refused.status_code == 422  # the queue drained: served again


def test_lookup_single_and_batch(setup: dict) -> None:
    base = setup["server"].url
    pdq = Hasher(("pdq",)).hash((setup["files"] / "img0.jpg").read_bytes()).hashes["pdq"]
    one = httpx.post(base + "/v1/lookup", json={"hashes": {"pdq": pdq}}, headers=_auth(setup)).json()
    assert one["status"] == "match" and one["matches"][0]["distance"] == 0
    batch = httpx.post(base + "/v1/lookup", json=[{"hashes": {"pdq": pdq}}, {"hashes": {"pdq": "zz"}},
                                                  {"hashes": {"pdq": "0" * 64}, "pdq_quality": 10}],
                       headers=_auth(setup)).json()["results"]
    assert batch[0]["status"] == "match" and batch[1]["error"]["code"] == "bad_request"
    assert batch[2]["status"] == "low_quality"
    assert httpx.post(base + "/v1/lookup", content=b"{", headers=_auth(setup)).status_code == 400
    # A batch over INLINE_LOOKUPS is matched off the event loop, on every core: each
    # answer in its place, equal to the answer to the same query alone.
    queries = [{"hashes": {"pdq": pdq}}, {"hashes": {"pdq": "zz"}}, {"hashes": "none"}, {"hashes": {"pdq": "0" * 64}},
               {"hashes": {"pdq": pdq}, "pdq_quality": 10}] * 10
    big = httpx.post(base + "/v1/lookup", json=queries, headers=_auth(setup)).json()["results"]
    alone = [httpx.post(base + "/v1/lookup", json=q, headers=_auth(setup)).json() for q in queries[:5]]
    for got, want in zip(big, alone * 10):
        assert got == {k: v for k, v in want.items() if k != "request_id"}
    assert [r.get("status") for r in big[:5]] == ["match", None, None, "no_match", "low_quality"]


def test_metrics_and_openapi(setup: dict) -> None:
    base = setup["server"].url
    # Metrics name lists and categories: never served without a token of the metrics scope
    # (audit, issue 24 item 6).
    assert httpx.get(base + "/metrics").status_code == 401
    assert httpx.get(base + "/metrics", headers=_auth(setup, "client")).status_code == 403
    text = httpx.get(base + "/metrics", headers=_auth(setup, "monitor")).text
    for name in ("hashmatch_requests_total", "hashmatch_request_seconds_bucket", "hashmatch_matches_total",
                 "hashmatch_queue_depth", "hashmatch_worker_restarts", "hashmatch_store_generation",
                 "hashmatch_store_entries"):
        assert name in text, name
    spec = httpx.get(base + "/openapi.json").json()
    assert {"/v1/match", "/v1/lookup", "/v1/lists", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])


def test_live_swaps_under_load_and_admin_changes(setup: dict) -> None:
    base, headers = setup["server"].url, _auth(setup)
    pdq = Hasher(("pdq",)).hash((setup["files"] / "img2.jpg").read_bytes()).hashes["pdq"]
    before = httpx.get(base + "/v1/lists", headers=headers).json()["generation"]
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                response = client.post(base + "/v1/lookup", json={"hashes": {"pdq": pdq}}, headers=headers)
                if response.status_code != 200 or response.json()["status"] != "match":
                    failures.append(response.text[:200])
    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for version in range(4):  # re-imports by the CLI while the service answers
        assert _cli("list", "import", str(setup["list"]), "-s", str(setup["store"]), "--version",
                    f"v{version}").returncode == 0
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    after = httpx.get(base + "/v1/lists", headers=headers).json()
    assert after["generation"] >= before + 4 and after["lists"][0]["version"] == "v3"
    # admin: disable the entry the lookup hits, see it stop matching, enable it again
    entry = httpx.post(base + "/v1/lookup", json={"hashes": {"pdq": pdq}}, headers=headers).json()["matches"][0]
    ops = _auth(setup, "ops")
    done = httpx.post(base + f"/v1/entries/{entry['store_id']}/disable", json={"reason": "false positive"},
                      headers=ops)
    assert done.status_code == 200, done.text
    assert httpx.post(base + "/v1/lookup", json={"hashes": {"pdq": pdq}}, headers=headers).json()["status"] \
        == "no_match"
    assert httpx.post(base + f"/v1/entries/{entry['store_id']}/enable", headers=ops).status_code == 200
    assert httpx.post(base + "/v1/lookup", json={"hashes": {"pdq": pdq}}, headers=headers).json()["status"] == "match"
    assert httpx.post(base + "/v1/entries/999999/disable", headers=ops).status_code == 404
    imported = httpx.put(base + "/v1/lists/extra?version=1", content=f"pdq {'f' * 64}\n", headers=ops)
    assert imported.status_code == 200 and imported.json()["entries"] == 1
    names = {item["name"] for item in httpx.get(base + "/v1/lists", headers=headers).json()["lists"]}
    assert names == {"known", "extra"}


def test_readiness_waits_for_the_store(tmp_path: Path) -> None:
    store = tmp_path / "later"
    server = Server(store, None)
    try:
        assert httpx.get(server.url + "/healthz").status_code == 200
        loading = httpx.get(server.url + "/readyz")
        assert loading.status_code == 503
        assert str(tmp_path) not in loading.text  # no store path or parse error for anyone (issue 24 item 6)
        assert httpx.post(server.url + "/v1/lookup", json={"hashes": {"pdq": "0" * 64}}).status_code == 503
        (tmp_path / "l.txt").write_text(f"pdq {'a' * 64}\n")
        assert _cli("list", "import", str(tmp_path / "l.txt"), "-s", str(store)).returncode == 0
        server.wait("/readyz")
    finally:
        server.stop()
