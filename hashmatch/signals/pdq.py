"""PDQ, Meta's 256-bit perceptual hash (the clearing houses' format), as a signal type:
its two conventions, quality score and gate, dihedral variants, and the border-trimmed
variant.

Pixels are prepared exactly as the reference tools do, so the kernel (hashmatch._native.pdq)
can stay free of checks:

* `full`: Pillow's convert("RGB") pixels, luma in float64 then float32, as the `pdqhash`
  package (and so python-threatexchange, HMA) computes it.
* `cimg512`: Meta's C++ pdq-photo-hasher: grey images use the grey value, others float32
  luma; larger than 512 on a side -> nearest-neighbour resize to 512x512.
"""
from __future__ import annotations

import base64
import binascii
import functools
from typing import Any, Mapping

import numpy as np

from hashmatch._native import pdq as _pdq
from hashmatch.decode.borders import trim_uniform_border
from hashmatch.signals.base import HashOptions, ImageContext, SignalType, to_rgb

PDQ_MODES = ("full", "cimg512")
#: Order of PDQ's dihedral variants (Meta's pdqDihedralHash256es order).
DIHEDRAL_NAMES = ("original", "rot90", "rot180", "rot270", "flipx", "flipy", "flipplus1", "flipminus1")
#: PDQ hashes below this quality are unreliable (Meta discards them).
DEFAULT_QUALITY_GATE = 50
#: PDQ distance within which a picture found inside a frame (--trim-borders: screenshots,
#: canvases) matches. A zoom-out variant (--crop-robust) is a candidate within
#: DEFAULT_CROP_SEARCH_RADIUS and matches when its reliable bits (those all its paddings
#: agree on, at least MIN_RELIABLE_BITS) differ in at most DEFAULT_CROP_THRESHOLD of 256
#: (scaled). All chosen from the recall and false-match rates measured in
#: benchmarks/measure_variants.py (docs/detection-quality.md).
DEFAULT_PICTURE_THRESHOLD = 31
DEFAULT_CROP_THRESHOLD = 22
DEFAULT_CROP_SEARCH_RADIUS = 48
MIN_RELIABLE_BITS = 160

#: Variant names of pictures found inside a frame: "picture:LEFT,TOP,RIGHT,BOTTOM" (pixels).
PICTURE_PREFIX = "picture:"
#: Variant names of the zoom-out variants: "crop:ANCHOR:N%" (decode/zoom_out.py).
CROP_PREFIX = "crop:"
MAX_PICTURES = 4  # picture variants a query may carry (hashmatch finds at most 2)

_CIMG_SIDE = 512  # the C++ hasher's DOWNSAMPLE_DIMS
_GREY_MODES = frozenset({"L", "LA", "1"})  # what CImg loads with one channel
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=")


