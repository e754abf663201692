"""Zoom-out variants of a picture that may be a crop: the picture padded back out to the
size an original would have had, for each assumed crop (AMOUNTS: the share cut from each
side) and anchor (the centre kept, or a corner: what `hashmatch evaluate` calls a centre
and a corner crop).

What the cut-away band held is unknown, so each variant is padded several ways (FILLS).
The first, replicating the picture's edge pixels, is the one searched: measured on real
photos it keeps PDQ closest to the original's, as it adds no structure of its own. The
others tell which of the hash's bits depend on the guess: a bit every fill agrees on is
decided by the pixels the query has, and only those bits verify a candidate
(signals/pdq.py). A variant whose hash mostly depends on the guess verifies nothing.

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
#: How each variant is padded: numpy.pad modes, and the picture's mean colour; the first is
#: the searched one.
FILLS = ("edge", "reflect", "symmetric", "wrap", "mean-colour")
WORK_SIDE = 256


def variant_name(anchor: str, amount: float) -> str:
    """How a variant is named in match evidence: "crop:centre:5%", "crop:top-left:3.5%"."""
    return f"crop:{anchor}:{amount * 100:g}%"


def zoom_out_variants(image: Image.Image, fills: tuple[str, ...] = FILLS[:1],
                      ) -> Iterator[tuple[str, list[np.ndarray]]]:
    """(name, [RGB uint8 pixels padded with each of `fills`]) of each zoom-out variant."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    scale = min(1.0, WORK_SIDE / max(width, height))
    if scale < 1:
        rgb = rgb.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BOX)
    pixels = np.asarray(rgb)
    h, w = pixels.shape[:2]
    mean_colour = np.round(pixels.reshape(-1, 3).mean(axis=0)).astype(np.uint8)  # once: a full pass
    for amount in AMOUNTS:
        for anchor, (top, bottom, left, right) in ANCHORS.items():
            kept = 1 - 2 * amount if anchor == "centre" else 1 - amount  # of the original's side
            pad_h, pad_w = round(h * amount / kept), round(w * amount / kept)
            padding = ((pad_h * top, pad_h * bottom), (pad_w * left, pad_w * right), (0, 0))
            yield variant_name(anchor, amount), [_pad(pixels, padding, fill, mean_colour)
                                                 for fill in fills]


def _pad(pixels: np.ndarray, padding: tuple[tuple[int, int], ...], fill: str, colour: np.ndarray) -> np.ndarray:
    if fill != "mean-colour":
        return np.pad(pixels, padding, mode=fill)  # type: ignore[call-overload]
    (top, bottom), (left, right), _ = padding
    h, w = pixels.shape[:2]
    out = np.empty((h + top + bottom, w + left + right, 3), np.uint8)
    out[:] = colour
    out[top:top + h, left:left + w] = pixels
    return out
