"""`hashmatch scan` end to end on a generated tree of a few hundred files: matching
copies, unrelated images, low-quality images and hostile entries. The expected outcome of
every file comes from an independent oracle: os.walk for what exists, and the Hasher plus
numpy brute force over the list's codes for distances and statuses."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from imagegen import encode, make_rgb
from PIL import Image
from test_bad_input import png_declaring

from hashmatch import Hasher
from hashmatch.cli import main

N_ORIGINALS = 30
N_UNRELATED = 200
NON_UTF8 = b"caf\xe9-copy.jpg"


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("scan")
    data = root / "data"
    for sub in ("originals", "copies", "unrelated", "hostile", "odd.jpg", "nested/deeper"):
        (data / sub).mkdir(parents=True)
    listed = []
    for i in range(N_ORIGINALS):
        pixels = make_rgb(320, 240, seed=1000 + i, kind="shapes")
        (data / "originals" / f"o-{i}.jpg").write_bytes(encode(pixels, "JPEG", quality=90))
        image = Image.fromarray(pixels)
        (data / "copies" / f"o-{i}-q50.jpg").write_bytes(encode(image, "JPEG", quality=50))
        (data / "copies" / f"o-{i}-small.png").write_bytes(encode(image.resize((240, 180)), "PNG"))
        listed.append(Hasher(("pdq",)).hash(data / "originals" / f"o-{i}.jpg").hashes["pdq"])
    for i in range(N_UNRELATED):
        kind = ("noise", "gradient", "shapes", "blocks", "flat")[i % 5]
        (data / "unrelated" / f"u-{i}.png").write_bytes(encode(make_rgb(96, 80, seed=5000 + i, kind=kind), "PNG"))
    exact = data / "nested" / "deeper" / "exact.png"
    exact.write_bytes(encode(make_rgb(70, 70, seed=77, kind="noise"), "PNG"))
    # hostile and odd entries
    good_jpeg = encode(make_rgb(200, 150, seed=3, kind="shapes"), "JPEG")
    (data / "hostile" / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (data / "hostile" / "empty.jpg").write_bytes(b"")
    (data / "hostile" / "random.bin").write_bytes(np.random.default_rng(1).bytes(5000))
    (data / "hostile" / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    os.mkfifo(data / "hostile" / "pipe.jpg")
    os.symlink("..", data / "nested" / "loop")
    os.symlink("../originals/o-0.jpg", data / "hostile" / "link.jpg")
    (data / "odd.jpg" / "inside.png").write_bytes(encode(make_rgb(64, 64, seed=9), "PNG"))
    os.rename(data / "copies" / "o-1-q50.jpg", os.path.join(os.fsencode(data / "copies"), NON_UTF8))
    unreadable = data / "hostile" / "unreadable.jpg"
    unreadable.write_bytes(good_jpeg)
    unreadable.chmod(0)
    lists = root / "lists"
    lists.mkdir()
    md5 = Hasher(("md5",)).hash(exact).hashes["md5"]
    (lists / "known.csv").write_text("algorithm,hash,category,id\n"
                                     + "".join(f"pdq,{h},testcat,o{i}\n" for i, h in enumerate(listed))
                                     + f"md5,{md5},exactcat,x1\n")
    return {"root": root, "data": data, "list": lists / "known.csv", "listed": listed, "md5": md5}


def expected_entries(data: Path) -> set[str]:
    """Every non-directory entry, by os.walk (which never follows links): what the scan
    must report, one row each."""
    found = set()
    for folder, dirs, names in os.walk(os.fsencode(data)):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            found.add(os.fsdecode(os.path.join(folder, name)))
    return found


def oracle(tree, path: str) -> tuple[str, list[tuple[str, int]]]:
    """(status, [(entry id, distance)]) from the Hasher and brute force over the list."""
    hasher = Hasher(("pdq", "md5"))
    try:
        result = hasher.hash(path)
    except Exception:  # noqa: BLE001 - any ImageError: the scan must say error
        return "error", []
    hits = [(f"o{i}", hamming(result.hashes["pdq"], h)) for i, h in enumerate(tree["listed"])]
    hits = [(e, d) for e, d in hits if d <= 31] if result.pdq_quality >= 50 else []
    if result.hashes["md5"] == tree["md5"]:
        hits.append(("x1", 0))
    if hits:
        return "match", sorted(hits)
    return ("low_quality" if result.pdq_quality < 50 else "no_match"), []


def run_scan(*args, input=None):
    result = CliRunner().invoke(main, ["scan", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def read_rows(path: Path) -> tuple[list[dict], dict]:
    records = [json.loads(line) for line in path.read_text(errors="surrogateescape").splitlines()]
    assert "summary" in records[-1]
    return records[:-1], records[-1]["summary"]


def comparable(rows: list[dict]) -> dict[str, tuple]:
    return {r["path"]: (r["status"], r.get("sha256"), json.dumps(r.get("matches"), sort_keys=True),
                        (r.get("error") or {}).get("code")) for r in rows}


@pytest.fixture(scope="module")
def full_scan(tree):
    report = tree["root"] / "full.jsonl"
    code, _, err = run_scan(tree["data"], "--list", tree["list"], "--report", report, "--workers", "2", "--quiet")
    rows, summary = read_rows(report)
    return code, rows, summary, report


def test_one_row_per_entry_with_the_oracles_outcome(tree, full_scan):
    code, rows, summary, report = full_scan
    assert code == 1  # there are matches
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)), "a file was reported twice"
    assert set(paths) == expected_entries(tree["data"])
    assert len(rows) > N_ORIGINALS * 3 + N_UNRELATED
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    by_path = {r["path"]: r for r in rows}
    checked = 0
    for path, row in by_path.items():
        if "/hostile/" in path or os.path.islink(path):
            continue
        status, hits = oracle(tree, path)
        assert row["status"] == status, path
        got = sorted((m["entry_id"], m["distance"]) for m in row.get("matches", []))
        assert got == hits, path
        if row["status"] != "error":
            assert row["sha256"] == Hasher(("sha256",)).hash(path).hashes["sha256"]
            assert row["size"] == os.path.getsize(path)
        checked += 1
    assert checked > 250
    statuses = {s for s in (r["status"] for r in rows)}
    assert {"match", "no_match", "low_quality", "error"} <= statuses
    assert summary["files"] == len(rows) and summary["matched"] == sum(r["status"] == "match" for r in rows)


def test_planted_copies_are_found_with_their_evidence(tree, full_scan):
    _, rows, summary, _ = full_scan
    by_path = {r["path"]: r for r in rows}
    data = str(tree["data"])
    resized_found = 0
    for i in range(N_ORIGINALS):
        row = by_path[f"{data}/originals/o-{i}.jpg"]
        assert any(m["entry_id"] == f"o{i}" and m["distance"] == 0 for m in row["matches"])
        if i != 1:  # o-1-q50.jpg was renamed to a non-UTF-8 name
            q50 = by_path[f"{data}/copies/o-{i}-q50.jpg"]
            assert f"o{i}" in {m["entry_id"] for m in q50["matches"]}
        small = by_path[f"{data}/copies/o-{i}-small.png"]
        resized_found += f"o{i}" in {m["entry_id"] for m in small.get("matches", [])}
    # 0.75x resizes of these noisy scenes land 10-30 bits away; the exact set is the
    # oracle's business (test above), here: nearly all are found.
    assert resized_found >= 0.9 * N_ORIGINALS
    non_utf8 = os.fsdecode(os.path.join(os.fsencode(data), b"copies", NON_UTF8))
    assert by_path[non_utf8]["status"] == "match"
    m = by_path[f"{data}/nested/deeper/exact.png"]["matches"]
    assert [(x["algorithm"], x["category"], x["distance"]) for x in m] == [("md5", "exactcat", 0)]
    hit = by_path[f"{data}/copies/o-2-q50.jpg"]["matches"][0]
    assert hit["list_name"] == "known" and hit["category"] == "testcat" and hit["threshold"] == 31
    assert hit["list_version"] and hit["algorithm"] == "pdq"
    assert summary["matched_by_category"]["testcat"] >= 2 * N_ORIGINALS - 3


def test_hostile_entries_get_typed_error_rows(tree, full_scan):
    _, rows, summary, _ = full_scan
    data = str(tree["data"])
    codes = {r["path"][len(data) + 1:]: (r.get("error") or r.get("decode_error") or {}).get("code") for r in rows}
    statuses = {r["path"][len(data) + 1:]: r["status"] for r in rows}
    # Readable files that do not decode are still matched by their exact hashes (the list
    # has an md5): no_match here, with the decode problem kept in the row.
    for name, code in (("truncated.jpg", "truncated"), ("empty.jpg", "empty"),
                       ("random.bin", "unsupported_format"), ("bomb.png", "decompression_bomb")):
        assert codes[f"hostile/{name}"] == code and statuses[f"hostile/{name}"] == "no_match", name
    assert summary["not_decoded"] == 4 and summary["not_decoded_by_code"]["truncated"] == 1
    assert codes["hostile/pipe.jpg"] == "not_regular_file"
    assert codes["hostile/link.jpg"] == "symlink_not_followed"
    assert codes["nested/loop"] == "symlink_not_followed"
    assert codes["odd.jpg/inside.png"] is None  # a folder named like an image is walked
    if os.geteuid() != 0:  # root reads anything
        assert codes["hostile/unreadable.jpg"] == "unreadable"


def test_following_symlinks_detects_the_loop(tree):
    report = tree["root"] / "follow.jsonl"
    code, _, _ = run_scan(tree["data"], "--list", tree["list"], "--report", report, "--follow-symlinks", "--quiet")
    rows, _ = read_rows(report)
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths))
    by_path = {r["path"]: r for r in rows}
    assert by_path[f"{tree['data']}/hostile/link.jpg"]["status"] == "match"
    assert not any("/loop/" in p for p in paths)  # the loop's target was already listed


def test_csv_report_and_audit_record(tree, tmp_path):
    report = tmp_path / "r.csv"
    code, _, err = run_scan(tree["data"] / "originals", "--list", tree["list"], "--report", report,
                            "--format", "csv", "--quiet")
    assert code == 1
    import csv

    rows = list(csv.DictReader(report.open()))
    assert rows[-1]["status"] == "summary" and json.loads(rows[-1]["summary"])["files"] == N_ORIGINALS
    assert all(r["status"] == "match" and json.loads(r["matches"]) for r in rows[:-1])
    audit = [json.loads(line) for line in (tmp_path / "r.csv.audit.jsonl").read_text().splitlines()]
    assert len(audit) == 1 and audit[0]["counts"]["files"] == N_ORIGINALS
    assert audit[0]["lists"][0]["name"] == "known" and audit[0]["user"]
    text = json.dumps(audit)
    assert not any(h in text for h in tree["listed"])  # no hash values in the audit log
    assert stat.S_IMODE((tmp_path / "r.csv.audit.jsonl").stat().st_mode) == 0o600
    assert "matched" in err


def test_store_scan_writes_its_audit_in_the_store(tree, tmp_path):
    store = tmp_path / "store"
    assert CliRunner().invoke(main, ["list", "import", str(tree["list"]), "--store", str(store)]).exit_code == 0
    report = tmp_path / "r.jsonl"
    code, _, _ = run_scan(tree["data"] / "unrelated", "--store", store, "--report", report, "--quiet")
    assert code == 0  # nothing unrelated matches
    events = [json.loads(line)["event"] for line in (store / "audit.jsonl").read_text().splitlines()]
    assert events == ["store_change", "store_change", "scan"]  # create, import, then this scan


def test_killed_scan_resumes_to_the_same_report(tree, full_scan, tmp_path):
    report = tmp_path / "resumed.jsonl"
    cmd = [sys.executable, "-m", "hashmatch.cli", "scan", str(tree["data"]), "--list", str(tree["list"]),
           "--report", str(report), "--workers", "1", "--quiet"]
    # cwd: not the checkout, whose uncompiled source package would shadow the installed one.
    errors = tmp_path / "stderr.txt"
    with open(errors, "wb") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if report.exists() and report.read_bytes().count(b"\n") >= 80:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the scan ended early: {errors.read_text()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = report.read_bytes()
    assert b'"summary"' not in partial, "the scan finished before it could be interrupted"
    # an interruption mid-write leaves a partial last line: simulate the worst case too
    report.write_bytes(partial + b'{"path": "half a row')
    code, _, _ = run_scan(tree["data"], "--list", tree["list"], "--report", report, "--resume", "--quiet")
    rows, summary = read_rows(report)
    _, full_rows, full_summary, _ = full_scan
    assert len(rows) == len({r["path"] for r in rows})
    assert comparable(rows) == comparable(full_rows)
    assert summary["files"] == full_summary["files"] and summary["matched"] == full_summary["matched"]
    assert summary["resumed_rows"] >= 79


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    root = tmp_path_factory.mktemp("heavy")
    big = make_rgb(4000, 4000, seed=1, kind="gradient")
    (root / "big.png").write_bytes(encode(big, "PNG", compress_level=1))
    (root / "small.png").write_bytes(encode(make_rgb(64, 64, seed=2, kind="noise"), "PNG"))
    lst = root / "l.txt"
    lst.write_text("pdq " + "0" * 64 + "\n")
    return root, lst


def test_a_file_over_the_time_limit_costs_only_its_row(heavy, tmp_path):
    root, lst = heavy
    report = tmp_path / "r.jsonl"
    run_scan(root / "big.png", root / "small.png", root / "big.png", "--list", lst, "--report", report,
             "--timeout", "0.05", "--workers", "1", "--quiet")
    rows, summary = read_rows(report)
    assert [(Path(r["path"]).name, r["status"]) for r in rows][:1] == [("big.png", "error")]
    assert rows[0]["error"]["code"] == "timeout"
    assert {Path(r["path"]).name: r["status"] for r in rows}["small.png"] == "no_match"
    assert summary["workers_replaced"] >= 1


def test_a_file_over_the_memory_limit_costs_only_its_row(heavy, tmp_path):
    root, lst = heavy
    report = tmp_path / "r.jsonl"
    run_scan(root / "big.png", root / "small.png", "--list", lst, "--report", report,
             "--memory-limit", "64", "--workers", "1", "--quiet")
    rows, _ = read_rows(report)
    outcome = {Path(r["path"]).name: r for r in rows}
    assert outcome["big.png"]["status"] == "error"
    assert outcome["big.png"]["error"]["code"] in ("out_of_memory", "worker_crashed")
    assert outcome["small.png"]["status"] == "no_match"


def test_usage_errors_exit_2(tree, tmp_path):
    assert run_scan(tree["data"])[0] == 2  # neither --store nor --list
    assert run_scan(tree["data"], "--list", tree["list"], "--resume")[0] == 2  # resume needs --report
    assert run_scan(tree["data"], "--store", tmp_path / "nope")[0] == 2
    bad = tmp_path / "bad.txt"
    bad.write_text("pdq 123\n")
    assert run_scan(tree["data"], "--list", bad)[0] == 2


def test_a_worker_killed_mid_scan_costs_at_most_its_current_file(tree):
    """SIGKILL one worker while it holds files: the file it was hashing gets a
    worker_crashed row, the file queued behind it is handed to the replacement, and every
    other file still gets exactly one ordinary result."""
    from hashmatch import DecodeLimits
    from hashmatch.scan.scanner import HashJob, WorkerPool

    paths = sorted(str(p) for p in (tree["data"] / "unrelated").iterdir())[:60]
    job = HashJob(("pdq", "sha256"), "full", False, DecodeLimits(), False, None)
    results = []
    with WorkerPool(job, 2, timeout_s=60) as pool:
        for i, (path, record) in enumerate(pool.imap(paths)):
            results.append((path, record))
            if i == 10:
                victim = next(w for w in pool._workers if w.inflight)
                os.kill(victim.process.pid, signal.SIGKILL)
        replaced = pool.replaced
    assert sorted(p for p, _ in results) == sorted(paths)
    crashed = [p for p, r in results if (r.get("error") or {}).get("code") == "worker_crashed"]
    assert len(crashed) <= 1 and replaced >= 1
    assert sum("result" in r for _, r in results) >= len(paths) - 1


def test_csv_report_resumes_after_a_cut(tree, tmp_path):
    import csv

    full, cut = tmp_path / "full.csv", tmp_path / "cut.csv"
    args = [tree["data"] / "originals", "--list", tree["list"], "--format", "csv", "--quiet"]
    run_scan(*args, "--report", full)
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # mid-row, as a power cut leaves it
    run_scan(*args, "--report", cut, "--resume")

    def rows(path):
        got = list(csv.DictReader(path.open(newline="")))
        assert got[-1]["status"] == "summary" and sum(r["status"] == "summary" for r in got) == 1
        return sorted((r["path"], r["status"], r["sha256"], r["matches"]) for r in got[:-1])

    assert rows(cut) == rows(full) and len(rows(full)) == N_ORIGINALS
    assert json.loads(list(csv.DictReader(cut.open(newline="")))[-1]["summary"])["resumed_rows"] > 0
