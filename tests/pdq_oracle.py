"""A slow, line-by-line numpy transcription of Meta's C++ PDQ, used only as a test oracle.

It is validated against the `pdqhash` package in `full` mode (test_differential.py), and
then proves the kernel's `cimg512` path (float32 luma, grey luma, 512 resize, 64x64
bypass) on generated images, where no other oracle exists on this machine.
"""
from __future__ import annotations

import math

import numpy as np

F = np.float32


def luma(rgb: np.ndarray, convention: str) -> np.ndarray:
    if convention == "pdqhash":  # numpy float64, then float32
        return (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114).astype(F)
    if convention == "cpp_rgb":  # float32 coefficients and arithmetic
        r, g, b = (rgb[:, :, i].astype(F) for i in range(3))
        return (F(0.299) * r + F(0.587) * g) + F(0.114) * b
    if convention == "cpp_grey":
        return rgb.astype(F)
    raise ValueError(convention)


def _box_rows(x: np.ndarray, w: int) -> np.ndarray:
    """box1DFloat applied to every row at once (vectorised across rows, sequential along)."""
    half = (w + 2) // 2
    n = x.shape[1]
    out = np.empty_like(x)
    s = np.zeros(x.shape[0], F)
    cws = li = ri = oi = 0
    for _ in range(half - 1):
        s = s + x[:, ri]; cws += 1; ri += 1
    for _ in range(w - half + 1):
        s = s + x[:, ri]; cws += 1; out[:, oi] = s / F(cws); ri += 1; oi += 1
    for _ in range(n - w):
        s = s + x[:, ri]; s = s - x[:, li]; out[:, oi] = s / F(cws); li += 1; ri += 1; oi += 1
    for _ in range(half - 1):
        s = s - x[:, li]; cws -= 1; out[:, oi] = s / F(cws); li += 1; oi += 1
    return out


def _dct_matrix() -> np.ndarray:
    scale = float(F(math.sqrt(2.0 / 64.0)))
    return np.array([[scale * math.cos((math.pi / 2.0 / 64.0) * (i + 1) * (2 * j + 1)) for j in range(64)]
                     for i in range(16)]).astype(F)


def pdq(lum: np.ndarray, skip_filter_at_64: bool) -> tuple[str, int]:
    rows, cols = lum.shape
    if rows < 5 or cols < 5:
        return "0" * 64, 0
    if skip_filter_at_64 and rows == 64 and cols == 64:
        a = lum.astype(F)
    else:
        wr, wc = (cols + 127) // 128, (rows + 127) // 128
        x = lum.astype(F)
        for _ in range(2):
            x = _box_rows(x, wr)
            x = _box_rows(x.T.copy(), wc).T.copy()
        ri = [int(((k + 0.5) * rows) / 64) for k in range(64)]
        ci = [int(((k + 0.5) * cols) / 64) for k in range(64)]
        a = x[np.ix_(ri, ci)]
    vert = ((a[:-1, :] - a[1:, :]) * F(100)) / F(255)
    horiz = ((a[:, :-1] - a[:, 1:]) * F(100)) / F(255)
    grad = np.abs(np.trunc(vert).astype(np.int64)).sum() + np.abs(np.trunc(horiz).astype(np.int64)).sum()
    quality = min(100, int(grad) // 90)
    d = _dct_matrix()
    t = np.zeros((16, 64), F)
    for k in range(64):
        t = t + d[:, k:k + 1] * a[k:k + 1, :]
    b = np.zeros((16, 16), F)
    for k in range(64):
        b = b + t[:, k:k + 1] * d[:, k][None, :]
    median = np.sort(b.ravel())[127]
    value = sum(1 << k for k, bit in enumerate((b > median).ravel()) if bit)
    return format(value, "064x"), quality


def cimg512(rgb_or_grey: np.ndarray) -> tuple[str, int]:
    """Meta's C++ pdq-photo-hasher on decoded pixels: 512x512 nearest resize when larger."""
    rows, cols = rgb_or_grey.shape[:2]
    if rows > 512 or cols > 512:
        ri = (np.arange(512) * rows) // 512
        ci = (np.arange(512) * cols) // 512
        rgb_or_grey = rgb_or_grey[ri][:, ci]
    conv = "cpp_grey" if rgb_or_grey.ndim == 2 else "cpp_rgb"
    return pdq(luma(rgb_or_grey, conv), skip_filter_at_64=True)
