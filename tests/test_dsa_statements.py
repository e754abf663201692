"""Statements of reasons (`hashmatch dsa statements`): built from recorded decisions,
checked against the loopback fake's independent reading of the Transparency Database's
rules (tests/dsafake.py), invalid ones reported by field and never written, dsa.toml,
the enum values against ../shared/dsa/enums.json, and no personal data or hash value in
any output."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from accountabilityhelp import SECRET_PATH, fill, row
from dsafake import validate_statement
from servicehelp import _cli

from hashmatch.accountability import enums
from hashmatch.accountability.decisions import DecisionLog, make_decision, read_decisions
from hashmatch.accountability.dsa_config import EXAMPLE, DsaConfig, load_config, parse_config
from hashmatch.accountability.schema import problems
from hashmatch.accountability.statements import build_statement, write_statements
from hashmatch.errors import ConfigurationError

SHARED_ENUMS = Path(__file__).resolve().parent.parent.parent / "shared" / "dsa" / "enums.json"


@pytest.mark.skipif(not SHARED_ENUMS.exists(), reason="../shared/dsa/enums.json is not beside the checkout")
def test_the_bundled_enums_are_the_published_ones() -> None:
    published = json.loads(SHARED_ENUMS.read_text())
    assert {k: list(v) for k, v in enums.ENUMS.items()} == published


def test_every_statement_of_varied_decisions_passes_the_fake_s_rules(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "d.jsonl")
    expected = fill(log, 600)
    counts = write_statements(read_decisions(log.path), DsaConfig(), tmp_path / "s.jsonl")
    assert (counts.written, counts.invalid) == (600, 0)
    statements = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [s["puid"] for s in statements] == [e["puid"] for e in expected]
    for statement, item in zip(statements, expected):
        assert validate_statement(statement) == {}, statement["puid"]
        assert statement["category"] == {"csam": "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
                                         "terrorism": "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
                                         "ncii": "STATEMENT_CATEGORY_CYBER_VIOLENCE"}[item["category"]]
        assert statement["source_type"] == "SOURCE_VOLUNTARY" and statement["automated_detection"] == "Yes"
        assert statement["automated_decision"] == {"fully": "AUTOMATED_DECISION_FULLY",
                                                   "partially": "AUTOMATED_DECISION_PARTIALLY",
                                                   "not": "AUTOMATED_DECISION_NOT_AUTOMATED"}[item["automated"]]
        assert statement["application_date"] == statement["content_date"]  # no content date recorded
        if "removed" in item["actions"]:
            assert statement["decision_visibility"] == ["DECISION_VISIBILITY_CONTENT_REMOVED"]
        if "account_terminated" in item["actions"]:  # the most severe of the account actions
            assert statement["decision_account"] == "DECISION_ACCOUNT_TERMINATED"
        assert f'the list "{item["list"]}"' in statement["decision_facts"]
    assert oct(os.stat(tmp_path / "s.jsonl").st_mode & 0o777) == "0o600"


def test_the_facts_name_the_list_and_distance_never_a_hash(tmp_path: Path) -> None:
    source = row(11, lists=2, distance=4)
    decision = make_decision(source, puid="x", action="removed", automated="not", review="confirmed",
                             content_date="2025-12-31", decided_at="2026-01-02T00:00:00Z")
    statement, found = build_statement(decision, DsaConfig())
    assert found == {} and statement is not None
    facts = statement["decision_facts"]
    assert 'the list "csam-list" (category csam), by the perceptual hash PDQ at distance 4' in facts
    assert "A person reviewed the match and confirmed it." in facts
    assert statement["category_addition"] == ["STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY"]  # the second list
    assert statement["content_date"] == "2025-12-31" and statement["application_date"] == "2026-01-02"
    text = json.dumps(statement)
    for secret in (source["path"], os.path.basename(source["path"]), source["sha256"], *source["hashes"].values(),
                   "E11-0"):
        assert secret not in text


def test_an_unmapped_category_is_reported_and_not_written(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "d.jsonl")
    log.record(row(1, category="csam"), puid="ok", action="removed", automated="fully")
    local = row(2)
    local["matches"][0]["category"] = "spam"
    log.record(local, puid="unmapped", action="removed", automated="fully")
    done = _cli("dsa", "statements", "--decisions", str(log.path), "-o", str(tmp_path / "s.jsonl"),
                "--rejects", str(tmp_path / "rejects.jsonl"))
    assert done.returncode == 1
    assert "not stated: unmapped: category no dsa.toml rule for the list category spam" in done.stderr
    assert [json.loads(s)["puid"] for s in (tmp_path / "s.jsonl").read_text().splitlines()] == ["ok"]
    [rejected] = [json.loads(s) for s in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert rejected["puid"] == "unmapped" and "category" in rejected["errors"]
    config = tmp_path / "dsa.toml"
    config.write_text('[categories.spam]\ncategory = "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"\n'
                      'keywords = ["KEYWORD_PHISHING"]\nlegal_ground = "National law"\n'
                      'explanation = "Known phishing images"\n')
    done = _cli("dsa", "statements", "--decisions", str(log.path), "-o", str(tmp_path / "s.jsonl"), "--config",
                str(config))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "s.jsonl").read_text().splitlines()[1])["category_specification"] == [
        "KEYWORD_PHISHING"]


def test_a_statement_over_a_limit_is_invalid_with_its_field() -> None:
    rules = parse_config({"categories": {"csam": {"explanation": "x" * 1999}}})
    decision = make_decision(row(1), puid="p", action="removed", automated="fully")
    statement, found = build_statement(decision, rules)
    assert found == {} and statement is not None
    assert problems({**statement, "illegal_content_explanation": "x" * 2001}) == {
        "illegal_content_explanation": ["must be text of at most 2000 characters"]}
    assert "puid" in problems({**statement, "puid": "a b"})
    assert "content_date" in problems({**statement, "content_date": "1999-12-31"})
    assert "territorial_scope" in problems({**statement, "territorial_scope": ["EL"]})  # Greece is GR
    assert "category" in problems({**statement, "category": "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"})
    assert "decision_visibility_other" in problems({**statement, "decision_visibility": ["DECISION_VISIBILITY_OTHER"]})
    assert "decision_visibility" in problems({k: v for k, v in statement.items() if k != "decision_visibility"})


@pytest.mark.parametrize(("toml", "message"), [
    ("[platform]\nterritorial_scope = [\"EL\"]\n", "territorial_scope"),
    ("[platform]\ncontent_language = \"en\"\n", "content_language"),
    ("[platform]\ncolour = 1\n", "unknown key"),
    ("[categories.csam]\ncategory = \"STATEMENT_CATEGORY_CSAM\"\n", "not a STATEMENT_CATEGORY"),
    ("[categories.new]\ncategory = \"STATEMENT_CATEGORY_VIOLENCE\"\n", "needs legal_ground, explanation"),
    ("[categories.csam]\nkeywords = [\"KEYWORD_CSAM\"]\n", "KEYWORD_CSAM"),
    ("not toml ][", "not valid TOML"),
])
def test_a_bad_dsa_toml_names_what_is_wrong(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "dsa.toml"
    path.write_text(toml)
    with pytest.raises(ConfigurationError, match=message):
        load_config(str(path))


def test_the_example_dsa_toml_loads_and_init_writes_it(tmp_path: Path) -> None:
    done = _cli("dsa", "init", str(tmp_path / "dsa.toml"))
    assert done.returncode == 0
    assert (tmp_path / "dsa.toml").read_text() == EXAMPLE
    config = load_config(str(tmp_path / "dsa.toml"))
    assert config.service == "Example service" and len(config.territorial_scope) == 30
    assert _cli("dsa", "init", str(tmp_path / "dsa.toml")).returncode == 2  # never overwritten


def test_since_until_select_statements(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "d.jsonl")
    fill(log, 200)
    done = _cli("dsa", "statements", "--decisions", str(log.path), "--since", "2026-03-01", "--until",
                "2026-03-31", "-o", str(tmp_path / "march.jsonl"))
    assert done.returncode == 0, done.stderr
    dates = [json.loads(s)["application_date"] for s in (tmp_path / "march.jsonl").read_text().splitlines()]
    expected = sum(1 for d in read_decisions(log.path) if d.decided_at.startswith("2026-03"))
    assert len(dates) == expected > 0 and all(d.startswith("2026-03") for d in dates)
    assert SECRET_PATH[:15] not in (tmp_path / "march.jsonl").read_text()
