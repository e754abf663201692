"""Crop-robust matching (--crop-robust, decode.zoom_out): a centre or corner crop of a
listed picture matches through a zoom-out variant, whose name says the crop it assumed;
a candidate within crop_search_radius is verified over the bits all the variant's
paddings agree on (masks checked against pdqhash on each padding, distances against a
brute-force count); the variants are hashed only when asked; `hash --crop-robust`
records them and `lookup --crop-robust` matches them; malformed variants are refused."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pdqhash
import pytest
from imagegen import encode, photo_like
from PIL import Image
from servicehelp import _cli

import hashmatch
from hashmatch.decode.zoom_out import AMOUNTS, ANCHORS, FILLS, WORK_SIDE, zoom_out_variants
from hashmatch.evaluation.transforms import crop
from hashmatch.signals.pdq import DEFAULT_CROP_SEARCH_RADIUS, DEFAULT_CROP_THRESHOLD, MIN_RELIABLE_BITS


def _photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    return photo_like(seed, size)


def _png(image: Image.Image) -> bytes:
    return encode(image, "PNG")


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory):
    pictures = [_photo(seed) for seed in range(40, 46)]
    hashes = [hashmatch.Hasher(("pdq",)).hash(_png(p)).hashes["pdq"] for p in pictures]
    root = tmp_path_factory.mktemp("crops")
    store = hashmatch.Store.create(root / "store").import_list(
        hashmatch.ParsedList.from_hashes("pdq", hashes), name="known", version="1")
    return store, pictures, root


def test_the_variants_pad_each_anchor_back_out() -> None:
    image = _photo(1)
    variants = {name: padded[0] for name, padded in zoom_out_variants(image)}
    assert len(variants) == len(AMOUNTS) * len(ANCHORS) == 35
    centre = variants["crop:centre:5%"]  # 256 x 192 at work size, 5% assumed cut from each side
    assert centre.shape == (192 + 2 * round(192 * 0.05 / 0.9), 256 + 2 * round(256 * 0.05 / 0.9), 3)
    corner = variants["crop:top-left:10%"]  # right and bottom padded: the top-left corner is the original's
    assert np.array_equal(corner[:192, :256], np.asarray(image.resize((256, 192), Image.Resampling.BOX)))
    assert np.all(corner[192:, :256] == corner[191:192, :256])  # the edge replicated


@pytest.mark.parametrize(("percent", "anchor"), [(5, "centre"), (5, "corner"), (10, "corner")])
def test_a_crop_matches_through_its_variant(listed, percent: int, anchor: str) -> None:
    store, pictures, _ = listed
    plain, robust = hashmatch.Matcher(store), hashmatch.Matcher(store, crop_robust=True)
    found = 0
    for index, picture in enumerate(pictures):
        query = _png(crop(picture, percent / 100, anchor))
        assert not plain.match(query).matched
        result = robust.match(query)
        ours = [m for m in result.matches if m.store_id == index + 1]
        if ours:
            found += 1
            match = ours[0]
            assert match.variant.startswith("crop:") and match.threshold == DEFAULT_CROP_THRESHOLD
            assert match.distance <= DEFAULT_CROP_THRESHOLD
            assert match.variant.endswith("%") and match.variant.split(":")[1] in ANCHORS
    assert found >= len(pictures) - 1, found


def _pdqhash_hex(pixels: np.ndarray) -> str:
    vector, _ = pdqhash.compute(np.ascontiguousarray(pixels))
    return np.packbits(vector.astype(np.uint8)).tobytes().hex()


def test_each_variant_is_padded_every_way_and_its_mask_is_the_bits_they_agree_on() -> None:
    """The oracle: pdqhash of each padding (numpy.pad's modes, the mean colour) of the picture
    scaled to WORK_SIDE; the searched hash is the edge padding's, the mask the bits on
    which all paddings' hashes agree."""
    image = _photo(3, (500, 360))
    value = hashmatch.Hasher(("pdq",), crop_robust=True).hash(_png(image)).values["pdq"]
    small = np.asarray(image.resize((WORK_SIDE, round(360 * WORK_SIDE / 500)), Image.Resampling.BOX))
    for name in ("crop:centre:5%", "crop:bottom-right:12%"):
        anchor, amount = name.split(":")[1], float(name.split(":")[2][:-1]) / 100
        top, bottom, left, right = ANCHORS[anchor]
        kept = 1 - 2 * amount if anchor == "centre" else 1 - amount
        pad_h, pad_w = round(small.shape[0] * amount / kept), round(small.shape[1] * amount / kept)
        padding = ((pad_h * top, pad_h * bottom), (pad_w * left, pad_w * right), (0, 0))
        mean_colour = np.full((small.shape[0] + sum(padding[0]), small.shape[1] + sum(padding[1]), 3),
                              np.round(small.reshape(-1, 3).mean(axis=0)), np.uint8)
        mean_colour[padding[0][0]:padding[0][0] + small.shape[0], padding[1][0]:padding[1][0] + small.shape[1]] = small
        hashes = [int(_pdqhash_hex(mean_colour if fill == "mean-colour" else np.pad(small, padding, mode=fill)), 16)
                  for fill in FILLS]
        agree = ~np.bitwise_or.reduce([h ^ hashes[0] for h in hashes[1:]]) & (2**256 - 1)
        assert value["crops"][name] == f"{hashes[0]:064x}"
        assert value["crop_masks"][name] == f"{agree:064x}"
        assert 0 < agree.bit_count() < 256  # the guessed band decides some bits, not all


def _flip(code: int, positions: np.ndarray) -> int:
    for position in positions.tolist():
        code ^= 1 << position
    return code


def test_a_candidate_is_verified_over_the_reliable_bits_only(listed) -> None:
    """Stage 1 finds a listed code within crop_search_radius of the searched variant;
    stage 2 counts only the bits the mask marks reliable, scaled to 256 (brute force
    below). The same 40 differing bits match where the mask calls them unsure and do
    not where it calls them reliable."""
    store, _, _ = listed
    listed_code = int(next(store.iter_entries()).hash, 16)
    rng = np.random.default_rng(5)
    order = rng.permutation(256)
    unsure, changed = order[:60], order[:40]  # 40 flipped bits, all among the 60 unsure ones
    mask = _flip(2**256 - 1, unsure)
    matcher = hashmatch.Matcher(store, crop_robust=True)
    plain_query = f"{listed_code ^ (2**256 - 1):064x}"  # the plain query matches nothing
    variant = f"{_flip(listed_code, changed):064x}"
    result = matcher.match_hashes({"pdq": plain_query}, pdq_crops={"crop:centre:5%": variant},
                                  pdq_crop_masks={"crop:centre:5%": f"{mask:064x}"})
    assert [(m.store_id, m.variant, m.distance, m.threshold) for m in result.matches] == [
        (1, "crop:centre:5%", 0, DEFAULT_CROP_THRESHOLD)]
    reliable_flips = order[60:100]  # 40 flipped bits where the mask says the query decides
    variant = f"{_flip(listed_code, reliable_flips):064x}"
    result = matcher.match_hashes({"pdq": plain_query}, pdq_crops={"crop:centre:5%": variant},
                                  pdq_crop_masks={"crop:centre:5%": f"{mask:064x}"})
    assert result.status == "no_match"
    # Between: 8 reliable and 20 unsure flips -> round(8 * 256 / 196) = 10, a match at 10.
    variant = f"{_flip(_flip(listed_code, order[60:68]), order[:20]):064x}"
    result = matcher.match_hashes({"pdq": plain_query}, pdq_crops={"crop:centre:5%": variant},
                                  pdq_crop_masks={"crop:centre:5%": f"{mask:064x}"})
    expected = round(int(np.unpackbits(np.frombuffer(bytes.fromhex(f"{(int(variant, 16) ^ listed_code) & mask:064x}"),
                                                      np.uint8)).sum()) * 256 / 196)
    assert [m.distance for m in result.matches] == [expected] == [10]


def test_the_first_stage_radius_and_the_reliable_bits_needed(listed) -> None:
    store, _, _ = listed
    listed_code = int(next(store.iter_entries()).hash, 16)
    order = np.random.default_rng(6).permutation(256)
    plain_query = f"{listed_code ^ (2**256 - 1):064x}"
    far = f"{_flip(listed_code, order[:DEFAULT_CROP_SEARCH_RADIUS + 1]):064x}"  # beyond the first stage
    mask = _flip(2**256 - 1, order[:DEFAULT_CROP_SEARCH_RADIUS + 1])  # though every flip is unsure
    matcher = hashmatch.Matcher(store, crop_robust=True)
    assert matcher.match_hashes({"pdq": plain_query}, pdq_crops={"crop:centre:5%": far},
                                pdq_crop_masks={"crop:centre:5%": f"{mask:064x}"}).status == "no_match"
    wider = hashmatch.Matcher(store, crop_robust=True, crop_search_radius=DEFAULT_CROP_SEARCH_RADIUS + 1)
    assert wider.match_hashes({"pdq": plain_query}, pdq_crops={"crop:centre:5%": far},
                              pdq_crop_masks={"crop:centre:5%": f"{mask:064x}"}).matched
    # A variant whose hash the guessed band mostly decides is not searched at all.
    few = _flip(0, order[:MIN_RELIABLE_BITS - 1])
    exact = f"{listed_code:064x}"
    assert matcher.match_hashes({"pdq": plain_query}, pdq_crops={"crop:centre:5%": exact},
                                pdq_crop_masks={"crop:centre:5%": f"{few:064x}"}).status == "no_match"
    # Without its mask a variant counts every bit: held to crop_threshold over all 256.
    near = f"{_flip(listed_code, order[:DEFAULT_CROP_THRESHOLD]):064x}"
    beyond = f"{_flip(listed_code, order[:DEFAULT_CROP_THRESHOLD + 1]):064x}"
    assert [m.distance for m in matcher.match_hashes({"pdq": plain_query}, pdq_crops={"crop:centre:5%": near}
                                                     ).matches] == [DEFAULT_CROP_THRESHOLD]
    assert matcher.match_hashes({"pdq": plain_query}, pdq_crops={"crop:centre:5%": beyond}).status == "no_match"


def test_variants_are_only_hashed_when_asked(listed) -> None:
    _, pictures, _ = listed
    data = _png(pictures[0])
    assert "crops" not in hashmatch.Hasher(("pdq",)).hash(data).values["pdq"]
    assert len(hashmatch.Hasher(("pdq",), crop_robust=True).hash(data).values["pdq"]["crops"]) == 35
    with pytest.raises(hashmatch.ConfigurationError, match="crop-robust"):
        hashmatch.Hasher(("md5",), crop_robust=True)


def test_hash_then_lookup_with_crop_robust(listed) -> None:
    store, pictures, root = listed
    (root / "cut.png").write_bytes(_png(crop(pictures[2], 0.05, "centre")))
    hashed = _cli("hash", "-a", "pdq", "--crop-robust", str(root / "cut.png"))
    assert hashed.returncode == 0, hashed.stderr
    record = json.loads(hashed.stdout)
    assert len(record["pdq_crops"]) == len(record["pdq_crop_masks"]) == 35
    for flags, expected in (((), 0), (("--crop-robust",), 1)):
        done = subprocess.run([sys.executable, "-m", "hashmatch.cli", "lookup", "-s", str(root / "store"), *flags],
                              input=hashed.stdout, capture_output=True, text=True, cwd="/")
        assert done.returncode == expected, done.stderr
    answer = json.loads(done.stdout)
    assert answer["matches"][0]["variant"].startswith("crop:") and answer["matches"][0]["store_id"] == 3


def test_malformed_crop_variants_are_refused(listed) -> None:
    store, _, _ = listed
    matcher = hashmatch.Matcher(store, crop_robust=True)
    with pytest.raises(hashmatch.ConfigurationError, match="crop variants"):
        matcher.match_hashes({"pdq": "f" * 64}, pdq_crops={"zoom": "f" * 64})
    with pytest.raises(hashmatch.ConfigurationError, match="crop variants"):
        matcher.match_hashes({"pdq": "f" * 64}, pdq_crops={"crop:centre:5%": "nothex"})
    many = {f"crop:centre:{n}%": "f" * 64 for n in range(1000)}  # a caller asking for 1,000 searches
    with pytest.raises(hashmatch.ConfigurationError, match="crop variants"):
        matcher.match_hashes({"pdq": "f" * 64}, pdq_crops=many)
    with pytest.raises(hashmatch.ConfigurationError, match="crop masks"):  # a mask of no variant
        matcher.match_hashes({"pdq": "f" * 64}, pdq_crops={"crop:centre:5%": "f" * 64},
                             pdq_crop_masks={"crop:centre:2%": "f" * 64})
    with pytest.raises(hashmatch.ConfigurationError, match="crop masks"):
        matcher.match_hashes({"pdq": "f" * 64}, pdq_crops={"crop:centre:5%": "f" * 64},
                             pdq_crop_masks={"crop:centre:5%": "f" * 63})


def test_scan_with_crop_robust_through_the_isolated_workers(listed) -> None:
    _, pictures, root = listed
    files = root / "uploads"
    files.mkdir()
    (files / "corner.png").write_bytes(_png(crop(pictures[4], 0.05, "corner")))
    plain = _cli("scan", str(files), "-s", str(root / "store"), "--report", str(root / "plain.jsonl"), "--quiet")
    assert plain.returncode == 0, plain.stderr
    robust = _cli("scan", str(files), "-s", str(root / "store"), "--report", str(root / "robust.jsonl"), "--quiet",
                  "--crop-robust")
    assert robust.returncode == 1, robust.stderr
    row = json.loads((root / "robust.jsonl").read_text().splitlines()[0])
    assert row["matches"][0]["store_id"] == 5 and row["matches"][0]["variant"].startswith("crop:")


@pytest.mark.parametrize("size", [(5, 5), (5, 2000), (2000, 5)])
def test_extreme_shapes_still_get_their_variants(size: tuple[int, int]) -> None:
    """The smallest decodable picture and a 1:400 strip: the variants (made at 256 px on the
    long side, so the short side shrinks to a pixel) are hashed without an error."""
    pixels = np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    value = hashmatch.Hasher(("pdq",), crop_robust=True, trim_borders=True).hash(pixels).values["pdq"]
    assert len(value["crops"]) == len(value["crop_masks"]) == 35
    assert all(len(code) == 64 for code in [*value["crops"].values(), *value["crop_masks"].values()])


def test_a_crop_of_an_entry_added_by_a_later_change_is_verified_too(listed, tmp_path) -> None:
    """The second stage reads the listed code of the candidate from the store generation
    the matcher searches: an entry of a small later import (an overlay) works as a base one."""
    store, _, _ = listed
    picture = _photo(50)
    code = hashmatch.Hasher(("pdq",)).hash(_png(picture)).hashes["pdq"]
    newer = store.import_list(hashmatch.ParsedList.from_hashes("pdq", [code]), name="later", version="1")
    result = hashmatch.Matcher(newer, crop_robust=True).match(_png(crop(picture, 0.05, "corner")))
    ours = [m for m in result.matches if m.list_name == "later"]
    assert ours and ours[0].variant.startswith("crop:") and ours[0].distance <= DEFAULT_CROP_THRESHOLD
    assert not hashmatch.Matcher(newer).match(_png(crop(picture, 0.05, "corner"))).matched
