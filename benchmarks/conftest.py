"""Shared fixtures for the benchmark suite.

The benchmarks are not part of the default test run (pyproject's testpaths is
["tests"]); run them explicitly:

    pytest benchmarks/ --benchmark-json=/tmp/bench.json -q
    python benchmarks/ratios.py /tmp/bench.json

Naming convention, read by ratios.py: in every benchmark group the function under test
is ``test_hashmatch_*`` and the reference it is compared against is ``test_peer_*`` (another
library) or ``test_baseline_*`` (hashmatch itself in a reference configuration, e.g. one
thread).

All images are benign and generated here: seeded numpy noise over smooth gradients with
shapes drawn by PIL.ImageDraw, saved as JPEG quality 90 into a session tmp folder. Nothing
is downloaded. Generation happens once per session, outside any timed region.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

SMALL_SIZE = (1024, 768)  # (width, height)
LARGE_SIZE = (4032, 3024)  # a 12 MP phone photo
JPEG_QUALITY = 90
NOISE_SIGMA = 10.0  # grey levels; fixed up front, not tuned to any target
N_SET = 20  # files in the single-thread decode/hash set and the imagehash set
N_BATCH = 40  # inputs in the threads batch


def synthetic_rgb(width: int, height: int, seed: int) -> np.ndarray:
    """A benign (height, width, 3) uint8 picture: smooth per-channel gradients, a dozen
    shapes drawn with ImageDraw, then seeded Gaussian noise. Deterministic per seed."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    planes = []
    for _ in range(3):
        fx, fy = rng.uniform(0.3, 2.5, 2)
        px, py = rng.uniform(0.0, 2 * math.pi, 2)
        plane = 127.5 + 55.0 * np.sin(2 * math.pi * fx * x + px) + 55.0 * np.cos(2 * math.pi * fy * y + py)
        planes.append(plane)
    gradient = np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)

    canvas = Image.fromarray(gradient, "RGB")
    draw = ImageDraw.Draw(canvas)
    side = min(width, height)

    def colour() -> tuple[int, int, int]:
        return tuple(int(c) for c in rng.integers(0, 256, 3))

    def box() -> list[float]:
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        w, h = rng.uniform(0.05, 0.35, 2) * side
        return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]

    for _ in range(12):
        kind = int(rng.integers(0, 4))
        if kind == 0:
            draw.ellipse(box(), fill=colour())
        elif kind == 1:
            draw.rectangle(box(), fill=colour(), outline=colour(), width=max(1, side // 200))
        elif kind == 2:
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            r = rng.uniform(0.05, 0.25) * side
            angles = np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(3, 7))))
            draw.polygon([(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles], fill=colour())
        else:
            points = [(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(2)]
            draw.line(points, fill=colour(), width=max(1, int(rng.uniform(0.005, 0.02) * side)))

    pixels = np.asarray(canvas, dtype=np.float32)
    pixels += rng.normal(0.0, NOISE_SIGMA, pixels.shape).astype(np.float32)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_jpeg(folder: Path, name: str, width: int, height: int, seed: int) -> Path:
    path = folder / name
    Image.fromarray(synthetic_rgb(width, height, seed), "RGB").save(path, "JPEG", quality=JPEG_QUALITY)
    return path


def load_rgb(path: Path) -> Image.Image:
    """Open and fully decode a file (what a caller holding a PIL image has)."""
    image = Image.open(path)
    image.load()
    assert image.mode == "RGB"
    return image


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hashmatch-bench-images")


@pytest.fixture(scope="session")
def jpeg_files(bench_dir: Path) -> list[Path]:
    """N_BATCH distinct 1024x768 JPEG files (quality 90)."""
    width, height = SMALL_SIZE
    return [write_jpeg(bench_dir, f"small_{i:02d}.jpg", width, height, seed=i) for i in range(N_BATCH)]


@pytest.fixture(scope="session")
def jpeg_set(jpeg_files: list[Path]) -> list[Path]:
    """The first N_SET of the 1024x768 JPEG files."""
    return jpeg_files[:N_SET]


@pytest.fixture(scope="session")
def jpeg_batch_bytes(jpeg_files: list[Path]) -> list[bytes]:
    """All N_BATCH files as encoded JPEG bytes held in memory (decoded during hashing)."""
    return [p.read_bytes() for p in jpeg_files]


@pytest.fixture(scope="session")
def pil_set(jpeg_set: list[Path]) -> list[Image.Image]:
    """The N_SET files opened and decoded by Pillow, shared by imagehash and hashmatch."""
    return [load_rgb(p) for p in jpeg_set]


@pytest.fixture(scope="session")
def rgb_small(jpeg_set: list[Path]) -> np.ndarray:
    """One decoded 1024x768 RGB uint8 array (768, 1024, 3), C-contiguous."""
    return np.ascontiguousarray(np.asarray(load_rgb(jpeg_set[0])))


@pytest.fixture(scope="session")
def rgb_large(bench_dir: Path) -> np.ndarray:
    """One decoded 4032x3024 RGB uint8 array (3024, 4032, 3), C-contiguous."""
    width, height = LARGE_SIZE
    path = write_jpeg(bench_dir, "large.jpg", width, height, seed=1000)
    return np.ascontiguousarray(np.asarray(load_rgb(path)))


@pytest.fixture(scope="session")
def make_jpegs():
    """make_jpegs(folder, n, first_seed) -> n distinct 1024x768 JPEG files (quality 90)."""
    def make(folder: Path, n: int, first_seed: int = 0) -> list[Path]:
        width, height = SMALL_SIZE
        return [write_jpeg(folder, f"img_{i:05d}.jpg", width, height, seed=first_seed + i) for i in range(n)]
    return make
