"""Shared fixtures: where the PDQ reference data lives (../shared/pdq-reference, read in
place, never copied), and generated benign images."""
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
        pytest.fail(f"PDQ reference data not found at {REFERENCE} (set HASHMATCH_PDQ_REFERENCE)")
    return REFERENCE
