"""100M entries on one box (issue 15), measured as a platform runs it (not a pytest file:
a run takes ~30 minutes and ~30 GB of disk):

    python benchmarks/measure_scale.py --entries 100000000 --dir /tmp/hm-100m [--keep]

1. writes a held-out-style CSV (heldout.heldout_chunks: uniform, near-duplicate families,
   PDQ-like correlated codes, 5% repeats; `hash,algorithm,category,id`), untimed;
2. imports it with `hashmatch list import` as a process (wall time, peak RSS);
3. in a fresh process opens the store as `Matcher` does, then single queries through
   `Matcher.match_hashes` on one thread and on two (queries: listed codes with 0-24 bits
   flipped), then the same queries batched (`match_hashes_many`, two threads), the
   process's resident memory after opening and its peak, and checks the
   answers of a sample of queries against a brute-force scan of every code (exact).

Prints a markdown table. Targets: import <= 15 min, RSS while matching <= 12 GiB,
>= 1,500 queries/s on two threads, no difference from brute force.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from heldout import flip, heldout_chunks  # noqa: E402

QUERIES = 6_000
CHECKED = 30

_MATCH = r"""
import json, sys, threading, time
import numpy as np
from hashmatch import _hamming
from hashmatch.matching.matcher import Matcher
from hashmatch.store.store import Store

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

store_path, queries_path, checked = sys.argv[1], sys.argv[2], int(sys.argv[3])
queries = np.load(queries_path)
hexes = [q.tobytes().hex() for q in queries]
started = time.perf_counter()
matcher = Matcher(Store.open(store_path))
out = {"open_s": time.perf_counter() - started, "rss_open": rss("VmRSS:")}
# Share of the resident memory in transparent huge pages: the engines' random reads miss
# the TLB on almost every line without them.
for line in open("/proc/self/smaps_rollup"):
    if line.startswith(("Rss:", "AnonHugePages:", "FilePmdMapped:")):
        out[line.split(":")[0]] = int(line.split()[1]) * 1024
for h in hexes[:300]:
    matcher.match_hashes({"pdq": h})
n = len(hexes) // 2
started = time.perf_counter()
results = [matcher.match_hashes({"pdq": h}) for h in hexes[:n]]
out["one_thread_qps"] = n / (time.perf_counter() - started)
out["matched"] = sum(r.status == "match" for r in results) / n
def run(part):
    for h in part:
        matcher.match_hashes({"pdq": h})
rest = hexes[n:]
threads = [threading.Thread(target=run, args=(rest[i::2],)) for i in range(2)]
started = time.perf_counter()
for t in threads: t.start()
for t in threads: t.join()
out["two_thread_qps"] = len(rest) / (time.perf_counter() - started)
started = time.perf_counter()
list(matcher.match_hashes_many(({"pdq": h} for h in hexes), threads=2))
out["many_qps"] = len(hexes) / (time.perf_counter() - started)
array = matcher.store.arrays["pdq"]
wrong = 0
for i in range(checked):
    ids, dists = _hamming.hamming_range_flat(array.codes, queries[i], 31)
    want = sorted((int(array.ids[p]), int(d)) for p, d in zip(ids, dists))
    got = sorted((m.store_id, m.distance) for m in matcher.match_hashes({"pdq": hexes[i]}).matches)
    wrong += got != want
out["checked"], out["wrong"] = checked, wrong
out["rss_peak"] = rss("VmHWM:")
out["entries"] = int(len(array.ids))
print(json.dumps(out))
"""


def write_list(path: Path, queries_path: Path, n: int) -> None:
    rng = np.random.default_rng(99)
    picked = []
    offset = 0
    with open(path, "w") as out:
        out.write("hash,algorithm,category,id\n")
        for codes in heldout_chunks(n, seed=1):
            hexes = codes.tobytes().hex()
            out.write("".join(f"{hexes[64 * i:64 * i + 64]},pdq,test,e{offset + i}\n" for i in range(len(codes))))
            picked.append(codes[rng.integers(0, len(codes), QUERIES * len(codes) // n + 1)])
            offset += len(codes)
    members = np.concatenate(picked)[:QUERIES]
    np.save(queries_path, flip(members[rng.permutation(len(members))], rng, 0, 24))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000_000)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--keep", action="store_true", help="keep the list and the store")
    args = parser.parse_args()
    root = args.dir
    root.mkdir(parents=True, exist_ok=True)
    csv_path, queries_path, store = root / "list.csv", root / "queries.npy", root / "store"
    rows: list[tuple[str, str]] = []
    try:
        if not csv_path.exists():
            started = time.perf_counter()
            write_list(csv_path, queries_path, args.entries)
            print(f"list written in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        shutil.rmtree(store, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hashmatch.cli", "list", "import", str(csv_path), "--store", str(store),
                        "--name", "heldout", "--version", "1"], check=True, cwd="/")
        import_s = time.perf_counter() - started
        import_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        rows += [("`hashmatch list import` (CSV to store)", f"{import_s:.0f} s ({import_s / 60:.1f} min)"),
                 ("peak RSS of the import", f"{import_rss / 2**30:.1f} GiB"),
                 ("store on disk", f"{sum(f.stat().st_size for f in store.iterdir()) / 2**30:.1f} GiB")]
        done = subprocess.run([sys.executable, "-c", _MATCH, str(store), str(queries_path), str(CHECKED)],
                              check=True, cwd="/", capture_output=True, text=True)
        got = json.loads(done.stdout.strip().splitlines()[-1])
        rows += [("entries", f"{got['entries']:,}"), ("open the store (verify + engines)", f"{got['open_s']:.0f} s"),
                 ("RSS after opening", f"{got['rss_open'] / 2**30:.1f} GiB"),
                 ("peak RSS while matching", f"{got['rss_peak'] / 2**30:.1f} GiB"),
                 ("of the RSS after opening, in huge pages",
                  f"{(got['AnonHugePages'] + got['FilePmdMapped']) / max(1, got['Rss']):.0%}"),
                 ("`Matcher.match_hashes`, 1 thread", f"{got['one_thread_qps']:,.0f} q/s"),
                 ("the same, 2 threads", f"{got['two_thread_qps']:,.0f} q/s"),
                 ("`match_hashes_many(threads=2)` (batched)", f"{got['many_qps']:,.0f} q/s"),
                 ("queries matched", f"{got['matched']:.1%}"),
                 ("answers differing from brute force", f"{got['wrong']} of {got['checked']}")]
        print(f"| {args.entries:,} held-out PDQ entries | |\n|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
