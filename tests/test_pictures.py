"""Pictures inside a larger frame (decode.pictures, PDQ's picture variants under
--trim-borders): the rectangle found in generated screenshots and canvases, nothing found
in a plain photo or a flat page, the variant's evidence (its box), its own threshold, and
a screenshot of a listed picture matching through the Matcher while it did not before."""
from __future__ import annotations

import numpy as np
import pytest
from imagegen import encode, photo_like
from PIL import Image

import hashmatch
from hashmatch.decode.pictures import picture_boxes
from hashmatch.evaluation import screenshots


def _photo(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    return photo_like(seed, size)


def _png(image: Image.Image) -> bytes:
    return encode(image, "PNG")


@pytest.mark.parametrize("seed", range(4))
def test_the_pasted_rectangle_is_found(seed: int) -> None:
    picture = _photo(seed)
    page = Image.new("RGB", (900, 800), (240, 240, 236))
    page.paste(picture, (170 + seed * 20, 150))
    [box, *_] = picture_boxes(page)
    expected = (170 + seed * 20, 150, 170 + seed * 20 + 480, 510)
    assert all(abs(a - b) <= 6 for a, b in zip(box, expected)), (box, expected)


def test_nothing_in_a_photo_or_a_flat_page() -> None:
    assert picture_boxes(_photo(9)) == []  # the whole frame is the picture: the plain hash's job
    assert picture_boxes(Image.new("RGB", (600, 400), (255, 255, 255))) == []
    assert picture_boxes(Image.new("RGB", (20, 20))) == []


def test_a_screenshot_of_a_listed_picture_matches_with_its_box(tmp_path) -> None:
    pictures = [_photo(seed, (640, 480)) for seed in range(3)]
    hashes = [hashmatch.Hasher(("pdq",)).hash(_png(p)).hashes["pdq"] for p in pictures]
    store = hashmatch.Store.create(tmp_path / "store").import_list(
        hashmatch.ParsedList.from_hashes("pdq", hashes), name="known", version="1")
    shot = _png(screenshots.phone(pictures[1], np.random.default_rng(3)))
    assert hashmatch.Matcher(store).match(shot).status == "no_match"
    result = hashmatch.Matcher(store, trim_borders=True).match(shot)
    assert result.status == "match" and result.matches[0].store_id == 2
    match = result.matches[0]
    assert match.variant.startswith("picture:") and len(match.variant.split(":")[1].split(",")) == 4
    assert match.threshold == 31
    tight = hashmatch.Matcher(store, trim_borders=True, picture_threshold=max(0, match.distance - 1)).match(shot)
    assert tight.status == "no_match"  # the variant is held to its own threshold
    record = hashmatch.Hasher(("pdq",), trim_borders=True).hash(shot)
    assert record.values["pdq"]["pictures"][0]["box"] == [int(v) for v in match.variant[8:].split(",")]


def test_a_malformed_picture_variant_is_refused(tmp_path) -> None:
    store = hashmatch.Store.create(tmp_path / "store").import_list(
        hashmatch.ParsedList.from_hashes("pdq", ["f" * 64]), name="known", version="1")
    matcher = hashmatch.Matcher(store, trim_borders=True)
    with pytest.raises(hashmatch.ConfigurationError, match="box"):
        matcher.match_hashes({"pdq": "f" * 64}, pdq_pictures=[{"hash": "f" * 64, "quality": 90}])
    with pytest.raises(hashmatch.ConfigurationError, match="at most"):
        matcher.match_hashes({"pdq": "f" * 64}, pdq_pictures=[{"hash": "f" * 64, "quality": 90, "box": [0, 0, 1, 1]}]
                             * 50)
    with pytest.raises(hashmatch.ConfigurationError, match="hex"):
        matcher.match_hashes({"pdq": "f" * 64}, pdq_pictures=[{"hash": "xyz", "quality": 90, "box": [0, 0, 1, 1]}])
