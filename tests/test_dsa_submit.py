"""`hashmatch dsa submit` against the loopback fake Transparency Database (tests/dsafake.py,
built to ../shared/DSA.md): thousands accepted; a batch with invalid statements (the rest
stored, those rejected with reasons); kill -9 mid-submission then resume (every puid
stored exactly once); lost answers; duplicates from an earlier run counted, not resent;
429 with Retry-After, 5xx until the retries are spent (exit 2, then resumed); the token
file; --dry-run; no token or hash in any output."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import dsafake
import pytest
from accountabilityhelp import fill
from dsafake import TransparencyDbFake
from servicehelp import _cli

from hashmatch.accountability.decisions import DecisionLog, read_decisions
from hashmatch.accountability.dsa_config import DsaConfig
from hashmatch.accountability.statements import write_statements
from hashmatch.accountability.submit import Submitter
from hashmatch.base.http import HttpClient

TOKEN = "tdb-token-0123456789abcdef"


@pytest.fixture
def fake():
    server = TransparencyDbFake(token=TOKEN)
    yield server
    server.close()


def _statements(tmp_path: Path, count: int, prefix: str = "d") -> Path:
    log = DecisionLog(tmp_path / f"{prefix}-decisions.jsonl")
    fill(log, count, prefix=prefix)
    path = tmp_path / f"{prefix}-statements.jsonl"
    assert write_statements(read_decisions(log.path), DsaConfig(), path).invalid == 0
    return path


def _token(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(mode)
    return path


def _submit(statements: Path, fake: TransparencyDbFake, token: Path, *extra: str) -> subprocess.CompletedProcess:
    return _cli("dsa", "submit", str(statements), "--url", fake.base, "--token-file", str(token), "--json", *extra)


def test_thousands_of_statements_are_all_stored_once(tmp_path: Path, fake: TransparencyDbFake) -> None:
    statements = _statements(tmp_path, 2500)
    done = _submit(statements, fake, _token(tmp_path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"submitted": 2500, "already_there": 0, "rejected": 0, "remaining": 0,
                                       "settled_before": 0, "stopped": None}
    assert fake.stored_count == 2500 and fake.posts == 25
    again = _submit(statements, fake, _token(tmp_path))
    assert json.loads(again.stdout)["settled_before"] == 2500 and fake.posts == 25  # nothing resent
    for text in (done.stdout, done.stderr, statements.with_name(statements.name + ".state").read_text()):
        assert TOKEN not in text and "9d9d9d9d" not in text


def test_a_batch_with_two_invalid_statements(tmp_path: Path, fake: TransparencyDbFake, monkeypatch) -> None:
    """Two statements the database refuses (by rules hashmatch does not check, here a
    refusal the fake is told to make): none of the batch is stored by that call, the two
    go to the rejects file with the database's reasons, the rest are sent again."""
    statements = _statements(tmp_path, 250)
    puids = [json.loads(line)["puid"] for line in statements.read_text().splitlines()]
    refused = {puids[105]: {"decision_facts": ["The decision facts look machine-made."]},
               puids[170]: {"territorial_scope": ["Not served there."]}}
    checked = dsafake.validate_statement
    monkeypatch.setattr(dsafake, "validate_statement",
                        lambda s: {**checked(s), **refused.get(s.get("puid"), {})})
    summary = Submitter(fake.base, TOKEN, http=HttpClient(attempts=2, backoff_s=0.01)).submit(str(statements))
    assert (summary.submitted, summary.rejected, summary.already, summary.remaining) == (248, 2, 0, 0)
    assert set(fake.stored) == set(puids) - set(refused)
    rejects = [json.loads(line) for line in Path(f"{statements}.rejected.jsonl").read_text().splitlines()]
    assert {r["puid"]: r["errors"] for r in rejects} == refused
    assert all(r["rejected_by"] == "database" for r in rejects)


