"""Turning any input into a decoded first frame, or a typed error. The only place Pillow
opens image data.

Order of defences, cheapest first: byte cap (before reading a file), format sniffed from
the magic bytes and checked against the allowlist (before any decoder runs), Pillow
restricted to that format's plugins, pixel cap on the declared size (before pixels are
allocated), full decode of the first frame with truncation treated as an error, and the
pixel cap again after decoding (GIF frames can grow the canvas).
"""
from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass, field
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps

from .errors import (
    ConfigurationError,
    CorruptImageError,
    DecompressionBombError,
    EmptyInputError,
    ImageTooSmallError,
    InputTooLargeError,
    InputTypeError,
    NotARegularFileError,
    TruncatedImageError,
    UnreadableInputError,
    UnsupportedFormatError,
)

try:  # HEIC/HEIF from phones: optional plugin (pip install hashmatch[heif]).
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - depends on the environment
    pillow_heif = None

Image.init()  # register every plugin now, not racily on first use from many threads

#: Pillow's default pixel limit (it warns above this, refuses above twice this).
PILLOW_DEFAULT_MAX_PIXELS = 89_478_485

#: Format families by magic bytes: the Pillow plugin names each family may decode with.
FORMAT_PLUGINS: dict[str, tuple[str, ...]] = {
    "JPEG": ("JPEG", "MPO"),  # camera JPEGs with a second picture open as MPO
    "PNG": ("PNG",),
    "GIF": ("GIF",),
    "WEBP": ("WEBP",),
    "BMP": ("BMP",),
    "TIFF": ("TIFF",),
    "HEIF": ("HEIF",),
    "AVIF": ("AVIF",),
}

DEFAULT_FORMATS = frozenset(FORMAT_PLUGINS)

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, Image.Image, np.ndarray]


@dataclass(frozen=True)
class DecodeLimits:
    """Caps applied to every input. The defaults suit an upload handler; a scan of a
    seized drive may want a larger byte cap."""

    max_bytes: int = 256 * 1024 * 1024
    max_pixels: int = PILLOW_DEFAULT_MAX_PIXELS
    min_side: int = 5
    formats: frozenset[str] = field(default=DEFAULT_FORMATS)

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1 or self.min_side < 1:
            raise ConfigurationError("max_bytes, max_pixels and min_side must be positive")
        unknown = set(self.formats) - set(FORMAT_PLUGINS)
        if unknown:
            raise ConfigurationError(
                f"unknown formats {sorted(unknown)}; known: {sorted(FORMAT_PLUGINS)}"
            )
        object.__setattr__(self, "formats", frozenset(f.upper() for f in self.formats))


@dataclass
class Decoded:
    """One decoded input: the first frame as a loaded PIL image, or the caller's array."""

    image: Image.Image | None
    array: np.ndarray | None
    data: bytes | None  # the encoded bytes, when the input had any
    format: str | None
    frame_count: int
    exif_transposed: bool = False

    @property
    def size(self) -> tuple[int, int]:
        if self.image is not None:
            return self.image.size
        assert self.array is not None
        return self.array.shape[1], self.array.shape[0]

    @property
    def mode(self) -> str | None:
        return self.image.mode if self.image is not None else None


