"""The store's audit log (STORE/audit.jsonl, append-only JSON lines, 0600): one
`store_change` line per generation a writer commits (scans append their own lines).

A writer commits the manifest first and appends the line after: a writer killed between
the two leaves a generation without its line. The next writer, holding the writers'
lock, finds the newest generation that has a line and records any committed generation
after it as `unrecorded` (with what the manifest says of it), so the log never silently
skips one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hashmatch.base.files import append_jsonl
from hashmatch.store.files import AUDIT_LOG
from hashmatch.store.manifest import Manifest

_BLOCK = 1 << 16


def last_recorded_generation(path: Path) -> int | None:
    """The generation of the last `store_change` line of the log (read from its end), or
    None if the log is missing or has none."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    with handle:
        end = handle.seek(0, os.SEEK_END)
        tail = b""
        while end > 0:
            start = max(0, end - _BLOCK)
            handle.seek(start)
            lines = (handle.read(end - start) + tail).split(b"\n")
            tail = lines.pop(0) if start > 0 else b""  # maybe a cut line: keep it for the next block
            for line in reversed(lines):
                generation = _store_change_generation(line)
                if generation is not None:
                    return generation
            end = start
        return _store_change_generation(tail)


def _store_change_generation(line: bytes) -> int | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if isinstance(record, dict) and record.get("event") == "store_change" and isinstance(record.get("generation"), int):
        return record["generation"]
    return None


def record_unrecorded(root: Path, manifest: Manifest, who: dict[str, Any]) -> None:
    """Called by a writer before it writes: a current generation the log lacks gets its line."""
    recorded = last_recorded_generation(root / AUDIT_LOG)
    if manifest.generation == 0 or (recorded is not None and recorded >= manifest.generation):
        return
    append_jsonl(root / AUDIT_LOG, {
        "event": "store_change", "generation": manifest.generation, "at": manifest.updated,
        "change": "unrecorded: the writer of this generation stopped before its audit line",
        "recorded_by_next_writer": True, "lists": [item["name"] for item in manifest.lists],
        "previous_recorded_generation": recorded, **who})
