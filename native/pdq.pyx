# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""PDQ kernels: luma, Jarosz tent filter, decimation, quality, DCT, median threshold, dihedral.

A bit-exact re-implementation of Meta's PDQ (ThreatExchange pdq/cpp: hashing/pdqhashing.cpp,
downscaling/downscaling.cpp), restructured for speed rather than translated line by line.
The downscale (luma, then the Jarosz tent filter as four box passes X, Y, X, Y, then
decimation to 64x64) streams the image once, LANES (16) rows at a time:

* luma of the 16 rows is computed into an interleaved buffer (column c of row j at
  [c * 16 + j]). For pdqhash's convention (LUMA_F64) it is the integer
  N = 299 r + 587 g + 114 b over 1000 in float, which provably equals pdqhash's double
  formula for every input (see the note above hm_luma4), four pixels per SSE2 step;
* the first row pass then runs on the 16 rows at once, one row per vector lane. A single
  row's running sum is a serial chain of dependent float adds; 16 independent chains
  side by side overlap, and the per-pixel division becomes one divps per 4 pixels;
* 4x4 transposes put the filtered rows back into a ring of separate rows, where the
  first column pass runs row by row over a vector of per-column running sums (instead
  of the reference's cache-hostile column-by-column loop with a stride);
* the column-filtered rows are collected 16 at a time, transposed into lanes again, and
  the second row pass runs on them at once, dividing only at the 64 sampled columns;
* the second column pass runs only on those 64 columns, 16 of them per call.

Every float operation that reaches a sampled value is the same operation, on the same
operands, in the same order as in the reference (vector lanes are IEEE single precision
exactly like scalar code), so the hash is identical. The build must not contract a*b+c
into FMA (setup.py passes -ffp-contract=off). SSE2 intrinsics are used where available
(baseline on x86-64); elsewhere a plain C struct of 4 floats gives the same results.

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


# Portable 4-float vectors for the lane-parallel passes. Every operation is the IEEE
# single-precision operation lane by lane (SSE2 addps/subps/divps round exactly like
# addss/subss/divss), so a vector pass gives each lane the bits the scalar pass would.
# SSE2 is baseline on x86-64; elsewhere a plain struct stands in (same results, and
# compilers still vectorise or at least overlap the independent lanes).
cdef extern from "pdq_simd.h":
    ctypedef struct hm_f4:
        pass
    hm_f4 hm_load(const float* p) noexcept nogil
    void hm_store(float* p, hm_f4 v) noexcept nogil
    hm_f4 hm_add(hm_f4 a, hm_f4 b) noexcept nogil
    hm_f4 hm_sub(hm_f4 a, hm_f4 b) noexcept nogil
    hm_f4 hm_div(hm_f4 a, hm_f4 b) noexcept nogil
    hm_f4 hm_set1(float x) noexcept nogil
    hm_f4 hm_zero() noexcept nogil
    void hm_transpose4(hm_f4* a, hm_f4* b, hm_f4* c, hm_f4* d) noexcept nogil

cdef enum:
    LANES = 16           # image rows handled together by the row passes
    NVEC = LANES // 4    # hm_f4 vectors per column of a block

# LUMA_F32: each channel value times its float coefficient, tabulated once. These are
# the very products fillFloatLumaFromRGB computes, so the two float adds below are the
# same operations on the same operands.
cdef float LUMA32[3][256]


cdef void _init_luma32() noexcept nogil:
    cdef int v
    for v in range(256):
        LUMA32[0][v] = LUMA_R * <float>v
        LUMA32[1][v] = LUMA_G * <float>v
        LUMA32[2][v] = LUMA_B * <float>v


_init_luma32()


cdef void _luma_row(const uint8_t* px, Py_ssize_t ncols, Py_ssize_t nch, int mode, float* out) noexcept nogil:
    """Luma of one row, row-major, in the reference's own arithmetic (the unfiltered 64x64 path)."""
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


# LUMA_F64 in the row passes: <float>(r * 0.299 + g * 0.587 + b * 0.114), computed in
# double, always equals the correctly rounded float of the exact N / 1000 with the
# integer N = 299 r + 587 g + 114 b. (The double result is within a few 1e-16 relative
# of N / 1000, while N / 1000 is never closer than 3e-11 relative to a point halfway
# between two floats: it would have to be a dyadic fraction with 25 significant bits,
# and N / 1000 is dyadic only when it is a multiple of 1/8, which is a float itself.
# All 2^24 (r, g, b) were also checked exhaustively.) N < 2^24 is exact as a float, so
# that correctly rounded quotient is simply (float)N / 1000.0f, one IEEE division. N is
# exact in 32-bit integers, so SSE2 gets it for 4 pixels with two pmaddwd.
cdef extern from "pdq_simd.h":
    float hm_milli1(int n) noexcept nogil
    void hm_luma4(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2, const uint8_t* p3,
                  float* out) noexcept nogil


cdef void _luma64_lanes(const uint8_t** rows, Py_ssize_t ncols, Py_ssize_t nch, float* out) noexcept nogil:
    """LUMA_F64 luma of LANES rows (nch 3 or 4), interleaved, via hm_luma4 (see above).

    hm_luma4 reads 4 bytes per pixel; with 3 channels the last pixel of a row has only
    3 bytes left (past the last row's end lies memory we do not own), so it is scalar.
    """
    cdef Py_ssize_t c, j, off = 0
    cdef Py_ssize_t nvec = ncols if nch >= 4 else ncols - 1
    cdef const uint8_t* p
    for c in range(nvec):
        for j in range(0, LANES, 4):
            hm_luma4(rows[j] + off, rows[j + 1] + off, rows[j + 2] + off, rows[j + 3] + off, out + j)
        off += nch
        out += LANES
    for c in range(nvec, ncols):
        for j in range(LANES):
            p = rows[j] + off
            out[j] = hm_milli1(299 * <int>p[0] + 587 * <int>p[1] + 114 * <int>p[2])
        off += nch
        out += LANES


cdef inline void _luma32_lanes(const uint8_t** rows, Py_ssize_t ncols, Py_ssize_t nch,
                               Py_ssize_t g, Py_ssize_t b, float* out) noexcept nogil:
    # LUMA_R * r + LUMA_G * g + LUMA_B * b in float, left to right, products from LUMA32.
    cdef Py_ssize_t c, j, off = 0
    cdef const uint8_t* p
    for c in range(ncols):
        for j in range(LANES):
            p = rows[j] + off
            out[j] = (LUMA32[0][p[0]] + LUMA32[1][p[g]]) + LUMA32[2][p[b]]
        off += nch
        out += LANES


cdef void _luma_lanes(const uint8_t** rows, Py_ssize_t ncols, Py_ssize_t nch, int mode,
                      float* out) noexcept nogil:
    """Luma of LANES rows at once, interleaved: out[c * LANES + j] is row j, column c.

    Grey input (nch 1 or 2: L, LA) stands for R = G = B; channels past the third (and the
    alpha of LA) are ignored.
    """
    cdef Py_ssize_t c, j
    if mode == LUMA_F64 and nch >= 3:
        _luma64_lanes(rows, ncols, nch, out)
    elif mode == LUMA_F64:
        # grey: r = g = b, so N / 1000 is the grey value itself, but keep to the formula
        for c in range(ncols):
            for j in range(LANES):
                out[c * LANES + j] = hm_milli1(1000 * <int>rows[j][c * nch])
    elif mode == LUMA_F32:
        if nch == 3:
            _luma32_lanes(rows, ncols, 3, 1, 2, out)
        elif nch == 4:
            _luma32_lanes(rows, ncols, 4, 1, 2, out)
        else:
            _luma32_lanes(rows, ncols, nch, 0, 0, out)
    else:
        for c in range(ncols):
            for j in range(LANES):
                out[c * LANES + j] = <float>rows[j][c * nch]


cdef void _box_lanes(const float* inp, float* out, Py_ssize_t n, int w) noexcept nogil:
    """box1DFloat along rows for LANES rows at once (interleaved layout, see _luma_lanes).

    The reference's four phases, each lane doing exactly the scalar operations of its
    row. A single row's running sum is one long chain of dependent adds (two per
    column); LANES independent chains side by side keep the adder and the divider busy.
    """
    cdef int half = (w + 2) // 2
    cdef Py_ssize_t p1 = half - 1
    cdef Py_ssize_t p2 = w - half + 1
    cdef Py_ssize_t p3 = n - w
    cdef Py_ssize_t p4 = half - 1
    cdef Py_ssize_t i
    cdef int v
    cdef const float* r = inp     # the entering column
    cdef const float* l = inp     # the leaving column
    cdef float* o = out
    cdef hm_f4 s[NVEC]
    cdef hm_f4 d
    cdef int cws = 0
    for v in range(NVEC):
        s[v] = hm_zero()
    for i in range(p1):
        for v in range(NVEC):
            s[v] = hm_add(s[v], hm_load(r + 4 * v))
        cws += 1
        r += LANES
    for i in range(p2):
        cws += 1
        d = hm_set1(<float>cws)
        for v in range(NVEC):
            s[v] = hm_add(s[v], hm_load(r + 4 * v))
            hm_store(o + 4 * v, hm_div(s[v], d))
        r += LANES
        o += LANES
    d = hm_set1(<float>cws)
    for i in range(p3):
        for v in range(NVEC):
            # add the entering value, then subtract the leaving one (two roundings, in order)
            s[v] = hm_sub(hm_add(s[v], hm_load(r + 4 * v)), hm_load(l + 4 * v))
            hm_store(o + 4 * v, hm_div(s[v], d))
        r += LANES
        l += LANES
        o += LANES
    for i in range(p4):
        cws -= 1
        d = hm_set1(<float>cws)
        for v in range(NVEC):
            s[v] = hm_sub(s[v], hm_load(l + 4 * v))
            hm_store(o + 4 * v, hm_div(s[v], d))
        l += LANES
        o += LANES


cdef inline void _emit_lanes(const hm_f4* s, int cws, Py_ssize_t oi, const int* samples,
                             int* k, float* out, Py_ssize_t out_ld) noexcept nogil:
    # Several samples may share one source index when the dimension is below 64.
    cdef hm_f4 d
    cdef int v
    while k[0] < 64 and samples[k[0]] == oi:
        d = hm_set1(<float>cws)
        for v in range(NVEC):
            hm_store(out + k[0] * out_ld + 4 * v, hm_div(s[v], d))
        k[0] += 1


cdef void _box_lanes_sampled(const float* inp, Py_ssize_t ld, Py_ssize_t n, int w,
                             const int* samples, float* out, Py_ssize_t out_ld) noexcept nogil:
    """box1DFloat over LANES independent lanes that divides (and stores) only at the samples.

    Position i of lane j is inp[i * ld + j]; sample k of lane j goes to out[k * out_ld + j].
    Used for the second row pass (lanes = LANES rows, interleaved) and for the second
    column pass (lanes = LANES adjacent columns of the row-major nrows x 64 intermediate).
    """
    cdef int half = (w + 2) // 2
    cdef Py_ssize_t p1 = half - 1
    cdef Py_ssize_t p2 = w - half + 1
    cdef Py_ssize_t p3 = n - w
    cdef Py_ssize_t p4 = half - 1
    cdef Py_ssize_t oi = 0, i
    cdef int v
    cdef const float* r = inp
    cdef const float* l = inp
    cdef hm_f4 s[NVEC]
    cdef int cws = 0
    cdef int k = 0
    for v in range(NVEC):
        s[v] = hm_zero()
    for i in range(p1):
        for v in range(NVEC):
            s[v] = hm_add(s[v], hm_load(r + 4 * v))
        cws += 1
        r += ld
    for i in range(p2):
        for v in range(NVEC):
            s[v] = hm_add(s[v], hm_load(r + 4 * v))
        cws += 1
        _emit_lanes(s, cws, oi, samples, &k, out, out_ld)
        r += ld
        oi += 1
    for i in range(p3):
        for v in range(NVEC):
            s[v] = hm_sub(hm_add(s[v], hm_load(r + 4 * v)), hm_load(l + 4 * v))
        if k < 64 and samples[k] == oi:
            _emit_lanes(s, cws, oi, samples, &k, out, out_ld)
        r += ld
        l += ld
        oi += 1
    for i in range(p4):
        for v in range(NVEC):
            s[v] = hm_sub(s[v], hm_load(l + 4 * v))
        cws -= 1
        _emit_lanes(s, cws, oi, samples, &k, out, out_ld)
        l += ld
        oi += 1


cdef void _lanes_to_rows(const float* inp, Py_ssize_t n, float** rows) noexcept nogil:
    """Interleaved (inp[c * LANES + j]) to LANES separate rows (rows[j][c]), 4x4 blocks at a time."""
    cdef Py_ssize_t c = 0, h, j
    cdef hm_f4 a, b, e, f
    while c + 4 <= n:
        for h in range(0, LANES, 4):
            a = hm_load(inp + c * LANES + h)
            b = hm_load(inp + (c + 1) * LANES + h)
            e = hm_load(inp + (c + 2) * LANES + h)
            f = hm_load(inp + (c + 3) * LANES + h)
            hm_transpose4(&a, &b, &e, &f)
            hm_store(rows[h] + c, a)
            hm_store(rows[h + 1] + c, b)
            hm_store(rows[h + 2] + c, e)
            hm_store(rows[h + 3] + c, f)
        c += 4
    while c < n:
        for j in range(LANES):
            rows[j][c] = inp[c * LANES + j]
        c += 1


cdef void _rows_to_lanes(float** rows, Py_ssize_t n, float* out) noexcept nogil:
    """The inverse of _lanes_to_rows."""
    cdef Py_ssize_t c = 0, h, j
    cdef hm_f4 a, b, e, f
    while c + 4 <= n:
        for h in range(0, LANES, 4):
            a = hm_load(rows[h] + c)
            b = hm_load(rows[h + 1] + c)
            e = hm_load(rows[h + 2] + c)
            f = hm_load(rows[h + 3] + c)
            hm_transpose4(&a, &b, &e, &f)
            hm_store(out + c * LANES + h, a)
            hm_store(out + (c + 1) * LANES + h, b)
            hm_store(out + (c + 2) * LANES + h, e)
            hm_store(out + (c + 3) * LANES + h, f)
        c += 4
    while c < n:
        for j in range(LANES):
            out[c * LANES + j] = rows[j][c]
        c += 1


cdef void _col_step(float* ysum, const float* enter, const float* leave, float* y,
                    Py_ssize_t n, int cws) noexcept nogil:
    """One step of the first column pass over all columns (lanes = columns).

    ysum += enter (if given), then ysum -= leave (if given), then y = ysum / cws (if y
    is given): the order of the reference's phases 1-4 for each column.
    """
    cdef Py_ssize_t c = 0
    cdef float fcws = <float>cws
    cdef hm_f4 d = hm_set1(fcws), s
    cdef float t
    while c + 4 <= n:
        s = hm_load(ysum + c)
        if enter != NULL:
            s = hm_add(s, hm_load(enter + c))
        if leave != NULL:
            s = hm_sub(s, hm_load(leave + c))
        hm_store(ysum + c, s)
        if y != NULL:
            hm_store(y + c, hm_div(s, d))
        c += 4
    while c < n:
        t = ysum[c]
        if enter != NULL:
            t = t + enter[c]
        if leave != NULL:
            t = t - leave[c]
        ysum[c] = t
        if y != NULL:
            y[c] = t / fcws
        c += 1


cdef void _flush(float** yrows, int count, Py_ssize_t ncols, int wr, const int* xs,
                 float* yt, float* smp, float* x2row) noexcept nogil:
    """Second row pass on up to LANES column-filtered rows; sample k of row j goes to
    x2row[j * 64 + k]. Rows past count hold stale data and are computed but dropped."""
    cdef int j, k
    _rows_to_lanes(yrows, ncols, yt)
    _box_lanes_sampled(yt, LANES, ncols, wr, xs, smp, LANES)
    for j in range(count):
        for k in range(64):
            x2row[j * 64 + k] = smp[k * LANES + j]


cdef int _downsample(const uint8_t* px, Py_ssize_t nrows, Py_ssize_t ncols, Py_ssize_t nch,
                     int mode, float* a64) noexcept nogil:
    """Luma, tent filter (X, Y, X, Y box passes) and decimation to 64x64 into a64.

    Streams the image once, LANES rows at a time: luma of the block, interleaved; the
    first row pass on all its rows at once; back to separate rows in a ring of the last
    (window + LANES) rows. The first column pass keeps one running sum per column and
    emits a row as soon as its window is complete; emitted rows are collected LANES at
    a time, interleaved again, and go through the second row pass at the sampled columns
    only. The second column pass then runs over the nrows x 64 result, LANES columns at once.
    """
    cdef int wr = <int>((ncols + 127) // 128)   # window along rows (horizontal passes)
    cdef int wc = <int>((nrows + 127) // 128)   # window along columns (vertical passes)
    cdef int xs[64]
    cdef int ys[64]
    cdef int k
    for k in range(64):
        xs[k] = <int>(((k + 0.5) * ncols) / 64)
        ys[k] = <int>(((k + 0.5) * nrows) / 64)

    # All row buffers live in one block, in slots of rs floats: rs is an odd multiple of
    # 16 floats (64 bytes), so no two of the few dozen slots sit a multiple of 4 KiB
    # apart. With rows exactly 4 KiB apart (1024 columns) the row-by-row loops, which
    # touch 8 or more rows at once, fall into the same L1 sets and into 4K aliasing
    # stalls between loads and stores.
    cdef Py_ssize_t rs = ((ncols + 15) // 16) | 1
    rs *= 16
    # The ring holds rows ri - wc .. ri0 + LANES - 1 while block ri0 is column-filtered.
    cdef Py_ssize_t nring = wc + LANES
    cdef Py_ssize_t nslots = 3 * LANES + nring + 2   # see the carving below
    cdef float* block = <float*>malloc(nslots * rs * sizeof(float))
    cdef float* x2 = <float*>malloc(nrows * 64 * sizeof(float))
    if block == NULL or x2 == NULL:
        free(block); free(x2)
        return -1
    cdef float* lanes_a = block                  # LANES slots: ncols x LANES interleaved
    cdef float* lanes_b = lanes_a + LANES * rs   # LANES slots: likewise
    cdef float* ring = lanes_b + LANES * rs      # nring slots
    cdef float* spare = ring + nring * rs        # sink for rows past the last
    cdef float* ysum = spare + rs                # running column sums
    cdef float* yblk = ysum + rs                 # LANES slots: column-filtered rows
    memset(ysum, 0, ncols * sizeof(float))
    memset(yblk, 0, LANES * rs * sizeof(float))  # stale lanes of a last partial block
    cdef float smp[64 * LANES]

    cdef const uint8_t* src[LANES]
    cdef float* dst[LANES]
    cdef float* yrows[LANES]
    cdef int j
    for j in range(LANES):
        yrows[j] = yblk + j * rs

    cdef int half = (wc + 2) // 2
    cdef Py_ssize_t p1 = half - 1
    cdef Py_ssize_t p4 = half - 1
    cdef int cws = 0
    cdef Py_ssize_t ri0 = 0, ri, nb, t
    cdef Py_ssize_t oi = 0        # next output row of the first column pass
    cdef Py_ssize_t rowbytes = ncols * nch
    while ri0 < nrows:
        nb = nrows - ri0 if nrows - ri0 < LANES else LANES
        for j in range(LANES):
            # Lanes past the last row repeat it; their results go to the spare row.
            src[j] = px + (ri0 + j if j < nb else nrows - 1) * rowbytes
            dst[j] = ring + ((ri0 + j) % nring) * rs if j < nb else spare
        _luma_lanes(src, ncols, nch, mode, lanes_a)
        _box_lanes(lanes_a, lanes_b, ncols, wr)
        _lanes_to_rows(lanes_b, ncols, dst)
        for j in range(nb):
            ri = ri0 + j
            if ri < wc:
                # Phases 1 and 2 of the column pass: add only; emit from row p1 on.
                cws += 1
                if ri < p1:
                    _col_step(ysum, dst[j], NULL, NULL, ncols, cws)
                    continue
                _col_step(ysum, dst[j], NULL, yrows[oi % LANES], ncols, cws)
            else:
                # Phase 3: add the entering row, then subtract the leaving one.
                _col_step(ysum, dst[j], ring + ((ri - wc) % nring) * rs,
                          yrows[oi % LANES], ncols, cws)
            oi += 1
            if oi % LANES == 0:
                _flush(yrows, LANES, ncols, wr, xs, lanes_a, smp, x2 + (oi - LANES) * 64)
        ri0 += nb
    for t in range(p4):
        # Phase 4: subtract only, shrinking window.
        cws -= 1
        _col_step(ysum, NULL, ring + ((nrows - wc + t) % nring) * rs,
                  yrows[oi % LANES], ncols, cws)
        oi += 1
        if oi % LANES == 0:
            _flush(yrows, LANES, ncols, wr, xs, lanes_a, smp, x2 + (oi - LANES) * 64)
    if oi % LANES != 0:
        _flush(yrows, <int>(oi % LANES), ncols, wr, xs, lanes_a, smp, x2 + (oi - oi % LANES) * 64)

    for k in range(64 // LANES):
        _box_lanes_sampled(x2 + k * LANES, 64, nrows, wc, ys, a64 + k * LANES, 64)

    free(block); free(x2)
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
