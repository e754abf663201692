"""Opening a video safely with PyAV and yielding the frames vPDQ hashes, or a typed error.
The only place PyAV opens data.

Defences, cheapest first: byte cap (before opening), container sniffed from the magic
bytes and checked against `DecodeLimits.video_formats`, the demuxer forced to that one
container (FFmpeg never probes, so a playlist or a concatenation script cannot make it
open other files or URLs), the codec checked against an allowlist of software decoders,
declared frame size, frame rate and duration checked before the first frame is decoded,
and the same caps again on every decoded frame (headers can lie). A decode error is
`corrupt`, or `truncated` when it comes from the last bytes of the file or the stream
stops short of the frames its container declares.

Frames are numbered in decode output order from 0, the way Meta's C++ counts them
(AVCodecContext.frame_num - 1); `every` keeps frame n when n % every == 0.
"""
from __future__ import annotations

import io
import os
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO, Iterator, cast

from hashmatch.decode.image import DecodeLimits, Source, _open_regular, sniff_video_format
from hashmatch.errors import (
    CorruptImageError,
    DecompressionBombError,
    EmptyInputError,
    InputTooLargeError,
    InputTypeError,
    NoFrameRateError,
    NoVideoStreamError,
    TruncatedImageError,
    UnreadableInputError,
    UnsupportedFormatError,
    VideoSupportMissingError,
    VideoTooLongError,
)

#: Our container families -> the one FFmpeg demuxer each may be opened with.
DEMUXERS = {"MP4": "mov", "MATROSKA": "matroska", "AVI": "avi", "GIF": "gif", "WEBP": "webp_pipe"}
#: Decoders (FFmpeg names) a video may use: the common software decoders of uploads.
CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "libvpx-vp9", "av1", "libdav1d", "libaom-av1", "mpeg4",
                    "mpeg1video", "mpeg2video", "mjpeg", "h263", "msmpeg4v2", "msmpeg4", "theora", "vc1",
                    "wmv3", "prores", "gif", "webp"})
#: A stream may stop this many frames (or this share) short of its declared count before
#: it counts as cut short: edit lists and B-frame reordering make the count approximate.
TRUNCATION_SLACK = (3, 0.01)
#: A stream whose frames end this many seconds (or this share of the duration) before the
#: duration its container declares is cut short: Matroska and WebM declare no frame count,
#: and a cut file still declares its whole duration. Generous, so that an audio track
#: that outlasts the picture a little is not taken for a cut.
DURATION_SLACK = (2.0, 0.05)


@dataclass(frozen=True)
class VideoInfo:
    """What the container declares about the video stream, checked against the caps."""

    format: str  # our container family: MP4, MATROSKA, AVI, GIF, WEBP
    codec: str
    width: int
    height: int
    frame_rate: Fraction  # avg_frame_rate, else r_frame_rate (as Meta's C++)
    duration: float | None  # seconds, when declared
    declared_frames: int  # 0 when not declared

    @property
    def fps(self) -> float:
        return float(self.frame_rate)


def _av() -> Any:
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise VideoSupportMissingError("hashing video needs PyAV: pip install 'hashmatch[video]'") from exc
    return av


def _handle(source: Source, limits: DecodeLimits) -> tuple[Any, int, bool]:
    """(binary file object, size in bytes, whether we own it) for a path, bytes or file."""
    if isinstance(source, (str, os.PathLike)):
        fd, st = _open_regular(source)
        return os.fdopen(fd, "rb"), st.st_size, True
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source)), len(source), True
    if hasattr(source, "read"):
        stream = cast(BinaryIO, source)
        if getattr(stream, "seekable", lambda: False)():
            here = stream.tell()
            size = stream.seek(0, io.SEEK_END) - here
            stream.seek(here)
            return stream, size, False
        data = stream.read(limits.max_video_bytes + 1)  # a demuxer needs to seek: hold it
        if not isinstance(data, (bytes, bytearray)):
            raise InputTypeError("file objects must be opened in binary mode")
        return io.BytesIO(bytes(data)), len(data), True
    raise InputTypeError(f"cannot decode a {type(source).__name__} as video: expected a path, bytes or a binary file")


