#include "CSupport.h"
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// y[i][j] = sum_k x[i][k] * W[j][k] for a few rows of x (decoding) and weights kept in their
// ggml block format, rows j0..<j1. The weights are dequantised exactly as Dequantize.swift does
// (multiply, then add; no fused multiply-add), so they equal the f32 path's weights bit for bit;
// only the order of the sums differs. Reading 4-8 bits per weight instead of 32 is the speed-up.
#pragma clang fp contract(off)

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else { // subnormal
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; exp--; }
            bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7F800000 | (mant << 13);
    else bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t load_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

// Portable versions.
static void q4_1_base(const float *x, long ldx, const uint8_t *w, float *y, long ldy, long m, long k, long j0, long j1, int accumulate) {
    long blocks = k / 32;
    float wt[32];
    for (long j = j0; j < j1; j++) {
        const uint8_t *row = w + j * blocks * 20;
        if (!accumulate) for (long i = 0; i < m; i++) y[i * ldy + j] = 0;
        for (long b = 0; b < blocks; b++) {
            const uint8_t *blk = row + b * 20;
            float d = half_to_float(load_u16(blk)), mn = half_to_float(load_u16(blk + 2));
            for (int t = 0; t < 16; t++) {
                wt[t] = (float)(blk[4 + t] & 15) * d + mn;
                wt[t + 16] = (float)(blk[4 + t] >> 4) * d + mn;
            }
            for (long i = 0; i < m; i++) {
                const float *xr = x + i * ldx + b * 32;
                float s = 0;
                for (int t = 0; t < 32; t++) s += wt[t] * xr[t];
                y[i * ldy + j] += s;
            }
        }
    }
}

static void q8_0_base(const float *x, long ldx, const uint8_t *w, float *y, long ldy, long m, long k, long j0, long j1, int accumulate) {
    long blocks = k / 32;
    float wt[32];
    for (long j = j0; j < j1; j++) {
        const uint8_t *row = w + j * blocks * 34;
        if (!accumulate) for (long i = 0; i < m; i++) y[i * ldy + j] = 0;
        for (long b = 0; b < blocks; b++) {
            const uint8_t *blk = row + b * 34;
            float d = half_to_float(load_u16(blk));
            for (int t = 0; t < 32; t++) wt[t] = (float)(int8_t)blk[2 + t] * d;
            for (long i = 0; i < m; i++) {
                const float *xr = x + i * ldx + b * 32;
                float s = 0;
                for (int t = 0; t < 32; t++) s += wt[t] * xr[t];
                y[i * ldy + j] += s;
            }
        }
    }
}

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))
// Tiles of 4 weight rows × 4 activation rows: each dequantised weight vector serves 4 rows of x
// and each loaded x vector serves 4 weight rows, so loads stay well below the FMAs.

AVX512 static inline void dequant_q4_1(const uint8_t *blk, __m512 *w0, __m512 *w1) {
    const __m128i low = _mm_set1_epi8(0x0F);
    __m512 d = _mm512_set1_ps(_cvtsh_ss(load_u16(blk))), mn = _mm512_set1_ps(_cvtsh_ss(load_u16(blk + 2)));
    __m128i q = _mm_loadu_si128((const __m128i *)(blk + 4));
    *w0 = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(q, low))), d), mn);
    *w1 = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), low))), d), mn);
}

AVX512 static inline void dequant_q8_0(const uint8_t *blk, __m512 *w0, __m512 *w1) {
    __m512 d = _mm512_set1_ps(_cvtsh_ss(load_u16(blk)));
    *w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2)))), d);
    *w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18)))), d);
}

