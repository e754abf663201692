"""Pictures embedded in a larger frame: a photo shown in a phone app or a web page and
captured as a screenshot, a picture pasted into a canvas. picture_boxes() finds the
rectangle(s) where a picture is likely to be, so that the picture can be hashed alone and
looked up as a variant (`--trim-borders`).

How: a user interface is mostly flat (backgrounds, bars, margins) with sparse text; a
photograph is textured almost everywhere. On a copy at most WORK_SIDE pixels wide, a
pixel is *active* where the grey level changes by more than ACTIVE_STEP to a neighbour;
a box filter turns that into a local density. The picture is the longest band of rows
dense across a good part of the width, then within it the longest run of dense columns,
then the rows again within those columns; each side is finally snapped to the strongest
straight edge near it (a picture's border against the interface). Text lines are too
sparse and too short to form a band; a gap of flat rows or columns (margins) separates
the picture from text beside it.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

WORK_SIDE = 384  # where edges are snapped
COARSE_SIDE = 160  # where the rectangle is found
ACTIVE_STEP = 1  # grey levels: an interface's background is exactly flat
FLAT_COSTS = (2.0,)  # cost of a flat pixel
SOLID = 0.6  # share of textured pixels in a column or row of the picture
BAND = 4  # rows (columns) on each side of a candidate edge whose texture is compared
MIN_AREA, MAX_AREA = 0.08, 0.92  # of the frame: smaller is noise, larger is the plain hash's job
MAX_ASPECT = 4.0


def picture_boxes(image: Image.Image, limit: int = 2) -> list[tuple[int, int, int, int]]:
    """Up to `limit` candidate (left, top, right, bottom) rectangles of an embedded picture
    in `image`'s pixel coordinates, the most likely first; [] when none stands out."""
    width, height = image.size
    if width < 32 or height < 32:
        return []
    luma = image.convert("L")  # once: the three grids below are made from it
    grey = _grey(luma, WORK_SIDE)
    fine = _textured(_grey(luma, WORK_SIDE, Image.Resampling.NEAREST))
    textured = _textured(_grey(luma, COARSE_SIDE, Image.Resampling.NEAREST))
    boxes: list[tuple[int, int, int, int]] = []
    for flat_cost in FLAT_COSTS:
        found = _max_sum_rectangle(np.where(textured, 1.0, -flat_cost))
        if found is None:
            continue
        box = _refine(grey, fine, found, textured.shape, (width, height))
        area = (box[2] - box[0]) * (box[3] - box[1]) / (width * height)
        aspect = max((box[2] - box[0]) / max(1, box[3] - box[1]), (box[3] - box[1]) / max(1, box[2] - box[0]))
        if MIN_AREA <= area <= MAX_AREA and aspect <= MAX_ASPECT and all(
                _differs(box, other, width, height) for other in boxes):
            boxes.append(box)
        if len(boxes) >= limit:
            break
    return boxes


def _grey(image: Image.Image, side: int, method: Image.Resampling = Image.Resampling.BOX) -> np.ndarray:
    """Grey levels at most `side` pixels wide; NEAREST keeps the pixels' own noise (a
    photograph's flat sky is never exactly flat; an interface's background is)."""
    width, height = image.size
    scale = min(1.0, side / max(width, height))
    small = image if image.mode == "L" else image.convert("L")
    if scale < 1:
        small = small.resize((max(8, round(width * scale)), max(8, round(height * scale))), method)
    return np.asarray(small, np.float32)


