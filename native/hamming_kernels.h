/* Hamming-distance kernels of hashmatch._hamming (native/hamming.pyx declares them):
   the popcount scan, multi-index hashing (probe planning by a cost model and a knapsack,
   probing, verification with prefetching), compiled twice for run-time popcnt dispatch.
   Plain C, no Python: everything here runs without the GIL. */
#ifndef HASHMATCH_HAMMING_KERNELS_H
#define HASHMATCH_HAMMING_KERNELS_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HM_MAX_TABLES 64     /* 1024 bits / 16 */
#define HM_MAX_WORDS 16      /* nbytes <= 128 */
#define HM_MAX_B 32
#define HM_LEVEL_EXTRA 2     /* levels above the minimum tried on skewed queries */
/* Verification prefetches the code of candidate j + HM_PREFETCH while checking j
   (measured with the 16x16 layout at 10M: D=8 731 us, 16 639, 32 567, 64 533, 128 558). */
#define HM_PREFETCH 64
#define HM_BUCKET_PREFETCH 16 /* buckets whose residues/ids are prefetched ahead */
#define HM_DIR_PREFETCH 16   /* directory entries prefetched ahead while planning */
#define HM_SEGMENT 4096      /* candidates gathered per verification pass */
#define HM_BLOCK 512         /* prefix probes resolved per block */
/* Cost model of the plan, in nanoseconds (rough, this kind of box): a random bucket
   visit (directory entry + residue line), a residue byte scanned, a candidate verified
   (a random 32-byte code fetch). */
#define HM_C_BUCKET 6.0
#define HM_C_ENTRY 0.5
#define HM_C_VERIFY 10.0

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
#define HM_PUSH(v, id, d) do { \
    if ((v)->len == (v)->cap && hm_vec_reserve((v), 1)) return -1; \
    (v)->data[(v)->len++] = ((uint64_t)(id) << 32) | (uint32_t)(d); } while (0)

static inline uint64_t hm_load64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static inline int hm_pc64_swar(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}

static uint8_t hm_pc8[256];
static double hm_binom[HM_MAX_B + 1][HM_MAX_B + 1];

static void hm_init_tables(void) {
    int i, j;
    for (i = 0; i < 256; i++) hm_pc8[i] = (uint8_t)hm_pc64_swar((uint64_t)i);
    for (i = 0; i <= HM_MAX_B; i++) {
        hm_binom[i][0] = 1.0;
        for (j = 1; j <= HM_MAX_B; j++) hm_binom[i][j] = i ? hm_binom[i - 1][j - 1] + hm_binom[i - 1][j] : 0.0;
    }
}

/* Number of b-bit keys within distance s of a key. */
static double hm_ball(int b, int s) {
    double v = 0; int k;
    if (s > b) s = b;
    for (k = 0; k <= s; k++) v += hm_binom[b][k];
    return v;
}

/* Bits bit .. bit + b - 1 of the little-endian word array w (b <= 32, inside the code). */
static inline uint32_t hm_chunk(const uint64_t *w, int bit, int b) {
    int lo = bit >> 6, sh = bit & 63;
    uint64_t v = w[lo] >> sh;
    if (sh + b > 64) v |= w[lo + 1] << (64 - sh);
    return (uint32_t)(v & ((1ULL << b) - 1));
}

static inline void hm_words(const uint8_t *p, int nw, uint64_t *w) {
    int i;
    for (i = 0; i < nw; i++) w[i] = hm_load64(p + 8 * i);
}

typedef struct {
    const uint8_t *codes;       /* n x nbytes, not owned */
    uint64_t n;
    int nbytes, nw;
    int m, b, P, R;             /* tables, chunk bits, prefix bits, residue bits */
    const uint32_t *dirs;       /* m x (2^P + 1) */
    const uint32_t *packed;     /* m x n: (row << R) | residue */
    const uint32_t *masks;      /* 2^P, by popcount */
    const uint32_t *level_start;/* P + 2 */
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

#define HM_DIST_BODY(POP, q, x, nbytes, out) do { \
    if ((nbytes) == 32) { \
        out = POP(hm_load64(q) ^ hm_load64(x)) + POP(hm_load64((q) + 8) ^ hm_load64((x) + 8)) \
            + POP(hm_load64((q) + 16) ^ hm_load64((x) + 16)) + POP(hm_load64((q) + 24) ^ hm_load64((x) + 24)); \
    } else if ((nbytes) == 8) { \
        out = POP(hm_load64(q) ^ hm_load64(x)); \
    } else { \
        int w_; out = 0; \
        for (w_ = 0; w_ < (nbytes); w_ += 8) out += POP(hm_load64((q) + w_) ^ hm_load64((x) + w_)); \
    } } while (0)

