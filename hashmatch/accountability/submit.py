"""Submission of statements of reasons to the Transparency Database (POST
{base}/api/v1/statements, at most 100 a call, bearer token), exactly once per puid.

A state file beside the statements (STATEMENTS.state, JSON lines, 0600, fsync'd) records
each batch before it is sent (`sending`) and its outcome after (`stored` with the uuids,
`existing`, `rejected`). A rerun skips every settled puid; a puid left `sending` by a
crash or kill -9 is asked about first (GET existing-puid: 302 means stored), so a lost
answer never causes a second statement. Answers:
- 201: stored; the uuids are kept.
- 422 for a batch: none of it was stored. The statements named by `errors.statement_N`
  are written to the rejects file with their reasons, puids in `errors.existing_puids`
  are confirmed with existing-puid and counted as already there, and the rest is sent
  again.
- 429, 5xx, connection errors: retried with backoff, honouring Retry-After; when the
  retries are spent the run stops (`summary.stopped` says why: exit 2) and a rerun
  resumes.
- 401/403: stopped at once (the token is refused).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from hashmatch.accountability.decisions import now_utc
from hashmatch.accountability.schema import problems
from hashmatch.base.files import append_jsonl
from hashmatch.base.http import HttpClient, HttpError
from hashmatch.errors import HashmatchError

MAX_BATCH = 100  # the database's limit per call


class SubmitStopped(HashmatchError):
    """The submission stopped before the end (retries spent, token refused, an answer it
    cannot act on); the state file lets a rerun resume."""

    code = "submit_stopped"


@dataclass
class SubmitSummary:
    submitted: int = 0  # stored by this run
    already: int = 0  # already in the database (an earlier run, or a lost answer)
    rejected: int = 0  # invalid (locally or by the database): in the rejects file
    remaining: int = 0  # not yet submitted when the run stopped
    done_before: int = 0  # settled by an earlier run, skipped
    stopped: str | None = None  # why the run stopped early
    uuids: dict[str, str] = field(default_factory=dict)  # puid -> uuid (this run; capped for memory)

    def to_dict(self) -> dict[str, Any]:
        return {"submitted": self.submitted, "already_there": self.already, "rejected": self.rejected,
                "remaining": self.remaining, "settled_before": self.done_before, "stopped": self.stopped}


class _State:
    """The state file: which puids are settled, which were in flight."""

    def __init__(self, path: str):
        self.path = path
        self.settled: set[str] = set()
        self.sending: set[str] = set()
        if os.path.exists(path):
            with open(path, "rb") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue  # cut by a crash: its batch is still `sending`, so it is checked
                    self._fold(record)

    def _fold(self, record: dict[str, Any]) -> None:
        puids = record.get("puids") or []
        if record.get("event") == "sending":
            self.sending.update(puids)
        else:
            self.settled.update(puids)
            self.sending.difference_update(puids)

    def write(self, event: str, puids: list[str], **extra: Any) -> None:
        record = {"event": event, "at": now_utc(), "puids": puids, **extra}
        append_jsonl(self.path, record)
        self._fold(record)


class Submitter:
    def __init__(self, base_url: str, token: str, *, http: HttpClient | None = None, batch: int = MAX_BATCH):
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} statements")
        self.base = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                        "Content-Type": "application/json"}
        self.http = http or HttpClient(attempts=6, backoff_s=1.0, max_wait_s=60.0, max_bytes=64 << 20)
        self.batch = batch

    def submit(self, statements_path: str, *, state_path: str | None = None, rejects_path: str | None = None,
               dry_run: bool = False, progress: Callable[[int], None] | None = None) -> SubmitSummary:
        """Submit every statement of a JSON Lines file not settled by an earlier run."""
        state = _State(state_path or statements_path + ".state")
        rejects = rejects_path or statements_path + ".rejected.jsonl"
        summary = SubmitSummary()
        # Two passes over the file, so memory holds puids, never the statements: the first
        # validates and finds what is to send, the second sends it in batches.
        pending: set[str] = set()
        seen: set[str] = set()

        def reject(puid: str, errors: dict[str, Any], where: str) -> None:
            append_jsonl(rejects, {"puid": puid, "rejected_by": where, "errors": errors, "at": now_utc()})
            if not dry_run:
                state.write("rejected", [puid])
            summary.rejected += 1

        for statement in _read(statements_path):
            puid = statement.get("puid") if isinstance(statement, dict) else None
            if not isinstance(puid, str):
                reject(str(puid), {"puid": ["is required"]}, "hashmatch")
                continue
            if puid in seen:
                reject(puid, {"puid": ["appears twice in the statements file: the first one is submitted"]},
                       "hashmatch")
                continue
            seen.add(puid)
            if puid in state.settled:
                summary.done_before += 1
                continue
            found = problems(statement)
            if found:
                reject(puid, found, "hashmatch")
                continue
            pending.add(puid)
        del seen
        summary.remaining = len(pending)
        if dry_run or not pending:
            return summary
        try:
            batch: list[dict[str, Any]] = []
            for statement in _read(statements_path):
                puid = statement.get("puid") if isinstance(statement, dict) else None
                if puid not in pending:
                    continue
                pending.discard(puid)  # the first occurrence only
                if puid in state.sending and self._exists(puid):  # sent by a run that died before the answer
                    state.write("existing", [puid])
                    summary.already += 1
                    summary.remaining -= 1
                    continue
                batch.append(statement)
                if len(batch) == self.batch:
                    self._send(batch, state, summary, reject)
                    if progress is not None:
                        progress(len(batch))
                    batch = []
            if batch:
                self._send(batch, state, summary, reject)
                if progress is not None:
                    progress(len(batch))
        except SubmitStopped as exc:
            summary.stopped = str(exc)  # the caller reports it (exit 2); a rerun resumes
        return summary

    # -- one batch ---------------------------------------------------------------------------------
    def _send(self, batch: list[dict[str, Any]], state: _State, summary: SubmitSummary,
              reject: Callable[[str, dict[str, Any], str], None]) -> None:
        while batch:
            puids = [s["puid"] for s in batch]
            state.write("sending", puids)
            answer = self._post(batch)
            if answer.status == 201:
                stored = _stored(answer.body)
                state.write("stored", puids, uuids=[stored.get(p) for p in puids])
                summary.submitted += len(batch)
                summary.remaining -= len(batch)
                if len(summary.uuids) < 100_000:
                    summary.uuids.update({p: u for p, u in stored.items() if u})
                return
            if answer.status in (401, 403):
                raise SubmitStopped(f"the Transparency Database refused the token ({answer.status})")
            if answer.status != 422:
                raise SubmitStopped(f"the Transparency Database answered {answer.status} after retries; "
                                    f"rerun to resume")
            errors = _errors(answer.body)
            drop: set[str] = set()
            for key, fields in errors.items():
                if key.startswith("statement_") and key[10:].isdigit() and int(key[10:]) < len(batch):
                    puid = batch[int(key[10:])]["puid"]
                    reject(puid, fields if isinstance(fields, dict) else {"statement": fields}, "database")
                    drop.add(puid)
            claimed = errors.get("existing_puids") or []
            if not claimed and "puid" in errors and len(batch) == 1:
                claimed = [batch[0]["puid"]]
            there = [p for p in claimed if isinstance(p, str) and p in puids and p not in drop
                     and self._exists(p)]
            if there:
                state.write("existing", there)
                summary.already += len(there)
                drop.update(there)
            if not drop:
                raise SubmitStopped(f"the Transparency Database refused a batch without naming a statement: "
                                    f"{_message(answer.body)}")
            summary.remaining -= len(drop & set(puids))
            batch = [s for s in batch if s["puid"] not in drop]

    def _post(self, batch: list[dict[str, Any]]) -> Any:
        body = json.dumps({"statements": batch}, ensure_ascii=False).encode()
        try:
            return self.http.request("POST", f"{self.base}/api/v1/statements", headers=self.headers, content=body)
        except HttpError as exc:
            raise SubmitStopped(f"{exc}; rerun to resume") from None

    def _exists(self, puid: str) -> bool:
        try:
            answer = self.http.request("GET", f"{self.base}/api/v1/statement/existing-puid/{puid}",
                                       headers=self.headers, follow=False)
        except HttpError as exc:
            raise SubmitStopped(f"{exc}; rerun to resume") from None
        if answer.status in (301, 302, 303, 200):
            return True
        if answer.status == 404:
            return False
        raise SubmitStopped(f"existing-puid answered {answer.status}; rerun to resume")


def _read(path: str) -> Iterator[Any]:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError:
                raise SubmitStopped(f"{path}: line {number} is not JSON (the statements file is damaged)") from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _stored(body: bytes) -> dict[str, str]:
    data = _json(body)
    items = data.get("statements") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return {}
    return {s["puid"]: str(s.get("uuid")) for s in items if isinstance(s, dict) and isinstance(s.get("puid"), str)}


def _errors(body: bytes) -> dict[str, Any]:
    data = _json(body)
    errors = data.get("errors") if isinstance(data, dict) else None
    return errors if isinstance(errors, dict) else {}


def _message(body: bytes) -> str:
    data = _json(body)
    if isinstance(data, dict):
        return str(data.get("message") or data.get("errors") or "")[:300]
    return ""


def read_token(path: str) -> str:
    """The bearer token from a file that only its owner may read (0600)."""
    from hashmatch.errors import ConfigurationError

    try:
        mode = os.stat(path).st_mode
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the token file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigurationError(f"the token file {path} may be read by others (chmod 600 it)")
    if not token or any(c.isspace() for c in token):
        raise ConfigurationError(f"the token file {path} must hold one token")
    return token
