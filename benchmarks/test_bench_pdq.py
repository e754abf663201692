"""PDQ on an already-decoded RGB array: pdqhash.compute vs hashmatch.pdq_from_pixels.

Both sides get the same C-contiguous (H, W, 3) uint8 array and return the 256-bit hash and
the quality. hashmatch is timed through its public `pdq_from_pixels` (array checks, the
Cython kernel, hex formatting included). Target: hashmatch >= 5x faster.
"""
from __future__ import annotations

import numpy as np
import pdqhash
import pytest

from hashmatch import pdq_from_pixels


def _pdqhash_hex(result) -> tuple[str, int]:
    bits, quality = result
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


def _check_same(arr: np.ndarray, hm_result) -> None:
    """Outside the timed region: both sides computed the same thing."""
    hexes, quality = hm_result
    assert (hexes[0], quality) == _pdqhash_hex(pdqhash.compute(arr))


# --- pdq-1024x768: short calls, pytest-benchmark calibrates the rounds itself -----------

@pytest.mark.benchmark(group="pdq-1024x768")
def test_peer_pdqhash_1024x768(benchmark, rgb_small):
    benchmark.extra_info.update(side="peer", impl="pdqhash.compute(arr)", shape=list(rgb_small.shape))
    benchmark(pdqhash.compute, rgb_small)


@pytest.mark.benchmark(group="pdq-1024x768")
def test_hashmatch_pdq_1024x768(benchmark, rgb_small):
    benchmark.extra_info.update(side="hashmatch", impl="hashmatch.pdq_from_pixels(arr)", shape=list(rgb_small.shape))
    result = benchmark(pdq_from_pixels, rgb_small)
    _check_same(rgb_small, result)


# --- pdq-4032x3024: pdqhash takes ~1 s a call here, so fixed rounds ----------------------

@pytest.mark.benchmark(group="pdq-4032x3024")
def test_peer_pdqhash_4032x3024(benchmark, rgb_large):
    benchmark.extra_info.update(side="peer", impl="pdqhash.compute(arr)", shape=list(rgb_large.shape))
    benchmark.pedantic(pdqhash.compute, args=(rgb_large,), rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="pdq-4032x3024")
def test_hashmatch_pdq_4032x3024(benchmark, rgb_large):
    benchmark.extra_info.update(side="hashmatch", impl="hashmatch.pdq_from_pixels(arr)", shape=list(rgb_large.shape))
    result = benchmark.pedantic(pdq_from_pixels, args=(rgb_large,), rounds=15, iterations=1, warmup_rounds=1)
    _check_same(rgb_large, result)
