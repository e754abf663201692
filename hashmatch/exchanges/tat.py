"""Tech Against Terrorism's TCAP hash list (`../shared/EXCHANGES.md`): a token from
`POST {base}/token-auth/tcap/` (credentials `user:password`), then
`GET {base}/api/hash-list/v2/all?order=asc[&after=CHECKPOINT]` page by page, `next` absolute
or relative. Keys are the records' `id`; `deleted: true` removes; unknown fields are
ignored (they crashed the reference parser); an expired token (401) is renewed once.
The page's `checkpoint` is where to resume after it, so every batch carries one. Ideology
and file type travel as tags."""
from __future__ import annotations

import json
from typing import Any, Iterator
from urllib.parse import urljoin

from hashmatch.exchanges.base import BATCH_RECORDS, Batch, ExchangeType, FetchContext, Records, json_page
from hashmatch.exchanges.http import FetchError

ALGORITHMS = {"PDQ": "pdq", "MD5": "md5", "SHA256": "sha256", "SHA1": "sha1"}


class TatExchange(ExchangeType):
    name = "tat"
    default_url = "https://app.terrorismanalytics.org/"
    default_category = "terrorism"

    def fetch(self, source: dict[str, Any], checkpoint: Any, context: FetchContext) -> Iterator[Batch]:
        user, _, password = (context.credentials or "").partition(":")
        if not user or not password:
            raise FetchError("a tat source needs credentials user:password")
        base = source["url"].rstrip("/") + "/"
        token = self._token(context, base, user, password)
        url: str | None = urljoin(base, "api/hash-list/v2/all")
        params: dict[str, Any] | None = {"order": "asc", **({"after": checkpoint} if checkpoint else {})}
        records, renewed, last = Records(), False, checkpoint
        while url is not None:
            answer = context.http().request("GET", url, headers={"Authorization": f"Bearer {token}"}, params=params)
            if answer.status == 401 and not renewed:  # the token expired: once, a new one
                token, renewed = self._token(context, base, user, password), True
                continue
            if answer.status != 200:
                raise FetchError(f"tat answered HTTP {answer.status} (after checkpoint {last!r})")
            page, found = json_page(answer.body, "results", f"tat (after checkpoint {last!r})")
            for record in found:
                _record(record, records, source.get("category"))
            last = page.get("checkpoint") or last
            url, params = (urljoin(base, page["next"]) if page.get("next") else None), None
            if url is not None and len(records) >= BATCH_RECORDS:
                yield records.batch(last)
        yield records.batch(last)

    def _token(self, context: FetchContext, base: str, user: str, password: str) -> str:
        answer = context.http().request("POST", urljoin(base, "token-auth/tcap/"),
                                        data={"username": user, "password": password})
        try:
            token = json.loads(answer.body)["token"] if answer.status == 200 else None
        except (ValueError, KeyError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            raise FetchError(f"the tat credentials were refused (HTTP {answer.status})")
        return token


def _record(record: Any, records: Records, category: str | None) -> None:
    if not isinstance(record, dict) or "id" not in record:
        records.invalid += 1
        return
    key = str(record["id"])
    if record.get("deleted") is True:
        records.delete(key)
        return
    algorithm = ALGORITHMS.get(str(record.get("algorithm", "")).upper())
    if algorithm is None:
        records.skipped[str(record.get("algorithm"))] += 1
        return
    tags = tuple(f"{name}:{record[name]}" for name in ("ideology", "file_type") if isinstance(record.get(name), str))
    records.upsert(key, [(algorithm, record.get("hash_digest"))], category=category, tags=tags)
