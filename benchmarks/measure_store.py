"""Measure list import and store opening at scale (not a pytest file; a measurement script).

    python benchmarks/measure_store.py --entries 10000000 [--dir /tmp/hm-store-bench]

Writes a CSV of N random PDQ hashes (``hash,algorithm,category,id``; the list generation
itself is not timed), then times each step a platform goes through: parsing the CSV
(read_list), importing it into a new store (Store.import_list: SQLite metadata, code
arrays, checksums, fsync), re-importing it as a new version (replacing every entry),
opening the store (sha256 of every file), building the matcher's engines, and one query.
Prints a markdown table. The directory is removed at the end.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from hashmatch.lists import read_list
from hashmatch.matching.matcher import Matcher
from hashmatch.store.store import Store


def write_csv(path: Path, n: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "w") as out:
        out.write("hash,algorithm,category,id\n")
        for start in range(0, n, 1_000_000):
            block = rng.integers(0, 256, (min(1_000_000, n - start), 32), dtype=np.uint8)
            hexes = block.tobytes().hex()
            out.write("".join(f"{hexes[64 * i:64 * i + 64]},pdq,test,e{start + i}\n" for i in range(len(block))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="hm-store-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        csv_path = root / "list.csv"
        write_csv(csv_path, args.entries)
        rows = []

        def step(name, fn):
            t = time.perf_counter()
            value = fn()
            rows.append((name, time.perf_counter() - t))
            return value

        parsed = step("parse CSV (read_list)", lambda: read_list(csv_path))
        store = Store.create(root / "store")
        store = step("import into a new store", lambda: store.import_list(parsed, name="bench", version="1"))
        rows.append(("= CSV to store", rows[0][1] + rows[1][1]))
        store = step("re-import as version 2 (replaces all)",
                     lambda: store.import_list(parsed, name="bench", version="2"))
        store = step("open store (verify sha256 of every file)", lambda: Store.open(root / "store"))
        matcher = step("build engines (Matcher)", lambda: Matcher(store))
        rows.append(("= open for matching", rows[-2][1] + rows[-1][1]))
        step("one lookup", lambda: matcher.match_hashes({"pdq": parsed.hashes[12345 % len(parsed)]}))
        print(f"| step ({args.entries:,} PDQ entries) | seconds |\n|---|---|")
        for name, seconds in rows:
            print(f"| {name} | {seconds:.2f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
