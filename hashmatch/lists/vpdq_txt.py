"""The `vpdq-txt` format: Meta's per-frame vPDQ file (the C++ CLI's output, as in
`vpdq/sample-hashes/NAME.txt`): one video per file, one "frame,quality,hex,timestamp"
line per frame. Imported as one vpdq entry whose id is the file name without its
extension. Chosen by `--format vpdq-txt` (a frame line looks like CSV to detection)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from hashmatch.errors import ListFormatError
from hashmatch.lists.tat_json import _read_document

if TYPE_CHECKING:  # pragma: no cover
    from hashmatch.lists.builder import _Builder


def _parse_vpdq_txt(builder: _Builder, path: str, handle: Any, limit: int) -> None:
    text = _read_document(path, handle, limit)
    if not text.strip():
        raise ListFormatError(path, None, "no frames (the file is empty)")
    entry_id = os.path.splitext(os.path.basename(path))[0] or None
    builder.add(np.array([1], np.int64), [text], lambda _: text[:200], algs="vpdq", ids=[entry_id])
