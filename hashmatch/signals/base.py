"""The signal-type interface: everything hashmatch knows about one kind of hash.

A signal type owns its name and aliases (as lists spell it), its hash format (parse and
normalise to lowercase hex of `bits` // 4 digits), its distance (Hamming) and default
threshold, how it is indexed (`exact`: equality on a sorted array; otherwise the Hamming
engines), what it is computed from (`content`: "image", the decoded picture; "bytes",
every byte of the file), any quality rule and query variants, and the fields it adds to a
record beside its hash. Generic code (Hasher, Matcher, store, lists, CLI, reports) loops
over signal types and never names one. A new signal type is one module; a third-party
package registers one through the ``hashmatch.signal_types`` entry point (signals/__init__).

A computed value is a plain dict, JSON-ready: {"hash": hex, ...} plus what the type adds
(PDQ: quality, mode, dihedral, trimmed, trimmed_quality).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

import numpy as np
from PIL import Image, ImageCms

if TYPE_CHECKING:  # pragma: no cover
    from hashmatch.decode.image import Decoded, DecodeLimits

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class HashOptions:
    """What a Hasher asks of every signal type (each uses what concerns it)."""

    pdq_mode: str = "full"
    dihedral: bool = False  # PDQ: also the 7 rotated/flipped variants
    trim_borders: bool = False  # PDQ: also the hash of the picture with flat borders trimmed
    limits: "DecodeLimits | None" = None
    seconds_per_hash: float = 1.0  # video types: one frame hashed per this many seconds (0: every frame)
    crop_robust: bool = False  # PDQ: also the zoom-out variants of a picture that may be a crop


class ImageContext:
    """One decoded input, with the conversions signal types share, each made once."""

    def __init__(self, decoded: "Decoded", options: HashOptions):
        self.decoded = decoded
        self.options = options
        self._cache: dict[str, Any] = {}

    @property
    def image(self) -> Image.Image:
        """The decoded frame as a PIL image (arrays are wrapped)."""
        if self.decoded.image is not None:
            return self.decoded.image
        array = self.decoded.array
        assert array is not None  # a Decoded holds an image or an array
        return self.shared("image", lambda: Image.fromarray(array))

    def rgb(self) -> Image.Image:
        return self.shared("rgb", lambda: to_rgb(self.image))

    def grey(self) -> Image.Image:
        return self.shared("grey", lambda: to_grey(self.image))

    def shared(self, key: str, make) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


def to_rgb(image: Image.Image) -> Image.Image:
    """Pillow's convert("RGB"), for every mode Pillow has (LAB through a colour transform,
    premultiplied modes through their plain twin)."""
    if image.mode == "LAB":  # Pillow has no direct LAB -> RGB conversion
        converted = ImageCms.applyTransform(
            image, ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
        )
        assert converted is not None  # None only for inPlace=True
        return converted
    try:
        return image.convert("RGB")
    except ValueError:  # premultiplied "La" converts only to "LA": go through the un-premultiplied mode
        return image.convert("LA" if image.mode == "La" else "RGBA").convert("RGB")


def to_grey(image: Image.Image) -> Image.Image:
    """Pillow's convert("L"), as imagehash takes it (LAB: its lightness channel)."""
    if image.mode == "LAB":  # imagehash cannot hash LAB at all; use its lightness channel
        return image.getchannel("L")
    try:
        return image.convert("L")
    except ValueError:
        return to_rgb(image).convert("L")


