"""The hasher registry and the hashing API: one decode per input, every requested hash
computed from it by the compiled kernels (hashmatch._pdq, hashmatch._dct_hashes).

This module validates and prepares pixels exactly as the reference tools do, so the
kernels can stay free of checks:

* PDQ `full`: Pillow's convert("RGB") pixels, luma in float64 then float32, as the
  `pdqhash` package (and so python-threatexchange, HMA) computes it.
* PDQ `cimg512`: Meta's C++ pdq-photo-hasher: grey images use the grey value, others
  float32 luma; larger than 512 on a side -> nearest-neighbour resize to 512x512.
* pHash/dHash/aHash: imagehash's own preprocessing, convert("L") and a LANCZOS resize.

The kernels release the GIL; a Hasher is immutable and safe to share between threads.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
from PIL import Image, ImageCms

from . import _dct_hashes, _pdq
from .decode import Decoded, DecodeLimits, Source, decode, read_content
from .errors import ConfigurationError, ImageError, InputTooLargeError

PERCEPTUAL_ALGORITHMS = ("pdq", "phash", "dhash", "ahash")
CRYPTOGRAPHIC_ALGORITHMS = ("md5", "sha1", "sha256")
ALGORITHMS = PERCEPTUAL_ALGORITHMS + CRYPTOGRAPHIC_ALGORITHMS
#: Hex digits of each algorithm's hash.
HEX_LENGTH = {"pdq": 64, "phash": 16, "dhash": 16, "ahash": 16, "md5": 32, "sha1": 40, "sha256": 64}
PDQ_MODES = ("full", "cimg512")
#: Order of PDQ's dihedral variants (Meta's pdqDihedralHash256es order).
DIHEDRAL_NAMES = ("original", "rot90", "rot180", "rot270", "flipx", "flipy", "flipplus1", "flipminus1")

_CIMG_SIDE = 512  # the C++ hasher's DOWNSAMPLE_DIMS
_GREY_MODES = frozenset({"L", "LA", "1"})  # what CImg loads with one channel


def parse_algorithms(spec: str | Iterable[str]) -> tuple[str, ...]:
    """'pdq,phash' or ['pdq', 'phash'] -> ('pdq', 'phash'), validated, order kept, no repeats."""
    items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    names: list[str] = []
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        if name not in ALGORITHMS:
            raise ConfigurationError(f"unknown algorithm {raw!r}; choose from {', '.join(ALGORITHMS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigurationError("no algorithm requested")
    return tuple(names)


@dataclass(frozen=True)
class HashResult:
    """Everything computed for one input."""

    hashes: dict[str, str]  # algorithm -> lowercase hex
    width: int | None  # None when only exact hashes were asked for (nothing was decoded)
    height: int | None
    format: str | None  # e.g. "JPEG"; None for PIL.Image/array inputs without one
    mode: str | None  # Pillow mode of the decoded frame; None for arrays
    frame_count: int = 1  # > 1: animated; only the first frame was hashed
    pdq_quality: int | None = None  # 0-100, when PDQ was requested
    pdq_mode: str | None = None
    pdq_dihedral: dict[str, str] | None = None  # DIHEDRAL_NAMES -> hex, on request
    exif_transposed: bool = False
    pdq_trimmed: str | None = None  # PDQ after trimming flat borders (trim_borders), when any were
    pdq_trimmed_quality: int | None = None
    size: int | None = None  # bytes of the input, when it had bytes

    @property
    def first_frame_only(self) -> bool:
        return self.frame_count > 1

    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready: each hash under its algorithm name, then the image facts."""
        record: dict[str, Any] = dict(self.hashes)
        if self.size is not None:
            record["size"] = self.size
        if self.width is None:  # exact hashes only: the content was not decoded
            return record
        if self.pdq_quality is not None:
            record["pdq_quality"] = self.pdq_quality
            record["pdq_mode"] = self.pdq_mode
        if self.pdq_dihedral is not None:
            record["pdq_dihedral"] = dict(self.pdq_dihedral)
        record.update(width=self.width, height=self.height, format=self.format, mode=self.mode,
                      frames=self.frame_count)
        if self.exif_transposed:
            record["exif_transposed"] = True
        if self.pdq_trimmed is not None:
            record["pdq_trimmed"] = self.pdq_trimmed
            record["pdq_trimmed_quality"] = self.pdq_trimmed_quality
        return record


    @classmethod
    def from_dict(cls, record: dict[str, Any], algorithms: Sequence[str]) -> "HashResult":
        """The HashResult whose to_dict() is `record` (how results cross a process boundary
        as plain data)."""
        return cls(
            hashes={a: record[a] for a in algorithms if a in record}, width=record.get("width"),
            height=record.get("height"), format=record.get("format"), mode=record.get("mode"),
            frame_count=record.get("frames", 1), pdq_quality=record.get("pdq_quality"),
            pdq_mode=record.get("pdq_mode"), pdq_dihedral=record.get("pdq_dihedral"),
            exif_transposed=bool(record.get("exif_transposed")), pdq_trimmed=record.get("pdq_trimmed"),
            pdq_trimmed_quality=record.get("pdq_trimmed_quality"), size=record.get("size"))


