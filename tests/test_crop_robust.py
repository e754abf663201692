"""Crop-robust matching (--crop-robust, decode.zoom_out): a centre or corner crop of a
listed picture matches through a zoom-out variant, whose name says the crop it assumed,
within crop_threshold; the variants are hashed only when asked; `hash --crop-robust`
records them and `lookup --crop-robust` matches them; malformed variants are refused."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from imagegen import encode, photo_like
from PIL import Image
from servicehelp import _cli

import hashmatch
from hashmatch.decode.zoom_out import AMOUNTS, ANCHORS, zoom_out_variants
from hashmatch.evaluation.transforms import crop


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
    variants = dict(zoom_out_variants(image))
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
            assert match.variant.startswith("crop:") and match.threshold == 40 and match.distance <= 40
            assert match.variant.endswith("%") and match.variant.split(":")[1] in ANCHORS
    assert found >= len(pictures) - 1, found


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
    assert len(record["pdq_crops"]) == 35
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
    assert len(value["crops"]) == 35 and all(len(code) == 64 for code in value["crops"].values())
