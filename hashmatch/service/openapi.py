"""The OpenAPI 3.1 description of the service's interface (served at /openapi.json). The
match and lookup interfaces are fixed by issue 14; clients may rely on them."""
from __future__ import annotations

from typing import Any

_ERROR = {"type": "object", "required": ["error", "request_id"], "properties": {
    "error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}}},
    "request_id": {"type": "string"}}}
_ROW = {"type": "object", "description": "The row `hashmatch scan` writes for the file: path, size, sha256, "
        "status (match, no_match, low_quality, error), hashes, the fields signal types add, image/video facts, "
        "decode_error, matches (with their evidence), or error; plus request_id.",
        "properties": {"status": {"enum": ["match", "no_match", "low_quality", "error"]},
                       "matches": {"type": "array", "items": {"type": "object"}},
                       "hashes": {"type": "object"}, "request_id": {"type": "string"}}}
_QUERY = {"type": "object", "required": ["hashes"], "properties": {
    "hashes": {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1,
               "description": "ALGORITHM -> hash, e.g. {\"pdq\": \"<64 hex>\"}; vpdq: its signal string"},
}, "additionalProperties": True, "description": "Other keys are the fields `hashmatch hash` records carry "
                                                "(pdq_quality, pdq_dihedral...)"}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_ACTIONS = ["removed", "disabled", "demoted", "age_restricted", "interaction_restricted", "labelled",
            "monetary_suspended", "monetary_terminated", "service_partially_suspended", "service_suspended",
            "service_partially_terminated", "service_terminated", "account_suspended", "account_terminated"]
_DECISION = {"type": "object", "required": ["puid", "action", "automated"], "additionalProperties": False,
             "properties": {
                 "request_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                 "result": {"type": "integer", "minimum": 0, "description": "the result's index in a batch lookup"},
                 "evidence": {"type": "object", "description": "the row of a match or lookup answer"},
                 "puid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,500}$"},
                 "action": {"oneOf": [{"enum": _ACTIONS}, {"type": "array", "items": {"enum": _ACTIONS},
                                                           "minItems": 1}]},
                 "automated": {"enum": ["fully", "partially", "not"]},
                 "review": {"enum": ["confirmed", "false_match"]},
                 "content_type": {"enum": ["image", "video", "other"]},
                 "content_date": {"type": "string", "format": "date"},
                 "decided_at": {"type": "string", "format": "date-time"}},
             "description": "exactly one of request_id and evidence"}
_REVIEW = {"type": "object", "required": ["review"], "additionalProperties": False, "properties": {
    "review": {"enum": ["confirmed", "false_match"]}, "after_complaint": {"type": "boolean"},
    "disable_entries": {"type": "boolean"}, "reason": {"type": "string", "maxLength": 500}}}


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {str(code): _answer(text, _ERROR) for code, text in (
    (400, "malformed request"), (401, "no or wrong token"), (403, "the token lacks the scope"),
    (408, "the body was not received within --body-timeout"), (413, "body over the cap"),
    (500, "an internal error (counted and logged; the service goes on)"),
    (503, "queue full, store loading, or the audit log unwritable (Retry-After)"))}
