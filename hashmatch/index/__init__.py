"""Exact Hamming search over fixed-length binary codes: FAISS's flat index and the native
multi-index, behind one ``Engine`` interface (engines.py). Knows codes and radii, not lists,
stores or signal types; FAISS is imported nowhere else.

The store (the layer above) persists the multi-index tables this package builds
(``mih_tables``), so a store opened from disk needs no rebuild.

May import: hashmatch._native, hashmatch.errors, hashmatch.config.
"""
