"""Run saved fuzz inputs, or freshly generated hostile cases, through the Hasher once
each, without atheris: the way to exercise an ASan/UBSan build of the kernels (atheris
with gcc's libasan preloaded loses its coverage feedback, see README.md).

    python benchmarks/fuzz/replay.py DIR...                    # every file in the folders
    python benchmarks/fuzz/replay.py --generate 3000 --seeds 1,2,3

Each input is hashed with two hashers (PDQ full + trim + the 64-bit hashes + MD5, and PDQ
cimg512 with the dihedral variants) so both PDQ paths run. Prints the outcome counts;
exits 1 if any input raised something other than an ImageError (listed).
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time
import traceback
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hashmatch

HASHERS = (
    hashmatch.Hasher(("pdq", "phash", "dhash", "ahash", "md5"), trim_borders=True),
    hashmatch.Hasher(("pdq", "phash", "dhash", "ahash"), dihedral=True, pdq_mode="cimg512"),
)


def inputs(args):
    for folder in args.dirs:
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    yield path, handle.read()
    if args.generate:
        import corpus

        for seed in (int(s) for s in args.seeds.split(",")):
            for name, data in corpus.cases(seed=seed, count=args.generate):
                yield f"seed {seed}: {name}", data


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="*")
    parser.add_argument("--generate", type=int, default=0, help="also run corpus.cases(seed, N) per seed")
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    outcomes: collections.Counter[str] = collections.Counter()
    escaped = []
    count = 0
    start = time.time()
    for label, data in inputs(args):
        count += 1
        for hasher in HASHERS:
            try:
                hasher.hash(data)
                outcomes["ok"] += 1
            except hashmatch.ImageError as exc:
                outcomes[exc.code] += 1
            except Exception:  # noqa: BLE001 - what this script reports
                escaped.append((label, traceback.format_exc()))
    print(f"{count} inputs x {len(HASHERS)} hashers in {time.time() - start:.1f} s: {dict(outcomes)}")
    for label, text in escaped:
        print(f"--- not an ImageError: {label}\n{text}")
    return 1 if escaped else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
