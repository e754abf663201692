"""Measure default match thresholds for pHash, dHash and aHash (and PDQ at its fixed 31).

    python benchmarks/measure_thresholds.py --originals 1000 --seed 20240601 --workers 2

Not a pytest file (pytest only collects ``test_*``); a reproducible measurement script.

What it does
------------
1. Generates ``--originals`` benign synthetic "photo-like" scenes, deterministic per
   (seed, index): sizes from 320 to 1024 px on the long side in several aspect ratios;
   a background field (linear/radial gradient plus multi-octave value noise) mapped through
   a random palette; 10-150 overlapping translucent shapes (rectangles, ellipses, polygons,
   lines) of log-uniform sizes on three layers; blurred-noise luminance texture; sensor
   grain; optional slight softening. No real photos, nothing downloaded.
2. Applies the benign transforms a platform sees on re-uploads (JPEG re-encode, resize,
   crop, caption / watermark text, brightness / contrast / gamma, blur, grayscale, a
   combined crop+resize+JPEG, and a horizontal flip, which 64-bit hashes are not expected to
   survive and which is reported but never used to choose a threshold).
3. Hashes everything with ``hashmatch.Hasher(("pdq", "phash", "dhash", "ahash"))`` in
   ``--workers`` processes.
4. Genuine distances: each transformed copy against its own original. Impostor distances:
   every original against every other original (N(N-1)/2 pairs), and, as a larger and
   more realistic but correlated set, every transformed copy against every *other*
   original ("cross" pairs: an unrelated upload against a list entry).
5. Prints markdown: the impostor low tail, the false-match rate (FMR) at thresholds 0..16,
   genuine recall per transform at 0..16, a summary at the recommended thresholds, and the
   recommendation.

Recommendation rule (per 64-bit algorithm): the largest threshold t such that
  * t <= (smallest impostor distance seen, over both pair sets) - MARGIN_BITS,
  * the empirical FMR at t is below FMR_CEILING on both pair sets, and
  * a normal fit of the originals' impostor distances puts P(D <= t) below 1e-8
    (0.1 false candidate per query on a 10M-entry list);
rounded down to even for pHash, whose hashes are balanced (32 bits set) so that every
distance is even. The per-pair FMR a real list needs is far smaller than a corpus of this
size can resolve (1e-7 is one false candidate per query against 10M entries), hence the
extrapolation; in the range the corpus does resolve, the normal fit matches or
overestimates the empirical tail, but treat it as an order of magnitude. When no t >= 0
passes, the script says 0 and warns that the hash should not be a standalone match signal.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from hashmatch.evaluation.synthetic import scene
from hashmatch.evaluation.transforms import caption, crop, gamma, jpeg, resize, watermark

ALGORITHMS = ("pdq", "phash", "dhash", "ahash")
SHORT_ALGORITHMS = ("phash", "dhash", "ahash")  # 64-bit, thresholds chosen here
BITS = {"pdq": 256, "phash": 64, "dhash": 64, "ahash": 64}
PDQ_THRESHOLD = 31  # Meta's rule, fixed
THRESHOLDS = range(0, 17)
MARGIN_BITS = 3  # the default sits at least this far below the closest impostor pair
FMR_CEILING = 1e-5
LIST_SIZE = 10_000_000  # list size used to turn a per-pair FMR into false candidates per query
EXTRAPOLATED_CEILING = 0.1 / LIST_SIZE  # at most 0.1 false candidate per query, extrapolated

# name -> description; order is the report order. "hflip" is excluded from the choice.
TRANSFORMS = {
    "jpeg_q30": "JPEG re-encode, quality 30",
    "jpeg_q50": "JPEG re-encode, quality 50",
    "jpeg_q75": "JPEG re-encode, quality 75",
    "resize_0.5": "resize to 0.5x (Lanczos)",
    "resize_0.75": "resize to 0.75x (Lanczos)",
    "resize_1.5": "resize to 1.5x (bicubic)",
    "crop_2pct": "crop 2% off each side",
    "crop_5pct": "crop 5% off each side",
    "caption": "one line of white text with dark outline at the bottom (default font, ~4% of height)",
    "watermark": "50%-opaque text in the bottom-right corner (default font, ~5% of height)",
    "bright_+20": "brightness x1.2",
    "bright_-20": "brightness x0.8",
    "contrast_+30": "contrast x1.3",
    "contrast_-30": "contrast x0.7",
    "gamma_0.8": "gamma 0.8 (lighter mid-tones)",
    "gamma_1.25": "gamma 1.25 (darker mid-tones)",
    "blur_r1": "Gaussian blur, radius 1",
    "blur_r2": "Gaussian blur, radius 2",
    "grayscale": "convert to 8-bit grayscale",
    "combo": "crop 2% + resize 0.75x + JPEG q75",
    "hflip": "horizontal flip (expected to fail; not used for the choice)",
}
EXCLUDED_FROM_CHOICE = {"hflip"}

def transforms(image: Image.Image, seed: int, index: int) -> dict[str, object]:
    """name -> hashable source (PIL.Image, or JPEG bytes), in TRANSFORMS order."""
    rng = np.random.default_rng([seed, index, 1])
    lanczos, bicubic = Image.Resampling.LANCZOS, Image.Resampling.BICUBIC
    out: dict[str, object] = {
        "jpeg_q30": jpeg(image, 30),
        "jpeg_q50": jpeg(image, 50),
        "jpeg_q75": jpeg(image, 75),
        "resize_0.5": resize(image, 0.5, lanczos),
        "resize_0.75": resize(image, 0.75, lanczos),
        "resize_1.5": resize(image, 1.5, bicubic),
        "crop_2pct": crop(image, 0.02),
        "crop_5pct": crop(image, 0.05),
        "caption": caption(image, rng),
        "watermark": watermark(image, rng),
        "bright_+20": ImageEnhance.Brightness(image).enhance(1.2),
        "bright_-20": ImageEnhance.Brightness(image).enhance(0.8),
        "contrast_+30": ImageEnhance.Contrast(image).enhance(1.3),
        "contrast_-30": ImageEnhance.Contrast(image).enhance(0.7),
        "gamma_0.8": gamma(image, 0.8),
        "gamma_1.25": gamma(image, 1.25),
        "blur_r1": image.filter(ImageFilter.GaussianBlur(1)),
        "blur_r2": image.filter(ImageFilter.GaussianBlur(2)),
        "grayscale": image.convert("L"),
        "combo": jpeg(resize(crop(image, 0.02), 0.75, lanczos), 75),
        "hflip": ImageOps.mirror(image),
    }
    assert list(out) == list(TRANSFORMS)
    return out


# --------------------------------------------------------------------------- hashing

_HASHER = None


def _worker_init() -> None:
    global _HASHER
    import hashmatch
    _HASHER = hashmatch.Hasher(ALGORITHMS)


def _hash_one(job: tuple[int, int]) -> tuple[int, tuple[int, int], dict[str, tuple[tuple[str, ...], float]]]:
    """Generate original `index`, its transforms, and hash all of them."""
    seed, index = job
    assert _HASHER is not None
    original = scene(seed, index)
    sources = {"original": original, **transforms(original, seed, index)}
    hashed = {}
    for name, source in sources.items():
        result = _HASHER.hash(source)
        hashed[name] = (tuple(result.hashes[a] for a in ALGORITHMS), float(result.pdq_quality))
    return index, original.size, hashed


def _words(hex_hash: str) -> list[int]:
    """A hex hash as big-endian 64-bit words."""
    return [int(hex_hash[i:i + 16], 16) for i in range(0, len(hex_hash), 16)]


# --------------------------------------------------------------------------- statistics

def _popcount_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance between broadcast (..., words) uint64 arrays."""
    return np.bitwise_count(a ^ b).sum(axis=-1, dtype=np.int64)


