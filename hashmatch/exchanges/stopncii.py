"""StopNCII (non-consensual intimate imagery; `../shared/EXCHANGES.md`):
`GET {base}/v1/FetchHashes?startTimestamp=&pageSize=800[&nextPageToken=]` with the headers
`x-functions-key` and `Ocp-Apim-Subscription-Key` (credentials `fetch_key,subscription_key`).

Where the reference client goes wrong: `Withdrawn` and `Deleted` records are removed (it
compared the status against the wrong attribute and never deleted). Keys are
`(signalType, hashValue)`; page tokens are short-lived, so the checkpoint is the last
`nextSetTimestamp` of a completed fetch, and batches committed before it keep the old one
(a fetch killed half way starts over from it: upserts are idempotent). A source unfetched
for 30 days refetches from the start. Each record's CSP feedback travels as tags.
"""
from __future__ import annotations

from typing import Any, Iterator

from hashmatch.exchanges.base import BATCH_RECORDS, Batch, ExchangeType, FetchContext, Records, json_page, typed_key
from hashmatch.exchanges.http import FetchError

SIGNALS = {"ImagePDQ": "pdq", "VideoMD5": "md5"}
REMOVED = {"Withdrawn", "Deleted"}
KEPT = {"Received", "Active"}
STALE_S = 30 * 86400


class StopNciiExchange(ExchangeType):
    name = "stopncii"
    default_url = "https://api.stopncii.org"
    default_category = "ncii"

    def fetch(self, source: dict[str, Any], checkpoint: Any, context: FetchContext) -> Iterator[Batch]:
        fetch_key, _, subscription_key = (context.credentials or "").partition(",")
        if not fetch_key or not subscription_key:
            raise FetchError("a stopncii source needs credentials fetch_key,subscription_key")
        headers = {"x-functions-key": fetch_key.strip(), "Ocp-Apim-Subscription-Key": subscription_key.strip()}
        state = checkpoint if isinstance(checkpoint, dict) else {}
        start = int(state.get("timestamp", 0))
        if context.clock() - float(state.get("fetched_at", 0)) > STALE_S:
            start = 0  # unfetched for 30 days: the service no longer keeps the changes since
        records, token, following = Records(), None, start
        while True:
            params: dict[str, Any] = {"startTimestamp": start, "pageSize": 800}
            if token:
                params["nextPageToken"] = token
            answer = context.http().request("GET", source["url"].rstrip("/") + "/v1/FetchHashes", headers=headers,
                                            params=params)
            if answer.status in (401, 403):
                raise FetchError(f"the stopncii keys were refused (HTTP {answer.status})")
            if answer.status != 200:
                raise FetchError(f"stopncii answered HTTP {answer.status} (from timestamp {start})")
            page, found = json_page(answer.body, "hashRecords", f"stopncii (from timestamp {start})", required=False)
            for record in found:
                _record(record, records, source.get("category"))
            following = int(page.get("nextSetTimestamp") or following)
            token = page.get("nextPageToken")
            if not page.get("hasMoreRecords") or not token:
                break
            if len(records) >= BATCH_RECORDS:
                yield records.batch(None)  # the old checkpoint stays until the whole fetch is done
        yield records.batch({"timestamp": following, "fetched_at": int(context.clock())})


def _record(record: Any, records: Records, category: str | None) -> None:
    if not isinstance(record, dict) or not isinstance(record.get("hashValue"), str):
        records.invalid += 1
        return
    typed = typed_key(records, record.get("signalType"), record["hashValue"], SIGNALS)
    if typed is None:
        return
    algorithm, key = typed
    status = record.get("hashStatus")
    if status in REMOVED:
        records.delete(key)
        return
    if status not in KEPT:
        records.invalid += 1
        return
    feedback = tuple(sorted({f"feedback:{f.get('feedbackValue')}" for f in record.get("CSPFeedbacks") or ()
                             if isinstance(f, dict) and isinstance(f.get("feedbackValue"), str)}))
    records.upsert(key, [(algorithm, record["hashValue"])], category=category, tags=feedback)