def _boxes_run_past_end(handle: Any, start: int, size: int) -> bool:
    """Whether an MP4's top-level boxes (32-bit or 64-bit sizes) claim more bytes than the
    file has, or end without the index (moov) a recorder writes last: the file was cut
    short, rather than corrupted."""
    position = 0
    seen_index = False
    for _ in range(10_000):
        if position >= size:
            return position > size or not seen_index
        if position + 8 > size:  # a box header cut in two
            return True
        handle.seek(start + position)
        header = handle.read(16)
        length = int.from_bytes(header[:4], "big")
        if length == 1 and len(header) == 16:
            length = int.from_bytes(header[8:16], "big")
        seen_index = seen_index or header[4:8] == b"moov"
        if length == 0:  # "to the end of the file"
            return not seen_index
        if length < 8:
            return False
        position += length
    return position > size


def _frame_rate(stream: Any) -> Fraction:
    for rate in (stream.average_rate, stream.base_rate):
        if rate is not None and rate.numerator > 0 and rate.denominator > 0:
            return Fraction(rate.numerator, rate.denominator)
    raise NoFrameRateError("the video stream declares no frame rate (zero or missing)")


def _check_declared(info: VideoInfo, limits: DecodeLimits) -> None:
    if info.width <= 0 or info.height <= 0:
        raise CorruptImageError(f"the video stream declares a frame of {info.width}x{info.height}")
    if info.width * info.height > limits.max_frame_pixels:
        raise DecompressionBombError(f"frames of {info.width}x{info.height} exceed the cap of "
                                     f"{limits.max_frame_pixels} pixels per frame")
    if info.fps > 1000:
        raise CorruptImageError(f"a frame rate of {info.fps:g} frames per second is not a real video")
    if info.duration is not None and info.duration > limits.max_video_seconds:
        raise VideoTooLongError(f"the video lasts {info.duration:.0f} s, over the cap of "
                                f"{limits.max_video_seconds:.0f} s")


class OpenVideo:
    """An opened video: `info`, and `kept_frames()` to decode it once."""

    def __init__(self, container: Any, stream: Any, info: VideoInfo, size: int, limits: DecodeLimits):
        self.container, self.stream, self.info = container, stream, info
        self.size, self.limits = size, limits
        self.decoded = 0  # frames decoded so far
        self.first_time: float | None = None  # presentation times of the first and last frames decoded
        self.last_time: float | None = None

    def every(self, seconds_per_hash: float) -> int:
        """Meta's frame step: max(1, int(seconds_per_hash * fps)); 0 s: every frame."""
        return max(1, int(seconds_per_hash * self.info.fps))

    def kept_frames(self, every: int) -> Iterator[tuple[int, Any]]:
        """(frame number, PyAV frame) of every frame n with n % every == 0, decoding every
        frame in between. Raises a typed ImageError on any failure, also part way through."""
        av = _av()
        info, limits = self.info, self.limits
        kept = 0
        last_end = 0
        try:
            for packet in self.container.demux(self.stream):
                if packet.pos is not None and packet.pos >= 0:
                    last_end = max(last_end, packet.pos + packet.size)
                for frame in packet.decode():
                    number = self.decoded
                    if frame.width * frame.height > limits.max_frame_pixels:
                        raise DecompressionBombError(f"frame {number} is {frame.width}x{frame.height}, over the "
                                                     f"cap of {limits.max_frame_pixels} pixels per frame")
                    if number / info.fps > limits.max_video_seconds:
                        raise VideoTooLongError(f"the video runs past the cap of {limits.max_video_seconds:.0f} s "
                                                "(longer than its header declares)")
                    self.decoded += 1
                    if frame.time is not None:
                        self.first_time = frame.time if self.first_time is None else self.first_time
                        self.last_time = frame.time
                    if number % every == 0:
                        kept += 1
                        if kept > limits.max_hashed_frames:
                            raise VideoTooLongError(f"more than {limits.max_hashed_frames} frames to hash")
                        yield number, frame
        except av.error.FFmpegError as exc:
            if self.size and last_end >= self.size:
                raise TruncatedImageError(f"the video is cut short after {self.decoded} frames: {exc}") from exc
            raise CorruptImageError(f"the video stream is corrupt after {self.decoded} frames: {exc}") from exc
        if self.decoded == 0:
            raise CorruptImageError("the video stream holds no decodable frame")
        slack = max(TRUNCATION_SLACK[0], int(info.declared_frames * TRUNCATION_SLACK[1]))
        if info.declared_frames and self.decoded < info.declared_frames - slack:
            raise TruncatedImageError(f"the video is cut short: {self.decoded} of the {info.declared_frames} "
                                      "frames its container declares")
        if info.duration and self.first_time is not None and self.last_time is not None:
            shown = self.last_time - self.first_time + 1 / info.fps
            if shown < info.duration - max(DURATION_SLACK[0], DURATION_SLACK[1] * info.duration):
                raise TruncatedImageError(f"the video is cut short: its frames end after {shown:.1f} s of the "
                                          f"{info.duration:.1f} s its container declares")


