"""Benign synthetic photo-like scenes for benchmarks and evaluation (nothing downloaded).

scene(seed, index) draws a deterministic RGB image: a background field (linear or radial
gradient plus multi-octave value noise) mapped through a random palette, 10-150
overlapping translucent shapes of log-uniform sizes on three layers, blurred-noise
luminance texture, sensor grain and optional softening; 320 to 1024 px on the long side
in several aspect ratios. Used by `hashmatch evaluate --generate`, `hashmatch bench` and
benchmarks/measure_thresholds.py.
"""
from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["scene"]


def _value_noise(rng: np.random.Generator, height: int, width: int, octaves: int,
                 base_cells: float, persistence: float) -> np.ndarray:
    """Multi-octave value noise in [0, 1]: random grids upsampled bicubically and summed."""
    out = np.zeros((height, width), np.float32)
    amp, total = 1.0, 0.0
    for octave in range(octaves):
        cells = base_cells * (2 ** octave)
        gh = max(2, int(round(cells * height / max(height, width))) + 1)
        gw = max(2, int(round(cells * width / max(height, width))) + 1)
        grid = rng.random((gh, gw)).astype(np.float32)
        layer = np.asarray(Image.fromarray(grid, "F").resize((width, height), Image.Resampling.BICUBIC))
        out += amp * layer
        total += amp
        amp *= persistence
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / (hi - lo + 1e-9)


def _palette(rng: np.random.Generator) -> np.ndarray:
    """3-7 RGB colours: analogous, complementary or random schemes, varied value."""
    k = int(rng.integers(3, 8))
    scheme = int(rng.integers(0, 3))
    base = rng.random()
    colours = []
    for i in range(k):
        if scheme == 0:  # analogous
            hue = (base + rng.normal(0, 0.06)) % 1.0
        elif scheme == 1:  # complementary pair
            hue = (base + 0.5 * (i % 2) + rng.normal(0, 0.04)) % 1.0
        else:  # random
            hue = rng.random()
        sat = float(np.clip(rng.beta(2, 2) * rng.uniform(0.3, 1.2), 0, 1))
        val = float(rng.uniform(0.05, 1.0))
        colours.append(colorsys.hsv_to_rgb(hue, sat, val))
    return np.array(colours, np.float32) * 255.0


def _map_palette(field: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Piecewise-linear colour map of a [0,1] field through the palette stops."""
    stops = np.linspace(0, 1, len(palette))
    return np.stack([np.interp(field, stops, palette[:, c]) for c in range(3)], axis=-1).astype(np.float32)


def _scene_size(rng: np.random.Generator) -> tuple[int, int]:
    long_side = int(rng.integers(320, 1025))
    aspect = float(rng.choice([4 / 3, 3 / 2, 16 / 9, 1.0, 5 / 4]))
    short_side = max(240, int(round(long_side / aspect)))
    if rng.random() < 0.7:
        return long_side, min(short_side, long_side)  # landscape (width, height)
    return min(short_side, long_side), long_side  # portrait


def scene(seed: int, index: int) -> Image.Image:
    """One benign synthetic photo-like RGB scene, deterministic per (seed, index)."""
    rng = np.random.default_rng([seed, index])
    width, height = _scene_size(rng)
    palette = _palette(rng)

    # Background: a gradient field (linear at a random angle, or radial) mixed with noise.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    xn, yn = xx / width, yy / height
    if rng.random() < 0.65:
        angle = rng.uniform(0, 2 * math.pi)
        grad = xn * math.cos(angle) + yn * math.sin(angle)
    else:
        cx, cy = rng.uniform(0, 1, 2)
        grad = np.sqrt((xn - cx) ** 2 + (yn - cy) ** 2)
    grad = (grad - grad.min()) / (grad.max() - grad.min() + 1e-9)
    noise = _value_noise(rng, height, width, octaves=int(rng.integers(3, 7)),
                         base_cells=float(rng.uniform(1.5, 6)), persistence=float(rng.uniform(0.35, 0.7)))
    mix = float(rng.uniform(0.15, 0.85))
    field = np.clip((1 - mix) * grad + mix * noise, 0, 1)
    if rng.random() < 0.5:  # banding (horizons, terraces)
        field = np.clip(field + 0.08 * np.sin(field * rng.uniform(6, 25)), 0, 1)
        field = (field - field.min()) / (field.max() - field.min() + 1e-9)
    background = _map_palette(field, palette[rng.permutation(len(palette))])
    canvas = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), "RGB").convert("RGBA")

    # Shapes: three translucent layers of overlapping shapes, log-uniform sizes.
    side = min(width, height)
    n_shapes = int(rng.integers(10, 151))
    layers = 3
    for layer in range(layers):
        overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for _ in range(n_shapes // layers + (1 if layer < n_shapes % layers else 0)):
            colour = palette[int(rng.integers(0, len(palette)))] + rng.normal(0, 18, 3)
            alpha = int(rng.choice([255, int(rng.integers(60, 256))]))
            fill = tuple(int(v) for v in np.clip(colour, 0, 255)) + (alpha,)
            size = side * math.exp(rng.uniform(math.log(0.02), math.log(0.6)))
            cx, cy = rng.uniform(-0.1, 1.1) * width, rng.uniform(-0.1, 1.1) * height
            kind = int(rng.integers(0, 4))
            if kind == 0:
                w, h = size * rng.uniform(0.3, 1.7), size * rng.uniform(0.3, 1.7)
                draw.rectangle((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), fill=fill)
            elif kind == 1:
                w, h = size * rng.uniform(0.3, 1.7), size * rng.uniform(0.3, 1.7)
                draw.ellipse((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), fill=fill)
            elif kind == 2:
                n = int(rng.integers(3, 9))
                angles = np.sort(rng.uniform(0, 2 * math.pi, n))
                radii = size / 2 * rng.uniform(0.4, 1.0, n)
                draw.polygon([(cx + r * math.cos(a), cy + r * math.sin(a)) for a, r in zip(angles, radii)], fill=fill)
            else:
                a = rng.uniform(0, math.pi)
                dx, dy = size * math.cos(a), size * math.sin(a)
                draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=fill,
                          width=max(1, int(side * rng.uniform(0.002, 0.02))))
        canvas = Image.alpha_composite(canvas, overlay)

    # Texture: blurred-noise luminance modulation, then grain, then optional softening.
    pixels = np.asarray(canvas.convert("RGB"), np.float32)
    texture = _value_noise(rng, height, width, octaves=3, base_cells=float(rng.uniform(20, 60)), persistence=0.6)
    pixels *= (1.0 + float(rng.uniform(0.0, 0.25)) * (texture[..., None] - 0.5))
    pixels += rng.normal(0.0, float(rng.uniform(1.0, 8.0)), pixels.shape).astype(np.float32)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    return image
