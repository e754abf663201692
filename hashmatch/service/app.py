"""The HTTP interface of `hashmatch serve` (Starlette): routes, authentication, the body
cap, backpressure, per-request audit lines and metrics. The endpoints and their JSON are
fixed in openapi.py, which /openapi.json serves.

Uploads are read (up to the body cap: 413 beyond), queued (at most `max_pending` at once:
503 with Retry-After beyond, so neither memory nor latency grows without bound), hashed
in the isolated workers (a poison upload costs its own typed 422 and a replaced worker)
and matched in this process on the generation current when the request started; the
answer is the row `hashmatch scan` writes for the same file. Precomputed hashes are
matched in the event loop (a lookup is sub-millisecond), video values in a thread.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hashmatch import signals
from hashmatch.accountability.decisions import DECISION_LOG, DecisionLog
from hashmatch.errors import ConfigurationError, HashmatchError, ListFormatError
from hashmatch.scan.scanner import file_row
from hashmatch.service import tokens as token_store
from hashmatch.service.audit import AuditLog, AuditUnavailable
from hashmatch.service.decisions import DecisionEndpoints, RecentEvidence
from hashmatch.service.exchange_loop import ExchangeLoop
from hashmatch.service.live import LiveMatcher
from hashmatch.service.metrics import Metrics
from hashmatch.service.openapi import OPENAPI
from hashmatch.service.rejects import Reject as _Reject
from hashmatch.service.uploads import BodyError, prepare_spool, read_body, read_upload
from hashmatch.store.files import SPOOL

_log = logging.getLogger("hashmatch.service")
#: Largest number of precomputed queries in one /v1/lookup request.
MAX_BATCH = 10_000
INLINE_LOOKUPS = 32  # a lookup batch larger than this is matched in a worker thread


@dataclass
class ServiceOptions:
    max_body: int = 256 << 20  # bytes of one upload (413 beyond)
    max_pending: int = 8  # uploads waiting for or in a worker (503 beyond), admitted before their body is read
    in_memory: int = 1 << 20  # bytes of one upload held in memory; the rest is spooled (uploads.py)
    spool_dir: str | None = None  # default: STORE/.hashmatch-spool
    max_json: int = 16 << 20  # bytes of one JSON body (lookups, admin changes)
    max_json_inflight: int = 16  # JSON bodies being read or answered at once (503 beyond)
    body_timeout: float = 120.0  # seconds to receive a body (408 beyond)
    fetch_every: float = 0.0  # seconds between fetches of the store's exchange sources (0: never)
    audit_log: str | None = None  # default: STORE/audit.jsonl
    decision_log: str | None = None  # default: STORE/decisions.jsonl
    evidence_ttl: float = 3600.0  # seconds a matched answer's evidence is kept for POST /v1/decisions
    evidence_max: int = 100_000  # matched answers kept at most (the oldest go first)
    # A TokenFile (re-read when it changes), a fixed list, or None: no authentication (loopback only).
    tokens: token_store.TokenFile | list[token_store.Token] | None = None


class _Service:
    """One running service: the live matcher, its options, metrics, audit log and upload
    queue, and a method per endpoint (handler(request, matcher, context) -> Response, the
    matcher being the generation current when the request started)."""

    def __init__(self, live: LiveMatcher, options: ServiceOptions):
        self.live, self.options = live, options
        self.spool = prepare_spool(options.spool_dir or os.path.join(live.store_path, SPOOL))
        self.json_inflight = 0
        self.metrics = metrics = Metrics()
        previous = live.on_swap

        def swapped(matcher: Any) -> None:
            metrics.store_loaded(matcher)
            if live.swaps:
                metrics.swaps.inc()
            if previous is not None:
                previous(matcher)

        live.on_swap = swapped
        if live.current is not None:
            metrics.store_loaded(live.current)
        self.pending = 0  # uploads waiting for or in a worker
        self.limiter = anyio.CapacityLimiter(max(1, options.max_pending))
        self.audit_log = AuditLog(options.audit_log or os.path.join(live.store_path, "audit.jsonl"))
        metrics.bind(lambda: float(live.isolated.replaced) if live.isolated is not None else 0.0, self.audit_log)
        self.exchanges = ExchangeLoop(live, metrics, options.fetch_every) if options.fetch_every > 0 else None
        self.recent = RecentEvidence(options.evidence_ttl, options.evidence_max)
        self.decisions = DecisionEndpoints(
            self, DecisionLog(options.decision_log or os.path.join(live.store_path, DECISION_LOG)), self.recent)

    def endpoint(self, name: str, scope: str | None, handler: Callable[[Request, Any, dict], Awaitable[Response]]):
        async def run(request: Request) -> Response:
            started = time.perf_counter()
            request_id = uuid.uuid4().hex
            context: dict[str, Any] = {"request_id": request_id, "token": None}
            outcome = "error"
            try:
                tokens = self.options.tokens
                if scope is not None and tokens is not None:
                    if isinstance(tokens, token_store.TokenFile):
                        tokens = tokens.current()
                    token = token_store.check(tokens, request.headers.get("authorization"))
                    if token is None:
                        raise _Reject(401, "unauthorized", "a valid bearer token is required",
                                      {"WWW-Authenticate": "Bearer"})
                    if scope not in token.scopes:
                        raise _Reject(403, "forbidden", f"this token lacks the {scope!r} scope")
                    context["token"], context["scopes"] = token.name, token.scopes
                response = await handler(request, self.live.current, context)
                outcome = context.get("outcome", "ok")
            except (_Reject, BodyError) as exc:
                outcome = exc.code
                response = _error(exc.status, exc.code, str(exc), request_id, getattr(exc, "headers", None))
            except Exception as exc:  # noqa: BLE001 - still a JSON answer, counted; the type only in the log
                _log.error("internal error in %s: %s", name, type(exc).__name__)
                _log.debug("internal error in %s", name, exc_info=True)  # the detail only when debugging
                outcome = "internal"
                response = _error(500, "internal", "internal error", request_id)
            response.headers["X-Request-Id"] = request_id
            self.metrics.requests.labels(name, outcome).inc()
            self.metrics.latency.labels(name, outcome).observe(time.perf_counter() - started)
            return response
        return run

    async def json(self, request: Request, cap: int | None = None, empty: Any = None) -> Any:
        """The JSON body (`empty` for none, where the endpoint allows it). At most
        max_json_inflight of them are read at once (503 beyond), each under its cap, so
        their memory is bounded too."""
        if self.json_inflight >= self.options.max_json_inflight:
            raise _Reject(503, "busy", "too many requests are being read", {"Retry-After": "1"})
        self.json_inflight += 1
        try:
            body = await read_body(request, cap or self.options.max_json, self.spool, cap or self.options.max_json,
                                   self.options.body_timeout)
        finally:
            self.json_inflight -= 1
        data = body.source()
        body.close()
        if not data and empty is not None:
            return empty
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            raise _Reject(400, "bad_request", "the body is not JSON") from None

    def require_ready(self, matcher: Any) -> Any:
        """The matcher, if the service can decide and record decisions now; else 503
        (the store still loading, or the audit log unwritable: it fails closed)."""
        if matcher is None or self.live.isolated is None:
            raise _Reject(503, "not_ready", "the store is still loading", {"Retry-After": "1"})
        if not self.audit_log.healthy:
            raise _Reject(503, "audit_unavailable", "decisions cannot be recorded now", {"Retry-After": "5"})
        return matcher

    def audit(self, context: dict, endpoint_name: str, matcher: Any, status: str, matches: list[dict]) -> None:
        """One audit line per decision; 503 when it cannot be queued (the log fails closed)."""
        lists = sorted({(m["list_name"], m["list_version"]) for m in matches})
        try:
            self.audit_log.append({
                "event": "service_match", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "request_id": context["request_id"], "token": context["token"], "endpoint": endpoint_name,
                "status": status, "matches": len(matches), "store_generation": matcher.store.generation,
                "lists": [{"name": n, "version": v} for n, v in lists]})
        except AuditUnavailable:
            raise _Reject(503, "audit_unavailable", "decisions cannot be recorded now", {"Retry-After": "5"}) from None
        for m in matches:
            self.metrics.matches.labels(m["list_name"], m.get("category") or "").inc()

    def admin_audit(self, context: dict, action: str, what: dict[str, Any], generation: int) -> None:
        """Who changed the lists through the service (the token's name), and what."""
        with contextlib.suppress(AuditUnavailable):  # the change is committed: the store's own audit has it
            self.audit_log.append({"event": "service_admin", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "request_id": context["request_id"], "token": context["token"], "action": action,
                                   **what, "store_generation": generation})

    def decision_audit(self, context: dict, action: str, puid: str) -> None:
        """A decision or review recorded through the service: by which token."""
        with contextlib.suppress(AuditUnavailable):  # the decision log itself holds it
            self.audit_log.append({"event": "service_decision", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                    time.gmtime()),
                                   "request_id": context["request_id"], "token": context["token"], "action": action,
                                   "puid": puid})

    # -- match an upload -------------------------------------------------------------------------
    async def match(self, request: Request, matcher: Any, context: dict) -> Response:
        matcher = self.require_ready(matcher)
        # Admission before a byte of the body is read: a full queue costs the client a 503,
        # not the server the memory of its body.
        if self.pending >= self.options.max_pending:
            raise _Reject(503, "busy", "every hashing worker is busy and the queue is full", {"Retry-After": "1"})
        self.pending += 1
        self.metrics.queue_depth.set(self.pending)
        try:
            body, filename = await read_upload(request, self.options.max_body, self.spool, self.options.in_memory,
                                               self.options.body_timeout)
            try:
                row = await anyio.to_thread.run_sync(_hash_and_match, self.live, matcher, body.source(), filename,
                                                     limiter=self.limiter)
            finally:
                body.close()
        finally:
            self.pending -= 1
            self.metrics.queue_depth.set(self.pending)
        row["request_id"] = context["request_id"]
        # An upload that did not decode is a typed 4xx, unless its exact hashes matched: a
        # match is never hidden behind an error status.
        problem = row.get("error") or (row.get("decode_error") if row["status"] != "match" else None)
        if problem is not None:
            context["outcome"] = problem["code"]
            if row["status"] != "error":
                self.audit(context, "match", matcher, row["status"], row["matches"])
                self.recent.keep(context["request_id"], [row])
            return JSONResponse(row, 413 if problem["code"] == "too_large" else 422)
        context["outcome"] = row["status"]
        self.audit(context, "match", matcher, row["status"], row["matches"])
        self.recent.keep(context["request_id"], [row])
        return JSONResponse(row)

    # -- match precomputed hashes ----------------------------------------------------------------
    async def lookup(self, request: Request, matcher: Any, context: dict) -> Response:
        matcher = self.require_ready(matcher)
        payload = await self.json(request)
        batch = isinstance(payload, list)
        queries = payload if batch else [payload]
        if not queries or len(queries) > MAX_BATCH or not all(isinstance(q, dict) for q in queries):
            raise _Reject(400, "bad_request", f'expected {{"hashes": {{ALGORITHM: HASH}}}} or a list of 1 to '
                                              f"{MAX_BATCH} such objects")
        if not batch and not _well_formed(queries[0]):
            raise _Reject(400, "bad_request", _QUERY_SHAPE)
        video = any(signals.find(a) is not None and signals.get(a).variable
                    for q in queries if _well_formed(q) for a in q["hashes"])
        # A large batch or a video is matched off the event loop, on every core; a few
        # hashes inline (a thread hand-off would cost more than the lookup).
        results = await (anyio.to_thread.run_sync(_lookup_all, matcher, queries, None)
                         if video or len(queries) > INLINE_LOOKUPS else _immediate(_lookup_all(matcher, queries)))
        matched = [m for r in results for m in r.get("matches", [])]
        if not batch and "error" in results[0]:  # a single query that could not be matched: a 400, audited as such
            context["outcome"] = "bad_request"
            self.audit(context, "lookup", matcher, "error", [])
            raise _Reject(400, "bad_request", results[0]["error"]["message"])
        status = "match" if matched else "no_match"
        context["outcome"] = status
        self.audit(context, "lookup", matcher, status, matched)
        self.recent.keep(context["request_id"], results)
        body = {"results": results} if batch else results[0]
        return JSONResponse({**body, "request_id": context["request_id"]})

    # -- the store -------------------------------------------------------------------------------
    async def lists(self, request: Request, matcher: Any, context: dict) -> Response:
        matcher = self.require_ready(matcher)
        store = matcher.store
        return JSONResponse({"generation": store.generation, "pdq_mode": store.pdq_mode, "lists": [
            {"name": i.name, "version": i.version, "entries": i.entries, "disabled": i.disabled,
             "imported_at": i.imported_at, "source_format": i.source_format} for i in store.lists()]})

    def set_disabled(self, disabled: bool):
        async def change(request: Request, matcher: Any, context: dict) -> Response:
            matcher = self.require_ready(matcher)
            text = request.path_params["entry"]
            # ASCII digits only (int() also takes "1_0" and other scripts' digits), in SQLite's range.
            if not _ENTRY_ID.fullmatch(text) or not 0 < int(text) < 2**63:
                raise _Reject(400, "bad_request", "an entry id is a positive integer in ASCII digits")
            entry = int(text)
            payload = await self.json(request, 1 << 16, empty={})
            reason = payload.get("reason") if isinstance(payload, dict) else None
            if not isinstance(payload, dict) or not (reason is None or (isinstance(reason, str) and
                                                                         len(reason) <= MAX_REASON)):
                raise _Reject(400, "bad_request", f'expected {{"reason": TEXT}} (at most {MAX_REASON} characters)')
            generation = await self.change_entries(context, matcher, [entry], disabled, reason or "via the service")
            return JSONResponse({"entry": entry, "disabled": disabled, "generation": generation})
        return change

    async def change_entries(self, context: dict, matcher: Any, entries: list[int], disabled: bool,
                             reason: str) -> int:
        """Disable or enable entries (a new generation, audited with the token's name)."""
        try:
            store = await anyio.to_thread.run_sync(
                lambda: matcher.store.set_disabled(entries, disabled, f"{reason} (token {context['token']})"))
        except HashmatchError as exc:
            raise _Reject(404 if "no entries" in str(exc) else 409, exc.code, str(exc)) from None
        await anyio.to_thread.run_sync(self.live.refresh)
        what = {"entry": entries[0]} if len(entries) == 1 else {"entries": entries}
        self.admin_audit(context, "enable" if not disabled else "disable", what, store.generation)
        return store.generation

    async def disable_entries(self, context: dict, entries: list[int], reason: str) -> int:
        return await self.change_entries(context, self.require_ready(self.live.current), entries, True, reason)

    async def import_list(self, request: Request, matcher: Any, context: dict) -> Response:
        self.require_ready(matcher)
        name = request.path_params["name"]
        if not _LIST_NAME.fullmatch(name):
            raise _Reject(400, "bad_request", "a list name is 1 to 128 of A-Z a-z 0-9 . _ - (starting with a letter "
                                              "or digit)")
        fmt, version = request.query_params.get("format"), request.query_params.get("version")
        # The list goes to a spool file (in_memory=0): a list may be hundreds of MB.
        body, _ = await read_upload(request, self.options.max_body, self.spool, 0, self.options.body_timeout)

        def run() -> dict[str, Any]:
            from hashmatch.store.list_files import import_list_file
            from hashmatch.store.store import Store

            path = body.source()
            assert isinstance(path, str)
            store, summary, _, got_version = import_list_file(Store.open(self.live.store_path), path, name=name,
                                                              version=version, format=fmt)
            self.live.refresh()
            return {"list": name, "version": got_version, "entries": len(summary), "generation": store.generation}
        try:
            answer = await anyio.to_thread.run_sync(run)
            self.admin_audit(context, "import", {"list": name, "version": answer["version"],
                                                 "entries": answer["entries"]}, answer["generation"])
            return JSONResponse(answer)
        except (ListFormatError, ConfigurationError, HashmatchError) as exc:
            raise _Reject(400, getattr(exc, "code", "bad_request"), str(exc)) from None
        finally:
            body.close()

    # -- operations ------------------------------------------------------------------------------
    async def exchanges_status(self, request: Request, matcher: Any, context: dict) -> Response:
        """Each exchange source: its type and list, the last attempt and success, failures in
        a row and the last error, and what the last fetch brought (never a secret)."""
        matcher = self.require_ready(matcher)
        status = self.exchanges.status if self.exchanges is not None else {}
        return JSONResponse({"fetch_every": self.options.fetch_every, "sources": [
            {"name": name, "type": spec.get("type"), "list": spec.get("list"), "last_fetch": spec.get("last_fetch"),
             **{k: v for k, v in status.get(name, {}).items() if k != "list"}}
            for name, spec in sorted(matcher.store.sources.items())]})

    async def healthz(self, request: Request, matcher: Any, context: dict) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(self, request: Request, matcher: Any, context: dict) -> Response:
        if matcher is None or self.live.isolated is None:
            context["outcome"] = "not_ready"
            return JSONResponse({"status": "loading"}, 503)  # why is in the server's log, not for anyone
        if not self.audit_log.healthy:
            context["outcome"] = "audit_unavailable"
            return JSONResponse({"status": "audit_unavailable"}, 503)
        matcher.match_record({}, algorithms=[])  # the matcher answers (an empty query)
        return JSONResponse({"status": "ready", "generation": matcher.store.generation})

    async def metrics_text(self, request: Request, matcher: Any, context: dict) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request, matcher: Any, context: dict) -> Response:
        return JSONResponse(OPENAPI)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.live.start()
        if self.exchanges is not None:
            self.exchanges.start()
        try:
            yield
        finally:
            if self.exchanges is not None:
                await anyio.to_thread.run_sync(self.exchanges.stop)
            await anyio.to_thread.run_sync(self.live.stop)
            await anyio.to_thread.run_sync(self.audit_log.close)

    def app(self) -> Starlette:
        endpoint = self.endpoint
        routes = [
            Route("/healthz", endpoint("healthz", None, self.healthz), methods=["GET"]),
            Route("/readyz", endpoint("readyz", None, self.readyz), methods=["GET"]),
            Route("/metrics", endpoint("metrics", "metrics", self.metrics_text), methods=["GET"]),
            Route("/openapi.json", endpoint("openapi", None, self.openapi), methods=["GET"]),
            Route("/v1/match", endpoint("match", "match", self.match), methods=["POST"]),
            Route("/v1/lookup", endpoint("lookup", "match", self.lookup), methods=["POST"]),
            Route("/v1/lists", endpoint("lists", "match", self.lists), methods=["GET"]),
            Route("/v1/lists/{name}", endpoint("import", "admin", self.import_list), methods=["PUT"]),
            Route("/v1/decisions", endpoint("decide", "decide", self.decisions.decide), methods=["POST"]),
            Route("/v1/decisions/{puid}/review", endpoint("review", "decide", self.decisions.review),
                  methods=["POST"]),
            Route("/v1/exchanges", endpoint("exchanges", "admin", self.exchanges_status), methods=["GET"]),
            Route("/v1/entries/{entry}/disable", endpoint("disable", "admin", self.set_disabled(True)),
                  methods=["POST"]),
            Route("/v1/entries/{entry}/enable", endpoint("enable", "admin", self.set_disabled(False)),
                  methods=["POST"]),
        ]
        app = Starlette(routes=routes, lifespan=self.lifespan,
                        exception_handlers={HTTPException: self.router_error})  # 404, 405: the same JSON errors
        app.router.redirect_slashes = False  # no 307 to another path: a wrong path is a 404
        app.state.live, app.state.metrics = self.live, self.metrics
        return app

    async def router_error(self, request: Request, exc: Exception) -> Response:
        """The router's own answers (no such path, a method the path does not take), in the
        service's error shape, and counted like every other answer."""
        status = getattr(exc, "status_code", 500)
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "bad_request")
        self.metrics.requests.labels("none", code).inc()
        return _error(status, code, str(getattr(exc, "detail", "")) or code, uuid.uuid4().hex,
                      getattr(exc, "headers", None))


