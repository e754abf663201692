"""NCMEC hash sharing (CSAM; `../shared/EXCHANGES.md`): `GET {base}/v2/entries?from=&to=`
with HTTP Basic auth (credentials `user:password`), XML pages of 1,000 image and video
records and deletions, `<next>` a path relative to the base.

Where the reference client goes wrong: times are UTC (`YYYY-MM-DDTHH:MM:SSZ`); records in a
window are not in timestamp order and many share a second, so the checkpoint advances to
the window's end only once the whole window is read; inside a window the paging path is
kept to resume with, but only for that same window (never with a new end time). A
record's key is MEMBER-ID; a deletion removes every hash the key brought. PhotoDNA is
kept only where a `photodna` signal type is installed; other fingerprints are counted as
skipped. The XML is parsed with defusedxml (no entity expansion).

Options: `member_ids=42,43` keeps only those members' records.
"""
from __future__ import annotations

import base64
import time
from typing import Any, Iterator
from urllib.parse import urlencode

from hashmatch.exchanges.base import BATCH_RECORDS, Batch, ExchangeType, FetchContext, Records
from hashmatch.exchanges.http import FetchError

NS = "{https://hashsharing.ncmec.org/hashsharing/v2}"
FINGERPRINTS = {"md5": "md5", "sha1": "sha1", "pdq": "pdq", "pdna": "photodna"}


def utc(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class NcmecExchange(ExchangeType):
    name = "ncmec"
    default_url = "https://report.cybertip.org/hashsharing"
    default_category = "csam"

    def fetch(self, source: dict[str, Any], checkpoint: Any, context: FetchContext) -> Iterator[Batch]:
        if not context.credentials or ":" not in context.credentials:
            raise FetchError("an ncmec source needs credentials user:password")
        auth = {"Authorization": "Basic " + base64.b64encode(context.credentials.encode()).decode()}
        base = source["url"].rstrip("/")
        members = {m.strip() for m in (source.get("options") or {}).get("member_ids", "").split(",") if m.strip()}
        state = checkpoint if isinstance(checkpoint, dict) else {}
        paging = state.get("paging")
        if paging:  # resume inside the window it belongs to, never with another end time
            start, end, path = int(paging["from"]), int(paging["to"]), paging["next"]
        else:
            start, end = int(state.get("from", 0)), int(context.clock())
            path = "/v2/entries?" + urlencode({"from": utc(start), "to": utc(end)})
        records = Records()
        while path is not None:
            answer = context.http().request("GET", base + path, headers=auth)
            if answer.status in (401, 403):
                raise FetchError(f"the ncmec credentials were refused (HTTP {answer.status})")
            if answer.status != 200:
                raise FetchError(f"ncmec answered HTTP {answer.status} for the window {utc(start)} - {utc(end)}")
            path = _read_page(answer.body, records, members, source.get("category"), where=f"{utc(start)} - {utc(end)}")
            if path is not None and len(records) >= BATCH_RECORDS:
                yield records.batch({"from": start, "paging": {"from": start, "to": end, "next": path}})
        yield records.batch({"from": end, "paging": None})  # the window is exhausted: only now does it advance


def _read_page(body: bytes, records: Records, members: set[str], category: str | None, *, where: str) -> str | None:
    from defusedxml import ElementTree

    try:
        root = ElementTree.fromstring(body)
    except Exception as exc:  # noqa: BLE001 - defusedxml's and expat's errors alike: a malformed page
        raise FetchError(f"ncmec sent a malformed page in the window {where}: {type(exc).__name__}") from None
    for group in ("images", "videos"):
        section = root.find(f"{NS}{group}")
        if section is None:
            continue
        for record in section:
            tag = record.tag.removeprefix(NS)
            member = record.find(f"{NS}member")
            entry_id = (record.findtext(f"{NS}id") or "").strip()
            member_id = member.get("id", "").strip() if member is not None else ""
            if not member_id or not entry_id:
                records.invalid += 1
                continue
            if members and member_id not in members:
                records.skipped["member_filtered"] += 1
                continue
            key = f"{member_id}-{entry_id}"
            if tag in ("deletedImage", "deletedVideo"):
                records.delete(key)
                continue
            hashes = []
            for fingerprint in record.find(f"{NS}fingerprints") or ():
                name = fingerprint.tag.removeprefix(NS)
                if name in FINGERPRINTS:
                    hashes.append((FINGERPRINTS[name], (fingerprint.text or "").strip()))
                else:
                    records.skipped[name] += 1
            classification = (record.findtext(f"{NS}classification") or "").strip()
            tags = (f"classification:{classification}",) if classification else ()
            records.upsert(key, hashes, category=category, date=(record.findtext(f"{NS}timestamp") or None),
                           tags=tags + (f"member:{member_id}", f"media:{group[:-1]}"))
    next_path = root.findtext(f"{NS}paging/{NS}next")
    return next_path.strip() if next_path and next_path.strip() else None