def _textured(grey: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood spans more than ACTIVE_STEP grey levels."""
    padded = np.pad(grey, 1, mode="edge")
    h, w = grey.shape
    windows = [padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
    return (np.max(windows, axis=0) - np.min(windows, axis=0)) > ACTIVE_STEP


def _max_sum_rectangle(weights: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the rectangle with the largest sum of `weights`
    (textured +1, flat -cost): for each top row, the column sums of every bottom at once,
    then the best run of columns (max prefix difference) of each."""
    h, w = weights.shape
    rows = np.vstack([np.zeros((1, w)), np.cumsum(weights, axis=0)])  # rows[b] - rows[t]: sums of rows t..b-1
    best, where = 0.0, None
    for top in range(h):
        sums = rows[top + 1:] - rows[top]  # (bottoms, w)
        prefix = np.hstack([np.zeros((sums.shape[0], 1)), np.cumsum(sums, axis=1)])
        lowest = np.minimum.accumulate(prefix, axis=1)
        gain = prefix[:, 1:] - lowest[:, :-1]  # the best run ending at each column
        index = int(np.argmax(gain))
        value = float(gain.flat[index])
        if value > best:
            bottom_index, right = divmod(index, w)
            left = int(np.argmin(prefix[bottom_index, :right + 1]))
            best, where = value, (left, top, right + 1, top + bottom_index + 1)
    return where


def _refine(grey: np.ndarray, fine: np.ndarray, box: tuple[int, int, int, int], coarse_shape: tuple[int, ...],
            size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The coarse box on the finer grid, tightened to the columns and rows that are
    textured through (text beside a picture is not: it is mostly background between its
    strokes), each side snapped to the strongest straight edge near it, in the image's
    coordinates."""
    h, w = grey.shape
    sy, sx = h / coarse_shape[0], w / coarse_shape[1]
    left, top, right, bottom = round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy)
    cols = _solid(fine[top:bottom, left:right].mean(axis=0))
    if cols is not None:
        left, right = left + cols[0], left + cols[1]
    rows = _solid(fine[top:bottom, left:right].mean(axis=1))
    if rows is not None:
        top, bottom = top + rows[0], top + rows[1]
    top, bottom = _snap(grey, fine, top, bottom, left, right, axis=0)
    left, right = _snap(grey, fine, left, right, top, bottom, axis=1)
    width, height = size
    fx, fy = width / w, height / h
    return (max(0, round(left * fx)), max(0, round(top * fy)), min(width, round(right * fx)),
            min(height, round(bottom * fy)))


def _snap(grey: np.ndarray, fine: np.ndarray, start: int, end: int, lo: int, hi: int, axis: int
          ) -> tuple[int, int]:
    """Move each end of [start, end) along `axis`, within a few pixels, to where the
    picture begins: flat outside, textured inside (a status bar's edge is stronger but
    flat on both sides), the grey step breaking ties."""
    texture = (fine if axis == 0 else fine.T)[:, lo:hi].mean(axis=1)
    plane = grey if axis == 0 else grey.T
    step = np.abs(np.diff(plane[:, lo:hi], axis=0)).mean(axis=1) / 255.0  # step[i]: between i and i + 1
    size, reach = len(texture), max(2, len(texture) // 40)
    # rise[i]: texture of the BAND rows after i minus that of the BAND rows up to i: a
    # picture is textured through, the edge of a flat bar only a line or two.
    padded = np.concatenate([np.full(BAND, texture[0]), texture, np.full(BAND, texture[-1])])
    sums = np.concatenate([[0.0], np.cumsum(padded)])
    at = np.arange(size - 1) + BAND
    rise = ((sums[at + 1 + BAND] - sums[at + 1]) - (sums[at + 1] - sums[at + 1 - BAND])) / BAND

    def boundary(at: int, sign: float) -> int | None:
        window = np.arange(max(0, at - reach), min(len(rise), at + reach))
        if not len(window):
            return None
        score = sign * rise[window] + 0.25 * step[window]
        return int(window[int(np.argmax(score))]) if score.max() > 0.2 else None

    # The 3x3 texture test marks the flat pixel next to the picture too: the picture
    # starts one past the rise and ends one before the fall.
    rise_at = boundary(start - 1, 1.0) if start > 0 else None
    fall_at = boundary(end - 1, -1.0) if end < size else None
    new_start = start if start <= 0 else (rise_at + 2 if rise_at is not None else start)
    new_end = end if end >= size else (fall_at if fall_at is not None else end)
    return (new_start, new_end) if new_end - new_start >= 8 else (start, end)


def _solid(share: np.ndarray, level: float = SOLID, gap_share: float = 0.02) -> tuple[int, int] | None:
    """[start, end) of the longest run of entries at or above `level`, bridging dips up to
    `gap_share` of the length (a flat stripe inside a picture); None if the run is short."""
    gap = max(1, round(len(share) * gap_share))
    solid = np.flatnonzero(share >= level)
    if not len(solid):
        return None
    breaks = np.flatnonzero(np.diff(solid) > gap + 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(solid) - 1]])
    best = int(np.argmax(solid[ends] - solid[starts]))
    start, end = int(solid[starts[best]]), int(solid[ends[best]]) + 1
    return (start, end) if end - start >= len(share) // 3 else None


def _differs(a: tuple[int, int, int, int], b: tuple[int, int, int, int], width: int, height: int) -> bool:
    """Whether two boxes differ by more than 2% of the frame on some side."""
    return any(abs(x - y) > 0.02 * (width if i % 2 == 0 else height) for i, (x, y) in enumerate(zip(a, b)))
