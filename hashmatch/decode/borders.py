"""Uniform borders of decoded pixels: letterbox and pillarbox bars, frames, screenshot
margins. Cutting them before hashing lets a framed copy match its listed original
(``--trim-borders``: PDQ's trimmed variant, vPDQ's trimmed frames).
"""
from __future__ import annotations

from typing import Any

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


class ConstantBars:
    """Bars that stay the same over a whole video (letterbox, pillarbox, a uniform frame of
    any colour): the rows and columns at the frame's edges that are one flat colour in
    every frame added, and the same colour in all of them. Per-frame trimming
    (trim_uniform_border) also cuts into a scene's dark or flat edges, and misses bars
    whenever a frame's picture touches them in their colour; what is constant over time is
    the frame, not the picture.

    Feed each sampled frame's RGB pixels to add(); rectangle() is then (left, top, right,
    bottom) of the content, or None when there are no bars (or fewer than two frames)."""

    def __init__(self, tolerance: int = 12, max_share: float = 0.35):
        self.tolerance, self.max_share = tolerance, max_share
        self.frames = 0
        self._shape: tuple[int, int] | None = None
        self._flat_rows: np.ndarray | None = None  # bool: flat in every frame so far
        self._flat_cols: np.ndarray | None = None
        # Per row and column, the lowest and highest mean grey level seen over the frames.
        self._row_lo: Any = None
        self._row_hi: Any = None
        self._col_lo: Any = None
        self._col_hi: Any = None

    def add(self, rgb: np.ndarray) -> None:
        grey = rgb[..., :3].astype(np.int16).sum(axis=2) // 3 if rgb.ndim == 3 else rgb.astype(np.int16)
        if self._shape is not None and grey.shape != self._shape:
            self._flat_rows = self._flat_cols = None  # the frame size changed: no constant frame
            self._shape = (-1, -1)
            return
        if self._shape == (-1, -1):
            return
        tol = self.tolerance
        flat_rows = (grey.max(axis=1) - grey.min(axis=1)) <= tol
        flat_cols = (grey.max(axis=0) - grey.min(axis=0)) <= tol
        row_mean, col_mean = grey.mean(axis=1), grey.mean(axis=0)
        if self._shape is None:
            self._shape = grey.shape
            self._flat_rows, self._flat_cols = flat_rows, flat_cols
            self._row_lo, self._row_hi, self._col_lo, self._col_hi = row_mean, row_mean.copy(), col_mean, \
                col_mean.copy()
        else:
            assert self._flat_rows is not None and self._flat_cols is not None
            self._flat_rows &= flat_rows
            self._flat_cols &= flat_cols
            np.minimum(self._row_lo, row_mean, out=self._row_lo)
            np.maximum(self._row_hi, row_mean, out=self._row_hi)
            np.minimum(self._col_lo, col_mean, out=self._col_lo)
            np.maximum(self._col_hi, col_mean, out=self._col_hi)
        self.frames += 1

    def rectangle(self) -> tuple[int, int, int, int] | None:
        if self.frames < 2 or self._flat_rows is None or self._flat_cols is None or self._shape in (None, (-1, -1)):
            return None
        assert self._row_lo is not None and self._row_hi is not None
        assert self._col_lo is not None and self._col_hi is not None
        h, w = self._shape  # type: ignore[misc]
        steady_rows = self._flat_rows & ((self._row_hi - self._row_lo) <= self.tolerance)
        steady_cols = self._flat_cols & ((self._col_hi - self._col_lo) <= self.tolerance)
        top, bottom = _run(steady_rows, self._row_lo), _run(steady_rows[::-1], self._row_lo[::-1])
        left, right = _run(steady_cols, self._col_lo), _run(steady_cols[::-1], self._col_lo[::-1])
        cap_h, cap_w = int(h * self.max_share), int(w * self.max_share)
        if top > cap_h or bottom > cap_h or left > cap_w or right > cap_w:
            return None  # more than a bar: a still or a flat scene, not a frame around a picture
        if top + bottom + left + right == 0:
            return None
        return left, top, w - right, h - bottom


def _run(steady: np.ndarray, level: np.ndarray, tolerance: int = 12) -> int:
    """How many leading entries are steady and of the first one's colour (one bar)."""
    if not len(steady) or not steady[0]:
        return 0
    same = steady & (np.abs(level - level[0]) <= tolerance)
    stops = np.flatnonzero(~same)
    return int(stops[0]) if len(stops) else len(steady)
