/* SIMD helpers of hashmatch._pdq (native/pdq.pyx declares them): 4-lane float vectors
   (SSE2, or a plain struct elsewhere: the same IEEE results lane by lane), and the luma of
   4 pixels at once in the reference's exact arithmetic. See the comments in pdq.pyx for
   why each operation gives the reference's bits. */
#ifndef HASHMATCH_PDQ_SIMD_H
#define HASHMATCH_PDQ_SIMD_H
#if defined(__SSE2__) || defined(_M_X64) || defined(_M_AMD64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
typedef __m128 hm_f4;
#define hm_load(p) _mm_loadu_ps(p)
#define hm_store(p, v) _mm_storeu_ps((p), (v))
#define hm_add(a, b) _mm_add_ps((a), (b))
#define hm_sub(a, b) _mm_sub_ps((a), (b))
#define hm_div(a, b) _mm_div_ps((a), (b))
#define hm_set1(x) _mm_set1_ps(x)
#define hm_zero() _mm_setzero_ps()
static inline void hm_transpose4(hm_f4* a, hm_f4* b, hm_f4* c, hm_f4* d) {
    _MM_TRANSPOSE4_PS(*a, *b, *c, *d);
}
#else
typedef struct { float v[4]; } hm_f4;
static inline hm_f4 hm_load(const float* p) { hm_f4 r; int i; for (i = 0; i < 4; i++) r.v[i] = p[i]; return r; }
static inline void hm_store(float* p, hm_f4 a) { int i; for (i = 0; i < 4; i++) p[i] = a.v[i]; }
static inline hm_f4 hm_add(hm_f4 a, hm_f4 b) { int i; for (i = 0; i < 4; i++) a.v[i] = a.v[i] + b.v[i]; return a; }
static inline hm_f4 hm_sub(hm_f4 a, hm_f4 b) { int i; for (i = 0; i < 4; i++) a.v[i] = a.v[i] - b.v[i]; return a; }
static inline hm_f4 hm_div(hm_f4 a, hm_f4 b) { int i; for (i = 0; i < 4; i++) a.v[i] = a.v[i] / b.v[i]; return a; }
static inline hm_f4 hm_set1(float x) { hm_f4 r; int i; for (i = 0; i < 4; i++) r.v[i] = x; return r; }
static inline hm_f4 hm_zero(void) { return hm_set1(0.0f); }
static inline void hm_transpose4(hm_f4* a, hm_f4* b, hm_f4* c, hm_f4* d) {
    hm_f4* m[4]; float t[4][4]; int i, j;
    m[0] = a; m[1] = b; m[2] = c; m[3] = d;
    for (i = 0; i < 4; i++) for (j = 0; j < 4; j++) t[j][i] = m[i]->v[j];
    for (i = 0; i < 4; i++) for (j = 0; j < 4; j++) m[i]->v[j] = t[i][j];
}
#endif

#include <string.h>
static inline float hm_milli1(int n) { return (float)n / 1000.0f; }
#if defined(__SSE2__) || defined(_M_X64) || defined(_M_AMD64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
/* Luma (LUMA_F64) of one pixel from each of 4 rows into out[0..3]. Reads 4 bytes at
   each pointer (the 4th is weighted 0): the caller keeps that byte in bounds. */
static inline void hm_luma4(const unsigned char* p0, const unsigned char* p1,
                            const unsigned char* p2, const unsigned char* p3, float* out) {
    const __m128i k = _mm_setr_epi16(299, 587, 114, 0, 299, 587, 114, 0);
    const __m128i z = _mm_setzero_si128();
    const __m128 thousand = _mm_set1_ps(1000.0f);
    int a, b, c, d;
    __m128i x, lo, hi, n;
    __m128 fl, fh;
    memcpy(&a, p0, 4); memcpy(&b, p1, 4); memcpy(&c, p2, 4); memcpy(&d, p3, 4);
    x = _mm_unpacklo_epi64(_mm_unpacklo_epi32(_mm_cvtsi32_si128(a), _mm_cvtsi32_si128(b)),
                           _mm_unpacklo_epi32(_mm_cvtsi32_si128(c), _mm_cvtsi32_si128(d)));
    /* words r g b x per pixel; pmaddwd gives 299r + 587g and 114b per pixel */
    lo = _mm_madd_epi16(_mm_unpacklo_epi8(x, z), k);
    hi = _mm_madd_epi16(_mm_unpackhi_epi8(x, z), k);
    fl = _mm_castsi128_ps(lo);
    fh = _mm_castsi128_ps(hi);
    n = _mm_add_epi32(_mm_castps_si128(_mm_shuffle_ps(fl, fh, _MM_SHUFFLE(2, 0, 2, 0))),
                      _mm_castps_si128(_mm_shuffle_ps(fl, fh, _MM_SHUFFLE(3, 1, 3, 1))));
    _mm_storeu_ps(out, _mm_div_ps(_mm_cvtepi32_ps(n), thousand));
}
#else
static inline void hm_luma4(const unsigned char* p0, const unsigned char* p1,
                            const unsigned char* p2, const unsigned char* p3, float* out) {
    const unsigned char* p[4]; int i;
    p[0] = p0; p[1] = p1; p[2] = p2; p[3] = p3;
    for (i = 0; i < 4; i++) out[i] = hm_milli1(299 * p[i][0] + 587 * p[i][1] + 114 * p[i][2]);
}
#endif

#endif /* HASHMATCH_PDQ_SIMD_H */
