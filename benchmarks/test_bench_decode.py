"""One thread, N_SET (20) JPEG files of 1024x768, quality 90:

* peer: Pillow's bare decode of every file, ``Image.open(p)`` + ``.load()`` (no conversion);
* hashmatch: ``Hasher(("pdq",)).hash(path)`` of every file: read, sniff, decode, PDQ.

Each round processes the whole set, so the means compare directly. ratios.py reports
decode_mean / hash_mean, i.e. hashmatch's throughput as a fraction of bare decoding's.
Target: >= 0.5.
"""
from __future__ import annotations

import pytest
from PIL import Image

from hashmatch import Hasher

ROUNDS = 10


def _decode_all(paths) -> int:
    pixels = 0
    for p in paths:
        with Image.open(p) as image:
            image.load()
            pixels += image.width * image.height
    return pixels


@pytest.mark.benchmark(group="jpeg-decode-vs-pdq")
def test_peer_pillow_decode(benchmark, jpeg_set):
    benchmark.extra_info.update(side="peer", impl="Image.open(p).load() per file", files=len(jpeg_set))
    pixels = benchmark.pedantic(_decode_all, args=(jpeg_set,), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert pixels == len(jpeg_set) * 1024 * 768


@pytest.mark.benchmark(group="jpeg-decode-vs-pdq")
def test_hashmatch_decode_and_pdq(benchmark, jpeg_set):
    hasher = Hasher(("pdq",))
    benchmark.extra_info.update(side="hashmatch", impl='Hasher(("pdq",)).hash(path) per file', files=len(jpeg_set))

    def hash_all(paths):
        return [hasher.hash(p) for p in paths]

    results = benchmark.pedantic(hash_all, args=(jpeg_set,), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert len(results) == len(jpeg_set)
    assert all(r.format == "JPEG" and (r.width, r.height) == (1024, 768) for r in results)
