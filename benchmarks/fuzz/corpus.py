"""Hostile inputs for hashmatch's image path and its folder scanner, all generated.

Nothing here is a real photograph: the valid seeds are tiny pictures drawn from seeded
numpy noise and gradients and encoded with Pillow; every other input is one of those
seeds broken on purpose (truncated, bit-flipped, headers patched to declare huge, zero or
negative-looking sizes, looping TIFF IFDs, ...) or plain bytes and text.

    python benchmarks/fuzz/corpus.py OUT_DIR [--count N] [--seed S] [--lists LIST_DIR] [--tree TREE_DIR]

writes N files into OUT_DIR (the seed corpus of fuzz_decode.py), with --lists the hash
list seeds of fuzz_lists.py, and with --tree a hostile folder tree for `hashmatch scan`.

From Python:

    generate(out_dir, seed=0, count=400) -> list[Path]   # deterministic for (seed, count)
    cases(seed=0, count=400) -> list[(name, bytes)]       # the same inputs, in memory
    list_cases(seed=0) / generate_lists(out_dir, seed=0)  # hash-list files, valid and hostile
    make_tree(root, seed=0) -> TreeInfo                   # FIFOs, sockets, link loops, ...

Every case name starts with its kind (``seed-``, ``trunc-``, ``flip-``, ``png-ihdr-``,
...), so a failure says what the input was without opening it.
"""
from __future__ import annotations

import base64
import io
import os
import random
import socket
import stat
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, features

__all__ = ["DEFAULT_COUNT", "TreeInfo", "cases", "generate", "make_tree", "seeds"]

DEFAULT_COUNT = 400


# ----------------------------------------------------------------------------- seeds

def _pixels(width: int, height: int, seed: int) -> np.ndarray:
    """A benign (height, width, 3) uint8 picture: a gradient plus a few blocks of noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    a, b = rng.uniform(0.5, 3.0, 2)
    img = np.stack([
        127.5 + 127.5 * np.sin(a * x / max(width, 1) * np.pi),
        127.5 + 127.5 * np.cos(b * y / max(height, 1) * np.pi),
        (x + y) / max(width + height - 2, 1) * 255,
    ], axis=-1)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def seeds(seed: int = 0) -> dict[str, bytes]:
    """Small valid images of every supported format and several of each format's
    variants (progressive JPEG, palette/16-bit/interlaced PNG, animated GIF and WebP,
    palette/RLE BMP, compressed and multi-page TIFF). Deterministic per seed."""
    rgb = Image.fromarray(_pixels(24, 16, seed))
    rgb2 = Image.fromarray(_pixels(24, 16, seed + 1))
    grey = rgb.convert("L")
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    out: dict[str, bytes] = {
        "jpeg-baseline.jpg": _encode(rgb, "JPEG", quality=85),
        "jpeg-progressive.jpg": _encode(rgb, "JPEG", quality=70, progressive=True),
        "jpeg-grey.jpg": _encode(grey, "JPEG", quality=90),
        "jpeg-cmyk.jpg": _encode(rgb.convert("CMYK"), "JPEG", quality=90),
        "jpeg-restart.jpg": _encode(rgb, "JPEG", quality=80, restart_marker_blocks=1),
        "png-rgb.png": _encode(rgb, "PNG"),
        "png-rgba.png": _encode(rgb.convert("RGBA"), "PNG"),
        "png-palette.png": _encode(pal, "PNG"),
        "png-grey16.png": _encode(grey.convert("I;16"), "PNG"),
        "png-interlaced.png": _encode(rgb, "PNG", interlace=1) if _png_interlace_supported() else _encode(rgb, "PNG"),
        "png-apng.png": _encode(rgb, "PNG", save_all=True, append_images=[rgb2], duration=40),
        "gif-static.gif": _encode(pal, "GIF"),
        "gif-animated.gif": _encode(pal, "GIF", save_all=True,
                                    append_images=[rgb2.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)],
                                    duration=40, loop=0),
        "bmp-24.bmp": _encode(rgb, "BMP"),
        "bmp-8.bmp": _encode(pal, "BMP"),
        "bmp-1.bmp": _encode(grey.convert("1"), "BMP"),
        "tiff-raw.tif": _encode(rgb, "TIFF"),
        "tiff-lzw.tif": _encode(rgb, "TIFF", compression="tiff_lzw"),
        "tiff-deflate.tif": _encode(rgb, "TIFF", compression="tiff_adobe_deflate"),
        "tiff-packbits.tif": _encode(grey, "TIFF", compression="packbits"),
        "tiff-multipage.tif": _encode(rgb, "TIFF", save_all=True, append_images=[rgb2]),
        "tiff-bigendian.tif": _tiff(8, 8, big_endian=True),
    }
    if features.check("webp"):
        out["webp-lossy.webp"] = _encode(rgb, "WEBP", quality=80)
        out["webp-lossless.webp"] = _encode(rgb, "WEBP", lossless=True)
        out["webp-animated.webp"] = _encode(rgb, "WEBP", save_all=True, append_images=[rgb2], duration=40)
    return out


def _png_interlace_supported() -> bool:
    try:
        _encode(Image.new("L", (4, 4)), "PNG", interlace=1)
        return True
    except Exception:  # noqa: BLE001 - older Pillow cannot write interlaced PNG
        return False


# ----------------------------------------------------------------------------- format surgery

def _png_chunk(kind: bytes, payload: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc & 0xFFFFFFFF)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(width: int, height: int, depth: int = 8, colour: int = 2, interlace: int = 0,
         idat: bytes | None = None, extra: bytes = b"") -> bytes:
    ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))
    if idat is None:
        idat = zlib.compress(b"\0" * 64)
    return PNG_MAGIC + ihdr + extra + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _png_cases() -> list[tuple[str, bytes]]:
    out = []
    for w, h in [(100_000, 100_000), (0, 0), (0, 16), (16, 0), (0xFFFFFFFF, 0xFFFFFFFF), (0x80000000, 1),
                 (1, 0x80000000), (0x7FFFFFFF, 0x7FFFFFFF), (1, 89_478_486), (89_478_486, 1), (65_536, 65_536),
                 (16, 16)]:
        out.append((f"png-ihdr-{w}x{h}.png", _png(w, h)))
    for depth, colour in [(3, 2), (16, 3), (0, 0), (8, 7), (1, 2), (32, 6), (8, 255)]:
        out.append((f"png-ihdr-depth{depth}-colour{colour}.png", _png(16, 16, depth, colour)))
    out.append(("png-ihdr-interlace2.png", _png(16, 16, interlace=2)))
    # IDAT whose inflated size is far beyond what IHDR declares, and one far short of it
    out.append(("png-idat-overlong.png", _png(8, 8, idat=zlib.compress(b"\0" * 4_000_000, 9))))
    out.append(("png-idat-short.png", _png(64, 64, idat=zlib.compress(b"\0" * 10))))
    out.append(("png-idat-not-zlib.png", _png(16, 16, idat=b"\xff" * 200)))
    out.append(("png-idat-empty.png", _png(16, 16, idat=b"")))
    # a legitimate deflate "bomb" well under the pixel cap: 2000x2000 grey from ~4 KiB
    out.append(("png-zlib-bomb-2000x2000.png",
                _png(2000, 2000, colour=0, idat=zlib.compress(b"\0" * (2001 * 2000), 9))))
    head = PNG_MAGIC + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
    out.append(("png-chunk-len-ffffffff.png", head + struct.pack(">I", 0xFFFFFFFF) + b"IDAT" + b"\0" * 32))
    out.append(("png-chunk-len-7fffffff.png", head + struct.pack(">I", 0x7FFFFFFF) + b"tEXt" + b"a\0b"))
    out.append(("png-bad-crc.png", PNG_MAGIC + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0), 0)
                + _png_chunk(b"IDAT", zlib.compress(b"\0" * 800)) + _png_chunk(b"IEND", b"")))
    out.append(("png-no-ihdr.png",
                PNG_MAGIC + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b"")))
    out.append(("png-no-idat.png", head + _png_chunk(b"IEND", b"")))
    out.append(("png-only-magic.png", PNG_MAGIC))
    out.append(("png-palette-empty-plte.png", _png(16, 16, 8, 3, extra=_png_chunk(b"PLTE", b""))))
    out.append(("png-palette-missing-plte.png", _png(16, 16, 8, 3, idat=zlib.compress(b"\0" * (17 * 16)))))
    out.append(("png-ztxt-bomb.png", _png(16, 16, idat=zlib.compress(b"\0" * (49 * 16)),
                                          extra=_png_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"A" * 20_000_000, 9)))))
    out.append(("png-iccp-garbage.png", _png(16, 16, idat=zlib.compress(b"\0" * (49 * 16)),
                                             extra=_png_chunk(b"iCCP", b"p\0\0" + b"\xff" * 100))))
    # APNG: absurd frame count, and a frame control chunk declaring a huge frame
    actl = _png_chunk(b"acTL", struct.pack(">II", 0x7FFFFFFF, 0))
    fctl = _png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, 100_000, 100_000, 0, 0, 1, 1, 0, 0))
    out.append(("png-apng-huge-count.png", _png(16, 16, idat=zlib.compress(b"\0" * (49 * 16)), extra=actl)))
    out.append(("png-apng-huge-fctl.png", _png(16, 16, idat=zlib.compress(b"\0" * (49 * 16)),
                                               extra=_png_chunk(b"acTL", struct.pack(">II", 2, 0)) + fctl)))
    return out


def _jpeg_sof_offset(data: bytes) -> int | None:
    """Offset of the first SOFn marker segment (FFC0-FFCF except C4, C8, CC)."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return pos
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        pos += 2 + length
    return None


