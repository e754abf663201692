"""Bounded atheris runs of the two harnesses, for the benchmark suite (not the default
test run: pyproject's testpaths is ["tests"]; the fast corpus checks are
tests/test_hostile_corpus.py).

    pytest benchmarks/fuzz -q                                 # 120 s per harness
    HASHMATCH_FUZZ_SECONDS=600 pytest benchmarks/fuzz -q      # longer

Each harness fuzzes from the seeds corpus.py writes into a fresh folder; the test fails
if it reports a crash (the reproducer is kept under the pytest tmp folder and its path
is in the failure message). Skips when atheris is not installed (pip install atheris).
HASHMATCH_FUZZ_KNOWN (see the harnesses) passes through, to step over known bugs.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SECONDS = int(os.environ.get("HASHMATCH_FUZZ_SECONDS", "120"))


def _has_atheris() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import atheris"], check=False, capture_output=True)
    return probe.returncode == 0


@pytest.mark.parametrize("harness", ["fuzz_decode.py", "fuzz_lists.py"])
def test_bounded_fuzz_run_finds_no_crash(tmp_path, harness):
    if not _has_atheris():
        pytest.skip("atheris is not installed (pip install atheris)")
    corpus_dir = tmp_path / "corpus"
    command = [sys.executable, str(HERE / harness), f"-max_total_time={SECONDS}", "-timeout=30",
               "-rss_limit_mb=4096", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", str(corpus_dir)]
    run = subprocess.run(command, check=False, capture_output=True, text=True, errors="replace",
                         timeout=SECONDS * 3 + 300)
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
    tail = "\n".join(run.stderr.splitlines()[-40:])
    assert run.returncode == 0 and not crashes, f"{harness} found {crashes} in {tmp_path}:\n{tail}"
    assert "stat::number_of_executed_units" in run.stderr, tail  # it really fuzzed
    assert any(corpus_dir.iterdir()), "the corpus was not seeded"
