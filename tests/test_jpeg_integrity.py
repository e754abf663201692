"""JPEGs that Pillow decodes "successfully" although they are cut short or corrupt.

libjpeg only warns when a scan runs out of data before an EOI marker (a file cut mid-scan
with FF D9 appended) or when the entropy-coded data is damaged, fills in grey or garbage,
and Pillow swallows the warning. hashmatch.decode.jpeg_check turns those warnings into
TruncatedImageError / CorruptImageError. The other half of these tests: every kind of
whole, valid JPEG still hashes, with PDQ equal to pdqhash on Pillow's pixels.
"""
from __future__ import annotations

import io

import numpy as np
import pdqhash
import pytest
from imagegen import encode, make_rgb
from PIL import Image

from hashmatch import CorruptImageError, DecodeLimits, Hasher, ImageTooSmallError, TruncatedImageError
from hashmatch.decode.jpeg_check import check_jpeg, classify_warning
from hashmatch.evaluation.synthetic import scene

HASHER = Hasher(("pdq",))
EOI = b"\xff\xd9"


def photo(width: int = 1024, height: int = 768, seed: int = 0) -> Image.Image:
    return scene(seed, 0).resize((width, height), Image.Resampling.BILINEAR)


def jpeg(image: Image.Image, **params) -> bytes:
    return encode(image, "JPEG", **params)


