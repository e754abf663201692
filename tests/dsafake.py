"""A loopback fake of the EU DSA Transparency Database API (statements of reasons), built to
../shared/DSA.md ("Transparency Database API") and the enum values of
hashmatch/accountability/enums.py. It validates each statement as that page says, keeps the
stored statements by puid, answers 201/401/422/302/404 as the real API would, and takes a
script of misbehaviours (429, 5xx, dropped connections, lost answers, delays) for the next
POSTs. Tests never contact the real service.

Where the page is silent the fake follows the page's own rules: every `*_OTHER` value needs its
`*_other` text (max 500), and the incompatible-content texts have the illegal-content limits
(500 / 2,000)."""
from __future__ import annotations

import collections
import datetime
import http.server
import json
import re
import threading
import time
import uuid
from urllib.parse import unquote, urlsplit

from hashmatch.accountability.enums import (
    ACCOUNT_TYPES,
    AUTOMATED_DECISIONS,
    CONTENT_TYPES,
    DECISION_ACCOUNTS,
    DECISION_GROUNDS,
    DECISION_MONETARIES,
    DECISION_PROVISIONS,
    DECISION_VISIBILITIES,
    KEYWORDS,
    SOURCE_TYPES,
    STATEMENT_CATEGORIES,
)

#: The 27 EU members (Greece is GR) and the EEA's Iceland, Liechtenstein and Norway.
EU_EEA = ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
          "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "IS", "LI", "NO")
