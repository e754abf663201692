"""The fast JPEG path (hashmatch/jpeg_fast.py) gives exactly Pillow's pixels, or declines.

Oracle: Pillow's own decode (`Image.open(...).convert("RGB")`, or "L" for greyscale files),
which is what pdqhash and imagehash hash. Files: every chroma subsampling, greyscale,
progressive, restart markers, qualities from 20 to 100, odd and tiny sizes, and Meta's
reference photos read in place from ../shared/pdq-reference."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from imagegen import make_rgb
from PIL import Image

from hashmatch import Hasher
from hashmatch.decode.image import DecodeLimits, decode
from hashmatch.decode.jpeg_fast import decode_jpeg_fast

CAP = DecodeLimits().max_pixels


def _jpeg(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L" if image.mode == "L" else "RGB"))


CASES = []
for seed, (w, h) in enumerate([(1024, 768), (641, 479), (17, 9), (5, 5), (1, 300), (333, 1)]):
    for options in ({"quality": 90}, {"quality": 20, "subsampling": 0}, {"quality": 75, "subsampling": 1},
                    {"quality": 100, "subsampling": 2}, {"quality": 85, "progressive": True},
                    {"quality": 80, "restart_marker_blocks": 3}, {"quality": 60, "optimize": True}):
        CASES.append((seed, (w, h), options))


@pytest.mark.parametrize("seed,size,options", CASES)
@pytest.mark.parametrize("grey", [False, True])
def test_same_pixels_as_pillow(seed: int, size: tuple[int, int], options: dict, grey: bool) -> None:
    image = Image.fromarray(make_rgb(size[0], size[1], seed=seed))
    data = _jpeg(image.convert("L") if grey else image, **options)
    fast = decode_jpeg_fast(data, CAP)
    assert fast is not None
    assert fast.dtype == np.uint8 and np.array_equal(fast, _pillow(data))


def test_reference_photos(reference: Path) -> None:
    photos = [p for p in reference.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")]
    assert photos
    taken = 0
    for photo in photos:
        data = photo.read_bytes()
        fast = decode_jpeg_fast(data, CAP)
        if fast is not None:
            taken += 1
            assert np.array_equal(fast, _pillow(data)), photo.name
    assert taken >= len(photos) // 2


def test_declines_what_it_does_not_handle() -> None:
    image = Image.fromarray(make_rgb(64, 48, seed=4))
    good = _jpeg(image, quality=90)
    assert decode_jpeg_fast(_jpeg(image.convert("CMYK")), CAP) is None  # CMYK: Pillow inverts, the full path
    assert decode_jpeg_fast(good[: len(good) // 2], CAP) is None  # cut short: jpeg_check's rules decide
    assert decode_jpeg_fast(good, 64 * 48 - 1) is None  # over the pixel cap: the full path refuses it
    assert decode_jpeg_fast(b"\xff\xd8\xff" + b"\x00" * 100, CAP) is None
    mpo = good[:2] + b"\xff\xe2\x00\x08MPF\x00\x00\x00" + good[2:]  # an APP2 MPF segment
    assert decode_jpeg_fast(mpo, CAP) is None


def test_hashes_and_records_unchanged_by_the_path() -> None:
    """A JPEG through the fast path and through Pillow (exif_transpose forces the full
    path; the file has no orientation tag): the same hashes and the same record facts."""
    data = _jpeg(Image.fromarray(make_rgb(320, 240, seed=9)), quality=88)
    hasher = Hasher(("pdq", "phash", "dhash", "ahash"), trim_borders=True)
    fast, full = hasher.hash(data), Hasher(hasher.algorithms, trim_borders=True, exif_transpose=True).hash(data)
    assert fast.values == full.values
    assert (fast.width, fast.height, fast.format, fast.mode, fast.frame_count) == \
        (full.width, full.height, full.format, full.mode, full.frame_count) == (320, 240, "JPEG", "RGB", 1)
    assert decode(data, DecodeLimits()).array is not None  # it did take the fast path