class SignalType:
    """One kind of hash. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()  # other spellings in lists ("photo_md5", "SHA-256", ...)
    # "image": from the decoded picture; "bytes": from every byte of the file; "video":
    # from a video file (compute_video)
    content: ClassVar[str] = "image"
    bits: ClassVar[int]  # of one code (a variable type's value holds many)
    exact: ClassVar[bool] = False  # matched by equality, not by Hamming distance
    # A value holds a variable number of codes (vPDQ: one per kept frame). The store keeps
    # to_blob(value) and indexes index_codes(blob); matching is the type's own.
    variable: ClassVar[bool] = False
    default_threshold: ClassVar[int] = 0  # inclusive Hamming distance (exact types: 0)
    options: ClassVar[frozenset[str]] = frozenset()  # HashOptions flags this type implements
    description: ClassVar[str] = ""

    @property
    def hex_length(self) -> int:
        return self.bits // 4

    @property
    def code_bytes(self) -> int:
        return self.bits // 8

    # -- the hash format ---------------------------------------------------------------
    def parse(self, text: str) -> str:
        """One hash as a list or a caller gives it -> lowercase hex of hex_length digits;
        ValueError with the reason otherwise."""
        value = text.strip().lower()
        if len(value) != self.hex_length:
            raise ValueError(f"wrong length: {self.name} hashes have {self.hex_length} hex digits, "
                             f"this one has {len(value)}")
        if not _HEX.issuperset(value):  # the common case checked in C; the position on failure
            bad = next(i for i, c in enumerate(value) if c not in _HEX)
            raise ValueError(f"non-hex character {text.strip()[bad]!r} at position {bad + 1} of the {self.name} hash")
        return value

    def is_code(self, value: Any) -> bool:
        """Whether `value` is one hash as it travels inside a query value (a variant's
        code): a string of exactly hex_length hex digits, either case, nothing around it."""
        return isinstance(value, str) and len(value) == self.hex_length and _HEX.issuperset(value.lower())

    def distance(self, a: str, b: str) -> int:
        return int(np.unpackbits(np.frombuffer(bytes.fromhex(a), np.uint8) ^
                                 np.frombuffer(bytes.fromhex(b), np.uint8)).sum())

    # -- storage -------------------------------------------------------------------------
    def to_blob(self, value: str) -> bytes:
        """A parsed value as the store keeps it."""
        return bytes.fromhex(value)

    def from_blob(self, blob: bytes) -> str:
        """The inverse of to_blob."""
        return bytes(blob).hex()

    def index_codes(self, blob: bytes) -> np.ndarray:
        """The (k, code_bytes) uint8 codes the store indexes for one entry."""
        return np.frombuffer(blob, np.uint8).reshape(-1, self.code_bytes)

    # -- computing -----------------------------------------------------------------------
    def compute_video(self, source: Any, options: HashOptions, on_open: Any = None) -> dict[str, Any]:
        """Video types: {"hash": ..., ...} of the video file in `source`; on_open(seconds)
        is called with the declared duration once the video is open (workers extend the
        file's time limit by it)."""
        raise NotImplementedError(f"{self.name} is not computed from videos")

    def compute(self, context: ImageContext) -> dict[str, Any]:
        """Image types: {"hash": hex, ...} of the decoded picture."""
        raise NotImplementedError(f"{self.name} is not computed from images")

    def new_digest(self) -> Any:
        """Bytes types: a hashlib-like object (update, hexdigest) fed every byte of the file."""
        raise NotImplementedError(f"{self.name} is not computed from file bytes")

    # -- records -------------------------------------------------------------------------
    def record_fields(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """What a flat record (hash output, worker results) carries beside the hash."""
        return {}

    def value_from_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The value a flat record holds for this type (inverse of record_fields)."""
        return {"hash": record[self.name]}

    def csv_columns(self, options: HashOptions) -> list[str]:
        """Columns `hashmatch hash --format csv` adds after the hashes."""
        return []

    def csv_fields(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Nested record fields flattened into csv_columns."""
        return {}

    def report_fields(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """What a scan report row carries beside the hash (and report_columns in CSV)."""
        return {}

    def report_columns(self) -> list[str]:
        return []

    # -- matching ------------------------------------------------------------------------
    def check_value(self, value: Mapping[str, Any]) -> None:
        """A query value from a caller: ValueError if anything in it is malformed."""
        self.parse(value["hash"])

    def queries(self, value: Mapping[str, Any], config: Any) -> tuple[list[tuple[str | None, str]], bool]:
        """The (variant name, hex) codes to search for a query value, and whether the
        value was gated (too low a quality to be matched)."""
        return [(None, value["hash"])], False

    def variant_threshold(self, variant: str | None, config: Any, threshold: int) -> int:
        """The inclusive distance a hit of query `variant` must be within (at most
        `threshold`, the type's): variants that are a guess may be held tighter."""
        return threshold

    def variant_check(self, variant: str | None, value: Mapping[str, Any], config: Any
                      ) -> Callable[[bytes, int], int | None] | None:
        """A second stage for hits of query `variant`, or None (the searched distance
        decides): a function of the listed code and the searched distance that returns
        the distance to hold to variant_threshold, or None to drop the hit."""
        return None

    def default_variant(self, config: Any) -> str | None:
        """The variant name reported for a hit of the plain query."""
        return None

    def query_quality(self, value: Mapping[str, Any]) -> int | None:
        return None

