"""Bearer tokens of `hashmatch serve`: the token file and checking a request's token.

The file (JSON, written atomically with mode 0600) holds, per token, its name, scopes
and the SHA-256 of its secret, never the secret: `hashmatch token add NAME --scope
match,admin --tokens FILE` prints the secret once. Secrets are 32 random bytes
(urlsafe base64, prefixed "hm_"), so an unsalted SHA-256 cannot be reversed by search;
a presented token is hashed and compared in constant time against every entry.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from hashmatch.base.files import atomic_write
from hashmatch.errors import ConfigurationError

SCOPES = ("match", "admin")
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
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigurationError("a token name is letters, digits, '-' and '_'")
    if not scopes or not scopes <= set(SCOPES):
        raise ConfigurationError(f"scopes: one or more of {', '.join(SCOPES)}")
    tokens = load(path)
    if any(t.name == name for t in tokens):
        raise ConfigurationError(f"a token named {name!r} exists; remove it first")
    secret = _PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    tokens.append(Token(name, frozenset(scopes), _digest(secret), created))
    _save(path, tokens)
    return secret


def remove(path: str | os.PathLike, name: str) -> None:
    tokens = load(path)
    if not any(t.name == name for t in tokens):
        raise ConfigurationError(f"no token named {name!r}")
    _save(path, [t for t in tokens if t.name != name])


def _save(path: str | os.PathLike, tokens: list[Token]) -> None:
    document = {"tokens": [{"name": t.name, "scopes": sorted(t.scopes), "sha256": t.sha256, "created": t.created}
                           for t in tokens]}
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)


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
