/*
 * pocketfft_dct32.h -- bit-exact length-32 DCT-II, matching scipy.fftpack.dct
 *
 * WHAT THIS REPRODUCES
 *   hm_dct2_32() returns exactly the float64 values of
 *       scipy.fftpack.dct(x, type=2, norm=None)      (len(x) == 32)
 *   which is the same as scipy.fft.dct(x, type=2, norm="backward"). That is
 *   the unnormalized DCT-II  y[k] = 2 * sum_n x[n] cos(pi*k*(2n+1)/64).
 *   There is no extra scaling and no special case for the DC term or any
 *   other term.
 *
 *   Why this file exists: imagehash's pHash thresholds the DCT coefficients
 *   against their median. On constant or mirror-symmetric images, many
 *   coefficients are exactly 0 in exact arithmetic, but scipy returns
 *   +-1e-14 rounding noise for them, and the sign of that noise decides
 *   hash bits. A plain matrix-multiply DCT rounds differently, so it gives
 *   different hashes. To get the same hashes, this file performs exactly
 *   the same floating-point operations, in the same order, as scipy.
 *
 * WHERE IT COMES FROM
 *   scipy.fftpack.dct -> scipy.fft._pocketfft.dct -> pypocketfft (C++,
 *   pocketfft_hdronly.h from scipy's fork of mreineck/pocketfft) ->
 *   pocketfft::dct -> general_nd<T_dcst23<double>> -> T_dcst23::exec
 *   with type=2, cosine=true, ortho=false, fct=1 (inorm=0).
 *   T_dcst23 type 2 for even N works like this:
 *     c[0]*=2; c[N-1]*=2; for odd k: (c[k+1],c[k]) = (c[k+1]-c[k], c[k+1]+c[k])
 *     rfftp<double>(32).exec(c, 1, r2hc=false)     (backward real FFTPACK)
 *     post-twiddle with twiddle[i] = sincos_2pibyn<double>(4N)[i+1].r
 *   rfftp factorizes 32 as {2,4,4}. It takes out 4s first and then moves the
 *   leftover 2 to the front. The backward pass order is therefore
 *     radb2(ido=16,l1=1) -> radb4(ido=4,l1=2) -> radb4(ido=1,l1=8)
 *   The twiddles come from pocketfft's sincos_2pibyn. For double it works
 *   in double (Thigh=double): ang = double(0.25L*pi/n), octant-reduced
 *   libm cos/sin, then the product of two table entries v1[idx&mask] and
 *   v2[idx>>shift]. Because of this, several values differ in the last bits
 *   from a naive cos(2*pi*k/n). For example tw_dct[23] (cos(3pi/8)) is
 *   ...961p-2, while the direct W32^2 entry is ...963p-2. All twiddles below are hex
 *   literals taken from an exact C transcription of that routine (glibc
 *   libm, x86-64) and checked against scipy 1.17.1 results.
 *   The vectorised (SSE2, 2 lanes) path that scipy takes for 2-D arrays
 *   does the same element-wise operations, so one scalar routine
 *   reproduces both the 1-D and the N-D results.
 *
 * BUILD REQUIREMENTS (needed for bit-exactness)
 *   - Compile with -ffp-contract=off (GCC/Clang). Any fused multiply-add
 *     contraction (a*b+c -> fma) changes the rounding and breaks
 *     bit-exactness. This matters on targets with FMA (-march=native,
 *     x86-64-v3, aarch64, where GCC contracts by default and Clang
 *     contracts within an expression by default). The scipy wheel is built
 *     for baseline x86-64 (SSE2, no FMA), so it never fuses.
 *   - No -ffast-math / -Ofast / -fassociative-math / -freciprocal-math.
 *   - SSE2 double arithmetic (default on x86-64). Do not use x87
 *     excess precision (-mfpmath=387 on 32-bit x86).
 *   - C99 (hex-float literals, static inline). No Python headers needed.
 *   Extra protection built into this header, because flags are easy to lose:
 *   - GCC: the functions are wrapped in
 *       #pragma GCC optimize("fp-contract=off","no-tree-vectorize","no-fast-math")
 *     This is needed. GCC 12 at -O3 with FMA available (-march=native,
 *     -mfma, x86-64-v3) emits vfmaddsub* from its vectorizer EVEN WITH
 *     -ffp-contract=off. That gave ~87% mismatching vectors in testing.
 *     With the pragma, -O2/-O3/-Ofast with -march=native all tested
 *     bit-exact.
 *   - Clang: "#pragma STDC FP_CONTRACT OFF" in each function body. This
 *     covers Clang's default -ffp-contract=on, but NOT an explicit
 *     -ffp-contract=fast, which ignores the pragma.
 *
 * API
 *   hm_dct2_32(in, in_stride, out, out_stride)
 *     Reads in[0], in[in_stride], ..., in[31*in_stride] and writes
 *     out[k*out_stride], k = 0..31. Strides count doubles, not bytes.
 *     in and out may be the same buffer (a local copy is taken first).
 *   hm_dct2_32x32(in, out)
 *     Convenience for imagehash's pHash: for a C-contiguous 32x32 row-major
 *     array, gives dct(dct(x, axis=0), axis=1). in and out may alias.
 */