// Loop bounds are constants so the 16 accumulators stay in registers; a partial tile repeats its
// last row of x or W (the extra results are not stored).
#define TILED_KERNEL(NAME, BLOCK_BYTES, DEQUANT, TI, TJ)                                                   \
    AVX512 static void NAME(const float *x, long ldx, const uint8_t *w, float *y, long ldy, long m,   \
                            long k, long j0, long j1, int accumulate) {                                \
        long blocks = k / 32, rowBytes = blocks * BLOCK_BYTES;                                        \
        for (long j = j0; j < j1; j += TJ) {                                                          \
            int tj = j1 - j < TJ ? (int)(j1 - j) : TJ;                                                \
            const uint8_t *wr[TJ];                                                                    \
            for (int q = 0; q < TJ; q++) wr[q] = w + (j + (q < tj ? q : tj - 1)) * rowBytes;          \
            for (long i0 = 0; i0 < m; i0 += TI) {                                                     \
                int ti = m - i0 < TI ? (int)(m - i0) : TI;                                            \
                const float *xr[TI];                                                                  \
                for (int i = 0; i < TI; i++) xr[i] = x + (i0 + (i < ti ? i : ti - 1)) * ldx;          \
                __m512 acc[TI][TJ];                                                                   \
                for (int i = 0; i < TI; i++)                                                          \
                    for (int q = 0; q < TJ; q++) acc[i][q] = _mm512_setzero_ps();                     \
                for (long b = 0; b < blocks; b++) {                                                   \
                    __m512 w0[TJ], w1[TJ];                                                            \
                    for (int q = 0; q < TJ; q++) DEQUANT(wr[q] + b * BLOCK_BYTES, &w0[q], &w1[q]);    \
                    for (int i = 0; i < TI; i++) {                                                    \
                        __m512 x0 = _mm512_loadu_ps(xr[i] + b * 32), x1 = _mm512_loadu_ps(xr[i] + b * 32 + 16); \
                        for (int q = 0; q < TJ; q++) {                                                \
                            acc[i][q] = _mm512_fmadd_ps(w0[q], x0, acc[i][q]);                        \
                            acc[i][q] = _mm512_fmadd_ps(w1[q], x1, acc[i][q]);                        \
                        }                                                                             \
                    }                                                                                 \
                }                                                                                     \
                for (int i = 0; i < ti; i++)                                                          \
                    for (int q = 0; q < tj; q++) {                                                    \
                        float *out = y + (i0 + i) * ldy + j + q;                                      \
                        *out = (accumulate ? *out : 0.0f) + _mm512_reduce_add_ps(acc[i][q]);          \
                    }                                                                                 \
            }                                                                                         \
        }                                                                                             \
    }

// Tile shapes by the number of rows of x: one dequantised weight vector serves TI rows of x and
// one loaded x vector serves TJ weight rows; TI × TJ accumulators stay in registers.
TILED_KERNEL(q4_1_1x8, 20, dequant_q4_1, 1, 8)
TILED_KERNEL(q4_1_2x4, 20, dequant_q4_1, 2, 4)
TILED_KERNEL(q4_1_4x4, 20, dequant_q4_1, 4, 4)
TILED_KERNEL(q4_1_8x2, 20, dequant_q4_1, 8, 2)
TILED_KERNEL(q8_0_1x8, 34, dequant_q8_0, 1, 8)
TILED_KERNEL(q8_0_2x4, 34, dequant_q8_0, 2, 4)
TILED_KERNEL(q8_0_4x4, 34, dequant_q8_0, 4, 4)
TILED_KERNEL(q8_0_8x2, 34, dequant_q8_0, 8, 2)

#define DISPATCH(PREFIX)                                                                  \
    if (m == 1) PREFIX##_1x8(x, ldx, (const uint8_t *)w, y, ldy, m, k, j0, j1, accumulate);   \
    else if (m == 2) PREFIX##_2x4(x, ldx, (const uint8_t *)w, y, ldy, m, k, j0, j1, accumulate); \
    else if (m <= 4) PREFIX##_4x4(x, ldx, (const uint8_t *)w, y, ldy, m, k, j0, j1, accumulate); \
    else PREFIX##_8x2(x, ldx, (const uint8_t *)w, y, ldy, m, k, j0, j1, accumulate);
#endif

static int portable_only = 0;
void mi_use_portable_kernels(int on) { portable_only = on; }

void mi_matmul_q4_1(const float *x, long ldx, const void *w, float *y, long ldy, long m, long k, long j0, long j1, int accumulate) {
#if defined(__x86_64__)
    if (!portable_only && mi_cpu_has_avx512_skylakex()) { DISPATCH(q4_1) return; }
#endif
    q4_1_base(x, ldx, (const uint8_t *)w, y, ldy, m, k, j0, j1, accumulate);
}

void mi_matmul_q8_0(const float *x, long ldx, const void *w, float *y, long ldy, long m, long k, long j0, long j1, int accumulate) {
#if defined(__x86_64__)
    if (!portable_only && mi_cpu_has_avx512_skylakex()) { DISPATCH(q8_0) return; }
#endif
    q8_0_base(x, ldx, (const uint8_t *)w, y, ldy, m, k, j0, j1, accumulate);
}