def _jpeg_cases(base: bytes) -> list[tuple[str, bytes]]:
    out = []
    sof = _jpeg_sof_offset(base)
    assert sof is not None
    for w, h in [(0, 0), (0, 16), (16, 0), (65535, 65535), (1, 65535), (65535, 1), (4, 4), (10_000, 10_000)]:
        data = bytearray(base)
        struct.pack_into(">HH", data, sof + 5, h, w)
        out.append((f"jpeg-sof-{w}x{h}.jpg", bytes(data)))
    for ncomp in (0, 2, 5, 255):
        data = bytearray(base)
        data[sof + 9] = ncomp
        out.append((f"jpeg-sof-components{ncomp}.jpg", bytes(data)))
    for precision in (0, 12, 16, 255):
        data = bytearray(base)
        data[sof + 4] = precision
        out.append((f"jpeg-sof-precision{precision}.jpg", bytes(data)))
    out.append(("jpeg-magic-then-ff-64k.jpg", b"\xff\xd8\xff" + b"\xff" * 65536))
    out.append(("jpeg-magic-then-ff-1m.jpg", b"\xff\xd8\xff" + b"\xff" * (1 << 20)))
    out.append(("jpeg-magic-ff-eoi.jpg", b"\xff\xd8" + b"\xff" * 4096 + b"\xd9"))
    out.append(("jpeg-only-magic.jpg", b"\xff\xd8\xff"))
    out.append(("jpeg-soi-eoi.jpg", b"\xff\xd8\xff\xd9"))
    out.append(("jpeg-app-len-ffff.jpg", b"\xff\xd8\xff\xe1\xff\xff" + b"Exif\0\0" + b"\0" * 64))
    out.append(("jpeg-app-len-0.jpg", b"\xff\xd8\xff\xe0\x00\x00" + base[2:]))
    out.append(("jpeg-app-len-1.jpg", b"\xff\xd8\xff\xe0\x00\x01" + base[2:]))
    out.append(("jpeg-sos-first.jpg",
                b"\xff\xd8\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x55" * 256 + b"\xff\xd9"))
    out.append(("jpeg-many-app-segments.jpg", b"\xff\xd8" + (b"\xff\xe2\x00\x04ab") * 20_000 + base[2:]))
    # an EXIF block whose IFD points at itself, before the real image data
    exif = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) \
        + struct.pack("<HHII", 0x8769, 4, 1, 8) + struct.pack("<I", 8)
    out.append(("jpeg-exif-ifd-loop.jpg", b"\xff\xd8\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + base[2:]))
    exif_orient = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) \
        + struct.pack("<HHIHH", 0x0112, 3, 1, 0xFFFF, 0) + struct.pack("<I", 0)
    out.append(("jpeg-exif-orientation-65535.jpg",
                b"\xff\xd8\xff\xe1" + struct.pack(">H", len(exif_orient) + 2) + exif_orient + base[2:]))
    # a bogus MPO index (second picture pointing past the end)
    mpf = b"MPF\0" + b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 2) \
        + struct.pack("<HHI4s", 0xB000, 7, 4, b"0100") + struct.pack("<HHII", 0xB001, 4, 1, 2) + struct.pack("<I", 0)
    out.append(("jpeg-mpf-bogus.jpg", b"\xff\xd8\xff\xe2" + struct.pack(">H", len(mpf) + 2) + mpf + base[2:]))
    return out


