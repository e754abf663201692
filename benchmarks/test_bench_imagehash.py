"""pHash / dHash / aHash: imagehash vs hashmatch on the same already-decoded PIL images.

Both sides receive the very same loaded 1024x768 RGB ``PIL.Image`` objects (N_SET = 20 of
them per round) and do their own grey conversion and LANCZOS resize. The last group has
imagehash computing all three hashes (three separate calls, as a user would write it)
against one ``Hasher(("phash", "dhash", "ahash")).hash(image)``.
Target: hashmatch at least as fast (ratio >= 1).
"""
from __future__ import annotations

import imagehash
import pytest

from hashmatch import Hasher

ROUNDS = 10
ALGORITHMS = ("phash", "dhash", "ahash")
PEER = {"phash": imagehash.phash, "dhash": imagehash.dhash, "ahash": imagehash.average_hash}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_peer_imagehash(benchmark, pil_set, algorithm):
    benchmark.group = algorithm
    benchmark.extra_info.update(side="peer", impl=f"imagehash.{PEER[algorithm].__name__}(image)", images=len(pil_set))
    fn = PEER[algorithm]

    def run(images):
        return [str(fn(im)) for im in images]

    benchmark.pedantic(run, args=(pil_set,), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_hashmatch_dct_hash(benchmark, pil_set, algorithm):
    benchmark.group = algorithm
    benchmark.extra_info.update(side="hashmatch", impl=f'Hasher(("{algorithm}",)).hash(image)', images=len(pil_set))
    hasher = Hasher((algorithm,))

    def run(images):
        return [hasher.hash(im).hashes[algorithm] for im in images]

    hexes = benchmark.pedantic(run, args=(pil_set,), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    # Outside the timed region: the same hashes as the peer.
    assert hexes == [str(PEER[algorithm](im)) for im in pil_set]


@pytest.mark.benchmark(group="imagehash-all-three")
def test_peer_imagehash_all_three(benchmark, pil_set):
    benchmark.extra_info.update(side="peer", impl="imagehash.phash + dhash + average_hash", images=len(pil_set))

    def run(images):
        return [(str(imagehash.phash(im)), str(imagehash.dhash(im)), str(imagehash.average_hash(im)))
                for im in images]

    benchmark.pedantic(run, args=(pil_set,), rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="imagehash-all-three")
def test_hashmatch_all_three(benchmark, pil_set):
    benchmark.extra_info.update(side="hashmatch", impl='Hasher(("phash","dhash","ahash")).hash(image)',
                                images=len(pil_set))
    hasher = Hasher(ALGORITHMS)

    def run(images):
        out = []
        for im in images:
            hashes = hasher.hash(im).hashes  # one call computes all three
            out.append((hashes["phash"], hashes["dhash"], hashes["ahash"]))
        return out

    hashes = benchmark.pedantic(run, args=(pil_set,), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert hashes == [tuple(str(PEER[a](im)) for a in ALGORITHMS) for im in pil_set]
