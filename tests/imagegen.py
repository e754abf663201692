"""Benign synthetic test images: seeded gradients, shapes and noise. No real photos
except the shared PDQ reference set, which tests read in place from ../shared."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

KINDS = ("noise", "gradient", "shapes", "blocks", "flat", "mirrored")


def make_rgb(width: int, height: int, seed: int, kind: str | None = None) -> np.ndarray:
    """An (height, width, 3) uint8 image of the given kind (cycled by seed if None)."""
    rng = np.random.default_rng(seed)
    kind = kind or KINDS[seed % len(KINDS)]
    if kind == "noise":
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if kind == "gradient":
        y, x = np.mgrid[0:height, 0:width].astype(np.float64)
        a, b, c = rng.uniform(0.2, 3.0, 3)
        img = np.stack([
            127.5 + 127.5 * np.sin(a * x / max(width, 1) * np.pi + b),
            127.5 + 127.5 * np.cos(c * y / max(height, 1) * np.pi),
            (x + y) / max(width + height - 2, 1) * 255,
        ], axis=-1)
        return np.clip(img, 0, 255).astype(np.uint8)
    if kind == "shapes":
        image = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x0, x1 = sorted(rng.integers(0, max(width, 2), 2))
            y0, y1 = sorted(rng.integers(0, max(height, 2), 2))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            if rng.random() < 0.5:
                draw.rectangle((x0, y0, x1, y1), fill=colour)
            else:
                draw.ellipse((x0, y0, x1, y1), fill=colour)
        noise = rng.integers(-12, 13, (height, width, 3))
        return np.clip(np.asarray(image).astype(np.int16) + noise, 0, 255).astype(np.uint8)
    if kind == "blocks":
        small = rng.integers(0, 256, (-(-height // 8), -(-width // 8), 3), dtype=np.uint8)
        return np.ascontiguousarray(small.repeat(8, 0).repeat(8, 1)[:height, :width])
    if kind == "flat":
        return np.full((height, width, 3), rng.integers(0, 256, 3), dtype=np.uint8)
    if kind == "mirrored":
        half = rng.integers(0, 256, (height, (width + 1) // 2, 3), dtype=np.uint8)
        return np.ascontiguousarray(np.concatenate([half, half[:, ::-1]], axis=1)[:, :width])
    raise ValueError(kind)


def encode(array_or_image, fmt: str = "JPEG", **params) -> bytes:
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def photo_like(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """Shapes with sensor noise: like a photograph, never exactly flat anywhere (what the
    picture finder and the crop variants are measured on; an interface's background is)."""
    base = make_rgb(*size, seed=seed, kind="shapes").astype(np.int16)
    noise = np.random.default_rng(seed).integers(-3, 4, base.shape)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


#: Sizes the differential tests sweep: tiny, odd, exactly 64, around the window
#: boundaries (128k +- 1), 513xN, very wide/tall, and large photos.
SIZES = [
    (5, 5), (6, 7), (7, 5), (9, 13), (17, 31), (33, 33), (63, 65), (64, 64), (65, 64), (64, 63),
    (100, 100), (127, 128), (128, 129), (129, 255), (256, 257), (300, 200), (513, 77), (77, 513),
    (513, 600), (640, 480), (1024, 768), (5, 3000), (3000, 5), (2000, 37), (41, 1999), (1280, 720),
]
LARGE_SIZES = [(4000, 3000), (3000, 4000)]
