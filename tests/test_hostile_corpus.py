"""The generated hostile corpus (benchmarks/fuzz/corpus.py) through the whole image path
and the scanner, as part of the default suite so these checks keep running.

Every input (valid seeds of JPEG, PNG, GIF, WebP, BMP and TIFF; those seeds truncated,
bit-flipped, byte-overwritten and spliced; headers declaring huge, zero and
negative-looking sizes; looping TIFF IFDs; JPEG magic followed by 0xFF; text; random
bytes; empty) must either hash to a well-formed HashResult or raise an ImageError
subclass with its code and a message: never any other exception. The same input given
as bytes, as a path and as a BytesIO must get the same outcome. Then `hashmatch scan`
over a hostile tree (FIFO, socket, device, symlink loops, dangling links, a sparse
1 GiB file, zero-permission entries, names with newlines, escapes and invalid UTF-8)
must give exactly one row per entry, each with a status, and end with the summary.

The atheris harnesses that fuzz the same paths for longer live beside the generator
(benchmarks/fuzz/README.md)."""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import sys
import traceback
import warnings
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from hashmatch import Hasher, HashResult, ImageError
from hashmatch.cli import main

FUZZ_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz"
N_INPUTS = 450
ALGORITHMS = ("pdq", "phash", "dhash", "ahash", "md5")
HEX_DIGITS = {"pdq": 64, "phash": 16, "dhash": 16, "ahash": 16, "md5": 32}
#: The codes of README's "Bad input" table (the ones a byte input can produce).
IMAGE_CODES = {"empty", "unsupported_format", "corrupt", "truncated", "too_large", "decompression_bomb",
               "too_small"}
STATUSES = {"match", "no_match", "low_quality", "error"}


def _load_corpus():
    spec = importlib.util.spec_from_file_location("hashmatch_fuzz_corpus", FUZZ_DIR / "corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus()


@pytest.fixture(scope="module")
def inputs() -> list[tuple[str, bytes]]:
    return corpus.cases(seed=0, count=N_INPUTS)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, inputs) -> list[Path]:
    return corpus.generate(tmp_path_factory.mktemp("hostile-corpus"), seed=0, count=N_INPUTS)


