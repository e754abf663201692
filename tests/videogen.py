"""Hostile videos for the budget tests: the audit's shape (one picture, then thousands of
cheap repeated frames at 1 fps) that costs a decoder far more time than its bytes suggest,
made in a fraction of a second by muxing one encoded MJPEG frame again and again."""
from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np

from hashmatch.evaluation.synthetic import scene


def repeated_frames_video(frames: int, width: int = 1024, height: int = 768, container: str = "matroska") -> bytes:
    """`frames` copies of one 1 fps MJPEG frame: a video declaring `frames` seconds whose
    every frame vPDQ keeps and hashes (~7 ms a frame here at 1024x768)."""
    rgb = np.asarray(scene(1, 0).convert("RGB").resize((width, height)))
    out = io.BytesIO()
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream("mjpeg", rate=1)
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
