"""The exception tree: every failure hashmatch reports derives from HashmatchError.

Per-input problems (one bad upload or file) derive from ImageError, so a caller can
catch ImageError to record the file and carry on, and let everything else propagate.
Each class carries a short stable `code` for machine-readable reports.
"""
from __future__ import annotations

from typing import Any, Iterable


class HashmatchError(Exception):
    """Base class of every error hashmatch raises on purpose."""

    code = "error"


class ConfigurationError(HashmatchError, ValueError):
    """A bad argument or setting (unknown algorithm, invalid limit, ...)."""

    code = "configuration"


class ImageError(HashmatchError):
    """One input could not be hashed. Other inputs are unaffected.

    When exact hashes (MD5, SHA-1, SHA-256) were asked for and the input's bytes could be
    read, they were computed before decoding and travel with the error: `file_hashes`
    (algorithm -> hex) and `file_size` (bytes). A file that is not an image, or a broken
    one, still has them, and they still match (Matcher.match, scan rows).
    """

    code = "image_error"
    file_hashes: dict[str, str] | None = None
    file_size: int | None = None


class UnreadableInputError(ImageError):
    """The file could not be read (permissions, vanished, I/O error)."""

    code = "unreadable"


class NotARegularFileError(ImageError):
    """A FIFO, socket, device or directory where a file was expected; never opened for
    reading (a FIFO would block forever)."""

    code = "not_regular_file"


class SymlinkNotFollowedError(ImageError):
    """A symbolic link found in a tree; links are not followed unless asked."""

    code = "symlink_not_followed"


class FileChangedError(UnreadableInputError):
    """The file at a walked path is no longer the one the walk found: replaced by a
    symbolic link or another file in between. It is not read."""

    code = "changed"


class EmptyInputError(ImageError):
    """The input has no bytes at all."""

    code = "empty"


class UnsupportedFormatError(ImageError):
    """Not an image, or an image format outside the allowlist."""

    code = "unsupported_format"


class CorruptImageError(ImageError):
    """The decoder rejected the data (bad header, bad compressed stream, ...)."""

    code = "corrupt"


class TruncatedImageError(CorruptImageError):
    """The data ends before the image does; partial images are never hashed."""

    code = "truncated"


class InputTooLargeError(ImageError):
    """The encoded input is larger than the configured byte cap."""

    code = "too_large"


class DecompressionBombError(ImageError):
    """The image declares more pixels than the pixel cap (or Pillow's own limit)."""

    code = "decompression_bomb"


class ImageTooSmallError(ImageError):
    """Width or height below the minimum (PDQ is undefined below 5 pixels)."""

    code = "too_small"


class InputTypeError(ImageError, TypeError):
    """The input object is of a kind hashmatch cannot hash, or cannot give what was asked
    (for example MD5 of a PIL.Image, which has no file bytes)."""

    code = "input_type"


class NoVideoStreamError(UnsupportedFormatError):
    """A video container with no video stream in it (audio only, or empty)."""

    code = "no_video_stream"


class VideoTooLongError(InputTooLargeError):
    """A video longer (declared or decoded) than the duration cap, or with more frames
    to hash than the frame cap."""

    code = "too_long"


class NoFrameRateError(CorruptImageError):
    """A video stream that declares no usable frame rate (zero or missing): vPDQ picks
    frames and timestamps by it, so there is nothing to hash by."""

    code = "no_frame_rate"


class VideoSupportMissingError(ImageError):
    """A video needs PyAV (pip install 'hashmatch[video]'), which is not installed."""

    code = "video_support_missing"


class HashTimeoutError(ImageError):
    """Hashing the input took longer than its time limit; the worker process was stopped."""

    code = "timeout"


class WorkerCrashedError(ImageError):
    """The worker process hashing the input died (a decoder crash, a signal, the OOM killer)."""

    code = "worker_crashed"


class OutOfMemoryError(ImageError):
    """Decoding the input needed more memory than the worker's limit."""

    code = "out_of_memory"


class StoreError(HashmatchError):
    """The store cannot be opened or changed as asked."""

    code = "store"


class StoreIntegrityError(StoreError):
    """A store file (the manifest included) is missing, truncated, damaged or differs from
    its checksum, or the store was rolled back to an older generation."""

    code = "store_integrity"


class ListFormatError(HashmatchError, ValueError):
    """A hash list could not be read: bad format, a bad entry, an empty or binary file.

    `path` is the list file, `line` the 1-based line of the problem (None where it
    concerns the whole file), `reason` the problem in words. `rejected` holds the
    entries rejected so far when skip_invalid left nothing valid (for a report).
    """

    code = "list_format"

    def __init__(self, path: str, line: int | None, reason: str, rejected: Iterable[Any] = ()) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        self.rejected = tuple(rejected)
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # picklable despite the extra constructor arguments
        return (type(self), (self.path, self.line, self.reason, self.rejected))


def _image_errors(cls: type[ImageError]) -> dict[str, type[ImageError]]:
    found = {cls.code: cls}
    for sub in cls.__subclasses__():
        found.update(_image_errors(sub))
    return found


#: Every ImageError class by its code: a worker's outcome crosses the pipe as plain data
#: (type, code, message) and becomes the typed error again on this side.
ERRORS_BY_CODE: dict[str, type[ImageError]] = _image_errors(ImageError)
