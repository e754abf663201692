"""vPDQ, Meta's video hash: one PDQ hash, quality and timestamp per kept frame, and its
serialisations.

Hashing follows Meta's C++ (`../shared/vpdq-reference`, vpdq/cpp/vpdq/cpp/hashing): frame
rate from the stream (avg_frame_rate, else r_frame_rate), frame n kept when
n % max(1, int(seconds_per_hash * fps)) == 0, converted to RGB24 at its own size by
swscale with SWS_AREA, hashed by the float PDQ of Meta's C++ (the kernel's LUMA_CPP_RGB
convention, filter skipped at exactly 64x64), timestamp n / fps in float32. Frames under 5
pixels on a side hash to zero with quality 0, as there.

Serialisations, both read and written:

* python-threatexchange's signal string: a JSON list of "hex,quality,timestamp" strings.
  hashmatch writes timestamps with three decimals ("%.3f"); python-threatexchange writes
  three significant digits ("12.3", "1.23e+02"); both read back the same.
* Meta's per-frame text file (the C++ CLI's output, `sample-hashes/NAME.txt`): one line
  per frame, "frame_number,quality,hex,timestamp".

The store keeps a video's frames packed (`pack`/`unpack`): per frame 32 hash bytes, a
quality byte, a float64 timestamp and a uint32 frame number.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from hashmatch._native import pdq as _pdq
from hashmatch.decode.borders import ConstantBars
from hashmatch.decode.image import DecodeLimits, Source
from hashmatch.decode.video import VideoInfo, open_video

#: Frames below this PDQ quality are not matched (Meta's and python-threatexchange's rule).
QUALITY_GATE = 50
#: Meta's default frame step for matching lists (python-threatexchange, the Python binding).
DEFAULT_SECONDS_PER_HASH = 1.0
#: Largest number of frames one serialised value may hold (a 4-hour video at 1/s is 14,400).
MAX_FRAMES = 1_000_000

_FRAME = np.dtype([("hash", "u1", 32), ("quality", "u1"), ("timestamp", "<f8"), ("number", "<u4")])
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Frame:
    """One vPDQ feature: a kept frame's PDQ hash (64 hex), quality, timestamp (s), number."""

    hash: str
    quality: int
    timestamp: float
    number: int

    def __str__(self) -> str:
        return f"{self.hash},{self.quality},{self.timestamp:.3f}"


@dataclass(frozen=True)
class VideoHash:
    """The vPDQ of one video and what was decoded to compute it."""

    frames: tuple[Frame, ...]
    info: VideoInfo
    decoded_frames: int
    seconds_per_hash: float
    trimmed: tuple[Frame, ...] | None = None  # with trim_borders: the frames with flat borders cropped

    @property
    def duration(self) -> float:
        return self.decoded_frames / self.info.fps


def hash_video(source: Source, *, seconds_per_hash: float = DEFAULT_SECONDS_PER_HASH,
               limits: DecodeLimits | None = None, threads: int = 1,
               on_open: Callable[[float], None] | None = None, trim_borders: bool = False) -> VideoHash:
    """vPDQ of the video in `source` (path, bytes or binary file); a typed ImageError
    (decode/video.py) for anything that is not a whole, decodable video within `limits`.
    `on_open(seconds)`: called with the duration to decode once the video is open.
    `trim_borders`: also the frames' hashes with flat borders (letterbox bars) cropped
    (VideoHash.trimmed; a frame with nothing to crop keeps its hash)."""
    if not seconds_per_hash >= 0:
        raise ValueError("seconds_per_hash must be 0 (every frame) or more")
    limits = limits or DecodeLimits()
    out = np.zeros((1, 32), np.uint8)
    frames: list[Frame] = []
    trimmed: list[Frame] = []
    bars = ConstantBars() if trim_borders else None
    with open_video(source, limits, threads=threads) as video:
        fps32 = np.float32(video.info.fps)
        if on_open is not None:
            declared = video.info.duration or video.info.declared_frames / video.info.fps
            on_open(min(declared, limits.max_video_seconds))
        for number, frame in video.kept_frames(video.every(seconds_per_hash)):
            pixels = frame.to_ndarray(format="rgb24", interpolation="AREA")
            timestamp = float(np.float32(number) / fps32)  # the C++'s float arithmetic
            frames.append(_frame(pixels, timestamp, number, out))
            if bars is not None:
                bars.add(pixels)
                trimmed.append(_trimmed_frame(pixels, frames[-1]))
        info, decoded = video.info, video.decoded
    rectangle = bars.rectangle() if bars is not None else None
    if rectangle is not None:
        # Bars constant over the whole video: every frame cropped to the same content
        # rectangle, in a second decode (frames are never all held in memory).
        trimmed = _cropped_frames(source, limits, threads, seconds_per_hash, rectangle, frames)
    return VideoHash(tuple(frames), info, decoded, seconds_per_hash, tuple(trimmed) if trim_borders else None)