def impostor_histograms(orig: np.ndarray, trans: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(originals-vs-originals histogram over N(N-1)/2 pairs,
        transformed-copy-vs-other-originals histogram over T*N*(N-1) pairs)."""
    n = orig.shape[0]
    hist_oo = np.zeros(bits + 1, np.int64)
    for i in range(n - 1):
        hist_oo += np.bincount(_popcount_rows(orig[i], orig[i + 1:]), minlength=bits + 1)
    hist_x = np.zeros(bits + 1, np.int64)
    off_diagonal = ~np.eye(n, dtype=bool)
    chunk = max(1, 2_000_000 // (n * orig.shape[1]))
    for t in range(trans.shape[0]):
        for start in range(0, n, chunk):
            q = trans[t, start:start + chunk]  # (c, words)
            d = _popcount_rows(q[:, None, :], orig[None, :, :])  # (c, n)
            hist_x += np.bincount(d[off_diagonal[start:start + chunk]], minlength=bits + 1)
    return hist_oo, hist_x


def quantile_from_hist(hist: np.ndarray, q: float) -> int:
    cdf = np.cumsum(hist)
    return int(np.searchsorted(cdf, q * cdf[-1], side="left"))


def fmr(hist: np.ndarray, t: int) -> float:
    return float(hist[: t + 1].sum() / hist.sum())


def normal_tail(hist: np.ndarray, t: int) -> float:
    """P(D <= t) under a normal fit (continuity-corrected) of the impostor distances."""
    d = np.arange(len(hist))
    total = hist.sum()
    mean = float((hist * d).sum() / total)
    sd = float(math.sqrt((hist * (d - mean) ** 2).sum() / total))
    return NormalDist(mean, sd).cdf(t + 0.5)


def recommend(hist_oo: np.ndarray, hist_x: np.ndarray, genuine: np.ndarray) -> tuple[int, str]:
    min_oo = int(np.nonzero(hist_oo)[0][0])
    min_x = int(np.nonzero(hist_x)[0][0])
    limit = min(min_oo, min_x) - MARGIN_BITS
    t = limit
    while t >= 0 and not (fmr(hist_oo, t) < FMR_CEILING and fmr(hist_x, t) < FMR_CEILING):
        t -= 1
    t = max(t, 0)
    why = (f"closest impostor pair at {min_oo} bits (originals) / {min_x} bits (cross); "
           f"margin {MARGIN_BITS} bits -> at most {limit}; FMR < {FMR_CEILING:g} on both sets")
    # A corpus this size cannot see the tail a 10M-entry list reaches; cap by the
    # extrapolated tail too (a small corpus otherwise yields a loose threshold).
    extrapolated = max_t_extrapolated(hist_oo, EXTRAPOLATED_CEILING)
    if extrapolated is None:
        why += f"; normal-fit FMR >= {EXTRAPOLATED_CEILING:g} even at 0"
        t = 0
    elif extrapolated < t:
        why += f"; normal-fit FMR < {EXTRAPOLATED_CEILING:g} only up to {extrapolated}"
        t = extrapolated
    else:
        why += f"; normal-fit FMR < {EXTRAPOLATED_CEILING:g} up to {extrapolated}"
    # pHash (like PDQ) thresholds at the median, so every hash has exactly half its bits
    # set and every distance is even: an odd threshold behaves like the even one below it.
    if not (hist_oo[1::2].any() or hist_x[1::2].any() or (genuine % 2).any()) and t % 2:
        t -= 1
        why += f"; every distance is even (balanced hashes), so {t + 1} is stated as {t}"
    return t, why


def max_t_extrapolated(hist: np.ndarray, ceiling: float) -> int | None:
    """Largest t whose normal-fit FMR is below `ceiling` (None if even t=0 is not)."""
    ok = [t for t in range(len(hist)) if normal_tail(hist, t) < ceiling]
    return max(ok) if ok else None


# --------------------------------------------------------------------------- report

def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _sci(x: float) -> str:
    return "0" if x == 0 else f"{x:.2e}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--originals", type=int, default=1000, help="number of generated originals (default 1000)")
    parser.add_argument("--seed", type=int, default=20240601, help="corpus seed (default 20240601)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--json", metavar="PATH", help="also write raw histograms and distances as JSON")
    parser.add_argument("--save-samples", metavar="DIR", help="write the first 8 originals as PNG for inspection")
    args = parser.parse_args(argv)
    if args.originals < 2:
        parser.error("--originals must be at least 2")

    import hashmatch  # noqa: F401  (fail early if not installed)

    started = time.perf_counter()
    n = args.originals
    names = list(TRANSFORMS)
    words = {a: BITS[a] // 64 for a in ALGORITHMS}
    orig = {a: np.zeros((n, words[a]), np.uint64) for a in ALGORITHMS}
    trans = {a: np.zeros((len(names), n, words[a]), np.uint64) for a in ALGORITHMS}
    quality = np.zeros(n)
    quality_t = np.zeros((len(names), n))
    sizes = []
    jobs = [(args.seed, i) for i in range(n)]
    ctx = mp.get_context("fork") if sys.platform.startswith("linux") else mp.get_context()
    with ctx.Pool(args.workers, initializer=_worker_init) as pool:
        for done, (index, size, hashed) in enumerate(pool.imap_unordered(_hash_one, jobs, chunksize=4), 1):
            sizes.append(size)
            for k, a in enumerate(ALGORITHMS):
                orig[a][index] = _words(hashed["original"][0][k])
                for t, name in enumerate(names):
                    trans[a][t, index] = _words(hashed[name][0][k])
            quality[index] = hashed["original"][1]
            for t, name in enumerate(names):
                quality_t[t, index] = hashed[name][1]
            if done % 100 == 0:
                print(f"  hashed {done}/{n} originals ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    hashed_at = time.perf_counter()

    genuine = {a: _popcount_rows(trans[a], orig[a][None, :, :]) for a in ALGORITHMS}  # (T, N)
    hist_oo, hist_x = {}, {}
    for a in ALGORITHMS:
        hist_oo[a], hist_x[a] = impostor_histograms(orig[a], trans[a], BITS[a])
    finished = time.perf_counter()

    duplicates = {a: int(n - len({tuple(r) for r in orig[a].tolist()})) for a in ALGORITHMS}
    recommended, why = {}, {}
    for a in SHORT_ALGORITHMS:
        recommended[a], why[a] = recommend(hist_oo[a], hist_x[a], genuine[a])
    recommended["pdq"] = PDQ_THRESHOLD

    out = print
    widths, heights = zip(*sizes)
    n_oo, n_x = int(hist_oo["pdq"].sum()), int(hist_x["pdq"].sum())
    out(f"# Match thresholds measured on {n} synthetic originals (seed {args.seed})\n")
    out(f"- originals: {n}, widths {min(widths)}-{max(widths)}, heights {min(heights)}-{max(heights)}; "
        f"{len(names)} transforms each ({len(names) - len(EXCLUDED_FROM_CHOICE)} used for the choice)")
    out(f"- impostor pairs: {n_oo:,} originals-vs-originals; {n_x:,} cross "
        f"(transformed copy vs every other original; correlated with the former)")
    out(f"- PDQ quality of originals: min {quality.min():.0f}, median {np.median(quality):.0f}, "
        f"{int((quality < 50).sum())} below 50")
    out("- identical hashes among originals: " + ", ".join(f"{a} {duplicates[a]}" for a in ALGORITHMS))
    out(f"- time: hashing {hashed_at - started:.0f} s ({args.workers} workers), "
        f"distances {finished - hashed_at:.0f} s\n")

    out("## Impostor distance distribution (low tail)\n")
    out("| algorithm | pairs | min | 0.001% | 0.01% | 0.1% | 1% | median | mean | sd |")
    out("|---|---|---|---|---|---|---|---|---|---|")
    for a in ALGORITHMS:
        for label, hist in (("originals", hist_oo[a]), ("cross", hist_x[a])):
            d = np.arange(len(hist))
            mean = (hist * d).sum() / hist.sum()
            sd = math.sqrt((hist * (d - mean) ** 2).sum() / hist.sum())
            out(f"| {a} | {label} | {int(np.nonzero(hist)[0][0])} | "
                + " | ".join(str(quantile_from_hist(hist, q)) for q in (1e-5, 1e-4, 1e-3, 1e-2, 0.5))
                + f" | {mean:.1f} | {sd:.2f} |")
    out("")

    out("## False-match rate per pair at thresholds 0..16 (distance <= t)\n")
    out("Empirical FMR on originals pairs / cross pairs (count in brackets), and a normal-fit "
        "extrapolation from the originals pairs (order of magnitude only).\n")
    out("| t | " + " | ".join(f"{a} originals | {a} cross | {a} normal fit" for a in SHORT_ALGORITHMS) + " |")
    out("|---|" + "---|" * (3 * len(SHORT_ALGORITHMS)))
    for t in THRESHOLDS:
        cells = []
        for a in SHORT_ALGORITHMS:
            c_oo, c_x = int(hist_oo[a][: t + 1].sum()), int(hist_x[a][: t + 1].sum())
            cells += [f"{_sci(fmr(hist_oo[a], t))} ({c_oo})", f"{_sci(fmr(hist_x[a], t))} ({c_x})",
                      f"{normal_tail(hist_oo[a], t):.0e}"]
        out(f"| {t} | " + " | ".join(cells) + " |")
    c_oo, c_x = int(hist_oo["pdq"][: PDQ_THRESHOLD + 1].sum()), int(hist_x["pdq"][: PDQ_THRESHOLD + 1].sum())
    out(f"\nPDQ at {PDQ_THRESHOLD}: FMR {_sci(fmr(hist_oo['pdq'], PDQ_THRESHOLD))} ({c_oo}) originals, "
        f"{_sci(fmr(hist_x['pdq'], PDQ_THRESHOLD))} ({c_x}) cross; normal fit "
        f"{normal_tail(hist_oo['pdq'], PDQ_THRESHOLD):.0e}; closest impostor pair "
        f"{int(np.nonzero(hist_oo['pdq'])[0][0])} / {int(np.nonzero(hist_x['pdq'])[0][0])} bits.\n")

    out("## Genuine distances per transform (median / 95th percentile / max)\n")
    out("| transform | " + " | ".join(ALGORITHMS) + " |")
    out("|---|" + "---|" * len(ALGORITHMS))
    for t, name in enumerate(names):
        cells = []
        for a in ALGORITHMS:
            g = genuine[a][t]
            cells.append(f"{np.median(g):.0f} / {np.percentile(g, 95):.0f} / {g.max()}")
        out(f"| {name} | " + " | ".join(cells) + " |")
    out("")

    for a in SHORT_ALGORITHMS:
        out(f"## {a}: genuine recall (%) per transform at thresholds 0..16\n")
        out("| transform | " + " | ".join(str(t) for t in THRESHOLDS) + " |")
        out("|---|" + "---|" * len(THRESHOLDS))
        for t, name in enumerate(names):
            g = genuine[a][t]
            out(f"| {name} | " + " | ".join(f"{100 * np.mean(g <= th):.0f}" for th in THRESHOLDS) + " |")
        chosen = [t for t, name in enumerate(names) if name not in EXCLUDED_FROM_CHOICE]
        g_all = genuine[a][chosen]
        out("| **all but hflip** | " + " | ".join(f"{100 * np.mean(g_all <= th):.1f}" for th in THRESHOLDS) + " |")
        out("")

    out("## Summary at the recommended thresholds\n")
    header = [f"{a} <= {recommended[a]}" for a in ALGORITHMS]
    out("| transform | " + " | ".join(header) + " |")
    out("|---|" + "---|" * len(ALGORITHMS))
    for t, name in enumerate(names):
        label = f"{name} (excluded)" if name in EXCLUDED_FROM_CHOICE else name
        out(f"| {label} | " + " | ".join(_pct(np.mean(genuine[a][t] <= recommended[a])) for a in ALGORITHMS) + " |")
    chosen = [t for t, name in enumerate(names) if name not in EXCLUDED_FROM_CHOICE]
    out("| **recall, all but hflip** | " + " | ".join(
        f"**{_pct(np.mean(genuine[a][chosen] <= recommended[a]))}**" for a in ALGORITHMS) + " |")
    out("| FMR originals pairs | " + " | ".join(
        f"{_sci(fmr(hist_oo[a], recommended[a]))}" for a in ALGORITHMS) + " |")
    out("| FMR cross pairs | " + " | ".join(
        f"{_sci(fmr(hist_x[a], recommended[a]))}" for a in ALGORITHMS) + " |")
    out("| FMR normal fit | " + " | ".join(
        f"{normal_tail(hist_oo[a], recommended[a]):.0e}" for a in ALGORITHMS) + " |")
    out("| normal-fit false candidates per query, 10M-entry list | " + " | ".join(
        f"{normal_tail(hist_oo[a], recommended[a]) * LIST_SIZE:.2g}" for a in ALGORITHMS) + " |")
    out("| closest impostor (orig / cross) | " + " | ".join(
        f"{int(np.nonzero(hist_oo[a])[0][0])} / {int(np.nonzero(hist_x[a])[0][0])}" for a in ALGORITHMS) + " |")
    out("")

    out("## Recommendation\n")
    for a in SHORT_ALGORITHMS:
        fit = normal_tail(hist_oo[a], recommended[a])
        out(f"- **{a}: distance <= {recommended[a]}** ({why[a]}; recall all-but-hflip "
            f"{_pct(np.mean(genuine[a][chosen] <= recommended[a]))}%; normal-fit FMR {fit:.0e}, i.e. "
            f"{fit * LIST_SIZE:.2g} false candidates per query on a {LIST_SIZE:,}-entry list)")
        if fit >= EXTRAPOLATED_CEILING:
            out(f"  - warning: even at this threshold {a} is expected to produce false candidates on large "
                f"lists; use it only to confirm a candidate found by another hash, not as a standalone match")
    out(f"- pdq: distance <= {PDQ_THRESHOLD} (fixed; Meta's rule)")

    if args.json:
        payload = {
            "originals": n, "seed": args.seed, "transforms": names, "recommended": recommended,
            "impostor_hist_originals": {a: hist_oo[a].tolist() for a in ALGORITHMS},
            "impostor_hist_cross": {a: hist_x[a].tolist() for a in ALGORITHMS},
            "genuine": {a: genuine[a].tolist() for a in ALGORITHMS},
            "pdq_quality_originals": quality.tolist(),
        }
        with open(args.json, "w") as fh:
            json.dump(payload, fh)
    if args.save_samples:
        import os
        os.makedirs(args.save_samples, exist_ok=True)
        for i in range(min(8, n)):
            scene(args.seed, i).save(os.path.join(args.save_samples, f"original-{i}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
