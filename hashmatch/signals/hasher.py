"""The hashing API: `Hasher` and `HashResult`. One read and one decode per input; every
requested signal type (hashmatch.signals) computes its hash from them: exact types from
every byte of the input, image types from the decoded picture and the conversions they
share. A Hasher is immutable and safe to share between threads; the kernels release the
GIL (`ordered_map` runs them on a thread pool).
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
from PIL import Image

from hashmatch import signals
from hashmatch.config import usable_cores
from hashmatch.decode.image import DecodeLimits, Source, decode, read_content, sniff_video_format
from hashmatch.errors import ConfigurationError, EmptyInputError, ImageError, InputTooLargeError, UnsupportedFormatError
from hashmatch.signals.base import HashOptions, ImageContext, to_rgb
from hashmatch.signals.pdq import DIHEDRAL_NAMES, PDQ_MODES, pdq_hashes

# The built-in signal types by kind (plug-ins add to signals.names(), not to these).
PERCEPTUAL_ALGORITHMS = tuple(s.name for s in signals.BUILTIN if not s.exact and s.content == "image")
CRYPTOGRAPHIC_ALGORITHMS = tuple(s.name for s in signals.BUILTIN if s.exact)
VIDEO_ALGORITHMS = tuple(s.name for s in signals.BUILTIN if s.content == "video")
#: The image and file hashes (what `hashmatch hash` computes by default to choose from).
ALGORITHMS = PERCEPTUAL_ALGORITHMS + CRYPTOGRAPHIC_ALGORITHMS
#: Hex digits of each built-in fixed-length hash (signals.get(name).hex_length for any).
HEX_LENGTH = {s.name: s.hex_length for s in signals.BUILTIN if not s.variable}

__all__ = ["ALGORITHMS", "CRYPTOGRAPHIC_ALGORITHMS", "VIDEO_ALGORITHMS", "DIHEDRAL_NAMES", "HEX_LENGTH", "PDQ_MODES",
           "PERCEPTUAL_ALGORITHMS", "HashResult", "Hasher", "hash_image", "ordered_map", "parse_algorithms",
           "pdq_from_pixels", "to_rgb"]


def parse_algorithms(spec: str | Iterable[str]) -> tuple[str, ...]:
    """'pdq,phash' or ['pdq', 'phash'] -> ('pdq', 'phash'): known signal types (aliases
    resolved), order kept, no repeats."""
    items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    names: list[str] = []
    for raw in items:
        if not raw.strip():
            continue
        name = signals.get(raw).name
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigurationError("no algorithm requested")
    return tuple(names)


@dataclass(frozen=True)
class HashResult:
    """Everything computed for one input: each hash under its algorithm name, each
    signal type's full value (the hash and what the type adds, e.g. PDQ's quality) under
    `values`, and the facts of the decoded picture."""

    hashes: dict[str, str]  # algorithm -> lowercase hex
    width: int | None  # None when only exact hashes were asked for (nothing was decoded)
    height: int | None
    format: str | None  # e.g. "JPEG"; None for PIL.Image/array inputs without one
    mode: str | None  # Pillow mode of the decoded frame; None for arrays
    frame_count: int = 1  # > 1: animated; only the first frame was hashed
    exif_transposed: bool = False
    size: int | None = None  # bytes of the input, when it had bytes
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # algorithm -> {"hash": ..., ...}

    @property
    def first_frame_only(self) -> bool:
        return self.frame_count > 1

    # PDQ's own fields, read from its value (conveniences of the Python API).
    @property
    def pdq_quality(self) -> int | None:
        return self.values.get("pdq", {}).get("quality")

    @property
    def pdq_mode(self) -> str | None:
        return self.values.get("pdq", {}).get("mode")

    @property
    def pdq_dihedral(self) -> dict[str, str] | None:
        return self.values.get("pdq", {}).get("dihedral")

    @property
    def pdq_trimmed(self) -> str | None:
        return self.values.get("pdq", {}).get("trimmed")

    @property
    def pdq_trimmed_quality(self) -> int | None:
        return self.values.get("pdq", {}).get("trimmed_quality")

    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready: each hash under its algorithm name, what each signal type adds
        (PDQ: pdq_quality, pdq_mode, pdq_dihedral, pdq_trimmed...), then the image facts."""
        record: dict[str, Any] = dict(self.hashes)
        if self.size is not None:
            record["size"] = self.size
        if self.width is None:  # exact hashes only: the content was not decoded
            return record
        for name, value in self.values.items():
            record.update(signals.get(name).record_fields(value))
        record.update(width=self.width, height=self.height, format=self.format, mode=self.mode,
                      frames=self.frame_count)
        if self.exif_transposed:
            record["exif_transposed"] = True
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any], algorithms: Sequence[str]) -> "HashResult":
        """The HashResult whose to_dict() is `record` (how results cross a process boundary
        as plain data)."""
        present = [a for a in algorithms if a in record]
        values = {a: signals.get(a).value_from_record(record) for a in present} if "width" in record else {}
        return cls(hashes={a: record[a] for a in present}, width=record.get("width"), height=record.get("height"),
                   format=record.get("format"), mode=record.get("mode"), frame_count=record.get("frames", 1),
                   exif_transposed=bool(record.get("exif_transposed")), size=record.get("size"), values=values)