#ifndef HM_POCKETFFT_DCT32_H
#define HM_POCKETFFT_DCT32_H

#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && !defined(__INTEL_COMPILER)
/* GCC: force no FMA contraction, no auto-vectorisation (see above). */
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off", "no-tree-vectorize", "no-fast-math")
#define HM_DCT32_GCC_PUSHED 1
#endif

#if defined(__clang__)
#define HM_DCT32_NO_CONTRACT _Pragma("STDC FP_CONTRACT OFF")
#else
#define HM_DCT32_NO_CONTRACT
#endif

/* radb2 from pocketfft rfftp, specialised to T=T0=double.
   CC(a,b,c)=cc[a+ido*(b+2*c)], CH(a,b,c)=ch[a+ido*(b+l1*c)],
   WA(x,i)=wa[i+x*(ido-1)]. */
static inline void hm_pfft_radb2(size_t ido, size_t l1,
                                 const double *cc, double *ch,
                                 const double *wa)
{
    HM_DCT32_NO_CONTRACT
    size_t k, i;
#define HM_CC(a, b, c) cc[(a) + ido * ((b) + 2 * (c))]
#define HM_CH(a, b, c) ch[(a) + ido * ((b) + l1 * (c))]
#define HM_WA(x, i) wa[(i) + (x) * (ido - 1)]
    for (k = 0; k < l1; k++) {
        /* PM(CH(0,k,0),CH(0,k,1),CC(0,0,k),CC(ido-1,1,k)) */
        double c0 = HM_CC(0, 0, k), c1 = HM_CC(ido - 1, 1, k);
        HM_CH(0, k, 0) = c0 + c1;
        HM_CH(0, k, 1) = c0 - c1;
    }
    if ((ido & 1) == 0)
        for (k = 0; k < l1; k++) {
            HM_CH(ido - 1, k, 0) = 2.0 * HM_CC(ido - 1, 0, k);
            HM_CH(ido - 1, k, 1) = -2.0 * HM_CC(0, 1, k);
        }
    if (ido <= 2) return;
    for (k = 0; k < l1; ++k)
        for (i = 2; i < ido; i += 2) {
            size_t ic = ido - i;
            double tr2, ti2, wr, wi;
            /* PM(CH(i-1,k,0),tr2,CC(i-1,0,k),CC(ic-1,1,k)) */
            HM_CH(i - 1, k, 0) = HM_CC(i - 1, 0, k) + HM_CC(ic - 1, 1, k);
            tr2 = HM_CC(i - 1, 0, k) - HM_CC(ic - 1, 1, k);
            /* PM(ti2,CH(i,k,0),CC(i,0,k),CC(ic,1,k)) */
            ti2 = HM_CC(i, 0, k) + HM_CC(ic, 1, k);
            HM_CH(i, k, 0) = HM_CC(i, 0, k) - HM_CC(ic, 1, k);
            /* MULPM(CH(i,k,1),CH(i-1,k,1),WA(0,i-2),WA(0,i-1),ti2,tr2):
               a=c*e+d*f; b=c*f-d*e */
            wr = HM_WA(0, i - 2);
            wi = HM_WA(0, i - 1);
            HM_CH(i, k, 1) = wr * ti2 + wi * tr2;
            HM_CH(i - 1, k, 1) = wr * tr2 - wi * ti2;
        }
#undef HM_CC
#undef HM_CH
#undef HM_WA
}