@contextmanager
def open_video(source: Source, limits: DecodeLimits, *, threads: int = 1) -> Iterator[OpenVideo]:
    """The video in `source` (path, bytes or binary file), opened within `limits`, or a
    typed ImageError. `threads`: decoder threads (1 in scan workers, one per core)."""
    av = _av()
    handle, size, owned = _handle(source, limits)
    container = None
    try:
        if size == 0:
            raise EmptyInputError("the file is empty (0 bytes)")
        if size > limits.max_video_bytes:
            raise InputTooLargeError(f"{size} bytes exceeds the video byte cap of {limits.max_video_bytes}")
        start = handle.tell()
        head = handle.read(64)
        handle.seek(start)
        family = sniff_video_format(head)
        if family is None or family not in limits.video_formats:
            allowed = ", ".join(sorted(limits.video_formats))
            raise UnsupportedFormatError(f"not a video container hashmatch decodes (allowed: {allowed})")
        try:
            container = av.open(handle, mode="r", format=DEMUXERS[family], options={"enable_drefs": "0"})
        except av.error.EOFError as exc:
            raise TruncatedImageError(f"the {family} container ends before its header does") from exc
        except (av.error.FFmpegError, ValueError) as exc:
            if family == "MP4" and _boxes_run_past_end(handle, start, size):
                raise TruncatedImageError(f"the {family} file is cut short: its boxes run past its "
                                          f"{size} bytes") from exc
            raise CorruptImageError(f"the {family} container cannot be opened: {exc}") from exc
        if not container.streams.video:
            raise NoVideoStreamError(f"the {family} container holds no video stream")
        stream = container.streams.video[0]
        context = stream.codec_context
        codec = context.name
        if codec not in CODECS:
            raise UnsupportedFormatError(f"video codec {codec!r} is not on the allowlist")
        duration = None
        if container.duration is not None and container.duration > 0:
            duration = container.duration / 1_000_000
        elif stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        info = VideoInfo(family, codec, context.width, context.height, _frame_rate(stream), duration,
                         int(stream.frames or 0))
        _check_declared(info, limits)
        context.thread_count = max(1, threads)
        context.thread_type = "AUTO" if threads > 1 else "SLICE"
        yield OpenVideo(container, stream, info, size, limits)
    except OSError as exc:
        raise UnreadableInputError(f"cannot read: {exc.strerror or exc}") from exc
    finally:
        if container is not None:
            container.close()
        if owned:
            handle.close()
