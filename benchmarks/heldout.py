"""Held-out-style PDQ lists for the at-scale benchmarks (issue 15), generated here:

* a third **uniform** random codes;
* a third **near-duplicate families**: a root code and 2-20 members 4-24 bits away, as
  re-uploads of one picture sit in shared lists;
* a third **PDQ-like correlated codes**: a Gaussian fitted to the PDQ bits of generated
  photo-like scenes (hashmatch.evaluation.synthetic; the bits as +-1, their mean and covariance),
  sampled and thresholded at each sample's median (PDQ thresholds its 256 coefficients
  at their median, so every code has 128 ones, and real PDQ bits are correlated);

plus **repeated hashes** (REPEAT_SHARE of the entries are copies of others, as lists from
several sources hold). Queries are list members with 0-24 bits flipped.

    codes = heldout_codes(10_000_000, seed=1)          # (n, 32) uint8
    queries = near_queries(codes, 20_000, seed=2)      # (q, 32) uint8
"""
from __future__ import annotations

import numpy as np

REPEAT_SHARE = 0.05
_FIT_SCENES = 400


def _pdq_bit_model(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and a factor of the covariance of PDQ bits (as +-1) over generated scenes."""
    from hashmatch import Hasher
    from hashmatch.evaluation.synthetic import scene

    hasher = Hasher(("pdq",))
    bits = np.stack([np.unpackbits(np.frombuffer(bytes.fromhex(hasher.hash(scene(seed, i)).hashes["pdq"]),
                                                 np.uint8)) for i in range(_FIT_SCENES)]).astype(np.float64)
    signs = 2 * bits - 1
    mean = signs.mean(axis=0)
    covariance = np.cov(signs, rowvar=False) + 1e-3 * np.eye(256)
    return mean, np.linalg.cholesky(covariance)


def correlated_codes(n: int, seed: int, model: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    mean, factor = model if model is not None else _pdq_bit_model(seed)
    rng = np.random.default_rng(seed)
    out = np.empty((n, 32), np.uint8)
    for start in range(0, n, 200_000):
        m = min(200_000, n - start)
        samples = mean + rng.standard_normal((m, 256)) @ factor.T
        medians = np.median(samples, axis=1, keepdims=True)
        out[start:start + m] = np.packbits(samples > medians, axis=1)
    return out


def family_codes(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, 256), bool)
    filled = 0
    while filled < n:
        size = min(int(rng.integers(3, 22)), n - filled)
        root = rng.random(256) < 0.5
        out[filled] = root
        for k in range(1, size):
            member = root.copy()
            member[rng.choice(256, int(rng.integers(4, 25)), replace=False)] ^= True
            out[filled + k] = member
        filled += size
    return np.packbits(out, axis=1)


def flip(codes: np.ndarray, rng: np.random.Generator, low: int, high: int) -> np.ndarray:
    """Each code with a uniform number in [low, high] of its bits flipped."""
    bits = np.unpackbits(codes, axis=1)
    counts = rng.integers(low, high + 1, len(codes))
    order = np.argsort(rng.random(bits.shape), axis=1)
    mask = order < counts[:, None]
    return np.packbits(bits ^ mask, axis=1)


def heldout_codes(n: int, seed: int = 1) -> np.ndarray:
    """n PDQ codes: uniform, families, correlated (a third each), 5% of them repeats."""
    rng = np.random.default_rng(seed)
    third = n // 3
    parts = [rng.integers(0, 256, (third, 32), dtype=np.uint8), family_codes(third, seed + 1),
             correlated_codes(n - 2 * third, seed + 2)]
    codes = np.concatenate(parts)
    repeats = int(n * REPEAT_SHARE)
    codes[rng.choice(n, repeats, replace=False)] = codes[rng.choice(n, repeats)]
    return codes[rng.permutation(n)]


def heldout_chunks(n: int, seed: int = 1, chunk: int = 4_000_000):
    """heldout_codes for lists too large to generate whole (100M entries): chunks of up to
    `chunk` codes, each a third uniform, a third families, a third correlated, with
    REPEAT_SHARE repeats inside the chunk. The families come from a vectorised generator
    (members differ from their root in up to 4-24 bit positions drawn with replacement:
    a drawn position may repeat, so a member can sit a bit or two closer)."""
    model = _pdq_bit_model(seed + 2)
    for number, start in enumerate(range(0, n, chunk)):
        m = min(chunk, n - start)
        rng = np.random.default_rng([seed, number])
        third = m // 3
        codes = np.concatenate([rng.integers(0, 256, (third, 32), dtype=np.uint8), _families_fast(third, rng),
                                correlated_codes(m - 2 * third, seed + 3 + number, model)])
        repeats = int(m * REPEAT_SHARE)
        codes[rng.choice(m, repeats, replace=False)] = codes[rng.choice(m, repeats)]
        yield codes[rng.permutation(m)]


def _families_fast(n: int, rng: np.random.Generator) -> np.ndarray:
    sizes = rng.integers(3, 22, n // 3 + 2)
    sizes = sizes[:int(np.searchsorted(np.cumsum(sizes), n)) + 1]
    root_of = np.repeat(np.arange(len(sizes)), sizes)[:n]
    first = np.r_[True, root_of[1:] != root_of[:-1]]
    bits = np.unpackbits(rng.integers(0, 256, (len(sizes), 32), dtype=np.uint8), axis=1)[root_of].astype(bool)
    flips = rng.integers(4, 25, n)
    positions = rng.integers(0, 256, (n, 24))
    rows, cols = np.nonzero(np.arange(24)[None, :] < flips[:, None])
    mask = np.zeros((n, 256), bool)
    mask[rows, positions[rows, cols]] = True
    mask[first] = False  # the root itself
    return np.packbits(bits ^ mask, axis=1)


def near_queries(codes: np.ndarray, count: int, seed: int = 2) -> np.ndarray:
    """`count` list members with 0-24 bits flipped."""
    rng = np.random.default_rng(seed)
    return flip(codes[rng.integers(0, len(codes), count)], rng, 0, 24)
