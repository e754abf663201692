# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""pHash, dHash and aHash kernels, bit-compatible with imagehash at its default sizes.

Inputs are the grey thumbnails imagehash makes (Pillow convert("L") then a LANCZOS
resize, done by hashmatch/hashing.py): 32x32 for pHash, 8 rows x 9 columns for dHash,
8x8 for aHash. Each kernel writes the 64 bits as 8 bytes, most significant bit first,
which is imagehash's str() order.

pHash needs scipy.fftpack.dct's exact rounding (on flat or mirror-symmetric images the
coefficients that are zero in exact arithmetic come out as +-1e-14 noise whose sign
decides bits), so the DCT is pocketfft's own operation sequence (pocketfft_dct32.h).
"""
from libc.stdint cimport uint8_t


cdef extern from "pocketfft_dct32.h" nogil:
    void hm_dct2_32x32(const double* inp, double* out)


cdef inline void _pack(const bint* bits, uint8_t* out) noexcept nogil:
    cdef int n
    for n in range(8):
        out[n] = 0
    for n in range(64):
        if bits[n]:
            out[n >> 3] |= <uint8_t>(0x80 >> (n & 7))


def phash(const uint8_t[:, ::1] thumb, uint8_t[::1] out):
    """thumb: 32x32 grey. Bits: DCT-II along axis 0 then axis 1, the top-left 8x8
    coefficients compared (>) with their median (mean of the 32nd and 33rd values)."""
    cdef double pixels[32 * 32]
    cdef double coeffs[32 * 32]
    cdef double low[64]
    cdef double srt[64]
    cdef bint bits[64]
    cdef int i, j
    cdef double v, median
    with nogil:
        for i in range(32):
            for j in range(32):
                pixels[i * 32 + j] = <double>thumb[i, j]
        hm_dct2_32x32(pixels, coeffs)
        for i in range(8):
            for j in range(8):
                low[i * 8 + j] = coeffs[i * 32 + j]
        # Insertion sort: 64 values, no allocation.
        for i in range(64):
            v = low[i]
            j = i - 1
            while j >= 0 and srt[j] > v:
                srt[j + 1] = srt[j]
                j -= 1
            srt[j + 1] = v
        median = (srt[31] + srt[32]) / 2.0
        for i in range(64):
            bits[i] = low[i] > median
        _pack(bits, &out[0])


def dhash(const uint8_t[:, ::1] thumb, uint8_t[::1] out):
    """thumb: 8 rows x 9 columns grey. Bit (r, c) = pixel(r, c + 1) > pixel(r, c)."""
    cdef bint bits[64]
    cdef int r, c
    with nogil:
        for r in range(8):
            for c in range(8):
                bits[r * 8 + c] = thumb[r, c + 1] > thumb[r, c]
        _pack(bits, &out[0])


def ahash(const uint8_t[:, ::1] thumb, uint8_t[::1] out):
    """thumb: 8x8 grey. Bit = pixel > mean; the integer sum makes the mean exact."""
    cdef bint bits[64]
    cdef int r, c, total = 0
    cdef double mean
    with nogil:
        for r in range(8):
            for c in range(8):
                total += thumb[r, c]
        mean = total / 64.0
        for r in range(8):
            for c in range(8):
                bits[r * 8 + c] = thumb[r, c] > mean
        _pack(bits, &out[0])
