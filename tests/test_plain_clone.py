"""The suite from a plain clone: tests that need Meta's reference images skip with a
one-line reason when ../shared/pdq-reference is absent, and HASHMATCH_REQUIRE_REFERENCE=1
(set by .ci/run) turns that skip into a failure."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_reference_tests(tmp_path, **env) -> subprocess.CompletedProcess:
    environ = {**os.environ, "HASHMATCH_PDQ_REFERENCE": str(tmp_path / "absent"), **env}
    environ.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           str(ROOT / "tests" / "test_reference_fixtures.py")],
                          # cwd: not the checkout, whose uncompiled source package would shadow the
                          # installed one; the rootdir and its configuration come from the path.
                          cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300)


def test_reference_tests_skip_with_a_reason_without_the_data(tmp_path):
    result = run_reference_tests(tmp_path, HASHMATCH_REQUIRE_REFERENCE="0")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "skipped" in result.stdout and "passed" not in result.stdout
    assert "PDQ reference data not found" in result.stdout


def test_ci_turns_the_skip_into_a_failure(tmp_path):
    result = run_reference_tests(tmp_path, HASHMATCH_REQUIRE_REFERENCE="1")
    assert result.returncode != 0
    assert "HASHMATCH_REQUIRE_REFERENCE=1 forbids skipping" in result.stdout