def trim_uniform_border(image: Image.Image, tolerance: int = 12, min_keep: float = 0.5) -> Image.Image | None:
    """The image without the rows and columns at its edges that are one flat colour
    (within `tolerance` grey levels): letterbox bars, frames, screenshot margins. None when
    there is nothing to trim, or when trimming would keep less than `min_keep` of a side."""
    grey = np.asarray(image.convert("L"), np.int16)
    h, w = grey.shape
    if h < 8 or w < 8:
        return None
    spread_rows = grey.max(axis=1) - grey.min(axis=1)
    flat_rows = np.flatnonzero(spread_rows > tolerance)
    if not len(flat_rows):
        return None
    top, bottom = int(flat_rows[0]), int(flat_rows[-1]) + 1
    inner = grey[top:bottom]
    spread_cols = inner.max(axis=0) - inner.min(axis=0)
    cols = np.flatnonzero(spread_cols > tolerance)
    if not len(cols):  # every column is flat within the non-flat rows (a flat box on a flat ground)
        return None
    left, right = int(cols[0]), int(cols[-1]) + 1
    if (top, bottom, left, right) == (0, h, 0, w):
        return None
    if (bottom - top) < min_keep * h or (right - left) < min_keep * w:
        return None
    return image.crop((left, top, right, bottom))


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "LAB":  # Pillow has no direct LAB -> RGB conversion
        return ImageCms.applyTransform(
            image, ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
        )
    try:
        return image.convert("RGB")
    except ValueError:  # premultiplied "La" converts only to "LA": go through the un-premultiplied mode
        return image.convert("LA" if image.mode == "La" else "RGBA").convert("RGB")


def _to_grey(image: Image.Image) -> Image.Image:
    if image.mode == "LAB":  # imagehash cannot hash LAB at all; use its lightness channel
        return image.getchannel("L")
    try:
        return image.convert("L")
    except ValueError:
        return _to_rgb(image).convert("L")


def _pdq_pixels(decoded: Decoded, pdq_mode: str) -> tuple[np.ndarray, int]:
    """(H, W, C) uint8 pixels and the luma convention for the PDQ kernel."""
    cimg = pdq_mode == "cimg512"
    if decoded.array is not None:
        pixels = decoded.array
        grey = pixels.ndim == 2
    else:
        image = decoded.image
        assert image is not None
        grey = image.mode in _GREY_MODES
        if image.mode in ("RGB", "RGBA", "L", "LA"):
            # convert("RGB") of these only drops alpha / replicates grey; the kernel reads
            # the first channel (C < 3) or the first three, so no conversion copy is needed.
            pixels = np.asarray(image)
        elif cimg and grey:
            pixels = np.asarray(image.convert("L"))
        else:
            pixels = np.asarray(_to_rgb(image))
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if cimg:
        height, width = pixels.shape[:2]
        if height > _CIMG_SIDE or width > _CIMG_SIDE:
            rows = (np.arange(_CIMG_SIDE) * height) // _CIMG_SIDE
            cols = (np.arange(_CIMG_SIDE) * width) // _CIMG_SIDE
            pixels = pixels[rows][:, cols]
        luma = _pdq.LUMA_CPP_GREY if grey else _pdq.LUMA_CPP_RGB
    else:
        luma = _pdq.LUMA_PDQHASH
    return np.ascontiguousarray(pixels), luma


def pdq_from_pixels(pixels: np.ndarray, *, pdq_mode: str = "full", dihedral: bool = False) -> tuple[list[str], int]:
    """PDQ hex hash(es) and quality of an (H, W), (H, W, 3) or (H, W, 4) uint8 array."""
    decoded = decode(pixels, DecodeLimits(min_side=1))
    return _pdq_hashes(decoded, pdq_mode, dihedral)


def _pdq_hashes(decoded: Decoded, pdq_mode: str, dihedral: bool) -> tuple[list[str], int]:
    pixels, luma = _pdq_pixels(decoded, pdq_mode)
    out = np.zeros((_pdq.NUM_DIHEDRAL if dihedral else 1, 32), dtype=np.uint8)
    quality = _pdq.pdq_hash(pixels, luma, pdq_mode == "cimg512", out)
    return [row.tobytes().hex() for row in out], int(quality)


def _grey_thumbnail(grey: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(grey.resize(size, Image.Resampling.LANCZOS)), dtype=np.uint8)


def _imagehash_family(decoded: Decoded, wanted: Sequence[str]) -> dict[str, str]:
    if decoded.image is not None:
        grey = _to_grey(decoded.image)
    else:
        assert decoded.array is not None
        grey = _to_grey(Image.fromarray(decoded.array))
    # imagehash's sizes at hash_size=8: pHash 32x32, dHash 9 wide x 8 high, aHash 8x8.
    kernels = {"phash": (_dct_hashes.phash, (32, 32)), "dhash": (_dct_hashes.dhash, (9, 8)),
               "ahash": (_dct_hashes.ahash, (8, 8))}
    hashes = {}
    for name in wanted:
        kernel, size = kernels[name]
        out = np.zeros(8, dtype=np.uint8)
        kernel(_grey_thumbnail(grey, size), out)
        hashes[name] = out.tobytes().hex()
    return hashes


