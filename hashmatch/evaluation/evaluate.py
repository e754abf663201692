"""Detection quality: how many transformed copies each hash still finds, and at what
false-match rate (the job behind `hashmatch evaluate`).

For every original (a folder of benign images, or generated scenes) and every transform,
the copy is hashed under each setting and compared with the originals:

* genuine distance: the copy to its own original;
* impostor distance: the copy to the nearest *other* original (what a false candidate
  against a list of these originals would look like).

Settings: ``pdq:full``, ``pdq:full+dihedral`` (the copy's 8 variants searched, as
``--dihedral`` does), ``pdq:full+crop`` (the zoom-out variants of --crop-robust, ruled as
the Matcher does: within crop_search_radius, then over the variant's reliable bits, moved
by 31 - crop_threshold so the one threshold decides), ``pdq:full+trim`` (extra variants hashed after trimming uniform
borders and of pictures found inside the frame, so letterboxed, framed and screenshotted
copies can match), ``pdq:cimg512`` and
``pdq:cimg512+dihedral``, ``phash``, ``dhash``, ``ahash``. PDQ copies below the quality
gate count as misses. Per (setting, transform) the result holds recall and false-match
rate at the default threshold, and the threshold and recall at a target false-match
rate. Work runs in processes, one original (and all its copies) per task.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from hashmatch.base.files import atomic_write, save_figure
from hashmatch.config import usable_cores
from hashmatch.errors import ConfigurationError, ImageError
from hashmatch.evaluation.transforms import BUILTIN, DEFAULT, Transform
from hashmatch.matching.matcher import DEFAULT_PDQ_QUALITY_GATE, DEFAULT_THRESHOLDS
from hashmatch.signals.hasher import Hasher
from hashmatch.signals.pdq import (
    DEFAULT_CROP_SEARCH_RADIUS,
    DEFAULT_CROP_THRESHOLD,
    MIN_RELIABLE_BITS,
    reliable_distance,
)

SETTINGS = ("pdq:full", "pdq:full+dihedral", "pdq:full+trim", "pdq:full+crop", "pdq:cimg512",
            "pdq:cimg512+dihedral", "phash", "dhash", "ahash")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".avif")


@dataclass(frozen=True)
class _Job:
    index: int
    source: str | None  # a path, or None for a generated scene
    seed: int


_TRANSFORMS: dict[str, Transform] = {}  # set before the pool forks; workers inherit it
_CROP_ROBUST = [False]  # whether pdq:full+crop is evaluated (its 35 variants cost time); set likewise


def _hashers() -> tuple[Hasher, Hasher]:
    return (Hasher(("pdq", "phash", "dhash", "ahash"), dihedral=True, trim_borders=True,
                   crop_robust=_CROP_ROBUST[0]),
            Hasher(("pdq",), pdq_mode="cimg512", dihedral=True))


def _codes(full: Hasher, cimg: Hasher, source: Any) -> dict[str, Any]:
    """Every setting's codes for one image: {setting: (variants x nbytes uint8, quality)}."""
    a = full.hash(source)
    b = cimg.hash(source)
    # Both hashers ask for PDQ with its dihedral variants: always there, with a quality.
    assert a.pdq_dihedral is not None and b.pdq_dihedral is not None and a.pdq_quality is not None
    d = lambda hexes: np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(len(hexes), -1)  # noqa: E731
    out: dict[str, tuple[Any, ...]] = {
        "pdq:full": (d([a.hashes["pdq"]]), a.pdq_quality),
        "pdq:full+dihedral": (d(list(a.pdq_dihedral.values())), a.pdq_quality),
        "pdq:cimg512": (d([b.hashes["pdq"]]), b.pdq_quality),
        "pdq:cimg512+dihedral": (d(list(b.pdq_dihedral.values())), b.pdq_quality),
        "phash": (d([a.hashes["phash"]]), None),
        "dhash": (d([a.hashes["dhash"]]), None),
        "ahash": (d([a.hashes["ahash"]]), None),
    }
    # With trimming, the trimmed PDQ and the PDQ of each picture found inside the frame are
    # more variants of the query (Matcher(trim_borders=True)), each if it passes the gate.
    extra = [(a.pdq_trimmed, a.pdq_trimmed_quality)] if a.pdq_trimmed is not None else []
    extra += [(p["hash"], p["quality"]) for p in a.values["pdq"].get("pictures") or ()]
    kept = [(h, q) for h, q in extra if q is not None and q >= DEFAULT_PDQ_QUALITY_GATE]
    out["pdq:full+trim"] = out["pdq:full"]
    if kept:
        out["pdq:full+trim"] = (np.vstack([out["pdq:full"][0], d([h for h, _ in kept])]),
                                max([a.pdq_quality] + [q for _, q in kept]))
    crops, masks = a.values["pdq"].get("crops", {}), a.values["pdq"].get("crop_masks", {})
    kept_crops = [name for name in crops if int(masks[name], 16).bit_count() >= MIN_RELIABLE_BITS]
    out["pdq:full+crop"] = out["pdq:full"]
    if kept_crops:
        # Row 0 is the plain query (every bit reliable); the others are the variants, each
        # with the mask of its reliable bits, ruled by _crop_rule.
        out["pdq:full+crop"] = (np.vstack([out["pdq:full"][0], d([crops[n] for n in kept_crops])]), a.pdq_quality,
                                d(["f" * 64] + [masks[n] for n in kept_crops]))
    return out


