"""Matching a video's vPDQ against listed videos, python-threatexchange's way, over the
Hamming engines.

The rule (python-threatexchange's vPDQ signal, Meta's vpdq README): both sides keep their
frames with quality >= 50 and each distinct hash once; a query frame matches a listed
frame at PDQ distance <= threshold (31: python-threatexchange's inclusive rule; Meta's C++
`matchTwoHash` uses a strict < 31 and no dedupe); query match % = matched query frames /
query frames, compared match % = matched listed frames / listed frames; a listed video
matches at query % >= 80 and compared % >= 0 by default.

The store indexes every matchable frame of every listed video as one row (store_files.
entry_codes: rows grouped by entry id, in frame order), so a query costs one range search
per query frame, whatever the list's size; percentages come from counting distinct hit
rows per entry. Evidence: both percentages, frame counts, the closest frame distance and
the matched time ranges of both videos.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from hashmatch.video import DEFAULT_COMPARED_PERCENT, DEFAULT_QUERY_PERCENT
from hashmatch.video.vpdq import QUALITY_GATE, matchable, pack, parse


@dataclass(frozen=True)
class VideoEvidence:
    """Why one listed video matched (or how close it came)."""

    query_percent: float
    compared_percent: float
    query_frames: int  # the query's matchable frames (quality >= 50, distinct)
    compared_frames: int  # the listed video's
    matched_query_frames: int
    matched_compared_frames: int
    best_distance: int
    query_ranges: tuple[tuple[float, float], ...]  # seconds, from-to, of the matched query frames
    compared_ranges: tuple[tuple[float, float], ...]  # of the matched listed frames

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "query_percent": round(self.query_percent, 2),
                "compared_percent": round(self.compared_percent, 2),
                "query_ranges": [list(r) for r in self.query_ranges],
                "compared_ranges": [list(r) for r in self.compared_ranges]}


def query_frames(value: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(codes, timestamps) of a query value's matchable frames."""
    return matchable(pack(parse(value["hash"])), QUALITY_GATE)


def time_ranges(timestamps: np.ndarray, positions: np.ndarray) -> tuple[tuple[float, float], ...]:
    """The matched frames (positions into the matchable frames) as time ranges: runs of
    adjacent matchable frames merge into one range."""
    if not len(positions):
        return ()
    ordered = np.unique(positions)
    breaks = np.flatnonzero(np.diff(ordered) > 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(ordered) - 1]])
    return tuple((round(float(timestamps[ordered[s]]), 3), round(float(timestamps[ordered[e]]), 3))
                 for s, e in zip(starts, ends))


def match_video(value: Mapping[str, Any], engine: Any, ids: np.ndarray, threshold: int,
                listed_blobs: Callable[[list[int]], Mapping[int, bytes]], *,
                query_percent: float = DEFAULT_QUERY_PERCENT,
                compared_percent: float = DEFAULT_COMPARED_PERCENT) -> dict[int, VideoEvidence]:
    """Listed videos (store entry id -> evidence) that the query video `value` matches.
    `engine` indexes the store's rows, `ids` the entry id of each row (sorted);
    `listed_blobs(ids)` gives the stored values of matched entries (for their timestamps)."""
    codes, stamps = query_frames(value)
    if not len(codes) or not len(ids):
        return {}
    results = engine.range_search(codes, threshold)
    hit_query: list[np.ndarray] = []
    hit_rows: list[np.ndarray] = []
    hit_dist: list[np.ndarray] = []
    for q, (rows, distances) in enumerate(results):
        if len(rows):
            hit_query.append(np.full(len(rows), q, np.int64))
            hit_rows.append(rows.astype(np.int64))
            hit_dist.append(distances)
    if not hit_rows:
        return {}
    query_idx, rows, dists = np.concatenate(hit_query), np.concatenate(hit_rows), np.concatenate(hit_dist)
    entry_of_row = ids[rows]
    found: dict[int, VideoEvidence] = {}
    candidates = np.unique(entry_of_row)
    starts = np.searchsorted(ids, candidates, "left")
    sizes = np.searchsorted(ids, candidates, "right") - starts
    passing: dict[int, tuple[np.ndarray, np.ndarray, int, int, int, int]] = {}
    for entry, start, size in zip(candidates.tolist(), starts.tolist(), sizes.tolist()):
        mine = entry_of_row == entry
        matched_q = np.unique(query_idx[mine])
        matched_rows = np.unique(rows[mine]) - start
        q_percent = 100.0 * len(matched_q) / len(codes)
        c_percent = 100.0 * len(matched_rows) / size
        if q_percent >= query_percent and c_percent >= compared_percent:
            passing[entry] = (matched_q, matched_rows, size, int(dists[mine].min()), len(matched_q),
                              len(matched_rows))
    if not passing:
        return {}
    blobs = listed_blobs(list(passing))
    for entry, (matched_q, matched_rows, size, best, n_q, n_c) in passing.items():
        listed_stamps = matchable(blobs[entry], QUALITY_GATE)[1] if entry in blobs else np.zeros(0)
        compared_ranges = time_ranges(listed_stamps, matched_rows) if len(listed_stamps) == size else ()
        found[entry] = VideoEvidence(100.0 * n_q / len(codes), 100.0 * n_c / size, len(codes), size, n_q, n_c,
                                     best, time_ranges(stamps, matched_q), compared_ranges)
    return found
