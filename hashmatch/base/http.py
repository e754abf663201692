"""The HTTP client of every outbound call (httpx: the exchanges' fetches, the
Transparency Database submissions): connect and read timeouts; a bounded number
of retries with exponential backoff and jitter on connection errors, 429 and 5xx,
honouring Retry-After; TLS verification always on (a CA bundle may be added, never
removed); redirects followed by hand, the caller's headers (credentials) dropped when a
redirect leaves the origin; response bodies capped and streamed to a file when asked."""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

from hashmatch.errors import HashmatchError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# httpx logs every request's URL at INFO, query included: a ThreatExchange token rides there.
logging.getLogger("httpx").setLevel(logging.WARNING)
MAX_REDIRECTS = 5


class HttpError(HashmatchError):
    """No usable answer (network, too many redirects, a body over the cap); a user of the
    client subclasses it (exchanges.http.FetchError) and sets HttpClient.error."""

    code = "http_failed"


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes


class HttpClient:
    error: type[HttpError] = HttpError  # what a failure raises

    def __init__(self, *, connect_timeout: float = 10.0, read_timeout: float = 60.0, attempts: int = 4,
                 backoff_s: float = 0.5, max_wait_s: float = 60.0, max_bytes: int = 1 << 30,
                 ca_bundle: str | None = None):
        import httpx

        self._httpx = httpx
        verify: Any = True
        if ca_bundle:
            import ssl

            context = ssl.create_default_context()
            context.load_verify_locations(ca_bundle)  # added to the system's CAs, never replacing verification
            verify = context
        self._client = httpx.Client(timeout=httpx.Timeout(read_timeout, connect=connect_timeout), verify=verify,
                                    follow_redirects=False)
        self.attempts, self.backoff_s, self.max_wait_s, self.max_bytes = attempts, backoff_s, max_wait_s, max_bytes

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, params: Any = None,
                data: Any = None, content: bytes | None = None, into: BinaryIO | None = None,
                follow: bool = True) -> Answer:
        """The answer to a request (bodies over max_bytes refused), retried on transient
        failures; data: a form, content: raw bytes; into: write the body there instead of
        keeping it (big lists); follow=False: a redirect is the answer."""
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._with_retries(method, url, headers, params, data, content, into)
            if not follow or answer.status not in (301, 302, 303, 307, 308) or "location" not in answer.headers:
                return answer
            url = urljoin(url, answer.headers["location"])
            params = None  # the location carries its own query
            if _origin(url) != origin:
                headers = None  # credentials never follow a redirect to another host
            if answer.status == 303:
                method, data, content = "GET", None, None
        raise self.error(f"more than {MAX_REDIRECTS} redirects from {_safe(url)}")

    def _with_retries(self, method: str, url: str, headers: Any, params: Any, data: Any, content: bytes | None,
                      into: BinaryIO | None) -> Answer:
        httpx = self._httpx
        for attempt in range(self.attempts):
            last = attempt == self.attempts - 1
            try:
                with self._client.stream(method, url, headers=headers, params=params, data=data,
                                         content=content) as response:
                    if response.status_code in RETRY_STATUSES and not last:
                        wait = _retry_after(response.headers.get("retry-after"))
                        self._pause(attempt, wait)
                        continue
                    body = self._read(response, into)
                    return Answer(response.status_code, response.headers, body)
            except httpx.TransportError as exc:
                if last:
                    raise self.error(f"{_safe(url)}: {type(exc).__name__} after {self.attempts} attempts") from None
                self._pause(attempt, None)
        raise self.error(f"{_safe(url)}: no answer")  # pragma: no cover - the loop returns or raises

    def _read(self, response: Any, into: BinaryIO | None) -> bytes:
        kept, total = [], 0
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > self.max_bytes:
                raise self.error(f"{_safe(str(response.url))}: the answer exceeds {self.max_bytes} bytes")
            if into is not None:
                into.write(chunk)
            else:
                kept.append(chunk)
        return b"".join(kept)

    def _pause(self, attempt: int, wait: float | None) -> None:
        if wait is None:
            wait = self.backoff_s * 2 ** attempt * (0.5 + random.random())  # noqa: S311 - jitter, not secrets
        time.sleep(min(wait, self.max_wait_s))


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to backoff


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _safe(url: str) -> str:
    """A URL fit for an error message: no query (it may carry a token), no user info."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"
