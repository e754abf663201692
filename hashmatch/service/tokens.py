"""Bearer tokens of `hashmatch serve`: the token file and checking a request's token.

The file (JSON, written atomically with mode 0600) holds, per token, its name, scopes
and the SHA-256 of its secret, never the secret: `hashmatch token add NAME --scope
match,admin --tokens FILE` prints the secret once. Secrets are 32 random bytes
(urlsafe base64, prefixed "hm_"), so an unsalted SHA-256 cannot be reversed by search;
a presented token is hashed and compared in constant time against every entry.

Changes to the file are serialised by an exclusive lock on a sibling `FILE.lock` (parallel
`token add`/`remove` all land, none undoes another) and replace it atomically. A running
service reads it through TokenFile, which re-reads it when it changes (checked at most
every CHECK_S): a removed token stops working within about a second, without a restart.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from hashmatch.base.files import atomic_write
from hashmatch.errors import ConfigurationError

#: match: /v1/match, /v1/lookup, /v1/lists; admin: list and entry changes; metrics: /metrics;
#: decide: /v1/decisions (recording what the platform did with a match, and reviews).
SCOPES = ("match", "admin", "metrics", "decide")
#: Seconds between checks of the token file for changes, in a running service.
CHECK_S = 1.0
_log = logging.getLogger("hashmatch.service")
_PREFIX = "hm_"


@dataclass(frozen=True)
class Token:
    name: str
    scopes: frozenset[str]
    sha256: str
    created: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def load(path: str | os.PathLike) -> list[Token]:
    """The tokens in `path` (a missing file holds none); ConfigurationError if malformed."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"token file {path}: {exc}") from exc
    tokens = []
    for item in data.get("tokens", []) if isinstance(data, dict) else []:
        try:
            scopes = frozenset(item["scopes"])
            if not scopes <= set(SCOPES) or len(item["sha256"]) != 64:
                raise ValueError
            tokens.append(Token(str(item["name"]), scopes, str(item["sha256"]), str(item.get("created", ""))))
        except (KeyError, TypeError, ValueError):
            raise ConfigurationError(f"token file {path}: a malformed token entry") from None
    return tokens


def add(path: str | os.PathLike, name: str, scopes: set[str]) -> str:
    """Add token `name` with `scopes` to the file (created 0600) and return its secret;
    the file keeps only the secret's SHA-256."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise ConfigurationError("a token name is 1 to 64 ASCII letters, digits, '-' and '_'")
    if not scopes or not scopes <= set(SCOPES):
        raise ConfigurationError(f"scopes: one or more of {', '.join(SCOPES)}")
    secret = _PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with _locked(path):
        tokens = load(path)
        if any(t.name == name for t in tokens):
            raise ConfigurationError(f"a token named {name!r} exists; remove it first")
        tokens.append(Token(name, frozenset(scopes), _digest(secret), created))
        _save(path, tokens)
    return secret


def remove(path: str | os.PathLike, name: str) -> None:
    with _locked(path):
        tokens = load(path)
        if not any(t.name == name for t in tokens):
            raise ConfigurationError(f"no token named {name!r}")
        _save(path, [t for t in tokens if t.name != name])


@contextlib.contextmanager
def _locked(path: str | os.PathLike) -> Iterator[None]:
    """The token file's writers' lock (FILE.lock, 0600), held for a read-modify-write."""
    lock_path = os.fspath(path) + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        raise ConfigurationError(f"cannot write the token file {path}: its folder does not exist") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot write the token file {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _save(path: str | os.PathLike, tokens: list[Token]) -> None:
    document = {"tokens": [{"name": t.name, "scopes": sorted(t.scopes), "sha256": t.sha256, "created": t.created}
                           for t in tokens]}
    try:
        with atomic_write(path, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the token file {path}: {exc.strerror}") from None


class TokenFile:
    """The tokens of a file as a running service sees them: re-read when the file's
    identity or change time differ from the last read (checked at most every CHECK_S).
    A file that became unreadable or malformed holds no valid token (the service fails
    closed: 401) until it is fixed."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, ...] | None = None
        self._checked = 0.0
        self._tokens: list[Token] = []
        self._refresh()

    def current(self) -> list[Token]:
        if time.monotonic() - self._checked >= CHECK_S:
            with self._lock:
                if time.monotonic() - self._checked >= CHECK_S:
                    self._refresh()
        return self._tokens

    def _refresh(self) -> None:
        self._checked = time.monotonic()
        try:
            st = os.stat(self.path)
            stamp: tuple[int, ...] | None = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:
            stamp = None
        if stamp == self._stamp and stamp is not None:
            return
        try:
            tokens = load(self.path) if stamp is not None else []
        except ConfigurationError as exc:
            _log.error("%s; no token is accepted until it is fixed", exc)
            tokens = []
        if self._stamp is not None:
            _log.info("token file re-read: %d tokens", len(tokens))
        self._tokens, self._stamp = tokens, stamp


def check(tokens: list[Token], authorization: str | None) -> Token | None:
    """The token an `Authorization: Bearer SECRET` header presents, or None."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    digest = _digest(authorization[len("Bearer "):].strip())
    found = None
    for token in tokens:  # every entry compared, in constant time each: no early exit to time
        if hmac.compare_digest(token.sha256, digest):
            found = token
    return found
