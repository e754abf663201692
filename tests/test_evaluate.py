"""`hashmatch evaluate`: records checked against distances computed here from the Hasher
and a plain Hamming count, the dihedral and trim settings doing what they claim, user
transforms, the output files and the CLI."""
from __future__ import annotations

import json
import stat

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from hashmatch import Hasher
from hashmatch.cli import main
from hashmatch.decode.borders import trim_uniform_border
from hashmatch.evaluation.evaluate import evaluate, write_outputs
from hashmatch.evaluation.synthetic import scene
from hashmatch.evaluation.transforms import BUILTIN, pad

N = 8
SEED = 7


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


@pytest.fixture(scope="module")
def result():
    chosen = {name: BUILTIN[name] for name in ("jpeg_q50", "flip_horizontal", "pad_20pct", "crop_10pct")}
    chosen["user_invert"] = lambda image, rng: Image.eval(image.convert("RGB"), lambda v: 255 - v)
    return evaluate(generate=N, seed=SEED, transforms=chosen, workers=2, target_fmr=0.2)


def rec(result, setting, transform):
    algorithm, _, variant = setting.partition(":")
    return next(r for r in result.records
                if r["algorithm"] == algorithm and r["setting"] == (variant or "default")
                and r["transform"] == transform)


def test_records_match_an_independent_computation(result):
    hasher = Hasher(("pdq", "phash"))
    originals = [scene(SEED, i) for i in range(N)]
    base = [hasher.hash(o) for o in originals]
    for transform in ("jpeg_q50", "crop_10pct"):
        genuine, impostor = {"pdq": [], "phash": []}, {"pdq": [], "phash": []}
        for i, original in enumerate(originals):
            rng = np.random.default_rng([SEED, i, 7])
            copy = hasher.hash(BUILTIN[transform](original.copy(), rng))
            for a in ("pdq", "phash"):
                d = [hamming(copy.hashes[a], b.hashes[a]) for b in base]
                if a == "pdq" and copy.pdq_quality < 50:
                    d = [257] * N
                genuine[a].append(d[i])
                impostor[a].append(min(d[:i] + d[i + 1:]))
        for a, setting, threshold in (("pdq", "pdq:full", 31), ("phash", "phash", 6)):
            r = rec(result, setting, transform)
            assert r["copies"] == N and r["threshold"] == threshold
            assert r["recall"] == pytest.approx(np.mean(np.array(genuine[a]) <= threshold))
            assert r["false_match_rate"] == pytest.approx(np.mean(np.array(impostor[a]) <= threshold))
            assert r["impostor_min"] == min(impostor[a])
            # threshold_at_target: the largest t whose false-match rate stays <= 0.2
            imp = np.array(impostor[a])
            t = r["threshold_at_target"]
            nbits = 256 if a == "pdq" else 64
            assert np.mean(imp <= t) <= 0.2 and (t == nbits or np.mean(imp <= t + 1) > 0.2)
            assert r["recall_at_target"] == pytest.approx(np.mean(np.array(genuine[a]) <= t))


def test_dihedral_finds_flips_and_trim_finds_letterboxes(result):
    assert rec(result, "pdq:full", "flip_horizontal")["recall"] < 0.5
    assert rec(result, "pdq:full+dihedral", "flip_horizontal")["recall"] == 1.0
    assert rec(result, "pdq:cimg512+dihedral", "flip_horizontal")["recall"] == 1.0
    assert rec(result, "pdq:full", "pad_20pct")["recall"] < 0.5
    assert rec(result, "pdq:full+trim", "pad_20pct")["recall"] >= 0.85
    for setting in ("pdq:full+dihedral", "pdq:full+trim"):  # the extra variants add no false match here
        assert rec(result, setting, "jpeg_q50")["false_match_rate"] == 0.0
    assert rec(result, "pdq:full", "user_invert")["copies"] == N  # a user callable ran


def test_trim_uniform_border():
    image = scene(3, 1)
    boxed = pad(image, 0.2)
    trimmed = trim_uniform_border(boxed)
    assert trimmed is not None and abs(trimmed.size[1] - image.size[1]) <= 2 and trimmed.size[0] == image.size[0]
    assert trim_uniform_border(image) is None  # nothing flat to trim
    assert trim_uniform_border(Image.new("RGB", (50, 50), (9, 9, 9))) is None  # all flat: refuse


