"""JPEG integrity: the libjpeg warnings Pillow swallows.

This module owns one decision: whether a JPEG that Pillow decoded without error is in
fact cut short or corrupt. libjpeg treats both as recoverable: a file cut mid-scan with an
EOI marker (FF D9) appended, or a scan whose bytes were damaged, decodes "successfully"
with a warning ("Premature end of JPEG file", "Corrupt JPEG data: premature end of data
segment", "Corrupt JPEG data: bad Huffman code", ...), the missing part painted grey or
the rest of the image garbled. Pillow never reports those warnings,
so such a file would be hashed as if whole.

`check_jpeg(data)` decodes the same bytes a second time with libjpeg-turbo through
simplejpeg with strict=True (TurboJPEG stops on the first warning) at 1/8 scale (every
entropy-coded bit is still decoded, most of the inverse DCT and all colour conversion
are skipped), and maps the warning to TruncatedImageError or CorruptImageError. It is a
verification only: the pixels hashmatch hashes still come from Pillow, so hashes of good
JPEGs are unchanged.

Only the warnings listed below count. Every other outcome is "no opinion": a warning
that says nothing about the scan data (unknown JFIF revision, odd SOS parameters, ...),
bytes left over after a scan was fully decoded (junk some cameras write), and anything
simplejpeg cannot decode at all (12-bit, lossless, ...): Pillow decoded it, and
this check never refuses a file for libjpeg-turbo's own limits. TurboJPEG stops at the
first warning, so a file whose headers already draw a harmless one is not checked
further. See the README ("What counts as a partial JPEG") for what is and is not
detected.
"""
from __future__ import annotations

import re

import simplejpeg

from hashmatch.errors import CorruptImageError, TruncatedImageError

__all__ = ["check_jpeg", "classify_warning"]

# libjpeg-turbo's warning texts (jerror.h), matched in full.
_TRUNCATED = (
    re.compile(r"Premature end of JPEG file"),  # JWRN_JPEG_EOF: the data ran out
    re.compile(r"Corrupt JPEG data: premature end of data segment"),  # JWRN_HIT_MARKER
    re.compile(r"Corrupt JPEG data: found marker 0xd9 instead of RST\d"),  # EOI mid-scan
)
_CORRUPT = (
    re.compile(r"Corrupt JPEG data: bad Huffman code"),  # JWRN_HUFF_BAD_CODE
    re.compile(r"Corrupt JPEG data: bad arithmetic code"),  # JWRN_ARITH_BAD_CODE
    re.compile(r"Corrupt JPEG data: found marker 0x[0-9a-f]{2} instead of RST\d"),  # JWRN_MUST_RESYNC
)
# JWRN_EXTRANEOUS_DATA ("N extraneous bytes before marker"): bytes left over when a scan
# (or a restart interval) was fully decoded. Before a restart marker it means the decoder
# lost step inside the scan: corrupt. Elsewhere, cameras and encoders write a little junk
# into whole images, and refusing those would lose matches (hashmatch's first rule); a
# decoder that lost step leaves thousands of bytes (a lost 4 KiB disk block: 8,000-17,000
# of a 49 KB scan). So it counts as corrupt from EXTRANEOUS_MIN_BYTES and
# EXTRANEOUS_MIN_SHARE of the file on.
_EXTRANEOUS = re.compile(r"Corrupt JPEG data: (\d+) extraneous bytes before marker 0x([0-9a-f]{2})")
EXTRANEOUS_MIN_BYTES = 1024
EXTRANEOUS_MIN_SHARE = 0.05


def classify_warning(message: str, size: int | None = None) -> str | None:
    """'truncated', 'corrupt' or None (no opinion) for one libjpeg-turbo message about a
    file of `size` bytes (leftover bytes are judged against it; see _EXTRANEOUS)."""
    if any(p.fullmatch(message) for p in _TRUNCATED):
        return "truncated"
    if any(p.fullmatch(message) for p in _CORRUPT):
        return "corrupt"
    extraneous = _EXTRANEOUS.fullmatch(message)
    if extraneous:
        count, marker = int(extraneous.group(1)), int(extraneous.group(2), 16)
        if 0xD0 <= marker <= 0xD7:  # before a restart marker: lost step inside the scan
            return "corrupt"
        if size is not None and count >= EXTRANEOUS_MIN_BYTES and count >= EXTRANEOUS_MIN_SHARE * size:
            return "corrupt"
    return None


def _first_warning(data: bytes) -> str | None:
    try:
        # min_height/min_width of 1 pick libjpeg's smallest scale (1/8); GRAY output
        # skips colour conversion. Neither changes what the entropy decoder reads.
        simplejpeg.decode_jpeg(data, colorspace="GRAY", min_height=1, min_width=1, strict=True)
    except ValueError as exc:
        return str(exc)
    except Exception:  # simplejpeg failing in any other way (MemoryError, ...): no opinion
        return None
    return None


def check_jpeg(data: bytes) -> None:
    """Raise TruncatedImageError / CorruptImageError if libjpeg warns that this JPEG's
    scan data ends early or is corrupt; return None otherwise (also when libjpeg-turbo
    cannot judge the file). Call it only on data Pillow has already decoded."""
    message = _first_warning(data)
    kind = classify_warning(message, len(data)) if message is not None else None
    if kind == "truncated":
        raise TruncatedImageError(f"JPEG scan data ends before the image is complete, cut short or damaged "
                                  f"(libjpeg: {message}); a partial image is not hashed")
    if kind == "corrupt":
        raise CorruptImageError(f"JPEG scan data is corrupt (libjpeg: {message})")
