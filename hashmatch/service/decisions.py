"""The service's decision endpoints (scope `decide`): POST /v1/decisions records what the
platform did with an earlier answer's match, POST /v1/decisions/{puid}/review a later
human review (a false match may disable the entries locally, with an `admin` token too).

The evidence of recent answers is kept in memory (RecentEvidence): for each /v1/match or
/v1/lookup answer that matched, per result, the matches' lists, entries, algorithm and
distance and the content type, never a hash value or a file name, for `evidence_ttl`
seconds (default one hour) and at most `evidence_max` answers (the oldest go first), so
a decision may name a `request_id` instead of sending the evidence back.
"""
from __future__ import annotations

import collections
import re
import threading
import time
from typing import Any, Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hashmatch.accountability.decisions import (
    PUID,
    DecisionError,
    DecisionLog,
    UnknownDecision,
    evidence_of,
    make_decision,
)
from hashmatch.service.rejects import Reject

_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
_DECISION_KEYS = {"request_id", "result", "evidence", "puid", "action", "automated", "review", "content_date",
                  "decided_at", "content_type"}
_REVIEW_KEYS = {"review", "after_complaint", "disable_entries", "reason"}
MAX_REASON = 500


class RecentEvidence:
    """request_id -> the evidence of each result that matched, bounded in time and count."""

    def __init__(self, ttl_s: float = 3600.0, max_answers: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.ttl_s, self.max_answers, self.clock = ttl_s, max_answers, clock
        self._kept: collections.OrderedDict[str, tuple[float, list[dict[str, Any] | None]]] = \
            collections.OrderedDict()
        self._lock = threading.Lock()

    def keep(self, request_id: str, rows: list[dict[str, Any]]) -> None:
        """Keep the evidence of an answer's rows (nothing when none matched)."""
        if self.max_answers <= 0 or self.ttl_s <= 0:
            return
        evidence = [evidence_of(r) if r.get("matches") else None for r in rows]
        if not any(evidence):
            return
        with self._lock:
            self._expire()
            self._kept[request_id] = (self.clock(), evidence)
            while len(self._kept) > self.max_answers:
                self._kept.popitem(last=False)

    def get(self, request_id: str) -> list[dict[str, Any] | None] | None:
        with self._lock:
            self._expire()
            kept = self._kept.get(request_id)
            return kept[1] if kept is not None else None

    def __len__(self) -> int:
        return len(self._kept)

    def _expire(self) -> None:
        limit = self.clock() - self.ttl_s
        while self._kept:
            first = next(iter(self._kept.values()))
            if first[0] >= limit:
                break
            self._kept.popitem(last=False)


class DecisionEndpoints:
    """The two endpoints, over the service's decision log and recent evidence. `service`
    is the app's _Service (for its JSON reader and readiness check)."""

    def __init__(self, service: Any, log: DecisionLog, recent: RecentEvidence):
        self.service, self.log, self.recent = service, log, recent

    async def decide(self, request: Request, matcher: Any, context: dict) -> Response:
        payload = await self.service.json(request, 1 << 20)
        if not isinstance(payload, dict) or set(payload) - _DECISION_KEYS:
            raise Reject(400, "bad_request", f"expected an object with {', '.join(sorted(_DECISION_KEYS))}")
        evidence = self._evidence(payload)
        fields = {k: payload[k] for k in ("puid", "action", "automated", "review", "content_date", "decided_at",
                                          "content_type") if payload.get(k) is not None}
        for key in ("puid", "action", "automated"):
            if key not in fields:
                raise Reject(400, "bad_request", f"{key} is required")
        if not all(isinstance(v, str) for k, v in fields.items() if k != "action") or not (
                isinstance(fields["action"], str) or (isinstance(fields["action"], list)
                                                     and all(isinstance(a, str) for a in fields["action"]))):
            raise Reject(400, "bad_request", "decision fields are strings (action: a string or a list of them)")
        try:
            decision = make_decision(evidence, **fields)
        except DecisionError as exc:
            raise Reject(400, "bad_request", str(exc)) from None
        try:
            await anyio.to_thread.run_sync(self.log.append, [decision])
        except DecisionError as exc:
            raise Reject(409, "conflict", str(exc)) from None
        except OSError:
            raise Reject(503, "decision_log_unavailable", "the decision could not be recorded now",
                         {"Retry-After": "5"}) from None
        context["outcome"] = "recorded"
        self.service.decision_audit(context, "decision", decision.puid)
        return JSONResponse({"decision": decision.to_record(), "request_id": context["request_id"]}, 201)

    def _evidence(self, payload: dict[str, Any]) -> dict[str, Any]:
        if ("request_id" in payload) == ("evidence" in payload):
            raise Reject(400, "bad_request", "give either request_id (of an earlier match or lookup answer) or "
                                             "evidence (that answer's row)")
        if "evidence" in payload:
            if not isinstance(payload["evidence"], dict):
                raise Reject(400, "bad_request", "evidence is the row of a match or lookup answer")
            return payload["evidence"]
        request_id, index = payload["request_id"], payload.get("result", 0)
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            raise Reject(400, "bad_request", "request_id is the X-Request-Id of an earlier answer (32 hex digits)")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise Reject(400, "bad_request", "result is the index of a result in a batch lookup (0 or more)")
        kept = self.recent.get(request_id)
        if kept is None:
            raise Reject(404, "unknown_request", "no matched answer with this request_id is kept (unknown, or "
                                                 "older than the evidence time; send the evidence itself)")
        if index >= len(kept) or kept[index] is None:
            raise Reject(400, "bad_request", f"result {index} of that answer has no match to decide on")
        return kept[index]  # type: ignore[return-value]

    async def review(self, request: Request, matcher: Any, context: dict) -> Response:
        puid = request.path_params["puid"]
        if not PUID.fullmatch(puid):
            raise Reject(400, "bad_request", "a puid is 1 to 500 of A-Z a-z 0-9 - _")
        payload = await self.service.json(request, 1 << 16)
        if not isinstance(payload, dict) or set(payload) - _REVIEW_KEYS or payload.get("review") not in (
                "confirmed", "false_match"):
            raise Reject(400, "bad_request", 'expected {"review": "confirmed"|"false_match", "after_complaint": '
                                             'BOOL, "disable_entries": BOOL, "reason": TEXT}')
        complaint, disable = payload.get("after_complaint", False), payload.get("disable_entries", False)
        reason = payload.get("reason")
        if not isinstance(complaint, bool) or not isinstance(disable, bool) or not (
                reason is None or (isinstance(reason, str) and len(reason) <= MAX_REASON)):
            raise Reject(400, "bad_request", f"after_complaint and disable_entries are booleans, reason at most "
                                             f"{MAX_REASON} characters")
        if disable and payload["review"] != "false_match":
            raise Reject(400, "bad_request", "only a false match disables entries")
        # No scopes in the context: --no-auth (loopback only), where every caller is the operator.
        if disable and "admin" not in context.get("scopes", ("admin",)):
            raise Reject(403, "forbidden", "disabling entries needs a token with the 'admin' scope too")
        decision = None
        if disable:  # its matches name the entries to disable (a plain review needs no read)
            decision = await anyio.to_thread.run_sync(self.log.get, puid)
            if decision is None:
                raise Reject(404, "unknown_decision", "no decision with this puid")
            self.service.require_ready(matcher)
        try:
            line = await anyio.to_thread.run_sync(
                lambda: self.log.review(puid, payload["review"], after_complaint=complaint))
        except UnknownDecision:
            raise Reject(404, "unknown_decision", "no decision with this puid") from None
        except DecisionError as exc:
            raise Reject(409, "conflict", str(exc)) from None
        except OSError:
            raise Reject(503, "decision_log_unavailable", "the review could not be recorded now",
                         {"Retry-After": "5"}) from None
        answer: dict[str, Any] = {"puid": puid, "review": line["review"], "reviewed_at": line["reviewed_at"]}
        if decision is not None:
            entries = sorted({m["store_id"] for m in decision.matches if isinstance(m.get("store_id"), int)})
            answer["disabled_entries"] = entries
            answer["generation"] = await self.service.disable_entries(
                context, entries, f"{reason or 'false match'} (decision {puid})")
        context["outcome"] = "recorded"
        self.service.decision_audit(context, "review", puid)
        return JSONResponse({**answer, "request_id": context["request_id"]}, 201)
