"""Benign generated videos (nothing downloaded, no real imagery) and the re-encodes a re-upload goes through.

Owns the synthetic video corpus of tests, `hashmatch evaluate` and vPDQ benchmarks: scene_frames (a deterministic
moving scene with pans and cuts), encode / video (PyAV, in memory: mp4, mov, webm, mkv, avi, gif, webp),
decode_frames, and TRANSFORMS (name -> (video bytes, rng) -> re-encoded bytes; transformed() applies one by name).
"""
from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image, ImageDraw

from hashmatch.evaluation.synthetic import _map_palette, _palette, _value_noise
from hashmatch.evaluation.synthetic import scene as _scene

__all__ = ["TRANSFORMS", "decode_frames", "encode", "scene_frames", "transformed", "video"]

VideoTransform = Callable[[bytes, np.random.Generator], bytes]

_MUXERS = {"mkv": "matroska"}  # container names as users say them -> FFmpeg muxer names where they differ
# Codec names as users say them -> the encoder PyAV exposes ("vp8" is FFmpeg's libvpx).
_ENCODERS = {"hevc": "libx265", "h265": "libx265", "h264": "libx264", "vp8": "libvpx", "vp9": "libvpx-vp9",
             "av1": next((c for c in ("libsvtav1", "libaom-av1", "librav1e") if c in av.codecs_available), "libsvtav1")}
# Encoders with no constant-quality default: give them a normal bitrate, not FFmpeg's 200 kbit/s at any size.
_NEEDS_BITRATE = {"mpeg4", "libvpx"}
# Per-encoder speed/log settings: tests and benchmarks encode many clips, so favour fast presets.
_SPEED_OPTIONS: dict[str, dict[str, str]] = {
    "libx265": {"preset": "fast", "x265-params": "log-level=error"}, "libsvtav1": {"preset": "10"},
    "libvpx-vp9": {"deadline": "good", "cpu-used": "5", "row-mt": "1"}, "libvpx": {"deadline": "good", "cpu-used": "5"},
    "libaom-av1": {"cpu-used": "8"}}
_SCENE_SECONDS = (2.0, 4.0)  # cut every 2-4 s: several distinct scenes in a few seconds
# Motion per second as a fraction of the width. PDQ is shift-sensitive (a 1% shift flips ~25 of 256 bits), so motion
# is slow enough that frames half a second apart stay within vPDQ's distance 31, as in most real shots.
_PAN_SPEED = (0.003, 0.012)
_SHAPE_SPEED = (0.005, 0.025)


def _normal_bitrate(width: int, height: int, fps: float) -> int:
    # ~0.26 bit per pixel: 600 kbit/s at 320x240@30, ~7 Mbit/s at 720p30, what a platform typically serves.
    return int(0.26 * width * height * fps)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A gradient + value-noise field through a random palette, larger than the frame so the camera can pan."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    grad = (xx / width) * math.cos(angle) + (yy / height) * math.sin(angle)
    grad = (grad - grad.min()) / (grad.max() - grad.min() + 1e-9)
    noise = _value_noise(rng, height, width, octaves=5, base_cells=float(rng.uniform(2, 5)), persistence=0.55)
    mix = float(rng.uniform(0.35, 0.75))  # noise weight: the low-frequency structure PDQ keys on
    field = (1 - mix) * grad + mix * noise
    rgb = _map_palette(field, _palette(rng))
    # Fine texture, as in camera footage, so encoders have detail to spend bits on.
    fine = _value_noise(rng, height, width, octaves=2, base_cells=float(rng.uniform(40, 80)), persistence=0.5)
    rgb *= 1.0 + 0.18 * (fine[..., None] - 0.5)
    return np.clip(rgb, 0, 255).astype(np.uint8)


