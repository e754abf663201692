"""Hostile and broken inputs: each gets a typed ImageError with a clear message, never a
crash, a hang, or a silently hashed partial image."""
from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from imagegen import encode, make_rgb
from PIL import Image, ImageFile

from hashmatch import (
    ConfigurationError,
    CorruptImageError,
    DecodeLimits,
    DecompressionBombError,
    EmptyInputError,
    Hasher,
    ImageError,
    ImageTooSmallError,
    InputTooLargeError,
    InputTypeError,
    NotARegularFileError,
    TruncatedImageError,
    UnreadableInputError,
    UnsupportedFormatError,
)

HASHER = Hasher(("pdq", "phash", "md5"))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_declaring(width: int, height: int) -> bytes:
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")


def gif_with_frame_size(frame: int, width: int, height: int, frames: int = 2) -> bytes:
    """A small animated GIF whose `frame`-th image descriptor claims width x height."""
    images = [Image.fromarray(make_rgb(10, 10, seed=i)).convert("P") for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:], duration=50)
    data = bytearray(buf.getvalue())
    pos, seen = 0, -1
    while seen < frame:  # image descriptors start with ',' followed by x, y, w, h (LE)
        pos = data.index(b",\x00\x00\x00\x00", pos + 1)
        seen += 1
    struct.pack_into("<HH", data, pos + 5, width, height)
    return bytes(data)


@pytest.fixture
def jpeg_bytes() -> bytes:
    return encode(make_rgb(400, 300, seed=1, kind="shapes"), "JPEG", quality=90)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.05])
def test_truncated_jpeg_is_an_error_not_a_partial_hash(tmp_path, jpeg_bytes, keep):
    path = tmp_path / "cut.jpg"
    path.write_bytes(jpeg_bytes[: int(len(jpeg_bytes) * keep)])
    with pytest.raises(TruncatedImageError, match="JPEG"):
        HASHER.hash(path)


def test_truncated_png_is_an_error():
    data = encode(make_rgb(200, 200, seed=2), "PNG")
    with pytest.raises(CorruptImageError):  # TruncatedImageError is a CorruptImageError
        HASHER.hash(data[: len(data) // 2])


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(EmptyInputError, match="empty"):
        HASHER.hash(path)
    with pytest.raises(EmptyInputError):
        HASHER.hash(b"")


def test_random_bytes_are_not_an_image():
    data = np.random.default_rng(0).integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    with pytest.raises(UnsupportedFormatError, match="not a recognised image format"):
        HASHER.hash(data)


def test_png_declaring_100000_squared_pixels_is_refused_before_decoding():
    with pytest.raises(DecompressionBombError, match="100000x100000|10000000000"):
        HASHER.hash(png_declaring(100_000, 100_000))


def test_gif_whose_first_frame_exceeds_pillows_limit():
    with pytest.raises(DecompressionBombError):
        HASHER.hash(gif_with_frame_size(0, 20_000, 20_000))


def test_gif_whose_later_frame_is_huge_still_hashes_its_first_frame():
    # Only the first frame is decoded, so a hostile later frame costs nothing; refusing
    # the file would lose a possible match. The frame count says the file is animated.
    hostile = HASHER.hash(gif_with_frame_size(1, 20_000, 20_000))
    clean = HASHER.hash(gif_with_frame_size(1, 10, 10))
    assert hostile.frame_count == 2 and hostile.first_frame_only
    assert hostile.hashes["pdq"] == clean.hashes["pdq"]


def test_gif_frame_beyond_the_configured_pixel_cap():
    hasher = Hasher(("pdq",), limits=DecodeLimits(max_pixels=10_000))
    with pytest.raises(DecompressionBombError, match="cap of 10000"):
        hasher.hash(gif_with_frame_size(0, 300, 300))


def test_configured_pixel_cap():
    data = encode(make_rgb(200, 100, seed=3), "PNG")
    with pytest.raises(DecompressionBombError, match="200x100"):
        Hasher(limits=DecodeLimits(max_pixels=19_999)).hash(data)
    assert Hasher(limits=DecodeLimits(max_pixels=20_000)).hash(data).width == 200


def test_configured_byte_cap_for_paths_and_bytes(tmp_path, jpeg_bytes):
    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg_bytes)
    hasher = Hasher(limits=DecodeLimits(max_bytes=len(jpeg_bytes) - 1))
    with pytest.raises(InputTooLargeError, match="byte cap"):
        hasher.hash(path)
    with pytest.raises(InputTooLargeError):
        hasher.hash(jpeg_bytes)
    with pytest.raises(InputTooLargeError):
        hasher.hash(io.BytesIO(jpeg_bytes))


def test_format_outside_the_allowlist_is_refused_before_decoding(jpeg_bytes):
    hasher = Hasher(limits=DecodeLimits(formats=frozenset({"PNG"})))
    with pytest.raises(UnsupportedFormatError, match="JPEG is not in the allowed formats"):
        hasher.hash(jpeg_bytes)
    with pytest.raises(ConfigurationError):
        DecodeLimits(formats=frozenset({"PSD"}))


def test_image_too_small():
    with pytest.raises(ImageTooSmallError, match="4x4"):
        HASHER.hash(encode(make_rgb(4, 4, seed=1), "PNG"))


def test_corrupt_png_data_and_corrupt_jpeg_header(jpeg_bytes):
    png = bytearray(encode(make_rgb(64, 64, seed=4), "PNG"))
    idat = png.index(b"IDAT")
    png[idat + 10: idat + 40] = b"\xff" * 30  # garbage in the compressed stream (CRC now wrong)
    with pytest.raises(CorruptImageError):
        HASHER.hash(bytes(png))
    with pytest.raises(CorruptImageError):
        HASHER.hash(jpeg_bytes[:4] + b"\x00" * 200)


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFileError):
        HASHER.hash(fifo)


