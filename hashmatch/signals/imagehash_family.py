"""pHash, dHash and aHash (64-bit), bit for bit as the `imagehash` library computes them
at its default size: its own preprocessing (convert("L"), a LANCZOS resize) feeding the
compiled kernels (hashmatch._native.dct_hashes). The grey conversion is made once per image and
shared by all three."""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
from PIL import Image

from hashmatch._native import dct_hashes as _dct_hashes
from hashmatch.signals.base import ImageContext, SignalType


class _ImagehashSignal(SignalType):
    content = "image"
    bits = 64
    kernel: ClassVar[Callable[[np.ndarray, np.ndarray], None]]  # called on the class: type(self).kernel
    size: tuple[int, int]  # imagehash's thumbnail (width, height) at hash_size=8

    def compute(self, context: ImageContext) -> dict[str, Any]:
        thumbnail = np.ascontiguousarray(np.asarray(context.grey().resize(self.size, Image.Resampling.LANCZOS)),
                                         dtype=np.uint8)
        out = np.zeros(8, dtype=np.uint8)
        type(self).kernel(thumbnail, out)
        return {"hash": out.tobytes().hex()}


# The 64-bit thresholds come from benchmarks/measure_thresholds.py (1,000 generated
# originals x 21 transforms, 21M impostor pairs; README "Thresholds"): the largest
# threshold 3 bits below the closest impostor with an estimated per-pair false-match rate
# under 1e-8. aHash only matches exactly: unrelated images come within 3-5 bits.

class PHash(_ImagehashSignal):
    name = "phash"
    kernel = _dct_hashes.phash
    size = (32, 32)
    default_threshold = 6
    description = "imagehash.phash (64-bit DCT hash)"


class DHash(_ImagehashSignal):
    name = "dhash"
    kernel = _dct_hashes.dhash
    size = (9, 8)
    default_threshold = 5
    description = "imagehash.dhash (64-bit difference hash)"


class AHash(_ImagehashSignal):
    name = "ahash"
    aliases = ("average_hash",)
    kernel = _dct_hashes.ahash
    size = (8, 8)
    default_threshold = 0
    description = "imagehash.average_hash (64-bit mean hash)"
