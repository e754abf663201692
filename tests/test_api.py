"""The Python API: every input kind, every format and mode, animation, EXIF orientation,
cryptographic hashes, results, and thread safety."""
from __future__ import annotations

import hashlib
import io
import threading

import numpy as np
import pdqhash
import pytest
from imagegen import encode, make_rgb
from PIL import Image, features

from hashmatch import ALGORITHMS, ConfigurationError, Hasher, HashResult, hash_image, parse_algorithms

ALL = Hasher(ALGORITHMS)
PERCEPTUAL = Hasher(("pdq", "phash", "dhash", "ahash"))


def pdqhash_rgb(image: Image.Image) -> tuple[str, int]:
    vector, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
    return np.packbits(vector.astype(np.uint8)).tobytes().hex(), quality


@pytest.fixture(scope="module")
def png_bytes() -> bytes:
    return encode(make_rgb(320, 240, seed=5, kind="shapes"), "PNG")


def test_every_input_kind_gives_the_same_hashes(tmp_path, png_bytes):
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes)
    with_bytes = [path, str(path), png_bytes, bytearray(png_bytes), memoryview(png_bytes), io.BytesIO(png_bytes)]
    results = [ALL.hash(s) for s in with_bytes]
    assert all(r.hashes == results[0].hashes for r in results)
    image = Image.open(io.BytesIO(png_bytes))
    for source in (image, np.asarray(image.convert("RGB")), np.asarray(image.convert("RGBA"))):
        assert PERCEPTUAL.hash(source).hashes == {k: results[0].hashes[k] for k in ("pdq", "phash", "dhash", "ahash")}


def test_cryptographic_hashes_are_of_the_exact_bytes(png_bytes):
    result = Hasher(("md5", "sha1", "sha256")).hash(png_bytes)
    assert result.hashes == {name: hashlib.new(name, png_bytes).hexdigest() for name in ("md5", "sha1", "sha256")}
    assert result.pdq_quality is None


def test_result_fields_and_dict(png_bytes):
    result = Hasher(("pdq", "sha256"), dihedral=True).hash(png_bytes)
    assert (result.width, result.height, result.format, result.mode, result.frame_count) == (320, 240, "PNG", "RGB", 1)
    assert len(result.hashes["pdq"]) == 64 and 0 <= result.pdq_quality <= 100
    assert result.pdq_dihedral["original"] == result.hashes["pdq"] and len(result.pdq_dihedral) == 8
    record = result.to_dict()
    assert record["pdq"] == result.hashes["pdq"] and record["pdq_quality"] == result.pdq_quality
    assert record["frames"] == 1 and record["pdq_dihedral"]["rot90"] == result.pdq_dihedral["rot90"]


FORMATS = [("JPEG", {"quality": 92}), ("PNG", {}), ("GIF", {}), ("WEBP", {"quality": 90}),
           ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})]
if features.check("avif"):
    FORMATS.append(("AVIF", {"quality": 90}))


@pytest.mark.parametrize("fmt,params", FORMATS,
                         ids=[f"{f}{'-lossless' if p.get('lossless') else ''}" for f, p in FORMATS])
def test_formats_decode_and_equal_pdqhash_on_the_same_pixels(fmt, params):
    data = encode(make_rgb(257, 190, seed=8, kind="gradient"), fmt, **params)
    result = PERCEPTUAL.hash(data)
    assert result.format == fmt
    assert (result.hashes["pdq"], result.pdq_quality) == pdqhash_rgb(Image.open(io.BytesIO(data)))


def test_heic_with_the_optional_plugin():
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    data = encode(make_rgb(256, 192, seed=9, kind="shapes"), "HEIF", quality=90)
    result = PERCEPTUAL.hash(data)
    assert result.format == "HEIF"
    assert (result.hashes["pdq"], result.pdq_quality) == pdqhash_rgb(Image.open(io.BytesIO(data)))


def test_reference_mode_images_all_hash_and_follow_convert_rgb(reference):
    files = sorted((reference / "pdq/data/misc-images/modes").iterdir())
    assert len(files) >= 14
    for path in files:
        if path.suffix == ".md":
            continue
        result = PERCEPTUAL.hash(path)
        assert (result.hashes["pdq"], result.pdq_quality) == pdqhash_rgb(Image.open(path)), path.name


