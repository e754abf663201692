# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""PDQ kernels: luma, Jarosz tent filter, decimation, quality, DCT, median threshold, dihedral.

A bit-exact re-implementation of Meta's PDQ (ThreatExchange pdq/cpp: hashing/pdqhashing.cpp,
downscaling/downscaling.cpp), restructured for speed rather than translated line by line:

* luma and the first row pass are fused, one image row at a time;
* the column passes run row by row over a vector of per-column running sums instead of
  column by column with a stride (the reference's cache-hostile loop);
* the second row pass divides only at the 64 sampled columns, and the second column
  pass runs only on those 64 columns.

Every float operation that reaches a sampled value is the same operation, on the same
operands, in the same order as in the reference, so the hash is identical. The build
must not contract a*b+c into FMA (setup.py passes -ffp-contract=off).

No validation here: hashmatch/hashing.py checks shapes, dtypes and contiguity.
"""
from libc.math cimport cos, sqrt
from libc.stdint cimport uint8_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

# Luma conventions (see hashmatch/hashing.py for which tool uses which).
cdef enum:
    LUMA_F64 = 0   # pdqhash (PyPI): numpy float64 r*0.299 + g*0.587 + b*0.114, cast to float32
    LUMA_F32 = 1   # Meta C++ fillFloatLumaFromRGB: float32 coefficients, float32 arithmetic
    LUMA_GREY = 2  # Meta C++ fillFloatLumaFromGrey: the grey value itself

LUMA_PDQHASH = LUMA_F64
LUMA_CPP_RGB = LUMA_F32
LUMA_CPP_GREY = LUMA_GREY
cdef enum:
    MIN_DIM = 5    # the reference hashes smaller images to all zeros, quality 0

NUM_DIHEDRAL = 8
MIN_HASHABLE_DIM = MIN_DIM

cdef float LUMA_R = 0.299
cdef float LUMA_G = 0.587
cdef float LUMA_B = 0.114

# D[i][j] = sqrt(2/64) * cos(pi/128 * (i+1) * (2j+1)), rounded exactly as the C++ does:
# a float scale times a double cosine, the double product stored as float.
cdef float DCT[16][64]
cdef float DCT_T[64][16]


cdef void _init_dct() noexcept nogil:
    cdef float scale = <float>sqrt(2.0 / 64.0)
    cdef double pi = 3.14159265358979323846
    cdef int i, j
    for i in range(16):
        for j in range(64):
            DCT[i][j] = <float>(<double>scale * cos((pi / 2.0 / 64.0) * <double>(i + 1) * <double>(2 * j + 1)))
            DCT_T[j][i] = DCT[i][j]


_init_dct()


cdef void _luma_row(const uint8_t* px, Py_ssize_t ncols, Py_ssize_t nch, int mode, float* out) noexcept nogil:
    cdef Py_ssize_t c
    # Grey input (one channel) stands for R = G = B, as Pillow's convert("RGB") makes it.
    cdef Py_ssize_t g = 1 if nch >= 3 else 0
    cdef Py_ssize_t b = 2 if nch >= 3 else 0
    cdef const uint8_t* p
    if mode == LUMA_F64:
        for c in range(ncols):
            p = px + c * nch
            out[c] = <float>(<double>p[0] * 0.299 + <double>p[g] * 0.587 + <double>p[b] * 0.114)
    elif mode == LUMA_F32:
        for c in range(ncols):
            p = px + c * nch
            out[c] = LUMA_R * <float>p[0] + LUMA_G * <float>p[g] + LUMA_B * <float>p[b]
    else:
        for c in range(ncols):
            out[c] = <float>px[c * nch]


cdef void _box_row(const float* inv, float* outv, Py_ssize_t n, int w) noexcept nogil:
    """box1DFloat with stride 1: the four phases of the reference, same sums, same order."""
    cdef int half = (w + 2) // 2
    cdef Py_ssize_t p1 = half - 1
    cdef Py_ssize_t p2 = w - half + 1
    cdef Py_ssize_t p3 = n - w
    cdef Py_ssize_t p4 = half - 1
    cdef Py_ssize_t li = 0, ri = 0, oi = 0, i
    cdef float s = 0.0
    cdef int cws = 0
    for i in range(p1):
        s += inv[ri]
        cws += 1
        ri += 1
    for i in range(p2):
        s += inv[ri]
        cws += 1
        outv[oi] = s / <float>cws
        ri += 1
        oi += 1
    for i in range(p3):
        s += inv[ri]
        s -= inv[li]
        outv[oi] = s / <float>cws
        li += 1
        ri += 1
        oi += 1
    for i in range(p4):
        s -= inv[li]
        cws -= 1
        outv[oi] = s / <float>cws
        li += 1
        oi += 1


cdef inline void _emit(float s, int cws, Py_ssize_t oi, const int* samples, int* k,
                       float* out, Py_ssize_t out_stride) noexcept nogil:
    # Several samples may share one source index when the dimension is below 64.
    while k[0] < 64 and samples[k[0]] == oi:
        out[k[0] * out_stride] = s / <float>cws
        k[0] += 1


cdef void _box_sampled(const float* inv, Py_ssize_t stride, Py_ssize_t n, int w,
                       const int* samples, float* out, Py_ssize_t out_stride) noexcept nogil:
    """box1DFloat that only divides (and stores) at the 64 decimation samples."""
    cdef int half = (w + 2) // 2
    cdef Py_ssize_t p1 = half - 1
    cdef Py_ssize_t p2 = w - half + 1
    cdef Py_ssize_t p3 = n - w
    cdef Py_ssize_t p4 = half - 1
    cdef Py_ssize_t li = 0, ri = 0, oi = 0, i
    cdef float s = 0.0
    cdef int cws = 0
    cdef int k = 0
    for i in range(p1):
        s += inv[ri * stride]
        cws += 1
        ri += 1
    for i in range(p2):
        s += inv[ri * stride]
        cws += 1
        _emit(s, cws, oi, samples, &k, out, out_stride)
        ri += 1
        oi += 1
    for i in range(p3):
        s += inv[ri * stride]
        s -= inv[li * stride]
        if k < 64 and samples[k] == oi:
            _emit(s, cws, oi, samples, &k, out, out_stride)
        li += 1
        ri += 1
        oi += 1
    for i in range(p4):
        s -= inv[li * stride]
        cws -= 1
        _emit(s, cws, oi, samples, &k, out, out_stride)
        li += 1
        oi += 1


cdef int _downsample(const uint8_t* px, Py_ssize_t nrows, Py_ssize_t ncols, Py_ssize_t nch,
                     int mode, float* a64) noexcept nogil:
    """Luma, tent filter (X, Y, X, Y box passes) and decimation to 64x64 into a64.

    Streams the image once: each luma row goes through the first row pass into a ring
    of the last (window + 1) rows; the first column pass keeps one running sum per
    column and emits a row as soon as its window is complete; each emitted row goes
    through the second row pass at the sampled columns only; the second column pass
    then runs over the nrows x 64 result.
    """
    cdef int wr = <int>((ncols + 127) // 128)   # window along rows (horizontal passes)
    cdef int wc = <int>((nrows + 127) // 128)   # window along columns (vertical passes)
    cdef int xs[64]
    cdef int ys[64]
    cdef int k
    for k in range(64):
        xs[k] = <int>(((k + 0.5) * ncols) / 64)
        ys[k] = <int>(((k + 0.5) * nrows) / 64)

    cdef Py_ssize_t nring = wc + 1
    cdef float* lumarow = <float*>malloc(ncols * sizeof(float))
    cdef float* ring = <float*>malloc(nring * ncols * sizeof(float))
    cdef float* ysum = <float*>malloc(ncols * sizeof(float))
    cdef float* yrow = <float*>malloc(ncols * sizeof(float))
    cdef float* x2 = <float*>malloc(nrows * 64 * sizeof(float))
    if lumarow == NULL or ring == NULL or ysum == NULL or yrow == NULL or x2 == NULL:
        free(lumarow); free(ring); free(ysum); free(yrow); free(x2)
        return -1
    memset(ysum, 0, ncols * sizeof(float))

    cdef int half = (wc + 2) // 2
    cdef Py_ssize_t p1 = half - 1
    cdef Py_ssize_t p4 = half - 1
    cdef int cws = 0
    cdef Py_ssize_t ri, c, t, oi
    cdef float* cur
    cdef const float* old
    cdef float fcws
    for ri in range(nrows):
        _luma_row(px + ri * ncols * nch, ncols, nch, mode, lumarow)
        cur = ring + (ri % nring) * ncols
        _box_row(lumarow, cur, ncols, wr)
        if ri < wc:
            # Phases 1 and 2 of the column pass: add only.
            for c in range(ncols):
                ysum[c] += cur[c]
            cws += 1
            if ri < p1:
                continue
        else:
            # Phase 3: add the entering row, then subtract the leaving one.
            old = ring + ((ri - wc) % nring) * ncols
            for c in range(ncols):
                ysum[c] += cur[c]
                ysum[c] -= old[c]
        fcws = <float>cws
        for c in range(ncols):
            yrow[c] = ysum[c] / fcws
        _box_sampled(yrow, 1, ncols, wr, xs, x2 + (ri - p1) * 64, 1)
    for t in range(p4):
        # Phase 4: subtract only, shrinking window.
        old = ring + ((nrows - wc + t) % nring) * ncols
        for c in range(ncols):
            ysum[c] -= old[c]
        cws -= 1
        fcws = <float>cws
        for c in range(ncols):
            yrow[c] = ysum[c] / fcws
        oi = nrows - p4 + t
        _box_sampled(yrow, 1, ncols, wr, xs, x2 + oi * 64, 1)

    for k in range(64):
        _box_sampled(x2 + k, 64, nrows, wc, ys, a64 + k, 64)

    free(lumarow); free(ring); free(ysum); free(yrow); free(x2)
    return 0


cdef int _quality(const float* a) noexcept nogil:
    cdef int gradient_sum = 0
    cdef int i, j, d
    cdef float u, v
    for i in range(63):
        for j in range(64):
            u = a[i * 64 + j]
            v = a[(i + 1) * 64 + j]
            d = <int>(((u - v) * <float>100) / <float>255)
            gradient_sum += d if d >= 0 else -d
    for i in range(64):
        for j in range(63):
            u = a[i * 64 + j]
            v = a[i * 64 + j + 1]
            d = <int>(((u - v) * <float>100) / <float>255)
            gradient_sum += d if d >= 0 else -d
    cdef int quality = gradient_sum // 90
    return 100 if quality > 100 else quality


cdef void _dct64to16(const float* a, float* b) noexcept nogil:
    """B = D A D^T, each output a float sum over k in increasing order, as the reference."""
    cdef float t[16][64]
    cdef int i, j, k
    cdef float d
    memset(&t[0][0], 0, sizeof(t))
    memset(b, 0, 256 * sizeof(float))
    for i in range(16):
        for k in range(64):
            d = DCT[i][k]
            for j in range(64):
                t[i][j] = t[i][j] + d * a[k * 64 + j]
    for i in range(16):
        for k in range(64):
            d = t[i][k]
            for j in range(16):
                b[i * 16 + j] = b[i * 16 + j] + d * DCT_T[k][j]


cdef float _torben(const float* m, int n) noexcept nogil:
    """Torben's median (the reference's torben.cpp): the ((n+1)/2)-th smallest value."""
    cdef int i, less, greater, equal
    cdef float mn = m[0], mx = m[0], guess, maxltguess, mingtguess
    for i in range(1, n):
        if m[i] < mn:
            mn = m[i]
        if m[i] > mx:
            mx = m[i]
    while True:
        guess = (mn + mx) / 2
        less = 0
        greater = 0
        equal = 0
        maxltguess = mn
        mingtguess = mx
        for i in range(n):
            if m[i] < guess:
                less += 1
                if m[i] > maxltguess:
                    maxltguess = m[i]
            elif m[i] > guess:
                greater += 1
                if m[i] < mingtguess:
                    mingtguess = m[i]
            else:
                equal += 1
        if less <= (n + 1) // 2 and greater <= (n + 1) // 2:
            break
        elif less > greater:
            mx = maxltguess
        else:
            mn = mingtguess
    if less >= (n + 1) // 2:
        return maxltguess
    elif less + equal >= (n + 1) // 2:
        return guess
    return mingtguess


cdef void _bits(const float* b, uint8_t* out) noexcept nogil:
    """Threshold at the median; write the 256 bits as 32 big-endian bytes (the hex order)."""
    cdef float median = _torben(b, 256)
    cdef int i, j
    cdef unsigned int word
    for i in range(16):
        word = 0
        for j in range(16):
            if b[i * 16 + j] > median:
                word |= 1u << j
        out[2 * (15 - i)] = <uint8_t>(word >> 8)
        out[2 * (15 - i) + 1] = <uint8_t>(word & 0xff)


cdef void _dihedral(const float* a, float* b, int which) noexcept nogil:
    """Coefficient sign flips / transposition for the 7 non-identity dihedral transforms.

    Order as pdqDihedralHash256esFromFloatLuma: rot90, rot180, rot270, flipX, flipY,
    flipPlus1 (transpose), flipMinus1 (transverse).
    """
    cdef int i, j
    cdef float v
    for i in range(16):
        for j in range(16):
            v = a[i * 16 + j]
            if which == 1:
                b[j * 16 + i] = v if (j & 1) else -v
            elif which == 2:
                b[i * 16 + j] = -v if ((i + j) & 1) else v
            elif which == 3:
                b[j * 16 + i] = v if (i & 1) else -v
            elif which == 4:
                b[i * 16 + j] = v if (i & 1) else -v
            elif which == 5:
                b[i * 16 + j] = v if (j & 1) else -v
            elif which == 6:
                b[j * 16 + i] = v
            else:
                b[j * 16 + i] = -v if ((i + j) & 1) else v


cdef int _pdq(const uint8_t* px, Py_ssize_t nrows, Py_ssize_t ncols, Py_ssize_t nch, int mode,
              bint skip_filter_at_64, int nhashes, uint8_t* out, int* quality) noexcept nogil:
    cdef float a[64 * 64]
    cdef float coeffs[256]
    cdef float aux[256]
    cdef Py_ssize_t r
    cdef int h
    if nrows < MIN_DIM or ncols < MIN_DIM:
        memset(out, 0, nhashes * 32)
        quality[0] = 0
        return 0
    if skip_filter_at_64 and nrows == 64 and ncols == 64:
        # Today's C++ skips the filter for exactly 64x64 input (pre-downsampled video
        # frames); the C++ vendored by pdqhash predates that and filters (a window of 1
        # is not an identity in float: (a + b) - a != b).
        for r in range(64):
            _luma_row(px + r * 64 * nch, 64, nch, mode, a + r * 64)
    elif _downsample(px, nrows, ncols, nch, mode, a) != 0:
        return -1
    quality[0] = _quality(a)
    _dct64to16(a, coeffs)
    _bits(coeffs, out)
    for h in range(1, nhashes):
        _dihedral(coeffs, aux, h)
        _bits(aux, out + 32 * h)
    return 0


def pdq_hash(const uint8_t[:, :, ::1] pixels, int luma_mode, bint skip_filter_at_64, uint8_t[:, ::1] out):
    """Hash an (H, W, C) uint8 image, C in {1, 3, 4} (channels past the third are ignored).

    out has shape (1, 32) for the hash alone or (8, 32) for the hash and its 7 dihedral
    variants; each row is the 256-bit hash as big-endian bytes. Returns the quality.
    Releases the GIL.
    """
    cdef Py_ssize_t nrows = pixels.shape[0], ncols = pixels.shape[1], nch = pixels.shape[2]
    cdef int nhashes = <int>out.shape[0]
    cdef int quality = 0
    cdef int rc
    cdef const uint8_t* px = &pixels[0, 0, 0]
    cdef uint8_t* o = &out[0, 0]
    with nogil:
        rc = _pdq(px, nrows, ncols, nch, luma_mode, skip_filter_at_64, nhashes, o, &quality)
    if rc != 0:
        raise MemoryError("PDQ working buffers")
    return quality
