"""Turning any input into a decoded first frame, or a typed error. The only place Pillow
opens image data.

Order of defences, cheapest first: byte cap (before reading a file), format sniffed from
the magic bytes and checked against the allowlist (before any decoder runs), Pillow
restricted to that format's plugins, pixel cap on the declared size (before pixels are
allocated), full decode of the first frame with truncation treated as an error, for a
JPEG the libjpeg warnings Pillow swallows (jpeg_check.py: cut short, EOI appended, or
corrupt), and the pixel cap again after decoding (GIF frames can grow the canvas).
"""
from __future__ import annotations

import errno
import io
import os
import stat
import threading
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps

from hashmatch.decode.jpeg_check import check_jpeg
from hashmatch.decode.jpeg_fast import decode_jpeg_fast
from hashmatch.errors import (
    ConfigurationError,
    CorruptImageError,
    DecompressionBombError,
    EmptyInputError,
    FileChangedError,
    ImageTooSmallError,
    InputTooLargeError,
    InputTypeError,
    NotARegularFileError,
    TruncatedImageError,
    UnreadableInputError,
    UnsupportedFormatError,
)

_plugins_lock = threading.Lock()
_plugins_ready = False


def _ensure_plugins() -> None:
    """Register Pillow's plugins, and HEIF's when pillow-heif is installed (pip install
    'hashmatch[heif]'), once, before the first decode: under a lock, not racily on first
    use from many threads; not at import, so that commands which never decode start fast."""
    global _plugins_ready
    if _plugins_ready:
        return
    with _plugins_lock:
        if _plugins_ready:
            return
        try:  # HEIC/HEIF from phones: optional plugin
            import pillow_heif

            pillow_heif.register_heif_opener()
        except ImportError:  # pragma: no cover - depends on the environment
            pass
        Image.init()
        _plugins_ready = True

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

#: Video containers (hashmatch[video]) by magic bytes; GIF and WEBP are images unless a
#: caller lists them here to hash animations as video too.
VIDEO_FORMATS = ("MP4", "MATROSKA", "AVI", "GIF", "WEBP")
DEFAULT_VIDEO_FORMATS = frozenset({"MP4", "MATROSKA", "AVI"})

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, Image.Image, np.ndarray]


@dataclass(frozen=True)
class DecodeLimits:
    """Caps applied to every input. The defaults suit an upload handler; a scan of a
    seized drive may want a larger byte cap."""

    max_bytes: int = 256 * 1024 * 1024
    max_pixels: int = PILLOW_DEFAULT_MAX_PIXELS
    min_side: int = 5
    formats: frozenset[str] = field(default=DEFAULT_FORMATS)
    #: Refuse JPEGs whose scan data libjpeg reports as cut short or corrupt (jpeg_check.py):
    #: a second, 1/8-scale entropy decode, ~2 ms for a 262 KiB 1024x768 photo.
    verify_jpeg: bool = True
    # Videos (decode/video.py) are read by the demuxer from the file, never whole into
    # memory; these caps are checked on the declared values before decoding and again on
    # every decoded frame (a header can lie).
    video_formats: frozenset[str] = field(default=DEFAULT_VIDEO_FORMATS)
    max_video_bytes: int = 64 << 30
    max_frame_pixels: int = 8192 * 4352  # 8K and a little more
    max_video_seconds: float = 4 * 3600.0
    max_hashed_frames: int = 100_000

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1 or self.min_side < 1:
            raise ConfigurationError("max_bytes, max_pixels and min_side must be positive")
        if self.max_video_bytes < 1 or self.max_frame_pixels < 1 or not self.max_video_seconds > 0 \
                or self.max_hashed_frames < 1:
            raise ConfigurationError("the video caps must be positive")
        unknown = set(self.formats) - set(FORMAT_PLUGINS)
        if unknown:
            raise ConfigurationError(
                f"unknown formats {sorted(unknown)}; known: {sorted(FORMAT_PLUGINS)}"
            )
        object.__setattr__(self, "formats", frozenset(f.upper() for f in self.formats))
        videos = frozenset(f.upper() for f in self.video_formats)
        if videos - set(VIDEO_FORMATS):
            raise ConfigurationError(f"unknown video formats {sorted(videos - set(VIDEO_FORMATS))}; "
                                     f"known: {list(VIDEO_FORMATS)}")
        object.__setattr__(self, "video_formats", videos)


