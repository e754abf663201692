"""The NCMEC exchange against a loopback fake built to ../shared/EXCHANGES.md: windows in
UTC, pages out of timestamp order sharing one second, deletions, skipped fingerprints,
member filters, a malformed page and a 500 (stop, nothing passed, retried next time),
refused credentials; the store's list is compared with the fake's ground truth entry by
entry after every fetch."""
from __future__ import annotations

import hashlib
import os

import pytest

pytest.importorskip("httpx")
pytest.importorskip("defusedxml")

from exchangefakes import NcmecFake  # noqa: E402

from hashmatch.exchanges.fetcher import add_source, fetch  # noqa: E402
from hashmatch.exchanges.http import HttpClient  # noqa: E402
from hashmatch.matching.matcher import Matcher  # noqa: E402
from hashmatch.store.store import Store  # noqa: E402

T0 = 1_700_000_000


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def pdq(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stored(store: Store) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for entry in store.iter_entries("ncmec"):
        found.setdefault(entry.entry_id, {})[entry.algorithm] = entry.hash
    return found


@pytest.fixture()
def setup(tmp_path):
    fake = NcmecFake()
    credentials = tmp_path / "ncmec.cred"
    credentials.write_text("u:p\n")
    os.chmod(credentials, 0o600)
    root = tmp_path / "store"
    add_source(Store.create(root), "ncmec", type="ncmec", list_name="ncmec", url=fake.base,
               credentials=str(credentials))
    yield fake, root, HttpClient(backoff_s=0.01, attempts=2, read_timeout=5)
    fake.shutdown()


def truth_as_stored(fake: NcmecFake) -> dict[str, dict[str, str]]:
    return {key: {("photodna" if k == "pdna" else k): v for k, v in prints.items()
                  if k in ("md5", "sha1", "pdq")} for key, prints in fake.truth().items()
            if any(k in ("md5", "sha1", "pdq") for k in prints)}


def test_first_and_incremental_fetches_equal_the_ground_truth(setup):
    fake, root, client = setup
    # 2,500 records over a few seconds (many share one second), some with two hashes,
    # one with only a fingerprint hashmatch does not keep.
    fake.records = [(T0 + i // 400, 42 + i % 3, i, "image", {"md5": md5(str(i)), **({"pdq": pdq(str(i))} if i % 5 == 0
                     else {})}, "A1" if i % 2 else "") for i in range(2500)]
    fake.records.append((T0 + 1, 42, 9999, "video", {"netclean": "x" * 10, "tmk_pdqf": "y"}, ""))
    [first] = fetch(root, http=client, clock=lambda: T0 + 100)
    assert first.ok, first.error
    assert first.added == 2500 and first.skipped == {"netclean": 1, "tmk_pdqf": 1}
    store = Store.open(root)
    assert stored(store) == truth_as_stored(fake)
    assert store.sources["ncmec"]["checkpoint"] == {"from": T0 + 100, "paging": None}
    # the window's records came on 3 pages out of timestamp order: the checkpoint moved once, to its end
    assert sum("/v2/entries" in path for path, _ in fake.requests) == 3
    first_window = fake.requests[0][0]  # in UTC, from the start of time to the clock
    assert "from=1970-01-01T00%3A00%3A00Z" in first_window and "to=2023-11-14T22%3A15%3A00Z" in first_window
    match = Matcher(store).match_hashes({"md5": md5("1")})
    assert match.status == "match" and "classification:A1" in match.matches[0].tags
    # later: 100 additions, an update of key 42-0 (a new hash), 50 deletions
    fake.records += [(T0 + 150, 43, 5000 + i, "image", {"md5": md5(f"new{i}")}, "B2") for i in range(100)]
    fake.records.append((T0 + 151, 42, 0, "image", {"md5": md5("replaced")}, ""))
    fake.records += [(T0 + 152, 42 + i % 3, i, "deletedImage", {}, "") for i in range(3, 153, 3)]
    generation = store.generation
    [second] = fetch(root, http=client, clock=lambda: T0 + 200)
    assert second.ok and (second.added, second.updated, second.deleted) == (100, 1, 50)
    store = Store.open(root)
    assert stored(store) == truth_as_stored(fake)
    assert store.generation == generation + 1  # one batch, one generation
    matcher = Matcher(store)
    assert matcher.match_hashes({"md5": md5("0")}).status == "no_match"  # the update replaced it
    assert matcher.match_hashes({"md5": md5("replaced")}).status == "match"
    assert matcher.match_hashes({"md5": md5("3")}).status == "no_match"  # deleted