#: Answers of the router itself: no such path, or a method the path does not take.
_ROUTER = {"404": _answer("no such path", _ERROR), "405": _answer("method not allowed", _ERROR)}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "hashmatch", "version": "1", "description": "Match uploads and precomputed hashes against "
             "the hash lists of a hashmatch store."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/v1/match": {"post": {
            "summary": "Hash an upload in an isolated worker and match it",
            "security": _BEARER, "x-scope": "match",
            "requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                    "file": {"type": "string", "format": "binary"}}}}}},
            "responses": {"200": _answer("the scan row", _ROW),
                          "422": _answer("the upload could not be hashed: the row with its typed error", _ROW),
                          **_ERRORS}}},
        "/v1/lookup": {"post": {
            "summary": "Match precomputed hashes: one query or a list of up to 10,000",
            "security": _BEARER, "x-scope": "match",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [_QUERY, {"type": "array", "items": _QUERY, "minItems": 1, "maxItems": 10_000}]}}}},
            "responses": {"200": _answer("a MatchResult (or {\"results\": [...]} for a list)", {"type": "object"}),
                          **_ERRORS}}},
        "/v1/lists": {"get": {
            "summary": "The store's lists with versions and counts", "security": _BEARER, "x-scope": "match",
            "responses": {"200": _answer("generation, pdq_mode, lists", {"type": "object"}), **_ERRORS}}},
        "/v1/lists/{name}": {"put": {
            "summary": "Import (or replace) list NAME from the body, a list file in any format hashmatch reads",
            "security": _BEARER, "x-scope": "admin",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {
                "type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}},
                           {"name": "format", "in": "query", "schema": {"type": "string"}},
                           {"name": "version", "in": "query", "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {
                "type": "string", "format": "binary"}}}},
            "responses": {"200": _answer("list, version, entries, generation", {"type": "object"}),
                          "409": _answer("the store refused the change (damaged, or changed meanwhile)", _ERROR),
                          **_ERRORS}}},
        "/v1/exchanges": {"get": {
            "summary": "The store's exchange sources: last attempt and success, failures in a row, last counts",
            "security": _BEARER, "x-scope": "admin",
            "responses": {"200": _answer("fetch_every and sources", {"type": "object", "required": ["sources"]}),
                          **_ERRORS}}},
        **{f"/v1/entries/{{entry}}/{action}": {"post": {
            "summary": f"{action.capitalize()} one entry (false positives: disabled entries never match)",
            "security": _BEARER, "x-scope": "admin",
            "parameters": [{"name": "entry", "in": "path", "required": True, "schema": {
                "type": "integer", "minimum": 1, "maximum": 2**63 - 1}}],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"reason": {"type": "string", "maxLength": 500}}}}}},
            "responses": {"200": _answer("entry, disabled, generation", {"type": "object"}),
                          "404": _answer("no such entry", _ERROR),
                          "409": _answer("the store refused the change (damaged, or changed meanwhile)", _ERROR),
                          **_ERRORS}}} for action in ("disable", "enable")},
        "/v1/decisions": {"post": {
            "summary": "Record what the platform did with a match: the request_id of an earlier matched answer "
                       "(kept for --evidence-ttl) or the evidence itself, plus puid, action, automation",
            "security": _BEARER, "x-scope": "decide",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _DECISION}}},
            "responses": {"201": _answer("the decision as recorded", {"type": "object", "required": ["decision"]}),
                          "404": _answer("no matched answer with this request_id is kept", _ERROR),
                          "409": _answer("the puid is already recorded (a puid is never reused)", _ERROR),
                          **_ERRORS}}},
        "/v1/decisions/{puid}/review": {"post": {
            "summary": "Record the human review of a decision; a false match may disable the entries (admin too)",
            "security": _BEARER, "x-scope": "decide",
            "parameters": [{"name": "puid", "in": "path", "required": True, "schema": {
                "type": "string", "pattern": "^[A-Za-z0-9_-]{1,500}$"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _REVIEW}}},
            "responses": {"201": _answer("puid, review, reviewed_at (disabled_entries, generation)",
                                         {"type": "object", "required": ["puid", "review"]}),
                          "404": _answer("no decision with this puid", _ERROR),
                          "409": _answer("already reviewed, or the store refused the change", _ERROR),
                          **_ERRORS}}},
        "/healthz": {"get": {"summary": "The process is alive",
                             "responses": {"200": _answer("alive", {"type": "object"})}}},
        "/readyz": {"get": {"summary": "The store is loaded and matching, and the audit log writable",
                            "responses": {"200": _answer("ready", {"type": "object"}),
                                          "503": _answer("loading, or the audit log unwritable", {"type": "object"})}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (they name lists and categories: a metrics token)",
                             "security": _BEARER, "x-scope": "metrics",
                             "responses": {"200": {"description": "Prometheus text format",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}},
                                           **{k: v for k, v in _ERRORS.items() if k in ("401", "403", "500")}}}},
        "/openapi.json": {"get": {"summary": "This description",
                                  "responses": {"200": _answer("OpenAPI 3.1", {"type": "object"})}}},
    },
}

# Every operation may also get the router's own answers (a wrong method, say).
for _operations in OPENAPI["paths"].values():
    for _operation in _operations.values():
        _operation["responses"].update({k: v for k, v in _ROUTER.items() if k not in _operation["responses"]})
