"""The DSA Transparency Database fake (tests/dsafake.py) answers as ../shared/DSA.md says."""
from __future__ import annotations

import httpx
import pytest
from dsafake import TransparencyDbFake, valid_statement, validate_statement

BATCH = "/api/v1/statements"


@pytest.fixture()
def fake():
    server = TransparencyDbFake(token="secret-token")
    yield server
    server.close()


@pytest.fixture()
def client(fake):
    with httpx.Client(base_url=fake.base, headers={"Authorization": "Bearer secret-token",
                                                   "Accept": "application/json"}) as c:
        yield c


def test_valid_batch_of_100_is_stored(fake, client):
    statements = [valid_statement(f"p-{i}") for i in range(100)]
    answer = client.post(BATCH, json={"statements": statements})
    assert answer.status_code == 201
    echoed = answer.json()["statements"]
    assert [s["puid"] for s in echoed] == [f"p-{i}" for i in range(100)]
    assert all(s["uuid"] and s["created_at"] for s in echoed)
    assert fake.stored_count == 100 and fake.stored["p-7"]["uuid"] == echoed[7]["uuid"]
    assert fake.requests == [("POST", BATCH, 100)] and fake.posts == 1
    one = client.post("/api/v1/statement", json=valid_statement("single_1"))
    assert one.status_code == 201 and one.json()["puid"] == "single_1" and one.json()["uuid"]
    got = client.get(f"/api/v1/statement/{one.json()['uuid']}")
    assert got.status_code == 200 and got.json()["puid"] == "single_1"


def test_101_statements_or_none_are_refused(fake, client):
    for statements in ([valid_statement(f"p{i}") for i in range(101)], []):
        answer = client.post(BATCH, json={"statements": statements})
        assert answer.status_code == 422 and "statements" in answer.json()["errors"]
    assert fake.stored_count == 0


def test_invalid_statements_are_named_and_nothing_is_stored(fake, client):
    statements = [valid_statement(f"p{i}") for i in range(10)]
    del statements[0]["decision_facts"]
    statements[7]["territorial_scope"] = ["EL", "DE"]   # Greece is GR
    answer = client.post(BATCH, json={"statements": statements})
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert set(errors) == {"statement_0", "statement_7"}
    assert set(errors["statement_0"]) == {"decision_facts"} and set(errors["statement_7"]) == {"territorial_scope"}
    assert fake.stored_count == 0
    single = client.post("/api/v1/statement", json=statements[0])
    assert single.status_code == 422 and single.json()["message"] and "decision_facts" in single.json()["errors"]


def test_field_rules():
    def errors_of(**changes):
        s = valid_statement("x")
        s.update(changes)
        return set(validate_statement({k: v for k, v in s.items() if v is not None}))

    assert errors_of() == set()
    assert errors_of(decision_visibility=None) == {"decision_visibility", "decision_monetary",
                                                   "decision_provision", "decision_account"}
    assert errors_of(decision_visibility=None, decision_account="DECISION_ACCOUNT_SUSPENDED") == set()
    assert errors_of(decision_visibility=["DECISION_VISIBILITY_OTHER"]) == {"decision_visibility_other"}
    assert errors_of(decision_monetary="DECISION_MONETARY_OTHER") == {"decision_monetary_other"}
    assert errors_of(illegal_content_explanation="x" * 2001) == {"illegal_content_explanation"}
    assert errors_of(decision_ground="DECISION_GROUND_INCOMPATIBLE_CONTENT") == {
        "incompatible_content_ground", "incompatible_content_explanation"}
    assert errors_of(content_type=[]) == {"content_type"}
    assert errors_of(content_type=["CONTENT_TYPE_OTHER"]) == {"content_type_other"}
    assert errors_of(category_specification=["KEYWORD_CSAM"]) == {"category_specification"}
    assert errors_of(category_addition=["STATEMENT_CATEGORY_VIOLENCE"]) == set()
    assert errors_of(content_date="1999-12-31", application_date="2019-12-31") == {"content_date",
                                                                                   "application_date"}
    assert errors_of(content_date="2025-02-30") == {"content_date"}
    assert errors_of(decision_facts="x" * 5001, automated_detection="yes") == {"decision_facts",
                                                                              "automated_detection"}
    assert errors_of(puid="a/b", content_language="en", decision_ground_reference_url="ftp://x") == {
        "puid", "content_language", "decision_ground_reference_url"}
    assert errors_of(puid="x" * 501) == {"puid"}
    assert errors_of(content_language="EN", decision_ground_reference_url="https://example.eu/terms",
                     account_type="ACCOUNT_TYPE_PRIVATE") == set()


