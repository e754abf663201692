"""Regenerate the bundled example data: benign synthetic pictures, transformed copies of
some of them, unrelated pictures, one corrupt file, and a PDQ hash list of the originals.

    python examples/generate.py        # rewrites examples/images and examples/lists

Deterministic (seeded); the output is committed so the README's first command works
straight after install.
"""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

HERE = Path(__file__).resolve().parent
SIZE = (320, 240)


def picture(seed: int) -> Image.Image:
    """A landscape-like scene: sky gradient, ground, sun, a few buildings."""
    rng = np.random.default_rng(seed)
    width, height = SIZE
    y = np.linspace(0, 1, height)[:, None, None]
    top, bottom = rng.integers(40, 256, 3), rng.integers(0, 200, 3)
    sky = (top * (1 - y) + bottom * y) * np.ones((1, width, 1))
    image = Image.fromarray(sky.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    horizon = int(rng.integers(height // 2, height - 40))
    draw.rectangle((0, horizon, width, height), fill=tuple(int(v) for v in rng.integers(0, 160, 3)))
    cx, cy, r = int(rng.integers(30, width - 30)), int(rng.integers(20, horizon - 20)), int(rng.integers(10, 30))
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(v) for v in rng.integers(150, 256, 3)))
    for _ in range(int(rng.integers(4, 9))):
        x0 = int(rng.integers(0, width - 40))
        w, h = int(rng.integers(15, 60)), int(rng.integers(20, horizon - 10))
        draw.rectangle((x0, horizon - h, x0 + w, horizon), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        for wy in range(horizon - h + 4, horizon - 6, 9):  # windows
            for wx in range(x0 + 3, x0 + w - 5, 8):
                draw.rectangle((wx, wy, wx + 3, wy + 4), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    for _ in range(int(rng.integers(5, 12))):  # trees on the ground
        tx, ty = int(rng.integers(0, width)), int(rng.integers(horizon, height))
        tr = int(rng.integers(6, 18))
        draw.ellipse((tx - tr, ty - 2 * tr, tx + tr, ty),
                     fill=(int(rng.integers(0, 80)), int(rng.integers(80, 200)), 40))
    grain = rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image) + grain, 0, 255).astype(np.uint8))


def save_jpeg(image: Image.Image, path: Path, quality: int = 88) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=quality)


def main() -> None:
    import hashmatch

    images, lists = HERE / "images", HERE / "lists"
    for folder in (images, lists):
        shutil.rmtree(folder, ignore_errors=True)
    originals = {f"scene-{i}": picture(seed=100 + i) for i in range(1, 6)}
    for name, image in originals.items():
        save_jpeg(image, images / "originals" / f"{name}.jpg")

    width, height = SIZE
    copies = {
        "scene-1-reencoded-q40.jpg": (originals["scene-1"], 40),
        "scene-2-resized-half.jpg": (
            originals["scene-2"].resize((width // 2, height // 2), Image.Resampling.LANCZOS), 88),
        "scene-3-cropped-5pct.jpg": (originals["scene-3"].crop((16, 12, width - 16, height - 12)), 88),
        "scene-4-flipped.jpg": (ImageOps.mirror(originals["scene-4"]), 88),
    }
    captioned = originals["scene-5"].copy()
    ImageDraw.Draw(captioned).text((8, height - 14), "shared on a forum", fill=(255, 255, 255))
    copies["scene-5-captioned.png"] = (captioned, None)
    for name, (image, quality) in copies.items():
        path = images / "copies" / name
        if quality is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path, "PNG")
        else:
            save_jpeg(image, path, quality)

    for i in range(1, 4):
        save_jpeg(picture(seed=900 + i), images / "unrelated" / f"other-{i}.jpg")
    buf = io.BytesIO()
    picture(seed=999).save(buf, "JPEG", quality=88)
    (images / "corrupt-truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])

    # A hash list of the originals as python-threatexchange's file exchange writes it:
    # "<algorithm> <hex>" per line.
    lists.mkdir(parents=True)
    hasher = hashmatch.Hasher(("pdq",))
    lines = [f"pdq {hasher.hash(images / 'originals' / f'{name}.jpg').hashes['pdq']}" for name in originals]
    (lists / "originals-pdq.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
