"""A damaged or edited manifest is a StoreIntegrityError (exit 2), never a traceback; a
rolled-back store is noticed; stores are private however they are created; a killed
writer's temp files do not pile up."""
from __future__ import annotations

import os
import shutil
import stat

import numpy as np
import pytest
from click.testing import CliRunner

from hashmatch.cli import main
from hashmatch.errors import StoreError, StoreIntegrityError
from hashmatch.lists import ParsedList
from hashmatch.store.manifest import Manifest
from hashmatch.store.store import Store


def random_hex(rng, n: int, nbytes: int) -> list[str]:
    return [row.tobytes().hex() for row in rng.integers(0, 256, (n, nbytes), dtype=np.uint8)]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("damage") / "store"
    s = Store.create(path)
    s = s.import_list(ParsedList.from_hashes("pdq", random_hex(rng, 9000, 32), category="c"), name="big", version="1")
    s = s.import_list(ParsedList.from_hashes("md5", random_hex(rng, 50, 16)), name="exact", version="2")
    return s


def test_every_single_bit_flip_of_the_manifest_is_refused_or_harmless(store):
    text = (store.path / "manifest.json").read_bytes()
    intact = Manifest.from_json(text.decode())
    outcomes = {"refused": 0, "same": 0}
    for bit in range(len(text) * 8):
        damaged = bytearray(text)
        damaged[bit // 8] ^= 1 << (bit % 8)
        try:
            parsed = Manifest.from_json(damaged.decode("utf-8", "surrogateescape"))
        except StoreIntegrityError:
            outcomes["refused"] += 1
            continue
        except StoreError as exc:  # only "format version newer than this hashmatch reads"
            assert "newer" in str(exc)
            outcomes["refused"] += 1
            continue
        assert parsed == intact, bit  # a flip that parses must not change what the manifest says
        outcomes["same"] += 1
    assert outcomes["refused"] > 0.9 * len(text) * 8


@pytest.mark.parametrize("command", ["lookup", "scan", "list show"])
def test_a_damaged_manifest_is_exit_2_for_every_command(store, tmp_path, command):
    copy = tmp_path / "store"
    shutil.copytree(store.path, copy)
    text = (copy / "manifest.json").read_bytes()
    rng = np.random.default_rng(len(command))
    (tmp_path / "x.bin").write_bytes(b"not an image")
    args = {"lookup": ["lookup", "--store", str(copy), "pdq " + "0" * 64],
            "scan": ["scan", str(tmp_path / "x.bin"), "--store", str(copy), "--quiet", "--workers", "1"],
            "list show": ["list", "show", "--store", str(copy)]}[command]
    for bit in rng.choice(len(text) * 8, 12, replace=False):
        damaged = bytearray(text)
        damaged[bit // 8] ^= 1 << (bit % 8)
        (copy / "manifest.json").write_bytes(bytes(damaged))
        result = CliRunner().invoke(main, args)
        assert result.exit_code in (0, 2), (bit, result.output)  # 0: a flip in the indentation, harmless
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), bit
        if result.exit_code == 2:
            assert "manifest" in result.output and "Traceback" not in result.output


def edit(path, change) -> None:
    """A deliberate, valid-JSON edit of the manifest, keeping its old checksum."""
    import json

    data = json.loads((path / "manifest.json").read_text())
    change(data)
    (path / "manifest.json").write_text(json.dumps(data, indent=2, sort_keys=True))


@pytest.mark.parametrize("name", ["swap codes and ids", "pdq mode", "rename the pdq array", "drop a file record"])
def test_deliberate_edits_are_detected(store, tmp_path, name):
    copy = tmp_path / "store"
    shutil.copytree(store.path, copy)

    def swap(d):
        a = d["arrays"]["pdq"]
        a["codes"], a["ids"] = a["ids"], a["codes"]

    change = {"swap codes and ids": swap,
              "pdq mode": lambda d: d.update(pdq_mode="cimg512"),
              "rename the pdq array": lambda d: d["arrays"].update(phash=d["arrays"].pop("pdq")),
              "drop a file record": lambda d: d["files"].pop(d["arrays"]["md5"]["ids"])}[name]
    edit(copy, change)
    with pytest.raises(StoreIntegrityError, match="checksum"):
        Store.open(copy)


def test_the_schema_is_checked_even_without_the_checksum():
    """A format-1 manifest (no checksum) with a renamed array key is refused by the schema."""
    import json

    m = Manifest(generation=1, database="entries.000001.sqlite",
                 files={"entries.000001.sqlite": {"sha256": "0" * 64, "bytes": 10}},
                 arrays={"pdq": {"codez": "pdq.000001.codes", "ids": "pdq.000001.ids", "count": 1}})
    with pytest.raises(StoreIntegrityError, match="pdq"):
        Manifest.from_json(json.dumps({"format_version": 1, **m.__dict__}))


def test_a_rolled_back_store_is_noticed(store, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(store.path, copy)
    old = tmp_path / "old-generation"
    shutil.copytree(copy, old)  # a "backup" of this generation, files and manifest
    Store.open(copy).import_list(ParsedList.from_hashes("md5", ["1" * 32]), name="new", version="1")
    for item in old.iterdir():  # restore the old manifest and its files, but not the lock
        if item.name not in (".lock", "audit.jsonl"):
            shutil.copy2(item, copy / item.name)
    with pytest.raises(StoreIntegrityError, match="rolled back"):
        Store.open(copy)
    result = CliRunner().invoke(main, ["list", "show", "--store", str(copy)])
    assert result.exit_code == 2 and "rolled back" in result.output


def test_store_folders_are_private_under_any_umask(tmp_path):
    previous = os.umask(0)
    try:
        Store.create(tmp_path / "a" / "b" / "S")
    finally:
        os.umask(previous)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "S"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_a_killed_writers_temp_files_are_removed_by_the_next_change(tmp_path):
    store = Store.create(tmp_path / "s")
    stale = store.path / ".hashmatch-abc123.tmp"
    stale.write_bytes(b"\0" * 1000)
    store.import_list(ParsedList.from_hashes("md5", ["2" * 32]), name="l", version="1")
    assert not stale.exists()


def test_a_writer_killed_between_commit_and_audit_line_is_recorded_by_the_next(tmp_path):
    """Issue 24 item 12: a kill between the manifest commit and the audit append left a
    committed generation with no audit line (1 in 260 kills; here injected at that point).
    The next writer records it."""
    import json
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "store"
    rng = np.random.default_rng(5)
    Store.create(path).import_list(ParsedList.from_hashes("md5", random_hex(rng, 20, 16)), name="l", version="1")
    script = textwrap.dedent(f"""
        import os
        from hashmatch.store import writer
        from hashmatch.store.store import Store
        real = writer.append_jsonl
        def killed(path, record):
            if record.get("event") == "store_change":
                os._exit(9)  # the manifest is committed; the audit line is not written
            real(path, record)
        writer.append_jsonl = killed
        Store.open({str(path)!r}).set_disabled([1], True, "killed writer")
    """)
    assert subprocess.run([sys.executable, "-c", script], cwd="/").returncode == 9
    killed_generation = Store.open(path).generation
    Store.open(path).set_disabled([2], True, "the next writer")
    lines = [json.loads(line) for line in (path / "audit.jsonl").read_text().splitlines()]
    changes = [line["generation"] for line in lines if line.get("event") == "store_change"]
    assert changes == sorted(changes) and killed_generation in changes and killed_generation + 1 in changes
    recovered = next(line for line in lines if line.get("generation") == killed_generation)
    assert recovered["recorded_by_next_writer"] is True


def test_the_last_recorded_generation_is_found_behind_other_lines(tmp_path):
    """The log is read from its end in blocks: the answer must not depend on where a block
    boundary falls, nor on other writers' lines after the last change (scans)."""
    import json

    from hashmatch.store.audit import last_recorded_generation

    log = tmp_path / "audit.jsonl"
    assert last_recorded_generation(log) is None
    lines = [json.dumps({"event": "store_change", "generation": g}) for g in (1, 2, 3)]
    lines += [json.dumps({"event": "scan", "n": i, "pad": "x" * (i % 97)}) for i in range(3000)]
    log.write_text("\n".join(lines) + "\n")
    assert last_recorded_generation(log) == 3
    log.write_text("\n".join(lines[:1] + lines[3:]))  # no final newline; the change is the very first line
    assert last_recorded_generation(log) == 1
