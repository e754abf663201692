"""imagehash's wavelet hash as a hashmatch signal type: an example plug-in.

Installed, it makes `whash` an algorithm everywhere in hashmatch (hash, list import,
lookup, scan, the Python API) with no change to hashmatch itself: pyproject.toml declares
this class under the ``hashmatch.signal_types`` entry point.
"""
from __future__ import annotations

from typing import Any

import imagehash

from hashmatch.signals import ImageContext, SignalType


class WHash(SignalType):
    name = "whash"
    aliases = ("wavelet_hash",)
    content = "image"  # computed from the decoded picture (hashmatch decodes once for every type)
    bits = 64
    # Illustrative: measure a threshold for your data with hashmatch's
    # benchmarks/measure_thresholds.py before relying on it.
    default_threshold = 6
    description = "imagehash.whash (64-bit Haar wavelet hash)"

    def compute(self, context: ImageContext) -> dict[str, Any]:
        # The same call and the same picture imagehash users hash: equal results by construction.
        return {"hash": str(imagehash.whash(context.image))}
