"""Uniform borders of decoded pixels: letterbox and pillarbox bars, frames, screenshot
margins. Cutting them before hashing lets a framed copy match its listed original
(``--trim-borders``: PDQ's trimmed variant, vPDQ's trimmed frames).
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def trim_uniform_border(image: Image.Image, tolerance: int = 12, min_keep: float = 0.5) -> Image.Image | None:
    """The image without the rows and columns at its edges that are one flat colour
    (within `tolerance` grey levels): letterbox bars, frames, screenshot margins. None when
    there is nothing to trim, or when trimming would keep less than `min_keep` of a side."""
    grey = np.asarray(image.convert("L"), np.int16)
    h, w = grey.shape
    if h < 8 or w < 8:
        return None
    spread_rows = grey.max(axis=1) - grey.min(axis=1)
    flat_rows = np.flatnonzero(spread_rows > tolerance)
    if not len(flat_rows):
        return None
    top, bottom = int(flat_rows[0]), int(flat_rows[-1]) + 1
    inner = grey[top:bottom]
    spread_cols = inner.max(axis=0) - inner.min(axis=0)
    cols = np.flatnonzero(spread_cols > tolerance)
    if not len(cols):  # every column is flat within the non-flat rows (a flat box on a flat ground)
        return None
    left, right = int(cols[0]), int(cols[-1]) + 1
    if (top, bottom, left, right) == (0, h, 0, w):
        return None
    if (bottom - top) < min_keep * h or (right - left) < min_keep * w:
        return None
    return image.crop((left, top, right, bottom))
