"""Differential tests on hundreds of generated images: hashmatch against the reference
implementations (pdqhash, imagehash) and the numpy PDQ oracle, bit for bit."""
from __future__ import annotations

import io

import imagehash
import numpy as np
import pdq_oracle
import pdqhash
import pytest
from imagegen import KINDS, LARGE_SIZES, SIZES, encode, make_rgb
from PIL import Image

from hashmatch import DecodeLimits, Hasher, pdq_from_pixels

ANY_SIZE = DecodeLimits(min_side=1)


def pdqhash_hex(rgb: np.ndarray) -> tuple[list[str], int]:
    vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return [np.packbits(v.astype(np.uint8)).tobytes().hex() for v in vectors], quality


def random_sizes(count: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(int(w), int(h)) for w, h in rng.integers(5, 900, (count, 2))]


CASES = [(w, h, kind) for (w, h) in SIZES for kind in KINDS] + [
    (w, h, KINDS[i % len(KINDS)]) for i, (w, h) in enumerate(random_sizes(120, 7))
]


@pytest.mark.parametrize("width,height,kind", CASES)
def test_pdq_full_and_dihedral_equal_pdqhash(width, height, kind):
    rgb = make_rgb(width, height, seed=width * 7919 + height, kind=kind)
    expected, quality = pdqhash_hex(rgb)
    got, got_quality = pdq_from_pixels(rgb, dihedral=True)
    assert got == expected
    assert got_quality == quality


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
@pytest.mark.parametrize("width,height,kind", CASES[::5])
def test_pdq_of_grey_and_alpha_images_equals_pdqhash_on_convert_rgb(width, height, kind, mode):
    # L and LA reach the kernel as 1 or 2 channels, RGBA as 4, without a conversion copy.
    image = Image.fromarray(make_rgb(width, height, seed=width + 3 * height, kind=kind)).convert(mode)
    expected, quality = pdqhash_hex(np.asarray(image.convert("RGB")))
    result = Hasher(("pdq",), dihedral=True, limits=ANY_SIZE).hash(image)
    assert (list(result.pdq_dihedral.values()), result.pdq_quality) == (expected, quality)


@pytest.mark.slow
@pytest.mark.parametrize("width,height", LARGE_SIZES)
def test_pdq_large_photo_sizes_equal_pdqhash(width, height):
    rgb = make_rgb(width, height, seed=3, kind="shapes")
    assert pdq_from_pixels(rgb, dihedral=True) == pdqhash_hex(rgb)


@pytest.mark.parametrize("width,height", [(1, 1), (2, 3), (4, 4), (4, 100), (100, 4)])
def test_pdq_below_five_pixels_is_all_zero_quality_zero_like_pdqhash(width, height):
    rgb = make_rgb(width, height, seed=1, kind="noise")
    assert pdq_from_pixels(rgb, dihedral=True) == pdqhash_hex(rgb) == (["0" * 64] * 8, 0)


@pytest.mark.parametrize("seed", range(40))
def test_pdq_from_jpeg_file_equals_pdqhash_on_pillow_rgb(tmp_path, seed):
    width, height = random_sizes(40, 11)[seed]
    data = encode(make_rgb(width, height, seed), "JPEG", quality=70 + seed % 25)
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    result = Hasher(("pdq",)).hash(path)
    vectors, quality = pdqhash.compute(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    assert result.hashes["pdq"] == np.packbits(vectors.astype(np.uint8)).tobytes().hex()
    assert result.pdq_quality == quality


ORACLE_CASES = [(w, h, k) for (w, h) in [(5, 5), (33, 17), (64, 64), (63, 64), (128, 129), (300, 200),
                                          (511, 512), (512, 513), (700, 300), (1000, 90)]
                for k in ("noise", "shapes", "flat", "gradient")]


@pytest.mark.parametrize("width,height,kind", ORACLE_CASES[::4])
def test_numpy_oracle_equals_pdqhash(width, height, kind):
    # Trust the oracle first: in the pdqhash convention it must agree with pdqhash.
    rgb = make_rgb(width, height, seed=width + height, kind=kind)
    expected, quality = pdqhash_hex(rgb)
    assert pdq_oracle.pdq(pdq_oracle.luma(rgb, "pdqhash"), skip_filter_at_64=False) == (expected[0], quality)


@pytest.mark.parametrize("width,height,kind", ORACLE_CASES)
@pytest.mark.parametrize("grey", [False, True], ids=["rgb", "grey"])
def test_cimg512_equals_numpy_oracle(width, height, kind, grey):
    rgb = make_rgb(width, height, seed=width * 31 + height, kind=kind)
    image = Image.fromarray(rgb).convert("L") if grey else Image.fromarray(rgb)
    result = Hasher(("pdq",), pdq_mode="cimg512", limits=ANY_SIZE).hash(image)
    assert (result.hashes["pdq"], result.pdq_quality) == pdq_oracle.cimg512(np.asarray(image))


IMAGEHASH_MODES = ["RGB", "L", "RGBA", "P", "1", "I;16", "I", "F", "CMYK", "YCbCr", "LA", "PA", "HSV"]
IMAGEHASH_CASES = [(w, h, kind) for (w, h) in SIZES[:20] for kind in KINDS] + [
    (w, h, KINDS[i % len(KINDS)]) for i, (w, h) in enumerate(random_sizes(60, 5))
]


def imagehash_hex(image: Image.Image) -> dict[str, str]:
    return {"phash": str(imagehash.phash(image)), "dhash": str(imagehash.dhash(image)),
            "ahash": str(imagehash.average_hash(image))}


@pytest.mark.parametrize("width,height,kind", IMAGEHASH_CASES)
def test_phash_dhash_ahash_equal_imagehash(width, height, kind):
    image = Image.fromarray(make_rgb(width, height, seed=width * 13 + height, kind=kind))
    result = Hasher(("phash", "dhash", "ahash"), limits=ANY_SIZE).hash(image)
    assert result.hashes == imagehash_hex(image)


@pytest.mark.parametrize("mode", IMAGEHASH_MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_imagehash_family_equal_in_every_mode(mode, kind):
    rgb = make_rgb(97, 61, seed=len(mode) * 5 + KINDS.index(kind), kind=kind)
    base = Image.fromarray(rgb)
    image = base.convert("RGBA").convert("PA") if mode == "PA" else base.convert(mode)
    result = Hasher(("phash", "dhash", "ahash")).hash(image)
    assert result.hashes == imagehash_hex(image)


def test_flat_images_take_scipy_rounding_noise_into_account():
    # The coefficients of a flat image are 0 in exact arithmetic; scipy returns +-1e-14
    # noise whose signs set the pHash bits. A textbook DCT would get these wrong.
    for value in range(0, 256, 5):
        image = Image.new("L", (40, 40), value)
        assert Hasher(("phash",)).hash(image).hashes["phash"] == str(imagehash.phash(image))


def test_luma_identity_the_pdq_kernel_relies_on_holds_for_every_rgb_value():
    # native/pdq.pyx computes pdqhash's float64 luma r*0.299 + g*0.587 + b*0.114 (cast to
    # float32) as float32(299r + 587g + 114b) / 1000 in SIMD; prove it for all 2^24 colours.
    values = np.arange(256, dtype=np.float64)
    for r in range(256):
        g, b = np.meshgrid(values, values, indexing="ij")
        exact = (r * 0.299 + g * 0.587 + b * 0.114).astype(np.float32)
        fast = (299 * r + 587 * g + 114 * b).astype(np.float32) / np.float32(1000)
        assert np.array_equal(exact, fast), r