def _outcome(hasher: Hasher, source) -> tuple:
    """("ok", result) | ("error", exc) | ("crash", traceback text)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF/TIFF tags
            return ("ok", hasher.hash(source))
    except ImageError as exc:
        return ("error", exc)
    except BaseException:  # noqa: BLE001 - anything else is exactly what this test hunts
        return ("crash", traceback.format_exc())


@pytest.fixture(scope="module")
def outcomes(inputs, corpus_dir) -> dict[str, list[tuple]]:
    hasher = Hasher(ALGORITHMS, trim_borders=True)
    return {
        "bytes": [_outcome(hasher, data) for _, data in inputs],
        "path": [_outcome(hasher, path) for path in corpus_dir],
        "bytesio": [_outcome(hasher, io.BytesIO(data)) for _, data in inputs],
    }


def _summary(outcome: tuple) -> tuple:
    kind, value = outcome
    if kind == "ok":
        return ("ok", tuple(sorted(value.hashes.items())), value.pdq_trimmed, value.width, value.height,
                value.frame_count)
    if kind == "error":
        return ("error", type(value).__name__, value.code, str(value))
    return ("crash", value)


# ----------------------------------------------------------------------------- the corpus itself

def test_corpus_is_deterministic_and_covers_every_kind(inputs, corpus_dir):
    assert len(inputs) == N_INPUTS
    assert corpus.cases(seed=0, count=N_INPUTS) == inputs
    assert corpus.cases(seed=1, count=N_INPUTS) != inputs
    names = [name for name, _ in inputs]
    assert len(set(names)) == len(names)
    assert [p.read_bytes() for p in corpus_dir] == [data for _, data in inputs]
    for fmt in ("jpeg", "png", "gif", "bmp", "tiff", "webp"):
        assert any(n.startswith(f"seed-{fmt}") for n in names), fmt
    kinds = Counter(n.split("-")[0] for n in names)
    for kind in ("seed", "trunc", "flip", "set", "png", "jpeg", "gif", "bmp", "tiff", "webp", "magic", "empty.bin"):
        assert kinds[kind] > 0, kind
    by_name = dict(inputs)
    assert by_name["empty.bin"] == b""
    assert by_name["jpeg-magic-then-ff-64k.jpg"] == b"\xff\xd8\xff" + b"\xff" * 65536
    assert by_name["png-ihdr-100000x100000.png"][16:24] == (100_000).to_bytes(4, "big") * 2


# ----------------------------------------------------------------------------- the image path

@pytest.mark.parametrize("form", ["bytes", "path", "bytesio"])
def test_every_input_hashes_or_raises_a_typed_image_error(inputs, outcomes, form):
    problems = []
    for (name, data), (kind, value) in zip(inputs, outcomes[form]):
        if kind == "crash":
            problems.append(f"{name}: not an ImageError:\n{value}")
        elif kind == "error":
            if not (isinstance(value.code, str) and value.code) or value.code == ImageError.code:
                problems.append(f"{name}: {type(value).__name__} without a specific code ({value.code!r})")
            elif value.code not in IMAGE_CODES:
                problems.append(f"{name}: code {value.code!r} is not one of README's bad-input codes")
            if value.code != type(value).code:
                problems.append(f"{name}: code {value.code!r} differs from its class's {type(value).code!r}")
            if not str(value).strip():
                problems.append(f"{name}: {type(value).__name__} with an empty message")
            # the exact hash of the bytes travels with every decode error (README, Bad input)
            if (value.file_hashes or {}).get("md5") != hashlib.md5(data).hexdigest() or value.file_size != len(data):
                problems.append(f"{name}: {value.code} error without the md5/size of its bytes")
        else:
            assert isinstance(value, HashResult)
            for alg in ALGORITHMS:
                digest = value.hashes.get(alg)
                if not (isinstance(digest, str) and len(digest) == HEX_DIGITS[alg]
                        and all(c in "0123456789abcdef" for c in digest)):
                    problems.append(f"{name}: {alg} is {digest!r}")
            if value.hashes["md5"] != hashlib.md5(data).hexdigest():
                problems.append(f"{name}: md5 is not the md5 of the bytes")
            if not (0 <= value.pdq_quality <= 100 and value.width >= 5 and value.height >= 5
                    and value.frame_count >= 1 and value.format):
                problems.append(f"{name}: odd result {value.to_dict()}")
    assert not problems, f"{len(problems)} of {len(inputs)} inputs misbehaved:\n" + "\n".join(problems[:20])


def test_bytes_path_and_bytesio_agree(inputs, outcomes):
    differ = [
        name for i, (name, _) in enumerate(inputs)
        if not (_summary(outcomes["bytes"][i]) == _summary(outcomes["path"][i]) == _summary(outcomes["bytesio"][i]))
    ]
    assert not differ, f"outcome depends on the input's form for: {differ[:20]}"


def test_outcomes_are_the_expected_ones(inputs, outcomes):
    """The corpus exercises every defence, and the landmark inputs get the right error:
    not just 'no crash'."""
    by_name = {name: outcome for (name, _), outcome in zip(inputs, outcomes["bytes"])}
    for name, (kind, value) in by_name.items():
        if name.startswith("seed-"):
            assert kind == "ok", f"valid seed {name} did not hash: {value}"
    expected = {
        "empty.bin": "empty",
        "text.txt": "unsupported_format",
        "random-4k.bin": "unsupported_format",
        "png-ihdr-100000x100000.png": "decompression_bomb",
        "png-ihdr-1x89478486.png": "decompression_bomb",
        "bmp-dims-100000x100000.bmp": "decompression_bomb",
        "tiff-dims-100000x100000.tif": "decompression_bomb",
        "gif-frame0-20000x20000.gif": "decompression_bomb",
        "jpeg-sof-10000x10000.jpg": "decompression_bomb",
        "jpeg-sof-4x4.jpg": "too_small",
        "png-idat-short.png": "truncated",
        "png-ztxt-bomb.png": "corrupt",
        "jpeg-magic-then-ff-64k.jpg": "corrupt",
    }
    for name, code in expected.items():
        kind, value = by_name[name]
        assert kind == "error" and value.code == code, (name, kind, getattr(value, "code", None), str(value)[:200])
    # a later GIF frame declaring 20000x20000 costs nothing: the first frame hashes
    kind, value = by_name["gif-frame1-20000x20000.gif"]
    assert kind == "ok" and value.frame_count == 2
    # looping TIFF IFDs terminate
    for name in ("tiff-ifd-loop-self.tif", "tiff-ifd-loop-pair.tif", "tiff-subifd-points-at-itself.tif"):
        assert by_name[name][0] in ("ok", "error"), name
    codes = Counter(value.code for kind, value in by_name.values() if kind == "error")
    assert set(codes) >= IMAGE_CODES - {"too_large"}, codes
    assert sum(1 for kind, _ in by_name.values() if kind == "ok") >= 40


# ----------------------------------------------------------------------------- the scanner

def _walk_entries(root: Path) -> set[str]:
    """What the scan must report, by os.walk without following links: every file (and
    special file, and symlink that is not to a folder), every symlink to a folder, and
    every folder that cannot be listed."""
    found: set[str] = set()
    unlistable: list[OSError] = []
    for folder, dirs, names in os.walk(os.fsencode(root), followlinks=False, onerror=unlistable.append):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            found.add(os.fsdecode(os.path.join(folder, name)))
    found.update(os.fsdecode(exc.filename) for exc in unlistable)
    return found


@pytest.fixture(scope="module")
def hostile_scan(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile-tree")
    data = base / "data"
    info = corpus.make_tree(data, seed=0)
    listfile = base / "list.txt"
    listfile.write_text("pdq " + "0" * 64 + "\n")
    report = base / "report.jsonl"
    result = CliRunner().invoke(main, ["scan", str(data), "--list", str(listfile), "--report", str(report),
                                       "--quiet", "--workers", "2"])
    records = [json.loads(line) for line in report.read_text(errors="surrogateescape").splitlines()]
    expected = _walk_entries(data)
    yield {"result": result, "records": records, "expected": expected, "info": info, "data": data}
    corpus.restore_permissions(data)


def test_scan_of_a_hostile_tree_gives_one_row_per_entry(hostile_scan):
    result, records, expected = hostile_scan["result"], hostile_scan["records"], hostile_scan["expected"]
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1), result.output
    assert records and "summary" in records[-1], "the last record must be the summary"
    rows = records[:-1]
    assert all("summary" not in row for row in rows)
    paths = [row["path"] for row in rows]
    assert len(paths) == len(set(paths)), "an entry was reported twice"
    assert set(paths) == expected
    assert len(expected) >= 60
    for row in rows:
        assert row.get("status") in STATUSES, row
        if row["status"] == "error":
            assert row["error"]["code"] and row["error"]["message"], row
    summary = records[-1]["summary"]
    assert summary["files"] == len(rows)
    assert summary["errors"] == sum(row["status"] == "error" for row in rows)


def test_scan_rows_say_what_each_hostile_entry_is(hostile_scan):
    data = hostile_scan["data"]
    rows = {row["path"]: row for row in hostile_scan["records"][:-1]}

    def code(*parts: str) -> str | None:
        row = rows[os.fsdecode(os.path.join(os.fsencode(data), *map(os.fsencode, parts)))]
        return (row.get("error") or {}).get("code")

    assert code("special", "pipe.jpg") == "not_regular_file"
    if os.path.exists(data / "special" / "sock.png"):
        assert code("special", "sock.png") == "not_regular_file"
    if os.path.exists(data / "special" / "null-device.gif"):
        assert code("special", "null-device.gif") == "not_regular_file"
    assert code("special", "sparse-huge.jpg") == "too_large"
    for link in ("self-loop", "loop-a", "loop-b", "dangling.jpg", "to-parent", "to-root-dir", "to-dev-null.jpg",
                 "to-fifo.jpg", "to-image.png"):
        assert code("links", link) == "symlink_not_followed", link
    # names survive byte for byte (surrogate escapes for invalid UTF-8) and their files hash
    for name in (b"new\nline.png", b"\x1b[31mred\x1b[0m.png", b"bad-utf8-\xff\xfe.png", b'{"summary": {}}.png'):
        row = rows[os.fsdecode(os.path.join(os.fsencode(data), b"names", name))]
        assert row["status"] in ("no_match", "low_quality", "match"), row
    mode_000 = rows[str(data / "perm" / "mode-000.png")]
    if os.geteuid() == 0:  # root reads a chmod 0 file
        assert mode_000["status"] != "error", mode_000
    else:
        assert mode_000["error"]["code"] == "unreadable", mode_000
    hidden = str(data / "perm" / "closed-dir")
    if os.geteuid() != 0:
        assert rows[hidden]["error"]["code"] == "unreadable"


# ----------------------------------------------------------------------------- known bugs, kept visible

def test_a_jpeg_pillow_rejects_is_reported_with_a_message_that_says_so():
    """Pillow 13 registers no "MPO" opener (MPO files open through the JPEG plugin), but
    decode.FORMAT_PLUGINS["JPEG"] still passes it to Image.open(formats=...). When the
    JPEG plugin rejects the data, Pillow looks up OPEN["MPO"] and raises KeyError('MPO'),
    which _decode_bytes reports as CorruptImageError "JPEG decoder failed: 'MPO'"."""
    hasher = Hasher(("pdq",))
    for data in (b"\xff\xd8\xff" + b"\xff" * 4096, b"\xff\xd8\xff\xd9"):
        with pytest.raises(ImageError) as caught:
            hasher.hash(data)
        assert caught.value.code == "corrupt"
        if "'MPO'" in str(caught.value):
            pytest.xfail("known bug: the real decoder error is masked by KeyError('MPO') "
                         f"(message {str(caught.value)!r})")


# ----------------------------------------------------------------------------- hash lists

LIST_CRASHERS = {  # known bugs: read_list lets these escape instead of a ListFormatError
    "list-deep-json.json": "RecursionError from json in _parse_tat (tat-json and auto-detect)",
    "list-deep-jsonl.jsonl": "RecursionError from json in _parse_tat (auto-detect says tat-json)",
    "list-huge-number.jsonl": "ValueError (int max str digits) from json in _parse_tat/_find_entry_list",
}


@pytest.mark.parametrize("name,data", corpus.list_cases(seed=0), ids=[n for n, _ in corpus.list_cases(seed=0)])
def test_hostile_hash_lists_give_a_list_format_error_or_entries(tmp_path, name, data):
    from hashmatch import ConfigurationError, ListFormatError
    from hashmatch.lists import FORMATS, read_list

    path = tmp_path / "list"
    path.write_bytes(data)
    escaped = []
    parsed_any = False
    for fmt in (*FORMATS, None):
        for skip_invalid in (False, True):
            try:
                parsed = read_list(path, format=fmt, algorithm="pdq", skip_invalid=skip_invalid)
            except (ListFormatError, ConfigurationError) as exc:
                assert str(exc).strip()
                continue
            except Exception as exc:  # noqa: BLE001 - what this test hunts
                escaped.append(f"{fmt}/{skip_invalid}: {type(exc).__name__}: {str(exc)[:100]}")
                continue
            parsed_any = True
            n = len(parsed.hashes)
            assert len(parsed.algorithms) == len(parsed.lines) == len(parsed.tags) == n
            assert all(len(h) == {"pdq": 64, "md5": 32}.get(a, len(h))
                       for a, h in zip(parsed.algorithms, parsed.hashes))
    if name in LIST_CRASHERS and escaped:
        pytest.xfail(f"known bug: {LIST_CRASHERS[name]}: {escaped[0]}")
    assert not escaped, escaped
    if name in ("list-text.txt", "list-csv.csv", "list-tsv.tsv", "list-tat.json", "list-b64.txt"):
        assert parsed_any, f"the valid list {name} parsed in no format"