def _crop_rule(variants: np.ndarray, masks: np.ndarray, originals: np.ndarray, full: np.ndarray) -> np.ndarray:
    """Per row and original, the distance --crop-robust decides on, on the plain query's
    scale: row 0 (the plain query) its full distance; a zoom-out variant within
    crop_search_radius its reliable-bit distance scaled to 256, moved by 31 - crop_threshold
    (so 31 decides as crop_threshold does); a variant beyond the radius never matches."""
    reliable = np.bitwise_count(masks).sum(axis=1, dtype=np.int64)[:, None]
    differing = np.bitwise_count((variants[:, None, :] ^ originals[None, :, :]) & masks[:, None, :]).sum(axis=2)
    scaled = reliable_distance(differing, reliable) + DEFAULT_THRESHOLDS["pdq"] - DEFAULT_CROP_THRESHOLD
    ruled = np.where(full <= DEFAULT_CROP_SEARCH_RADIUS, np.maximum(scaled, 0), 257)
    ruled[0] = full[0]
    return ruled


def _work(job: _Job) -> tuple[int, dict[str, Any] | None, dict[str, dict[str, Any]], list[str]]:
    """Hash original `job.index` and all its transformed copies. Returns the notes on what
    could not be used (the original: base is None; or single copies), never raises: one
    odd original (a 12x36 clip-art PNG) must not cost the whole evaluation."""
    from hashmatch.evaluation.synthetic import scene

    full, cimg = _hashers()
    name_of = job.source if job.source is not None else f"generated scene {job.index}"
    try:
        if job.source is None:
            original = scene(job.seed, job.index)
        else:
            original = Image.open(job.source)
            original.load()
            original = original.convert("RGB")
        base = _codes(full, cimg, original)
    except Exception as exc:  # noqa: BLE001 - recorded in run.json as skipped, with its reason
        return job.index, None, {}, [f"{name_of}: {type(exc).__name__}: {exc}"]
    copies: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    rng = np.random.default_rng([job.seed, job.index, 7])
    for name, transform in _TRANSFORMS.items():
        try:
            copies[name] = _codes(full, cimg, transform(original.copy(), rng))
        except ImageError:
            continue  # e.g. a resize below the minimum size: no copy to evaluate
        except Exception as exc:  # noqa: BLE001 - this copy only; recorded
            notes.append(f"{name_of}, transform {name}: {type(exc).__name__}: {exc}")
    return job.index, base, copies, notes


@dataclass
class EvaluationResult:
    records: list[dict[str, Any]]
    originals: int
    skipped: list[str]
    distances: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]  # setting -> transform -> (genuine, impostor)

    def run_info(self) -> dict[str, Any]:
        return {"originals": self.originals, "skipped": self.skipped,
                "transforms": list(dict.fromkeys(r["transform"] for r in self.records)),
                "settings": list(dict.fromkeys(f"{r['algorithm']}:{r['setting']}" for r in self.records))}


