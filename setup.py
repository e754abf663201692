"""Declares the Cython extensions; all other metadata lives in pyproject.toml.

HASHMATCH_SANITIZE=1 builds the kernels with AddressSanitizer and UBSan (for
fuzzing and CI debugging); run Python with LD_PRELOAD=$(gcc -print-file-name=libasan.so).
"""
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

# -ffp-contract=off: the hashes must equal the reference tools bit for bit, so
# the compiler may never fuse a*b+c into one FMA (that changes float rounding).
# No -ffast-math for the same reason.
compile_args = [] if sys.platform == "win32" else ["-O3", "-ffp-contract=off", "-fno-fast-math"]
link_args = []
if os.environ.get("HASHMATCH_SANITIZE"):
    compile_args += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1"]
    link_args += ["-fsanitize=address,undefined"]


def kernel(name: str) -> Extension:
    return Extension(
        f"hashmatch._native.{name}",
        [f"native/{name}.pyx"],
        include_dirs=["native"],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )


setup(
    ext_modules=cythonize(
        [kernel("pdq"), kernel("dct_hashes"), kernel("hamming")],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
