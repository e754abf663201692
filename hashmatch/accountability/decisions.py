"""The decision log: what a platform did with a match, tied to the evidence hashmatch
produced (STORE/decisions.jsonl by default; append-only JSON lines, 0600, each line
fsync'd, O_APPEND, under an exclusive flock so that processes sharing the file never
interleave a line or reuse a puid).

A match is a candidate; the platform decides. `DecisionLog.record(result, puid=...,
action="removed", automated="fully")` writes a `decision` line; `DecisionLog.review(puid,
"confirmed"|"false_match")` a later `review` line. A decision keeps the puid (the
platform's id of the decision, which the Transparency Database needs), times, actions,
automation, review, content type, and per match the list (name, version, category),
the entry ids, algorithm, distance and threshold. It never keeps a path, a file name, a
hash value, a token or a user id: the log feeds statements of reasons, which must carry
no personal data.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from hashmatch import signals
from hashmatch.errors import HashmatchError

#: The file a store keeps its decisions in (STORE/decisions.jsonl).
DECISION_LOG = "decisions.jsonl"
PUID = re.compile(r"[A-Za-z0-9_-]{1,500}")  # the Transparency Database's puid rule

#: The actions a decision may record, by the kind of restriction the DSA counts them as.
VISIBILITY_ACTIONS = {"removed": "DECISION_VISIBILITY_CONTENT_REMOVED",
                      "disabled": "DECISION_VISIBILITY_CONTENT_DISABLED",
                      "demoted": "DECISION_VISIBILITY_CONTENT_DEMOTED",
                      "age_restricted": "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
                      "interaction_restricted": "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED",
                      "labelled": "DECISION_VISIBILITY_CONTENT_LABELLED"}
MONETARY_ACTIONS = {"monetary_suspended": "DECISION_MONETARY_SUSPENSION",
                    "monetary_terminated": "DECISION_MONETARY_TERMINATION"}
PROVISION_ACTIONS = {"service_partially_suspended": "DECISION_PROVISION_PARTIAL_SUSPENSION",
                     "service_suspended": "DECISION_PROVISION_TOTAL_SUSPENSION",
                     "service_partially_terminated": "DECISION_PROVISION_PARTIAL_TERMINATION",
                     "service_terminated": "DECISION_PROVISION_TOTAL_TERMINATION"}
ACCOUNT_ACTIONS = {"account_suspended": "DECISION_ACCOUNT_SUSPENDED",
                   "account_terminated": "DECISION_ACCOUNT_TERMINATED"}
ACTIONS = {**VISIBILITY_ACTIONS, **MONETARY_ACTIONS, **PROVISION_ACTIONS, **ACCOUNT_ACTIONS}
AUTOMATION = ("fully", "partially", "not")
REVIEWS = ("confirmed", "false_match")
CONTENT_TYPES = ("image", "video", "other")
#: What a decision keeps of each match: evidence for a reviewer, never a hash value.
MATCH_FIELDS = ("list_name", "list_version", "category", "entry_id", "store_id", "algorithm", "distance",
                "threshold", "variant")


class DecisionError(HashmatchError):
    """A decision that cannot be recorded (a bad field, a reused puid, no match to decide on)."""

    code = "bad_decision"


class UnknownDecision(DecisionError):
    """A review of a puid the log has no decision for."""

    code = "unknown_decision"


@dataclass(frozen=True)
class Decision:
    """One recorded decision, with the review recorded after it (if any)."""

    puid: str
    decided_at: str  # ISO 8601 UTC, seconds
    actions: tuple[str, ...]
    automated: str
    content_type: str
    matches: tuple[dict[str, Any], ...]
    content_date: str | None = None  # YYYY-MM-DD: when the content was posted
    review: str | None = None
    reviewed_at: str | None = None
    after_complaint: bool = False  # the review followed the user's complaint
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def decided_date(self) -> str:
        return self.decided_at[:10]

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"event": "decision", "puid": self.puid, "decided_at": self.decided_at,
                                  "actions": list(self.actions), "automated": self.automated,
                                  "content_type": self.content_type, "matches": [dict(m) for m in self.matches]}
        if self.content_date is not None:
            record["content_date"] = self.content_date
        if self.review is not None:
            record["review"] = self.review
        record.update(self.extra)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Decision":
        known = {"event", "puid", "decided_at", "actions", "automated", "content_type", "matches", "content_date",
                 "review"}
        return cls(puid=record["puid"], decided_at=record["decided_at"], actions=tuple(record["actions"]),
                   automated=record["automated"], content_type=record["content_type"],
                   matches=tuple(record["matches"]), content_date=record.get("content_date"),
                   review=record.get("review"), extra={k: v for k, v in record.items() if k not in known})


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(value: str | dt.datetime | dt.date | None, name: str) -> str | None:
    """A time as ISO 8601 UTC to the second (a naive datetime is taken as UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise DecisionError(f"{name} is not an ISO 8601 time: {value!r}") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%dT00:00:00Z")
    raise DecisionError(f"{name} must be an ISO 8601 string, a datetime or a date")


def _date(value: str | dt.date | None, name: str) -> str | None:
    if value is None:
        return None
    stamp = _timestamp(value, name)
    assert stamp is not None
    return stamp[:10]


def content_type_of(row: Mapping[str, Any]) -> str:
    """image, video or other, from a match row: a video if a video signal matched or was
    computed, an image if the file decoded as one, else other (a file matched by its
    exact hash only)."""
    algorithms = {m.get("algorithm") for m in row.get("matches") or ()} | set(row.get("hashes") or {})
    for name in algorithms:
        kind = signals.find(name) if isinstance(name, str) else None
        if kind is not None and kind.variable:
            return "video"
    if row.get("image") is not None:
        return "image"
    if any(isinstance(a, str) and (s := signals.find(a)) is not None and not s.exact for a in algorithms):
        return "image"
    return "other"


def evidence_of(result: Any) -> dict[str, Any]:
    """What a decision keeps of a match result (MatchResult, a scan report row or a
    service answer): the content type and each match's list and entry, algorithm and
    distance. Raises DecisionError when the result has no match."""
    row = result.to_dict() if hasattr(result, "to_dict") else result
    if not isinstance(row, Mapping):
        raise DecisionError("a decision needs a match result, a scan report row or a service answer")
    matches = row.get("matches") or []
    if not matches:
        raise DecisionError("the result has no match to decide on")
    if not all(isinstance(m, Mapping) and isinstance(m.get("list_name"), str) for m in matches):
        raise DecisionError("the result's matches are malformed")
    kept = [{k: m.get(k) for k in MATCH_FIELDS if m.get(k) is not None} for m in matches]
    return {"content_type": content_type_of(row), "matches": kept}


def make_decision(result: Any, *, puid: str, action: str | Iterable[str], automated: str,
                  review: str | None = None, content_date: str | dt.date | None = None,
                  decided_at: str | dt.datetime | None = None, content_type: str | None = None) -> Decision:
    """A checked Decision from a match result and what the platform did (DecisionError if
    anything is out of range)."""
    if not isinstance(puid, str) or not PUID.fullmatch(puid):
        raise DecisionError("puid must be 1 to 500 characters of A-Z a-z 0-9 - _")
    actions = (action,) if isinstance(action, str) else tuple(action)
    if not actions or any(a not in ACTIONS for a in actions):
        raise DecisionError(f"action must be one or more of {', '.join(ACTIONS)}")
    if automated not in AUTOMATION:
        raise DecisionError(f"automated must be one of {', '.join(AUTOMATION)}")
    if review is not None and review not in REVIEWS:
        raise DecisionError(f"review must be one of {', '.join(REVIEWS)}")
    evidence = evidence_of(result)
    if content_type is not None and content_type not in CONTENT_TYPES:
        raise DecisionError(f"content_type must be one of {', '.join(CONTENT_TYPES)}")
    decided = _timestamp(decided_at, "decided_at") or now_utc()
    return Decision(puid=puid, decided_at=decided, actions=tuple(dict.fromkeys(actions)), automated=automated,
                    content_type=content_type or evidence["content_type"], matches=tuple(evidence["matches"]),
                    content_date=_date(content_date, "content_date"), review=review)


class DecisionLog:
    """An append-only decision log. Thread-safe, and safe between processes: each append
    holds an exclusive flock on the file, first reads what others appended (so no puid
    is ever recorded twice), then writes and fsyncs whole lines."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._puids: dict[str, int] = {}  # puid -> offset of its decision line
        self._reviewed: set[str] = set()  # puids with a review
        self._read_to = 0  # bytes of the file already folded into _puids

    # -- writing ---------------------------------------------------------------------------------
    def record(self, result: Any, **fields: Any) -> Decision:
        """Record one decision on `result` (see make_decision for the fields)."""
        decision = make_decision(result, **fields)
        self.append([decision])
        return decision

    def append(self, decisions: Iterable[Decision]) -> int:
        """Record decisions (one fsync for all of them); DecisionError, and nothing
        written, if any puid is already in the log or repeated."""
        batch = list(decisions)
        lines = [json.dumps(d.to_record(), sort_keys=True) for d in batch]
        with self._locked() as fd:
            seen: set[str] = set()
            for d in batch:
                if d.puid in self._puids or d.puid in seen:
                    raise DecisionError(f"puid {d.puid!r} is already recorded: a puid is never reused")
                seen.add(d.puid)
            offset = self._write(fd, lines)
            for d, line in zip(batch, lines):
                self._puids[d.puid] = offset
                offset += len(line.encode()) + 1
                if d.review is not None:
                    self._reviewed.add(d.puid)
        return len(batch)

    def review(self, puid: str, review: str, *, reviewed_at: str | dt.datetime | None = None,
               after_complaint: bool = False) -> dict[str, Any]:
        """Record the human review of an earlier decision: confirmed, or false_match (the
        decision is reversed: a reinstatement). One review per decision."""
        if review not in REVIEWS:
            raise DecisionError(f"review must be one of {', '.join(REVIEWS)}")
        line = {"event": "review", "puid": puid, "review": review,
                "reviewed_at": _timestamp(reviewed_at, "reviewed_at") or now_utc(),
                "after_complaint": bool(after_complaint)}
        with self._locked() as fd:
            if puid not in self._puids:
                raise UnknownDecision(f"no decision with puid {puid!r}")
            if puid in self._reviewed:
                raise DecisionError(f"the decision {puid!r} has already been reviewed")
            self._write(fd, [json.dumps(line, sort_keys=True)])
            self._reviewed.add(puid)
        return line

    def known(self, puid: str) -> bool:
        return bool(self.recorded([puid]))

    def recorded(self, puids: Iterable[str]) -> set[str]:
        """Which of `puids` the log already holds (one look at the file for all of them)."""
        with self._locked():
            return {p for p in puids if p in self._puids}

    def get(self, puid: str) -> Decision | None:
        """The decision recorded under `puid` (without its review), or None."""
        with self._locked() as fd:
            offset = self._puids.get(puid)
            if offset is None:
                return None
            with open(os.dup(fd), "rb") as handle:
                handle.seek(offset)
                return Decision.from_record(json.loads(handle.readline()))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        """The log's descriptor, held under this object's lock and the file's flock, with
        every line others appended folded in."""
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.fchmod(fd, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._catch_up(fd)
                yield fd
            finally:
                os.close(fd)  # releases the flock

    def _catch_up(self, fd: int) -> None:
        """Fold lines appended since we last looked (by us or another process)."""
        size = os.fstat(fd).st_size
        if size < self._read_to:  # replaced or truncated underneath: start over
            self._puids, self._reviewed, self._read_to = {}, set(), 0
        if size == self._read_to:
            return
        with open(os.dup(fd), "rb") as handle:
            handle.seek(self._read_to)
            offset = self._read_to
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # a line still being written, or cut by a crash
                self._fold(line, offset)
                offset += len(line)
        self._read_to = offset

    def _fold(self, line: bytes, offset: int) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            return  # a line cut by a crash: skipped, counted by read_decisions
        if not isinstance(record, dict) or not isinstance(record.get("puid"), str):
            return
        puid = record["puid"]
        if record.get("event") == "decision" and puid not in self._puids:
            self._puids[puid] = offset
            if record.get("review") is not None:
                self._reviewed.add(puid)
        elif record.get("event") == "review" and puid in self._puids:
            self._reviewed.add(puid)

    def _write(self, fd: int, lines: list[str]) -> int:
        """Append whole lines; the offset of the first."""
        size = os.fstat(fd).st_size
        prefix = b""
        if size:
            with open(os.dup(fd), "rb") as handle:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    prefix = b"\n"  # a line cut by a crash stays cut, not glued to ours
        payload = prefix + "".join(line + "\n" for line in lines).encode()
        written = 0
        while written < len(payload):
            written += os.write(fd, payload[written:])
        os.fsync(fd)
        self._read_to = os.fstat(fd).st_size
        return size + len(prefix)

    # -- reading ---------------------------------------------------------------------------------
    def decisions(self, since: str | None = None, until: str | None = None) -> Iterator[Decision]:
        """Every decision decided in [since, until] (dates, inclusive), with its review."""
        yield from read_decisions(self.path, since, until)


@dataclass
class LogStats:
    decisions: int = 0
    reviews: int = 0
    damaged: int = 0  # lines that did not parse (a crash mid-write)
    orphan_reviews: int = 0  # reviews of a puid the log has no decision for


def read_decisions(path: str | os.PathLike, since: str | None = None, until: str | None = None,
                   stats: LogStats | None = None) -> Iterator[Decision]:
    """The decisions of a log decided within [since, until] (YYYY-MM-DD, inclusive), each
    with its review folded in. Two streaming passes: reviews first (small), then the
    decisions, so a log of millions of decisions is never held in memory."""
    stats = stats if stats is not None else LogStats()
    reviews: dict[str, tuple[Any, Any, bool]] = {}
    reviewed: set[str] = set()  # reviews whose decision was found (as small as the reviews)
    for record in _records(path, stats):
        if record.get("event") == "review":
            reviews.setdefault(record["puid"], (record.get("review"), record.get("reviewed_at"),
                                                bool(record.get("after_complaint"))))
    for record in _records(path, None):
        if record.get("event") != "decision":
            continue
        decision = Decision.from_record(record)
        if decision.puid in reviews:
            reviewed.add(decision.puid)
        stats.decisions += 1
        day = decision.decided_date
        if (since is not None and day < since) or (until is not None and day > until):
            continue
        if decision.puid in reviews and decision.review is None:
            review, at, complaint = reviews[decision.puid]
            decision = Decision(**{**decision.__dict__, "review": review, "reviewed_at": at,
                                   "after_complaint": complaint})
        yield decision
    stats.reviews = len(reviews)
    stats.orphan_reviews = len(reviews) - len(reviewed)


def _records(path: str | os.PathLike, stats: LogStats | None) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                if stats is not None:
                    stats.damaged += 1
                continue
            if isinstance(record, dict) and isinstance(record.get("puid"), str):
                yield record
