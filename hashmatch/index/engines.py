"""Exact nearest-hash matching engines for fixed-length binary codes.

Codes are a C-contiguous uint8 array of shape (N, nbytes): PDQ is 256 bits (32 bytes),
pHash/dHash/aHash are 64 bits (8 bytes). nbytes must be a multiple of 8 (at most 128).
Every engine answers the same question exactly: for each query, every code whose Hamming
distance is <= radius (inclusive), as (ids int64 ascending, distances int32).

Engines
-------
``FlatEngine`` ("flat")
    FAISS ``IndexBinaryFlat`` (one OpenMP thread per calling thread; FAISS's range search is
    strict, so radius + 1 is passed). Without FAISS it falls back to the native popcount
    scan (hashmatch._native.hamming.hamming_range_flat_batch). Holds its own copy of the codes.
``MultiIndexEngine`` ("mih")
    Exact multi-index hashing in the Cython kernel (native/hamming.pyx). The code is cut
    into m chunks of b bits (mih_layout: PDQ 11 x 23 bits, 64-bit codes 4 x 16); each table
    sorts the rows by their chunk behind a directory on the chunk's top P bits and keeps,
    per entry, one uint32 word (row << R) | residue, the residue being the chunk's low
    R = b - P bits, so a probe filters a bucket's entries by residue, in one cache line,
    before fetching any code. A per-query cost model over
    the exact directory counts and a knapsack pick the probe radius of each table
    (pigeonhole: sum(s_t + 1) >= r + 1), and candidates are verified by popcount with the
    codes prefetched. Keeps a reference to the codes (no copy; a numpy memmap works):
    at 10M PDQ codes 32 (codes) + 11 * 4 (one uint32 per entry and table holding the row
    and the residue) + 11 * 4 * 2**21 / N (directories) = 85.2 bytes per entry. A row
    number shares its word with the residue, so N <= 2**(32 - R) (up to 2**31 for PDQ). Immutable
    after build; the
    kernel releases the GIL and allocates its scratch per call, so any number of threads may
    query one engine at once. Do not modify the codes array after building.

``build_engine(codes, "auto", max_radius=r)`` picks "mih" when both hold:

* N >= AUTO_MIH_MIN_ENTRIES (8,192), and
* the probe plan on uniform data touches at most AUTO_MAX_CANDIDATE_FRACTION (5%) of the
  list at max_radius (uniform_probe_fraction: PDQ r=31 0.03%; 64-bit r=10 0.65%;
  64-bit r=20 22%, where a sequential scan wins),

else "flat". Measured on the 2-core AMD EPYC dev box (single queries through range_search,
radius 31, uniform PDQ codes, median of 5 x 500 queries, microseconds per query; scratch
script /tmp/measure_auto.py, numbers copied here):

    N        flat (FAISS)   mih
    1,024       13.8         6.8
    4,096       16.8         7.4
    8,192       20.7         8.2
    16,384      29.3         8.6
    65,536      78.2        13.4

(measured with the earlier 16 x 16-bit layout). MIH answers faster at every size (FAISS
flat pays ~12 us of per-call overhead), but its directories cost a fixed ~1.5 MiB at
least: below 8,192 entries that is over 180 bytes per entry while flat answers in under
21 us, so small lists stay flat.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from math import comb
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hashmatch._native import hamming as _hamming
from hashmatch.config import usable_cores
from hashmatch.errors import ConfigurationError

__all__ = [
    "AUTO_MAX_CANDIDATE_FRACTION", "AUTO_MIH_MIN_ENTRIES", "ENGINE_KINDS", "Engine",
    "FlatEngine", "MultiIndexEngine", "build_engine", "mih_layout", "mih_tables", "uniform_probe_fraction",
]

ENGINE_KINDS = ("auto", "flat", "mih")
AUTO_MIH_MIN_ENTRIES = 8192
AUTO_MAX_CANDIDATE_FRACTION = 0.05
MAX_ENTRIES = 2**32 - 1
MAX_NBYTES = 128

Result = list[tuple[np.ndarray, np.ndarray]]


@runtime_checkable
class Engine(Protocol):
    name: str
    nbytes: int

    def __len__(self) -> int: ...

    def range_search(self, queries: np.ndarray, radius: int) -> Result:
        """For each query row (uint8 (Q, nbytes)), (ids int64 ascending, distances int32) of
        every code with Hamming distance <= radius (inclusive). Exact."""
        ...

    def range_search_flat(self, queries: np.ndarray, radius: int,
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """range_search's answer as FAISS-style arrays (lims int64 (Q+1), ids, dists): query
        i's hits are ids[lims[i]:lims[i + 1]] (the batch path)."""
        ...

    def search_one(self, query: bytes, radius: int) -> list[tuple[int, int]]:
        """One query (nbytes raw bytes): [(id, distance), ...] ascending, the same answer as
        range_search without numpy arrays around it (the lookup path)."""
        ...

    def memory_bytes(self) -> int: ...


