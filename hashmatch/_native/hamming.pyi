"""Typed stub for the compiled Hamming kernels (native/hamming.pyx). Private: hashmatch.engines
validates every argument before calling in."""
import numpy as np
import numpy.typing as npt

def popcount_impl() -> str: ...
def hamming_range_flat(
    codes: npt.NDArray[np.uint8], query: npt.NDArray[np.uint8], radius: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]: ...
def hamming_range_flat_batch(
    codes: npt.NDArray[np.uint8], queries: npt.NDArray[np.uint8], radius: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...
def hamming_flat_one(codes: npt.NDArray[np.uint8], query: bytes, radius: int) -> list[tuple[int, int]]: ...
def fill_tables(
    codes: npt.NDArray[np.uint8], b: int, P: int, t0: int, t1: int,
    dirs: npt.NDArray[np.uint32], packed: npt.NDArray[np.uint32],
) -> None: ...
def prefix_masks(P: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]: ...
def mih_range_search(
    codes: npt.NDArray[np.uint8],
    dirs: npt.NDArray[np.uint32],
    packed: npt.NDArray[np.uint32],
    masks: npt.NDArray[np.uint32],
    level_start: npt.NDArray[np.uint32],
    b: int,
    queries: npt.NDArray[np.uint8],
    radius: int,
    allow_scan: bool = True,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64], int]: ...
def mih_plan(
    codes: npt.NDArray[np.uint8],
    dirs: npt.NDArray[np.uint32],
    packed: npt.NDArray[np.uint32],
    masks: npt.NDArray[np.uint32],
    level_start: npt.NDArray[np.uint32],
    b: int,
    query: npt.NDArray[np.uint8],
    radius: int,
) -> tuple[list[int] | None, int]: ...
def mih_search_one(
    codes: npt.NDArray[np.uint8],
    dirs: npt.NDArray[np.uint32],
    packed: npt.NDArray[np.uint32],
    masks: npt.NDArray[np.uint32],
    level_start: npt.NDArray[np.uint32],
    b: int,
    query: bytes,
    radius: int,
) -> list[tuple[int, int]]: ...
