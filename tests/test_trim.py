"""Border trimming (off by default): a letterboxed or framed copy gets an extra PDQ of the
trimmed picture, which the matcher searches only when asked."""
from __future__ import annotations

import json

from types import SimpleNamespace

from click.testing import CliRunner

from hashmatch import Hasher
from hashmatch.cli import main
from hashmatch.hashing import trim_uniform_border
from hashmatch.matcher import Matcher
from hashmatch.store import Store
from hashmatch.synthetic import scene
from hashmatch.transforms import pad


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
