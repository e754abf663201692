"""Benign transforms a re-uploaded image goes through, for measuring what a hash survives.

A transform is a callable ``(image: PIL.Image.Image, rng: numpy.random.Generator) ->
PIL.Image.Image | bytes`` (bytes: an encoded file, e.g. a JPEG re-encode). BUILTIN maps
names to transforms with their parameters in the name (``jpeg_q30``, ``crop_5pct``,
``pad_20pct``...); ``evaluate`` takes any such mapping, so a user adds their own transform
as a plain Python callable. ``rng`` is seeded per (corpus seed, original) so every run
draws the same captions and noise.
"""
from __future__ import annotations

import io
from typing import Callable, Union

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from hashmatch.evaluation import screenshots
from hashmatch.evaluation.screenshots import WORDS

Transform = Callable[[Image.Image, np.random.Generator], Union[Image.Image, bytes]]



def jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def resize(image: Image.Image, factor: float, method: Image.Resampling = Image.Resampling.LANCZOS) -> Image.Image:
    w, h = image.size
    return image.resize((max(1, round(w * factor)), max(1, round(h * factor))), method)


def crop(image: Image.Image, fraction: float, anchor: str = "centre") -> Image.Image:
    """Cut `fraction` of the width and height off each side (anchor centre), or off the
    right and bottom only (anchor corner: the top-left corner stays), as `hashmatch
    evaluate` counts a crop of N%."""
    w, h = image.size
    dx, dy = round(w * fraction), round(h * fraction)
    if anchor == "corner":
        return image.crop((0, 0, w - dx, h - dy))
    return image.crop((dx, dy, w - dx, h - dy))


def pad(image: Image.Image, fraction: float, colour=(0, 0, 0)) -> Image.Image:
    """Letterbox: add `fraction` of the height above and below (bars, as a video still
    or a phone screenshot of a landscape photo has)."""
    w, h = image.size
    bar = round(h * fraction)
    out = Image.new("RGB", (w, h + 2 * bar), colour)
    out.paste(image.convert("RGB"), (0, bar))
    return out