class _Scene:
    """One shot: a precomputed background (cropped per frame for the pan) and shapes with smooth motion."""

    def __init__(self, seed: int, index: int, width: int, height: int) -> None:
        rng = np.random.default_rng([seed % 2**64, 2, index])
        self.width, self.height = width, height
        heading, speed = rng.uniform(0, 2 * math.pi), float(rng.uniform(*_PAN_SPEED)) * width
        self.pan = speed * np.array([math.cos(heading), math.sin(heading)])
        self.pad = int(_PAN_SPEED[1] * width * _SCENE_SECONDS[1]) // 2 + 2  # margin for the longest pan
        self.background = _background(rng, width + 2 * self.pad, height + 2 * self.pad)
        palette, side = _palette(rng), min(width, height)
        self.shapes: list[dict[str, Any]] = []
        for _ in range(int(rng.integers(3, 7))):
            size, aspect = side * float(rng.uniform(0.07, 0.18)), float(rng.uniform(0.6, 1.6))
            speed, heading = float(rng.uniform(*_SHAPE_SPEED)) * width, rng.uniform(0, 2 * math.pi)  # px/s
            self.shapes.append({
                "kind": int(rng.integers(0, 6)),  # 0 box, 1 ellipse, 2-5 polygons with 3-6 sides
                "a": size * aspect, "b": size / aspect, "pos": rng.random(2) * (width, height),
                "vel": speed * np.array([math.cos(heading), math.sin(heading)]),
                "angle": rng.uniform(0, 2 * math.pi), "spin": rng.uniform(-0.25, 0.25),
                "colour": np.clip(palette[int(rng.integers(len(palette)))] + rng.normal(0, 30, 3), 0, 255),
                "opacity": float(rng.uniform(0.7, 1.0))})

    def frame(self, t: float, duration: float) -> np.ndarray:
        # Camera: a steady pan through the margin, centred on the shot's midpoint.
        ox, oy = (np.clip(self.pad + self.pan * (t - duration / 2), 0, 2 * self.pad) + 0.5).astype(int)
        out = self.background[oy:oy + self.height, ox:ox + self.width].copy()
        for shape in self.shapes:
            self._draw(out, shape, t)
        return out

    def _draw(self, out: np.ndarray, shape: dict[str, Any], t: float) -> None:
        # Bounce inside the frame: reflect the straight path (a triangle wave), smooth apart from the bounces.
        limits = (self.width, self.height)
        cx, cy = (abs((p + v * t) % (2 * m) - m) for p, v, m in zip(shape["pos"], shape["vel"], limits))
        a, b, kind = shape["a"], shape["b"], shape["kind"]
        reach = math.hypot(a, b) + 2
        x0, x1 = max(0, int(cx - reach)), min(self.width, int(cx + reach) + 1)
        y0, y1 = max(0, int(cy - reach)), min(self.height, int(cy + reach) + 1)
        if x0 >= x1 or y0 >= y1:
            return
        # Only the shape's bounding window is touched: a signed distance per pixel, vectorised.
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
        angle = shape["angle"] + shape["spin"] * t
        c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
        u, v = dx * c + dy * s, dy * c - dx * s
        if kind == 0:
            dist = np.maximum(np.abs(u) - a, np.abs(v) - b)
        elif kind == 1:
            dist = (np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1) * min(a, b)
        else:
            sides, v = kind + 1, v * (a / b)  # a regular polygon stretched to the aspect
            dist = np.max([u * math.cos(2 * math.pi * k / sides) + v * math.sin(2 * math.pi * k / sides)
                           for k in range(sides)], axis=0) - a * math.cos(math.pi / sides)
        # A one-pixel soft edge (anti-aliasing): hard stair-steps would not look like camera footage.
        alpha = np.clip(0.5 - dist, 0, 1) * np.float32(shape["opacity"])
        window = out[y0:y1, x0:x1].astype(np.float32)
        shade = 1 + 0.2 * np.clip(u / a, -1, 1)  # a light gradient across the shape
        window += (shade[..., None] * shape["colour"].astype(np.float32) - window) * alpha[..., None]
        out[y0:y1, x0:x1] = np.clip(window, 0, 255)


