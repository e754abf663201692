"""Border trimming (off by default): a letterboxed or framed copy gets an extra PDQ of the
trimmed picture, which the matcher searches only when asked."""
from __future__ import annotations

import json
from types import SimpleNamespace

from click.testing import CliRunner

from hashmatch import Hasher
from hashmatch.cli import main
from hashmatch.decode.borders import trim_uniform_border
from hashmatch.evaluation.synthetic import scene
from hashmatch.evaluation.transforms import pad
from hashmatch.matching.matcher import Matcher
from hashmatch.store.store import Store


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def test_hasher_trims_letterboxes_and_leaves_plain_images_alone():
    plain = Hasher(("pdq",))
    trimming = Hasher(("pdq",), trim_borders=True)
    for i in range(6):
        original = scene(5, i)
        boxed = trimming.hash(pad(original, 0.25))
        want = plain.hash(original).hashes["pdq"]
        assert boxed.pdq_trimmed is not None and hamming(boxed.pdq_trimmed, want) <= 16
        assert hamming(boxed.hashes["pdq"], want) > 31  # what a plain hash of the copy misses
        assert trimming.hash(original).pdq_trimmed is None
        assert "pdq_trimmed" not in plain.hash(pad(original, 0.25)).to_dict()


def test_trim_keeps_at_least_half_and_never_empties():
    from PIL import Image

    assert trim_uniform_border(Image.new("RGB", (64, 64), (3, 3, 3))) is None
    small = Image.new("RGB", (100, 100), (0, 0, 0))
    small.paste(scene(1, 1).resize((30, 30)), (35, 35))
    assert trim_uniform_border(small) is None  # the content is under half of each side


def test_matcher_searches_the_trimmed_variant_only_when_asked(tmp_path):
    originals = [scene(9, i) for i in range(5)]
    hexes = [Hasher(("pdq",)).hash(o).hashes["pdq"] for o in originals]
    parsed = SimpleNamespace(format="t", algorithms=["pdq"] * 5, hashes=hexes, categories=["c"] * 5,
                             entry_ids=[f"e{i}" for i in range(5)], dates=[None] * 5, tags=[()] * 5, retracted=[])
    store = Store.create(tmp_path / "s").import_list(parsed, name="L", version="1")
    copy = pad(originals[2], 0.3, colour=(250, 250, 245))  # a white letterbox
    assert Matcher(store).match(copy).status == "no_match"
    result = Matcher(store, trim_borders=True).match(copy)
    assert result.status == "match" and [(m.entry_id, m.variant) for m in result.matches] == [("e2", "trimmed")]
    both = Matcher(store, trim_borders=True, dihedral=True).match(copy)
    assert [(m.entry_id, m.variant) for m in both.matches] == [("e2", "trimmed")]

    # scan and hash | lookup take the option too
    folder = tmp_path / "in"
    folder.mkdir()
    copy.save(folder / "framed.png")
    lst = tmp_path / "l.txt"
    lst.write_text("".join(f"pdq {h}\n" for h in hexes))
    runner = CliRunner()
    for flag, want in (([], "no_match"), (["--trim-borders"], "match")):
        report = tmp_path / f"r{len(flag)}.jsonl"
        runner.invoke(main, ["scan", str(folder), "--list", str(lst), "--report", str(report), "-q", *flag])
        assert json.loads(report.read_text().splitlines()[0])["status"] == want
    hashed = runner.invoke(main, ["hash", "--trim-borders", str(folder / "framed.png")])
    looked = runner.invoke(main, ["lookup", "--store", str(tmp_path / "s"), "--trim-borders"], input=hashed.stdout)
    assert json.loads(looked.stdout)["matches"][0]["variant"] == "trimmed"


MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "I;16", "F", "LAB", "HSV", "La", "RGBa")


def _box(mode: str, size: tuple[int, int], inset: int):
    """A black image of `mode` holding a white rectangle `inset` px in from each edge."""
    from PIL import Image, ImageDraw

    image = Image.new("L", size, 0)
    ImageDraw.Draw(image).rectangle((inset, inset, size[0] - 1 - inset, size[1] - 1 - inset), fill=255)
    return image.convert("RGB").convert(mode) if mode not in ("L", "1") else image.convert(mode)


def test_trim_never_raises_on_flat_tiny_or_boxed_images_of_any_mode():
    """A uniform image, a tiny one, a single colour, and a flat box on a flat ground (after
    conversion no column differs from the border: the trimmed box used to be empty and
    raised IndexError out of trim_uniform_border and Hasher(trim_borders=True))."""
    from PIL import Image

    from hashmatch import ImageError
    from hashmatch.signals.hasher import to_rgb

    trimming = Hasher(("pdq",), trim_borders=True)
    images = []
    for mode in MODES:
        for size in ((1, 1), (5, 5), (8, 8), (12, 36), (64, 64)):
            images.append(Image.new(mode, size))
        images += [_box(mode, (60, 40), 5), _box(mode, (40, 60), 5), _box(mode, (12, 36), 3)]
    outcomes = {"hashed": 0, "error": 0}
    for image in images:
        trimmed = trim_uniform_border(to_rgb(image))
        assert trimmed is None or min(trimmed.size) >= 1
        try:
            result = trimming.hash(image)
        except ImageError:  # e.g. below PDQ's 5-pixel minimum: the only kind of failure allowed
            outcomes["error"] += 1
            continue
        outcomes["hashed"] += 1
        assert result.pdq_trimmed is None or len(result.pdq_trimmed) == 64
    assert outcomes["hashed"] >= 6 * len(MODES)
    # The flat box on a flat ground: nothing is trimmed (a flat box has nothing to hash).
    assert trim_uniform_border(_box("RGB", (40, 60), 5)) is None
    assert trim_uniform_border(Image.new("RGB", (40, 60), (255, 0, 0))) is None