def test_directory_named_like_an_image(tmp_path):
    folder = tmp_path / "photo.jpg"
    folder.mkdir()
    with pytest.raises(NotARegularFileError):
        HASHER.hash(folder)


def test_missing_and_unreadable_files(tmp_path, jpeg_bytes):
    with pytest.raises(UnreadableInputError, match="cannot open"):
        HASHER.hash(tmp_path / "nope.jpg")
    if os.geteuid() != 0:  # root reads anything
        path = tmp_path / "locked.jpg"
        path.write_bytes(jpeg_bytes)
        path.chmod(0)
        with pytest.raises(UnreadableInputError):
            HASHER.hash(path)


def test_refuses_to_run_with_pillow_truncation_tolerance(monkeypatch, jpeg_bytes):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ConfigurationError, match="partial images"):
        HASHER.hash(jpeg_bytes[: len(jpeg_bytes) // 2])


def test_bad_input_objects():
    with pytest.raises(InputTypeError, match="uint8"):
        Hasher().hash(np.zeros((10, 10), dtype=np.float32))
    with pytest.raises(InputTypeError, match="shape"):
        Hasher().hash(np.zeros((10, 10, 2), dtype=np.uint8))
    with pytest.raises(InputTypeError, match="file bytes"):
        Hasher(("md5",)).hash(Image.new("RGB", (10, 10)))
    with pytest.raises(InputTypeError, match="int"):
        Hasher().hash(42)
    with pytest.raises(InputTypeError, match="binary mode"):
        Hasher().hash(io.StringIO("text"))


def test_every_error_is_an_image_error_with_a_code_and_message(tmp_path, jpeg_bytes):
    inputs = [b"", b"garbage" * 10, jpeg_bytes[:500], png_declaring(100_000, 100_000), tmp_path / "missing"]
    results = list(HASHER.hash_many(inputs + [jpeg_bytes], threads=2))
    assert [type(r).__name__ for r in results] == [
        "EmptyInputError", "UnsupportedFormatError", "TruncatedImageError", "DecompressionBombError",
        "UnreadableInputError", "HashResult"]
    for error in results[:-1]:
        assert isinstance(error, ImageError) and str(error) and error.code
