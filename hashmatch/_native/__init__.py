"""The compiled kernels (Cython, built from ``native/*.pyx`` at install time): the bottom layer.

    pdq          PDQ (Meta's 256-bit image hash): float DCT, quality, dihedral variants
    dct_hashes   pHash, dHash and aHash, bit for bit as imagehash computes them
    hamming      popcount scans and the multi-index probe (nogil; any number of threads)

Private: each is called only through the validating wrapper that owns it (signals/pdq.py,
signals/imagehash_family.py, video/vpdq.py, index/engines.py); a kernel trusts its arguments.
May import: nothing of hashmatch.
"""