class PDQ(SignalType):
    name = "pdq"
    aliases = ("photo_pdq",)
    content = "image"
    bits = 256
    default_threshold = 31  # Meta's published operating point
    options = frozenset({"dihedral", "trim_borders", "crop_robust"})
    description = "Meta's PDQ (256-bit), with quality; conventions full (pdqhash) and cimg512 (Meta's C++)"

    def parse(self, text: str) -> str:
        """64 hex digits, or 256-bit base64 (44 characters padded or 43 unpadded)."""
        stripped = text.strip()
        if len(stripped) in (43, 44) and all(c in _B64_CHARS for c in stripped):
            padded = stripped + "=" * (-len(stripped) % 4)
            altchars = b"-_" if ("-" in stripped or "_" in stripped) else b"+/"
            try:
                raw = base64.b64decode(padded, altchars=altchars, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) == 32:
                return raw.hex()
            raise ValueError("not a PDQ hash: neither 64 hex digits nor 256-bit base64")
        return super().parse(text)

    # -- computing -----------------------------------------------------------------------
    def compute(self, context: ImageContext) -> dict[str, Any]:
        options = context.options
        hashes, quality = pdq_hashes(context.decoded, options.pdq_mode, options.dihedral)
        value: dict[str, Any] = {"hash": hashes[0], "quality": quality, "mode": options.pdq_mode}
        if options.dihedral:
            value["dihedral"] = dict(zip(DIHEDRAL_NAMES, hashes))
        if options.trim_borders:
            trimmed = _trimmed(context, options)
            if trimmed is not None:
                value["trimmed"], value["trimmed_quality"] = trimmed
            pictures = _pictures(context, options)
            if pictures:
                value["pictures"] = pictures
        if options.crop_robust:
            value["crops"], value["crop_masks"] = _crops(context, options)
        return value

    # -- records -------------------------------------------------------------------------
    def record_fields(self, value: Mapping[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if value.get("quality") is not None:
            fields.update(pdq_quality=value["quality"], pdq_mode=value.get("mode"))
        if value.get("dihedral") is not None:
            fields["pdq_dihedral"] = dict(value["dihedral"])
        if value.get("trimmed") is not None:
            fields.update(pdq_trimmed=value["trimmed"], pdq_trimmed_quality=value.get("trimmed_quality"))
        if value.get("pictures"):
            fields["pdq_pictures"] = [dict(p) for p in value["pictures"]]
        if value.get("crops"):
            fields["pdq_crops"] = dict(value["crops"])
            fields["pdq_crop_masks"] = dict(value.get("crop_masks") or {})
        return fields

    def value_from_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        value: dict[str, Any] = {"hash": record[self.name]}
        for key, field, kind in (("quality", "pdq_quality", int), ("mode", "pdq_mode", str),
                                 ("dihedral", "pdq_dihedral", dict), ("trimmed", "pdq_trimmed", str),
                                 ("trimmed_quality", "pdq_trimmed_quality", int)):
            got = record.get(field)
            if isinstance(got, kind) and not isinstance(got, bool):
                value[key] = got
        pictures = record.get("pdq_pictures")
        if isinstance(pictures, list):
            value["pictures"] = pictures  # checked by check_value before any matching
        for key, field in (("crops", "pdq_crops"), ("crop_masks", "pdq_crop_masks")):
            if isinstance(record.get(field), dict):
                value[key] = record[field]  # checked by check_value before any matching
        return value

    def csv_columns(self, options: HashOptions) -> list[str]:
        columns = ["pdq_quality", "pdq_mode"]
        if options.dihedral:
            columns += [f"pdq_{name}" for name in DIHEDRAL_NAMES[1:]]
        if options.trim_borders:
            columns += ["pdq_trimmed", "pdq_trimmed_quality"]
        return columns

    def csv_fields(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {f"pdq_{name}": value for name, value in (record.get("pdq_dihedral") or {}).items()
                if name != "original"}

    def report_fields(self, value: Mapping[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if value.get("quality") is not None:
            fields["pdq_quality"] = value["quality"]
        if value.get("trimmed") is not None:
            fields["pdq_trimmed"] = value["trimmed"]
        return fields

    def report_columns(self) -> list[str]:
        return ["pdq_quality"]

    # -- matching ------------------------------------------------------------------------
    def check_value(self, value: Mapping[str, Any]) -> None:
        super().check_value(value)
        crops = value.get("crops") or {}
        for name, code in crops.items():
            if name not in _crop_names() or not self.is_code(code):  # only the variants hashmatch makes:
                # a caller cannot ask for more searches
                raise ValueError(f"PDQ crop variants are {{\"crop:ANCHOR:N%\": {self.hex_length} hex digits}}, "
                                 f"ANCHOR and N as `hash --crop-robust` writes them")
        for name, mask in (value.get("crop_masks") or {}).items():
            if name not in crops or not self.is_code(mask):
                raise ValueError(f"PDQ crop masks are {{\"crop:ANCHOR:N%\": {self.hex_length} hex digits}}, "
                                 f"one per crop variant")
        if len(value.get("pictures") or ()) > MAX_PICTURES:
            raise ValueError(f"at most {MAX_PICTURES} PDQ picture variants")
        for picture in value.get("pictures") or ():
            box = picture.get("box") if isinstance(picture, Mapping) else None
            if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in box)):
                raise ValueError("a PDQ picture variant needs its box: [left, top, right, bottom]")
            if not isinstance(picture.get("quality", 0), int):
                raise ValueError("a PDQ picture variant's quality is an integer")
            code = picture.get("hash")
            if not self.is_code(code):
                raise ValueError(f"a PDQ picture variant's hash must be {self.hex_length} hex digits")
        for name, code in {**(value.get("dihedral") or {}), **({"trimmed": value["trimmed"]}
                                                               if value.get("trimmed") else {})}.items():
            if not self.is_code(code):
                raise ValueError(f"PDQ variant {name} must be {self.hex_length} hex digits")

    def queries(self, value: Mapping[str, Any], config: Any) -> tuple[list[tuple[str | None, str]], bool]:
        """The plain hash; with config.dihedral the 8 dihedral variants instead (original
        first); with config.trim_borders also the trimmed hash if it passes the gate. A
        query below the quality gate is gated, unless its trimmed picture is good enough."""
        gate = config.pdq_quality_gate
        variants: dict[str, str] = {}
        if config.dihedral and value.get("dihedral"):
            variants.update((k.lower(), v.lower()) for k, v in value["dihedral"].items() if k in DIHEDRAL_NAMES)
        trimmed_quality = value.get("trimmed_quality")
        if config.trim_borders and value.get("trimmed") and (trimmed_quality is None or trimmed_quality >= gate):
            variants["trimmed"] = value["trimmed"].lower()
        extra: list[tuple[str | None, str]] = []
        if config.trim_borders:  # pictures found inside the frame (screenshots), each its own query
            extra += [(picture_variant(p["box"]), p["hash"].lower()) for p in value.get("pictures") or ()
                      if p.get("quality", gate) >= gate]
        if getattr(config, "crop_robust", False):  # the query padded back out for each assumed crop,
            # where enough of its bits are the query's own to verify a candidate
            masks = value.get("crop_masks") or {}
            extra += [(name, code.lower()) for name, code in (value.get("crops") or {}).items()
                      if name not in masks or _bit_count(masks[name]) >= MIN_RELIABLE_BITS]
        quality = value.get("quality")
        if quality is not None and quality < gate:
            if "trimmed" not in variants and not extra:
                return [], True
            # only the trimmed or embedded pictures are good enough
            return ([("trimmed", variants["trimmed"])] if "trimmed" in variants else []) + extra, False
        queries: list[tuple[str | None, str]] = [] if "original" in variants else [(None, value["hash"])]
        return queries + list(variants.items()) + extra, False

    def variant_threshold(self, variant: str | None, config: Any, threshold: int) -> int:
        """Variants that are a guess (a picture found inside the frame) match at
        config.picture_threshold, never looser than the type's threshold."""
        if variant is not None and variant.startswith(PICTURE_PREFIX):
            return min(threshold, config.picture_threshold)
        if variant is not None and variant.startswith(CROP_PREFIX):
            return config.crop_threshold  # over the variant's reliable bits (variant_check)
        return threshold

    def variant_check(self, variant: str | None, value: Mapping[str, Any], config: Any) -> Any:
        """A zoom-out variant's second stage: a candidate within config.crop_search_radius
        of the searched (edge-padded) hash is measured again over only the bits every
        padding agreed on (those the query's own pixels decide), scaled to 256 bits; the
        matcher holds that distance to crop_threshold. A variant without its mask counts
        every bit (the full distance, held to crop_threshold). None for other variants."""
        if variant is None or not variant.startswith(CROP_PREFIX):
            return None
        query = int(value["crops"][variant], 16)
        mask_hex = (value.get("crop_masks") or {}).get(variant)
        mask = int(mask_hex, 16) if mask_hex else (1 << self.bits) - 1
        reliable, radius = mask.bit_count(), config.crop_search_radius

        def verified(listed: bytes, distance: int) -> int | None:
            if distance > radius or not reliable:
                return None
            return reliable_distance(((query ^ int.from_bytes(listed, "big")) & mask).bit_count(), reliable)

        return verified

    def default_variant(self, config: Any) -> str | None:
        return DIHEDRAL_NAMES[0] if config.dihedral else None

    def query_quality(self, value: Mapping[str, Any]) -> int | None:
        return value.get("quality")


def pdq_pixels(decoded: Any, pdq_mode: str) -> tuple[np.ndarray, int]:
    """(H, W, C) uint8 pixels and the luma convention for the PDQ kernel."""
    cimg = pdq_mode == "cimg512"
    if decoded.array is not None:
        pixels = decoded.array
        grey = pixels.ndim == 2
    else:
        image = decoded.image
        assert image is not None
        grey = image.mode in _GREY_MODES
        if image.mode in ("RGB", "RGBA", "L", "LA"):
            # convert("RGB") of these only drops alpha / replicates grey; the kernel reads
            # the first channel (C < 3) or the first three, so no conversion copy is needed.
            pixels = np.asarray(image)
        elif cimg and grey:
            pixels = np.asarray(image.convert("L"))
        else:
            pixels = np.asarray(to_rgb(image))
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if cimg:
        height, width = pixels.shape[:2]
        if height > _CIMG_SIDE or width > _CIMG_SIDE:
            rows = (np.arange(_CIMG_SIDE) * height) // _CIMG_SIDE
            cols = (np.arange(_CIMG_SIDE) * width) // _CIMG_SIDE
            pixels = pixels[rows][:, cols]
        luma = _pdq.LUMA_CPP_GREY if grey else _pdq.LUMA_CPP_RGB
    else:
        luma = _pdq.LUMA_PDQHASH
    return np.ascontiguousarray(pixels), luma


def pdq_hashes(decoded: Any, pdq_mode: str, dihedral: bool) -> tuple[list[str], int]:
    """The PDQ hex hash (and its 7 dihedral variants on request) and the quality."""
    pixels, luma = pdq_pixels(decoded, pdq_mode)
    out = np.zeros((_pdq.NUM_DIHEDRAL if dihedral else 1, 32), dtype=np.uint8)
    quality = _pdq.pdq_hash(pixels, luma, pdq_mode == "cimg512", out)
    return [row.tobytes().hex() for row in out], int(quality)


def _pdq_of(image: Any, options: HashOptions) -> tuple[str, int] | None:
    """The PDQ and quality of a part cut out of the input (a trimmed picture, a picture
    found inside the frame), None when it is too small to hash."""
    from hashmatch.decode.image import DecodeLimits, decode
    from hashmatch.errors import ImageError

    try:
        decoded = decode(image, options.limits or DecodeLimits())
    except ImageError:  # e.g. below the minimum size
        return None
    hashes, quality = pdq_hashes(decoded, options.pdq_mode, False)
    return hashes[0], quality


def _trimmed(context: ImageContext, options: HashOptions) -> tuple[str, int] | None:
    trimmed = trim_uniform_border(context.rgb())
    return _pdq_of(trimmed, options) if trimmed is not None else None


def picture_variant(box: Any) -> str:
    return PICTURE_PREFIX + ",".join(str(int(v)) for v in box)


def _pictures(context: ImageContext, options: HashOptions) -> list[dict[str, Any]]:
    """The PDQ of each picture found inside the frame (decode.pictures: a screenshot, a
    canvas), with its box and quality."""
    from hashmatch.decode.pictures import picture_boxes

    found = []
    image = context.rgb()
    for box in picture_boxes(image):
        hashed = _pdq_of(image.crop(box), options)
        if hashed is not None:
            found.append({"hash": hashed[0], "quality": hashed[1], "box": list(box)})
    return found


def _crops(context: ImageContext, options: HashOptions) -> tuple[dict[str, str], dict[str, str]]:
    """The PDQ of each zoom-out variant (decode.zoom_out), padded with its edge pixels, and
    the mask of the bits all its paddings agree on: {"crop:ANCHOR:N%": hex} twice."""
    from hashmatch.decode.zoom_out import FILLS, zoom_out_variants

    out = np.zeros((1, 32), dtype=np.uint8)
    hashes = np.zeros((len(FILLS), 32), dtype=np.uint8)
    luma = _pdq.LUMA_PDQHASH if options.pdq_mode == "full" else _pdq.LUMA_CPP_RGB
    crops, masks = {}, {}
    for name, padded in zoom_out_variants(context.rgb(), FILLS):
        for k, pixels in enumerate(padded):
            _pdq.pdq_hash(np.ascontiguousarray(pixels), luma, options.pdq_mode == "cimg512", out)
            hashes[k] = out[0]
        unsure = np.bitwise_or.reduce(hashes[1:] ^ hashes[0], axis=0)  # bits a padding changes
        crops[name], masks[name] = hashes[0].tobytes().hex(), (~unsure).tobytes().hex()
    return crops, masks


def reliable_distance(differing: Any, reliable: Any) -> Any:
    """The distance of a zoom-out variant's second stage: `differing` of its `reliable`
    bits differ, scaled to 256 (rounded half up); ints or numpy arrays alike."""
    return (differing * 256 + reliable // 2) // reliable


def _bit_count(hex_code: str) -> int:
    return int(hex_code, 16).bit_count()


@functools.lru_cache(maxsize=1)
def _crop_names() -> frozenset[str]:  # checked for every lookup that carries crop variants
    from hashmatch.decode.zoom_out import AMOUNTS, ANCHORS, variant_name

    return frozenset(variant_name(anchor, amount) for amount in AMOUNTS for anchor in ANCHORS)