@pytest.mark.parametrize("mode", ["P", "CMYK", "1"])
def test_modes_where_python_threatexchange_hashes_raw_channels(reference, mode):
    # python-threatexchange feeds pdqhash np.asarray(image) for these modes: palette
    # indices or C, M, Y values, not the visible picture. hashmatch hashes the visible
    # picture (convert("RGB")); the two differ, by design.
    original = Image.open(reference / "pdq/data/misc-images/modes/original.jpg")
    image = original.convert(mode)
    ours = hash_image(image).hashes["pdq"]
    assert ours == pdqhash_rgb(image)[0]
    raw = np.asarray(image)
    raw = (np.repeat(raw[:, :, None], 3, axis=2).astype(np.uint8) if raw.ndim == 2
           else np.ascontiguousarray(raw[:, :, :3]))
    vector, _ = pdqhash.compute(raw)
    if mode != "1":  # "1" as raw 0/1 values is visible-equivalent up to contrast
        assert np.packbits(vector.astype(np.uint8)).tobytes().hex() != ours


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr",
                                  "I", "I;16", "F", "LAB", "HSV"])
def test_every_pillow_mode_hashes(mode):
    base = Image.fromarray(make_rgb(120, 80, seed=3, kind="shapes"))
    image = base.convert("RGBA").convert("PA") if mode == "PA" else base.convert(mode) if mode != "LAB" else \
        Image.merge("LAB", [base.convert("L")] * 3)
    result = PERCEPTUAL.hash(image)
    assert result.mode == mode and len(result.hashes["pdq"]) == 64


def test_animated_gif_hashes_the_first_frame_and_says_so():
    frames = [Image.fromarray(make_rgb(64, 48, seed=s, kind="shapes")).convert("P") for s in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    first = io.BytesIO()
    frames[0].save(first, "GIF")
    result = PERCEPTUAL.hash(buf.getvalue())
    assert result.frame_count == 3 and result.first_frame_only
    assert result.hashes == PERCEPTUAL.hash(first.getvalue()).hashes


def test_exif_orientation_is_ignored_by_default_and_applied_on_request():
    rgb = make_rgb(300, 200, seed=4, kind="shapes")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    data = encode(rgb, "JPEG", quality=95, exif=exif.tobytes())
    plain = Hasher().hash(data)
    decoded = Image.open(io.BytesIO(data)).convert("RGB")
    assert plain.hashes["pdq"] == pdqhash_rgb(decoded)[0] and not plain.exif_transposed
    turned = Hasher(exif_transpose=True).hash(data)
    assert turned.exif_transposed and (turned.width, turned.height) == (200, 300)
    assert turned.hashes["pdq"] == pdqhash_rgb(decoded.transpose(Image.Transpose.ROTATE_270))[0]


def test_concurrent_threads_share_one_hasher_and_agree_with_sequential():
    sources = [encode(make_rgb(200 + 7 * i, 150 + 3 * i, seed=i), "JPEG", quality=85) for i in range(24)]
    hasher = Hasher(("pdq", "phash", "dhash", "ahash", "sha1"), dihedral=True)
    expected = [hasher.hash(s) for s in sources]
    got: dict[int, HashResult] = {}

    def work(offset: int) -> None:
        for i in range(offset, len(sources), 4):
            got[i] = hasher.hash(sources[i])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[i] for i in range(len(sources))] == expected
    assert list(hasher.hash_many(sources, threads=3)) == expected


def test_algorithm_parsing_and_configuration_errors():
    assert parse_algorithms("PDQ, phash,pdq") == ("pdq", "phash")
    assert parse_algorithms(["pdq,md5", "sha256"]) == ("pdq", "md5", "sha256")
    for bad in ("sha512", "", "pdq,nope"):
        with pytest.raises(ConfigurationError):
            parse_algorithms(bad)
    with pytest.raises(ConfigurationError, match="PDQ mode"):
        Hasher(pdq_mode="fast")
    with pytest.raises(ConfigurationError, match="dihedral"):
        Hasher(("phash",), dihedral=True)
