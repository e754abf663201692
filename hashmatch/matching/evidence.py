"""What a match says, for the caller and for a reviewer: MatchResult (the outcome for one
input: status, hashes, each signal's value, the quality gates, a decode error) and its
Matches (list, version, entry, algorithm, distance, variant, a video's frames and times),
both as JSON-ready dicts."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hashmatch import signals
from hashmatch.errors import ImageError
from hashmatch.signals.hasher import HashResult
from hashmatch.video.matching import VideoEvidence

# One search of a query: (algorithm, variant or None, hex code); one hit of a search:
# (store id, distance, a video match's evidence or None).
Search = tuple[str, str | None, str]
Hit = tuple[int, int, VideoEvidence | None]

@dataclass(frozen=True)
class Match:
    algorithm: str
    distance: int
    threshold: int
    list_name: str
    list_version: str
    category: str | None
    entry_id: str | None  # the source's id for the entry, when it has one
    store_id: int  # the store's id for the entry
    variant: str | None = None  # PDQ dihedral variant of the query that hit
    query_quality: int | None = None  # the query's quality, for signal types that have one (PDQ)
    tags: tuple[str, ...] = ()  # the entry's tags: its source's opinion (disputed, ...), collab, file type
    video: VideoEvidence | None = None  # a video match's percentages, frames and time ranges (vPDQ)

    def to_dict(self) -> dict[str, Any]:
        record = {**self.__dict__, "tags": list(self.tags)}
        if self.video is None:
            del record["video"]
        else:
            record["video"] = self.video.to_dict()
        return record


@dataclass(frozen=True)
class MatchResult:
    """The outcome for one input: `status` is match, no_match or low_quality.

    `decode_error` is set when the input's content did not decode (not an image, corrupt,
    too large): only its exact hashes were matched, and the perceptual ones are missing.
    `values` holds each queried signal type's value (the hash and what the type adds)."""

    status: str
    matches: tuple[Match, ...]
    hashes: dict[str, str]
    gated: tuple[str, ...] = ()  # algorithms not matched because of a quality gate
    image: HashResult | None = None
    decode_error: ImageError | None = None
    values: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def matched(self) -> bool:
        return bool(self.matches)

    @property
    def pdq_quality(self) -> int | None:
        return self.values.get("pdq", {}).get("quality")

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"status": self.status, "hashes": dict(self.hashes)}
        for name, value in self.values.items():
            record.update(signals.get(name).report_fields(value))
        if self.gated:
            record["gated"] = list(self.gated)
        if self.decode_error is not None:
            e = self.decode_error
            record["decode_error"] = {"type": type(e).__name__, "code": e.code, "message": str(e)}
        record["matches"] = [m.to_dict() for m in self.matches]
        return record
