"""vPDQ, Meta's video hash (python-threatexchange's `vpdq` signal type), as a signal type.

A value is a whole video: its "hash" is python-threatexchange's signal string (a JSON list
of "hex,quality,timestamp"), which `hashmatch hash` prints and every list format reads
back; Meta's per-frame text is read too. It is *variable*: the store keeps the frames
packed in the entry and indexes each matchable frame (quality >= 50, identical hashes
once) as a 256-bit code in the Hamming engines, so a query video costs one range search
per kept frame (video/matching.py). Computed from the video file itself (content
"video"), with PyAV (video/vpdq.py), never from a decoded picture.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from hashmatch.signals.base import HashOptions, SignalType


class VPDQ(SignalType):
    name = "vpdq"
    aliases = ("video_vpdq",)
    content = "video"
    bits = 256  # of each frame's code
    variable = True
    default_threshold = 31  # per frame pair, inclusive (python-threatexchange's <= 31)
    options = frozenset({"trim_borders"})  # also the frames with letterbox bars cropped
    description = "Meta's vPDQ video hash (PDQ per frame, one per second by default), with PyAV"

    def parse(self, text: str) -> str:
        from hashmatch.video import vpdq

        return vpdq.canonical(text)

    def distance(self, a: str, b: str) -> int:
        raise NotImplementedError("vPDQ values are compared frame by frame (video/matching.py)")

    # -- storage -------------------------------------------------------------------------
    def to_blob(self, value: str) -> bytes:
        from hashmatch.video import vpdq

        return vpdq.pack(vpdq.parse(value))

    def from_blob(self, blob: bytes) -> str:
        from hashmatch.video import vpdq

        return vpdq.to_signal_string(vpdq.unpack(blob))

    def index_codes(self, blob: bytes) -> np.ndarray:
        from hashmatch.video import vpdq

        return vpdq.matchable(blob)[0]

    # -- computing -----------------------------------------------------------------------
    def compute_video(self, source: Any, options: HashOptions, on_open: Any = None) -> dict[str, Any]:
        from hashmatch.video import vpdq

        video = vpdq.hash_video(source, seconds_per_hash=options.seconds_per_hash, limits=options.limits,
                                on_open=on_open, trim_borders=options.trim_borders)
        return vpdq.value_of(video)

    # -- records -------------------------------------------------------------------------
    _FIELDS = ("frames", "decoded_frames", "seconds_per_hash", "fps", "duration", "codec", "container", "trimmed")

    def record_fields(self, value: Mapping[str, Any]) -> dict[str, Any]:
        return {f"vpdq_{key}": value[key] for key in self._FIELDS if value.get(key) is not None}

    def value_from_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        value = {"hash": record[self.name]}
        value.update({key: record[f"vpdq_{key}"] for key in self._FIELDS if f"vpdq_{key}" in record})
        return value

    def csv_columns(self, options: HashOptions) -> list[str]:
        return [f"vpdq_{key}" for key in ("frames", "seconds_per_hash", "fps", "duration")]

    def report_fields(self, value: Mapping[str, Any]) -> dict[str, Any]:
        return {f"vpdq_{key}": value[key] for key in ("frames", "duration") if value.get(key) is not None}

    def report_columns(self) -> list[str]:
        return ["vpdq_frames", "vpdq_duration"]

    def check_value(self, value: Mapping[str, Any]) -> None:
        self.parse(value["hash"])
        if value.get("trimmed") is not None:
            self.parse(value["trimmed"])

    def queries(self, value: Mapping[str, Any], config: Any) -> tuple[list[tuple[str | None, str]], bool]:
        """The video, and with config.trim_borders its letterbox-cropped frames too."""
        found: list[tuple[str | None, str]] = [(None, value["hash"])]
        if config.trim_borders and value.get("trimmed") and value["trimmed"] != value["hash"]:
            found.append(("trimmed", value["trimmed"]))
        return found, False
