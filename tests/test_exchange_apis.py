"""StopNCII, Tech Against Terrorism and ThreatExchange against loopback fakes built to
../shared/EXCHANGES.md: first and incremental fetches compared with each fake's ground
truth entry by entry, deletions (StopNCII's Withdrawn/Deleted, TAT's deleted, TE's
should_delete and empty descriptors), skipped signal types counted, an expired TAT token
renewed once, 429 and 500 retried, a malformed page stopping the fetch, refused
credentials a clear error."""
from __future__ import annotations

import hashlib
import os

import pytest

pytest.importorskip("httpx")

from exchangefakes import StopNciiFake, TatFake, ThreatExchangeFake  # noqa: E402

from hashmatch.exchanges.fetcher import add_source, fetch  # noqa: E402
from hashmatch.exchanges.http import HttpClient  # noqa: E402
from hashmatch.matching.matcher import Matcher  # noqa: E402
from hashmatch.store.store import Store  # noqa: E402

T0 = 1_700_000_000


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def pdq(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stored(root, list_name: str) -> set[tuple[str, str]]:
    return {(e.algorithm, e.hash) for e in Store.open(root).iter_entries(list_name)}


def credentials(folder, text: str):
    folder.mkdir(exist_ok=True)
    path = folder / "cred"
    path.write_text(text)
    os.chmod(path, 0o600)
    return str(path)


CLIENT = HttpClient(backoff_s=0.01, attempts=3, read_timeout=5)


def test_stopncii(tmp_path):
    fake = StopNciiFake()
    fake.records = [{"lastModtimestamp": T0 + i, "hashValue": pdq(str(i)), "hashStatus": "Active",
                     "signalType": "ImagePDQ", "caseNumbers": {}, "CSPFeedbacks": [{"feedbackValue": "Blocked"}]}
                    for i in range(250)]
    fake.records += [{"lastModtimestamp": T0, "hashValue": md5("v"), "hashStatus": "Received",
                      "signalType": "VideoMD5"}, {"lastModtimestamp": T0, "hashValue": "x", "hashStatus": "Active",
                                                  "signalType": "VideoTMK"}]
    root = tmp_path / "store"
    add_source(Store.create(root), "ncii", type="stopncii", list_name="ncii", url=fake.base,
               credentials=credentials(tmp_path, "fk,sk"))
    fake.script = ["429"]
    [first] = fetch(root, http=CLIENT, clock=lambda: T0 + 1000)
    assert first.ok, first.error
    assert first.added == 251 and first.skipped == {"VideoTMK": 1}
    assert stored(root, "ncii") == {("pdq", pdq(str(i))) for i in range(250)} | {("md5", md5("v"))}
    match = Matcher(Store.open(root)).match_hashes({"pdq": pdq("7")})
    assert match.status == "match" and "feedback:Blocked" in match.matches[0].tags
    # the reference client never applied these: Withdrawn and Deleted remove
    for i, status in ((3, "Withdrawn"), (4, "Deleted")):
        fake.records[i] = {**fake.records[i], "hashStatus": status, "lastModtimestamp": T0 + 2000}
    fake.records.append({"lastModtimestamp": T0 + 2001, "hashValue": pdq("late"), "hashStatus": "Active",
                         "signalType": "ImagePDQ"})
    [second] = fetch(root, http=CLIENT, clock=lambda: T0 + 3000)
    assert second.ok and (second.added, second.deleted) == (1, 2)
    assert ("pdq", pdq("3")) not in stored(root, "ncii") and ("pdq", pdq("late")) in stored(root, "ncii")
    fake.script = ["malformed"]
    [bad] = fetch(root, http=CLIENT, clock=lambda: T0 + 3000)
    assert not bad.ok and "malformed" in bad.error
    add_source(Store.open(root), "wrong", type="stopncii", list_name="w", url=fake.base,
               credentials=credentials(tmp_path / "wrong", "fk,nope"))
    [refused] = fetch(root, ["wrong"], http=CLIENT, clock=lambda: T0)
    assert not refused.ok and "refused" in refused.error and "nope" not in refused.error
    fake.shutdown()


def test_tat(tmp_path):
    fake = TatFake()
    fake.page_size = 40
    fake.records = [{"id": i, "hash_digest": md5(str(i)) if i % 2 else pdq(str(i)),
                     "algorithm": "MD5" if i % 2 else "PDQ", "ideology": "islamist", "file_type": "mp4",
                     "deleted": False, "updated_on": T0 + i} for i in range(100)]
    fake.records.append({"id": 500, "hash_digest": "abc", "algorithm": "TMK", "deleted": False,
                         "updated_on": T0 + 50})
    root = tmp_path / "store"
    add_source(Store.create(root), "tat", type="tat", list_name="tcap", url=fake.base,
               credentials=credentials(tmp_path, "user:pw"))
    [first] = fetch(root, http=CLIENT)
    assert first.ok, first.error
    assert first.added == 100 and first.skipped == {"TMK": 1}
    expected = {("md5" if i % 2 else "pdq", md5(str(i)) if i % 2 else pdq(str(i))) for i in range(100)}
    assert stored(root, "tcap") == expected
    match = Matcher(Store.open(root)).match_hashes({"md5": md5("1")})
    assert {"ideology:islamist", "file_type:mp4"} <= set(match.matches[0].tags)
    fake.valid_tokens.clear()  # the token expired: renewed once, then the fetch goes on
    fake.records[5] = {**fake.records[5], "deleted": True, "updated_on": T0 + 1000}
    fake.records.append({"id": 200, "hash_digest": md5("new"), "algorithm": "MD5", "deleted": False,
                         "updated_on": T0 + 1001})
    [second] = fetch(root, http=CLIENT)
    assert second.ok, second.error
    assert (second.added, second.deleted) == (1, 1) and fake.tokens_issued == 2
    assert stored(root, "tcap") == (expected - {("md5", md5("5"))}) | {("md5", md5("new"))}
    fake.shutdown()


def test_threatexchange(tmp_path):
    fake = ThreatExchangeFake()
    fake.page_size = 30
    descriptor = {"data": [{"id": "d", "owner": {"id": "o"}, "status": "MALICIOUS", "tags": ["gifct"]}]}
    fake.records = [{"indicator": pdq(str(i)), "type": "HASH_PDQ", "last_updated": T0 + i, "should_delete": False,
                     "descriptors": descriptor} for i in range(70)]
    fake.records.append({"indicator": "https://x.example", "type": "URI", "last_updated": T0, "should_delete": False,
                         "descriptors": descriptor})
    root = tmp_path / "store"
    add_source(Store.create(root), "te", type="threatexchange", list_name="gifct", url=fake.base,
               credentials=credentials(tmp_path, "app|secret"), category="terrorism",
               options={"privacy_group": "123"})
    fake.script = ["500"]
    [first] = fetch(root, http=CLIENT, clock=lambda: T0 + 100)
    assert first.ok, first.error
    assert first.added == 70 and first.skipped == {"URI": 1}
    assert stored(root, "gifct") == {("pdq", pdq(str(i))) for i in range(70)}
    assert "tag:gifct" in Matcher(Store.open(root)).match_hashes({"pdq": pdq("1")}).matches[0].tags
    fake.records += [{"indicator": pdq("0"), "type": "HASH_PDQ", "last_updated": T0 + 150, "should_delete": True,
                      "descriptors": descriptor},
                     {"indicator": pdq("1"), "type": "HASH_PDQ", "last_updated": T0 + 150, "should_delete": False,
                      "descriptors": {"data": []}},
                     {"indicator": md5("m"), "type": "HASH_MD5", "last_updated": T0 + 150, "should_delete": False,
                      "descriptors": descriptor}]
    [second] = fetch(root, http=CLIENT, clock=lambda: T0 + 200)
    assert second.ok and (second.added, second.deleted) == (1, 2)
    assert stored(root, "gifct") == {("pdq", pdq(str(i))) for i in range(2, 70)} | {("md5", md5("m"))}
    add_source(Store.open(root), "bad", type="threatexchange", list_name="b", url=fake.base,
               credentials=credentials(tmp_path / "wrong", "app|wrong"), category="c", options={"privacy_group": "1"})
    [refused] = fetch(root, ["bad"], http=CLIENT, clock=lambda: T0 + 100)
    assert not refused.ok and "refused the app token" in refused.error and "wrong" not in refused.error
    fake.shutdown()