DECISION_FIELDS = ("decision_visibility", "decision_monetary", "decision_provision", "decision_account")
MAX_BATCH = 100
_PUID = re.compile(r"[a-zA-Z0-9\-_]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LANGUAGE = re.compile(r"[A-Z]{2}")
_URL = re.compile(r"https?://[^\s/?#.][^\s]*", re.IGNORECASE)


def valid_statement(puid: str) -> dict:
    """A minimal valid statement: a CSAM image removed on the platform's own initiative."""
    return {
        "decision_visibility": ["DECISION_VISIBILITY_CONTENT_REMOVED"],
        "decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT",
        "illegal_content_legal_ground": "Directive 2011/93/EU, Art. 5",
        "illegal_content_explanation": "The image matched a list of known child sexual abuse material.",
        "content_type": ["CONTENT_TYPE_IMAGE"],
        "category": "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
        "category_specification": ["KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL"],
        "territorial_scope": list(EU_EEA),
        "content_date": "2025-07-01",
        "application_date": "2025-07-02",
        "decision_facts": "Automated hash matching found the upload in a list of known material.",
        "source_type": "SOURCE_VOLUNTARY",
        "automated_detection": "Yes",
        "automated_decision": "AUTOMATED_DECISION_FULLY",
        "puid": puid,
    }


def validate_statement(s: object) -> dict[str, list[str]]:
    """The errors of one statement, {field: [message, ...]}; empty when it is valid."""
    if not isinstance(s, dict):
        return {"statement": ["The statement must be a JSON object."]}
    errors: dict[str, list[str]] = {}

    def err(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    def given(field: str) -> bool:
        return s.get(field) not in (None, "", [])

    def text(field: str, max_len: int, required: bool = True, pattern: re.Pattern | None = None) -> None:
        value = s.get(field)
        if not given(field):
            if required:
                err(field, f"The {field} field is required.")
        elif not isinstance(value, str):
            err(field, f"The {field} field must be a string.")
        elif len(value) > max_len:
            err(field, f"The {field} field must not be greater than {max_len} characters.")
        elif pattern is not None and not pattern.fullmatch(value):
            err(field, f"The {field} field format is invalid.")

    def one_of(field: str, allowed: tuple[str, ...], required: bool = True) -> str | None:
        value = s.get(field)
        if not given(field):
            if required:
                err(field, f"The {field} field is required.")
            return None
        if value not in allowed:
            err(field, f"The selected {field} is invalid.")
            return None
        return value

    def array_of(field: str, allowed: tuple[str, ...], required: bool = True) -> list:
        value = s.get(field)
        if not given(field):
            if required:
                err(field, f"The {field} field is required.")
            return []
        if not isinstance(value, list):
            err(field, f"The {field} field must be an array.")
            return []
        for i, item in enumerate(value):
            if not isinstance(item, str) or item not in allowed:
                err(field, f"The selected {field}.{i} is invalid.")
        return value

    def date(field: str, low: str, high: str | None, required: bool = True) -> None:
        value = s.get(field)
        if not given(field):
            if required:
                err(field, f"The {field} field is required.")
            return
        try:
            if not isinstance(value, str) or not _DATE.fullmatch(value):
                raise ValueError
            datetime.date.fromisoformat(value)
        except ValueError:
            err(field, f"The {field} field must match the format Y-m-d.")
            return
        if value < low:
            err(field, f"The {field} field must be a date after or equal to {low}.")
        if high is not None and value > high:
            err(field, f"The {field} field must be a date before or equal to {high}.")

    if not any(given(f) for f in DECISION_FIELDS):
        for field in DECISION_FIELDS:
            others = ", ".join(f for f in DECISION_FIELDS if f != field)
            err(field, f"The {field} field is required when none of {others} are present.")
    if "DECISION_VISIBILITY_OTHER" in array_of("decision_visibility", DECISION_VISIBILITIES, required=False):
        text("decision_visibility_other", 500)
    if one_of("decision_monetary", DECISION_MONETARIES, required=False) == "DECISION_MONETARY_OTHER":
        text("decision_monetary_other", 500)
    one_of("decision_provision", DECISION_PROVISIONS, required=False)
    one_of("decision_account", DECISION_ACCOUNTS, required=False)
    ground = one_of("decision_ground", DECISION_GROUNDS)
    if ground == "DECISION_GROUND_ILLEGAL_CONTENT":
        text("illegal_content_legal_ground", 500)
        text("illegal_content_explanation", 2000)
    elif ground == "DECISION_GROUND_INCOMPATIBLE_CONTENT":
        text("incompatible_content_ground", 500)
        text("incompatible_content_explanation", 2000)
    if "CONTENT_TYPE_OTHER" in array_of("content_type", CONTENT_TYPES):
        text("content_type_other", 500)
    one_of("category", STATEMENT_CATEGORIES)
    if "KEYWORD_OTHER" in array_of("category_specification", KEYWORDS, required=False):
        text("category_specification_other", 500)
    array_of("category_addition", STATEMENT_CATEGORIES, required=False)
    array_of("territorial_scope", EU_EEA)
    date("content_date", "2000-01-01", "2038-01-01")
    date("application_date", "2020-01-01", None)
    date("end_date_visibility_restriction", "2020-01-01", None, required=False)
    text("decision_facts", 5000)
    one_of("source_type", SOURCE_TYPES)
    one_of("automated_detection", ("Yes", "No"))
    one_of("automated_decision", AUTOMATED_DECISIONS)
    text("puid", 500, pattern=_PUID)
    text("content_language", 2, required=False, pattern=_LANGUAGE)
    text("decision_ground_reference_url", 2000, required=False, pattern=_URL)
    one_of("account_type", ACCOUNT_TYPES, required=False)
    return errors


def _message(errors: dict[str, list[str]]) -> str:
    messages = [m for ms in errors.values() for m in ms]
    more = len(messages) - 1
    return messages[0] + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")


class TransparencyDbFake(http.server.ThreadingHTTPServer):
    """The database on 127.0.0.1:<free port>. `script`: misbehaviours for the next POSTs, one
    each: "429" / "429:SECONDS" (Retry-After, 1 by default), "500", "503", "drop" (close
    without an answer), "store_then_500" (store, then answer 500: a lost answer),
    "delay:SECONDS" (then answer normally). `requests`: (method, path, statements sent)."""

    daemon_threads = True

    def __init__(self, token: str = "secret-token", rate_limit_per_s: float | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.token = token
        self.rate_limit_per_s = rate_limit_per_s
        self.script: list[str] = []
        self.requests: list[tuple[str, str, int]] = []
        self.stored: dict[str, dict] = {}
        self.puid_by_uuid: dict[str, str] = {}
        self.posts = 0
        self.lock = threading.Lock()
        self._recent: collections.deque[float] = collections.deque()
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def stored_count(self) -> int:
        with self.lock:
            return len(self.stored)

    def close(self) -> None:
        """Stop serving and free the port."""
        self.shutdown()
        self.server_close()

    def _arrive(self, method: str, path: str, count: int) -> tuple[bool, str]:
        """Log a request; (rate limited?, the script's step for it)."""
        with self.lock:
            self.requests.append((method, path, count))
            if method == "POST":
                self.posts += 1
            if self.rate_limit_per_s is not None:
                now = time.monotonic()
                while self._recent and self._recent[0] <= now - 1.0:
                    self._recent.popleft()
                if len(self._recent) >= self.rate_limit_per_s:
                    return True, "ok"
                self._recent.append(now)
            return False, self.script.pop(0) if method == "POST" and self.script else "ok"

    def submit(self, doc: object, batch: bool) -> tuple[int, dict]:
        """Validate and store one call's statements: all of them (201) or none (422)."""
        if batch:
            statements = doc.get("statements") if isinstance(doc, dict) else None
            if not isinstance(statements, list) or not 1 <= len(statements) <= MAX_BATCH:
                errors = {"statements": [f"The statements field must be an array of 1 to {MAX_BATCH} items."]}
                return 422, {"message": _message(errors), "errors": errors}
        else:
            statements = [doc]
        invalid = {f"statement_{i}": e for i, s in enumerate(statements) if (e := validate_statement(s))}
        if invalid:
            if batch:
                return 422, {"message": f"{len(invalid)} of the {len(statements)} statements are invalid; "
                                        "none was stored.", "errors": invalid}
            return 422, {"message": _message(invalid["statement_0"]), "errors": invalid["statement_0"]}
        with self.lock:
            seen: set[str] = set()
            existing: list[str] = []
            for s in statements:
                if (s["puid"] in seen or s["puid"] in self.stored) and s["puid"] not in existing:
                    existing.append(s["puid"])
                seen.add(s["puid"])
            if existing:
                duplicate: dict[str, list[str]] = {"puid": ["The identifier given is not unique within this platform."]}
                if batch:
                    duplicate["existing_puids"] = existing
                return 422, {"message": duplicate["puid"][0], "errors": duplicate}
            created_at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            echoed = []
            for s in statements:
                record = dict(s, uuid=str(uuid.uuid4()), puid=s["puid"], created_at=created_at)
                self.stored[record["puid"]] = record
                self.puid_by_uuid[record["uuid"]] = record["puid"]
                echoed.append(record)
        return 201, ({"statements": echoed} if batch else echoed[0])

    def find(self, puid: str | None = None, uuid_: str | None = None) -> dict | None:
        with self.lock:
            if uuid_ is not None:
                puid = self.puid_by_uuid.get(uuid_)
            return self.stored.get(puid) if puid is not None else None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TransparencyDbFake

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, document: object | None, headers: dict[str, str] | None = None) -> None:
        data = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if document is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.server.token}":
            return True
        self._send(401, {"message": "Unauthenticated."})
        return False

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        batch = path == "/api/v1/statements"
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        count = len(doc["statements"]) if batch and isinstance(doc, dict) and isinstance(
            doc.get("statements"), list) else int(isinstance(doc, dict))
        limited, step = self.server._arrive("POST", path, count)
        if limited:
            return self._send(429, {"message": "Too Many Attempts."}, {"Retry-After": "1"})
        if step.startswith("delay:"):
            time.sleep(float(step.split(":", 1)[1]))
        elif step == "drop":
            self.close_connection = True
            return None
        elif step.split(":")[0] == "429":
            return self._send(429, {"message": "Too Many Attempts."}, {"Retry-After": (step + ":1").split(":")[1]})
        elif step in ("500", "503"):
            return self._send(int(step), {"message": "Server Error"})
        elif step not in ("ok", "store_then_500"):
            return self._send(500, {"message": f"dsafake: unknown script word {step!r}"})
        if path not in ("/api/v1/statement", "/api/v1/statements"):
            return self._send(404, {"message": "Not Found"})
        if not self._authorized():
            return None
        if doc is None:
            return self._send(400, {"message": "The body must be JSON."})
        status, answer = self.server.submit(doc, batch)
        if step == "store_then_500":
            return self._send(500, {"message": "Server Error"})
        return self._send(status, answer)

    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        limited, _ = self.server._arrive("GET", path, 0)
        if limited:
            return self._send(429, {"message": "Too Many Attempts."}, {"Retry-After": "1"})
        if not self._authorized():
            return None
        if path == "/api/ping":
            return self._send(200, {"message": "pong"})
        prefix, existing = "/api/v1/statement/", "/api/v1/statement/existing-puid/"
        if path.startswith(existing):
            if (record := self.server.find(puid=unquote(path[len(existing):]))) is not None:
                return self._send(302, None, {"Location": f"{prefix}{record['uuid']}"})
        elif path.startswith(prefix) and "/" not in path[len(prefix):]:
            record = self.server.find(uuid_=unquote(path[len(prefix):]))
            if record is not None:
                return self._send(200, record)
        return self._send(404, {"message": "Not Found"})
