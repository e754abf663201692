"""The batched matching path (Matcher.match_records_many and match_hashes_many,
`hashmatch lookup`): every answer equals the single-query path's and a numpy brute force,
in input order, whatever a batch holds (malformed queries, exact hashes, dihedral
variants, gated qualities, videos, an overlay's hidden and added rows), and `lookup`
answers a line fed one at a time before the next one arrives (a co-process)."""
from __future__ import annotations

import json
import select
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hashmatch.errors import ConfigurationError
from hashmatch.index.engines import MultiIndexEngine
from hashmatch.lists import ParsedList
from hashmatch.matching.matcher import Matcher
from hashmatch.store import overlay as store_overlay
from hashmatch.store.store import Store
from hashmatch.video import vpdq

RNG = np.random.default_rng(20261130)


def _flip(code: np.ndarray, bits: int) -> np.ndarray:
    out = code.copy()
    for b in RNG.choice(256, bits, replace=False):
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A store whose PDQ base is a multi-index (9,000 codes: uniform, near-duplicate
    families, repeats), with an exact list, a video list, and an overlay that disables
    base rows and adds a small PDQ list."""
    uniform = RNG.integers(0, 256, (4000, 32), dtype=np.uint8)
    heads = RNG.integers(0, 256, (500, 32), dtype=np.uint8)
    family = np.stack([_flip(heads[i % 500], int(RNG.integers(0, 20))) for i in range(4500)])
    codes = np.concatenate([uniform, family, uniform[:500]])  # 500 repeated hashes
    md5s = RNG.integers(0, 256, (40, 16), dtype=np.uint8)
    small = np.stack([_flip(heads[i], 5) for i in range(100)])
    frames = [[RNG.integers(0, 256, 32, dtype=np.uint8) for _ in range(6)] for _ in range(3)]
    videos = [vpdq.to_signal_string([vpdq.Frame(f.tobytes().hex(), 100, float(i), i) for i, f in enumerate(v)])
              for v in frames]
    store = Store.create(tmp_path_factory.mktemp("batch") / "store")
    parsed = ParsedList.from_hashes("pdq", [c.tobytes().hex() for c in codes], category="c")
    parsed.entry_ids[:] = [f"e{i}" for i in range(len(codes))]
    store = store.import_list(parsed, name="base", version="1")
    store = store.import_list(ParsedList.from_hashes("md5", [m.tobytes().hex() for m in md5s]), name="md5", version="2")
    store = store.import_list(ParsedList.from_hashes("vpdq", videos), name="videos", version="3")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_overlay, "OVERLAY_MIN_BASE", 1_000)
        disabled = [e.id for e in store.iter_entries("base")][4000:4300]  # family members
        store = store.set_disabled(disabled, True, "false positive")
        store = store.import_list(ParsedList.from_hashes("pdq", [c.tobytes().hex() for c in small]),
                                  name="small", version="4")
    assert store.manifest.overlay is not None
    # The oracle: every active PDQ code with its store id.
    active = [(e.id, bytes.fromhex(e.hash)) for e in store.iter_entries(include_disabled=False) if e.algorithm == "pdq"]
    oracle_ids = np.array([i for i, _ in active])
    oracle_codes = np.frombuffer(b"".join(c for _, c in active), np.uint8).reshape(-1, 32)
    return {"store": store, "codes": codes, "md5s": md5s, "frames": frames, "videos": videos,
            "oracle": (oracle_ids, oracle_codes)}


def _queries(world: dict, n: int) -> list[tuple[dict, list[str] | None]]:
    """(record, algorithms) pairs: mostly near copies of listed codes, with malformed
    ones, exact hashes, qualities below the gate, dihedral records and videos mixed in."""
    codes, items = world["codes"], []
    for i in range(n):
        code = _flip(codes[int(RNG.integers(0, len(codes)))], int(RNG.integers(0, 40))).tobytes().hex()
        kind = i % 10
        if kind == 0:
            items.append(({"pdq": code[:-1] + "z"}, ["pdq"]))  # malformed
        elif kind == 1:
            md5 = world["md5s"][i % 40].tobytes().hex() if i % 20 else "0" * 32
            items.append(({"pdq": code, "md5": md5}, ["pdq", "md5"]))
        elif kind == 2:
            items.append(({"pdq": code, "pdq_quality": int(RNG.integers(0, 100))}, None))
        elif kind == 3:  # dihedral variants: a listed code hidden among random ones
            variants = {name: RNG.integers(0, 256, 32, dtype=np.uint8).tobytes().hex()
                        for name in ("rot90", "rot180", "flipx")}
            variants["flipx"] = code
            items.append(({"pdq": RNG.integers(0, 256, 32, dtype=np.uint8).tobytes().hex(),
                           "pdq_dihedral": {"original": code[::-1], **variants}}, ["pdq"]))
        elif kind == 4:
            items.append(({"vpdq": world["videos"][i % 3]}, ["vpdq"]))
        elif kind == 5:
            items.append(({"nosuch": code}, ["nosuch"]))
        else:
            items.append(({"pdq": code}, ["pdq"]))
    return items


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dihedral", [False, True])
def test_batches_answer_what_single_queries_answer(world: dict, threads: int, dihedral: bool) -> None:
    matcher = Matcher(world["store"], dihedral=dihedral)
    assert isinstance(matcher._engines["pdq"], MultiIndexEngine) and len(matcher._layers["pdq"]) == 2
    items = _queries(world, 700)  # three batches of 256
    batched = list(matcher.match_records_many(items, threads=threads))
    assert len(batched) == len(items)
    kinds = set()
    for (record, algorithms), got in zip(items, batched):
        try:
            want = matcher.match_record(record, algorithms=algorithms)
        except ConfigurationError as exc:
            assert isinstance(got, ConfigurationError) and str(got) == str(exc)
            kinds.add("error")
            continue
        assert not isinstance(got, ConfigurationError)
        assert got.to_dict() == want.to_dict()
        kinds.update(m.algorithm for m in got.matches)
        kinds.update(f"variant:{m.variant}" for m in got.matches if m.variant)
        kinds.add(got.status)
    required = {"error", "pdq", "md5", "vpdq", "match", "no_match", "low_quality"}
    assert required | ({"variant:flipx"} if dihedral else set()) <= kinds


def test_batched_pdq_answers_equal_brute_force(world: dict) -> None:
    """Independent of the single path: each PDQ answer is the brute-force set of active
    codes within 31 bits (disabled base rows absent, the overlay's added rows present)."""
    ids, codes = world["oracle"]
    queries = [_flip(world["codes"][int(i)], int(RNG.integers(0, 40))) for i in RNG.integers(0, 9000, 600)]
    queries += [_flip(world["codes"][4100], 3)]  # a disabled family's member
    results = list(Matcher(world["store"]).match_hashes_many(({"pdq": q.tobytes().hex()} for q in queries),
                                                            threads=2))
    for q, result in zip(queries, results):
        d = np.bitwise_count(codes ^ q).sum(axis=1)
        assert sorted((m.store_id, m.distance) for m in result.matches) == sorted(
            zip(ids[d <= 31].tolist(), d[d <= 31].tolist()))
    assert all(m.list_name in ("base", "small") for r in results for m in r.matches)


def test_an_empty_batch_and_bad_threads(world: dict) -> None:
    matcher = Matcher(world["store"])
    assert list(matcher.match_hashes_many([])) == []
    with pytest.raises(ConfigurationError):
        list(matcher.match_hashes_many([{"pdq": "0" * 64}], threads=0))


def test_lookup_answers_each_line_before_the_next_arrives(world: dict, tmp_path: Path) -> None:
    """A program that feeds `hashmatch lookup` a line and waits for its answer gets it,
    bad lines included; a file is answered whole, in order."""
    store = world["store"].path
    proc = subprocess.Popen(["hashmatch", "lookup", "-s", str(store)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd="/")
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for line, status in ((f"pdq {world['codes'][7].tobytes().hex()}", "match"), ("zz", None),
                             (world["md5s"][3].tobytes().hex(), "match"), ("pdq " + "0" * 64, "no_match")):
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, f"no answer to {line!r} while waiting for more input"
            answer = json.loads(proc.stdout.readline())
            assert answer["query"] == line and answer.get("status") == status
            assert (status is None) == ("error" in answer)
    finally:
        proc.stdin.close()
        assert proc.wait(60) == 1  # something matched
    lines = [f"pdq {c.tobytes().hex()}" for c in world["codes"][:600:3]] + ["", "bad line here", "pdq " + "0" * 64]
    (tmp_path / "q.txt").write_text("\n".join(lines) + "\n")
    outputs = []
    for workers in ([], ["-w", "1"]):
        with open(tmp_path / "q.txt") as stdin:
            outputs.append(subprocess.run(["hashmatch", "lookup", "-s", str(store), *workers], stdin=stdin,
                                          capture_output=True, text=True, cwd="/", check=False).stdout)
    assert outputs[0] == outputs[1]  # one matching thread or all cores: the same answers
    answers = [json.loads(line) for line in outputs[0].splitlines()]
    assert [a["query"] for a in answers] == [line for line in lines if line]
    assert [a.get("status") for a in answers] == ["match"] * 200 + [None, "no_match"]


def test_lookup_survives_hostile_stdin(world: dict, tmp_path: Path) -> None:
    """A line over MAX_LINE_BYTES is answered with an error and skipped without being held
    whole; bytes that are not UTF-8 get an error, not a crash; the last line needs no
    newline; the lines around them are matched."""
    from hashmatch.cli.lookup import MAX_LINE_BYTES

    good = f"pdq {world['codes'][11].tobytes().hex()}".encode()
    data = b"\n".join([good, b"a" * (MAX_LINE_BYTES + 1), b"pdq \xff\xfe" + b"0" * 62, b"", good])
    (tmp_path / "in.bin").write_bytes(data)
    with open(tmp_path / "in.bin", "rb") as stdin:
        out = subprocess.run(["hashmatch", "lookup", "-s", str(world["store"].path)], stdin=stdin,
                             capture_output=True, cwd="/", check=False)
    assert out.returncode == 1, out.stderr[-500:]
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a.get("status") for a in answers] == ["match", None, None, "match"]
    assert answers[1]["error"] == f"a line longer than {MAX_LINE_BYTES} bytes" and answers[1]["query"] == "a" * 200
    assert "error" in answers[2] and answers[2]["query"].startswith("pdq \udcff\udcfe")