/* radb4 from pocketfft rfftp, specialised to T=T0=double.
   CC(a,b,c)=cc[a+ido*(b+4*c)], CH(a,b,c)=ch[a+ido*(b+l1*c)]. */
static inline void hm_pfft_radb4(size_t ido, size_t l1,
                                 const double *cc, double *ch,
                                 const double *wa)
{
    HM_DCT32_NO_CONTRACT
    /* T0(1.414213562373095048801688724209698L) */
    const double sqrt2 = 0x1.6a09e667f3bcdp+0;
    size_t k, i;
#define HM_CC(a, b, c) cc[(a) + ido * ((b) + 4 * (c))]
#define HM_CH(a, b, c) ch[(a) + ido * ((b) + l1 * (c))]
#define HM_WA(x, i) wa[(i) + (x) * (ido - 1)]
    for (k = 0; k < l1; k++) {
        double a = HM_CC(0, 0, k), b = HM_CC(ido - 1, 3, k);
        double tr2 = a + b, tr1 = a - b;          /* PM(tr2,tr1,a,b) */
        double tr3 = 2.0 * HM_CC(ido - 1, 1, k);
        double tr4 = 2.0 * HM_CC(0, 2, k);
        HM_CH(0, k, 0) = tr2 + tr3;               /* PM(CH0,CH2,tr2,tr3) */
        HM_CH(0, k, 2) = tr2 - tr3;
        HM_CH(0, k, 3) = tr1 + tr4;               /* PM(CH3,CH1,tr1,tr4) */
        HM_CH(0, k, 1) = tr1 - tr4;
    }
    if ((ido & 1) == 0)
        for (k = 0; k < l1; k++) {
            double ti1, ti2, tr1, tr2;
            ti1 = HM_CC(0, 3, k) + HM_CC(0, 1, k);
            ti2 = HM_CC(0, 3, k) - HM_CC(0, 1, k);
            tr2 = HM_CC(ido - 1, 0, k) + HM_CC(ido - 1, 2, k);
            tr1 = HM_CC(ido - 1, 0, k) - HM_CC(ido - 1, 2, k);
            HM_CH(ido - 1, k, 0) = tr2 + tr2;
            HM_CH(ido - 1, k, 1) = sqrt2 * (tr1 - ti1);
            HM_CH(ido - 1, k, 2) = ti2 + ti2;
            HM_CH(ido - 1, k, 3) = -sqrt2 * (tr1 + ti1);
        }
    if (ido <= 2) return;
    for (k = 0; k < l1; ++k)
        for (i = 2; i < ido; i += 2) {
            double ci2, ci3, ci4, cr2, cr3, cr4;
            double ti1, ti2, ti3, ti4, tr1, tr2, tr3, tr4;
            double wr, wi;
            size_t ic = ido - i;
            tr2 = HM_CC(i - 1, 0, k) + HM_CC(ic - 1, 3, k);
            tr1 = HM_CC(i - 1, 0, k) - HM_CC(ic - 1, 3, k);
            ti1 = HM_CC(i, 0, k) + HM_CC(ic, 3, k);
            ti2 = HM_CC(i, 0, k) - HM_CC(ic, 3, k);
            tr4 = HM_CC(i, 2, k) + HM_CC(ic, 1, k);
            ti3 = HM_CC(i, 2, k) - HM_CC(ic, 1, k);
            tr3 = HM_CC(i - 1, 2, k) + HM_CC(ic - 1, 1, k);
            ti4 = HM_CC(i - 1, 2, k) - HM_CC(ic - 1, 1, k);
            HM_CH(i - 1, k, 0) = tr2 + tr3;
            cr3 = tr2 - tr3;
            HM_CH(i, k, 0) = ti2 + ti3;
            ci3 = ti2 - ti3;
            cr4 = tr1 + tr4;
            cr2 = tr1 - tr4;
            ci2 = ti1 + ti4;
            ci4 = ti1 - ti4;
            /* MULPM(a,b,c,d,e,f): a=c*e+d*f; b=c*f-d*e */
            wr = HM_WA(0, i - 2); wi = HM_WA(0, i - 1);
            HM_CH(i, k, 1) = wr * ci2 + wi * cr2;
            HM_CH(i - 1, k, 1) = wr * cr2 - wi * ci2;
            wr = HM_WA(1, i - 2); wi = HM_WA(1, i - 1);
            HM_CH(i, k, 2) = wr * ci3 + wi * cr3;
            HM_CH(i - 1, k, 2) = wr * cr3 - wi * ci3;
            wr = HM_WA(2, i - 2); wi = HM_WA(2, i - 1);
            HM_CH(i, k, 3) = wr * ci4 + wi * cr4;
            HM_CH(i - 1, k, 3) = wr * cr4 - wi * ci4;
        }
#undef HM_CC
#undef HM_CH
#undef HM_WA
}

