"""Scans on a real Dask LocalCluster (2 worker processes): the same rows as a local scan,
a worker killed mid-scan costing nothing, and a poison shard split down to its file."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from imagegen import encode, make_rgb  # noqa: E402

from hashmatch import Hasher  # noqa: E402
from hashmatch.lists import read_list  # noqa: E402
from hashmatch.matching.matcher import Matcher  # noqa: E402
from hashmatch.scan.dask_executor import DaskExecutor, connect  # noqa: E402
from hashmatch.scan.scanner import ScanOptions, scan  # noqa: E402
from hashmatch.store.store import Store  # noqa: E402


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    data = root / "data"
    (data / "a" / "b").mkdir(parents=True)
    listed = []
    for i in range(60):
        pixels = make_rgb(160, 120, seed=300 + i, kind=("shapes", "blocks", "noise")[i % 3])
        folder = data / ("a" if i % 2 else "a/b")
        (Path(folder) / f"img{i}.jpg").write_bytes(encode(pixels, "JPEG", quality=85))
        if i % 4 == 0:
            listed.append(Hasher(("pdq",)).hash(encode(pixels, "PNG")).hashes["pdq"])
    (data / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (data / "empty.png").write_bytes(b"")
    os.mkfifo(data / "pipe.jpg")
    lst = root / "list.txt"
    lst.write_text("".join(f"pdq {h}\n" for h in listed))
    store = Store.create(root / "store").import_list(read_list(lst), name="known", version="1")
    return {"root": root, "data": data, "store": store}


@pytest.fixture(scope="module")
def cluster():
    client, cluster = connect("local:2")
    yield client
    client.close()
    cluster.close()


def rows_of(report: Path) -> dict[str, tuple]:
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert "summary" in records[-1]
    rows = records[:-1]
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)), "duplicate rows"
    return {r["path"]: (r["status"], r.get("sha256"), json.dumps(r.get("matches"), sort_keys=True),
                        (r.get("error") or {}).get("code")) for r in rows}


@pytest.fixture(scope="module")
def local_rows(tree):
    report = tree["root"] / "local.jsonl"
    scan([str(tree["data"])], Matcher(tree["store"]), str(report), ScanOptions(workers=2))
    return rows_of(report)


def test_dask_scan_equals_local_scan(tree, cluster, local_rows, tmp_path):
    report = tmp_path / "dask.jsonl"
    summary = scan([str(tree["data"])], Matcher(tree["store"]), str(report), ScanOptions(),
                   executor=DaskExecutor(cluster, shard_size=7))
    assert rows_of(report) == local_rows
    assert sum(1 for v in local_rows.values() if v[0] == "match") >= 10
    record = summary.to_record()["summary"]
    assert record["workers"] == 2 and len(record["per_worker"]) == 2
    assert sum(w["files"] for w in record["per_worker"].values()) == 60 + 2  # regular files only


def test_a_killed_worker_loses_nothing(tree, cluster, local_rows, tmp_path):
    report = tmp_path / "killed.jsonl"
    pids = list(cluster.run(os.getpid).values())
    killed = []

    def kill_one(row):
        if not killed and len(killed) == 0 and row.get("status") != "error":
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    scan([str(tree["data"])], Matcher(tree["store"]), str(report), ScanOptions(),
         executor=DaskExecutor(cluster, shard_size=5), progress=kill_one)
    assert killed
    assert rows_of(report) == local_rows
    cluster.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_a_poison_shard_is_split_down_to_its_file(tree, tmp_path, monkeypatch, local_rows):
    """A file whose processing kills the task every time: the shard is halved until the
    file is alone, which gets a worker_crashed row; every other file its normal row."""
    import hashmatch.scan.dask_executor as dx

    poison = str(tree["data"] / "a" / "img7.jpg")
    real_row = dx.file_row

    def row(path, record, matcher):
        if path == poison:
            raise RuntimeError("decoder blew up")
        return real_row(path, record, matcher)

    monkeypatch.setattr(dx, "file_row", row)
    client = distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None)
    try:
        report = tmp_path / "poison.jsonl"
        scan([str(tree["data"])], Matcher(tree["store"]), str(report), ScanOptions(),
             executor=DaskExecutor(client, shard_size=16))
    finally:
        client.close()
    got = rows_of(report)
    assert got[poison][0] == "error" and got[poison][3] == "worker_crashed"
    assert {p: v for p, v in got.items() if p != poison} == {p: v for p, v in local_rows.items() if p != poison}


def test_cli_dask_local(tree, tmp_path, local_rows):
    from click.testing import CliRunner

    from hashmatch.cli import main

    report = tmp_path / "cli.jsonl"
    got = CliRunner().invoke(main, ["scan", str(tree["data"]), "--store", str(tree["store"].path), "--report",
                                    str(report), "--dask", "local:2", "--shard-size", "9", "-q"])
    assert got.exit_code == 1, got.output
    assert rows_of(report) == local_rows
    bad = CliRunner().invoke(main, ["scan", str(tree["data"]), "--list", str(tree["root"] / "list.txt"),
                                    "--dask", "tcp://10.0.0.1:8786"])
    assert bad.exit_code == 2


def test_client_interrupted_then_resumed_on_the_cluster(tree, cluster, local_rows, tmp_path):
    """The client stops half way (as Ctrl-C would); --resume on the cluster completes the
    report with every file once."""
    report = tmp_path / "resumed.jsonl"
    seen = []

    def interrupt(row):
        seen.append(row)
        if len(seen) == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan([str(tree["data"])], Matcher(tree["store"]), str(report), ScanOptions(),
             executor=DaskExecutor(cluster, shard_size=6), progress=interrupt)
    summary = scan([str(tree["data"])], Matcher(tree["store"]), str(report), ScanOptions(resume=True),
                   executor=DaskExecutor(cluster, shard_size=6))
    assert rows_of(report) == local_rows
    assert summary.resumed >= 25


def test_dask_scan_of_videos_equals_local_scan(tmp_path, cluster):
    """Videos on a Dask cluster: vPDQ plus exact hashes per video, images beside them,
    the same rows (matches and their video evidence included) as a local scan."""
    pytest.importorskip("av")
    from hashmatch.evaluation import synthetic_video as synthetic
    from hashmatch.lists import ParsedList

    data = tmp_path / "data"
    data.mkdir()
    listed = synthetic.video(21, seconds=5, fps=20, size=(192, 144))
    (data / "copy.mp4").write_bytes(synthetic.transformed("half_size", listed))
    (data / "other.mkv").write_bytes(synthetic.video(22, seconds=4, fps=20, size=(160, 120), codec="vp9",
                                                     container="mkv"))
    (data / "cut.mp4").write_bytes(listed[:3000])
    (data / "photo.jpg").write_bytes(encode(make_rgb(160, 120, seed=5), "JPEG", quality=85))
    parsed = ParsedList.from_hashes("vpdq", [Hasher(("vpdq",)).hash(listed).hashes["vpdq"]])
    store = Store.create(tmp_path / "store").import_list(parsed, name="videos", version="1")
    matcher = Matcher(store, algorithms=("vpdq", "pdq"))
    scan([str(data)], matcher, str(tmp_path / "local.jsonl"), ScanOptions(workers=2))
    scan([str(data)], matcher, str(tmp_path / "dask.jsonl"), ScanOptions(), executor=DaskExecutor(cluster))
    local = rows_of(tmp_path / "local.jsonl")
    assert rows_of(tmp_path / "dask.jsonl") == local
    statuses = {Path(p).name: v[0] for p, v in local.items()}
    assert statuses == {"copy.mp4": "match", "other.mkv": "no_match", "cut.mp4": "error", "photo.jpg": "no_match"}