def evaluate(originals: Sequence[str] | None = None, *, generate: int = 0, seed: int = 20240601,
             transforms: Mapping[str, Transform] | None = None, settings: Sequence[str] = SETTINGS,
             target_fmr: float = 0.01, workers: int | None = None,
             progress: Callable[[int], None] | None = None) -> EvaluationResult:
    """Evaluate every setting on every transform. `originals` are image paths, or
    `generate` synthetic scenes are drawn. `transforms` maps names to callables
    (default: transforms.DEFAULT from transforms.BUILTIN). `progress(n)` is called as
    originals finish."""
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise ConfigurationError(f"unknown settings {unknown}; choose from {', '.join(SETTINGS)}")
    if not 0 < target_fmr < 1:
        raise ConfigurationError("target_fmr is between 0 and 1")
    jobs = [_Job(i, p, seed) for i, p in enumerate(originals or [])] + \
           [_Job(len(originals or []) + i, None, seed) for i in range(generate)]
    if len(jobs) < 2:
        raise ConfigurationError("evaluation needs at least 2 originals (impostors are the other originals)")
    chosen = dict(transforms) if transforms is not None else {name: BUILTIN[name] for name in DEFAULT}
    _TRANSFORMS.clear()
    _TRANSFORMS.update(chosen)
    _CROP_ROBUST[0] = "pdq:full+crop" in settings
    results: dict[int, tuple[dict, dict]] = {}
    skipped: list[str] = []
    # fork: workers inherit the transforms (user callables need not be picklable); no
    # FAISS index exists in this process, so no OpenMP threads are forked.
    with mp.get_context("fork").Pool(workers or usable_cores()) as pool:
        for index, base, copies, notes in pool.imap_unordered(_work, jobs):
            skipped += notes
            if base is not None:
                results[index] = (base, copies)
            if progress:
                progress(1)
    order = sorted(results)
    if len(order) < 2:
        raise ConfigurationError("fewer than 2 originals could be read")
    records: list[dict[str, Any]] = []
    distances: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for setting in settings:
        algorithm = setting.split(":")[0]
        threshold = DEFAULT_THRESHOLDS[algorithm]
        base_codes = np.stack([results[i][0][setting][0][0] for i in order])  # the originals' plain hash
        nbits = base_codes.shape[1] * 8
        distances[setting] = {}
        for name in chosen:
            present = [k for k, i in enumerate(order) if name in results[i][1]]
            if not present:
                continue
            genuine, impostor = [], []
            for k in present:
                codes = results[order[k]][1][name][setting]
                variants, quality = codes[0], codes[1]
                d = np.bitwise_count(variants[:, None, :] ^ base_codes[None, :, :]).sum(axis=2)
                if len(codes) > 2:  # the zoom-out variants' masks (pdq:full+crop)
                    d = _crop_rule(variants, codes[2], base_codes, d)
                d = d.min(axis=0)
                if algorithm == "pdq" and quality is not None and quality < DEFAULT_PDQ_QUALITY_GATE:
                    d = np.full_like(d, nbits + 1)  # gated: never matched
                genuine.append(int(d[k]))
                impostor.append(int(np.delete(d, k).min()))
            g, imp = np.array(genuine), np.array(impostor)
            distances[setting][name] = (g, imp)
            t_target = _threshold_at(imp, target_fmr, nbits)
            records.append({
                "algorithm": algorithm, "setting": setting.split(":")[1] if ":" in setting else "default",
                "transform": name, "copies": int(len(g)), "threshold": threshold,
                "recall": float(np.mean(g <= threshold)), "false_match_rate": float(np.mean(imp <= threshold)),
                "target_false_match_rate": target_fmr, "threshold_at_target": t_target,
                "recall_at_target": float(np.mean(g <= t_target)) if t_target >= 0 else 0.0,
                "genuine_median": float(np.median(g)), "impostor_min": int(imp.min()),
            })
    return EvaluationResult(records, len(order), skipped, distances)


def _threshold_at(impostor: np.ndarray, target: float, nbits: int) -> int:
    """The largest threshold whose false-match rate (share of copies with an impostor
    within it) stays at or below `target`; -1 when even 0 exceeds it."""
    best = -1
    for t in range(nbits + 1):
        if np.mean(impostor <= t) <= target:
            best = t
        else:
            break
    return best


def list_originals(folder: str) -> list[str]:
    paths = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        paths += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(IMAGE_SUFFIXES)]
    return paths


