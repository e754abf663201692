"""Meta ThreatExchange (GIFCT members share through it; `../shared/EXCHANGES.md`):
`GET {base}/{PRIVACY_GROUP}/threat_updates/` with the app token (credentials `app_id|secret`),
following `paging.next` to the end. Keys are `(type, indicator)`; `should_delete`, or no
descriptors left, removes. Each fetch covers `[since, now)` (`start_time`/`stop_time`), and
the checkpoint moves to `now` only once every page is read; updates are kept about 90 days,
so an older checkpoint refetches from the start. A 500 usually means /threat_updates is not
enabled for the group: reported as such. Descriptor tags travel as tags. The token rides
in the query, so no URL is ever shown with its query.

Options: `privacy_group=ID` (required).
"""
from __future__ import annotations

from typing import Any, Iterator

from hashmatch.exchanges.base import BATCH_RECORDS, Batch, ExchangeType, FetchContext, Records, json_page, typed_key
from hashmatch.exchanges.http import FetchError

TYPES = {"HASH_PDQ": "pdq", "HASH_MD5": "md5", "HASH_SHA256": "sha256", "HASH_VIDEO_MD5": "md5"}
FIELDS = "indicator,type,last_updated,should_delete,descriptors{id,reactions,owner{id},tags,status}"
RETAINED_S = 90 * 86400


class ThreatExchange(ExchangeType):
    name = "threatexchange"
    default_url = "https://graph.facebook.com/v21.0"

    def fetch(self, source: dict[str, Any], checkpoint: Any, context: FetchContext) -> Iterator[Batch]:
        group = (source.get("options") or {}).get("privacy_group")
        if not group:
            raise FetchError("a threatexchange source needs --option privacy_group=ID")
        if not context.credentials or "|" not in context.credentials:
            raise FetchError("a threatexchange source needs credentials app_id|secret")
        now = int(context.clock())
        since = int(checkpoint.get("since", 0)) if isinstance(checkpoint, dict) else 0
        if now - since > RETAINED_S:
            since = 0  # older than ThreatExchange keeps updates: from the start
        url: str | None = f"{source['url'].rstrip('/')}/{group}/threat_updates/"
        params: dict[str, Any] | None = {"access_token": context.credentials, "start_time": since, "stop_time": now,
                                         "limit": 100, "fields": FIELDS}
        records = Records()
        while url is not None:
            answer = context.http().request("GET", url, params=params)
            if answer.status == 500:
                raise FetchError(f"threatexchange answered HTTP 500 for privacy group {group}: is /threat_updates "
                                 "enabled for it?")
            if answer.status in (400, 401, 403):
                raise FetchError(f"threatexchange refused the app token (HTTP {answer.status})")
            if answer.status != 200:
                raise FetchError(f"threatexchange answered HTTP {answer.status}")
            page, found = json_page(answer.body, "data", f"threatexchange (privacy group {group})")
            for update in found:
                _update(update, records, source.get("category"))
            url, params = ((page.get("paging") or {}).get("next") or None), None
            if url is not None and len(records) >= BATCH_RECORDS:
                yield records.batch(None)  # the window's end only once every page is read
        yield records.batch({"since": now})


def _update(update: Any, records: Records, category: str | None) -> None:
    if not isinstance(update, dict) or not isinstance(update.get("indicator"), str):
        records.invalid += 1
        return
    typed = typed_key(records, update.get("type"), update["indicator"], TYPES)
    if typed is None:
        return
    algorithm, key = typed
    descriptors = ((update.get("descriptors") or {}).get("data") or []) if isinstance(update.get("descriptors"),
                                                                                      dict) else []
    if update.get("should_delete") is True or not descriptors:
        records.delete(key)
        return
    tags = sorted({f"tag:{t}" for d in descriptors if isinstance(d, dict) for t in d.get("tags") or ()
                   if isinstance(t, str)} | {f"status:{d['status']}" for d in descriptors if isinstance(d, dict)
                                             and isinstance(d.get("status"), str)})
    records.upsert(key, [(algorithm, update["indicator"])], category=category, tags=tuple(tags))