def _gif_descriptors(data: bytes) -> list[int]:
    """Offsets of the image descriptors (',' then left, top, width, height LE) of a GIF
    written by Pillow (frames at 0,0)."""
    found, pos = [], 12
    while True:
        pos = data.find(b",\x00\x00\x00\x00", pos + 1)
        if pos < 0:
            return found
        found.append(pos)


def _gif_cases(static: bytes, animated: bytes) -> list[tuple[str, bytes]]:
    out = []
    for w, h in [(65535, 65535), (0, 0), (0, 16), (1, 65535)]:
        data = bytearray(static)
        struct.pack_into("<HH", data, 6, w, h)
        out.append((f"gif-screen-{w}x{h}.gif", bytes(data)))
    frames = _gif_descriptors(animated)
    for index, pos in enumerate(frames[:2]):
        for w, h in [(20_000, 20_000), (65535, 65535), (0, 0), (65535, 1)]:
            data = bytearray(animated)
            struct.pack_into("<HH", data, pos + 5, w, h)
            out.append((f"gif-frame{index}-{w}x{h}.gif", bytes(data)))
        data = bytearray(animated)
        struct.pack_into("<HH", data, pos + 1, 65000, 65000)  # frame placed far off the canvas
        out.append((f"gif-frame{index}-offset-65000.gif", bytes(data)))
    if frames:
        pos = frames[0]
        flags = animated[pos + 9]
        lzw = pos + 10 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
        for size in (0, 1, 12, 255):
            data = bytearray(animated)
            data[lzw] = size
            out.append((f"gif-lzw-min-code-{size}.gif", bytes(data)))
    out.append(("gif-only-header.gif", static[:13]))
    out.append(("gif-no-trailer.gif", static.rstrip(b";")))
    out.append(("gif-magic-only.gif", b"GIF89a"))
    return out


def _bmp(width: int, height: int, bpp: int = 24, compression: int = 0, header_size: int = 40,
         colours: int = 0, offset: int | None = None, image_size: int = 0, pixels: bytes | None = None) -> bytes:
    if pixels is None:
        pixels = b"\x80" * 256
    dib = struct.pack("<IiiHHIIiiII", header_size, width, height, 1, bpp, compression, image_size, 2835, 2835,
                      colours, 0)
    off = 14 + len(dib) if offset is None else offset
    return b"BM" + struct.pack("<IHHI", 14 + len(dib) + len(pixels), 0, 0, off) + dib + pixels


def _bmp_cases() -> list[tuple[str, bytes]]:
    out = []
    for w, h in [(100_000, 100_000), (0, 0), (0, 8), (8, 0), (-8, 8), (8, -8), (8, -(2 ** 31)), (-(2 ** 31), 8),
                 (2 ** 31 - 1, 2 ** 31 - 1), (1, 2 ** 31 - 1), (65_536, 65_536)]:
        out.append((f"bmp-dims-{w}x{h}.bmp", _bmp(w, h)))
    for bpp in (0, 3, 33, 64, 65535):
        out.append((f"bmp-bpp{bpp}.bmp", _bmp(8, 8, bpp=bpp)))
    for comp, bpp in [(1, 24), (1, 8), (2, 4), (2, 8), (3, 24), (3, 32), (4, 24), (5, 24), (99, 24)]:
        out.append((f"bmp-compression{comp}-bpp{bpp}.bmp", _bmp(8, 8, bpp=bpp, compression=comp)))
    for hs in (0, 12, 64, 108, 124, 0xFFFFFFFF, 1000):
        out.append((f"bmp-header-size-{hs}.bmp", _bmp(8, 8, header_size=hs)))
    out.append(("bmp-colours-huge.bmp", _bmp(8, 8, bpp=8, colours=0xFFFFFFFF)))
    out.append(("bmp-colours-300.bmp", _bmp(8, 8, bpp=8, colours=300)))
    out.append(("bmp-offset-past-end.bmp", _bmp(8, 8, offset=0x7FFFFFFF)))
    out.append(("bmp-offset-zero.bmp", _bmp(8, 8, offset=0)))
    out.append(("bmp-image-size-huge.bmp", _bmp(8, 8, image_size=0xFFFFFFFF)))
    # RLE8 streams: a run past the end of the bitmap, a delta far off, and an absolute run past the end
    out.append(("bmp-rle8-overrun.bmp", _bmp(8, 8, bpp=8, compression=1, colours=2,
                                             pixels=b"\0\0\0\0\xff\xff\xff\0" + b"\xff\x01" * 20 + b"\x00\x01")))
    out.append(("bmp-rle8-delta.bmp", _bmp(8, 8, bpp=8, compression=1, colours=2,
                                           pixels=b"\0\0\0\0\xff\xff\xff\0" + b"\x00\x02\xff\xff" + b"\x00\x01")))
    out.append(("bmp-rle8-absolute.bmp", _bmp(8, 8, bpp=8, compression=1, colours=2,
                                              pixels=b"\0\0\0\0\xff\xff\xff\0" + b"\x00\xff" + b"\x01" * 10)))
    out.append(("bmp-rle4-overrun.bmp", _bmp(8, 8, bpp=4, compression=2, colours=2,
                                             pixels=b"\0\0\0\0\xff\xff\xff\0" + b"\xff\x11" * 20 + b"\x00\x01")))
    out.append(("bmp-magic-only.bmp", b"BM"))
    out.append(("bmp-header-only.bmp", _bmp(8, 8)[:30]))
    return out


