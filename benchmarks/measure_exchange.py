"""An NCMEC first fetch and an incremental one, as a platform runs them: `hashmatch exchange
fetch` as a process against a loopback NCMEC fake (tests/exchangefakes.py, built to
../shared/EXCHANGES.md, 1,000 records a page), with lookups on the store while it runs.

1. first fetch of N records (default 1M; a tenth with a PDQ beside the MD5): wall time,
   the fetching process's peak RSS, lookups during it and their errors;
2. then 1,000 additions and 100 deletions: wall time, and the bytes the new generation
   wrote (an overlay: O(change)).

    python benchmarks/measure_exchange.py [--records 1000000] [--json FILE]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' loopback fakes
from exchangefakes import NcmecFake  # noqa: E402

from hashmatch.matching.matcher import Matcher  # noqa: E402
from hashmatch.store.store import Store  # noqa: E402

T0 = 1_600_000_000


def _records(start: int, count: int, at: int | None = None) -> list[tuple]:
    return [(at if at is not None else T0 + i // 1000, 40 + i % 7, i, "image",
             {"md5": hashlib.md5(str(i).encode()).hexdigest(),
              **({"pdq": hashlib.sha256(str(i).encode()).hexdigest()} if i % 10 == 0 else {})}, "A1")
            for i in range(start, start + count)]


def _fetch(root: Path, peak: list[int]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "hashmatch.cli", "exchange", "fetch", "--store", str(root)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            peak[0] = max(peak[0], watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    out, err = process.communicate()
    return time.monotonic() - started, subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _lookups(root: Path, stop: threading.Event, counts: dict[str, int]) -> None:
    probe = hashlib.md5(b"7").hexdigest()
    while not stop.is_set():
        try:
            Matcher(Store.open(root)).match_hashes({"md5": probe})
            counts["lookups"] += 1
        except Exception as exc:  # noqa: BLE001 - counted: the measurement reports them
            counts["errors"] += 1
            print("lookup error:", type(exc).__name__, exc, file=sys.stderr)
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    fake = NcmecFake()
    fake.records = _records(0, args.records)
    with tempfile.TemporaryDirectory(prefix="hashmatch-exchange-") as folder:
        root = Path(folder) / "store"
        credentials = Path(folder) / "ncmec.cred"
        credentials.write_text("u:p\n")
        os.chmod(credentials, 0o600)
        Store.create(root)
        done = subprocess.run([sys.executable, "-m", "hashmatch.cli", "exchange", "add", "ncmec", "--type", "ncmec",
                               "--list", "ncmec", "--store", str(root), "--url", fake.base, "--credentials",
                               str(credentials)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        counts = {"lookups": 0, "errors": 0}
        stop = threading.Event()
        looker = threading.Thread(target=_lookups, args=(root, stop, counts))
        looker.start()
        peak = [0]
        first_s, first = _fetch(root, peak)
        stop.set()
        looker.join()
        assert first.returncode == 0, first.stderr[-2000:]
        summary = json.loads(first.stdout.splitlines()[0])
        store = Store.open(root)
        result = {"first": {"records": args.records, "entries": sum(i.entries for i in store.lists()),
                            "seconds": round(first_s, 1), "peak_rss_mib": round(peak[0] / 2**20),
                            "generations": store.generation, "added": summary["added"],
                            "lookups_during": counts["lookups"], "lookup_errors": counts["errors"]}}
        before = {p.name: p.stat().st_size for p in root.iterdir() if p.is_file()}
        now = int(time.time())  # changes made after the first fetch: in the next window
        fake.records += _records(args.records, 1000, at=now)
        fake.records += [(now, 40 + i % 7, i, "deletedImage", {}, "") for i in range(100)]
        time.sleep(1.1)  # the next window ends after them
        second_s, second = _fetch(root, [0])
        assert second.returncode == 0, second.stderr[-2000:]
        after = {p.name: p.stat().st_size for p in root.iterdir() if p.is_file()}
        written = sum(size for name, size in after.items() if name not in before)
        summary = json.loads(second.stdout.splitlines()[0])
        result["incremental"] = {"added": summary["added"], "deleted": summary["deleted"],
                                 "seconds": round(second_s, 2), "new_files_bytes": written,
                                 "store_bytes": sum(after.values())}
    fake.shutdown()
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
