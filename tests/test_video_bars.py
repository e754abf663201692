"""Bars constant over a video (decode.borders.ConstantBars, vPDQ's --trim-borders):
letterbox, pillarbox and coloured bars found exactly, the picture's own dark or flat edges
never taken for bars, and the trimmed frames of a boxed copy matching the original's."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("av")

from hashmatch.decode.borders import ConstantBars  # noqa: E402
from hashmatch.evaluation import synthetic_video  # noqa: E402
from hashmatch.video.vpdq import hash_video  # noqa: E402


def _frames(count: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(count)]


@pytest.mark.parametrize(("top", "bottom", "left", "right", "colour"), [
    (10, 10, 0, 0, (0, 0, 0)), (0, 0, 12, 12, (0, 0, 0)), (6, 9, 0, 0, (40, 90, 200)), (5, 5, 7, 7, (255,) * 3)])
def test_constant_bars_are_found_exactly(top, bottom, left, right, colour) -> None:
    bars = ConstantBars()
    for picture in _frames(5):
        frame = np.empty((60 + top + bottom, 80 + left + right, 3), np.uint8)
        frame[:] = colour
        frame[top:top + 60, left:left + 80] = picture
        bars.add(frame)
    assert bars.rectangle() == (left, top, left + 80, top + 60)


def test_a_picture_s_own_flat_edges_are_not_bars() -> None:
    """A dark band that is flat in one frame but changes over time (a night sky, a dark
    room) is the picture: only what is the same in every frame is cut."""
    bars = ConstantBars()
    for i, picture in enumerate(_frames(6)):
        frame = np.zeros((80, 80, 3), np.uint8)
        frame[10:70] = picture
        frame[10:25] = 5 * i  # flat in each frame, a different level in each: picture
        bars.add(frame)
    assert bars.rectangle() == (0, 10, 80, 70)


def test_no_bars_one_frame_or_a_flat_video() -> None:
    bars = ConstantBars()
    for picture in _frames(4):
        bars.add(picture)
    assert bars.rectangle() is None
    single = ConstantBars()
    frame = np.zeros((60, 80, 3), np.uint8)
    frame[10:50] = 200
    single.add(frame)
    assert single.rectangle() is None  # one frame says nothing about what is constant
    flat = ConstantBars()
    for _ in range(3):
        flat.add(np.full((60, 80, 3), 17, np.uint8))
    assert flat.rectangle() is None  # all bar, no picture: not a frame around one


@pytest.mark.parametrize("transform", ["letterbox_40pct", "pillarbox_colour_30pct"])
def test_a_boxed_copy_s_trimmed_frames_match_the_original(transform: str) -> None:
    original = synthetic_video.video(5, seconds=4.0, fps=10, size=(320, 240))
    boxed = synthetic_video.transformed(transform, original, seed=5)
    listed = hash_video(original)
    copy = hash_video(boxed, trim_borders=True)
    assert copy.trimmed is not None and len(copy.trimmed) == len(copy.frames)

    def close(frames) -> float:
        codes = [int(f.hash, 16) for f in listed.frames]
        return float(np.mean([min(bin(int(f.hash, 16) ^ c).count("1") for c in codes) <= 31 for f in frames]))

    assert close(copy.frames) < 0.5  # the bars hide the picture from plain vPDQ
    assert close(copy.trimmed) == 1.0  # every trimmed frame finds its original