def pdq_from_pixels(pixels: Any, *, pdq_mode: str = "full", dihedral: bool = False) -> tuple[list[str], int]:
    """PDQ hex hash(es) and quality of an (H, W), (H, W, 3) or (H, W, 4) uint8 array."""
    return pdq_hashes(decode(pixels, DecodeLimits(min_side=1)), pdq_mode, dihedral)


@dataclass(frozen=True)
class Hasher:
    """A configured hasher. Immutable and thread-safe: share one across threads.

    >>> hasher = Hasher(("pdq", "md5"))
    >>> result = hasher.hash("upload.jpg")          # doctest: +SKIP
    >>> result.hashes["pdq"], result.pdq_quality     # doctest: +SKIP
    """

    algorithms: tuple[str, ...] = ("pdq",)
    pdq_mode: str = "full"
    dihedral: bool = False  # PDQ: also its 7 rotated/flipped variants
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    exif_transpose: bool = False
    trim_borders: bool = False  # PDQ: also the hash after trimming flat borders (pdq_trimmed)
    seconds_per_hash: float = 1.0  # video types: one frame per this many seconds (0: every frame)
    crop_robust: bool = False  # PDQ: also the zoom-out variants of a possible crop (pdq_crops)

    def __post_init__(self) -> None:
        object.__setattr__(self, "algorithms", parse_algorithms(self.algorithms))
        if not (isinstance(self.seconds_per_hash, (int, float)) and 0 <= self.seconds_per_hash <= 3600):
            raise ConfigurationError("seconds_per_hash must be between 0 (every frame) and 3600")
        if self.pdq_mode not in PDQ_MODES:
            raise ConfigurationError(f"unknown PDQ mode {self.pdq_mode!r}; choose from {', '.join(PDQ_MODES)}")
        for option, what in (("dihedral", "dihedral variants"), ("trim_borders", "border trimming"),
                             ("crop_robust", "crop-robust variants")):
            offering = [s for s in self.signal_types() if option in s.options]
            if getattr(self, option) and not offering:
                able = [s.name for s in map(signals.get, signals.names()) if option in s.options]
                raise ConfigurationError(f"{what}: a feature of {', '.join(able)}; request one of them")

    def signal_types(self) -> list[signals.SignalType]:
        return [signals.get(name) for name in self.algorithms]

    @property
    def options(self) -> HashOptions:
        return HashOptions(self.pdq_mode, self.dihedral, self.trim_borders, self.limits, self.seconds_per_hash,
                           self.crop_robust)

    def hash(self, source: Source, *, on_file_hashes: Callable[[int, dict[str, str]], None] | None = None,
             on_video_open: Callable[[float], None] | None = None) -> HashResult:
        """Hash one input (path, bytes, binary file, PIL.Image or uint8 array).

        Exact hashes (MD5/SHA) are taken of the input's bytes first, streamed past the
        decode byte cap, for any file, image or not; with only exact hashes requested
        nothing is decoded. If decoding then fails, the ImageError raised carries them
        (`file_hashes`, `file_size`). `on_file_hashes(size, hashes)` is called as soon as
        they are known, before decoding starts (the scan's workers report them early, so
        a file whose decode crashes a worker still gets its exact-hash outcome).
        `on_video_open(seconds)` is called when a video is opened, with the duration it
        declares (workers give a video time in proportion to it).

        Raises an ImageError subclass for a bad input; nothing else is expected.
        """
        kinds = self.signal_types()
        from_bytes = [s for s in kinds if s.content == "bytes"]
        from_image = [s for s in kinds if s.content == "image"]
        from_video = [s for s in kinds if s.content == "video"]
        size = None
        digests: dict[str, str] = {}
        content = None
        if from_bytes:
            content = read_content(source, self.limits, {s.name: s.new_digest() for s in from_bytes})
            size, digests = content.size, content.digests
            if on_file_hashes is not None:
                on_file_hashes(size, dict(digests))
            if not from_image and not from_video:
                return HashResult(hashes=dict(digests), width=None, height=None, format=None, mode=None, size=size)
        try:
            # Sniffed only when a video type is asked for: an image-only hash must not pay an
            # extra open and read of every file (a video then fails to decode, below).
            video = _video_family(source, content, self.limits) if from_video else None
            if video is not None and video in self.limits.video_formats:
                return self._hash_video(source, content, from_video, from_image, digests, size, video,
                                        on_video_open)
            if not from_image:
                if (content.size if content is not None else _source_size(source)) == 0:
                    raise EmptyInputError("input is empty (0 bytes)")
                raise UnsupportedFormatError(f"not a video hashmatch decodes (allowed containers: "
                                             f"{', '.join(sorted(self.limits.video_formats))}); "
                                             f"{', '.join(s.name for s in from_video)} hashes videos only")
            if content is not None and content.data is None:
                raise InputTooLargeError(f"{content.size} bytes exceeds the byte cap of {self.limits.max_bytes}"
                                         " (exact hashes taken of every byte; not decoded)")
            try:
                decoded = decode(source if content is None or content.data is None else content.data, self.limits,
                                 exif_transpose=self.exif_transpose)
            except UnsupportedFormatError:
                video = None if from_video else _video_family(source, content, self.limits)
                if video is None:
                    raise
                raise UnsupportedFormatError(f"a video ({video} container): hash it with a video signal type "
                                             f"({', '.join(VIDEO_ALGORITHMS)})") from None
        except ImageError as exc:
            if from_bytes:
                exc.file_hashes, exc.file_size = dict(digests), size
            raise
        context = ImageContext(decoded, self.options)
        values = {s.name: s.compute(context) for s in from_image}
        hashes = self._hashes(values, digests)
        width, height = decoded.size
        return HashResult(hashes=hashes, width=width, height=height, format=decoded.format, mode=decoded.mode,
                          frame_count=decoded.frame_count, exif_transposed=decoded.exif_transposed, size=size,
                          values=values)

    def _hashes(self, values: dict[str, dict[str, Any]], digests: dict[str, str]) -> dict[str, str]:
        """Each requested hash that applied to this input, in the requested order."""
        return {name: values[name]["hash"] if name in values else digests[name]
                for name in self.algorithms if name in values or name in digests}

    def _hash_video(self, source: Source, content: Any, from_video: list, from_image: list,
                    digests: dict[str, str], size: int | None, family: str,
                    on_open: Callable[[float], None] | None) -> HashResult:
        """A video's hashes: the video types, plus the image types of its first frame for an
        animation (GIF, WebP) hashed as video on request."""
        if content is not None and content.data is not None:
            video_source: Source = content.data
        elif isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
            video_source = source
        else:  # a file object already read through for its exact hashes, too large to have kept
            raise InputTooLargeError(f"{content.size if content else '?'} bytes exceeds the byte cap of "
                                     f"{self.limits.max_bytes}; pass a path to hash a larger video")
        animation = family in ("GIF", "WEBP")
        values: dict[str, dict[str, Any]] = {}
        width = height = mode = None
        frames = 1
        if animation and from_image:  # the first frame, as for any image; the video hashes are extra
            decoded = decode(video_source, self.limits, exif_transpose=self.exif_transpose)
            values.update({s.name: s.compute(ImageContext(decoded, self.options)) for s in from_image})
            (width, height), mode, frames = decoded.size, decoded.mode, decoded.frame_count
        try:
            for s in from_video:
                values[s.name] = s.compute_video(video_source, self.options, on_open)
        except ImageError:
            if not values:
                raise
        video = next((values[s.name] for s in from_video if s.name in values), None)
        if video is not None:
            width, height, frames = video.get("width"), video.get("height"), video.get("decoded_frames", 1)
        hashes = self._hashes(values, digests)
        return HashResult(hashes=hashes, width=width, height=height, format=family, mode=mode,
                          frame_count=int(frames or 1), size=size, values=values)

    def hash_many(self, sources: Iterable[Source], *, threads: int | None = None) -> Iterator[HashResult | ImageError]:
        """Hash many inputs on `threads` threads (default: the usable cores), yielding in
        input order a HashResult or the ImageError of that input; never stops early."""
        return ordered_map(self.hash_or_error, sources, threads)

    def hash_or_error(self, source: Source) -> HashResult | ImageError:
        """Like hash(), but returns the ImageError of a bad input instead of raising it."""
        try:
            return self.hash(source)
        except ImageError as exc:
            return exc