@dataclass(frozen=True)
class Hasher:
    """A configured hasher. Immutable and thread-safe: share one across threads.

    >>> hasher = Hasher(("pdq", "md5"))
    >>> result = hasher.hash("upload.jpg")          # doctest: +SKIP
    >>> result.hashes["pdq"], result.pdq_quality     # doctest: +SKIP
    """

    algorithms: tuple[str, ...] = ("pdq",)
    pdq_mode: str = "full"
    dihedral: bool = False
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    exif_transpose: bool = False
    trim_borders: bool = False  # also hash PDQ after trimming flat borders (pdq_trimmed)

    def __post_init__(self) -> None:
        object.__setattr__(self, "algorithms", parse_algorithms(self.algorithms))
        if self.pdq_mode not in PDQ_MODES:
            raise ConfigurationError(f"unknown PDQ mode {self.pdq_mode!r}; choose from {', '.join(PDQ_MODES)}")
        if self.dihedral and "pdq" not in self.algorithms:
            raise ConfigurationError("dihedral variants are a PDQ feature; request the pdq algorithm")
        if self.trim_borders and "pdq" not in self.algorithms:
            raise ConfigurationError("border trimming adds a PDQ variant; request the pdq algorithm")

    def hash(self, source: Source, *,
             on_file_hashes: Callable[[int, dict[str, str]], None] | None = None) -> HashResult:
        """Hash one input (path, bytes, binary file, PIL.Image or uint8 array).

        Exact hashes (MD5/SHA) are taken of the input's bytes first, streamed past the
        decode byte cap, for any file, image or not; with only exact hashes requested
        nothing is decoded. If decoding then fails, the ImageError raised carries them
        (`file_hashes`, `file_size`). `on_file_hashes(size, hashes)` is called as soon as
        they are known, before decoding starts (the scan's workers report them early, so
        a file whose decode crashes a worker still gets its exact-hash outcome).

        Raises an ImageError subclass for a bad input; nothing else is expected.
        """
        exact = [a for a in self.algorithms if a in CRYPTOGRAPHIC_ALGORITHMS]
        size = None
        hashes: dict[str, str] = {}
        if exact:
            content = read_content(source, self.limits, exact)
            size = content.size
            if on_file_hashes is not None:
                on_file_hashes(content.size, dict(content.digests))
            if len(exact) == len(self.algorithms):
                return HashResult(hashes=dict(content.digests), width=None, height=None, format=None, mode=None,
                                  size=size)
            try:
                if content.data is None:
                    raise InputTooLargeError(f"{content.size} bytes exceeds the byte cap of {self.limits.max_bytes}"
                                             " (exact hashes taken of every byte; not decoded)")
                decoded = decode(content.data, self.limits, exif_transpose=self.exif_transpose)
            except ImageError as exc:
                exc.file_hashes, exc.file_size = dict(content.digests), content.size
                raise
            hashes = content.digests
        else:
            decoded = decode(source, self.limits, exif_transpose=self.exif_transpose)
        quality = dihedral = None
        family = [a for a in self.algorithms if a in ("phash", "dhash", "ahash")]
        family_hashes = _imagehash_family(decoded, family) if family else {}
        computed: dict[str, str] = {}
        for name in self.algorithms:
            if name == "pdq":
                pdq, quality = _pdq_hashes(decoded, self.pdq_mode, self.dihedral)
                computed["pdq"] = pdq[0]
                if self.dihedral:
                    dihedral = dict(zip(DIHEDRAL_NAMES, pdq))
            elif name in family_hashes:
                computed[name] = family_hashes[name]
            else:
                computed[name] = hashes[name]
        trimmed = trimmed_quality = None
        if self.trim_borders:
            trimmed, trimmed_quality = self._trimmed_pdq(decoded)
        width, height = decoded.size
        return HashResult(
            hashes=computed, width=width, height=height, format=decoded.format, mode=decoded.mode,
            frame_count=decoded.frame_count, pdq_quality=quality,
            pdq_mode=self.pdq_mode if quality is not None else None, pdq_dihedral=dihedral,
            exif_transposed=decoded.exif_transposed, pdq_trimmed=trimmed, pdq_trimmed_quality=trimmed_quality,
            size=size,
        )

    def _trimmed_pdq(self, decoded: Decoded) -> tuple[str | None, int | None]:
        image = decoded.image if decoded.image is not None else Image.fromarray(decoded.array)
        trimmed = trim_uniform_border(_to_rgb(image))
        if trimmed is None:
            return None, None
        try:
            result = Hasher(("pdq",), pdq_mode=self.pdq_mode, limits=self.limits).hash(trimmed)
        except ImageError:  # e.g. trimmed below the minimum size
            return None, None
        return result.hashes["pdq"], result.pdq_quality

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


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
