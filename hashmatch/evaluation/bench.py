"""Throughput on the user's own machine (the job behind `hashmatch bench`).

Three parts, each on generated benign data unless the user points at a folder of images:

* hashing: images/s per algorithm and image size, one thread and all cores, beside
  Pillow's bare decode rate; with ``compare`` the reference implementations (pdqhash,
  imagehash) on the same decoded images, with ratios;
* matching: per list size (100k, 1m, 10m...) and engine (flat, mih; with ``compare``
  FAISS IndexBinaryMultiHash 16x16 nflip 1 as python-threatexchange configures it):
  build time, memory per entry, single-query lookups/s at radius 31, and recall against
  numpy brute force;
* scan: files/s of a full scan (worker processes, sha256, PDQ, matching, report).

Timings take the median of a few repeats (shared machines are noisy); every number comes
from this run, so ratios compare like with like.
"""
from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from functools import partial
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from hashmatch.config import usable_cores
from hashmatch.errors import ConfigurationError
from hashmatch.index.engines import build_engine
from hashmatch.signals.hasher import Hasher

SIZE_NAMES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
IMAGE_SIZES = ((640, 480), (1024, 768), (4032, 3024))
HASH_ALGORITHMS = ("pdq", "phash", "dhash", "ahash", "sha256")
RADIUS = 31


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if part in SIZE_NAMES:
            sizes.append(SIZE_NAMES[part])
        elif part.isdigit() and int(part) > 0:
            sizes.append(int(part))
        else:
            raise ConfigurationError(f"list size {part!r}: use 100k, 1m, 10m or a number")
    return sizes