#: Bytes enough to tell a video container by its magic bytes.
_SNIFF_BYTES = 64


def _video_family(source: Source, content: Any, limits: DecodeLimits) -> str | None:
    """The video container family of `source` (decode.sniff_video_format), or None; GIF
    and WEBP only where limits.video_formats asks to hash animations as video."""
    if content is not None and content.data is not None:
        head = content.data[:_SNIFF_BYTES]
    elif isinstance(source, (np.ndarray, Image.Image)):
        return None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:_SNIFF_BYTES])
    elif isinstance(source, (str, os.PathLike)):
        from hashmatch.decode.image import _open_regular

        fd, _ = _open_regular(source)
        try:
            head = os.read(fd, _SNIFF_BYTES)
        finally:
            os.close(fd)
    elif hasattr(source, "peek"):
        head = bytes(source.peek(_SNIFF_BYTES)[:_SNIFF_BYTES])
    elif hasattr(source, "seekable") and source.seekable():
        here = source.tell()
        head = source.read(_SNIFF_BYTES)
        source.seek(here)
    else:
        return None
    if not isinstance(head, (bytes, bytearray)):  # a text-mode file: decode() says what is wrong
        return None
    family = sniff_video_format(bytes(head))
    if family in ("GIF", "WEBP") and family not in limits.video_formats:
        return None
    return family


def _source_size(source: Source) -> int | None:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            return os.stat(source).st_size
        except OSError:
            return None
    return None


T = TypeVar("T")
R = TypeVar("R")


def ordered_map(function: Callable[[T], R], items: Iterable[T], threads: int | None = None) -> Iterator[R]:
    """map() on a thread pool, results in input order, at most 2 x threads items in
    flight (a huge listing never sits in memory). The kernels release the GIL."""
    threads = threads or usable_cores()
    if threads < 1:
        raise ConfigurationError("threads must be at least 1")
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hashmatch") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def hash_image(source: Source, algorithms: str | Iterable[str] = ("pdq",), **options: Any) -> HashResult:
    """Hash one input: `hash_image("a.jpg", "pdq,phash", dihedral=True)`. Options as Hasher."""
    return Hasher(parse_algorithms(algorithms), **options).hash(source)

