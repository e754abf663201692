# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Hamming-distance kernels: a brute-force popcount scan and exact multi-index hashing (MIH).

Private module; hashmatch/engines.py validates every argument before calling in (there is
no validation here: shapes, dtypes, contiguity and radius ranges are the caller's job).

Codes are fixed-length binary strings stored as a C-contiguous uint8 array (N, nbytes),
nbytes a multiple of 8. Ids are uint32 row numbers, so N <= 2**32 - 1. Bit i of a code is
bit (i % 64) of its little-endian 64-bit word i / 64.

Multi-index layout (build_tables): the code is split into m chunks of b bits (b = 23 and
m = 11 for 256-bit PDQ codes, bits 0..252; b = 16 and m = 4 for 64-bit codes); chunk t is
bits t*b .. t*b + b - 1. Table t sorts the rows by their chunk t: the key's top P bits (the
"prefix") index a directory ``dirs[t, p] .. dirs[t, p+1]`` (CSR offsets, uint32, 2**P + 1
per table) and, per entry, ``packed[t, i]`` = (row << R) | residue, one uint32 holding the
row number and the low R = b - P key bits (the "residue"), so a bucket is one contiguous
run of words (N <= 2**(32 - R): up to 2**31 for PDQ). P is chosen from N (a directory bucket holds ~4-8 rows
on uniform data) with R <= 8. ``masks`` (2**P uint32) lists the prefix XOR masks by
popcount: masks[level_start[d] .. level_start[d+1]) all have popcount d. Built by a
counting sort on the prefix in O(N * m) without the GIL; order inside a bucket is by row.

Query (mih_range_search), exact by the generalised pigeonhole principle: if d(q, x) <= r and
table t is probed with radius s_t (every key within s_t of the query's chunk t; s_t = -1
skips the table), every x within r is a candidate as soon as sum_t (s_t + 1) >= r + 1,
because otherwise every chunk distance d_t >= s_t + 1 would add up to more than r. Probing
table t at radius s visits every prefix p at distance dp <= s of the query's prefix and, in
that bucket, keeps the entries whose residue is within s - dp of the query's residue (the
chunk distance is exactly dp + the residue distance). Per query, the directory gives the
number of entries at each prefix distance of each table; a cost model (random bucket
visits, residue bytes scanned, expected code fetches) and a small knapsack (DP over tables,
r + 1 units) pick the s_t. Bucket words (first and last line) are prefetched a few buckets ahead; the
surviving candidates are verified with a full popcount while the code HM_PREFETCH candidates
ahead is prefetched (the code fetches are random accesses: memory-level parallelism decides
the speed). A match found in table t is reported only if no earlier probed table j would
also have found it (d_j > s_j for every j < t): every match is reported exactly once, with
no hash set and no bitmap. When the plan costs more than a sequential scan of the list (or
no plan can satisfy the pigeonhole bound) the scan is used instead (same result).