_TIFF_TYPES = {1: ("B", 1), 2: ("s", 1), 3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}


def _tiff(width: int, height: int, *, big_endian: bool = False, extra: dict | None = None,
          next_ifd: int | None = None, strip_offset: int | None = None, strip_bytes: int | None = None,
          count_override: int | None = None, bits: int = 8, samples: int = 1, photometric: int = 1,
          compression: int = 1, tail: bytes = b"") -> bytes:
    """A hand-written one-IFD TIFF (grey 8-bit, uncompressed, one strip) whose fields can
    all be set to hostile values. The IFD sits at offset 8, the pixels after it."""
    e = ">" if big_endian else "<"
    tags: dict[int, tuple[int, int]] = {  # tag -> (type, value)
        256: (4, width), 257: (4, height), 258: (3, bits), 259: (3, compression), 262: (3, photometric),
        273: (4, 0), 277: (3, samples), 278: (4, max(height, 1) & 0xFFFFFFFF), 279: (4, 0),
    }
    if extra:
        tags.update(extra)
    n = len(tags)
    ifd_size = 2 + 12 * n + 4
    pixel_at = 8 + ifd_size
    pixels = b"\x7f" * 64 + tail
    tags[273] = (4, pixel_at if strip_offset is None else strip_offset)
    tags[279] = (4, len(pixels) if strip_bytes is None else strip_bytes)
    body = struct.pack(e + "H", n if count_override is None else count_override)
    for tag in sorted(tags):
        kind, value = tags[tag]
        if kind == 3:
            body += struct.pack(e + "HHIHH", tag, 3, 1, value & 0xFFFF, 0)
        else:
            body += struct.pack(e + "HHII", tag, kind, 1, value & 0xFFFFFFFF)
    body += struct.pack(e + "I", 0 if next_ifd is None else next_ifd)
    head = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(e + "I", 8)
    return head + body + pixels


def _tiff_cases() -> list[tuple[str, bytes]]:
    out = [("tiff-handmade-8x8.tif", _tiff(8, 8))]
    for w, h in [(100_000, 100_000), (0, 0), (0, 8), (8, 0), (0xFFFFFFFF, 0xFFFFFFFF), (0x80000000, 1),
                 (1, 0x80000000), (65_536, 65_536)]:
        out.append((f"tiff-dims-{w}x{h}.tif", _tiff(w, h)))
    out.append(("tiff-ifd-loop-self.tif", _tiff(8, 8, next_ifd=8)))
    out.append(("tiff-ifd-next-past-end.tif", _tiff(8, 8, next_ifd=0x7FFFFFFF)))
    out.append(("tiff-ifd-next-odd.tif", _tiff(8, 8, next_ifd=9)))
    # two IFDs that point at each other
    first = _tiff(8, 8)
    second_at = len(first)
    second = _tiff(8, 8, next_ifd=8)[8:]  # body only; its next pointer is the first IFD
    looped = bytearray(first + second)
    n = struct.unpack_from("<H", looped, 8)[0]
    struct.pack_into("<I", looped, 8 + 2 + 12 * n, second_at)
    out.append(("tiff-ifd-loop-pair.tif", bytes(looped)))
    # SubIFDs / EXIF / GPS pointers back at the image's own IFD (nested loops)
    for tag, name in [(330, "subifd"), (34665, "exif"), (34853, "gps"), (40965, "interop")]:
        out.append((f"tiff-{name}-points-at-itself.tif", _tiff(8, 8, extra={tag: (4, 8)})))
        out.append((f"tiff-{name}-points-past-end.tif", _tiff(8, 8, extra={tag: (4, 0x7FFFFFF0)})))
    out.append(("tiff-entry-count-ffff.tif", _tiff(8, 8, count_override=0xFFFF)))
    out.append(("tiff-entry-count-0.tif", _tiff(8, 8, count_override=0)))
    out.append(("tiff-strip-offset-past-end.tif", _tiff(8, 8, strip_offset=0x7FFFFFFF)))
    out.append(("tiff-strip-bytes-huge.tif", _tiff(8, 8, strip_bytes=0xFFFFFFFF)))
    out.append(("tiff-strip-bytes-zero.tif", _tiff(8, 8, strip_bytes=0)))
    for bits in (0, 3, 12, 16, 32, 64, 255):
        out.append((f"tiff-bits{bits}.tif", _tiff(8, 8, bits=bits)))
    for samples in (0, 2, 3, 4, 5, 255):
        out.append((f"tiff-samples{samples}.tif", _tiff(8, 8, samples=samples)))
    for photometric in (0, 2, 3, 4, 5, 6, 8, 32844, 65535):
        out.append((f"tiff-photometric{photometric}.tif", _tiff(8, 8, photometric=photometric)))
    for compression in (2, 5, 6, 7, 8, 32773, 34712, 65535):
        out.append((f"tiff-compression{compression}.tif",
                    _tiff(8, 8, compression=compression, tail=b"\xaa\x55" * 32)))
    out.append(("tiff-rows-per-strip-0.tif", _tiff(8, 8, extra={278: (4, 0)})))
    out.append(("tiff-tile-huge.tif", _tiff(8, 8, extra={322: (4, 0xFFFFFFF0), 323: (4, 0xFFFFFFF0),
                                                          324: (4, 0), 325: (4, 64)})))
    out.append(("tiff-magic-only.tif", b"II*\x00"))
    out.append(("tiff-first-ifd-past-end.tif", b"II*\x00" + struct.pack("<I", 0xFFFFFF00) + b"\0" * 32))
    out.append(("tiff-first-ifd-zero.tif", b"II*\x00" + struct.pack("<I", 0) + b"\0" * 32))
    out.append(("bigtiff-garbage.tif", b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + b"\xff" * 64))
    out.append(("bigtiff-bytesize-16.tif", b"II+\x00" + struct.pack("<HHQ", 16, 0, 16) + b"\0" * 64))
    return out


