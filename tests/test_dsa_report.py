"""Transparency counts (`hashmatch dsa report`): the CSV sheets checked against counts
computed here independently from what was recorded (tests/accountabilityhelp.fill), keyword
rows summing to categories and categories to TOTAL, the TCO figures, the text summary,
the chart, and no personal data or hash value in any file."""
from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from accountabilityhelp import SECRET_PATH, fill
from servicehelp import _cli

from hashmatch.accountability.decisions import DecisionLog
from hashmatch.accountability.report import SHEET5_HEADINGS, SHEET8_HEADINGS, TCO_HEADINGS

CATEGORY = {"csam": "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
            "terrorism": "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY", "ncii": "STATEMENT_CATEGORY_CYBER_VIOLENCE"}
KEYWORD = {"csam": "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL", "terrorism": "KEYWORD_TERRORIST_CONTENT",
           "ncii": "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING"}


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("report")
    log = DecisionLog(root / "decisions.jsonl")
    expected = fill(log, 3000)
    done = _cli("dsa", "report", "--decisions", str(log.path), "--period", "2026-02-01/2026-11-30", "--service",
                "Example", "-o", str(root / "out"), "--format", "text")
    assert done.returncode == 0, done.stderr
    inside = [e for e in expected if 2 <= e["month"] <= 11]
    return {"root": root, "out": root / "out", "expected": inside, "stdout": done.stdout}


def _csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert b"\r\n" in raw  # RFC 4180 line ends
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))


def test_sheet5_counts_equal_independent_counts(reported: dict) -> None:
    rows = _csv(reported["out"] / "own-initiative-illegal-content.csv")
    assert tuple(rows[0]) == SHEET5_HEADINGS
    expected = reported["expected"]
    measures, automated = "Number of measures taken at the provider's own initiative", \
        "Of which taken by solely automated means"
    [total] = [r for r in rows if r["Level"] == "TOTAL"]
    assert int(total[measures]) == len(expected)
    assert int(total[automated]) == sum(e["automated"] == "fully" for e in expected)
    assert int(total["Visibility restriction: removal"]) == sum("removed" in e["actions"] for e in expected)
    assert int(total["Visibility restriction: labelling"]) == sum("labelled" in e["actions"] for e in expected)
    assert int(total["Restriction of the account"]) == sum(
        any(a.startswith("account_") for a in e["actions"]) for e in expected)
    by_category = Counter(CATEGORY[e["category"]] for e in expected)
    categories = {r["Category"]: r for r in rows if r["Level"] == "CATEGORY"}
    assert set(categories) >= set(CATEGORY.values()) and len(categories) == 16  # every category, zeros too
    for name, row in categories.items():
        assert int(row[measures]) == by_category.get(name, 0)
    keywords = [r for r in rows if r["Level"] == "KEYWORD"]
    assert {(r["Category"], r["Keyword"]) for r in keywords} == {(CATEGORY[c], KEYWORD[c]) for c in CATEGORY}
    for heading in SHEET5_HEADINGS[5:]:  # keyword rows sum to their category, categories to TOTAL
        assert sum(int(r[heading]) for r in categories.values()) == int(total[heading])
        for name, row in categories.items():
            assert sum(int(k[heading]) for k in keywords if k["Category"] == name) == int(row[heading])
    assert all(r["Reporting period"] == "2026-02-01/2026-11-30" and r["Service"] == "Example" for r in rows)


def test_sheet8_precision_per_list(reported: dict) -> None:
    rows = {r["Automated means"]: r for r in _csv(reported["out"] / "automated-means.csv")}
    assert tuple(next(iter(rows.values()))) == SHEET8_HEADINGS
    for category in CATEGORY:
        mine = [e for e in reported["expected"] if e["category"] == category]
        row = rows[f"hash list {category}-list"]
        confirmed = sum(e.get("review") == "confirmed" for e in mine)
        false = sum(e.get("review") == "false_match" for e in mine)
        assert int(row["Measures taken solely by automated means"]) == sum(e["automated"] == "fully" for e in mine)
        assert int(row["Measures not taken solely by automated means"]) == sum(e["automated"] != "fully" for e in mine)
        assert (int(row["Confirmed by review"]), int(row["False matches found by review"])) == (confirmed, false)
        assert int(row["Decisions reviewed"]) == confirmed + false
        assert float(row["Precision"]) == pytest.approx(confirmed / (confirmed + false), abs=1e-4)
        assert row["Accuracy"] == "" and row["Recall"] == "" and "labelled sample" in row[
            "How the indicators were measured"]


def test_tco_figures(reported: dict) -> None:
    [row] = _csv(reported["out"] / "tco-article-7.csv")
    assert tuple(row) == TCO_HEADINGS
    terror = [e for e in reported["expected"] if e["category"] == "terrorism"
              and {"removed", "disabled"} & set(e["actions"])]
    assert int(row["Items removed or disabled"]) == len(terror)
    assert int(row["Reinstated after review"]) == sum(e.get("review") == "false_match" for e in terror)
    assert int(row["Of which after a complaint"]) == sum(e.get("review") == "false_match" and e["complaint"]
                                                        for e in terror)
    assert int(row["Complaints reviewed"]) == sum(bool(e.get("complaint")) for e in terror)


def test_summary_chart_and_privacy(reported: dict) -> None:
    out = reported["out"]
    assert f"after hash matching: {len(reported['expected']):,}" in reported["stdout"]
    assert (out / "summary.txt").read_text() == reported["stdout"]
    png = (out / "decisions-per-month.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    for path in out.iterdir():
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        if path.suffix in (".csv", ".txt"):
            text = path.read_text()
            for secret in (SECRET_PATH[:20], "IMG_2026", "9d9d9d9d", "E1-0"):
                assert secret not in text
    assert oct(os.stat(out).st_mode & 0o777) == "0o700"


def test_json_format_and_bad_periods(reported: dict) -> None:
    log = reported["root"] / "decisions.jsonl"
    done = _cli("dsa", "report", "--decisions", str(log), "--period", "2026-01-01/2026-12-31", "--format", "json")
    data = json.loads(done.stdout)
    assert data["sheet5"][0]["Level"] == "TOTAL" and data["sheet5"][0][SHEET5_HEADINGS[5]] == 3000
    for period in ("2026-12-31/2026-01-01", "2026", "2026-02-30/2026-03-01"):
        bad = _cli("dsa", "report", "--decisions", str(log), "--period", period, "--format", "text")
        assert bad.returncode == 2 and "period" in bad.stderr
