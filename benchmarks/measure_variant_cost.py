"""What --crop-robust and --trim-borders cost (issue 27), beside the plain path, as a
platform runs it:

1. hashing time per image (`Hasher` on JPEG bytes of the photo corpus, 1024 px): plain
   PDQ, + trim-borders (the trimmed picture and the pictures found inside), + crop-robust
   (35 zoom-out variants);
2. lookups per second on a 10M-entry held-out store opened from disk (heldout.py: uniform,
   near-duplicate families, PDQ-like correlated codes, repeats; imported with `hashmatch
   list import` as a process), one thread: `Matcher.match_record` of an upload's plain
   PDQ, then of the same with its 35 zoom-out variants (`Matcher(crop_robust=True)`: every
   variant searched at crop_search_radius 48, the default; and at 40 and 31). Queries are
   listed codes with 0-24 bits flipped (plain) and variant codes no entry is near (those of
   a typical upload), each with a mask of 220 reliable bits (the median measured on the
   photo corpus is about that).

    python benchmarks/measure_variant_cost.py --dir /tmp/hm-10m [--entries 10000000] [--keep] [--crop-uploads 300]
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from heldout import flip  # noqa: E402
from measure_scale import write_list  # noqa: E402

_MATCH = r"""
import json, sys, time
import numpy as np
import hashmatch
from hashmatch.decode.zoom_out import AMOUNTS, ANCHORS, variant_name
store, queries = hashmatch.Store.open(sys.argv[1]), np.load(sys.argv[2])
rng = np.random.default_rng(7)
names = [variant_name(a, f) for f in AMOUNTS for a in ANCHORS]
out = {}
for label, options in (("plain", {}), ("crop_robust", {"crop_robust": True}),
                       ("crop_robust_40", {"crop_robust": True, "crop_search_radius": 40}),
                       ("crop_robust_31", {"crop_robust": True, "crop_search_radius": 31})):
    matcher = hashmatch.Matcher(store, **options)
    records = []
    for code in queries[:2000 if not options else int(sys.argv[3])]:
        record = {"pdq": code.tobytes().hex(), "pdq_quality": 100}
        if options:
            record["pdq_crops"] = {n: rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for n in names}
            unsure = [sum(1 << int(b) for b in rng.choice(256, 36, replace=False)) for _ in names]
            record["pdq_crop_masks"] = {n: f"{(2**256 - 1) ^ u:064x}" for n, u in zip(names, unsure)}
        records.append(record)
    for record in records[:20]:
        matcher.match_record(record)
    started = time.perf_counter()
    matched = sum(matcher.match_record(r).matched for r in records)
    out[label] = {"uploads_per_s": len(records) / (time.perf_counter() - started), "matched": matched}
print(json.dumps(out))
"""


def _hashing(photos: int) -> dict[str, float]:
    import photo_corpus

    from hashmatch import Hasher

    images = []
    for _, image in photo_corpus.load(photos):
        image.thumbnail((1024, 1024))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        images.append(buffer.getvalue())
    out = {}
    for label, options in (("plain", {}), ("trim_borders", {"trim_borders": True}),
                           ("crop_robust", {"crop_robust": True})):
        hasher = Hasher(("pdq",), **options)
        hasher.hash(images[0])
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for data in images:
                hasher.hash(data)
            best = min(best, (time.perf_counter() - started) / len(images))
        out[label] = best * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--crop-uploads", type=int, default=300, help="uploads timed per crop-robust setting")
    args = parser.parse_args()
    hashing = _hashing(args.photos) if args.photos else {}
    print("| hashing one image (1024 px JPEG, best of 3 over the photos) | ms | ratio |\n|---|---|---|")
    for label, ms in hashing.items():
        print(f"| {label} | {ms:.1f} | {ms / hashing['plain']:.2f}x |")  # --photos 0: skipped
    root = args.dir
    root.mkdir(parents=True, exist_ok=True)
    csv_path, queries_path, store = root / "list.csv", root / "queries.npy", root / "store"
    try:
        if not csv_path.exists():
            write_list(csv_path, queries_path, args.entries)
        if not store.exists():
            subprocess.run([sys.executable, "-m", "hashmatch.cli", "list", "import", str(csv_path), "--store",
                            str(store), "--name", "heldout", "--version", "1"], check=True, cwd="/")
        queries = np.load(queries_path)
        np.save(root / "q.npy", flip(queries[:2000], np.random.default_rng(3), 0, 24))
        done = subprocess.run([sys.executable, "-c", _MATCH, str(store), str(root / "q.npy"), str(args.crop_uploads)],
                              check=True, cwd="/",
                              capture_output=True, text=True)
        got = json.loads(done.stdout.strip().splitlines()[-1])
        plain, robust = got["plain"]["uploads_per_s"], got["crop_robust"]["uploads_per_s"]
        print(f"\n| {args.entries:,} held-out entries, one thread | uploads/s | ratio |\n|---|---|---|")
        print(f"| plain PDQ (1 search at 31) | {plain:,.0f} | 1.00x |")
        print(f"| --crop-robust (1 search at 31, 35 at 48) | {robust:,.0f} | {robust / plain:.3f}x |")
        for radius in (40, 31):
            rate = got[f"crop_robust_{radius}"]["uploads_per_s"]
            print(f"| --crop-robust --crop-search-radius {radius} (1 + 35 searches) | {rate:,.0f} | "
                  f"{rate / plain:.3f}x |")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