def write_outputs(result: EvaluationResult, output: str, plots: bool = True) -> list[str]:
    """results.json (the list of records), run.json (originals, skipped files, transforms,
    settings), both 0600 and atomic, and, when matplotlib is installed, the PNG plots."""
    os.makedirs(output, mode=0o700, exist_ok=True)
    written = [os.path.join(output, "results.json"), os.path.join(output, "run.json")]
    for path, payload in zip(written, (result.records, result.run_info())):
        with atomic_write(path, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1)
    if plots:
        written += _plots(result, output)
    return written


def _plots(result: EvaluationResult, output: str) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    records = result.records
    settings = list(dict.fromkeys(f"{r['algorithm']}:{r['setting']}" for r in records))
    transforms = list(dict.fromkeys(r["transform"] for r in records))
    recall = {(f"{r['algorithm']}:{r['setting']}", r["transform"]): r["recall"] for r in records}

    fig, ax = plt.subplots(figsize=(12, 0.35 * len(transforms) * len(settings) / 3 + 2))
    height = 0.8 / len(settings)
    for k, setting in enumerate(settings):
        ys = np.arange(len(transforms)) + k * height
        ax.barh(ys, [recall.get((setting, t), 0) for t in transforms], height=height, label=setting)
    ax.set_yticks(np.arange(len(transforms)) + 0.4 - height / 2, transforms)
    ax.invert_yaxis()
    ax.set_xlabel("recall at the default threshold")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    written.append(_save(fig, output, "recall.png"))

    fig, ax = plt.subplots(figsize=(7, 6))
    for setting, per in result.distances.items():
        g = np.concatenate([v[0] for v in per.values()])
        imp = np.concatenate([v[1] for v in per.values()])
        top = int(max(g.max(), imp.max()))
        ts = np.arange(0, top + 1)
        ax.plot([np.mean(imp <= t) for t in ts], [np.mean(g <= t) for t in ts], label=setting)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlabel("false-match rate (copies with another original within the threshold)")
    ax.set_ylabel("recall")
    ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(_save(fig, output, "roc.png"))

    for setting in ("pdq:full", "phash"):
        per = result.distances.get(setting, {})
        if not per:
            continue
        cols = 4
        rows = -(-len(per) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(14, 2.4 * rows), squeeze=False)
        for ax, (name, (g, imp)) in zip(axes.ravel(), per.items()):
            top = int(max(g.max(), imp.max())) + 1
            bins = np.arange(0, top + 2)
            ax.hist(g, bins=bins, alpha=0.6, label="genuine")
            ax.hist(imp, bins=bins, alpha=0.6, label="nearest impostor")
            ax.axvline(DEFAULT_THRESHOLDS[setting.split(":")[0]] + 0.5, color="k", lw=0.8)
            ax.set_title(name, fontsize=8)
        for ax in axes.ravel()[len(per):]:
            ax.axis("off")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"{setting}: distance to own original vs nearest other original")
        fig.tight_layout()
        written.append(_save(fig, output, f"distances_{setting.replace(':', '_').replace('+', '_')}.png"))
    return written


def _save(fig, output: str, name: str) -> str:
    return save_figure(fig, os.path.join(output, name), dpi=110)


def table(records: Iterable[dict[str, Any]]) -> str:
    """Markdown: recall per transform (rows) and setting (columns) at default thresholds."""
    records = list(records)
    settings = list(dict.fromkeys(f"{r['algorithm']}:{r['setting']}" for r in records))
    transforms = list(dict.fromkeys(r["transform"] for r in records))
    cell = {(f"{r['algorithm']}:{r['setting']}", r["transform"]): r for r in records}
    lines = ["| transform | " + " | ".join(settings) + " |", "|---" * (len(settings) + 1) + "|"]
    for t in transforms:
        lines.append(f"| {t} | " + " | ".join(
            f"{100 * cell[(s, t)]['recall']:.1f}" if (s, t) in cell else "" for s in settings) + " |")
    for label, key in (("**all (mean recall)**", "recall"), ("false-match rate", "false_match_rate")):
        values = []
        for s in settings:
            rs = [cell[(s, t)][key] for t in transforms if (s, t) in cell]
            values.append(f"{100 * float(np.mean(rs)):.2f}" if rs else "")
        lines.append(f"| {label} | " + " | ".join(values) + " |")
    return "\n".join(lines)