def scene_frames(seed: int, seconds: float, fps: float, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 RGB frames of a deterministic synthetic scene, ``size`` = (width, height)."""
    width, height = size
    cuts, starts = np.random.default_rng([seed % 2**64, 1]), [0.0]
    while starts[-1] < seconds:
        starts.append(starts[-1] + float(cuts.uniform(*_SCENE_SECONDS)))
    index, scene = -1, None
    for i in range(round(seconds * float(fps))):
        t = i / float(fps)
        while t >= starts[index + 1]:
            index, scene = index + 1, None
        if scene is None:
            scene = _Scene(seed, index, width, height)
        yield scene.frame(t - starts[index], starts[index + 1] - starts[index])


def _rate(fps: float) -> Fraction:
    # 29.97, 23.976 and 59.94 mean the NTSC rates n*1000/1001; Fraction(29.97) alone is not 30000/1001.
    ntsc = Fraction(round(float(fps) * 1.001) * 1000, 1001)
    if float(fps) != round(float(fps)) and abs(float(ntsc) - float(fps)) < 0.002:
        return ntsc
    return Fraction(fps).limit_denominator(1001)


def _to_frame(rgb: np.ndarray, pix_fmt: str, reformatter: VideoReformatter) -> av.VideoFrame:
    if pix_fmt == "pal8":
        # GIFs in the wild carry an adaptive dithered palette, not FFmpeg's fixed 3-3-2 rgb8 one.
        quantised = Image.fromarray(rgb).quantize(256, method=Image.Quantize.FASTOCTREE)
        palette = np.full((256, 4), 255, np.uint8)  # ARGB rows, opaque
        colours = np.frombuffer(bytes(quantised.getpalette() or []), np.uint8).reshape(-1, 3)[:256]
        palette[:len(colours), 1:] = colours
        pair: Any = (np.asarray(quantised, np.uint8), palette)  # PyAV's stubs miss the (image, palette) form
        return av.VideoFrame.from_ndarray(pair, format="pal8")
    # One reformatter per stream: it caches the swscale context (a fresh one per frame costs 5x).
    return reformatter.reformat(av.VideoFrame.from_ndarray(rgb, format="rgb24"), format=pix_fmt)


def encode(frames: Iterable[np.ndarray], fps: float, *, codec: str = "libx264", container: str = "mp4",
           bitrate: int | None = None, crf: int | None = None, pix_fmt: str = "yuv420p") -> bytes:
    """Encode RGB frames into an in-memory ``container`` file with ``codec``; returns the file's bytes."""
    codec = _ENCODERS.get(codec, codec)
    if codec == "gif" and pix_fmt not in ("rgb8", "pal8"):
        pix_fmt = "pal8"
    rate, buf, reformatter = _rate(fps), io.BytesIO(), VideoReformatter()
    with av.open(buf, "w", format=_MUXERS.get(container, container)) as out:
        stream: av.VideoStream | None = None
        for i, rgb in enumerate(frames):
            if pix_fmt.startswith(("yuv", "nv")):  # chroma subsampling needs even sizes: drop the odd row/column
                rgb = rgb[:rgb.shape[0] // 2 * 2, :rgb.shape[1] // 2 * 2]
            if stream is None:
                options = {**_SPEED_OPTIONS.get(codec, {}), **({} if crf is None else {"crf": str(crf)})}
                if bitrate is None and crf is None and codec == "libvpx-vp9":
                    options.update(crf="32", b="0")  # constant quality, as YouTube-like pipelines use
                added = out.add_stream(codec, rate=rate, options=options)
                assert isinstance(added, av.VideoStream)
                stream = added
                stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], pix_fmt
                if bitrate is None and crf is None and codec in _NEEDS_BITRATE:
                    bitrate = _normal_bitrate(rgb.shape[1], rgb.shape[0], float(rate))
                if bitrate is not None:
                    stream.bit_rate = bitrate
            elif (rgb.shape[1], rgb.shape[0]) != (stream.width, stream.height):
                raise ValueError(f"frame {i} is {rgb.shape[1]}x{rgb.shape[0]}, not {stream.width}x{stream.height}")
            frame = _to_frame(np.ascontiguousarray(rgb, np.uint8), pix_fmt, reformatter)
            frame.pts, frame.time_base = i, 1 / rate
            out.mux(stream.encode(frame))
        if stream is None:
            raise ValueError("no frames to encode")
        out.mux(stream.encode(None))
    return buf.getvalue()


def video(seed: int, seconds: float = 6.0, fps: float = 30.0, size: tuple[int, int] = (320, 240),
          codec: str = "libx264", container: str = "mp4", **encode_options: Any) -> bytes:
    """A synthetic clip, encoded: ``scene_frames`` + ``encode``."""
    return encode(scene_frames(seed, seconds, fps, size), fps, codec=codec, container=container, **encode_options)


def _webp_frames(data: bytes) -> Iterator[tuple[float, np.ndarray]]:
    # FFmpeg's webp decoder rejects animated WebP (ANIM/ANMF chunks: avcodec_send_packet fails); Pillow reads it.
    with Image.open(io.BytesIO(data)) as image:
        t = 0.0
        for i in range(getattr(image, "n_frames", 1)):
            image.seek(i)
            yield t, np.asarray(image.convert("RGB"))
            t += image.info.get("duration", 0) / 1000


def _probe(data: bytes) -> tuple[float, float | None, tuple[int, int]]:
    """The first video stream's fps, duration in seconds (if known) and (width, height)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        timed = list(_webp_frames(data))
        step = timed[-1][0] / (len(timed) - 1) if len(timed) > 1 else 0.0
        return (1 / step if step else 0.0), len(timed) * step or None, timed[0][1].shape[1::-1]
    with av.open(io.BytesIO(data), "r") as con:
        stream = con.streams.video[0]
        rate = stream.average_rate or stream.base_rate
        if con.format.name == "gif":  # its average_rate reads 100/3 for 30 fps (3 and 4 cs delays); r_frame_rate 30
            rate = stream.base_rate or rate
        duration = con.duration / av.time_base if con.duration else None
        return float(rate or 0.0), duration, (stream.codec_context.width, stream.codec_context.height)


def _timed_frames(data: bytes, fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds from the first frame, RGB frame), streamed: long clips never sit in memory whole."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        yield from _webp_frames(data)
        return
    with av.open(io.BytesIO(data), "r") as con:
        start = None
        for i, frame in enumerate(con.decode(video=0)):
            t = frame.time if frame.time is not None else i / (fps or 30.0)
            start = t if start is None else start
            yield t - start, frame.to_ndarray(format="rgb24")


def decode_frames(data: bytes) -> tuple[list[np.ndarray], float]:
    """All frames of the first video stream as (H, W, 3) uint8 RGB arrays, and its frame rate."""
    fps, _, _ = _probe(data)
    timed = list(_timed_frames(data, fps))
    if len(timed) > 1 and not fps:  # no rate in the headers: the timestamps' average
        fps = (len(timed) - 1) / timed[-1][0]
    return [f for _, f in timed], fps


# ---- transforms: decode -> edit frames -> re-encode (mp4/libx264 at its default quality unless said) ----


def _map(data: bytes, edit: Callable[[np.ndarray], np.ndarray] = lambda f: f, **encode_options: Any) -> bytes:
    fps = _probe(data)[0]
    return encode((edit(f) for _, f in _timed_frames(data, fps)), fps, **encode_options)


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BICUBIC))  # FFmpeg's default


def _low_bitrate(data: bytes, rng: np.random.Generator) -> bytes:
    # A quarter of a normal bitrate, or of the clip's own when that is lower (simple synthetic scenes need few bits).
    fps, duration, (width, height) = _probe(data)
    own = int(len(data) * 8 / duration) if duration else _normal_bitrate(width, height, fps)
    return _map(data, bitrate=min(_normal_bitrate(width, height, fps), own) // 4)


def _trim(data: bytes, rng: np.random.Generator) -> bytes:
    fps, duration, _ = _probe(data)
    duration = duration or len(decode_frames(data)[0]) / fps
    head, tail = duration * rng.uniform(0.08, 0.12), duration * (1 - rng.uniform(0.08, 0.12))
    return encode((f for t, f in _timed_frames(data, fps) if head <= t < tail), fps)


def _resampled(data: bytes, new_fps: float) -> Iterator[np.ndarray]:
    """Frame j shows the source frame on screen at time j / new_fps: frames dropped or repeated, as a converter does."""
    fps, j, last, prev = _probe(data)[0], 0, 0.0, None
    for t, frame in _timed_frames(data, fps):
        while prev is not None and j / new_fps < t - 1e-6:
            yield prev
            j += 1
        last, prev = t, frame
    while prev is not None and j < (last + 1 / fps) * new_fps - 0.5:  # round(duration * new_fps) frames in all
        yield prev
        j += 1


def _letterbox(data: bytes, rng: np.random.Generator) -> bytes:
    # Bars of 1/8 of the height top and bottom (a 16:9 band in a 4:3 frame); the picture is squeezed to the band,
    # as an editor's "fit" does when the display-aspect flag is lost. Same output size.
    def edit(rgb: np.ndarray) -> np.ndarray:
        out, bar = np.zeros_like(rgb), max(1, rgb.shape[0] // 8)
        out[bar:rgb.shape[0] - bar] = _resize(rgb, rgb.shape[1], rgb.shape[0] - 2 * bar)
        return out
    return _map(data, edit)


def _boxed(vertical: bool, share: float, colour: tuple[int, int, int] | None = (0, 0, 0)) -> VideoTransform:
    """The picture fitted, aspect kept, into a frame whose bars (top and bottom, or left and
    right) take `share` of its height (width): what re-encoding a 4:3 clip into a 16:9 or
    a 9:16 frame does. colour None: a uniform colour drawn per video (bars are not always
    black)."""
    def transform(data: bytes, rng: np.random.Generator) -> bytes:
        _, _, (width, height) = _probe(data)
        fill = colour if colour is not None else tuple(int(c) for c in rng.integers(0, 256, 3))
        if vertical:  # bars above and below: a taller frame, even-sized for yuv420p
            out_w, out_h = width, 2 * round(height / (1 - share) / 2)
        else:
            out_w, out_h = 2 * round(width / (1 - share) / 2), height

        def edit(rgb: np.ndarray) -> np.ndarray:
            out = np.empty((out_h, out_w, 3), np.uint8)
            out[:] = fill
            y, x = (out_h - height) // 2, (out_w - width) // 2
            out[y:y + height, x:x + width] = rgb
            return out
        return _map(data, edit)
    return transform


def _logo(data: bytes, rng: np.random.Generator) -> bytes:
    # A static semi-opaque badge ~1/8 of the width in a corner chosen by rng, as a channel or app watermark.
    _, _, (width, height) = _probe(data)
    w, h, margin, corner = max(8, width // 8), min(height, max(4, width // 20)), width // 40, int(rng.integers(4))
    badge = Image.new("RGBA", (w, h), (0, 0, 0, 110))  # a dark translucent plate with white text: a channel bug
    ImageDraw.Draw(badge).text((w * 0.12, h * 0.15), "clip.tv", fill=(255, 255, 255, 220))
    rgba = np.asarray(badge, np.float32)
    x = margin if corner % 2 == 0 else width - margin - w
    y = margin if corner < 2 or height < h + margin else height - margin - h

    def edit(rgb: np.ndarray) -> np.ndarray:
        out, window = rgb.copy(), rgb[y:y + h, x:x + w].astype(np.float32)
        out[y:y + h, x:x + w] = window + (rgba[..., :3] - window) * (rgba[..., 3:] / 255)
        return out
    return _map(data, edit)


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601, as a desaturate filter does
TRANSFORMS: dict[str, VideoTransform] = {
    "reencode_low_bitrate": _low_bitrate,
    "half_size": lambda data, rng: _map(data, lambda f: _resize(f, max(2, f.shape[1] // 2), max(2, f.shape[0] // 2))),
    "trim_start_end": _trim,
    "fps_15": lambda data, rng: encode(_resampled(data, 15.0), 15.0),
    "fps_24": lambda data, rng: encode(_resampled(data, 24.0), 24.0),
    "letterbox": _letterbox,
    "letterbox_20pct": _boxed(True, 0.2),
    "letterbox_40pct": _boxed(True, 0.4),
    "pillarbox_20pct": _boxed(False, 0.2),
    "pillarbox_40pct": _boxed(False, 0.4),
    "bars_colour_20pct": _boxed(True, 0.2, None),
    "pillarbox_colour_30pct": _boxed(False, 0.3, None),
    "logo_overlay": _logo,
    "grey": lambda data, rng: _map(data, lambda f: np.repeat((f @ _LUMA + 0.5).astype(np.uint8)[..., None], 3, 2)),
    "webm_vp9": lambda data, rng: _map(data, codec="libvpx-vp9", container="webm"),
}


def transformed(name: str, data: bytes, seed: int = 0) -> bytes:
    """``TRANSFORMS[name]`` applied to an encoded video, its random choices drawn from ``seed``."""
    return TRANSFORMS[name](data, np.random.default_rng(seed))


def repeated_frames_video(frames: int, width: int = 1024, height: int = 768, container: str = "matroska") -> bytes:
    """A hostile-shaped benign video (the service audit's): `frames` copies of one 1 fps
    MJPEG frame, declaring `frames` seconds, every frame of which vPDQ keeps and hashes
    (~6 ms a frame at 1280x720, ~23 KB each), made in a fraction of a second by muxing one encoded
    frame again and again. Tests and benchmarks of per-upload budgets use it."""
    rgb = np.asarray(_scene(1, 0).convert("RGB").resize((width, height)))
    out = io.BytesIO()
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream("mjpeg", rate=1, options={"qmin": "31", "qmax": "31"})  # small frames
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        stream.time_base = Fraction(1, 1)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")
        frame.pts, frame.time_base = 0, Fraction(1, 1)
        payload = bytes(stream.encode(frame)[0])
        for i in range(frames):
            packet = av.Packet(payload)
            packet.pts = packet.dts = i
            packet.time_base = Fraction(1, 1)
            packet.stream = stream
            muxer.mux(packet)
    return out.getvalue()