/* Unnormalized DCT-II of length 32, bit-identical to
   scipy.fftpack.dct(x, type=2, norm=None) (pocketfft T_dcst23::exec). */
static inline void hm_dct2_32(const double *in, ptrdiff_t in_stride,
                              double *out, ptrdiff_t out_stride)
{
    HM_DCT32_NO_CONTRACT
    /* rfftp<double>(32) twiddles, factor k=0 (ip=2, l1=1, ido=16):
       tw[2i-2], tw[2i-1] = sincos_2pibyn(32)[i].r, .i for i=1..7.
       The 15th slot is never read (pocketfft leaves it uninitialised). */
    static const double tw_radb2[15] = {
        0x1.f6297cff75cbp-1,  0x1.8f8b83c69a60ap-3,
        0x1.d906bcf328d46p-1, 0x1.87de2a6aea963p-2,
        0x1.a9b66290ea1a3p-1, 0x1.1c73b39ae68c8p-1,
        0x1.6a09e667f3bccp-1, 0x1.6a09e667f3bcdp-1,
        0x1.1c73b39ae68c8p-1, 0x1.a9b66290ea1a3p-1,
        0x1.87de2a6aea963p-2, 0x1.d906bcf328d46p-1,
        0x1.8f8b83c69a60ap-3, 0x1.f6297cff75cbp-1,
        0.0
    };
    /* factor k=1 (ip=4, l1=2, ido=4): tw[(j-1)*3+0/1] =
       sincos_2pibyn(32)[2j].r/.i for j=1..3 (slot (j-1)*3+2 is never read). */
    static const double tw_radb4[9] = {
        0x1.d906bcf328d46p-1, 0x1.87de2a6aea963p-2, 0.0,
        0x1.6a09e667f3bccp-1, 0x1.6a09e667f3bcdp-1, 0.0,
        0x1.87de2a6aea963p-2, 0x1.d906bcf328d46p-1, 0.0
    };
    /* T_dcst23 twiddle[i] = sincos_2pibyn(128)[i+1].r, i = 0..30
       (twiddle[31] == -0.0 is never read for type 2, N=32). */
    static const double tw_dct[31] = {
        0x1.ff621e3796d7ep-1, 0x1.fd88da3d12526p-1, 0x1.fa7557f08a517p-1,
        0x1.f6297cff75cbp-1,  0x1.f0a7efb9230d7p-1, 0x1.e9f4156c62ddap-1,
        0x1.e212104f686e5p-1, 0x1.d906bcf328d46p-1, 0x1.ced7af43cc773p-1,
        0x1.c38b2f180bdb1p-1, 0x1.b728345196e3ep-1, 0x1.a9b66290ea1a3p-1,
        0x1.9b3e047f38741p-1, 0x1.8bc806b151741p-1, 0x1.7b5df226aafafp-1,
        0x1.6a09e667f3bccp-1, 0x1.57d69348cec9fp-1, 0x1.44cf325091dd6p-1,
        0x1.30ff7fce17034p-1, 0x1.1c73b39ae68c8p-1, 0x1.073879922ffedp-1,
        0x1.e2b5d3806f639p-2, 0x1.b5d1009e15cbfp-2, 0x1.87de2a6aea961p-2,
        0x1.58f9a75ab1fdbp-2, 0x1.294062ed59f04p-2, 0x1.f19f97b215f1cp-3,
        0x1.8f8b83c69a60ap-3, 0x1.2c8106e8e6136p-3, 0x1.917a6bc29b424p-4,
        0x1.91f65f10dd81p-5
    };
    double c[32], ch[32];
    size_t k, kc;

    for (k = 0; k < 32; ++k)
        c[k] = in[(ptrdiff_t)k * in_stride];

    /* T_dcst23::exec, type 2, cosine: pre-processing */
    c[0] *= 2.0;
    c[31] *= 2.0;
    for (k = 1; k < 31; k += 2) {
        /* MPINPLACE(c[k+1], c[k]): t=a; a-=b; b=t+b */
        double t = c[k + 1];
        c[k + 1] = t - c[k];
        c[k] = t + c[k];
    }

    /* rfftp<double>(32).exec(c, fct=1, r2hc=false); factors {2,4,4} */
    hm_pfft_radb2(16, 1, c, ch, tw_radb2);
    hm_pfft_radb4(4, 2, ch, c, tw_radb4);
    hm_pfft_radb4(1, 8, c, ch, NULL);
    /* result now in ch (copy_and_norm with fct==1 is a plain copy) */

    /* post-processing (NS2 = 16); ch[0] is passed through unchanged */
    for (k = 1, kc = 31; k < 16; ++k, --kc) {
        double t1 = tw_dct[k - 1] * ch[kc] + tw_dct[kc - 1] * ch[k];
        double t2 = tw_dct[k - 1] * ch[k] - tw_dct[kc - 1] * ch[kc];
        ch[k] = 0.5 * (t1 + t2);
        ch[kc] = 0.5 * (t1 - t2);
    }
    ch[16] *= tw_dct[15];

    for (k = 0; k < 32; ++k)
        out[(ptrdiff_t)k * out_stride] = ch[k];
}

/* dct(dct(x, axis=0), axis=1) for a C-contiguous 32x32 array (row-major,
   x[r*32+c]), as in imagehash.phash. in and out may be the same buffer. */
static inline void hm_dct2_32x32(const double *in, double *out)
{
    HM_DCT32_NO_CONTRACT
    double tmp[32 * 32];
    int i;
    for (i = 0; i < 32; ++i)              /* axis=0: down each column */
        hm_dct2_32(in + i, 32, tmp + i, 32);
    for (i = 0; i < 32; ++i)              /* axis=1: along each row */
        hm_dct2_32(tmp + 32 * i, 1, out + 32 * i, 1);
}

#undef HM_DCT32_NO_CONTRACT
#ifdef HM_DCT32_GCC_PUSHED
#pragma GCC pop_options
#undef HM_DCT32_GCC_PUSHED
#endif

#endif /* HM_POCKETFFT_DCT32_H */