def sniff_format(data: bytes) -> str | None:
    """The format family named by the magic bytes, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"BM"):
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIF"
    return None


def _read_path(path: str | os.PathLike, limits: DecodeLimits) -> bytes:
    # O_NONBLOCK: opening a FIFO must not hang; the fstat below then rejects it.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except IsADirectoryError as exc:
        raise NotARegularFileError("is a directory") from exc
    except OSError as exc:
        raise UnreadableInputError(f"cannot open: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFileError("not a regular file (directory, FIFO, socket or device)")
        if st.st_size > limits.max_bytes:
            raise InputTooLargeError(f"{st.st_size} bytes exceeds the byte cap of {limits.max_bytes}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            # read(n) allocates n bytes up front: ask for the file's size (+1 to notice
            # growth), never for the whole byte cap, then follow a growing file in chunks.
            parts = [fh.read(min(st.st_size, limits.max_bytes) + 1)]
            total = len(parts[0])
            while total > st.st_size and total <= limits.max_bytes:
                chunk = fh.read(min(1 << 20, limits.max_bytes + 1 - total))
                if not chunk:
                    break
                parts.append(chunk)
                total += len(chunk)
            data = parts[0] if len(parts) == 1 else b"".join(parts)
    except OSError as exc:
        raise UnreadableInputError(f"cannot read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    return data


def read_input_file(path: str | os.PathLike, limits: DecodeLimits) -> bytes:
    """The bytes of a regular file, under the byte cap; typed errors as decode() raises
    them (a FIFO is never opened for reading). The scan's workers read with this, so
    size and sha256 come from the very bytes that are hashed."""
    return _read_path(path, limits)


def _read_source(source: Source, limits: DecodeLimits) -> bytes:
    if isinstance(source, (str, os.PathLike)):
        data = _read_path(source, limits)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        try:
            data = source.read(limits.max_bytes + 1)
        except OSError as exc:
            raise UnreadableInputError(f"cannot read: {exc}") from exc
        if not isinstance(data, (bytes, bytearray)):
            raise InputTypeError("file objects must be opened in binary mode")
        data = bytes(data)
    else:
        raise InputTypeError(
            f"cannot hash a {type(source).__name__}: expected a path, bytes, a binary file, "
            "a PIL.Image or a uint8 numpy array"
        )
    if not data:
        raise EmptyInputError("input is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise InputTooLargeError(f"input exceeds the byte cap of {limits.max_bytes} bytes")
    return data


def _pixel_cap(limits: DecodeLimits) -> int:
    # Pillow's own limit counts too: above it Pillow would only warn, we refuse.
    pillow = Image.MAX_IMAGE_PIXELS
    return min(limits.max_pixels, int(pillow)) if pillow else limits.max_pixels


def _check_size(width: int, height: int, limits: DecodeLimits) -> None:
    cap = _pixel_cap(limits)
    if width * height > cap:
        raise DecompressionBombError(
            f"image declares {width}x{height} = {width * height} pixels, above the cap of {cap}"
        )


def _decode_bytes(data: bytes, limits: DecodeLimits) -> tuple[Image.Image, str, int]:
    family = sniff_format(data)
    if family is None:
        raise UnsupportedFormatError("not a recognised image format")
    if family not in limits.formats:
        raise UnsupportedFormatError(
            f"{family} is not in the allowed formats ({', '.join(sorted(limits.formats))})"
        )
    plugins = FORMAT_PLUGINS[family]
    if not any(p in Image.OPEN for p in plugins):
        hint = " (install the optional plugin: pip install 'hashmatch[heif]')" if family == "HEIF" else ""
        raise UnsupportedFormatError(f"no {family} decoder is installed{hint}")
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise ConfigurationError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; hashmatch never hashes partial images"
        )
    try:
        image = Image.open(io.BytesIO(data), formats=list(plugins))
        _check_size(image.width, image.height, limits)
        # Counting frames walks the frame headers, where Pillow checks each frame's
        # size too; do it before decoding, while the first frame is current.
        frame_count = int(getattr(image, "n_frames", 1) or 1)
        if frame_count > 1:
            image.seek(0)
        image.load()
    except (DecompressionBombError, UnsupportedFormatError):
        raise
    except Image.DecompressionBombError as exc:
        raise DecompressionBombError(str(exc)) from exc
    except MemoryError as exc:
        raise InputTooLargeError("the decoder ran out of memory") from exc
    except Image.UnidentifiedImageError as exc:
        raise CorruptImageError(f"{family} header is not valid") from exc
    except Exception as exc:  # any decoder failure is this input's failure only
        message = str(exc) or type(exc).__name__
        if "truncated" in message.lower():
            raise TruncatedImageError(f"{family} data ends early: {message}") from exc
        raise CorruptImageError(f"{family} decoder failed: {message}") from exc
    _check_size(image.width, image.height, limits)  # GIF frames may have grown the canvas
    return image, image.format or family, frame_count


def _check_array(array: np.ndarray) -> np.ndarray:
    if array.dtype != np.uint8:
        raise InputTypeError(f"arrays must be uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise InputTypeError(f"arrays must be HxW, HxWx3 (RGB) or HxWx4 (RGBA), got shape {array.shape}")
    return np.ascontiguousarray(array)


def decode(source: Source, limits: DecodeLimits, *, exif_transpose: bool = False,
           need_bytes: bool = False) -> Decoded:
    """Decode the first frame of `source` within `limits`, or raise an ImageError."""
    if isinstance(source, np.ndarray):
        if need_bytes:
            raise InputTypeError("cryptographic hashes need the encoded file bytes; an array has none")
        array = _check_array(source)
        decoded = Decoded(image=None, array=array, data=None, format=None, frame_count=1)
    elif isinstance(source, Image.Image):
        if need_bytes:
            raise InputTypeError("cryptographic hashes need the encoded file bytes; a PIL.Image has none")
        try:
            source.load()
        except Exception as exc:
            raise CorruptImageError(f"the PIL.Image failed to load: {exc}") from exc
        _check_size(source.width, source.height, limits)
        decoded = Decoded(image=source, array=None, data=None, format=source.format,
                          frame_count=int(getattr(source, "n_frames", 1) or 1))
    else:
        data = _read_source(source, limits)
        image, fmt, frames = _decode_bytes(data, limits)
        decoded = Decoded(image=image, array=None, data=data, format=fmt, frame_count=frames)
    if exif_transpose and decoded.image is not None:
        transposed = ImageOps.exif_transpose(decoded.image)
        decoded.exif_transposed = transposed is not decoded.image and transposed.size != (0, 0)
        decoded.image = transposed
    width, height = decoded.size
    if min(width, height) < limits.min_side:
        raise ImageTooSmallError(f"image is {width}x{height}; both sides must be at least {limits.min_side}")
    return decoded