def border(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Screenshot-like: a light frame, a status bar on top and a caption strip below."""
    w, h = image.size
    top, bottom, side = round(h * 0.08), round(h * 0.12), round(w * 0.03)
    out = Image.new("RGB", (w + 2 * side, h + top + bottom), (245, 245, 245))
    out.paste(image.convert("RGB"), (side, top))
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, 0, out.width, round(top * 0.6)), fill=(30, 30, 30))
    font = ImageFont.load_default(size=max(10, round(bottom * 0.3)))
    draw.text((side, top + h + round(bottom * 0.25)), " ".join(str(rng.choice(WORDS)) for _ in range(5)),
              font=font, fill=(20, 20, 20))
    return out


def gamma(image: Image.Image, value: float) -> Image.Image:
    lut = [min(255, max(0, round(255 * (i / 255) ** value))) for i in range(256)]
    rgb = image.convert("RGB")
    return rgb.point(lut * 3)


def noise(image: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    pixels = np.asarray(image.convert("RGB"), np.float32)
    pixels += rng.normal(0.0, sigma, pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def caption(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """One line of white text with a dark outline near the bottom (~4% of the height)."""
    out = image.convert("RGB").copy()
    w, h = out.size
    font = ImageFont.load_default(size=max(10, round(h * 0.04)))
    text = " ".join(str(rng.choice(WORDS)) for _ in range(int(rng.integers(3, 7))))
    draw = ImageDraw.Draw(out)
    x = round(w * rng.uniform(0.02, 0.1))
    y = h - round(h * 0.04) - round(h * rng.uniform(0.02, 0.05))
    draw.text((x, y), text, font=font, fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
    return out


def watermark(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """50%-opaque text in the bottom-right corner (~5% of the height)."""
    base = image.convert("RGBA")
    w, h = base.size
    font = ImageFont.load_default(size=max(10, round(h * 0.05)))
    text = str(rng.choice(["@reposter", "example.net", "(c) someone", "memes4u", "via chat"]))
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x, y = w - (right - left) - round(w * 0.03), h - (bottom - top) - round(h * 0.04)
    draw.text((x, y), text, font=font, fill=(255, 255, 255, 128))
    return Image.alpha_composite(base, overlay).convert("RGB")


def _jpeg(quality: int) -> Transform:
    return lambda im, rng: jpeg(im, quality)


def _resize(factor: float) -> Transform:
    return lambda im, rng: resize(im, factor)


def _crop(percent: int, anchor: str = "centre") -> Transform:
    return lambda im, rng: crop(im, percent / 100, anchor)


def _pad(percent: int) -> Transform:
    return lambda im, rng: pad(im, percent / 100)


def _rotate(degrees: float) -> Transform:
    # Small angles: rotate about the centre, keep the size, fill the corners black (what
    # a straightened scan or a tilted screenshot looks like).
    return lambda im, rng: im.convert("RGB").rotate(degrees, Image.Resampling.BICUBIC, expand=False)


def _enhance(kind, factor: float) -> Transform:
    return lambda im, rng: kind(im.convert("RGB")).enhance(factor)


BUILTIN: dict[str, Transform] = {
    **{f"jpeg_q{q}": _jpeg(q) for q in (30, 50, 75, 95)},
    **{f"resize_{f:g}x": _resize(f) for f in (0.25, 0.5, 0.75, 1.5, 2.0)},
    **{f"crop_{p}pct": _crop(p) for p in (2, 5, 10, 20)},
    **{f"crop_corner_{p}pct": _crop(p, "corner") for p in (2, 5, 10)},
    **{f"pad_{p}pct": _pad(p) for p in (5, 10, 20, 30)},
    "rotate_90": lambda im, rng: im.transpose(Image.Transpose.ROTATE_90),
    "rotate_180": lambda im, rng: im.transpose(Image.Transpose.ROTATE_180),
    "rotate_270": lambda im, rng: im.transpose(Image.Transpose.ROTATE_270),
    "rotate_2deg": _rotate(2),
    "rotate_5deg": _rotate(5),
    "flip_horizontal": lambda im, rng: ImageOps.mirror(im),
    "flip_vertical": lambda im, rng: ImageOps.flip(im),
    "grayscale": lambda im, rng: im.convert("L"),
    "gamma_0.8": lambda im, rng: gamma(im, 0.8),
    "gamma_1.25": lambda im, rng: gamma(im, 1.25),
    "contrast_0.7": _enhance(ImageEnhance.Contrast, 0.7),
    "contrast_1.3": _enhance(ImageEnhance.Contrast, 1.3),
    "saturation_0.5": _enhance(ImageEnhance.Color, 0.5),
    "saturation_1.5": _enhance(ImageEnhance.Color, 1.5),
    "blur_r1": lambda im, rng: im.filter(ImageFilter.GaussianBlur(1)),
    "blur_r2": lambda im, rng: im.filter(ImageFilter.GaussianBlur(2)),
    "noise_5": lambda im, rng: noise(im, rng, 5),
    "noise_15": lambda im, rng: noise(im, rng, 15),
    "caption": caption,
    "watermark": watermark,
    "screenshot_border": border,
    "screenshot_phone": screenshots.phone,
    "screenshot_browser": screenshots.browser,
    "pasted_canvas": screenshots.canvas,
}

#: A quicker default set (20 transforms) covering every family.
DEFAULT = ("jpeg_q30", "jpeg_q75", "resize_0.5x", "resize_1.5x", "crop_2pct", "crop_5pct", "crop_10pct",
           "pad_10pct", "pad_20pct", "rotate_90", "rotate_5deg", "flip_horizontal", "grayscale", "gamma_1.25",
           "contrast_1.3", "blur_r2", "noise_15", "caption", "watermark", "screenshot_border")