def test_outputs_and_plots(result, tmp_path):
    pytest.importorskip("matplotlib")
    written = write_outputs(result, str(tmp_path / "out"))
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    assert json.loads((tmp_path / "out" / "run.json").read_text())["originals"] == N
    keys = {"algorithm", "setting", "transform", "threshold", "recall", "false_match_rate"}
    assert isinstance(records, list) and all(keys <= set(r) for r in records)
    assert len(records) == 9 * 5  # every setting x the transforms
    for path in written:
        assert stat.S_IMODE((tmp_path / "out" / path.split("/")[-1]).stat().st_mode) == 0o600
    assert any(p.endswith("roc.png") for p in written)
    with Image.open(tmp_path / "out" / "recall.png") as png:
        assert png.size[0] > 500


def test_cli(tmp_path):
    folder = tmp_path / "originals"
    folder.mkdir()
    for i in range(3):
        scene(11, i).save(folder / f"o{i}.png")
    (folder / "notes.txt").write_text("not an image")
    got = CliRunner().invoke(main, ["evaluate", str(folder), "--generate", "2", "-o", str(tmp_path / "out"),
                                    "--transforms", "jpeg_q75,rotate_90",
                                    "--settings", "pdq:full,pdq:full+dihedral,phash",
                                    "--algorithms", "pdq", "--no-plots", "-w", "1"])
    assert got.exit_code == 0, got.output
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    assert json.loads((tmp_path / "out" / "run.json").read_text())["originals"] == 5
    assert len(records) == 4 and {r["algorithm"] for r in records} == {"pdq"}
    assert "| rotate_90 |" in got.stdout
    bad = CliRunner().invoke(main, ["evaluate", "-o", str(tmp_path / "x"), "--generate", "2", "--transforms", "nope"])
    assert bad.exit_code == 2


def test_an_unusable_original_is_skipped_with_its_reason_and_the_run_goes_on(tmp_path):
    """An odd original (a 12x36 LA clip-art PNG, a flat box on a flat ground, a file that
    is not an image) is either evaluated or recorded in run.json as skipped with its
    reason; the evaluation always finishes."""
    from PIL import ImageDraw

    folder = tmp_path / "originals"
    folder.mkdir()
    for i in range(3):
        scene(9, i).save(folder / f"scene-{i}.png")
    Image.new("LA", (12, 36), (200, 255)).save(folder / "clip-art.png")
    box = Image.new("L", (40, 60), 0)
    ImageDraw.Draw(box).rectangle((5, 5, 34, 54), fill=255)
    box.save(folder / "box.png")
    (folder / "not-an-image.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["evaluate", str(folder), "-o", str(out), "--no-plots", "-q", "-w", "1",
                                       "--transforms", "jpeg_q50,resize_0.5x,pad_10pct"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert any("not-an-image.png" in reason for reason in run["skipped"])
    assert run["originals"] == 5  # the three scenes, the clip art and the box
    assert json.loads((out / "results.json").read_text())


def test_the_crop_setting_decides_as_the_matcher_does(tmp_path):
    """pdq:full+crop against the oracle of the product itself on another path: a store of
    the originals and Matcher(crop_robust=True) on each copy's file. A copy counts as
    found by evaluate exactly when the Matcher reports its own original."""
    import hashmatch

    originals = [scene(SEED, i) for i in range(N)]
    transforms = {name: BUILTIN[name] for name in ("crop_corner_5pct", "crop_5pct", "jpeg_q50")}
    got = evaluate(generate=N, seed=SEED, transforms=transforms, settings=("pdq:full", "pdq:full+crop"), workers=2)
    hashes = [Hasher(("pdq",)).hash(o).hashes["pdq"] for o in originals]
    store = hashmatch.Store.create(tmp_path / "store").import_list(
        hashmatch.ParsedList.from_hashes("pdq", hashes), name="originals", version="1")
    matcher = hashmatch.Matcher(store, crop_robust=True)
    for transform in transforms:
        genuine, _ = got.distances["pdq:full+crop"][transform]
        found = []
        for i, original in enumerate(originals):
            copy = BUILTIN[transform](original.copy(), np.random.default_rng([SEED, i, 7]))
            found.append(any(m.store_id == i + 1 for m in matcher.match(copy).matches))
        assert list(genuine <= 31) == found, transform
        assert rec(got, "pdq:full+crop", transform)["recall"] >= rec(got, "pdq:full", transform)["recall"]
    assert rec(got, "pdq:full+crop", "crop_corner_5pct")["recall"] > rec(got, "pdq:full", "crop_corner_5pct")["recall"]