def _cropped_frames(source: Source, limits: DecodeLimits, threads: int, seconds_per_hash: float,
                    rectangle: tuple[int, int, int, int], plain: list[Frame]) -> list[Frame]:
    if hasattr(source, "seek"):
        source.seek(0)
    left, top, right, bottom = rectangle
    out = np.zeros((1, 32), np.uint8)
    by_number = {f.number: f for f in plain}
    cropped: list[Frame] = []
    with open_video(source, limits, threads=threads) as video:
        for number, frame in video.kept_frames(video.every(seconds_per_hash)):
            original = by_number.get(number)
            if original is None:
                continue
            pixels = frame.to_ndarray(format="rgb24", interpolation="AREA")[top:bottom, left:right]
            cropped.append(_frame(pixels, original.timestamp, number, out))
    return cropped


def _trimmed_frame(pixels: np.ndarray, frame: Frame) -> Frame:
    """The frame's hash with its flat borders cropped (decode.borders.trim_uniform_border)."""
    from PIL import Image

    from hashmatch.decode.borders import trim_uniform_border

    crop = trim_uniform_border(Image.fromarray(pixels))
    if crop is None:
        return frame
    return _frame(np.asarray(crop), frame.timestamp, frame.number, np.zeros((1, 32), np.uint8))


def _frame(pixels: np.ndarray, timestamp: float, number: int, out: np.ndarray) -> Frame:
    """One frame's vPDQ entry: PDQ as Meta's C++ hasher computes it (CImg luma, 512 cap)."""
    quality = _pdq.pdq_hash(np.ascontiguousarray(pixels), _pdq.LUMA_CPP_RGB, True, out)
    return Frame(out[0].tobytes().hex(), int(quality), timestamp, number)


# -- serialisations ------------------------------------------------------------------------
def to_signal_string(frames: Iterable[Frame]) -> str:
    """python-threatexchange's vPDQ signal string, without spaces (one token on a line of
    a text list; python-threatexchange reads it as it reads its own)."""
    return json.dumps([str(f) for f in frames], separators=(",", ":"))


def to_frame_file(frames: Iterable[Frame]) -> str:
    """Meta's per-frame text: "frame_number,quality,hex,timestamp" lines."""
    return "".join(f"{f.number},{f.quality},{f.hash},{f.timestamp:.3f}\n" for f in frames)


