"""POST /v1/decisions and /v1/decisions/{puid}/review on a real `hashmatch serve` (a
subprocess): a decision on an earlier answer by its request_id or with its evidence,
scopes, conflicts, a false match that disables the entry (admin too), the decision log's
content (no path, hash or token), and the evidence kept for a bounded time."""
from __future__ import annotations

import hashlib
import json

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

from imagegen import encode, make_rgb  # noqa: E402
from servicehelp import Server, _cli  # noqa: E402

from hashmatch import Hasher  # noqa: E402
from hashmatch.service.decisions import RecentEvidence  # noqa: E402


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("decisions")
    images = [encode(make_rgb(320, 240, seed=900 + i, kind="shapes"), "JPEG", quality=90) for i in range(3)]
    hashes = [Hasher(("pdq",)).hash(data).hashes["pdq"] for data in images]
    listed = root / "known.txt"
    listed.write_text(f"pdq {hashes[0]}\npdq {hashes[1]}\n")
    store = root / "store"
    assert _cli("list", "import", str(listed), "-s", str(store), "--category", "csam").returncode == 0
    tokens, secrets = root / "tokens.json", {}
    for name, scope in (("client", "match"), ("decider", "match,decide"), ("lead", "match,decide,admin")):
        done = _cli("token", "add", name, "--scope", scope, "--tokens", str(tokens))
        secrets[name] = done.stdout.strip()
    server = Server(store, tokens)
    server.wait("/readyz")
    yield {"server": server, "images": images, "hashes": hashes, "store": store, "secrets": secrets}
    server.stop()


def _post(service: dict, path: str, token: str, **kwargs) -> httpx.Response:
    return httpx.post(service["server"].url + path, headers={"Authorization": f"Bearer {service['secrets'][token]}"},
                      timeout=30, **kwargs)


def test_a_decision_on_an_earlier_match_by_its_request_id(service: dict) -> None:
    answer = _post(service, "/v1/match", "decider", content=service["images"][0])
    assert answer.status_code == 200 and answer.json()["status"] == "match"
    request_id = answer.headers["x-request-id"]
    body = {"request_id": request_id, "puid": "svc-1", "action": ["removed", "account_suspended"],
            "automated": "fully", "content_date": "2026-11-30"}
    assert _post(service, "/v1/decisions", "client", json=body).status_code == 403  # no decide scope
    recorded = _post(service, "/v1/decisions", "decider", json=body)
    assert recorded.status_code == 201, recorded.text
    decision = recorded.json()["decision"]
    assert decision["matches"][0]["list_name"] == "known" and decision["matches"][0]["category"] == "csam"
    assert decision["matches"][0]["distance"] == 0 and decision["content_type"] == "image"
    again = _post(service, "/v1/decisions", "decider", json=body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    unknown = _post(service, "/v1/decisions", "decider", json={**body, "request_id": "0" * 32, "puid": "svc-x"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_request"


def test_a_batch_lookup_result_and_evidence_sent_back(service: dict) -> None:
    queries = [{"hashes": {"pdq": service["hashes"][2]}}, {"hashes": {"pdq": service["hashes"][1]}}]
    answer = _post(service, "/v1/lookup", "decider", json=queries)
    request_id = answer.json()["request_id"]
    base = {"request_id": request_id, "action": "disabled", "automated": "partially"}
    no_match = _post(service, "/v1/decisions", "decider", json={**base, "puid": "svc-2", "result": 0})
    assert no_match.status_code == 400 and "no match" in no_match.json()["error"]["message"]
    assert _post(service, "/v1/decisions", "decider", json={**base, "puid": "svc-2", "result": 1}).status_code == 201
    evidence = answer.json()["results"][1]
    sent = _post(service, "/v1/decisions", "decider",
                 json={"evidence": evidence, "puid": "svc-3", "action": "removed", "automated": "not"})
    assert sent.status_code == 201 and sent.json()["decision"]["automated"] == "not"
    for bad in ({**base, "puid": "svc-4", "evidence": evidence}, {"puid": "svc-4", "action": "removed"},
                {**base, "puid": "svc 4"}, {**base, "puid": "svc-4", "action": "deleted"},
                {**base, "puid": "svc-4", "result": -1}, {**base, "puid": "svc-4", "colour": "red"}, []):
        refused = _post(service, "/v1/decisions", "decider", json=bad)
        assert refused.status_code == 400, (bad, refused.text)


def test_a_false_match_review_disables_the_entry_with_an_admin_token(service: dict) -> None:
    answer = _post(service, "/v1/lookup", "decider", json={"hashes": {"pdq": service["hashes"][1]}})
    assert answer.json()["status"] == "match"
    body = {"request_id": answer.json()["request_id"], "puid": "svc-5", "action": "removed", "automated": "fully"}
    assert _post(service, "/v1/decisions", "decider", json=body).status_code == 201
    review = {"review": "false_match", "after_complaint": True, "disable_entries": True, "reason": "a logo"}
    assert _post(service, "/v1/decisions/svc-5/review", "decider", json=review).status_code == 403
    done = _post(service, "/v1/decisions/svc-5/review", "lead", json=review)
    assert done.status_code == 201, done.text
    assert done.json()["disabled_entries"] and done.json()["review"] == "false_match"
    service["server"].wait("/readyz")
    after = _post(service, "/v1/lookup", "decider", json={"hashes": {"pdq": service["hashes"][1]}})
    assert after.json()["status"] == "no_match"  # the entry no longer matches
    twice = _post(service, "/v1/decisions/svc-5/review", "lead", json={"review": "confirmed"})
    assert twice.status_code == 409
    assert _post(service, "/v1/decisions/nope/review", "decider", json={"review": "confirmed"}).status_code == 404
    assert _post(service, "/v1/decisions/svc-1/review", "decider", json={"review": "maybe"}).status_code == 400


def test_the_decision_log_holds_no_path_hash_or_token(service: dict) -> None:
    log = service["store"] / "decisions.jsonl"
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    text = log.read_text()
    assert {json.loads(line)["puid"] for line in text.splitlines()} >= {"svc-1", "svc-2", "svc-3", "svc-5"}
    for secret in (*service["hashes"], *service["secrets"].values(), hashlib.sha256(service["images"][0]).hexdigest()):
        assert secret not in text
    audit = (service["store"] / "audit.jsonl").read_text()
    assert '"event": "service_decision"' in audit and '"token": "decider"' in audit


def test_evidence_is_kept_for_a_bounded_time_and_number() -> None:
    now = [0.0]
    recent = RecentEvidence(ttl_s=60, max_answers=2, clock=lambda: now[0])
    row = {"status": "match", "hashes": {"pdq": "0" * 64}, "image": {},
           "matches": [{"list_name": "l", "list_version": "1", "algorithm": "pdq", "distance": 3}]}
    recent.keep("a" * 32, [row])
    recent.keep("b" * 32, [{**row, "matches": []}])  # nothing matched: nothing kept
    assert recent.get("a" * 32) == [{"content_type": "image", "matches": [
        {"list_name": "l", "list_version": "1", "algorithm": "pdq", "distance": 3}]}]
    assert recent.get("b" * 32) is None
    now[0] = 61
    assert recent.get("a" * 32) is None  # expired
    for key in "cde":
        recent.keep(key * 32, [row])
    assert recent.get("c" * 32) is None and recent.get("e" * 32) is not None and len(recent) == 2
