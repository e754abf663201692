"""The decision log (hashmatch.DecisionLog): what a decision keeps and never keeps, its
file (0600, whole lines, fsync'd), puids never reused (threads and processes), reviews,
crash damage, and recording from a real Matcher's MatchResult and from `hashmatch
decide` on a scan report."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from accountabilityhelp import SECRET_PATH, row
from servicehelp import _cli

import hashmatch
from hashmatch.accountability.decisions import DecisionError, read_decisions

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_a_decision_keeps_the_evidence_and_nothing_personal(tmp_path: Path) -> None:
    log = hashmatch.DecisionLog(tmp_path / "decisions.jsonl")
    source = row(3, lists=2)
    decision = log.record(source, puid="case-3", action=["removed", "account_suspended"], automated="partially",
                          content_date="2026-03-01", decided_at="2026-03-02T10:11:12+01:00")
    assert decision.decided_at == "2026-03-02T09:11:12Z"  # UTC
    assert decision.content_type == "image" and decision.content_date == "2026-03-01"
    assert [m["list_name"] for m in decision.matches] == ["csam-list", "extra-list-1"]
    assert decision.matches[0] == {"list_name": "csam-list", "list_version": "v1", "category": "csam",
                                   "entry_id": "E3-0", "store_id": 1009, "algorithm": "pdq", "distance": 7,
                                   "threshold": 31, "variant": "original"}
    text = (tmp_path / "decisions.jsonl").read_text()
    for secret in (source["path"], os.path.basename(source["path"]), source["sha256"], source["hashes"]["pdq"],
                   source["hashes"]["md5"], "holiday"):
        assert secret not in text
    assert oct((tmp_path / "decisions.jsonl").stat().st_mode & 0o777) == "0o600"
    [read] = list(log.decisions())
    assert read == decision


@pytest.mark.parametrize(("fields", "message"), [
    ({"puid": "has space"}, "puid"), ({"puid": "x" * 501}, "puid"), ({"action": "deleted"}, "action"),
    ({"action": []}, "action"), ({"automated": "yes"}, "automated"), ({"review": "maybe"}, "review"),
    ({"decided_at": "yesterday"}, "decided_at"), ({"content_type": "audio"}, "content_type")])
def test_bad_fields_are_refused_with_the_field_named(tmp_path: Path, fields: dict, message: str) -> None:
    log = hashmatch.DecisionLog(tmp_path / "d.jsonl")
    with pytest.raises(DecisionError, match=message):
        log.record(row(1), **{"puid": "p1", "action": "removed", "automated": "fully", **fields})
    assert not (tmp_path / "d.jsonl").exists() or (tmp_path / "d.jsonl").read_text() == ""


def test_a_result_without_a_match_cannot_be_decided(tmp_path: Path) -> None:
    log = hashmatch.DecisionLog(tmp_path / "d.jsonl")
    with pytest.raises(DecisionError, match="no match"):
        log.record({**row(1), "status": "no_match", "matches": []}, puid="p", action="removed", automated="fully")


def test_content_type_comes_from_the_row(tmp_path: Path) -> None:
    log = hashmatch.DecisionLog(tmp_path / "d.jsonl")
    exact_only = {"path": "x.bin", "status": "match", "hashes": {"md5": "0" * 32},
                  "decode_error": {"code": "unsupported_format"},
                  "matches": [{"algorithm": "md5", "distance": 0, "list_name": "l", "list_version": "1"}]}
    assert log.record(row(1, video=True), puid="v", action="removed", automated="fully").content_type == "video"
    assert log.record(exact_only, puid="o", action="removed", automated="fully").content_type == "other"
    assert log.record(row(2), puid="i", action="removed", automated="fully").content_type == "image"


def test_a_puid_is_never_reused_across_threads_and_processes(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    errors: list[str] = []

    def record(worker: int) -> None:
        log = hashmatch.DecisionLog(path)  # one object per thread: the flock, not the object, must protect
        for i in range(60):
            try:
                log.record(row(i), puid=f"p{i}", action="removed", automated="fully")
            except DecisionError:
                errors.append(f"p{i}")

    script = ("import sys; sys.path.insert(0, %r); from accountabilityhelp import row; import hashmatch\n"
              "from hashmatch.accountability.decisions import DecisionError\n"
              "log = hashmatch.DecisionLog(%r)\n"
              "for i in range(60):\n"
              "    try: log.record(row(i), puid=f'p{i}', action='removed', automated='fully')\n"
              "    except DecisionError: pass\n") % (str(Path(__file__).parent), str(path))
    other = subprocess.Popen([sys.executable, "-c", script], cwd="/")  # the installed hashmatch, not the tree
    threads = [threading.Thread(target=record, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert other.wait(60) == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    puids = [line["puid"] for line in lines]
    assert sorted(puids) == sorted(set(puids)) and set(puids) == {f"p{i}" for i in range(60)}
    # 300 attempts on 60 puids: the threads made at most 60 of the 60 records, so at least
    # 180 of their 240 attempts were refused with an error (none silently dropped or doubled).
    assert 180 <= len(errors) <= 240


def test_reviews_fold_into_decisions_once(tmp_path: Path) -> None:
    log = hashmatch.DecisionLog(tmp_path / "d.jsonl")
    log.record(row(1), puid="a", action="removed", automated="fully")
    log.record(row(2), puid="b", action="removed", automated="fully")
    log.review("a", "false_match", after_complaint=True)
    with pytest.raises(DecisionError, match="already been reviewed"):
        log.review("a", "confirmed")
    with pytest.raises(DecisionError, match="no decision"):
        log.review("zzz", "confirmed")
    reopened = hashmatch.DecisionLog(tmp_path / "d.jsonl")  # a new process's view: from the file
    with pytest.raises(DecisionError, match="already been reviewed"):
        reopened.review("a", "confirmed")
    decisions = {d.puid: d for d in reopened.decisions()}
    assert decisions["a"].review == "false_match" and decisions["a"].after_complaint
    assert decisions["b"].review is None
    assert reopened.get("b").matches == decisions["b"].matches


def test_a_line_cut_by_a_crash_is_skipped_not_glued(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    log = hashmatch.DecisionLog(path)
    log.record(row(1), puid="a", action="removed", automated="fully")
    with open(path, "a") as handle:
        handle.write('{"event": "decision", "puid": "half')  # a writer killed mid-line
    log2 = hashmatch.DecisionLog(path)
    log2.record(row(2), puid="b", action="removed", automated="fully")
    from hashmatch.accountability.decisions import LogStats

    stats = LogStats()
    assert [d.puid for d in read_decisions(path, stats=stats)] == ["a", "b"]
    assert stats.damaged == 1


def test_since_and_until_select_by_decision_date(tmp_path: Path) -> None:
    log = hashmatch.DecisionLog(tmp_path / "d.jsonl")
    for day in ("2026-01-31", "2026-02-01", "2026-02-28", "2026-03-01"):
        log.record(row(1), puid=f"p{day}", action="removed", automated="fully", decided_at=f"{day}T23:59:59Z")
    assert [d.decided_date for d in log.decisions("2026-02-01", "2026-02-28")] == ["2026-02-01", "2026-02-28"]


def test_a_matcher_result_is_recorded_as_it_is(tmp_path: Path) -> None:
    store = hashmatch.Store.open_or_create(tmp_path / "store")
    store = store.import_list(hashmatch.read_list(str(EXAMPLES / "lists" / "originals-pdq.txt"),
                                                  category="terrorism"), name="known", version="7")
    result = hashmatch.Matcher(store).match(str(EXAMPLES / "images" / "copies" / "scene-1-reencoded-q40.jpg"))
    assert result.matched
    decision = hashmatch.DecisionLog(tmp_path / "d.jsonl").record(result, puid="m1", action="removed",
                                                                  automated="fully")
    expected = result.matches[0]
    assert decision.matches[0]["distance"] == expected.distance and decision.matches[0]["category"] == "terrorism"
    assert decision.matches[0]["store_id"] == expected.store_id and decision.content_type == "image"


def test_decide_backfills_a_scan_report_once(tmp_path: Path) -> None:
    report = tmp_path / "scan.jsonl"
    rows = [row(1), {**row(2), "status": "no_match", "matches": []}, row(3)]
    report.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"summary": {}}\n')
    log = tmp_path / "d.jsonl"
    args = ["decide", "--report", str(report), "--decisions", str(log), "--action", "removed", "--action",
            "account_suspended", "--automated", "fully", "--puid-prefix", "backfill-2026-"]
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    assert "2 decisions recorded" in first.stderr
    again = _cli(*args)
    assert again.returncode == 0 and "2 rows already recorded" in again.stderr
    decisions = list(read_decisions(log))
    assert [d.puid for d in decisions] == ["backfill-2026-1", "backfill-2026-3"]
    assert decisions[0].actions == ("removed", "account_suspended")
    assert SECRET_PATH[:20] not in log.read_text()
    bad = _cli("decide", "--report", str(report), "--decisions", str(log), "--action", "removed", "--automated",
               "fully", "--puid-prefix", "bad prefix ")
    assert bad.returncode == 2 and "puid" in bad.stderr