#define HM_DEFINE_KERNELS(SUFFIX, ATTR, POP) \
ATTR static int hm_scan_##SUFFIX(const uint8_t *codes, uint64_t n, int nbytes, \
                                 const uint8_t *q, int r, hm_vec *out) { \
    uint64_t i; int d; \
    if (nbytes == 32) { \
        for (i = 0; i < n; i++) { HM_DIST_BODY(POP, q, codes + i * 32, 32, d); \
            if (d <= r) HM_PUSH(out, i, d); } \
    } else if (nbytes == 8) { \
        for (i = 0; i < n; i++) { HM_DIST_BODY(POP, q, codes + i * 8, 8, d); \
            if (d <= r) HM_PUSH(out, i, d); } \
    } else { \
        for (i = 0; i < n; i++) { HM_DIST_BODY(POP, q, codes + i * (uint64_t)nbytes, nbytes, d); \
            if (d <= r) HM_PUSH(out, i, d); } \
    } \
    return 0; \
} \
/* Verify one batch. A code that straddles two cache lines is first checked on the words \
   of the line that was prefetched: a non-match (almost every candidate) is rejected there \
   without touching the second line. Then keep x only if no earlier probed table found it. */ \
ATTR static int hm_verify_##SUFFIX(const hm_mih *ix, const uint8_t *q, int r, \
                                   const signed char *s, const uint32_t *cand, \
                                   const uint8_t *tab, int len, int D, hm_vec *out) { \
    const int nb = ix->nbytes, nw = ix->nw, b = ix->b; int j, d, w; \
    uint64_t xw[HM_MAX_WORDS]; \
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
        if (tab[j]) { \
            for (w = 0; w < nw; w++) xw[w] = hm_load64(q + 8 * w) ^ hm_load64(x + 8 * w); \
            for (t = 0; t < tab[j]; t++) { \
                if (s[t] < 0) continue; \
                if (POP((uint64_t)hm_chunk(xw, t * b, b)) <= s[t]) { dup = 1; break; } \
            } \
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

typedef struct {
    uint32_t qp[HM_MAX_TABLES], qr[HM_MAX_TABLES];  /* query prefix and residue per table */
    uint64_t S[HM_MAX_TABLES][HM_MAX_B + 1];        /* entries at prefix distance exactly dp */
    uint64_t X[HM_MAX_TABLES][HM_MAX_B + 1];        /* of which in excess of HM_crowd per bucket */
    int have;                                       /* levels 0..have-1 of S are filled */
    double frac[HM_MAX_B + 2];                      /* share of residues within k */
} hm_qstate;

static void hm_read_levels(const hm_mih *ix, hm_qstate *st, int to) {
    int t, dp;
    uint32_t i;
    const size_t dstride = ((size_t)1 << ix->P) + 1;
    /* A bucket beyond twice the uniform mean (+4) is crowded: its residues are probably
       crowded too (many codes sharing the chunk), so its excess counts as all-candidates. */
    const uint32_t crowd = (uint32_t)(2 * (ix->n >> ix->P) + 4);
    if (to > ix->P) to = ix->P;
    for (t = 0; t < ix->m; t++) {
        const uint32_t *dir = ix->dirs + (size_t)t * dstride;
        uint32_t qp = st->qp[t];
        uint32_t pa = ix->level_start[st->have], pe = ix->level_start[to + 1];
        for (i = pa; i < pe && i < pa + HM_DIR_PREFETCH; i++) __builtin_prefetch(dir + (qp ^ ix->masks[i]), 0, 3);
        for (dp = st->have; dp <= to; dp++) {
            uint64_t acc = 0, ex = 0;
            uint32_t a = ix->level_start[dp], e = ix->level_start[dp + 1];
            for (i = a; i < e; i++) {
                if (i + HM_DIR_PREFETCH < pe) __builtin_prefetch(dir + (qp ^ ix->masks[i + HM_DIR_PREFETCH]), 0, 3);
                uint32_t p = qp ^ ix->masks[i];
                uint32_t c = dir[p + 1] - dir[p];
                acc += c;
                ex += c > crowd ? c - crowd : 0;
            }
            st->S[t][dp] = acc;
            st->X[t][dp] = ex;
        }
    }
    if (to + 1 > st->have) st->have = to + 1;
}

/* Cost (ns) and expected candidates of probing a table whose level sizes are S at radius s. */
static double hm_table_cost(const hm_mih *ix, const hm_qstate *st, const double *S, const double *X,
                            int s, double *cands) {
    int lmax = s < ix->P ? s : ix->P, dp;
    double c = HM_C_BUCKET * hm_ball(ix->P, lmax), k = 0;
    for (dp = 0; dp <= lmax; dp++) {
        int rem = s - dp;
        double f = rem >= ix->R ? 1.0 : st->frac[rem];
        double kk = (S[dp] - X[dp]) * f + X[dp];
        c += S[dp] * (rem >= ix->R ? 0.0 : HM_C_ENTRY) + HM_C_VERIFY * kk;
        k += kk;
    }
    if (cands) *cands = k;
    return c;
}

/* Knapsack: choose s_t in -1..L per table with sum(s_t + 1) >= need, minimising the total
   cost. Returns the total (or a negative value when out of memory); writes s. */
static double hm_plan(int m, int need, int L, const double *cost, signed char *s) {
    const double INF = 1e300;
    size_t w = (size_t)need + 1;
    double *dp = (double *)malloc(sizeof(double) * (size_t)(m + 1) * w);
    signed char *lvl = (signed char *)malloc((size_t)m * w);
    int *pred = (int *)malloc(sizeof(int) * (size_t)m * w);
    int t, u, lv;
    if (!dp || !lvl || !pred) { free(dp); free(lvl); free(pred); return -1.0; }
    for (u = 0; u <= need; u++) dp[u] = INF;
    dp[0] = 0;
    for (t = 0; t < m; t++) {
        const double *prev = dp + (size_t)t * w;
        double *cur = dp + (size_t)(t + 1) * w;
        signed char *lt = lvl + (size_t)t * w;
        int *pt = pred + (size_t)t * w;
        for (u = 0; u <= need; u++) { cur[u] = INF; lt[u] = -1; pt[u] = 0; }
        for (u = 0; u <= need; u++) {
            if (prev[u] >= INF) continue;
            for (lv = -1; lv <= L; lv++) {
                int nu = u + lv + 1;
                if (nu > need) nu = need;
                double v = prev[u] + (lv >= 0 ? cost[t * (HM_MAX_B + 1) + lv] : 0);
                if (v < cur[nu]) { cur[nu] = v; lt[nu] = (signed char)lv; pt[nu] = u; }
                if (nu == need) break; /* higher levels only cost more */
            }
        }
    }
    double best = dp[(size_t)m * w + need];
    u = need;
    for (t = m - 1; t >= 0; t--) {
        s[t] = lvl[(size_t)t * w + u];
        u = pred[(size_t)t * w + u];
    }
    free(dp); free(lvl); free(pred);
    return best;
}

/* Plan one query: fills st (query chunks, level sizes) and s[m]. Returns the estimated
   cost in ns (HM_PLAN_SCAN when a sequential scan is the only or the cheaper way, -1 when
   out of memory); *cands gets the expected candidate count. */
#define HM_PLAN_SCAN 1e299
static double hm_plan_query(const hm_mih *ix, const uint8_t *q, int r, int allow_scan,
                            hm_qstate *st, signed char *s, double *cands) {
    double cost[HM_MAX_TABLES * (HM_MAX_B + 1)], S[HM_MAX_B + 1], X[HM_MAX_B + 1], U[HM_MAX_B + 1], Z[HM_MAX_B + 1];
    uint64_t qw[HM_MAX_WORDS];
    int m = ix->m, b = ix->b, P = ix->P, R = ix->R, t, lv, dp, need = r + 1;
    const double scan_cost = (double)ix->n * (0.5 + ix->nbytes / 16.0);
    *cands = 0;
    for (t = 0; t < m; t++) s[t] = -1;
    if (need > m * (b + 1)) return HM_PLAN_SCAN;
    hm_words(q, ix->nw, qw);
    for (t = 0; t < m; t++) {
        uint32_t c = hm_chunk(qw, t * b, b);
        st->qp[t] = c >> R;
        st->qr[t] = c & ((1u << R) - 1);
    }
    for (lv = 0; lv <= R; lv++) st->frac[lv] = hm_ball(R, lv) / (double)(1u << R);
    st->have = 0;
    int smin = (need + m - 1) / m - 1;
    /* Too many prefixes to even look at: the scan is cheaper. */
    if (allow_scan && 0.5 * m * HM_C_BUCKET * hm_ball(P, smin) >= scan_cost) return HM_PLAN_SCAN;
    for (dp = 0; dp <= P; dp++) { U[dp] = (double)ix->n / (double)(1ULL << P) * hm_binom[P][dp]; Z[dp] = 0; }
    int L = smin;
    double total;
    for (;;) {
        hm_read_levels(ix, st, L);
        for (t = 0; t < m; t++) {
            for (dp = 0; dp <= P && dp <= L; dp++) { S[dp] = (double)st->S[t][dp]; X[dp] = (double)st->X[t][dp]; }
            for (lv = 0; lv <= L; lv++) cost[t * (HM_MAX_B + 1) + lv] = hm_table_cost(ix, st, S, X, lv, NULL);
        }
        total = hm_plan(m, need, L, cost, s);
        if (total < 0) return -1.0;
        if (L >= b || L > smin) break;
        /* Skewed query: the plan costs more than twice what uniform data would give. */
        double ucost = 0;
        for (t = 0; t < m; t++) if (s[t] >= 0) ucost += hm_table_cost(ix, st, U, Z, s[t], NULL);
        if (total <= 2 * ucost + 64 * HM_C_VERIFY) break;
        L = smin + HM_LEVEL_EXTRA; if (L > b) L = b;
    }
    for (t = 0; t < m; t++) {
        if (s[t] < 0) continue;
        double k;
        for (dp = 0; dp <= P && dp <= s[t]; dp++) { S[dp] = (double)st->S[t][dp]; X[dp] = (double)st->X[t][dp]; }
        hm_table_cost(ix, st, S, X, s[t], &k);
        *cands += k;
    }
    if (allow_scan && total >= scan_cost) return HM_PLAN_SCAN;
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

typedef struct {
    uint32_t *cand; uint8_t *tab; size_t len, cap;
    uint32_t bs[HM_BLOCK], be[HM_BLOCK]; signed char bk[HM_BLOCK];
} hm_scratch;

/* Flush a full segment before writing, not after: the branch-free residue loop below may
   leave it exactly full (a write-then-check here then ran past its end: found at 100M). */
#define HM_CAND(sc, id, t) do { \
    if ((sc)->len == (sc)->cap) { \
        if (hm_verify(ix, q, r, s, (sc)->cand, (sc)->tab, (int)(sc)->len, HM_PREFETCH, out)) return -1; \
        *ncand += (sc)->len; (sc)->len = 0; } \
    (sc)->cand[(sc)->len] = (id); (sc)->tab[(sc)->len] = (uint8_t)(t); (sc)->len++; } while (0)

/* Prefetch a bucket's first and last words: a bucket of ~5 words straddles two cache
   lines a third of the time, and an unprefetched second line stalls the residue loop
   (measured at 10M held-out codes: 150 -> 135 us a query). */
static inline void hm_prefetch_bucket(const uint32_t *pk, uint32_t start, uint32_t end) {
    __builtin_prefetch(pk + start, 0, 3);
    if (end > start) __builtin_prefetch(pk + end - 1, 0, 3);
}

/* Probe table t at radius s[t]: candidates into sc (verified whenever it fills). */
static int hm_probe_table(const hm_mih *ix, const hm_qstate *st, const uint8_t *q, int r,
                          const signed char *s, int t, hm_scratch *sc, hm_vec *out, uint64_t *ncand) {
    const int P = ix->P, R = ix->R, D = HM_BUCKET_PREFETCH;
    const int sv = s[t], lmax = sv < P ? sv : P;
    const uint32_t *dir = ix->dirs + (size_t)t * (((size_t)1 << P) + 1);
    const uint32_t *pk = ix->packed + (size_t)t * ix->n;
    const uint32_t qp = st->qp[t], rmask = ((uint32_t)1 << R) - 1;
    const uint32_t qr = st->qr[t];
    uint32_t nprobe = ix->level_start[lmax + 1], base, i;
    int dp = 0;
    for (base = 0; base < nprobe; base += HM_BLOCK) {
        uint32_t cnt = nprobe - base < HM_BLOCK ? nprobe - base : HM_BLOCK;
        for (i = 0; i < cnt; i++) {
            while (base + i >= ix->level_start[dp + 1]) dp++;
            uint32_t p = qp ^ ix->masks[base + i];
            sc->bs[i] = dir[p]; sc->be[i] = dir[p + 1];
            sc->bk[i] = (signed char)(sv - dp);
        }
        /* One array per table: a bucket is one run of (row << R) | residue words, so a
           visit costs one cache line where separate id and residue arrays cost two. */
        for (i = 0; i < cnt && i < (uint32_t)D; i++) hm_prefetch_bucket(pk, sc->bs[i], sc->be[i]);
        for (i = 0; i < cnt; i++) {
            if (i + D < cnt) hm_prefetch_bucket(pk, sc->bs[i + D], sc->be[i + D]);
            uint32_t e = sc->bs[i], end = sc->be[i];
            int k = sc->bk[i];
            if (k >= R) {
                for (; e < end; e++) HM_CAND(sc, pk[e] >> R, t);
            } else {
                /* Branch-free: write every entry, advance only past the kept ones (the
                   residue test is unpredictable). Needs room for the whole bucket. */
                while (e < end) {
                    uint32_t take = end - e, room = (uint32_t)(sc->cap - sc->len);
                    if (room == 0) {
                        if (hm_verify(ix, q, r, s, sc->cand, sc->tab, (int)sc->len, HM_PREFETCH, out)) return -1;
                        *ncand += sc->len; sc->len = 0; room = (uint32_t)sc->cap;
                    }
                    if (take > room) take = room;
                    uint32_t *cd = sc->cand; uint8_t *tb = sc->tab; size_t len = sc->len;
                    uint32_t stop = e + take;
                    for (; e < stop; e++) {
                        uint32_t v = pk[e];
                        cd[len] = v >> R; tb[len] = (uint8_t)t;
                        len += hm_pc8[(v & rmask) ^ qr] <= k;
                    }
                    sc->len = len;
                }
            }
        }
    }
    return 0;
}

/* One query; appends its matches (sorted by id) to out. stats (may be NULL) gets the
   number of candidates verified (N when the list was scanned). Returns 0, or -1 when out
   of memory. */
static int hm_mih_query(const hm_mih *ix, const uint8_t *q, int r, int allow_scan, hm_vec *out, uint64_t *stats) {
    hm_qstate st;
    signed char s[HM_MAX_TABLES];
    double est;
    size_t start = out->len;
    uint64_t nc = 0, *ncand = &nc;
    int t;
    if (ix->n == 0) return 0;
    double total = hm_plan_query(ix, q, r, allow_scan, &st, s, &est);
    if (total < 0) return -1;
    if (total >= HM_PLAN_SCAN) {
        if (stats) *stats += ix->n;
        return hm_scan(ix->codes, ix->n, ix->nbytes, q, r, out);
    }
    hm_scratch *sc = (hm_scratch *)malloc(sizeof(hm_scratch) + (size_t)HM_SEGMENT * 5);
    if (!sc) return -1;
    sc->cand = (uint32_t *)(sc + 1);
    sc->tab = (uint8_t *)(sc->cand + HM_SEGMENT);
    sc->len = 0; sc->cap = HM_SEGMENT;
    for (t = 0; t < ix->m; t++) {
        if (s[t] < 0) continue;
        if (hm_probe_table(ix, &st, q, r, s, t, sc, out, ncand)) { free(sc); return -1; }
    }
    if (sc->len && hm_verify(ix, q, r, s, sc->cand, sc->tab, (int)sc->len, HM_PREFETCH, out)) { free(sc); return -1; }
    nc += sc->len;
    free(sc);
    if (stats) *stats += nc;
    hm_sort_u64(out->data + start, out->len - start);
    return 0;
}

#endif /* HASHMATCH_HAMMING_KERNELS_H */
