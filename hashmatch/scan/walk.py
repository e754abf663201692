"""The input files named on a command line (``hashmatch hash``): files as given, folders
expanded recursively in sorted order, and a record for every entry that cannot be hashed,
so nothing found is left without an outcome. (``hashmatch scan`` walks with scanner.walk_tree,
which also pins each file's device and inode for its workers.)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator

from hashmatch.errors import ImageError, SymlinkNotFollowedError, UnreadableInputError


@dataclass(frozen=True)
class InputFile:
    """One entry of a walk: a path to hash, or the error that stopped us reading it."""

    path: str
    error: ImageError | None = None


def iter_input_files(paths: Iterable[str | os.PathLike]) -> Iterator[InputFile]:
    """Files named directly, and every non-directory entry under named folders, recursively,
    in sorted order. Symlinked folders are not descended (no loops, no escaping the tree)
    but get a record of their own (symlink_not_followed), as FIFOs, sockets and broken
    links do: nothing found is left without an outcome."""
    for given in paths:
        path = os.fspath(given)
        if not os.path.isdir(path):
            yield InputFile(path)
            continue
        errors: list[OSError] = []
        for root, dirs, names in os.walk(path, followlinks=False, onerror=errors.append):
            while errors:
                exc = errors.pop()
                yield InputFile(exc.filename or root, UnreadableInputError(f"cannot list folder: {exc.strerror}"))
            dirs.sort()
            linked = [d for d in dirs if os.path.islink(os.path.join(root, d))]
            for name in sorted(names + linked):
                child = os.path.join(root, name)
                if name in linked:
                    yield InputFile(child, SymlinkNotFollowedError("symbolic link to a folder, not followed"))
                else:
                    yield InputFile(child)
        for exc in errors:
            yield InputFile(exc.filename or path, UnreadableInputError(f"cannot list folder: {exc.strerror}"))