def create_app(live: LiveMatcher, options: ServiceOptions | None = None) -> Starlette:
    """The ASGI app of `hashmatch serve` over a live matcher (started by the app's lifespan)."""
    return _Service(live, options or ServiceOptions()).app()


async def _immediate(value: Any) -> Any:
    return value


def _hash_and_match(live: LiveMatcher, matcher: Any, body: bytes | str, filename: str) -> dict[str, Any]:
    assert live.isolated is not None
    record = live.isolated.run(body)
    return file_row(filename, record, matcher)


_QUERY_SHAPE = 'expected "hashes": {ALGORITHM: HASH} with at least one algorithm, each hash a string'
_ENTRY_ID = re.compile(r"[0-9]{1,19}")
_LIST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_REASON = 500


def _well_formed(query: Any) -> bool:
    hashes = query.get("hashes") if isinstance(query, dict) else None
    return isinstance(hashes, dict) and bool(hashes) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in hashes.items())


def _lookup_all(matcher: Any, queries: list[dict], threads: int | None = 1) -> list[dict[str, Any]]:
    """Each query's answer (or its error), matched as one batch (Matcher.match_records_many)."""
    results: list[dict[str, Any] | None] = []
    items = []
    for query in queries:
        if not _well_formed(query):
            results.append({"error": {"code": "bad_request", "message": _QUERY_SHAPE}})
            continue
        hashes = query["hashes"]
        fields = {k: v for k, v in query.items() if k != "hashes"}
        items.append(({**fields, **hashes}, list(hashes)))  # as match_hashes(hashes, **fields)
        results.append(None)
    answers = matcher.match_records_many(items, threads=threads)
    for i, result in enumerate(results):
        if result is None:
            answer = next(answers)
            results[i] = ({"error": {"code": "bad_request", "message": str(answer)}}
                          if isinstance(answer, ConfigurationError) else answer.to_dict())
    return results  # type: ignore[return-value]


def _error(status: int, code: str, message: str, request_id: str, headers: dict[str, str] | None = None) -> Response:
    """The service's one error shape (the OpenAPI description's Error)."""
    return JSONResponse({"error": {"code": code, "message": message}, "request_id": request_id}, status,
                        headers=headers)


__all__ = ["ServiceOptions", "create_app"]