@dataclass
class Decoded:
    """One decoded input: the first frame as a loaded PIL image, or the caller's array."""

    image: Image.Image | None
    array: np.ndarray | None
    format: str | None
    frame_count: int
    exif_transposed: bool = False
    array_mode: str | None = None  # the Pillow mode a decoded file's array stands for (jpeg_fast.py)

    @property
    def size(self) -> tuple[int, int]:
        if self.image is not None:
            return self.image.size
        assert self.array is not None
        return self.array.shape[1], self.array.shape[0]

    @property
    def mode(self) -> str | None:
        return self.image.mode if self.image is not None else self.array_mode


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


def sniff_video_format(data: bytes) -> str | None:
    """The video container family named by the magic bytes (MP4 covers QuickTime MOV and
    3GP), GIF/WEBP for a possible animation, or None."""
    if data[4:8] == b"ftyp":
        return None if sniff_format(data) in ("AVIF", "HEIF") else "MP4"
    if data[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):  # QuickTime without ftyp
        return "MP4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "MATROSKA"  # and WebM
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "AVI"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


#: Bytes read per step when a file is streamed through its exact hashes.
STREAM_CHUNK = 1 << 20
#: A file that grows by more than this while being read is refused (it would never end).
MAX_GROWTH = 64 << 20


@dataclass(frozen=True)
class FileContent:
    """An input's bytes and their exact hashes (MD5/SHA, of every byte). `data` is None
    when the input is larger than the decode byte cap: it was streamed through the
    hashes and never held whole, so exact matching works for files of any size."""

    data: bytes | None
    size: int
    digests: dict[str, str]


@dataclass(frozen=True)
class WalkedFile(os.PathLike):
    """A path a tree walk found, with the device and inode it saw there. It is opened
    only if it is still that file: never through a symbolic link planted since the walk
    (O_NOFOLLOW, unless the walk itself followed links), and only if the opened file has
    the walked device and inode (FileChangedError otherwise). A scan's workers get these,
    so a file swapped after the walk can never smuggle another file's bytes into a row."""

    path: str
    device: int
    inode: int
    follow_symlinks: bool = False

    def __fspath__(self) -> str:
        return self.path


def _raise_if_special(path: str | os.PathLike) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise NotARegularFileError("not a regular file (directory, FIFO, socket or device)")


