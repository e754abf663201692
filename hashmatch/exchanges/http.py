"""The exchanges' HTTP client: base.http's, raising FetchError, which every exchange
catches (a source that cannot be fetched stops; what was committed stays)."""
from __future__ import annotations

from hashmatch.base import http as _http
from hashmatch.base.http import RETRY_STATUSES, Answer

__all__ = ["Answer", "FetchError", "HttpClient", "RETRY_STATUSES"]


class FetchError(_http.HttpError):
    """A source could not be fetched (network, HTTP status, malformed data): the fetch of
    that source stops, what was committed before stays, and the next fetch retries."""

    code = "fetch_failed"


class HttpClient(_http.HttpClient):
    error = FetchError
