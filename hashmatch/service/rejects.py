"""The refusal every endpoint raises: an HTTP status, a code and a message (and headers,
such as Retry-After), answered in the service's one error shape."""
from __future__ import annotations


class Reject(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}
