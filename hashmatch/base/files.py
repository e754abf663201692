"""Writing output files.

Every file hashmatch writes is created with mode 0600 and appears atomically (an unnamed
file in the same folder, fsync, a name, rename): hash lists and reports are sensitive, a
reader must never see half a file, and a killed writer must leave none behind.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import tempfile
from typing import IO, Any, Iterator


@contextlib.contextmanager
def temp_file(folder: str | os.PathLike) -> Iterator[str]:
    """A new empty file in `folder` (0600, a name no other writer picks), deleted if the
    block fails; on success the block has renamed it into place (or it stays for the
    caller's stale-temp-file sweep)."""
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".hashmatch-", suffix=".tmp")
    os.close(fd)
    try:
        yield temp
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Write `path` atomically with permissions 0600; on error the old file is untouched.

    The new content is written to an unnamed file (O_TMPFILE) that vanishes with the
    process if it is killed, so no sensitive partial file is ever left behind; it gets a
    name only once complete and synced, and is renamed over `path` at once. Filesystems
    without O_TMPFILE get a named temp file, deleted if the block fails."""
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (OSError, AttributeError):  # no O_TMPFILE here (or not on this filesystem)
        with temp_file(folder) as temp:
            with open(temp, mode, **open_kwargs) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, target)
        return
    with open(fd, mode, **open_kwargs) as handle:
        yield handle
        handle.flush()
        os.fsync(fd)
        os.fchmod(fd, 0o600)
        temp = os.path.join(folder, f".hashmatch-{secrets.token_hex(8)}.tmp")
        try:
            os.link(f"/proc/self/fd/{fd}", temp, follow_symlinks=True)  # linkat(AT_SYMLINK_FOLLOW): a name
        except OSError:  # a kernel or sandbox that refuses it: copy the finished bytes to a named file
            _copy_out(fd, temp)
        try:
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


def _copy_out(fd: int, temp: str) -> None:
    """The finished content of the unnamed file `fd` into a new named file (0600, synced);
    the named file exists only for the moments of the copy."""
    out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        offset, size = 0, os.fstat(fd).st_size
        while offset < size:
            sent = os.sendfile(out, fd, offset, size - offset)
            if not sent:
                break
            offset += sent
        os.fsync(out)
    except BaseException:
        os.close(out)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    os.close(out)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line to a log (created 0600, an existing one tightened to 0600;
    O_APPEND keeps concurrent lines whole; fsync'd)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def save_figure(figure: Any, path: str | os.PathLike, dpi: int = 100) -> str:
    """Write a matplotlib figure as PNG (0600, atomic) and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return os.fspath(path)


def make_private_dirs(path: str | os.PathLike) -> None:
    """Create the folder and every missing parent with mode 0700 (os.makedirs gives the
    parents the umask's mode: 0777 under umask 000)."""
    missing = []
    current = os.path.abspath(os.fspath(path))
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)
        os.chmod(folder, 0o700)


def who() -> dict[str, str]:
    """The user and host an audit line names."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname()}
