"""Measuring vPDQ on this machine: `hashmatch bench --video` (frames/s and the realtime
factor of hashing, beside Meta's `vpdq` package in the same run when it is installed)
and `hashmatch evaluate --video` (which transformed re-uploads still match, and how often
unrelated videos do), on benign videos generated here (synthetic_video.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hashmatch.evaluation import synthetic_video as synthetic
from hashmatch.signals.hasher import Hasher
from hashmatch.video.matching import DEFAULT_COMPARED_PERCENT, DEFAULT_QUERY_PERCENT
from hashmatch.video.vpdq import QUALITY_GATE, Frame, parse

#: (label, width, height) of the clips `bench --video` hashes.
BENCH_SIZES = (("720p", 1280, 720), ("1080p", 1920, 1080))

_PEER = """
import json, sys, time
import vpdq
start = time.perf_counter()
features = vpdq.computeHash(sys.argv[1], seconds_per_hash=1.0, thread_count=1)
print(json.dumps({"seconds": time.perf_counter() - start, "frames": len(features)}))
"""


def _one_core() -> Callable[[], None] | None:
    """Pin this process (and the peer it starts) to one core; returns the undo."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    return lambda: os.sched_setaffinity(0, before)


def bench_video(seconds: float = 20.0, fps: float = 30.0, compare: bool = False,
                step: Callable[[str], None] = lambda _: None, rounds: int = 3) -> list[dict[str, Any]]:
    """vPDQ at one hash per second on one core, per clip size: seconds per clip (best of
    `rounds`), decoded frames/s, realtime factor; with `compare`, Meta's package too."""
    rows: list[dict[str, Any]] = []
    hasher = Hasher(("vpdq",))
    with tempfile.TemporaryDirectory(prefix="hashmatch-bench-video-") as folder:
        for label, width, height in BENCH_SIZES:
            step(f"video {label}: generating {seconds:g} s")
            path = Path(folder) / f"{label}.mp4"
            path.write_bytes(synthetic.video(11, seconds=seconds, fps=fps, size=(width, height), crf=23))
            undo = _one_core()
            try:
                step(f"video {label}: hashmatch")
                best = min(_timed(hasher.hash, str(path)) for _ in range(rounds))
                rows.append(_row(label, "hashmatch", best, seconds, fps))
                if compare:
                    step(f"video {label}: vpdq package")
                    peer = _peer_seconds(path, rounds)
                    if peer is not None:
                        rows.append(_row(label, "vpdq (Meta)", peer, seconds, fps))
                        rows[-2]["vs_peer"] = round(peer / best, 2)
            finally:
                if undo is not None:
                    undo()
    return rows


def _timed(fn: Callable[..., Any], *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _row(label: str, impl: str, best: float, seconds: float, fps: float) -> dict[str, Any]:
    return {"clip": label, "impl": impl, "seconds": round(best, 3), "frames_per_s": round(seconds * fps / best, 1),
            "realtime": round(seconds / best, 2)}


def _peer_seconds(path: Path, rounds: int) -> float | None:
    times = []
    for _ in range(rounds):
        done = subprocess.run([sys.executable, "-c", _PEER, str(path)], capture_output=True, text=True, timeout=3600,
                              cwd="/")
        if done.returncode != 0:
            return None  # the package is not installed (an oracle, not a dependency)
        times.append(json.loads(done.stdout)["seconds"])
    return min(times)


# -- detection quality ------------------------------------------------------------------------
def _kept(frames: Sequence[Frame]) -> np.ndarray:
    seen: dict[str, None] = {}
    for frame in frames:
        if frame.quality >= QUALITY_GATE:
            seen.setdefault(frame.hash)
    return np.array([list(bytes.fromhex(h)) for h in seen], np.uint8).reshape(-1, 32)


def _percent(a: np.ndarray, b: np.ndarray, threshold: int) -> float:
    """Share of a's frames with some frame of b within the threshold (brute force)."""
    if not len(a) or not len(b):
        return 0.0
    distances = np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=2).sum(axis=2)
    return 100.0 * float((distances.min(axis=1) <= threshold).mean())


def evaluate_video(generate: int, *, seed: int = 20240601, transforms: Sequence[str] | None = None,
                   seconds: float = 10.0, threshold: int = 31, query_percent: float = DEFAULT_QUERY_PERCENT,
                   compared_percent: float = DEFAULT_COMPARED_PERCENT, trim_borders: bool = True,
                   progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Per transform: how many of `generate` videos' transformed copies match their
    original (recall) under python-threatexchange's rule, their mean query and compared
    percentages, and how many pairs of unrelated videos match (false matches)."""
    names = list(transforms or synthetic.TRANSFORMS)
    hasher = Hasher(("vpdq",), trim_borders=trim_borders)

    def frames_of(data: bytes) -> tuple[np.ndarray, np.ndarray]:
        value = hasher.hash(data).values["vpdq"]
        plain = _kept(parse(value["hash"]))
        return plain, (_kept(parse(value["trimmed"])) if value.get("trimmed") else plain)

    originals = []
    for index in range(generate):
        data = synthetic.video(seed + index, seconds=seconds, fps=25, size=(320, 240))
        originals.append((data, frames_of(data)[0]))
    records = []
    for name in names:
        hits, q_sum, c_sum = 0, 0.0, 0.0
        for index, (data, listed) in enumerate(originals):
            variants = frames_of(synthetic.transformed(name, data, seed=seed + index))
            best = max(((_percent(v, listed, threshold), _percent(listed, v, threshold)) for v in variants))
            hits += best[0] >= query_percent and best[1] >= compared_percent
            q_sum, c_sum = q_sum + best[0], c_sum + best[1]
        records.append({"transform": name, "videos": generate, "recall": round(hits / max(1, generate), 3),
                        "mean_query_percent": round(q_sum / max(1, generate), 1),
                        "mean_compared_percent": round(c_sum / max(1, generate), 1)})
        if progress is not None:
            progress(1)
    pairs = false = 0
    for i, (_, a) in enumerate(originals):
        for j, (_, b) in enumerate(originals):
            if i != j:
                pairs += 1
                false += _percent(a, b, threshold) >= query_percent and _percent(b, a, threshold) >= compared_percent
    records.append({"transform": "(unrelated pairs)", "videos": pairs, "false_matches": false,
                    "false_match_rate": round(false / max(1, pairs), 4)})
    return records
