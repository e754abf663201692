# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Hamming-distance kernels: a brute-force popcount scan and exact multi-index hashing (MIH).

Private module; hashmatch/engines.py validates every argument before calling in (there is
no validation here: shapes, dtypes, contiguity and radius ranges are the caller's job).

Codes are fixed-length binary strings stored as a C-contiguous uint8 array (N, nbytes),
nbytes a multiple of 8. Ids are uint32 row numbers, so N <= 2**32 - 1.

Multi-index layout (build_tables): the code is split into m = nbytes / 2 chunks of 16 bits;
chunk t of a row is the little-endian uint16 made of bytes 2t (low) and 2t+1 (high). Table t
is a CSR index over the 65536 chunk values: ``offsets[t, k] .. offsets[t, k+1]`` delimit the
ids (row numbers, ascending) whose chunk t equals k, in ``ids[t, :]``. Built by a counting
sort in O(N * m) without the GIL.

Query (mih_range_search), exact by the generalised pigeonhole principle: if d(q, x) <= r and
table t is probed with radius s_t (every key within s_t of the query's chunk t; s_t = -1
skips the table), every x within r is a candidate as soon as sum_t (s_t + 1) >= r + 1,
because otherwise every chunk distance d_t >= s_t + 1 would add up to more than r. Per query
the exact candidate count of each (table, s) pair is read from the offsets and a small
knapsack (DP over tables, r + 1 units) picks the s_t with the fewest candidates. Candidates
are gathered (bucket ids are read sequentially) and verified with a full popcount while the
code HM_PREFETCH candidates ahead is prefetched: the code fetches are random accesses and
dominate, so memory-level parallelism decides the speed. A match found in table t is
reported only if no earlier probed table j would also have found it (d_j > s_j for every
j < t): every match is reported exactly once, with no hash set and no bitmap. When the plan
would touch more candidates than a quarter of the list, a sequential scan is cheaper and is
used instead (same result).

Everything that runs without the GIL allocates its own scratch per call, so one index can
serve any number of threads at once.
"""
import numpy as np

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy



cdef extern from *:
    """
    #include <stdint.h>
    #include <stdlib.h>
    #include <string.h>

    #define HM_NKEYS 65536
    #define HM_MAX_TABLES 64     /* nbytes <= 128 */
    #define HM_MAX_LEVEL 16
    #define HM_LEVEL_EXTRA 2     /* levels above the minimum tried on skewed queries */
    /* Verification prefetches the code of candidate j + HM_PREFETCH while checking j. Measured
       at 10M uniform PDQ codes, radius 31 (41.5k candidates/query), single query, this box:
       D=8 731 us, 16 639 us, 32 567 us, 64 533 us, 128 558 us. A random code fetch costs
       ~10.5 ns at best here (scratch C loop, aligned codes), so ~440 us is the floor. */
    #define HM_PREFETCH 64
    #define HM_SEGMENT 4096      /* candidates gathered per verification pass */

    typedef struct { uint64_t *data; size_t len, cap; } hm_vec;

    static int hm_vec_reserve(hm_vec *v, size_t extra) {
        if (v->len + extra <= v->cap) return 0;
        size_t cap = v->cap ? v->cap : 256;
        while (cap < v->len + extra) cap *= 2;
        uint64_t *p = (uint64_t *)realloc(v->data, cap * sizeof(uint64_t));
        if (!p) return -1;
        v->data = p; v->cap = cap;
        return 0;
    }

    /* (id << 32) | dist: sorting the packed values sorts by id. */
    #define HM_PUSH(v, id, d) do { \\
        if ((v)->len == (v)->cap && hm_vec_reserve((v), 1)) return -1; \\
        (v)->data[(v)->len++] = ((uint64_t)(id) << 32) | (uint32_t)(d); } while (0)

    static inline uint64_t hm_load64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

    static inline int hm_pc64_swar(uint64_t x) {
        x = x - ((x >> 1) & 0x5555555555555555ULL);
        x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
        x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
        return (int)((x * 0x0101010101010101ULL) >> 56);
    }

    /* Keys of a 16-bit chunk ordered by the popcount of their XOR mask:
       masks[level_start[s] .. level_start[s+1]) all have popcount s. */
    static uint16_t hm_masks[HM_NKEYS];
    static uint32_t hm_level_start[HM_MAX_LEVEL + 2];
    static uint8_t hm_pc8[256];

    static void hm_init_tables(void) {
        uint32_t count[HM_MAX_LEVEL + 2];
        int i;
        for (i = 0; i < 256; i++) hm_pc8[i] = (uint8_t)hm_pc64_swar((uint64_t)i);
        memset(count, 0, sizeof(count));
        for (i = 0; i < HM_NKEYS; i++) count[hm_pc64_swar((uint64_t)i) + 1]++;
        hm_level_start[0] = 0;
        for (i = 1; i <= HM_MAX_LEVEL + 1; i++) hm_level_start[i] = hm_level_start[i - 1] + count[i];
        uint32_t pos[HM_MAX_LEVEL + 1];
        for (i = 0; i <= HM_MAX_LEVEL; i++) pos[i] = hm_level_start[i];
        for (i = 0; i < HM_NKEYS; i++) hm_masks[pos[hm_pc64_swar((uint64_t)i)]++] = (uint16_t)i;
    }

    static inline uint32_t hm_chunk(const uint8_t *code, int t) {
        return (uint32_t)code[2 * t] | ((uint32_t)code[2 * t + 1] << 8);
    }

    typedef struct {
        const uint8_t *codes;     /* n x nbytes, not owned */
        uint64_t n;
        int nbytes;
        int m;                    /* tables = nbytes / 2 */
        const uint32_t *offsets;  /* m x (HM_NKEYS + 1) */
        const uint32_t *ids;      /* m x n */
    } hm_mih;

    /* Prefetch the line holding the start of the code; the second line of a straddling code
       only when the first holds fewer than 16 of its bytes (see hm_verify). */
    static inline void hm_prefetch_code(const uint8_t *p, int nb) {
        int off = (int)((uintptr_t)p & 63);
        __builtin_prefetch(p, 0, 3);
        if (off + nb > 64 && 64 - off < 16) __builtin_prefetch(p + nb - 1, 0, 3);
    }

    /* ---- distance kernels, compiled twice: with the popcnt instruction (chosen at run
       time when the CPU has it) and with a portable SWAR popcount. ---- */

    #define HM_DIST_BODY(POP, q, x, nbytes, out) do { \\
        if ((nbytes) == 32) { \\
            out = POP(hm_load64(q) ^ hm_load64(x)) + POP(hm_load64((q) + 8) ^ hm_load64((x) + 8)) \\
                + POP(hm_load64((q) + 16) ^ hm_load64((x) + 16)) + POP(hm_load64((q) + 24) ^ hm_load64((x) + 24)); \\
        } else if ((nbytes) == 8) { \\
            out = POP(hm_load64(q) ^ hm_load64(x)); \\
        } else { \\
            int w_; out = 0; \\
            for (w_ = 0; w_ < (nbytes); w_ += 8) out += POP(hm_load64((q) + w_) ^ hm_load64((x) + w_)); \\
        } } while (0)

    #define HM_DEFINE_KERNELS(SUFFIX, ATTR, POP) \\
    ATTR static int hm_scan_##SUFFIX(const uint8_t *codes, uint64_t n, int nbytes, \\
                                     const uint8_t *q, int r, hm_vec *out) { \\
        uint64_t i; int d; \\
        if (nbytes == 32) { \\
            for (i = 0; i < n; i++) { HM_DIST_BODY(POP, q, codes + i * 32, 32, d); \\
                if (d <= r) HM_PUSH(out, i, d); } \\
        } else if (nbytes == 8) { \\
            for (i = 0; i < n; i++) { HM_DIST_BODY(POP, q, codes + i * 8, 8, d); \\
                if (d <= r) HM_PUSH(out, i, d); } \\
        } else { \\
            for (i = 0; i < n; i++) { HM_DIST_BODY(POP, q, codes + i * (uint64_t)nbytes, nbytes, d); \\
                if (d <= r) HM_PUSH(out, i, d); } \\
        } \\
        return 0; \\
    } \\
    /* Verify one batch. A code that straddles two cache lines is first checked on the words \
       of the line that was prefetched: a non-match (almost every candidate) is rejected there \
       without touching the second line. Then keep x only if no earlier probed table found it. */ \
    ATTR static int hm_verify_##SUFFIX(const hm_mih *ix, const uint8_t *q, int r, \
                                       const signed char *s, const uint32_t *cand, \
                                       const uint8_t *tab, int len, int D, hm_vec *out) { \
        const int nb = ix->nbytes, nw = nb >> 3; int j, d, w; \
        for (j = 0; j < len && j < D; j++) hm_prefetch_code(ix->codes + (uint64_t)cand[j] * nb, nb); \
        for (j = 0; j < len; j++) { \
            if (j + D < len) hm_prefetch_code(ix->codes + (uint64_t)cand[j + D] * nb, nb); \
            const uint8_t *x = ix->codes + (uint64_t)cand[j] * nb; \
            int off = (int)((uintptr_t)x & 63); \
            if (off + nb <= 64) { \
                HM_DIST_BODY(POP, q, x, nb, d); \
            } else { \
                int first = (64 - off) >> 3; \
                d = 0; \
                for (w = 0; w < first; w++) d += POP(hm_load64(q + 8 * w) ^ hm_load64(x + 8 * w)); \
                if (d > r) continue; \
                for (; w < nw; w++) d += POP(hm_load64(q + 8 * w) ^ hm_load64(x + 8 * w)); \
            } \
            if (d > r) continue; \
            int t, dup = 0; \
            for (t = 0; t < tab[j]; t++) { \
                if (s[t] < 0) continue; \
                int dt = hm_pc8[q[2 * t] ^ x[2 * t]] + hm_pc8[q[2 * t + 1] ^ x[2 * t + 1]]; \
                if (dt <= s[t]) { dup = 1; break; } \
            } \
            if (!dup) HM_PUSH(out, cand[j], d); \
        } \
        return 0; \
    }

    #define HM_POP_BUILTIN(x) __builtin_popcountll(x)
    #if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    #define HM_HAVE_DISPATCH 1
    HM_DEFINE_KERNELS(popcnt, __attribute__((target("popcnt"))), HM_POP_BUILTIN)
    HM_DEFINE_KERNELS(generic, , hm_pc64_swar)
    #else
    #define HM_HAVE_DISPATCH 0
    HM_DEFINE_KERNELS(generic, , HM_POP_BUILTIN)
    #endif

    static int hm_use_popcnt = 0;

    static void hm_init(void) {
        hm_init_tables();
    #if HM_HAVE_DISPATCH
        __builtin_cpu_init();
        hm_use_popcnt = __builtin_cpu_supports("popcnt") ? 1 : 0;
    #endif
    }

    static const char *hm_popcount_impl(void) {
    #if HM_HAVE_DISPATCH
        return hm_use_popcnt ? "popcnt" : "swar";
    #else
        return "builtin";
    #endif
    }

    static int hm_scan(const uint8_t *codes, uint64_t n, int nbytes, const uint8_t *q, int r, hm_vec *out) {
    #if HM_HAVE_DISPATCH
        if (hm_use_popcnt) return hm_scan_popcnt(codes, n, nbytes, q, r, out);
    #endif
        return hm_scan_generic(codes, n, nbytes, q, r, out);
    }

    static int hm_verify(const hm_mih *ix, const uint8_t *q, int r, const signed char *s,
                         const uint32_t *cand, const uint8_t *tab, int len, int D, hm_vec *out) {
    #if HM_HAVE_DISPATCH
        if (hm_use_popcnt) return hm_verify_popcnt(ix, q, r, s, cand, tab, len, D, out);
    #endif
        return hm_verify_generic(ix, q, r, s, cand, tab, len, D, out);
    }

    /* ---- probe planning ---- */

    /* cost[t * (HM_MAX_LEVEL + 1) + s] = candidates of table t probed at radius s
       (cumulative over levels 0..s); levels up to *have are filled. */
    static void hm_cost_levels(const hm_mih *ix, const uint32_t *qc, uint64_t *cost, int from, int to) {
        int t, s;
        uint32_t i;
        for (t = 0; t < ix->m; t++) {
            const uint32_t *off = ix->offsets + (size_t)t * (HM_NKEYS + 1);
            uint64_t acc = from > 0 ? cost[t * (HM_MAX_LEVEL + 1) + from - 1] : 0;
            for (s = from; s <= to; s++) {
                for (i = hm_level_start[s]; i < hm_level_start[s + 1]; i++) {
                    uint32_t k = qc[t] ^ hm_masks[i];
                    acc += off[k + 1] - off[k];
                }
                cost[t * (HM_MAX_LEVEL + 1) + s] = acc;
            }
        }
    }

    /* Knapsack: choose s_t in -1..L per table with sum(s_t + 1) >= need, minimising the total
       candidate count. Returns the total; writes s. */
    static uint64_t hm_plan(int m, int need, int L, const uint64_t *cost, signed char *s) {
        const uint64_t INF = ~(uint64_t)0;
        size_t w = (size_t)need + 1;
        uint64_t *dp = (uint64_t *)malloc(sizeof(uint64_t) * (size_t)(m + 1) * w);
        signed char *lvl = (signed char *)malloc((size_t)m * w);
        int *pred = (int *)malloc(sizeof(int) * (size_t)m * w);
        int t, u, lv;
        if (!dp || !lvl || !pred) { free(dp); free(lvl); free(pred); return INF; }
        for (u = 0; u <= need; u++) dp[u] = INF;
        dp[0] = 0;
        for (t = 0; t < m; t++) {
            const uint64_t *prev = dp + (size_t)t * w;
            uint64_t *cur = dp + (size_t)(t + 1) * w;
            signed char *lt = lvl + (size_t)t * w;
            int *pt = pred + (size_t)t * w;
            for (u = 0; u <= need; u++) { cur[u] = INF; lt[u] = -1; pt[u] = 0; }
            for (u = 0; u <= need; u++) {
                if (prev[u] == INF) continue;
                for (lv = -1; lv <= L; lv++) {
                    int nu = u + lv + 1;
                    if (nu > need) nu = need;
                    uint64_t v = prev[u] + (lv >= 0 ? cost[t * (HM_MAX_LEVEL + 1) + lv] : 0);
                    if (v < cur[nu]) { cur[nu] = v; lt[nu] = (signed char)lv; pt[nu] = u; }
                    if (nu == need) break; /* higher levels only cost more */
                }
            }
        }
        uint64_t best = dp[(size_t)m * w + need];
        u = need;
        for (t = m - 1; t >= 0; t--) {
            s[t] = lvl[(size_t)t * w + u];
            u = pred[(size_t)t * w + u];
        }
        free(dp); free(lvl); free(pred);
        return best;
    }

    /* Plan one query: fills s[m]; returns the candidate count. */
    static uint64_t hm_plan_query(const hm_mih *ix, const uint8_t *q, int r, uint32_t *qc, signed char *s) {
        uint64_t cost[HM_MAX_TABLES * (HM_MAX_LEVEL + 1)];
        int m = ix->m, t, need = r + 1;
        for (t = 0; t < m; t++) qc[t] = hm_chunk(q, t);
        int smin = (need + m - 1) / m - 1;
        hm_cost_levels(ix, qc, cost, 0, smin);
        uint64_t total = hm_plan(m, need, smin, cost, s);
        if (smin < HM_MAX_LEVEL) {
            /* Skewed query: the plan costs more than twice what uniform data would give. */
            uint64_t keys = 0;
            for (t = 0; t < m; t++) if (s[t] >= 0) keys += hm_level_start[s[t] + 1];
            if (total > 2 * (keys * ix->n / HM_NKEYS) + 64) {
                int L = smin + HM_LEVEL_EXTRA; if (L > HM_MAX_LEVEL) L = HM_MAX_LEVEL;
                hm_cost_levels(ix, qc, cost, smin + 1, L);
                total = hm_plan(m, need, L, cost, s);
            }
        }
        return total;
    }

    static int hm_cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return (x > y) - (x < y);
    }

    static void hm_sort_u64(uint64_t *a, size_t n) {
        if (n < 2) return;
        if (n <= 32) {
            size_t i, j;
            for (i = 1; i < n; i++) {
                uint64_t v = a[i];
                for (j = i; j > 0 && a[j - 1] > v; j--) a[j] = a[j - 1];
                a[j] = v;
            }
            return;
        }
        qsort(a, n, sizeof(uint64_t), hm_cmp_u64);
    }


    /* One query; appends its matches (sorted by id) to out. stats (may be NULL) gets the
       candidate count. Returns 0, or -1 when out of memory. Candidates are gathered into a
       segment buffer (ids read sequentially from the buckets), then verified in order with
       the code of candidate j + HM_PREFETCH prefetched (memory-level parallelism is what
       bounds this loop). */
    static int hm_mih_query(const hm_mih *ix, const uint8_t *q, int r, int allow_scan, hm_vec *out, uint64_t *stats) {
        uint32_t qc[HM_MAX_TABLES];
        signed char s[HM_MAX_TABLES];
        const int nb = ix->nbytes, m = ix->m;
        const int D = HM_PREFETCH;
        size_t start = out->len;
        if (ix->n == 0) return 0;
        uint64_t total = hm_plan_query(ix, q, r, qc, s);
        if (total == ~(uint64_t)0) return -1;
        if (stats) *stats += total;
        if (allow_scan && total * 4 >= ix->n) return hm_scan(ix->codes, ix->n, nb, q, r, out);
        size_t cap = total < (uint64_t)HM_SEGMENT ? (size_t)total : (size_t)HM_SEGMENT;
        if (cap == 0) return 0;
        uint32_t *cand = (uint32_t *)malloc(cap * (sizeof(uint32_t) + 1));
        if (!cand) return -1;
        uint8_t *tab = (uint8_t *)(cand + cap);
        size_t len = 0;
        int t;
        for (t = 0; t < m; t++) {
            if (s[t] < 0) continue;
            const uint32_t *off = ix->offsets + (size_t)t * (HM_NKEYS + 1);
            const uint32_t *ids = ix->ids + (size_t)t * ix->n;
            uint32_t i, iend = hm_level_start[s[t] + 1];
            for (i = 0; i < iend; i++) {
                uint32_t k = qc[t] ^ hm_masks[i];
                uint32_t p = off[k], pend = off[k + 1];
                while (p < pend) {
                    size_t take = pend - p;
                    if (take > cap - len) take = cap - len;
                    memcpy(cand + len, ids + p, take * sizeof(uint32_t));
                    memset(tab + len, t, take);
                    len += take; p += (uint32_t)take;
                    if (len == cap) {
                        if (hm_verify(ix, q, r, s, cand, tab, (int)len, D, out)) { free(cand); return -1; }
                        len = 0;
                    }
                }
            }
        }
        if (len && hm_verify(ix, q, r, s, cand, tab, (int)len, D, out)) { free(cand); return -1; }
        free(cand);
        hm_sort_u64(out->data + start, out->len - start);
        return 0;
    }
    """
    ctypedef struct hm_vec:
        uint64_t *data
        size_t len
        size_t cap
    ctypedef struct hm_mih:
        const uint8_t *codes
        uint64_t n
        int nbytes
        int m
        const uint32_t *offsets
        const uint32_t *ids
    void hm_init()
    const char *hm_popcount_impl()
    int hm_scan(const uint8_t *codes, uint64_t n, int nbytes, const uint8_t *q, int r, hm_vec *out) nogil
    int hm_mih_query(const hm_mih *ix, const uint8_t *q, int r, int allow_scan, hm_vec *out, uint64_t *stats) nogil
    uint64_t hm_plan_query(const hm_mih *ix, const uint8_t *q, int r, uint32_t *qc, signed char *s) nogil


hm_init()

cdef enum:
    CNKEYS = 65536

NKEYS = CNKEYS


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


def hamming_range_flat(codes, query, int radius):
    """Brute-force scan for one query: (ids int64 ascending, dists int32) with distance <= radius."""
    ids, dists, _ = hamming_range_flat_batch(codes, np.asarray(query).reshape(1, -1), radius)
    return ids, dists


def build_tables(const uint8_t[:, ::1] codes):
    """Counting sort of the row ids by every 16-bit chunk. Returns (offsets uint32 (m, 65537),
    ids uint32 (m, N)); see the module docstring for the layout. Does not copy codes."""
    cdef Py_ssize_t n = codes.shape[0], x
    cdef int nbytes = <int>codes.shape[1]
    cdef int m = nbytes // 2, t
    cdef Py_ssize_t k
    offsets = np.zeros((m, CNKEYS + 1), dtype=np.uint32)
    ids = np.empty((m, n), dtype=np.uint32)
    cdef uint32_t[:, ::1] off = offsets
    cdef uint32_t[:, ::1] idv = ids
    cdef uint32_t *pos
    cdef const uint8_t *row
    cdef uint32_t c
    if n == 0:
        return offsets, ids
    pos = <uint32_t *>malloc(sizeof(uint32_t) * m * CNKEYS)
    if pos == NULL:
        raise MemoryError()
    try:
        with nogil:
            for x in range(n):
                row = &codes[x, 0]
                for t in range(m):
                    c = <uint32_t>row[2 * t] | (<uint32_t>row[2 * t + 1] << 8)
                    off[t, c + 1] += 1
            for t in range(m):
                for k in range(1, CNKEYS + 1):
                    off[t, k] += off[t, k - 1]
                memcpy(pos + <size_t>t * CNKEYS, &off[t, 0], sizeof(uint32_t) * CNKEYS)
            for x in range(n):
                row = &codes[x, 0]
                for t in range(m):
                    c = <uint32_t>row[2 * t] | (<uint32_t>row[2 * t + 1] << 8)
                    idv[t, pos[<size_t>t * CNKEYS + c]] = <uint32_t>x
                    pos[<size_t>t * CNKEYS + c] += 1
    finally:
        free(pos)
    return offsets, ids


cdef void _mih_init(hm_mih *ix, const uint8_t[:, ::1] codes, const uint32_t[:, ::1] offsets,
                    const uint32_t[:, ::1] ids) noexcept:
    ix.n = <uint64_t>codes.shape[0]
    ix.nbytes = <int>codes.shape[1]
    ix.m = ix.nbytes // 2
    ix.codes = &codes[0, 0] if ix.n > 0 else NULL
    ix.offsets = &offsets[0, 0]
    ix.ids = &ids[0, 0] if ix.n > 0 else NULL


def mih_range_search(const uint8_t[:, ::1] codes, const uint32_t[:, ::1] offsets,
                     const uint32_t[:, ::1] ids, const uint8_t[:, ::1] queries, int radius,
                     bint allow_scan=True):
    """Exact multi-index range search, all queries in one call without the GIL.
    allow_scan=False forbids the sequential-scan shortcut (tests use it to exercise the
    probe on small lists). Returns (ids int64, dists int32, lims int64 (Q + 1), candidates uint64 total)."""
    cdef hm_mih ix
    _mih_init(&ix, codes, offsets, ids)
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


def mih_plan(const uint8_t[:, ::1] codes, const uint32_t[:, ::1] offsets,
             const uint32_t[:, ::1] ids, const uint8_t[::1] query, int radius):
    """The probe plan for one query: (list of s_t per table, candidate count)."""
    cdef hm_mih ix
    _mih_init(&ix, codes, offsets, ids)
    cdef uint32_t qc[64]
    cdef signed char s[64]
    cdef uint64_t total
    with nogil:
        total = hm_plan_query(&ix, &query[0], radius, qc, s)
    return [int(s[t]) for t in range(ix.m)], int(total)
