"""Zoom-out variants of a picture that may be a crop: the picture padded back out to the
size an original would have had, for each assumed crop (AMOUNTS: the share cut from each
side) and anchor (the centre kept, or a corner: what `hashmatch evaluate` calls a centre
and a corner crop). The padding replicates the picture's edge pixels: measured on real
photos (benchmarks/measure_variants.py) it keeps PDQ closer to the original's than
mirrored or mean-colour padding, as it adds no structure of its own.

Variants are made on a copy at most WORK_SIDE pixels on a side: PDQ reduces every
picture to 64 x 64 first, and at 256 the variants' recall equals that of full size at a
third of the time.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
from PIL import Image

AMOUNTS = (0.02, 0.035, 0.05, 0.065, 0.08, 0.10, 0.12)  # share of each side assumed cut
#: anchor -> which sides were cut (top, bottom, left, right); a corner crop keeps that corner.
ANCHORS = {"centre": (1, 1, 1, 1), "top-left": (0, 1, 0, 1), "top-right": (0, 1, 1, 0),
           "bottom-left": (1, 0, 0, 1), "bottom-right": (1, 0, 1, 0)}
WORK_SIDE = 256


def variant_name(anchor: str, amount: float) -> str:
    """How a variant is named in match evidence: "crop:centre:5%", "crop:top-left:3.5%"."""
    return f"crop:{anchor}:{amount * 100:g}%"


def zoom_out_variants(image: Image.Image) -> Iterator[tuple[str, np.ndarray]]:
    """(name, RGB uint8 pixels) of each zoom-out variant of `image`."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    scale = min(1.0, WORK_SIDE / max(width, height))
    if scale < 1:
        rgb = rgb.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX)
    pixels = np.asarray(rgb)
    h, w = pixels.shape[:2]
    for amount in AMOUNTS:
        for anchor, (top, bottom, left, right) in ANCHORS.items():
            kept = 1 - 2 * amount if anchor == "centre" else 1 - amount  # of the original's side
            pad_h, pad_w = round(h * amount / kept), round(w * amount / kept)
            padding = ((pad_h * top, pad_h * bottom), (pad_w * left, pad_w * right), (0, 0))
            yield variant_name(anchor, amount), np.pad(pixels, padding, mode="edge")
