"""Letterboxed, pillarboxed and framed copies of real videos (issue 27, item 2): recall of
vPDQ plain, with the per-frame border trim (decode.borders.trim_uniform_border, the last
release's --trim-borders) and with bars constant over the video (decode.borders.
ConstantBars, this release's --trim-borders).

Originals: Meta's sample videos without bars (../shared/vpdq-reference/tmk/sample-videos/
*-no-bar.mp4; read there, never copied), plus generated scenes. Copies: each
synthetic_video box transform (bars of 20-40% of the frame, black or a uniform colour,
above and below or left and right), and Meta's own barred versions of the pattern clip.
A copy matches under python-threatexchange's rule (80% of the query's frames within 31
bits of the listed video's, and 80% of the listed video's).

    python benchmarks/measure_letterbox.py [--generated 6] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hashmatch.decode import borders
from hashmatch.evaluation import synthetic_video
from hashmatch.evaluation.video_measure import _kept, _percent
from hashmatch.video.vpdq import hash_video

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "vpdq-reference" / "tmk" / "sample-videos"
BOXES = ("letterbox", "letterbox_20pct", "letterbox_40pct", "pillarbox_20pct", "pillarbox_40pct",
         "bars_colour_20pct", "pillarbox_colour_30pct")


def _frames(data: bytes | str, mode: str) -> list[np.ndarray]:
    """The queries of a video (kept frame codes): the plain frames, and with a trim mode
    also the trimmed frames (per-frame, or constant bars), each matched on its own as the
    matcher does."""
    if mode == "plain":
        return [_kept(hash_video(data).frames)]
    original = borders.ConstantBars.rectangle
    if mode == "per_frame":
        borders.ConstantBars.rectangle = lambda self: None  # type: ignore[method-assign]
    try:
        video = hash_video(data, trim_borders=True)
    finally:
        borders.ConstantBars.rectangle = original  # type: ignore[method-assign]
    assert video.trimmed is not None
    return [_kept(video.frames), _kept(video.trimmed)]


def _matches(queries: list[np.ndarray], listed: np.ndarray) -> bool:
    return any(_percent(q, listed, 31) >= 80 and _percent(listed, q, 31) >= 80 for q in queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=6, help="generated scenes besides Meta's samples")
    parser.add_argument("--json")
    args = parser.parse_args()
    originals: list[tuple[str, bytes]] = []
    if SAMPLES.exists():
        originals += [(p.name, p.read_bytes()) for p in sorted(SAMPLES.glob("*-no-bar.mp4"))]
    originals += [(f"scene-{i}", synthetic_video.video(900 + i, seconds=8.0, fps=25, size=(320, 240)))
                  for i in range(args.generated)]
    modes = ("plain", "per_frame", "constant")
    hits = {m: {b: 0 for b in BOXES} for m in modes}
    for index, (name, data) in enumerate(originals):
        listed = _kept(hash_video(data).frames)
        for box in BOXES:
            copy = synthetic_video.transformed(box, data, seed=index)
            for mode in modes:
                hits[mode][box] += _matches(_frames(copy, mode), listed)
        print(name, {m: sum(hits[m].values()) for m in modes}, flush=True)
    meta = {}
    if SAMPLES.exists():  # Meta's barred renditions of the pattern clip against the unbarred HD one
        listed = _kept(hash_video(str(SAMPLES / "pattern-hd-no-bar.mp4")).frames)
        for path in sorted(SAMPLES.glob("pattern-sd-*-bar.mp4")):
            meta[path.name] = {mode: _matches(_frames(str(path), mode), listed) for mode in modes}
    print(f"\n| copy ({len(originals)} originals each) | plain | per-frame trim | constant bars |\n|---|---|---|---|")
    for box in BOXES:
        print(f"| {box} | " + " | ".join(f"{hits[m][box]}/{len(originals)}" for m in modes) + " |")
    total = len(BOXES) * len(originals)
    print("| all | " + " | ".join(f"{sum(hits[m].values())}/{total}" for m in modes) + " |")
    for name, found in meta.items():
        print(f"| Meta's {name} vs pattern-hd-no-bar | " + " | ".join("yes" if found[m] else "no" for m in modes)
              + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"hits": hits, "originals": [n for n, _ in originals], "meta": meta},
                                              indent=1))


if __name__ == "__main__":
    main()