def _webp_cases(lossy: bytes | None, lossless: bytes | None, animated: bytes | None) -> list[tuple[str, bytes]]:
    out = []
    if lossy:
        for size in (0, 4, 0xFFFFFFFF, 0x7FFFFFFF):
            data = bytearray(lossy)
            struct.pack_into("<I", data, 4, size)
            out.append((f"webp-riff-size-{size}.webp", bytes(data)))
        data = bytearray(lossy)
        struct.pack_into("<I", data, 16, 0xFFFFFFF0)  # the VP8 chunk's length
        out.append(("webp-chunk-size-huge.webp", bytes(data)))
        # VP8 frame header: 3-byte tag, start code 9d 01 2a, then 14-bit width/height
        pos = bytes(lossy).find(b"\x9d\x01\x2a")
        if pos > 0:
            for w, h in [(16383, 16383), (0, 0), (0, 16)]:
                data = bytearray(lossy)
                struct.pack_into("<HH", data, pos + 3, w, h)
                out.append((f"webp-vp8-{w}x{h}.webp", bytes(data)))
    if lossless:
        pos = bytes(lossless).find(b"VP8L")
        if pos > 0:
            for w, h in [(16384, 16384), (1, 16384), (1, 1)]:
                data = bytearray(lossless)
                bits = (w - 1) | ((h - 1) << 14) | (1 << 28)
                struct.pack_into("<I", data, pos + 9, bits)
                out.append((f"webp-vp8l-{w}x{h}.webp", bytes(data)))
    for w, h in [(16_777_216, 16_777_216), (1, 16_777_216), (1, 1)]:
        vp8x = struct.pack("<I", 0x10) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
        body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
        if lossy:
            body += lossy[12:]
        out.append((f"webp-vp8x-canvas-{w}x{h}.webp", b"RIFF" + struct.pack("<I", len(body)) + body))
    if animated:
        data = bytearray(animated)
        pos = bytes(animated).find(b"ANMF")
        if pos > 0:  # frame x, y (3 bytes each, /2) then width-1, height-1 (3 bytes each)
            data[pos + 8 + 6:pos + 8 + 12] = (0xFFFFFF).to_bytes(3, "little") * 2
            out.append(("webp-anmf-huge-frame.webp", bytes(data)))
    out.append(("webp-riff-only.webp", b"RIFF\x04\x00\x00\x00WEBP"))
    out.append(("webp-unknown-chunk.webp", b"RIFF\x14\x00\x00\x00WEBPXXXX\x08\x00\x00\x00" + b"\0" * 8))
    return out