def test_removed_category_is_refused(fake, client):
    old = valid_statement("old")
    old["category"] = "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"
    answer = client.post("/api/v1/statement", json=old)
    assert answer.status_code == 422 and set(answer.json()["errors"]) == {"category"}
    assert fake.stored_count == 0


def test_duplicate_puids_within_and_across_calls(fake, client):
    twice = [valid_statement("a"), valid_statement("b"), valid_statement("a")]
    answer = client.post(BATCH, json={"statements": twice})
    assert answer.status_code == 422 and answer.json()["errors"]["existing_puids"] == ["a"]
    assert "puid" in answer.json()["errors"] and fake.stored_count == 0
    assert client.post(BATCH, json={"statements": [valid_statement("a")]}).status_code == 201
    again = client.post(BATCH, json={"statements": [valid_statement("c"), valid_statement("a")]})
    assert again.status_code == 422 and again.json()["errors"]["existing_puids"] == ["a"]
    single = client.post("/api/v1/statement", json=valid_statement("a"))
    assert single.status_code == 422 and "puid" in single.json()["errors"]
    assert set(fake.stored) == {"a"}


def test_existing_puid_lookup(fake, client):
    uuid = client.post(BATCH, json={"statements": [valid_statement("here")]}).json()["statements"][0]["uuid"]
    found = client.get("/api/v1/statement/existing-puid/here")
    assert found.status_code == 302 and found.headers["Location"] == f"/api/v1/statement/{uuid}"
    assert client.get("/api/v1/statement/existing-puid/absent").status_code == 404


def test_token_is_required(fake, client):
    assert client.get("/api/ping").status_code == 200
    bad = {"Authorization": "Bearer wrong"}
    assert httpx.get(fake.base + "/api/ping", headers=bad).status_code == 401
    answer = httpx.post(fake.base + BATCH, json={"statements": [valid_statement("z")]}, headers=bad)
    assert answer.status_code == 401 and answer.json()["message"]
    assert client.post(BATCH, content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400
    assert fake.stored_count == 0


def test_script_of_misbehaviours(fake, client):
    fake.script = ["429", "429:0.2", "503", "drop", "store_then_500", "delay:0.05"]
    limited = client.post(BATCH, json={"statements": [valid_statement("s1")]})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert client.post(BATCH, json={"statements": [valid_statement("s1")]}).headers["Retry-After"] == "0.2"
    assert client.post(BATCH, json={"statements": [valid_statement("s1")]}).status_code == 503
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(BATCH, json={"statements": [valid_statement("s1")]})
    assert fake.stored_count == 0
    lost = client.post(BATCH, json={"statements": [valid_statement("s1"), valid_statement("s2")]})
    assert lost.status_code == 500 and set(fake.stored) == {"s1", "s2"}
    late = client.post(BATCH, json={"statements": [valid_statement("s3")]})
    assert late.status_code == 201 and fake.posts == 6 and fake.stored_count == 3
    assert [n for _, _, n in fake.requests] == [1, 1, 1, 1, 2, 1]


def test_rate_limit_and_thousands():
    fake = TransparencyDbFake(rate_limit_per_s=3)
    try:
        with httpx.Client(base_url=fake.base, headers={"Authorization": "Bearer secret-token"}) as c:
            codes = [c.get("/api/ping").status_code for _ in range(5)]
            assert codes[:3] == [200] * 3 and 429 in codes[3:]
        fake.rate_limit_per_s = None
        with httpx.Client(base_url=fake.base, headers={"Authorization": "Bearer secret-token"}) as c:
            for start in range(0, 3000, 100):
                batch = [valid_statement(f"n{i}") for i in range(start, start + 100)]
                assert c.post(BATCH, json={"statements": batch}).status_code == 201
        assert fake.stored_count == 3000
    finally:
        fake.close()
