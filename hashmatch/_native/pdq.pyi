"""Typed stub for the compiled PDQ kernel (native/pdq.pyx). Private: use hashmatch.Hasher."""
import numpy as np
import numpy.typing as npt

LUMA_PDQHASH: int
LUMA_CPP_RGB: int
LUMA_CPP_GREY: int
NUM_DIHEDRAL: int
MIN_HASHABLE_DIM: int

def pdq_hash(
    pixels: npt.NDArray[np.uint8], luma_mode: int, skip_filter_at_64: bool, out: npt.NDArray[np.uint8]
) -> int: ...
