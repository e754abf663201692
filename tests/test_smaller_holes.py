"""Small holes a reliability audit found in the CLI: every entry gets a record, logs keep
0600, names never reach the terminal raw, and a file named twice gets one row."""
from __future__ import annotations

import json
import os
import socket
import stat

import pytest
from click.testing import CliRunner
from imagegen import encode, make_rgb

from hashmatch import Hasher
from hashmatch.cli import main
from hashmatch.cli.terminal import safe


@pytest.fixture
def tree(tmp_path):
    data = tmp_path / "data"
    (data / "real").mkdir(parents=True)
    (data / "real" / "a.png").write_bytes(encode(make_rgb(40, 30, seed=1, kind="shapes"), "PNG"))
    os.symlink(data / "real", data / "linked-folder")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(data / "sock"))
    yield data
    sock.close()


def test_hash_gives_symlinked_folders_and_sockets_a_record(tree):
    result = CliRunner().invoke(main, ["hash", str(tree)])
    records = {os.path.basename(r["path"]): r for r in map(json.loads, result.stdout.splitlines())}
    assert set(records) == {"a.png", "linked-folder", "sock"}
    assert records["linked-folder"]["error"]["code"] == "symlink_not_followed"
    assert records["sock"]["error"]["code"] == "not_regular_file"
    assert "error" not in records["a.png"]


HOSTILE = "evil\r\x1b[2J\u202eName.png"


def test_names_reach_the_terminal_escaped(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / HOSTILE).write_bytes(encode(make_rgb(60, 40, seed=2, kind="shapes"), "PNG"))
    listed = Hasher(("pdq",)).hash(data / HOSTILE).hashes["pdq"]
    lst = tmp_path / "l.csv"
    lst.write_text(f"algorithm,hash,category\npdq,{listed},cat\x1b[31m\n")
    store = tmp_path / "store"
    runner = CliRunner()
    imported = runner.invoke(main, ["list", "import", str(lst), "--store", str(store), "--name", "list\r\x1b]0;x\x07"])
    assert imported.exit_code == 0, imported.output
    report = tmp_path / "r.jsonl"
    scanned = runner.invoke(main, ["scan", str(data), "--store", str(store), "--report", str(report)])
    assert scanned.exit_code == 1
    shown = runner.invoke(main, ["list", "show", "--store", str(store)])
    for text in (imported.stderr, scanned.stderr, shown.stdout):
        assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    assert "MATCH" in scanned.stderr and "\\x1b[2J" in scanned.stderr and "\\u202e" in scanned.stderr
    assert "list\\x0d\\x1b]0;x\\x07" in shown.stdout
    # The report keeps the exact name: it is data, not terminal output.
    assert json.loads(report.read_text().splitlines()[0])["path"].endswith(HOSTILE)


def test_safe_escapes_controls_and_undecodable_bytes():
    assert safe("a\tb\nc\x7f\x9b") == "a\\x09b\\x0ac\\x7f\\x9b"
    assert safe(os.fsdecode(b"caf\xe9.jpg")) == "caf\\xe9.jpg"
    assert safe("plain café.jpg") == "plain café.jpg"


def test_an_existing_loose_audit_log_is_tightened(tree, tmp_path):
    lst = tmp_path / "l.txt"
    lst.write_text("pdq " + "0" * 64 + "\n")
    log = tmp_path / "audit.jsonl"
    log.write_text("")
    log.chmod(0o644)
    CliRunner().invoke(main, ["scan", str(tree / "real"), "--list", str(lst), "--audit-log", str(log), "--quiet",
                              "--report", str(tmp_path / "r.jsonl")])
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and len(log.read_text().splitlines()) == 1


def test_a_file_given_as_a_root_and_inside_another_root_gets_one_row(tree, tmp_path):
    lst = tmp_path / "l.txt"
    lst.write_text("pdq " + "0" * 64 + "\n")
    report = tmp_path / "r.jsonl"
    args = ["scan", str(tree / "real" / "a.png"), str(tree), str(tree / "real"), str(tree),
            "--list", str(lst), "--report", str(report), "--quiet"]
    CliRunner().invoke(main, args)
    records = [json.loads(line) for line in report.read_text().splitlines()]
    paths = [r["path"] for r in records[:-1]]
    assert len(paths) == len(set(paths)) == 3  # a.png, the linked folder, the socket
    assert records[-1]["summary"]["files"] == 3
    report.write_text("\n".join(report.read_text().splitlines()[:1]) + "\n")  # cut, then resume
    CliRunner().invoke(main, args + ["--resume"])
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(r["path"] for r in records[:-1]) == sorted(paths)
    assert records[-1]["summary"]["files"] == 3 and records[-1]["summary"]["resumed_rows"] == 1