def parse(text: str) -> list[Frame]:
    """Frames from either serialisation (a JSON list, or per-frame lines); ValueError
    with the reason for anything malformed."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"not a vPDQ signal string: {exc}") from exc
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError("not a vPDQ signal string: expected a JSON list of \"hex,quality,timestamp\" strings")
        rows = [item.split(",") for item in items]
        if any(len(row) != 3 for row in rows):
            raise ValueError("a vPDQ feature is not \"hex,quality,timestamp\"")
        return _frames((row[0], row[1], row[2], str(i)) for i, row in enumerate(rows))
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    rows = [line.split(",") for line in lines]
    if not rows or any(len(row) != 4 for row in rows):
        raise ValueError("not vPDQ: neither a JSON list of \"hex,quality,timestamp\" nor "
                         "\"frame,quality,hex,timestamp\" lines")
    return _frames((row[2], row[1], row[3], row[0]) for row in rows)


def _frames(rows: Iterable[tuple[str, str, str, str]]) -> list[Frame]:
    frames: list[Frame] = []
    for hex_hash, quality, timestamp, number in rows:
        if len(frames) >= MAX_FRAMES:
            raise ValueError(f"more than {MAX_FRAMES} vPDQ frames in one value")
        code = hex_hash.strip().lower()
        if len(code) != 64 or not set(code) <= _HEX:
            raise ValueError(f"vPDQ frame {len(frames)}: {hex_hash.strip()[:70]!r} is not 64 hex digits")
        try:
            q, t, n = int(quality), float(timestamp), int(number)
        except ValueError as exc:
            raise ValueError(f"vPDQ frame {len(frames)}: quality, timestamp or frame number is not a number") from exc
        if not 0 <= q <= 100 or not 0 <= t < 1e9 or not 0 <= n < 2**32:
            raise ValueError(f"vPDQ frame {len(frames)}: quality {q}, timestamp {t} or number {n} out of range")
        frames.append(Frame(code, q, t, n))
    if not frames:
        raise ValueError("a vPDQ hash needs at least one frame")
    return frames


def canonical(text: str) -> str:
    """The signal string of either serialisation (how a list's value is normalised)."""
    return to_signal_string(parse(text))


def pack(frames: Sequence[Frame]) -> bytes:
    rows = np.zeros(len(frames), _FRAME)
    if len(frames):
        rows["hash"] = np.frombuffer(bytes.fromhex("".join(f.hash for f in frames)), np.uint8).reshape(-1, 32)
        rows["quality"] = [f.quality for f in frames]
        rows["timestamp"] = [f.timestamp for f in frames]
        rows["number"] = [f.number for f in frames]
    return rows.tobytes()


def unpack(blob: bytes) -> list[Frame]:
    rows = _rows(blob)
    return [Frame(bytes(r["hash"]).hex(), int(r["quality"]), float(r["timestamp"]), int(r["number"])) for r in rows]


def _rows(blob: bytes) -> np.ndarray:
    if len(blob) % _FRAME.itemsize:
        raise ValueError("a packed vPDQ value has a partial frame")
    return np.frombuffer(blob, _FRAME)


def matchable(blob: bytes, quality_gate: int = QUALITY_GATE) -> tuple[np.ndarray, np.ndarray]:
    """(codes (k, 32) uint8, timestamps (k,) float64) of the frames a match considers:
    quality >= gate, identical hashes kept once (the first), in frame order."""
    rows = _rows(blob)
    rows = rows[rows["quality"] >= quality_gate]
    if not len(rows):
        return np.zeros((0, 32), np.uint8), np.zeros(0)
    codes = np.ascontiguousarray(rows["hash"])
    _, first = np.unique(codes.view(np.dtype((np.void, 32))).ravel(), return_index=True)
    first.sort()
    return np.ascontiguousarray(codes[first]), rows["timestamp"][first].astype(np.float64)


def value_of(video: VideoHash) -> dict[str, Any]:
    """The signal type's value (JSON-ready) of a computed vPDQ."""
    info = video.info
    return {"hash": to_signal_string(video.frames), "frames": len(video.frames), "decoded_frames":
            video.decoded_frames, "seconds_per_hash": video.seconds_per_hash, "fps": round(info.fps, 6),
            "duration": round(video.duration, 3), "codec": info.codec, "container": info.format,
            "width": info.width, "height": info.height,
            **({"trimmed": to_signal_string(video.trimmed)} if video.trimmed is not None else {})}