def entropy_segments(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every scan's entropy-coded data: from just after the SOS header to
    the next marker that is not a stuffed 00 or a restart marker."""
    segments, i = [], 2
    while i + 4 <= len(data):
        assert data[i] == 0xFF, f"no marker at {i}"
        marker = data[i + 1]
        if marker == 0xD9:
            break
        length = int.from_bytes(data[i + 2:i + 4], "big")
        i += 2 + length
        if marker != 0xDA:
            continue
        start = j = i
        while True:
            j = data.index(b"\xff", j)
            if data[j + 1] == 0x00 or 0xD0 <= data[j + 1] <= 0xD7:
                j += 2
                continue
            break
        segments.append((start, j))
        i = j
    return segments


def cut_with_eoi(data: bytes, fraction: float) -> bytes:
    """The file cut at `fraction` of its scan data (first SOS to EOI), EOI appended."""
    start, end = entropy_segments(data)[0][0], len(data) - 2
    return data[: start + int((end - start) * fraction)] + EOI


def pdqhash_hex(data: bytes) -> str:
    vectors, _quality = pdqhash.compute(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    return np.packbits(vectors.astype(np.uint8)).tobytes().hex()


@pytest.fixture(scope="module")
def photo_jpeg() -> bytes:
    return jpeg(photo(), quality=90)


# --- the audit finding: cut mid-scan, EOI appended --------------------------------------

@pytest.mark.parametrize("fraction", [0.5, 0.75, 0.9])
def test_cut_mid_scan_with_eoi_appended_is_truncated_not_hashed(photo_jpeg, fraction):
    data = cut_with_eoi(photo_jpeg, fraction)
    Image.open(io.BytesIO(data)).load()  # the premise: Pillow itself raises nothing
    with pytest.raises(TruncatedImageError, match="premature end of data segment") as info:
        HASHER.hash(data)
    assert info.value.code == "truncated"


def test_truncated_error_still_carries_the_exact_hashes(photo_jpeg):
    data = cut_with_eoi(photo_jpeg, 0.5)
    with pytest.raises(TruncatedImageError) as info:
        Hasher(("pdq", "sha256")).hash(data)
    assert info.value.file_size == len(data)
    assert set(info.value.file_hashes) == {"sha256"}


CUT_KINDS = {
    "baseline-420": dict(quality=90),
    "baseline-444": dict(quality=90, subsampling=0),
    "baseline-422": dict(quality=90, subsampling=1),
    "optimized": dict(quality=85, optimize=True),
    "progressive": dict(quality=90, progressive=True),
    "restart-every-mcu": dict(quality=90, restart_marker_blocks=1),
    "restart-every-row": dict(quality=90, restart_marker_rows=1),
    "quality-5": dict(quality=5),
}


@pytest.mark.parametrize("grey", [False, True], ids=["rgb", "grey"])
@pytest.mark.parametrize("kind", CUT_KINDS)
def test_every_cut_inside_scan_data_with_eoi_appended_is_truncated(kind, grey):
    image = photo(480, 320, seed=1)
    data = jpeg(image.convert("L") if grey else image, **CUT_KINDS[kind])
    segments = entropy_segments(data)
    start, end = segments[0][0], len(data) - 2
    cuts = [start + (end - start) * pct // 100 for pct in range(0, 100, 5)]
    # Only cuts inside some scan's data: a cut inside the headers between progressive
    # scans is Pillow's to refuse, and one exactly at a scan's end is a known gap.
    cuts = [c for c in cuts if any(s <= c < e for s, e in segments)]
    assert len(cuts) >= 15
    for cut in cuts:
        with pytest.raises(TruncatedImageError):
            HASHER.hash(data[:cut] + EOI)


def test_cut_between_restart_intervals_is_truncated():
    data = jpeg(photo(320, 240, seed=2), quality=90, restart_marker_rows=1)
    rst = data.index(b"\xff\xd3")  # cut where restart marker RST3 was due
    with pytest.raises(TruncatedImageError, match=r"found marker 0xd9 instead of RST3"):
        HASHER.hash(data[:rst] + EOI)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.99])
def test_plain_cut_without_eoi_is_still_truncated(photo_jpeg, fraction):
    data = photo_jpeg[: int(len(photo_jpeg) * fraction)]
    with pytest.raises(TruncatedImageError):
        HASHER.hash(data)
    with pytest.raises(TruncatedImageError, match="Premature end of JPEG file"):
        check_jpeg(data)


# --- corrupt scan data ------------------------------------------------------------------

def test_junk_after_a_whole_scan_is_hashed(photo_jpeg):
    """Bytes left over after the last block was decoded ("N extraneous bytes before
    marker"): some cameras write such junk into whole images. The picture is complete, so
    it is hashed (refusing it would lose a match); PDQ as pdqhash on Pillow's pixels."""
    data = photo_jpeg[:-2] + bytes(range(1, 65)) + EOI
    assert classify_warning("Corrupt JPEG data: 64 extraneous bytes before marker 0xd9") is None
    assert HASHER.hash(data).hashes["pdq"] == pdqhash_hex(data)


def test_junk_between_progressive_scans_is_hashed():
    data = jpeg(photo(320, 240), quality=90, progressive=True)
    end_of_first_scan = entropy_segments(data)[0][1]
    data = data[:end_of_first_scan] + bytes(range(1, 65)) + data[end_of_first_scan:]
    assert HASHER.hash(data).hashes["pdq"] == pdqhash_hex(data)


def test_run_of_one_bits_near_the_end_of_the_scan_is_a_bad_huffman_code(photo_jpeg):
    """64 one bits hold no valid Huffman code. libjpeg-turbo reports a bad code only in
    its careful path, used near the end of the data (its fast path, used elsewhere,
    decodes a bad code as 0 silently), hence the position."""
    _start, end = entropy_segments(photo_jpeg)[0]
    p = end - 300
    while photo_jpeg[p - 1] == 0xFF:
        p += 1
    data = photo_jpeg[:p] + b"\xff\x00" * 8 + photo_jpeg[p + 16:]
    with pytest.raises(CorruptImageError, match="bad Huffman code") as info:
        HASHER.hash(data)
    assert info.value.code == "corrupt"


def test_wrong_restart_marker_is_corrupt():
    data = bytearray(jpeg(photo(320, 240, seed=2), quality=90, restart_marker_rows=1))
    rst = data.index(b"\xff\xd2")
    data[rst + 1] = 0xD5
    with pytest.raises(CorruptImageError, match="found marker 0xd5 instead of RST2") as info:
        HASHER.hash(bytes(data))
    assert info.value.code == "corrupt"


@pytest.mark.parametrize("kind", ["baseline-420", "baseline-444", "optimized", "restart-every-row"])
@pytest.mark.parametrize("fraction", [0.2, 0.4, 0.6, 0.8])
def test_zeroed_block_in_scan_is_corrupt_or_truncated(kind, fraction):
    """A 4 KiB run of zeros (a lost disk block) inside the scan of a sequential JPEG."""
    data = bytearray(jpeg(photo(seed=3), **CUT_KINDS[kind]))
    start, end = entropy_segments(bytes(data))[0]
    p = start + int((end - start) * fraction)
    data[p:p + 4096] = bytes(4096)
    with pytest.raises(CorruptImageError):  # TruncatedImageError is one too
        HASHER.hash(bytes(data))


def test_many_flipped_byte_runs_are_detected_and_the_rest_hash(photo_jpeg):
    """XOR 64 consecutive scan bytes. JPEG has no checksum: damage that leaves the
    Huffman decoder in step is invisible to any decoder (about 60-80% of such runs are
    caught; 20 of these 24). Whatever is not caught hashes without any other error."""
    start, end = entropy_segments(photo_jpeg)[0]
    rng = np.random.default_rng(7)
    detected = 0
    for _ in range(24):
        data = bytearray(photo_jpeg)
        p = int(rng.integers(start + 1, end - 64))
        for q in range(p, p + 64):
            if data[q] != 0xFF and data[q - 1] != 0xFF and data[q] ^ 0x5A != 0xFF:
                data[q] ^= 0x5A
        try:
            HASHER.hash(bytes(data))
        except CorruptImageError:
            detected += 1
    assert detected >= 12


def test_an_image_too_small_to_hash_is_refused_as_too_small_before_the_check():
    """SOF rewritten to declare 4x4 (the scan holds far more): refused as too small,
    as before the check existed; with min_side=1 the check calls it corrupt (the scan
    holds thousands of bytes the declared 4x4 picture does not use)."""
    data = bytearray(jpeg(photo(320, 240), quality=90))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (4).to_bytes(2, "big") * 2
    with pytest.raises(ImageTooSmallError):
        HASHER.hash(bytes(data))
    with pytest.raises(CorruptImageError, match="extraneous bytes before marker 0xd9"):
        Hasher(("pdq",), limits=DecodeLimits(min_side=1)).hash(bytes(data))


# --- every kind of whole JPEG still hashes, PDQ as pdqhash on Pillow's pixels ------------

def _mpo() -> bytes:
    buf = io.BytesIO()
    first, second = photo(320, 240, seed=4), photo(320, 240, seed=5)
    first.save(buf, "MPO", save_all=True, append_images=[second], quality=90)
    return buf.getvalue()


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "hashmatch test"  # Make
    exif[0x0112] = 1  # Orientation
    return jpeg(photo(320, 240, seed=6), quality=90, exif=exif)


def _icc() -> bytes:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return jpeg(photo(320, 240, seed=7), quality=90, icc_profile=profile)


def _junk_between_header_segments() -> bytes:
    data = jpeg(photo(320, 240, seed=8), quality=90)
    dqt = data.index(b"\xff\xdb")
    return data[:dqt] + b"\x00\x12\x34" + data[dqt:]  # libjpeg: extraneous bytes before 0xdb


VALID = {
    "photo-1024x768": lambda: jpeg(photo(), quality=90),
    "progressive": lambda: jpeg(photo(320, 240), quality=90, progressive=True),
    "progressive-grey": lambda: jpeg(photo(320, 240).convert("L"), quality=80, progressive=True),
    "progressive-optimized": lambda: jpeg(photo(320, 240), quality=80, progressive=True, optimize=True),
    "restart-every-mcu": lambda: jpeg(photo(320, 240), quality=90, restart_marker_blocks=1),
    "restart-every-row": lambda: jpeg(photo(320, 240), quality=90, restart_marker_rows=1),
    "restart-progressive": lambda: jpeg(photo(320, 240), quality=90, restart_marker_rows=2, progressive=True),
    "subsampling-444": lambda: jpeg(photo(320, 240), quality=90, subsampling=0),
    "subsampling-422": lambda: jpeg(photo(320, 240), quality=90, subsampling=1),
    "subsampling-420": lambda: jpeg(photo(320, 240), quality=90, subsampling=2),
    "quality-1": lambda: jpeg(photo(320, 240), quality=1),
    "quality-100": lambda: jpeg(photo(320, 240), quality=100, subsampling=0),
    "optimized": lambda: jpeg(photo(320, 240), quality=75, optimize=True),
    "grey": lambda: jpeg(photo(320, 240).convert("L"), quality=90),
    "cmyk-adobe": lambda: jpeg(photo(320, 240).convert("CMYK"), quality=90),
    "rgb-coded-adobe": lambda: jpeg(photo(320, 240), quality=90, keep_rgb=True, subsampling=0),
    "exif": _exif,
    "icc-profile": _icc,
    "icc-profile-over-64k": lambda: jpeg(photo(320, 240), quality=90, icc_profile=bytes(100_000)),
    "comment": lambda: jpeg(photo(320, 240), quality=90, comment=b"hashmatch test"),
    "trailing-bytes-after-eoi": lambda: jpeg(photo(320, 240), quality=90) + b"\x00" * 64 + b"not jpeg",
    "trailing-ff-after-eoi": lambda: jpeg(photo(320, 240), quality=90) + b"\xff\xd8\xff\xe0\xff",
    "junk-between-header-segments": _junk_between_header_segments,
    "zero-padding-before-eoi": lambda: jpeg(photo(320, 240), quality=90)[:-2] + bytes(64) + EOI,
    "mpo-two-images": _mpo,
    "tiny-8x8": lambda: jpeg(Image.fromarray(make_rgb(8, 8, 1, "noise")), quality=90),
    "tiny-8x8-grey": lambda: jpeg(Image.fromarray(make_rgb(8, 8, 1, "noise")).convert("L"), quality=90),
    "odd-13x7": lambda: jpeg(Image.fromarray(make_rgb(13, 7, 2, "gradient")), quality=90),
    "odd-13x7-progressive": lambda: jpeg(Image.fromarray(make_rgb(13, 7, 3, "shapes")), quality=90,
                                         progressive=True),
    "odd-13x7-restart": lambda: jpeg(Image.fromarray(make_rgb(13, 7, 4, "noise")), quality=90,
                                     restart_marker_blocks=1),
    "minimum-5x5": lambda: jpeg(Image.fromarray(make_rgb(5, 5, 5, "noise")), quality=50),
    "odd-1001x999-444": lambda: jpeg(photo(1001, 999), quality=92, subsampling=0),
    "flat": lambda: jpeg(Image.fromarray(make_rgb(64, 48, 6, "flat")), quality=90),
}


@pytest.mark.parametrize("kind", VALID)
def test_whole_valid_jpeg_hashes_with_pdq_equal_to_pdqhash_on_pillow_pixels(kind):
    data = VALID[kind]()
    check_jpeg(data)  # no opinion or clean: never an error for a whole file
    result = HASHER.hash(data)
    assert result.hashes["pdq"] == pdqhash_hex(data)
    if kind == "mpo-two-images":
        assert result.format == "MPO"


# --- the checker itself ---------------------------------------------------------------

@pytest.mark.parametrize("message,kind", [
    ("Premature end of JPEG file", "truncated"),
    ("Corrupt JPEG data: premature end of data segment", "truncated"),
    ("Corrupt JPEG data: found marker 0xd9 instead of RST3", "truncated"),
    ("Corrupt JPEG data: found marker 0xc4 instead of RST0", "corrupt"),
    ("Corrupt JPEG data: bad Huffman code", "corrupt"),
    ("Corrupt JPEG data: bad arithmetic code", "corrupt"),
    ("Corrupt JPEG data: 45 extraneous bytes before marker 0xd9", None),  # junk after a whole scan
    ("Corrupt JPEG data: 401 extraneous bytes before marker 0xd5", "corrupt"),  # lost step inside the scan
    # warnings that say nothing about the scan data, and hard errors: no opinion
    ("Invalid SOS parameters for sequential JPEG", None),
    ("Warning: unknown JFIF revision number 3.01", None),
    ("Unknown Adobe color transform code 7", None),
    ("Corrupt JPEG data: bad ICC marker", None),
    ("Unsupported JPEG data precision 12", None),
    ("Unsupported color conversion request", None),
    ("Unsupported marker type 0xf3", None),
])
def test_classify_warning(message, kind):
    assert classify_warning(message) == kind


def test_what_libjpeg_turbo_cannot_decode_gets_no_opinion(monkeypatch):
    data = jpeg(photo(64, 48), quality=90)
    sof = data.index(b"\xff\xc0")
    twelve_bit = data[:sof + 4] + bytes([12]) + data[sof + 5:]  # SOF precision 12
    check_jpeg(twelve_bit)  # simplejpeg: "Unsupported JPEG data precision 12"

    import hashmatch.decode.jpeg_check as jpeg_check

    for error in (ValueError("Unsupported color conversion request"), RuntimeError("boom"), MemoryError()):
        def fail(*args, error=error, **kwargs):
            raise error
        monkeypatch.setattr(jpeg_check.simplejpeg, "decode_jpeg", fail)
        check_jpeg(data)


def test_known_gap_progressive_cut_exactly_at_a_scan_boundary_is_not_detected():
    """A progressive JPEG is a series of scans. Cut exactly where one scan ends (before
    the next DHT/SOS) with EOI appended, libjpeg sees a well-formed file with fewer
    refinement scans, which the JPEG standard allows, and gives no warning. Documented in
    the README; PDQ lands a few bits from the whole image's."""
    whole = jpeg(photo(seed=9), quality=90, progressive=True)
    segments = entropy_segments(whole)
    assert len(segments) >= 5
    end_of_first_scan = segments[0][1]
    partial = whole[:end_of_first_scan] + EOI
    result = HASHER.hash(partial)
    assert result.hashes["pdq"] == pdqhash_hex(partial)
    with pytest.raises(TruncatedImageError):  # one byte further into the scan it is caught
        HASHER.hash(whole[:end_of_first_scan - 1] + EOI)


def test_leftover_bytes_are_judged_by_how_many():
    """A few leftover bytes (camera junk) are no opinion; thousands of them (a decoder
    that lost step after a lost disk block) are corrupt."""
    message = "Corrupt JPEG data: {} extraneous bytes before marker 0xd9"
    assert classify_warning(message.format(64), 50_000) is None
    assert classify_warning(message.format(900), 10_000) is None
    assert classify_warning(message.format(8023), 60_000) == "corrupt"
    assert classify_warning(message.format(2000), 200_000) is None  # 1%: junk, not a lost block


def test_the_check_can_be_switched_off_for_speed(tmp_path):
    """DecodeLimits(verify_jpeg=False) / --no-verify-jpeg: a cut JPEG with EOI appended is
    then hashed as Pillow decodes it (the documented trade)."""
    from click.testing import CliRunner

    from hashmatch.cli import main

    whole = jpeg(photo(320, 240), quality=90)
    start, end = entropy_segments(whole)[0]
    cut = whole[:start + (end - start) // 2] + EOI
    with pytest.raises(TruncatedImageError):
        HASHER.hash(cut)
    assert Hasher(("pdq",), limits=DecodeLimits(verify_jpeg=False)).hash(cut).hashes["pdq"]
    (tmp_path / "cut.jpg").write_bytes(cut)
    strict = CliRunner().invoke(main, ["hash", str(tmp_path / "cut.jpg")])
    loose = CliRunner().invoke(main, ["hash", "--no-verify-jpeg", str(tmp_path / "cut.jpg")])
    assert strict.exit_code == 1 and '"truncated"' in strict.stdout
    assert loose.exit_code == 0 and '"pdq"' in loose.stdout