def _misc_cases(rng: random.Random) -> list[tuple[str, bytes]]:
    text = ("This is a plain text file, not an image.\n" * 40).encode()
    return [
        ("empty.bin", b""),
        ("one-byte.bin", b"\xff"),
        ("text.txt", text),
        ("text-named.jpg", text),
        ("utf16-text.png", "hello, not a picture\n".encode("utf-16")),
        ("html.gif", b"<!doctype html><html><body>GIF89a</body></html>"),
        ("zeros-64k.bin", b"\0" * 65536),
        ("ff-64k.bin", b"\xff" * 65536),
        ("random-16.bin", rng.randbytes(16)),
        ("random-4k.bin", rng.randbytes(4096)),
        ("random-256k.bin", rng.randbytes(262144)),
        ("riff-avi.webp", b"RIFF\x10\x00\x00\x00AVI LIST" + b"\0" * 8),
        ("ftyp-heic-garbage.heic", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + rng.randbytes(256)),
        ("ftyp-avif-garbage.avif", b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf" + rng.randbytes(256)),
        ("ftyp-mp4.mp4", b"\0\0\0\x18ftypisom\0\0\0\0isomiso2" + rng.randbytes(256)),
        ("pdf.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"),
        ("zip.zip", b"PK\x03\x04" + rng.randbytes(100)),
        ("psd.psd", b"8BPS\x00\x01" + b"\0" * 20),
        ("svg.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="99999999" height="99999999"/>'),
        ("ico.ico", b"\0\0\1\0\1\0\0\0\0\0\1\0\x18\0" + rng.randbytes(40)),
    ]


def _magic_prefix_cases(seed_bytes: dict[str, bytes], rng: random.Random) -> list[tuple[str, bytes]]:
    """Every format's magic followed by random bytes, and by another format's body."""
    magics = {"jpeg": b"\xff\xd8\xff", "png": PNG_MAGIC, "gif": b"GIF89a", "bmp": b"BM", "tiff-le": b"II*\x00",
              "tiff-be": b"MM\x00*", "webp": b"RIFF\x00\x01\x00\x00WEBP"}
    out = []
    bodies = sorted(seed_bytes.items())
    for name, magic in magics.items():
        out.append((f"magic-{name}-random.bin", magic + rng.randbytes(rng.choice([1, 7, 64, 1000, 20000]))))
        other_name, other = bodies[rng.randrange(len(bodies))]
        out.append((f"magic-{name}-then-{other_name}", magic + other))
    return out


# ----------------------------------------------------------------------------- mutations

def _truncations(name: str, data: bytes, rng: random.Random, k: int) -> list[tuple[str, bytes]]:
    """`data` cut at k points: a few fixed ones around the header, the rest random."""
    points = {1, 2, 3, 4, 8, 12, 16, 24, 32, len(data) // 2, len(data) - 1, len(data) - 2}
    while len(points) < k + 6:
        points.add(rng.randrange(1, max(len(data), 2)))
    chosen = sorted(p for p in points if 0 < p < len(data))
    rng.shuffle(chosen)
    return [(f"trunc-{p}-{name}", data[:p]) for p in chosen[:k]]


def _bitflips(name: str, data: bytes, rng: random.Random, flips: int) -> tuple[str, bytes]:
    buf = bytearray(data)
    where = []
    for _ in range(flips):
        pos = rng.randrange(len(buf))
        bit = rng.randrange(8)
        buf[pos] ^= 1 << bit
        where.append(f"{pos}.{bit}")
    return f"flip-{flips}x-{'_'.join(where[:3])}-{name}", bytes(buf)


def _byteset(name: str, data: bytes, rng: random.Random) -> tuple[str, bytes]:
    buf = bytearray(data)
    pos = rng.randrange(min(len(buf), 64) if rng.random() < 0.7 else len(buf))  # mostly in the header
    value = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE])
    width = rng.choice([1, 2, 4])
    buf[pos:pos + width] = bytes([value]) * width
    return f"set-{pos}-{value:02x}x{width}-{name}", bytes(buf)


def _splice(a_name: str, a: bytes, b_name: str, b: bytes, rng: random.Random) -> tuple[str, bytes]:
    cut_a = rng.randrange(1, len(a))
    cut_b = rng.randrange(0, len(b))
    return f"splice-{cut_a}-{a_name}-{cut_b}-{b_name}", a[:cut_a] + b[cut_b:]


# ----------------------------------------------------------------------------- public API

def _structured(seed: int) -> tuple[list[tuple[str, bytes]], dict[str, bytes]]:
    rng = random.Random(f"hashmatch-structured-{seed}")
    base = seeds(seed)
    out = [(f"seed-{k}", v) for k, v in base.items()]
    out += _misc_cases(rng)
    out += _png_cases()
    out += _jpeg_cases(base["jpeg-baseline.jpg"])
    out += _gif_cases(base["gif-static.gif"], base["gif-animated.gif"])
    out += _bmp_cases()
    out += _tiff_cases()
    out += _webp_cases(base.get("webp-lossy.webp"), base.get("webp-lossless.webp"), base.get("webp-animated.webp"))
    out += _magic_prefix_cases(base, rng)
    return out, base


def cases(seed: int = 0, count: int = DEFAULT_COUNT) -> list[tuple[str, bytes]]:
    """`count` hostile inputs as (name, bytes), deterministic for (seed, count) on one
    Pillow version. The hand-made cases come first (every seed, every header surgery);
    truncations, bit flips, byte overwrites and splices of the seeds fill the rest. With
    a count below the number of hand-made cases, an even sample of them is returned."""
    structured, base = _structured(seed)
    if count <= len(structured):
        step = len(structured) / count
        return [structured[int(i * step)] for i in range(count)]
    out = list(structured)
    rng = random.Random(f"hashmatch-mutations-{seed}")
    # handmade cases are mutated too: a bit flip of a valid-looking bomb header is a good input
    pool = sorted(base.items()) * 3 + [(n, d) for n, d in structured if len(d) > 8 and not n.startswith("seed-")]
    names = {n for n, _ in out}
    while len(out) < count:
        name, data = pool[rng.randrange(len(pool))]
        roll = rng.random()
        if roll < 0.35:
            new = _truncations(name, data, rng, 1)
            item = new[0] if new else _bitflips(name, data, rng, 1)
        elif roll < 0.7:
            item = _bitflips(name, data, rng, rng.choice([1, 1, 2, 4, 16, 64]))
        elif roll < 0.9:
            item = _byteset(name, data, rng)
        else:
            other_name, other = pool[rng.randrange(len(pool))]
            item = _splice(name, data, other_name, other, rng)
        if item[0] in names:
            continue
        names.add(item[0])
        out.append(item)
    return out


def _safe_name(index: int, name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return f"{index:04d}-{keep}"[:200]


def generate(out_dir: str | os.PathLike, seed: int = 0, count: int = DEFAULT_COUNT) -> list[Path]:
    """Write cases(seed, count) into out_dir (created if needed), one file each, named
    NNNN-KIND-...; return their paths in order."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (name, data) in enumerate(cases(seed, count)):
        path = folder / _safe_name(i, name)
        path.write_bytes(data)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- hash lists

def list_cases(seed: int = 0) -> list[tuple[str, bytes]]:
    """Hash-list files for the list readers (the seeds of fuzz_lists.py): a valid list of
    every format (text, csv, tsv, jsonl, tx-csv, tat-json) with random hex standing in
    for hashes, and hostile variants: empty, BOMs, UTF-16, a NUL byte, invalid UTF-8,
    a line over 64 KiB, an unterminated quote, deep JSON nesting, duplicates, bad dates,
    base64 PDQ, CRLF and lone CR line ends, and more."""
    rng = random.Random(f"hashmatch-lists-{seed}")

    def hexd(n: int) -> str:
        return "".join(rng.choice("0123456789abcdef") for _ in range(n))

    pdqs = [hexd(64) for _ in range(6)]
    md5s = [hexd(32) for _ in range(3)]
    text = "# a comment\n\n" + "".join(f"pdq {h}\n" for h in pdqs) + "".join(f"md5 {h}\n" for h in md5s)
    bare = "".join(f"{h}\n" for h in pdqs)
    csv_ = "algorithm,hash,category,id,date,tags\n" + "".join(
        f"pdq,{h},csam,e{i},2024-0{1 + i % 9}-01,a;b\n" for i, h in enumerate(pdqs))
    tsv = "hash\talgorithm\tlabels\n" + "".join(f"{h}\tPDQ\tterrorism\n" for h in pdqs)
    jsonl = "".join(f'{{"hash": "{h}", "algorithm": "pdq", "category": "ncii", "id": {i}, "tags": ["x"]}}\n'
                    for i, h in enumerate(pdqs)) + f'{{"hash": "{pdqs[0]}", "algorithm": "pdq", "deleted": true}}\n'
    txcsv = "signal_type,signal_str,collab,category,tags\n" + "".join(
        f"pdq,{h},c1,{cat},t1 t2\n" for h, cat in zip(pdqs, ["POSITIVE_CLASS", "NEGATIVE_CLASS", "DISPUTED",
                                                              "INVESTIGATION_SEED", "positive_class", "weird"]))
    tat = ('{"results": [' + ", ".join(
        f'{{"hash_digest": "{h}", "algorithm": "PDQ", "ideology": "x", "file_type": "image",'
        f' "deleted": {str(i == 2).lower()},'
        f' "id": "{i}", "created_on": "2024-01-0{1 + i}T00:00:00Z"}}' for i, h in enumerate(pdqs)) + "]}")
    b64 = "".join("pdq " + base64.b64encode(bytes.fromhex(h)).decode() + "\n" for h in pdqs)
    out = [
        ("list-text.txt", text), ("list-bare.txt", bare), ("list-csv.csv", csv_), ("list-tsv.tsv", tsv),
        ("list-jsonl.jsonl", jsonl), ("list-txcsv.csv", txcsv), ("list-tat.json", tat), ("list-b64.txt", b64),
        ("list-tat-array.json", tat[len('{"results": '):-1]),
        ("list-dupes.txt", text + text),
        ("list-bad-length.txt", "pdq " + pdqs[0][:-1] + "\n"),
        ("list-non-hex.txt", "pdq " + "g" * 64 + "\n"),
        ("list-unknown-alg.txt", "crc32 deadbeef\n"),
        ("list-bad-date.csv", "hash,algorithm,date\n" + pdqs[0] + ",pdq,2024-13-45\n"),
        ("list-unterminated-quote.csv", 'hash,algorithm\n"' + pdqs[0] + ",pdq\n" * 50),
        ("list-no-hash-column.csv", "foo,bar\n1,2\n"),
        ("list-header-only.csv", "hash,algorithm\n"),
        ("list-crlf.csv", csv_.replace("\n", "\r\n")),
        ("list-cr-only.txt", text.replace("\n", "\r")),
        ("list-deep-json.json", "[" * 100_000 + "]" * 100_000),
        ("list-deep-jsonl.jsonl", '{"hash": ' + "[" * 50_000 + "]" * 50_000 + "}\n"),
        ("list-json-trailing.json", tat + " garbage"),
        ("list-json-truncated.json", tat[: len(tat) // 2]),
        ("list-jsonl-not-object.jsonl", "[1, 2]\n\"x\"\nnull\n"),
        ("list-jsonl-types.jsonl", '{"hash": 5, "algorithm": ["pdq"], "tags": {"a": 1}, "deleted": "yes"}\n'),
        ("list-huge-number.jsonl", '{"hash": "' + pdqs[0] + '", "algorithm": "pdq", "id": 1' + "0" * 5000 + "}\n"),
        ("list-nan.jsonl", '{"hash": "' + pdqs[0] + '", "algorithm": "pdq", "id": NaN}\n'),
        ("list-long-line.txt", "pdq " + "a" * 70_000 + "\n" + text),
        ("list-many-columns.csv", ",".join(["hash"] + [f"c{i}" for i in range(5000)]) + "\n" + pdqs[0] + "\n"),
        ("list-whitespace.txt", " \t \n\n   \n"),
        ("list-empty.txt", ""),
    ]
    raw = [(n, t.encode()) for n, t in out]
    raw += [
        ("list-bom-utf8.txt", b"\xef\xbb\xbf" + text.encode()),
        ("list-utf16.txt", text.encode("utf-16")),
        ("list-nul.txt", text.encode()[:40] + b"\0" + text.encode()[40:]),
        ("list-invalid-utf8.txt", b"pdq " + pdqs[0].encode() + b"\n# caf\xe9\n"),
        ("list-invalid-utf8-late.csv", csv_.encode() + b"pdq,\xff\xfe,x\n"),
        ("list-binary.bin", rng.randbytes(2048)),
        ("list-surrogate.jsonl", b'{"hash": "\\ud800", "algorithm": "pdq"}\n'),
    ]
    return raw


def generate_lists(out_dir: str | os.PathLike, seed: int = 0) -> list[Path]:
    """Write list_cases(seed) into out_dir, one file each; return their paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (name, data) in enumerate(list_cases(seed)):
        path = folder / _safe_name(i, name)
        path.write_bytes(data)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- hostile trees

@dataclass
class TreeInfo:
    """What make_tree created. `skipped` names the hostile entries this system refused to
    create (no mknod, no unix sockets...), with the reason."""

    root: Path
    created: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    sparse_size: int = 0


def _make_socket(path: bytes, info: TreeInfo) -> None:
    """A unix socket file at `path`. sun_path is ~108 bytes, so a long path is bound in
    a short temporary folder and renamed into place (same filesystem) or skipped."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if len(path) < 100:
            sock.bind(path)
        else:
            short = tempfile.mkdtemp(prefix="hm-sock-")
            temp = os.path.join(os.fsencode(short), b"s")
            sock.bind(temp)
            try:
                os.rename(temp, path)
            finally:
                if os.path.lexists(temp):
                    os.unlink(temp)
                os.rmdir(short)
        info.created.append(os.fsdecode(path))
    except OSError as exc:
        info.skipped[os.fsdecode(path)] = f"socket: {exc}"
    finally:
        sock.close()


def make_tree(root: str | os.PathLike, seed: int = 0, *, sparse_size: int = 1 << 30,
              corpus_files: int = 24) -> TreeInfo:
    """Build a hostile tree under `root` for the scanner: a sample of the corpus, a FIFO,
    a unix socket, symlink loops (self, pair, to '..', to '.'), dangling links, a link to
    /dev/null, a character device (when mknod is allowed), a sparse file of `sparse_size`
    bytes (os.truncate; over the default 256 MiB byte cap), a zero-permission file and
    folder (root can still read them), an empty folder, a deep folder chain, a folder
    named like an image, hard links, and names with a newline, a carriage return, a tab,
    terminal escape sequences, invalid UTF-8 bytes, a leading dash, 255 bytes, JSON and
    a right-to-left override. Deterministic for a seed. Nothing is ever followed out of
    the tree by a non-following walk."""
    info = TreeInfo(Path(root), sparse_size=sparse_size)
    base = os.fsencode(os.fspath(root))
    os.makedirs(base, exist_ok=True)

    def p(*parts: bytes) -> bytes:
        return os.path.join(base, *parts)

    def note(path: bytes) -> None:
        info.created.append(os.fsdecode(path))

    for sub in (b"images", b"special", b"links", b"names", b"perm", b"deep", b"empty", b"dir.jpg"):
        os.makedirs(p(sub), exist_ok=True)
    sample = cases(seed, max(corpus_files, DEFAULT_COUNT))
    step = max(1, len(sample) // corpus_files)
    for i, (name, data) in enumerate(sample[::step][:corpus_files]):
        path = p(b"images", os.fsencode(_safe_name(i, name)))
        with open(path, "wb") as handle:
            handle.write(data)
        note(path)
    good = seeds(seed)["png-rgb.png"]
    with open(p(b"dir.jpg", b"inside.png"), "wb") as handle:
        handle.write(good)
    note(p(b"dir.jpg", b"inside.png"))

    # special files
    os.mkfifo(p(b"special", b"pipe.jpg"))
    note(p(b"special", b"pipe.jpg"))
    _make_socket(p(b"special", b"sock.png"), info)
    try:
        os.mknod(p(b"special", b"null-device.gif"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        note(p(b"special", b"null-device.gif"))
    except (OSError, AttributeError) as exc:
        info.skipped[os.fsdecode(p(b"special", b"null-device.gif"))] = f"mknod: {exc}"
    sparse = p(b"special", b"sparse-huge.jpg")
    with open(sparse, "wb") as handle:
        handle.write(good[:64])  # a PNG start, then a hole
    os.truncate(sparse, sparse_size)
    note(sparse)
    sparse_small = p(b"special", b"sparse-64mib.png")
    with open(sparse_small, "wb") as handle:
        handle.write(good)
    os.truncate(sparse_small, 64 << 20)  # a valid PNG followed by 64 MiB of hole: under the cap
    note(sparse_small)

    # links
    links = [
        (b"self-loop", b"self-loop"),
        (b"loop-a", b"loop-b"),
        (b"loop-b", b"loop-a"),
        (b"dangling.jpg", b"does-not-exist.jpg"),
        (b"dangling-abs.png", b"/nonexistent/hashmatch/fuzz/x.png"),
        (b"to-parent", b".."),
        (b"to-self-dir", b"."),
        (b"to-root-dir", b"/"),
        (b"to-dev-null.jpg", b"/dev/null"),
        (b"to-image.png", b"../dir.jpg/inside.png"),
        (b"to-fifo.jpg", b"../special/pipe.jpg"),
        (b"to-deep-dir", b"../deep"),
    ]
    for name, target in links:
        os.symlink(target, p(b"links", name))
        note(p(b"links", name))
    os.link(p(b"dir.jpg", b"inside.png"), p(b"links", b"hardlink.png"))
    note(p(b"links", b"hardlink.png"))

    # names
    odd_names = [
        b"new\nline.png", b"carriage\rreturn.png", b"tab\there.png", b"\x1b[31mred\x1b[0m.png",
        b"\x1b]0;title\x07.png", b"bad-utf8-\xff\xfe.png", b"latin1-caf\xe9.png", b"surrogate-\xed\xa0\x80.png",
        b"-rf.png", b"--report=x.png", b" leading-space.png", b"trailing-space.png ", b"x" * 251 + b".png",
        b'{"summary": {}}.png', b"back\\slash.png", b"rtl-\xe2\x80\xaegnp.exe", b"zero-width-\xe2\x80\x8b.png",
        b"quote\"'.png", b"percent%s%n.png",
    ]
    for name in odd_names:
        path = p(b"names", name)
        with open(path, "wb") as handle:
            handle.write(good)
        note(path)
    odd_dir = p(b"names", b"dir-with-\xff-and-\n")
    os.makedirs(odd_dir, exist_ok=True)
    with open(os.path.join(odd_dir, b"inside\x1b.jpg"), "wb") as handle:
        handle.write(b"\xff\xd8\xff" + b"\xff" * 100)
    note(os.path.join(odd_dir, b"inside\x1b.jpg"))

    # permissions (root reads them anyway)
    unreadable = p(b"perm", b"mode-000.png")
    with open(unreadable, "wb") as handle:
        handle.write(good)
    os.chmod(unreadable, 0)
    note(unreadable)
    closed = p(b"perm", b"closed-dir")
    os.makedirs(closed, exist_ok=True)
    with open(os.path.join(closed, b"hidden.png"), "wb") as handle:
        handle.write(good)
    note(os.path.join(closed, b"hidden.png"))
    os.chmod(closed, 0)
    writeonly = p(b"perm", b"mode-200.png")
    with open(writeonly, "wb") as handle:
        handle.write(good)
    os.chmod(writeonly, 0o200)
    note(writeonly)

    # depth
    deep = p(b"deep")
    for i in range(40):
        deep = os.path.join(deep, b"d%d" % i)
    os.makedirs(deep, exist_ok=True)
    with open(os.path.join(deep, b"bottom.png"), "wb") as handle:
        handle.write(good)
    note(os.path.join(deep, b"bottom.png"))
    return info


def restore_permissions(root: str | os.PathLike) -> None:
    """Make a tree from make_tree removable again (chmod 0 folders block rmtree for
    non-root users)."""
    for folder, dirs, _ in os.walk(os.fsencode(os.fspath(root)), followlinks=False):
        for d in dirs:
            path = os.path.join(folder, d)
            if not os.path.islink(path):
                os.chmod(path, 0o700)
    os.chmod(os.fsencode(os.fspath(root)), 0o700)


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lists", help="also write the hash-list seeds here")
    parser.add_argument("--tree", help="also build a hostile folder tree here")
    args = parser.parse_args(argv)
    paths = generate(args.out_dir, args.seed, args.count)
    print(f"{len(paths)} inputs in {args.out_dir}")
    if args.lists:
        print(f"{len(generate_lists(args.lists, args.seed))} hash lists in {args.lists}")
    if args.tree:
        info = make_tree(args.tree, args.seed)
        print(f"tree at {args.tree}: {len(info.created)} entries created, skipped: {info.skipped or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