# ---------------------------------------------------------------- validation

def _check_codes(codes: object, what: str = "codes") -> np.ndarray:
    if not isinstance(codes, np.ndarray):
        raise ConfigurationError(f"{what} must be a numpy array, not {type(codes).__name__}")
    if codes.dtype != np.uint8:
        raise ConfigurationError(f"{what} must have dtype uint8, not {codes.dtype}")
    if codes.ndim != 2:
        raise ConfigurationError(f"{what} must be 2-D (N, nbytes), not {codes.ndim}-D")
    if not codes.flags.c_contiguous:
        raise ConfigurationError(f"{what} must be C-contiguous")
    nbytes = codes.shape[1]
    if nbytes <= 0 or nbytes % 8 or nbytes > MAX_NBYTES:
        raise ConfigurationError(f"{what}: nbytes must be a positive multiple of 8 up to {MAX_NBYTES}, "
                                 f"not {nbytes}")
    return codes


def _check_radius(radius: object, nbits: int, limit: int, what: str = "radius") -> int:
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)):
        raise ConfigurationError(f"{what} must be an int, not {type(radius).__name__}")
    radius = int(radius)
    if radius < 0 or radius > limit or radius >= nbits:
        raise ConfigurationError(f"{what} {radius} outside 0..{min(limit, nbits - 1)}")
    return radius


def _check_queries(queries: object, nbytes: int) -> np.ndarray:
    queries = _check_codes(queries, "queries")
    if queries.shape[1] != nbytes:
        raise ConfigurationError(f"queries have {queries.shape[1]} bytes per row, the engine {nbytes}")
    return queries


def _check_query_bytes(query: object, nbytes: int) -> bytes:
    if not isinstance(query, bytes):
        raise ConfigurationError(f"query must be bytes, not {type(query).__name__}")
    if len(query) != nbytes:
        raise ConfigurationError(f"query has {len(query)} bytes, the engine {nbytes}")
    return query