def test_locally_invalid_and_repeated_statements_are_never_sent(tmp_path: Path, fake: TransparencyDbFake) -> None:
    statements = _statements(tmp_path, 20)
    lines = statements.read_text().splitlines()
    broken = json.loads(lines[3])
    broken["category"] = "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"  # removed in July 2025
    lines[3] = json.dumps(broken)
    lines.append(lines[5])  # the same puid twice
    statements.write_text("\n".join(lines) + "\n")
    dry = _submit(statements, fake, _token(tmp_path), "--dry-run")
    assert dry.returncode == 1 and json.loads(dry.stdout)["remaining"] == 19 and fake.posts == 0
    done = _submit(statements, fake, _token(tmp_path))
    assert done.returncode == 1
    assert json.loads(done.stdout)["submitted"] == 19 and json.loads(done.stdout)["rejected"] == 2
    assert broken["puid"] not in fake.stored and fake.stored_count == 19


def test_kill_9_mid_submission_then_resume_stores_every_puid_once(tmp_path: Path, fake: TransparencyDbFake) -> None:
    statements = _statements(tmp_path, 3000)
    fake.script = ["delay:0.15"] * 40
    process = subprocess.Popen([sys.executable, "-m", "hashmatch.cli", "dsa", "submit", str(statements), "--url",
                                fake.base, "--token-file", str(_token(tmp_path))], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd="/")
    deadline = time.monotonic() + 60
    while fake.stored_count < 500 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < fake.stored_count < 3000
    fake.script = ["store_then_500", "store_then_500"]  # and two answers lost on the way back
    first = _submit(statements, fake, _token(tmp_path))
    second = _submit(statements, fake, _token(tmp_path))
    assert second.returncode == 0, second.stderr + first.stderr
    assert fake.stored_count == 3000 and set(fake.stored) == {f"d-{i}" for i in range(3000)}
    counts = [json.loads(first.stdout), json.loads(second.stdout)]
    assert counts[-1]["remaining"] == 0
    assert sum(c["submitted"] + c["already_there"] for c in counts) + counts[0]["settled_before"] >= 3000


def test_puids_already_in_the_database_are_counted_not_resent(tmp_path: Path, fake: TransparencyDbFake) -> None:
    statements = _statements(tmp_path, 300)
    earlier = [json.loads(line) for line in statements.read_text().splitlines()][:150:3]
    for start in range(0, len(earlier), 100):
        assert fake.submit({"statements": earlier[start:start + 100]}, True)[0] == 201  # an earlier, lost run
    done = _submit(statements, fake, _token(tmp_path))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["submitted"], summary["already_there"]) == (250, 50)
    assert fake.stored_count == 300


def test_rate_limits_and_outages(tmp_path: Path, fake: TransparencyDbFake) -> None:
    statements = _statements(tmp_path, 200)
    fake.script = ["429:0.3"]
    started = time.monotonic()
    summary = Submitter(fake.base, TOKEN, http=HttpClient(attempts=3, backoff_s=0.01)).submit(str(statements))
    assert summary.submitted == 200 and time.monotonic() - started >= 0.3  # Retry-After honoured
    other = _statements(tmp_path, 200, prefix="o")
    fake.script = ["500"] * 6
    stopped = Submitter(fake.base, TOKEN, http=HttpClient(attempts=3, backoff_s=0.01)).submit(str(other))
    assert stopped.stopped and "500" in stopped.stopped and stopped.remaining == 200
    fake.script = ["drop"]
    resumed = Submitter(fake.base, TOKEN, http=HttpClient(attempts=3, backoff_s=0.01)).submit(str(other))
    assert resumed.stopped is None and resumed.submitted == 200 and fake.stored_count == 400


def test_the_cli_stops_with_exit_2_and_the_token_file_must_be_private(tmp_path: Path,
                                                                      fake: TransparencyDbFake) -> None:
    statements = _statements(tmp_path, 10)
    loose = _submit(statements, fake, _token(tmp_path, 0o644))
    assert loose.returncode == 2 and "chmod 600" in loose.stderr
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    wrong.chmod(0o600)
    refused = _cli("dsa", "submit", str(statements), "--url", fake.base, "--token-file", str(wrong), "--json")
    assert refused.returncode == 2 and "refused the token" in refused.stderr
    assert fake.stored_count == 0 and "nope" not in refused.stderr
    done = _submit(statements, fake, _token(tmp_path))
    assert done.returncode == 0 and json.loads(done.stdout)["submitted"] == 10
