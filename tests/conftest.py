"""Shared fixtures: where the PDQ reference data lives (../shared/pdq-reference, read in
place, never copied), and generated benign images.

Tests that need the reference data take the `reference` fixture. Without the data (a
plain clone) they skip with a one-line reason; with HASHMATCH_REQUIRE_REFERENCE=1 (set by
.ci/run) a missing reference is a failure instead, so CI can never skip them silently."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REFERENCE = Path(os.environ.get(
    "HASHMATCH_PDQ_REFERENCE", Path(__file__).resolve().parents[2] / "shared" / "pdq-reference"
))


@pytest.fixture(scope="session")
def reference() -> Path:
    if not (REFERENCE / "expected").is_dir():
        reason = f"PDQ reference data not found at {REFERENCE} (set HASHMATCH_PDQ_REFERENCE)"
        if os.environ.get("HASHMATCH_REQUIRE_REFERENCE") == "1":
            pytest.fail(reason + "; HASHMATCH_REQUIRE_REFERENCE=1 forbids skipping")
        pytest.skip(reason)
    return REFERENCE