def _split(ids: np.ndarray, dists: np.ndarray, lims: np.ndarray) -> Result:
    bounds = lims.tolist()
    return [(ids[a:b], dists[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


# ---------------------------------------------------------------- flat

class FlatEngine:
    """Exhaustive scan: FAISS IndexBinaryFlat, or the native popcount scan without FAISS."""

    name = "flat"

    def __init__(self, codes: np.ndarray, *, max_radius: int, backend: str = "auto"):
        codes = _check_codes(codes)
        self.nbytes = int(codes.shape[1])
        self.nbits = 8 * self.nbytes
        self.max_radius = _check_radius(max_radius, self.nbits, self.nbits - 1, "max_radius")
        self._n = int(codes.shape[0])
        if backend not in ("auto", "faiss", "native"):
            raise ConfigurationError(f"unknown flat backend {backend!r}")
        faiss: Any = None  # the faiss module, when it is used
        if backend != "native":
            try:
                import faiss  # noqa: PLC0415 - optional dependency, kept to this module
            except ImportError:
                if backend == "faiss":
                    raise ConfigurationError("backend 'faiss' needs the faiss-cpu package") from None
        self._faiss = faiss
        if faiss is not None:
            self.backend = "faiss"
            self._index = faiss.IndexBinaryFlat(self.nbits)
            if self._n:
                faiss.omp_set_num_threads(1)
                self._index.add(codes)
            self._codes = None
        else:
            self.backend = "native"
            self._index = None
            self._codes = codes

    def __len__(self) -> int:
        return self._n

    def memory_bytes(self) -> int:
        return self._n * self.nbytes + 256

    def range_search(self, queries: np.ndarray, radius: int) -> Result:
        lims, ids, dists = self.range_search_flat(queries, radius)
        return _split(ids, dists, lims)

    def range_search_flat(self, queries: np.ndarray, radius: int,
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like range_search but returns FAISS-style (lims int64 (Q+1), ids, dists) arrays."""
        queries = _check_queries(queries, self.nbytes)
        radius = _check_radius(radius, self.nbits, self.max_radius)
        nq = queries.shape[0]
        if self._n == 0 or nq == 0:
            return np.zeros(nq + 1, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)
        if self._index is None:
            assert self._codes is not None  # the native backend keeps the codes
            ids, dists, lims = _hamming.hamming_range_flat_batch(self._codes, queries, radius)
            return lims, ids, dists
        self._faiss.omp_set_num_threads(1)  # per calling thread
        lims, dists, ids = self._index.range_search(queries, radius + 1)  # FAISS: strict <
        lims = lims.astype(np.int64)
        order = np.lexsort((ids, np.repeat(np.arange(nq), np.diff(lims))))  # ids ascending per query
        return lims, ids[order].astype(np.int64), dists[order].astype(np.int32)

    def search_one(self, query: bytes, radius: int) -> list[tuple[int, int]]:
        query = _check_query_bytes(query, self.nbytes)
        radius = _check_radius(radius, self.nbits, self.max_radius)
        if self._index is None:
            assert self._codes is not None
            return _hamming.hamming_flat_one(self._codes, query, radius)  # an empty list scans nothing
        [(ids, dists)] = self.range_search(np.frombuffer(query, np.uint8).reshape(1, -1), radius)
        return list(zip(ids.tolist(), dists.tolist()))


# ---------------------------------------------------------------- multi-index

class MultiIndexEngine:
    """Exact multi-index hashing over b-bit chunks with prefix directories (see the module
    docstring). ``prefix_bits`` overrides the directory size P (tests and tuning)."""

    name = "mih"

    def __init__(self, codes: np.ndarray, *, max_radius: int, prefix_bits: int | None = None,
                 tables: tuple[np.ndarray, np.ndarray] | None = None):
        codes = _check_codes(codes)
        if codes.shape[0] > MAX_ENTRIES:
            raise ConfigurationError(f"at most {MAX_ENTRIES} codes (uint32 ids), not {codes.shape[0]}")
        self.nbytes = int(codes.shape[1])
        self.nbits = 8 * self.nbytes
        self.max_radius = _check_radius(max_radius, self.nbits, self.nbits - 1, "max_radius")
        self._n = int(codes.shape[0])
        if tables is not None and prefix_bits is None:  # the layout the tables were built with
            prefix_bits = max(0, int(np.asarray(tables[0]).shape[-1]) - 1).bit_length() - 1
        self.chunk_bits, self.ntables, self.prefix_bits = mih_layout(self.nbytes, self._n, prefix_bits)
        residue_bits = self.chunk_bits - self.prefix_bits
        if self._n > 1 << (32 - residue_bits):  # a row number must fit beside the residue
            raise ConfigurationError(f"at most {1 << (32 - residue_bits)} codes per multi-index engine "
                                     f"with {residue_bits}-bit residues, not {self._n}")
        if tables is None:
            dirs, packed = _build_tables(codes, self.chunk_bits, self.ntables, self.prefix_bits)
        else:  # prebuilt by mih_tables() (a store keeps them beside the codes, checksummed)
            dirs, packed = tables
            want = {"dirs": (self.ntables, (1 << self.prefix_bits) + 1), "packed": (self.ntables, self._n)}
            for name, array in (("dirs", dirs), ("packed", packed)):
                if not (isinstance(array, np.ndarray) and array.dtype == np.uint32 and array.shape == want[name]
                        and array.flags.c_contiguous):
                    raise ConfigurationError(f"prebuilt {name} table does not fit these codes: expected uint32 "
                                             f"{want[name]}, got {getattr(array, 'dtype', type(array))} "
                                             f"{getattr(array, 'shape', '')}")
        for a in (dirs, packed):
            a.setflags(write=False)
        self._codes = codes  # a reference, never a copy
        self._dirs = dirs
        self._packed = packed
        self._masks, self._level_start = _hamming.prefix_masks(self.prefix_bits)

    def __len__(self) -> int:
        return self._n

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(dirs, packed): what mih_tables() returns, to persist beside the codes."""
        return self._dirs, self._packed

    def memory_bytes(self) -> int:
        """Codes + directories + packed (row, residue) words + the prefix-mask list (shared by
        engines with the same P, counted here anyway)."""
        return int(self._codes.nbytes + self._dirs.nbytes + self._packed.nbytes
                   + self._masks.nbytes + self._level_start.nbytes)

    def range_search(self, queries: np.ndarray, radius: int) -> Result:
        return _split(*self._search(queries, radius)[:3])

    def search_one(self, query: bytes, radius: int) -> list[tuple[int, int]]:
        query = _check_query_bytes(query, self.nbytes)
        radius = _check_radius(radius, self.nbits, self.max_radius)
        if self._n == 0:
            return []
        return _hamming.mih_search_one(*self._arrays(), query, radius)

    def range_search_flat(self, queries: np.ndarray, radius: int,
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like range_search but returns FAISS-style (lims int64 (Q+1), ids, dists) arrays."""
        ids, dists, lims, _ = self._search(queries, radius)
        return lims, ids, dists

    def candidates(self, queries: np.ndarray, radius: int) -> int:
        """Total candidates verified for these queries (N for a query answered by a scan)."""
        return int(self._search(queries, radius)[3])

    def plan(self, query: np.ndarray, radius: int) -> tuple[list[int] | None, int]:
        """The probe radius per table (-1: skipped) and the expected candidate count for one
        query, ignoring the scan shortcut; (None, N) when no probe plan exists."""
        q = _check_queries(np.asarray(query).reshape(1, -1), self.nbytes)[0]
        radius = _check_radius(radius, self.nbits, self.max_radius)
        if self._n == 0:
            return [-1] * self.ntables, 0
        return _hamming.mih_plan(*self._arrays(), q, radius)

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        return (self._codes, self._dirs, self._packed, self._masks, self._level_start, self.chunk_bits)

    def _search(self, queries: np.ndarray, radius: int, allow_scan: bool = True):
        queries = _check_queries(queries, self.nbytes)
        radius = _check_radius(radius, self.nbits, self.max_radius)
        return _hamming.mih_range_search(*self._arrays(), queries, radius, allow_scan)


def _build_tables(codes: np.ndarray, b: int, m: int, P: int) -> tuple[np.ndarray, np.ndarray]:
    """The multi-index tables, filled by the kernel in up to usable_cores() threads, each
    on its own range of tables (the kernel releases the GIL)."""
    n = codes.shape[0]
    dirs = np.zeros((m, (1 << P) + 1), np.uint32)
    packed = np.empty((m, n), np.uint32)  # (row << (b - P)) | residue
    threads = max(1, min(usable_cores(), m)) if n >= 100_000 else 1
    bounds = [round(k * m / threads) for k in range(threads + 1)]
    jobs = [(codes, b, P, t0, t1, dirs, packed) for t0, t1 in zip(bounds, bounds[1:])]
    if threads == 1:
        _hamming.fill_tables(*jobs[0])
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="hashmatch-mih-build") as pool:
            for done in [pool.submit(_hamming.fill_tables, *job) for job in jobs]:
                done.result()
    return dirs, packed


def mih_layout(nbytes: int, n: int, prefix_bits: int | None = None) -> tuple[int, int, int]:
    """(chunk bits b, tables m, prefix bits P) of the multi-index for n codes of nbytes.

    b = 16 for codes of up to 128 bits (64-bit codes: 4 tables), else 23 (PDQ: 11 tables over
    bits 0..252). P = ceil(log2 n) - 3 (a directory bucket holds 4-8 entries on uniform
    data), clamped to b - 8 .. min(b, 22) so a residue fits a byte and a directory stays
    <= 16 MiB per table. Measured at 10M uniform PDQ codes, radius 31, single queries,
    interleaved runs (best of 6 x 2,000): P = 17: 449 us, 18: 339, 19: 260, 20: 180 (the
    earlier rule), 21: 153 (this rule; 86 bytes per entry), 22: ~199 in a noisier run at
    96 bytes per entry. Smaller buckets cost more directory reads, larger ones more
    residue scanning."""
    b = 16 if nbytes <= 16 else 23
    m = (8 * nbytes) // b
    lo, hi = b - 8, min(b, 22)
    if prefix_bits is None:
        prefix_bits = max(1, n - 1).bit_length() - 3
    else:
        prefix_bits = int(prefix_bits)
        if not lo <= prefix_bits <= hi:
            raise ConfigurationError(f"prefix_bits {prefix_bits} outside {lo}..{hi}")
    return b, m, min(hi, max(lo, prefix_bits))


# ---------------------------------------------------------------- choice

def uniform_probe_fraction(nbits: int, radius: int) -> float:
    """Fraction of the entries the cheapest exact plan verifies on uniform codes (the
    layout of mih_layout: m tables of b-bit chunks, probe radius s costs V(b, s) / 2**b)."""
    b, m, _ = mih_layout(nbits // 8, 0)
    ball = [sum(comb(b, k) for k in range(s + 1)) / 2.0**b for s in range(b + 1)]
    need = radius + 1
    best = [0.0] + [float("inf")] * need
    for _ in range(m):
        nxt = [float("inf")] * (need + 1)
        for u, cost in enumerate(best):
            if cost == float("inf"):
                continue
            for s in range(-1, b + 1):
                nu = min(need, u + s + 1)
                nxt[nu] = min(nxt[nu], cost + (ball[s] if s >= 0 else 0.0))
        best = nxt
    return min(1.0, best[need])


def mih_tables(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The multi-index tables (dirs, packed) for codes, in the default layout, radius-free:
    build once, store them, and pass them to build_engine(tables=...) to skip the build."""
    codes = _check_codes(codes)
    b, m, P = mih_layout(codes.shape[1], codes.shape[0])
    return _build_tables(codes, b, m, P)


def build_engine(codes: np.ndarray, kind: str = "auto", *, max_radius: int,
                 tables: tuple[np.ndarray, np.ndarray] | None = None) -> Engine:
    """Build an engine over codes (uint8 (N, nbytes), C-contiguous) answering radii up to
    max_radius. kind: "auto" (see the module docstring), "flat" or "mih". `tables`:
    prebuilt multi-index tables from mih_tables(), used when the choice is "mih"."""
    if kind not in ENGINE_KINDS:
        raise ConfigurationError(f"unknown engine kind {kind!r}; expected one of {ENGINE_KINDS}")
    codes = _check_codes(codes)
    nbits = 8 * codes.shape[1]
    max_radius = _check_radius(max_radius, nbits, nbits - 1, "max_radius")
    if kind == "auto":
        small = codes.shape[0] < AUTO_MIH_MIN_ENTRIES
        costly = uniform_probe_fraction(nbits, max_radius) > AUTO_MAX_CANDIDATE_FRACTION
        kind = "flat" if small or costly else "mih"
    if kind == "flat":
        return FlatEngine(codes, max_radius=max_radius)
    return MultiIndexEngine(codes, max_radius=max_radius, tables=tables)
