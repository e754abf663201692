# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Hamming-distance kernels: popcount verification and the multi-index probe (placeholder)."""
