"""Decisions for the accountability tests: scan-report-like rows with sensitive-looking
fields (paths, file names, hash values) that must never reach a decision, a statement,
a report or a log."""
from __future__ import annotations

import random

SECRET_PATH = "/home/alice/Private/holiday-2026/IMG_20260704_secret.jpg"
CATEGORIES = ("csam", "terrorism", "ncii")


def row(i: int, *, category: str = "csam", algorithm: str = "pdq", distance: int = 7, video: bool = False,
        lists: int = 1) -> dict:
    """A matched scan row whose path and hashes are unique to `i` (for leak checks)."""
    pdq = f"{i:08x}" + "9d" * 28
    matches = [{"algorithm": algorithm, "distance": distance, "threshold": 31 if algorithm != "md5" else 0,
                "list_name": f"{category}-list" if n == 0 else f"extra-list-{n}", "list_version": f"v{n + 1}",
                "category": category if n == 0 else CATEGORIES[(CATEGORIES.index(category) + n) % 3],
                "entry_id": f"E{i}-{n}", "store_id": 1000 + i * 3 + n, "variant": "original", "query_quality": 92,
                "tags": []} for n in range(lists)]
    record = {"path": f"{SECRET_PATH[:-4]}-{i}.jpg", "size": 1234 + i, "sha256": f"{i:064x}", "status": "match",
              "hashes": {"pdq": pdq, "md5": f"{i:032x}"}, "pdq_quality": 92, "matches": matches}
    if video:
        record["hashes"] = {"vpdq": "…"}
        for m in matches:
            m["algorithm"] = "vpdq"
    else:
        record["image"] = {"width": 640, "height": 480, "format": "JPEG", "mode": "RGB", "frames": 1}
    return record


def fill(log, count: int, *, seed: int = 5, prefix: str = "d", review_every: int = 7) -> list[dict]:
    """Record `count` varied decisions in a DecisionLog (one fsync) and review every
    `review_every`-th (0: none); what was recorded, as plain dicts, for independent counting."""
    from hashmatch.accountability.decisions import make_decision

    rng = random.Random(seed)
    made, expected = [], []
    for i in range(count):
        category = rng.choice(CATEGORIES)
        actions = rng.choice((["removed"], ["disabled"], ["removed", "account_suspended"], ["labelled"],
                              ["removed", "account_terminated", "account_suspended"]))
        automated = rng.choice(("fully", "fully", "partially", "not"))
        month = rng.randint(1, 12)
        decided = f"2026-{month:02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
        algorithm = rng.choice(("pdq", "pdq", "md5"))
        video = rng.random() < 0.2
        decision = make_decision(row(i, category=category, algorithm=algorithm, distance=rng.randint(0, 31),
                                     video=video, lists=rng.choice((1, 1, 2))),
                                 puid=f"{prefix}-{i}", action=actions, automated=automated, decided_at=decided)
        made.append(decision)
        expected.append({"puid": decision.puid, "category": category, "actions": actions, "automated": automated,
                         "month": month, "list": f"{category}-list"})
    log.append(made)
    for i, item in enumerate(expected):
        if review_every and i % review_every == 0:
            item["review"] = "false_match" if i % (3 * review_every) == 0 else "confirmed"
            item["complaint"] = i % 42 == 0
            log.review(item["puid"], item["review"], after_complaint=item["complaint"])
    return expected