def _median_time(fn: Callable[[], Any], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def generated_jpegs(folder: str, size: tuple[int, int], count: int) -> list[str]:
    """`count` benign generated scenes resized to `size`, saved as JPEG quality 90."""
    from hashmatch.evaluation.synthetic import scene

    paths = []
    for i in range(count):
        path = os.path.join(folder, f"{size[0]}x{size[1]}_{i:03d}.jpg")
        scene(size[0], i).resize(size, Image.Resampling.BICUBIC).save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def _each(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """`fn` on every item (timed through functools.partial, bound to this iteration's values)."""
    return [fn(item) for item in items]


def _hash_many(hasher: Hasher, datas: list[bytes], threads: int) -> list[Any]:
    return list(hasher.hash_many(datas, threads=threads))


def bench_hashing(groups: dict[str, list[str]], compare: bool, step: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    threads = usable_cores()
    for label, paths in groups.items():
        datas = [open(p, "rb").read() for p in paths]
        step(f"decode {label}")

        def decode_all(datas: list[bytes] = datas) -> None:
            for data in datas:
                with Image.open(io.BytesIO(data)) as im:
                    im.load()

        decode_s = _median_time(decode_all) / len(datas)
        rows.append({"part": "hashing", "images": label, "what": "decode only (Pillow)", "threads": 1,
                     "images_per_s": 1 / decode_s})
        for algorithm in HASH_ALGORITHMS:
            step(f"{algorithm} {label}")
            hasher = Hasher((algorithm,))
            one = _median_time(partial(_each, hasher.hash, datas)) / len(datas)
            many = _median_time(partial(_hash_many, hasher, datas, threads)) / len(datas)
            row = {"part": "hashing", "images": label, "what": f"hashmatch {algorithm}", "threads": 1,
                   "images_per_s": 1 / one, f"images_per_s_{threads}_threads": 1 / many}
            rows.append(row)
        if compare:
            rows += _compare_hashing(label, datas, step)
    return rows


def _compare_hashing(label: str, datas: list[bytes], step: Callable[[str], None]) -> list[dict[str, Any]]:
    """Peers on the same decoded images, against hashmatch on the same decoded images."""
    rows = []
    images = []
    for data in datas:
        with Image.open(io.BytesIO(data)) as im:
            images.append(im.convert("RGB"))
    arrays = [np.asarray(im) for im in images]
    peers: list[tuple[str, str, Callable[[], Any], Callable[[], Any]]] = []
    try:
        import pdqhash

        from hashmatch import pdq_from_pixels
        peers.append(("pdq", "pdqhash.compute", lambda: [pdqhash.compute(a) for a in arrays],
                      lambda: [pdq_from_pixels(a) for a in arrays]))
    except ImportError:
        pass
    try:
        import imagehash

        for name, fn in (("phash", imagehash.phash), ("dhash", imagehash.dhash), ("ahash", imagehash.average_hash)):
            hasher = Hasher((name,))
            peers.append((name, f"imagehash.{fn.__name__}", partial(_each, fn, images),
                          partial(_each, hasher.hash, images)))
    except ImportError:
        pass
    for algorithm, peer_name, peer, ours in peers:
        step(f"compare {algorithm} {label}")
        t_peer = _median_time(peer) / len(images)
        t_ours = _median_time(ours) / len(images)
        rows.append({"part": "hashing-compare", "images": label, "what": f"{algorithm} on decoded pixels",
                     "peer": peer_name, "peer_images_per_s": 1 / t_peer, "hashmatch_images_per_s": 1 / t_ours,
                     "ratio": t_peer / t_ours})
    return rows


class _FaissMultiHash:
    """FAISS IndexBinaryMultiHash(256, 16, 16), nflip 1 (python-threatexchange's setup)."""

    name = "faiss-multihash"

    def __init__(self, codes: np.ndarray):
        import faiss

        faiss.omp_set_num_threads(1)
        self.index = faiss.IndexBinaryMultiHash(256, 16, 16)
        self.index.nflip = 1
        self.index.add(codes)

    def range_search(self, queries: np.ndarray, radius: int):
        lims, _, ids = self.index.range_search(queries, radius + 1)  # FAISS is strict (<)
        return [(np.sort(ids[a:b]), None) for a, b in zip(lims[:-1], lims[1:])]


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_matching(sizes: Sequence[int], compare: bool, step: Callable[[str], None],
                   queries: int = 200) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(1)
    for n in sizes:
        step(f"list of {n:,}")
        codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
        q = codes[rng.integers(0, n, queries)].copy()
        flips = rng.integers(0, 256, (queries, 12))
        for i in range(queries):
            for b in flips[i]:
                q[i, b // 8] ^= np.uint8(1 << (b % 8))
        truth = []
        for row in q[:20]:  # brute force for the recall check
            d = np.bitwise_count(codes ^ row).sum(axis=1)
            truth.append(np.flatnonzero(d <= RADIUS))
        kinds: list[tuple[str, Callable[[], Any]]] = [
            ("flat", partial(build_engine, codes, "flat", max_radius=RADIUS)),
            ("mih", partial(build_engine, codes, "mih", max_radius=RADIUS))]
        if compare:
            kinds.append(("faiss-multihash", partial(_FaissMultiHash, codes)))
        for name, make in kinds:
            step(f"{name} at {n:,}")
            rss, t = _rss(), time.perf_counter()
            engine = make()
            build_s = time.perf_counter() - t
            memory = engine.memory_bytes() if hasattr(engine, "memory_bytes") else max(0, _rss() - rss)
            sample = q if name == "mih" else q[: max(10, queries // (20 if n >= 1_000_000 else 4))]

            def single(engine=engine, sample=sample):
                for i in range(len(sample)):
                    engine.range_search(sample[i:i + 1], RADIUS)

            per_query = _median_time(single) / len(sample)
            got = engine.range_search(q[:20], RADIUS)
            found = sum(len(np.intersect1d(np.asarray(ids), t)) for (ids, _), t in zip(got, truth))
            total = sum(len(t) for t in truth)
            rows.append({"part": "matching", "entries": n, "engine": name, "build_s": build_s,
                         "bytes_per_entry": memory / n, "lookups_per_s": 1 / per_query,
                         "recall": found / total if total else 1.0})
            del engine
    return rows


def random_pdq_store(path: str | os.PathLike, entries: int, *, seed: int, extra: Sequence[str] = (),
                     category: str | None = None):
    """A new store at `path` holding one list ("bench") of `entries` uniform random PDQ
    hashes plus the `extra` hex hashes (e.g. of images a benchmark will find)."""
    from hashmatch.lists import ParsedList
    from hashmatch.store.store import Store

    codes = np.random.default_rng(seed).integers(0, 256, (entries, 32), dtype=np.uint8).tobytes().hex()
    hexes = [codes[64 * i:64 * i + 64] for i in range(entries)] + list(extra)
    return Store.create(path).import_list(ParsedList.from_hashes("pdq", hexes, category=category),
                                          name="bench", version="1")


def bench_scan(paths: Sequence[str], step: Callable[[str], None], entries: int = 100_000) -> list[dict[str, Any]]:
    from hashmatch.matching.matcher import Matcher
    from hashmatch.scan.scanner import ScanOptions, scan

    step("scan")
    with tempfile.TemporaryDirectory(prefix="hashmatch-bench-") as tmp:
        matcher = Matcher(random_pdq_store(os.path.join(tmp, "store"), entries, seed=2))
        folder = os.path.commonpath([os.path.dirname(p) for p in paths])
        t = time.perf_counter()
        summary = scan([folder], matcher, os.path.join(tmp, "report.jsonl"), ScanOptions())
        elapsed = time.perf_counter() - t
    return [{"part": "scan", "files": summary.files, "list_entries": entries, "workers": summary.workers,
             "files_per_s": summary.files / elapsed}]


def run(*, sizes: Sequence[int], compare: bool, images: str | None = None, image_count: int = 20,
        scan_files: int = 100, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The whole benchmark; returns {"machine": ..., "rows": [...]}."""
    step = progress or (lambda _: None)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hashmatch-bench-") as tmp:
        if images:
            from hashmatch.evaluation.evaluate import list_originals

            found = list_originals(images)[:image_count]
            if not found:
                raise ConfigurationError(f"no images in {images}")
            groups = {os.path.basename(os.path.abspath(images)): found}
        else:
            groups = {}
            for size in IMAGE_SIZES:
                step(f"generating {size[0]}x{size[1]}")
                count = image_count if size[0] < 2000 else max(3, image_count // 5)
                folder = os.path.join(tmp, f"{size[0]}x{size[1]}")
                os.makedirs(folder)
                groups[f"{size[0]}x{size[1]}"] = generated_jpegs(folder, size, count)
        rows += bench_hashing(groups, compare, step)
        rows += bench_matching(sizes, compare, step)
        scan_folder = os.path.join(tmp, "scan")
        os.makedirs(scan_folder)
        step("generating scan files")
        rows += bench_scan(generated_jpegs(scan_folder, (1024, 768), scan_files), step)
    return {"machine": {"cores": usable_cores(), "cpu": _cpu_name()}, "rows": rows}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _markdown(header: Sequence[str], body: Iterable[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|",
            *("| " + " | ".join(cells) + " |" for cells in body), ""]


def tables(result: dict[str, Any]) -> str:
    """Markdown tables of a run."""
    rows = result["rows"]
    cores = result["machine"]["cores"]
    out = [f"Machine: {result['machine']['cpu']}, {cores} usable cores", ""]
    part = lambda name: [r for r in rows if r["part"] == name]  # noqa: E731
    if part("hashing"):
        out += _markdown(("images", "what", "images/s, 1 thread", f"images/s, {cores} threads"), (
            (r["images"], r["what"], f"{r['images_per_s']:,.1f}",
             f"{r[f'images_per_s_{cores}_threads']:,.1f}" if f"images_per_s_{cores}_threads" in r else "")
            for r in part("hashing")))
    if part("hashing-compare"):
        out += _markdown(("images", "hash", "peer", "peer images/s", "hashmatch images/s", "ratio"), (
            (r["images"], r["what"], r["peer"], f"{r['peer_images_per_s']:,.1f}",
             f"{r['hashmatch_images_per_s']:,.1f}", f"{r['ratio']:.2f}x") for r in part("hashing-compare")))
    if part("matching"):
        flat = {r["entries"]: r["lookups_per_s"] for r in part("matching") if r["engine"] == "flat"}
        out += _markdown(("entries", "engine", "build s", "bytes/entry", "lookups/s", "vs flat", "recall"), (
            (f"{r['entries']:,}", r["engine"], f"{r['build_s']:.2f}", f"{r['bytes_per_entry']:.1f}",
             f"{r['lookups_per_s']:,.0f}", f"{r['lookups_per_s'] / flat[r['entries']]:.1f}x", f"{r['recall']:.3f}")
            for r in part("matching")))
    for r in part("scan"):
        out.append(f"Scan: {r['files']} JPEGs of 1024x768 against {r['list_entries']:,} PDQ entries, "
                   f"{r['workers']} workers: {r['files_per_s']:.1f} files/s")
    return "\n".join(out)


def plots(result: dict[str, Any], folder: str) -> list[str]:
    """PNG charts: lookups/s against list size per engine; images/s per algorithm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hashmatch.evaluation.evaluate import _save

    os.makedirs(folder, mode=0o700, exist_ok=True)
    written = []
    matching = [r for r in result["rows"] if r["part"] == "matching"]
    if matching:
        fig, ax = plt.subplots(figsize=(7, 5))
        for engine in dict.fromkeys(r["engine"] for r in matching):
            pts = sorted((r["entries"], r["lookups_per_s"]) for r in matching if r["engine"] == engine)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=engine)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("list size (PDQ entries)")
        ax.set_ylabel("single lookups/s (radius 31)")
        ax.legend()
        fig.tight_layout()
        written.append(_save(fig, folder, "lookups.png"))
    hashing = [r for r in result["rows"] if r["part"] == "hashing"]
    if hashing:
        fig, ax = plt.subplots(figsize=(9, 5))
        labels = list(dict.fromkeys(r["images"] for r in hashing))
        whats = list(dict.fromkeys(r["what"] for r in hashing))
        width = 0.8 / len(labels)
        for k, label in enumerate(labels):
            values = {r["what"]: r["images_per_s"] for r in hashing if r["images"] == label}
            ax.bar(np.arange(len(whats)) + k * width, [values.get(w, 0) for w in whats], width, label=label)
        ax.set_xticks(np.arange(len(whats)) + 0.4 - width / 2, whats, rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("images/s, one thread")
        ax.legend()
        fig.tight_layout()
        written.append(_save(fig, folder, "hashing.png"))
    return written