def _open_regular(path: str | os.PathLike) -> tuple[int, os.stat_result]:
    # O_NONBLOCK: opening a FIFO must not hang; the fstat below then rejects it.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    walked = path if isinstance(path, WalkedFile) else None
    if walked is not None and not walked.follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError as exc:
        raise NotARegularFileError("is a directory") from exc
    except OSError as exc:
        if walked is not None and exc.errno == errno.ELOOP:
            raise FileChangedError("replaced by a symbolic link after the walk listed it; not followed") from exc
        _raise_if_special(path)  # a socket cannot be opened at all (ENXIO): say what it is
        raise UnreadableInputError(f"cannot open: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise UnreadableInputError(f"cannot stat: {exc.strerror or exc}") from exc
    if walked is not None and (st.st_dev, st.st_ino) != (walked.device, walked.inode):
        os.close(fd)
        raise FileChangedError("replaced by another file after the walk listed it (device and inode differ); "
                               "not read")
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotARegularFileError("not a regular file (directory, FIFO, socket or device)")
    return fd, st


def _consume(read, first: int, limits: DecodeLimits, digests: dict,
             growth_limit: int | None) -> tuple[bytes | None, int]:
    """Read to the end with `read(n)`, feeding every chunk to the digests; keep the bytes
    while they fit the byte cap (None once they do not; without digests, reading stops
    there). `first` is the size of the first read: the expected size + 1, so a file read
    whole costs one allocation and a file that grew is noticed."""
    kept: list[bytes] | None = []
    total = 0
    want = first
    while True:
        chunk = read(want)
        if not chunk:
            break
        for digest in digests.values():
            digest.update(chunk)
        total += len(chunk)
        if growth_limit is not None and total > growth_limit:
            raise UnreadableInputError("the file kept growing while it was read")
        if kept is not None:
            if total <= limits.max_bytes:
                kept.append(chunk)
            else:
                kept = None  # over the cap: from here on the bytes are only hashed
        if kept is None and not digests:
            break
        want = STREAM_CHUNK
    if kept is None:
        return None, total
    return (kept[0] if len(kept) == 1 else b"".join(kept)), total


def read_content(source: Source, limits: DecodeLimits, digests: dict[str, Any]) -> FileContent:
    """The bytes of `source` (a path, bytes or binary file) and their exact hashes:
    `digests` maps names to fresh hashlib-like objects (update, hexdigest).

    Unlike decoding, exact hashing has no byte cap: a file over `limits.max_bytes` is
    streamed through the hashes in STREAM_CHUNK pieces (its `data` is then None). Raises
    NotARegularFileError / UnreadableInputError when the bytes cannot be read at all, and
    InputTypeError for a PIL.Image or an array (no file bytes)."""
    if isinstance(source, (np.ndarray, Image.Image)):
        kind = "an array" if isinstance(source, np.ndarray) else "a PIL.Image"
        raise InputTypeError(f"cryptographic hashes need the encoded file bytes; {kind} has none")
    if isinstance(source, (str, os.PathLike)):
        fd, st = _open_regular(source)
        try:
            with os.fdopen(fd, "rb", closefd=False) as handle:
                first = st.st_size + 1 if st.st_size <= limits.max_bytes else STREAM_CHUNK
                data, size = _consume(handle.read, first, limits, digests, st.st_size + MAX_GROWTH)
        except OSError as exc:
            raise UnreadableInputError(f"cannot read: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        size = len(data)
        for digest in digests.values():
            digest.update(data)
        if size > limits.max_bytes:
            data = None
    elif hasattr(source, "read"):
        def read(n: int) -> bytes:
            chunk = source.read(n)
            if not isinstance(chunk, (bytes, bytearray)):
                raise InputTypeError("file objects must be opened in binary mode")
            return bytes(chunk)
        try:
            data, size = _consume(read, min(limits.max_bytes + 1, STREAM_CHUNK * 16), limits, digests, None)
        except OSError as exc:
            raise UnreadableInputError(f"cannot read: {exc}") from exc
    else:
        raise InputTypeError(
            f"cannot hash a {type(source).__name__}: expected a path, bytes, a binary file, "
            "a PIL.Image or a uint8 numpy array"
        )
    return FileContent(data, size, {a: d.hexdigest() for a, d in digests.items()})


def _read_path(path: str | os.PathLike, limits: DecodeLimits) -> bytes:
    fd, st = _open_regular(path)
    try:
        if st.st_size > limits.max_bytes:
            raise InputTooLargeError(f"{st.st_size} bytes exceeds the byte cap of {limits.max_bytes}")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data, size = _consume(handle.read, st.st_size + 1, limits, {}, None)
    except OSError as exc:
        raise UnreadableInputError(f"cannot read: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if data is None:
        raise InputTooLargeError(f"the file grew past the byte cap of {limits.max_bytes} while it was read")
    return data


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
    _ensure_plugins()
    family = sniff_format(data)
    if family is None:
        raise UnsupportedFormatError("not a recognised image format")
    if family not in limits.formats:
        raise UnsupportedFormatError(
            f"{family} is not in the allowed formats ({', '.join(sorted(limits.formats))})"
        )
    # Only plugins this Pillow has: naming a missing one (Pillow 13 opens MPO through the
    # JPEG plugin) makes Image.open fail with KeyError('MPO') instead of the real reason.
    plugins = tuple(p for p in FORMAT_PLUGINS[family] if p in Image.OPEN)
    if not plugins:
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
    if family == "JPEG" and limits.verify_jpeg and min(image.size) >= limits.min_side:  # too small: refused below
        check_jpeg(data)  # libjpeg warnings Pillow swallows: a scan cut short (EOI appended) or corrupt
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


def decode(source: Source, limits: DecodeLimits, *, exif_transpose: bool = False) -> Decoded:
    """Decode the first frame of `source` within `limits`, or raise an ImageError."""
    if isinstance(source, np.ndarray):
        array = _check_array(source)
        decoded = Decoded(image=None, array=array, format=None, frame_count=1)
    elif isinstance(source, Image.Image):
        try:
            source.load()
        except Exception as exc:
            raise CorruptImageError(f"the PIL.Image failed to load: {exc}") from exc
        _check_size(source.width, source.height, limits)
        decoded = Decoded(image=source, array=None, format=source.format,
                          frame_count=int(getattr(source, "n_frames", 1) or 1))
    else:
        data = _read_source(source, limits)
        fast = None
        if not exif_transpose and "JPEG" in limits.formats and sniff_format(data) == "JPEG":
            fast = decode_jpeg_fast(data, _pixel_cap(limits))
        if fast is not None:
            decoded = Decoded(image=None, array=fast, format="JPEG", frame_count=1,
                              array_mode="L" if fast.ndim == 2 else "RGB")
        else:
            image, fmt, frames = _decode_bytes(data, limits)
            decoded = Decoded(image=image, array=None, format=fmt, frame_count=frames)
    if exif_transpose and decoded.image is not None:
        transposed = ImageOps.exif_transpose(decoded.image)
        decoded.exif_transposed = transposed is not decoded.image and transposed.size != (0, 0)
        decoded.image = transposed
    width, height = decoded.size
    if min(width, height) < limits.min_side:
        raise ImageTooSmallError(f"image is {width}x{height}; both sides must be at least {limits.min_side}")
    return decoded