Everything that runs without the GIL allocates its own scratch per call, so one index can
serve any number of threads at once.
"""
import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset



cdef extern from "hamming_kernels.h":
    ctypedef struct hm_vec:
        uint64_t *data
        size_t len
        size_t cap
    ctypedef struct hm_mih:
        const uint8_t *codes
        uint64_t n
        int nbytes
        int nw
        int m
        int b
        int P
        int R
        const uint32_t *dirs
        const uint32_t *packed
        const uint32_t *masks
        const uint32_t *level_start
    ctypedef struct hm_qstate:
        pass
    void hm_init()
    const char *hm_popcount_impl()
    uint32_t hm_chunk(const uint64_t *w, int bit, int b) nogil
    void hm_words(const uint8_t *p, int nw, uint64_t *w) nogil
    int hm_scan(const uint8_t *codes, uint64_t n, int nbytes, const uint8_t *q, int r, hm_vec *out) nogil
    int hm_mih_query(const hm_mih *ix, const uint8_t *q, int r, int allow_scan, hm_vec *out, uint64_t *stats) nogil
    double hm_plan_query(const hm_mih *ix, const uint8_t *q, int r, int allow_scan, hm_qstate *st,
                         signed char *s, double *cands) nogil
    double HM_PLAN_SCAN


hm_init()


def popcount_impl() -> str:
    """Which popcount the kernels use: "popcnt" (instruction, chosen at run time), "swar" or
    "builtin"."""
    return hm_popcount_impl().decode()


cdef object _unpack(hm_vec *vec, int64_t *lims, Py_ssize_t nq):
    """Packed (id << 32 | dist) -> (ids int64, dists int32, lims int64); frees vec."""
    cdef Py_ssize_t total = vec.len, i
    ids = np.empty(total, dtype=np.int64)
    dists = np.empty(total, dtype=np.int32)
    lims_arr = np.empty(nq + 1, dtype=np.int64)
    cdef int64_t[::1] iv = ids
    cdef int32_t[::1] dv = dists
    cdef int64_t[::1] lv = lims_arr
    with nogil:
        for i in range(total):
            iv[i] = <int64_t>(vec.data[i] >> 32)
            dv[i] = <int32_t>(vec.data[i] & 0xffffffffu)
        for i in range(nq + 1):
            lv[i] = lims[i]
    free(vec.data)
    vec.data = NULL
    return ids, dists, lims_arr


def hamming_range_flat_batch(const uint8_t[:, ::1] codes, const uint8_t[:, ::1] queries, int radius):
    """Brute-force scan: for every query row, every code with distance <= radius (inclusive).
    Returns (ids int64, dists int32, lims int64 of length Q + 1); the matches of query i are
    ids[lims[i]:lims[i+1]], ascending."""
    cdef uint64_t n = <uint64_t>codes.shape[0]
    cdef int nbytes = <int>codes.shape[1]
    cdef Py_ssize_t nq = queries.shape[0], i
    cdef hm_vec vec
    vec.data = NULL
    vec.len = 0
    vec.cap = 0
    cdef int64_t *lims = <int64_t *>malloc(sizeof(int64_t) * (nq + 1))
    if lims == NULL:
        raise MemoryError()
    cdef int err = 0
    cdef const uint8_t *base = &codes[0, 0] if n > 0 else NULL
    with nogil:
        lims[0] = 0
        for i in range(nq):
            if n > 0 and hm_scan(base, n, nbytes, &queries[i, 0], radius, &vec):
                err = 1
                break
            lims[i + 1] = <int64_t>vec.len
    try:
        if err:
            free(vec.data)
            raise MemoryError()
        return _unpack(&vec, lims, nq)
    finally:
        free(lims)


cdef list _pairs(hm_vec *vec):
    """Packed (id << 32 | dist) -> [(id, dist), ...] in id order; frees vec. One query's
    few matches as Python ints: no numpy arrays to build and slice per query."""
    cdef size_t i
    cdef list out = [(<int64_t>(vec.data[i] >> 32), <int32_t>(vec.data[i] & 0xffffffffu)) for i in range(vec.len)]
    free(vec.data)
    vec.data = NULL
    return out


def hamming_flat_one(const uint8_t[:, ::1] codes, const uint8_t[::1] query, int radius):
    """Brute-force scan for one query (a bytes object works): [(id, dist), ...] ascending."""
    cdef uint64_t n = <uint64_t>codes.shape[0]
    cdef int nbytes = <int>codes.shape[1]
    cdef hm_vec vec
    vec.data = NULL
    vec.len = 0
    vec.cap = 0
    cdef int err = 0
    if n > 0:
        with nogil:
            err = hm_scan(&codes[0, 0], n, nbytes, &query[0], radius, &vec)
    if err:
        free(vec.data)
        raise MemoryError()
    return _pairs(&vec)


def hamming_range_flat(codes, query, int radius):
    """Brute-force scan for one query: (ids int64 ascending, dists int32) with distance <= radius."""
    ids, dists, _ = hamming_range_flat_batch(codes, np.asarray(query).reshape(1, -1), radius)
    return ids, dists


_MASKS = {}


def prefix_masks(int P):
    """The 2**P prefix XOR masks ordered by popcount (then value), uint32, and level_start
    (uint32, P + 2): masks[level_start[d]:level_start[d+1]] have popcount d. Cached, read-only."""
    got = _MASKS.get(P)
    if got is None:
        keys = np.arange(1 << P, dtype=np.uint32)
        pc = np.bitwise_count(keys)
        order = np.argsort(pc, kind="stable")
        masks = np.ascontiguousarray(keys[order])
        level_start = np.searchsorted(pc[order], np.arange(P + 2)).astype(np.uint32)
        masks.setflags(write=False)
        level_start.setflags(write=False)
        got = _MASKS.setdefault(P, (masks, level_start))
    return got


def fill_tables(const uint8_t[:, ::1] codes, int b, int P, int t0, int t1,
                uint32_t[:, ::1] dirs, uint32_t[:, ::1] packed):
    """Build tables t0 .. t1 - 1 of the multi-index (see the module docstring) into
    dirs (m, 2**P + 1, zeroed) and packed (m, N: (row << R) | residue, R = b - P; the
    caller guarantees N <= 2**(32 - R)), without the GIL, one table at a
    time (one counting pass and one scatter pass over the codes each: a single random
    write stream stays in cache far better than m at once). Disjoint table ranges may be
    filled from several threads at once."""
    cdef Py_ssize_t n = codes.shape[0], x
    cdef int nw = <int>codes.shape[1] // 8
    cdef int t
    cdef int R = b - P
    cdef Py_ssize_t k, nkeys = (<Py_ssize_t>1) << P
    cdef uint32_t *pos
    cdef uint64_t w[16]
    cdef uint32_t c, rmask = (1u << R) - 1, i
    if n == 0 or t0 >= t1:
        return
    pos = <uint32_t *>malloc(sizeof(uint32_t) * nkeys)
    if pos == NULL:
        raise MemoryError()
    try:
        with nogil:
            for t in range(t0, t1):
                for x in range(n):
                    hm_words(&codes[x, 0], nw, w)
                    c = hm_chunk(w, t * b, b)
                    dirs[t, (c >> R) + 1] += 1
                for k in range(1, nkeys + 1):
                    dirs[t, k] += dirs[t, k - 1]
                memcpy(pos, &dirs[t, 0], sizeof(uint32_t) * nkeys)
                for x in range(n):
                    hm_words(&codes[x, 0], nw, w)
                    c = hm_chunk(w, t * b, b)
                    i = pos[c >> R]
                    pos[c >> R] = i + 1
                    packed[t, i] = (<uint32_t>x << R) | (c & rmask)
    finally:
        free(pos)


cdef void _mih_init(hm_mih *ix, const uint8_t[:, ::1] codes, const uint32_t[:, ::1] dirs,
                    const uint32_t[:, ::1] packed,
                    const uint32_t[::1] masks, const uint32_t[::1] level_start, int b) noexcept:
    ix.n = <uint64_t>codes.shape[0]
    ix.nbytes = <int>codes.shape[1]
    ix.nw = ix.nbytes // 8
    ix.b = b
    ix.m = (8 * ix.nbytes) // b
    ix.P = <int>level_start.shape[0] - 2
    ix.R = b - ix.P
    ix.codes = &codes[0, 0] if ix.n > 0 else NULL
    ix.dirs = &dirs[0, 0]
    ix.packed = &packed[0, 0] if ix.n > 0 else NULL
    ix.masks = &masks[0]
    ix.level_start = &level_start[0]


def mih_range_search(const uint8_t[:, ::1] codes, const uint32_t[:, ::1] dirs,
                     const uint32_t[:, ::1] packed,
                     const uint32_t[::1] masks, const uint32_t[::1] level_start, int b,
                     const uint8_t[:, ::1] queries, int radius, bint allow_scan=True):
    """Exact multi-index range search, all queries in one call without the GIL.
    allow_scan=False forbids the sequential-scan shortcut unless no plan exists (tests use it
    to exercise the probe on small lists). Returns (ids int64, dists int32, lims int64 (Q + 1),
    candidates verified (N for a scanned query), summed over the queries)."""
    cdef hm_mih ix
    _mih_init(&ix, codes, dirs, packed, masks, level_start, b)
    cdef Py_ssize_t nq = queries.shape[0], i
    cdef hm_vec vec
    vec.data = NULL
    vec.len = 0
    vec.cap = 0
    cdef uint64_t cands = 0
    cdef int err = 0
    cdef int64_t *lims = <int64_t *>malloc(sizeof(int64_t) * (nq + 1))
    if lims == NULL:
        raise MemoryError()
    with nogil:
        lims[0] = 0
        for i in range(nq):
            if hm_mih_query(&ix, &queries[i, 0], radius, allow_scan, &vec, &cands):
                err = 1
                break
            lims[i + 1] = <int64_t>vec.len
    try:
        if err:
            free(vec.data)
            raise MemoryError()
        out_ids, out_d, out_lims = _unpack(&vec, lims, nq)
        return out_ids, out_d, out_lims, cands
    finally:
        free(lims)


def mih_search_one(const uint8_t[:, ::1] codes, const uint32_t[:, ::1] dirs,
                   const uint32_t[:, ::1] packed,
                   const uint32_t[::1] masks, const uint32_t[::1] level_start, int b,
                   const uint8_t[::1] query, int radius):
    """One query (a bytes object works) through the multi-index, without the GIL:
    [(id, dist), ...] ascending. The single-query path of a lookup (Matcher): the same
    search as mih_range_search with no numpy arrays built around it."""
    cdef hm_mih ix
    _mih_init(&ix, codes, dirs, packed, masks, level_start, b)
    cdef hm_vec vec
    vec.data = NULL
    vec.len = 0
    vec.cap = 0
    cdef int err
    with nogil:
        err = hm_mih_query(&ix, &query[0], radius, 1, &vec, NULL)
    if err:
        free(vec.data)
        raise MemoryError()
    return _pairs(&vec)


def mih_plan(const uint8_t[:, ::1] codes, const uint32_t[:, ::1] dirs,
             const uint32_t[:, ::1] packed,
             const uint32_t[::1] masks, const uint32_t[::1] level_start, int b,
             const uint8_t[::1] query, int radius):
    """The probe plan for one query, without the scan shortcut: (s_t per table, -1 = skipped,
    or None when only a scan can answer; expected candidate count)."""
    cdef hm_mih ix
    _mih_init(&ix, codes, dirs, packed, masks, level_start, b)
    cdef hm_qstate *st = <hm_qstate *>malloc(sizeof(hm_qstate))
    cdef signed char s[64]
    cdef double total, cands = 0
    if st == NULL:
        raise MemoryError()
    with nogil:
        total = hm_plan_query(&ix, &query[0], radius, 0, st, s, &cands)
    free(st)
    if total < 0:
        raise MemoryError()
    if total >= HM_PLAN_SCAN:
        return None, int(ix.n)
    return [int(s[t]) for t in range(ix.m)], int(round(cands))