def test_a_bad_page_stops_the_fetch_and_is_retried(setup):
    fake, root, client = setup
    fake.PAGE = 10
    fake.records = [(T0, 42, i, "image", {"md5": md5(str(i))}, "") for i in range(35)]
    fake.script = ["ok", "malformed"]
    [failed] = fetch(root, http=client, clock=lambda: T0 + 10)
    assert not failed.ok and "malformed page" in failed.error
    assert Store.open(root).sources["ncmec"]["checkpoint"] is None  # nothing passed the bad page
    fake.script = ["500", "500"]
    [failed] = fetch(root, http=client, clock=lambda: T0 + 10)
    assert not failed.ok and "HTTP 500" in failed.error
    [done] = fetch(root, http=client, clock=lambda: T0 + 10)
    assert done.ok and stored(Store.open(root)) == truth_as_stored(fake)


def test_a_resumed_window_keeps_its_end_time(setup, monkeypatch):
    """A fetch stopped inside a window resumes with the same from/to and paging path (a
    client that reused a paging URL with a new end time once skipped all history)."""
    from hashmatch.exchanges import ncmec

    fake, root, client = setup
    fake.PAGE = 10
    monkeypatch.setattr(ncmec, "BATCH_RECORDS", 10)  # a batch (and a checkpoint) per page
    fake.records = [(T0, 42, i, "image", {"md5": md5(str(i))}, "") for i in range(25)]
    fake.script = ["ok", "ok", "malformed"]
    [stopped] = fetch(root, http=client, clock=lambda: T0 + 10)
    assert not stopped.ok
    paging = Store.open(root).sources["ncmec"]["checkpoint"]["paging"]
    assert paging["to"] == T0 + 10 and "start=21" in paging["next"]
    [done] = fetch(root, http=client, clock=lambda: T0 + 500)  # a later clock: the window is still T0+10
    assert done.ok and stored(Store.open(root)) == truth_as_stored(fake)
    resumed = fake.requests[-1][0]
    assert "start=21" in resumed and "to=2023-11-14T22:13:30Z" in resumed


def test_member_filters_and_refused_credentials(setup, tmp_path):
    fake, root, client = setup
    fake.records = [(T0, 42 + i % 2, i, "image", {"md5": md5(str(i))}, "") for i in range(20)]
    other = tmp_path / "other"
    add_source(Store.open(root), "only43", type="ncmec", list_name="ncmec43", url=fake.base,
               credentials=str(root.parent / "ncmec.cred"), options={"member_ids": "43"})
    [result] = fetch(root, ["only43"], http=client, clock=lambda: T0 + 10)
    assert result.ok and result.added == 10 and result.skipped == {"member_filtered": 10}
    assert {e.entry_id.split("-")[0] for e in Store.open(root).iter_entries("ncmec43")} == {"43"}
    wrong = tmp_path / "wrong.cred"
    wrong.write_text("u:nope")
    os.chmod(wrong, 0o600)
    add_source(Store.open(root), "wrong", type="ncmec", list_name="w", url=fake.base, credentials=str(wrong))
    [refused] = fetch(root, ["wrong"], http=client, clock=lambda: T0 + 10)
    assert not refused.ok and "credentials were refused" in refused.error and "nope" not in refused.error
    assert not other.exists()


def test_hostile_pages_are_refused_not_followed(setup):
    """An XML entity bomb is refused by defusedxml (a malformed page, nothing committed);
    an answer over the size cap is refused before it is held."""
    fake, root, _ = setup
    fake.records = [(T0, 42, i, "image", {"md5": md5(str(i))}, "") for i in range(5)]
    fake.script = ["bomb"]
    [bombed] = fetch(root, http=HttpClient(attempts=1), clock=lambda: T0 + 10)
    assert not bombed.ok and "malformed page" in bombed.error
    [capped] = fetch(root, http=HttpClient(attempts=1, max_bytes=100), clock=lambda: T0 + 10)
    assert not capped.ok and "exceeds 100 bytes" in capped.error
    assert Store.open(root).sources["ncmec"]["checkpoint"] is None
    [done] = fetch(root, http=HttpClient(attempts=1), clock=lambda: T0 + 10)
    assert done.ok and stored(Store.open(root)) == truth_as_stored(fake)
