"""The `text` format: one hash a line, optionally after its algorithm name
(python-threatexchange's file exchange); # comments and blank lines skipped."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hashmatch.lists.schema import _ASCII_WS, _ASCII_WS_CHARS

if TYPE_CHECKING:  # pragma: no cover
    from hashmatch.lists.builder import _Builder
    from hashmatch.lists.reader import _Block, _Reader

class _TextParser:
    def __init__(self, builder: _Builder, reader: _Reader) -> None:
        self.b = builder

    def feed(self, block: _Block) -> None:
        block = block.prefiltered(comments=True)
        if not block.n:
            return
        data = block.data
        if b" " not in data and b"\t" not in data:  # bare hashes
            self.b.add(block.linenos, block.lines(), block.line_text)
            return
        if b"\t" not in data:
            arr = np.frombuffer(data, np.uint8)
            spaces = np.flatnonzero(arr == 32)
            per_line = np.diff(np.searchsorted(spaces, block.nl), prepend=0)
            starts = np.concatenate(([0], block.nl[:-1] + 1))
            if (per_line == 1).all() and not (arr[starts] == 32).any() and not (arr[block.nl - 1] == 32).any():
                text = block.text
                prefix = text[:text.index(" ") + 1]
                if text.count("\n" + prefix) == block.n - 1:  # the same name on every line
                    hashes = text.replace("\n" + prefix, "\n")[len(prefix):].split("\n")
                    hashes.pop()
                    self.b.add(block.linenos, hashes, block.line_text, algs=prefix[:-1])
                    return
                flat = text.replace("\n", " ").split(" ")
                flat.pop()
                self.b.add(block.linenos, flat[1::2], block.line_text, algs=list(flat[0::2]))
                return
        # Mixed or irregular whitespace: line by line.
        lines = block.lines()
        keep: list[int] = []
        algs: list[str | None] = []
        hashes = []
        for i, line in enumerate(lines):
            parts = _ASCII_WS.split(line.strip(_ASCII_WS_CHARS))  # as prefiltered(): NBSP and the like are text
            if not parts[0] or parts[0].startswith("#"):
                continue
            if len(parts) == 1:
                algs.append(None)
                hashes.append(parts[0])
            elif len(parts) == 2:
                algs.append(parts[0])
                hashes.append(parts[1])
            else:
                self.b.reject(int(block.linenos[i]), f"expected 'algorithm hash' or a bare hash, found "
                                                     f"{len(parts)} fields", line)
                continue
            keep.append(i)
        self.b.add(block.linenos[keep], hashes, lambda k: lines[keep[k]], algs=algs)

    def finish(self) -> None:
        pass


