#include "CSupport.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Matrix products with operands rounded to bf16 and sums kept in f32.
//
// A (the left operand, activations) is converted to bf16 rows of even length, so the two values
// of each k-pair sit side by side as one 32-bit word. B (a weight, or activations in a weight
// gradient) is packed in panels of 16 columns: for each k-pair p, 32 values, column by column,
// k then k + 1. One AVX512-BF16 instruction (vdpbf16ps) then adds a[2p]·b[2p] + a[2p+1]·b[2p+1]
// to 16 f32 sums at once, a broadcast pair of A against one panel. The same layout is what Intel's
// AMX tiles take: a panel's 16 consecutive k-pairs are one B tile (16 rows of 64 bytes), 16 rows
// of A over 32 k values one A tile, and TDPBF16PS multiplies them into a 16 × 16 tile of f32 sums.

static inline uint16_t bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);                                            // to nearest, ties to even
    return (uint16_t)(u >> 16);
}

static inline float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t mi_bf16_from_float(float f) { return bf16_round(f); }
float mi_bf16_to_float(uint16_t h) { return bf16_to_float(h); }

int mi_cpu_has_avx512_bf16(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return mi_cpu_has_avx512_skylakex() && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

static int cpu_is_intel(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    return b == 0x756e6547u && d == 0x49656e69u && c == 0x6c65746eu; // "GenuineIntel"
}

// AMX-TILE and AMX-BF16 in CPUID, and Linux's permission to use the tile data (asked once for
// the whole process; refused on kernels older than 5.16).
static int amx_usable(void) {
    unsigned a, b, c, d;
    if (!mi_cpu_has_avx512_bf16() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!((d >> 22) & 1) || !((d >> 24) & 1)) return 0;
    const long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
}
#endif

int mi_cpu_has_amx_bf16(void) {
    static int has = -1;
#if defined(__x86_64__)
    if (has < 0) has = amx_usable();
#else
    has = 0;
#endif
    return has;
}

int mi_bf16_preferred(void) {
#if defined(__x86_64__)
    // Measured: AMD Zen 4 runs vdpbf16ps at twice the f32 FMA rate; Intel's cores at the same rate,
    // so there bf16 products pay only with AMX tiles.
    if (mi_cpu_has_amx_bf16()) return 1;
    return mi_cpu_has_avx512_bf16() && !cpu_is_intel();
#else
    return 0;
#endif
}

static int portable_bf16 = 0, amx_off = 0;
void mi_bf16_use_portable(int on) { portable_bf16 = on; }
void mi_bf16_use_amx(int on) { amx_off = !on; }
int mi_bf16_fast(void) {
    static int has = -1;
    if (has < 0) has = mi_cpu_has_avx512_bf16();
    return has && !portable_bf16;
}

long mi_bf16_even(long k) { return (k + 1) & ~1L; }
long mi_bf16_panels(long n) { return (n + 15) / 16; }
long mi_bf16_packed_count(long k, long n) { return mi_bf16_panels(n) * mi_bf16_even(k) * 16; }

static void convert_rows_portable(const float *x, long ldx, long rows, long k, uint16_t *dst) {
    long kp = mi_bf16_even(k);
    for (long r = 0; r < rows; r++) {
        const float *s = x + r * ldx;
        uint16_t *d = dst + r * kp;
        for (long i = 0; i < k; i++) d[i] = bf16_round(s[i]);
        if (kp > k) d[k] = 0;
    }
}

static void convert_columns_portable(const float *x, long ldx, long k, long rows, uint16_t *dst) {
    // dst[r][i] = x[i][r]: the transpose of x [k, rows], in tiles so both sides stay in cache.
    long kp = mi_bf16_even(k);
    for (long i0 = 0; i0 < k; i0 += 64) {
        long i1 = i0 + 64 < k ? i0 + 64 : k;
        for (long r0 = 0; r0 < rows; r0 += 64) {
            long r1 = r0 + 64 < rows ? r0 + 64 : rows;
            for (long i = i0; i < i1; i++) {
                const float *s = x + i * ldx;
                for (long r = r0; r < r1; r++) dst[r * kp + i] = bf16_round(s[r]);
            }
        }
    }
    if (kp > k)
        for (long r = 0; r < rows; r++) dst[r * kp + k] = 0;
}

static void pack_portable(const float *src, long ld, int by_rows, long k, long n, long panel0, long panel1, uint16_t *dst) {
    // by_rows: B[k][n] = src[n * ld + k] (a weight [out, in] as the right side of x·Wᵀ);
    // otherwise B[k][n] = src[k * ld + n].
    long kp = mi_bf16_even(k);
    for (long j = panel0; j < panel1; j++) {
        uint16_t *panel = dst + j * kp * 16;
        for (long l = 0; l < 16; l++) {
            long col = j * 16 + l;
            if (col >= n) {
                for (long kk = 0; kk < kp; kk++) panel[(kk >> 1) * 32 + l * 2 + (kk & 1)] = 0;
                continue;
            }
            if (by_rows) {
                const float *s = src + col * ld;
                for (long kk = 0; kk < k; kk++) panel[(kk >> 1) * 32 + l * 2 + (kk & 1)] = bf16_round(s[kk]);
            } else {
                for (long kk = 0; kk < k; kk++) panel[(kk >> 1) * 32 + l * 2 + (kk & 1)] = bf16_round(src[kk * ld + col]);
            }
            if (kp > k) panel[(k >> 1) * 32 + l * 2 + 1] = 0;
        }
    }
}

// C[m, n] (+)= A16[m, kp] · B for panels panel0..<panel1 (columns 16·panel0 ..< min(n, 16·panel1)).
static void gemm_portable(long m, long n, long kp, const uint16_t *a, const uint16_t *b, long panel0, long panel1, float *c,
                          long ldc, int accumulate) {
    for (long j = panel0; j < panel1; j++) {
        const uint16_t *panel = b + j * kp * 16;
        for (long r = 0; r < m; r++) {
            const uint16_t *ar = a + r * kp;
            for (long l = 0; l < 16 && j * 16 + l < n; l++) {
                float s = 0;
                for (long p = 0; p < kp / 2; p++)
                    s += bf16_to_float(ar[2 * p]) * bf16_to_float(panel[p * 32 + l * 2]) +
                         bf16_to_float(ar[2 * p + 1]) * bf16_to_float(panel[p * 32 + l * 2 + 1]);
                float *y = c + r * ldc + j * 16 + l;
                *y = accumulate ? *y + s : s;
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

// An MR × (16·NP) tile over the whole k range: the sums stay in registers (at most 24).
BF16 static inline __attribute__((always_inline)) void tile(const int MR, const int NP, long pairs, const uint16_t *a, long kp,
                                                          const uint16_t *b, float *c, long ldc, int accumulate,
                                                          int last_columns) {
    __m512 acc[8][3];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NP; j++) acc[r][j] = _mm512_setzero_ps();
    const long panel_stride = kp * 16;
    for (long p = 0; p < pairs; p++) {
        __m512bh bv[3];
        for (int j = 0; j < NP; j++) bv[j] = (__m512bh)_mm512_loadu_si512((const void *)(b + j * panel_stride + p * 32));
        for (int r = 0; r < MR; r++) {
            int32_t pair;
            memcpy(&pair, a + r * kp + 2 * p, 4);
            __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
            for (int j = 0; j < NP; j++) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], av, bv[j]);
        }
    }
    for (int j = 0; j < NP; j++) {
        __mmask16 mask = (j == NP - 1 && last_columns < 16) ? (__mmask16)((1u << last_columns) - 1) : (__mmask16)0xffff;
        for (int r = 0; r < MR; r++) {
            float *y = c + r * ldc + j * 16;
            __m512 v = acc[r][j];
            if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, y));
            _mm512_mask_storeu_ps(y, mask, v);
        }
    }
}


// 16 floats to 16 bf16, to nearest (ties to even), as bf16_round.
BF16 static inline __m256i cvt16(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }

BF16 static void convert_rows_avx512(const float *x, long ldx, long rows, long k, uint16_t *dst) {
    long kp = mi_bf16_even(k);
    for (long r = 0; r < rows; r++) {
        const float *s = x + r * ldx;
        uint16_t *d = dst + r * kp;
        long i = 0;
        for (; i + 16 <= k; i += 16) _mm256_storeu_si256((__m256i *)(d + i), cvt16(_mm512_loadu_ps(s + i)));
        if (i < k) {
            __mmask16 mask = (__mmask16)((1u << (k - i)) - 1);
            _mm256_mask_storeu_epi16(d + i, mask, cvt16(_mm512_maskz_loadu_ps(mask, s + i)));
        }
        if (kp > k) d[k] = 0;
    }
}

BF16 static void convert_columns_avx512(const float *x, long ldx, long k, long rows, uint16_t *dst) {
    // Gathers 16 values of one column (16 rows of x) at a time.
    long kp = mi_bf16_even(k);
    const __m512i rows16 = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32((int)ldx));
    long i = 0;
    if (ldx * 16 < (1L << 31)) {
        for (; i + 16 <= k; i += 16) {
            const float *base = x + i * ldx;
            for (long r = 0; r < rows; r++)
                _mm256_storeu_si256((__m256i *)(dst + r * kp + i), cvt16(_mm512_i32gather_ps(rows16, base + r, 4)));
        }
    }
    for (; i < k; i++)
        for (long r = 0; r < rows; r++) dst[r * kp + i] = bf16_round(x[i * ldx + r]);
    if (kp > k)
        for (long r = 0; r < rows; r++) dst[r * kp + k] = 0;
}

BF16 static void pack_avx512(const float *src, long ld, int by_rows, long k, long n, long panel0, long panel1, uint16_t *dst,
                             uint16_t *scratch) {
    long kp = mi_bf16_even(k);
    // Word p·32 + 2l + e of a panel is B[2p + e][16j + l].
    static const int16_t order[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                      8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i interleave = _mm512_loadu_si512((const void *)order);
    const __m512i lanes = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32((int)(kp / 2)));
    for (long j = panel0; j < panel1; j++) {
        uint16_t *panel = dst + j * kp * 16;
        long cols = n - j * 16 < 16 ? n - j * 16 : 16;
        if (by_rows) {
            // The panel's 16 weight rows in bf16 (zero rows past n), then each k-pair's 16 words gathered.
            for (long l = 0; l < 16; l++) {
                if (l < cols) convert_rows_avx512(src + (j * 16 + l) * ld, ld, 1, k, scratch + l * kp);
                else memset(scratch + l * kp, 0, (size_t)kp * 2);
            }
            for (long p = 0; p < kp / 2; p++)
                _mm512_storeu_si512((void *)(panel + p * 32), _mm512_i32gather_epi32(lanes, (const void *)(scratch + 2 * p), 4));
        } else {
            __mmask16 mask = (__mmask16)((1u << cols) - 1);
            for (long p = 0; p < kp / 2; p++) {
                __m512 r0 = _mm512_maskz_loadu_ps(mask, src + (2 * p) * ld + j * 16);
                __m512 r1 = 2 * p + 1 < k ? _mm512_maskz_loadu_ps(mask, src + (2 * p + 1) * ld + j * 16) : _mm512_setzero_ps();
                __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(cvt16(r0)), cvt16(r1), 1);
                _mm512_storeu_si512((void *)(panel + p * 32), _mm512_permutexvar_epi16(interleave, both));
            }
        }
    }
}

#define TILE_CASE(MR, NP)                                                                                              \
    case (MR) * 4 + (NP): tile(MR, NP, pairs, a + m0 * kp, kp, panel, c + m0 * ldc + g * 16, ldc, accumulate, last); break;
#define TILE_ROW(MR) TILE_CASE(MR, 1) TILE_CASE(MR, 2) TILE_CASE(MR, 3)

BF16 static void gemm_avx512(long m, long n, long kp, const uint16_t *a, const uint16_t *b, long panel0, long panel1, float *c,
                             long ldc, int accumulate) {
    long pairs = kp / 2;
    for (long g = panel0; g < panel1; g += 3) {
        int np = (int)(panel1 - g < 3 ? panel1 - g : 3);
        long end = (g + np) * 16;
        int last = (int)(end > n ? 16 - (end - n) : 16);
        const uint16_t *panel = b + g * kp * 16;
        for (long m0 = 0; m0 < m; m0 += 8) {
            int mr = (int)(m - m0 < 8 ? m - m0 : 8);
            switch (mr * 4 + np) {
                TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4) TILE_ROW(5) TILE_ROW(6) TILE_ROW(7) TILE_ROW(8)
            }
        }
    }
}

// AMX: 32 rows × 2 panels at a time in four 16 × 16 tiles of f32 sums (tiles 0-3), A in tiles 4
// and 5, B in tiles 6 and 7, all configured as 16 rows of 64 bytes. A partial block of rows and
// the last k-chunk (fewer than 16 pairs) go through zero-padded copies, and sums through a
// 16 × 16 buffer on their way to C (masked to the rows and columns that exist).
#define AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

typedef struct {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

AMX static void amx_store(const float *sums, long rows, int cols, float *c, long ldc, int accumulate) {
    __mmask16 mask = (__mmask16)((1u << cols) - 1);
    for (long r = 0; r < rows; r++) {
        __m512 v = _mm512_loadu_ps(sums + r * 16);
        if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, c + r * ldc));
        _mm512_mask_storeu_ps(c + r * ldc, mask, v);
    }
}

AMX static void gemm_amx(long m, long n, long kp, const uint16_t *a, const uint16_t *b, long panel0, long panel1, float *c,
                         long ldc, int accumulate) {
    amx_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) {
        config.rows[t] = 16;
        config.colsb[t] = 64;
    }
    _tile_loadconfig(&config);
    const long pairs = kp / 2, chunks = pairs / 16, rest = pairs % 16, panel_stride = kp * 16;
    const long stride = kp * 2; // bytes between rows of A
    uint16_t *padded = (m % 32) ? calloc((size_t)32 * kp, 2) : NULL;
    _Alignas(64) uint16_t a_rest[2][16 * 32], b_rest[2][16 * 32];
    _Alignas(64) float sums[16 * 16];
    for (long m0 = 0; m0 < m; m0 += 32) {
        const long rows = m - m0 < 32 ? m - m0 : 32;
        const uint16_t *ab = a + m0 * kp;
        if (rows < 32) {
            memcpy(padded, ab, (size_t)(rows * kp) * 2);
            ab = padded;
        }
        if (rest) {
            memset(a_rest, 0, sizeof a_rest);
            for (long r = 0; r < 32; r++) memcpy(a_rest[r / 16] + (r % 16) * 32, ab + r * kp + chunks * 32, (size_t)rest * 4);
        }
        for (long g = panel0; g < panel1; g += 2) {
            const int two = panel1 - g >= 2;
            const uint16_t *b0 = b + g * panel_stride, *b1 = b0 + panel_stride;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (long q = 0; q < chunks; q++) {
                _tile_loadd(4, ab + q * 32, stride);
                _tile_loadd(5, ab + 16 * kp + q * 32, stride);
                _tile_loadd(6, b0 + q * 512, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(2, 5, 6);
                if (two) {
                    _tile_loadd(7, b1 + q * 512, 64);
                    _tile_dpbf16ps(1, 4, 7);
                    _tile_dpbf16ps(3, 5, 7);
                }
            }
            if (rest) {
                memset(b_rest, 0, sizeof b_rest);
                memcpy(b_rest[0], b0 + chunks * 512, (size_t)rest * 64);
                if (two) memcpy(b_rest[1], b1 + chunks * 512, (size_t)rest * 64);
                _tile_loadd(4, a_rest[0], 64);
                _tile_loadd(5, a_rest[1], 64);
                _tile_loadd(6, b_rest[0], 64);
                _tile_loadd(7, b_rest[1], 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(3, 5, 7);
            }
            const int cols0 = (int)(n - g * 16 < 16 ? n - g * 16 : 16);
            const int cols1 = two ? (int)(n - (g + 1) * 16 < 16 ? n - (g + 1) * 16 : 16) : 0;
            const long rows0 = rows < 16 ? rows : 16, rows1 = rows - rows0;
            float *c0 = c + m0 * ldc + g * 16, *c1 = c0 + 16 * ldc;
            _tile_stored(0, sums, 64);
            amx_store(sums, rows0, cols0, c0, ldc, accumulate);
            if (two) {
                _tile_stored(1, sums, 64);
                amx_store(sums, rows0, cols1, c0 + 16, ldc, accumulate);
            }
            if (rows1 > 0) {
                _tile_stored(2, sums, 64);
                amx_store(sums, rows1, cols0, c1, ldc, accumulate);
                if (two) {
                    _tile_stored(3, sums, 64);
                    amx_store(sums, rows1, cols1, c1 + 16, ldc, accumulate);
                }
            }
        }
    }
    _tile_release();
    free(padded);
}

// Fewer rows than this leave most of a tile empty: the AVX512-BF16 kernel does them.
enum { amx_min_rows = 8 };

AMX static void gemm_amx_or_avx512(long m, long n, long kp, const uint16_t *a, const uint16_t *b, long panel0, long panel1,
                                   float *c, long ldc, int accumulate) {
    if (m < amx_min_rows || amx_off) gemm_avx512(m, n, kp, a, b, panel0, panel1, c, ldc, accumulate);
    else gemm_amx(m, n, kp, a, b, panel0, panel1, c, ldc, accumulate);
}
#endif

// The kernels for this CPU: AMX tiles, AVX512-BF16, or the portable loops (also when a test asks).
typedef struct {
    void (*gemm)(long, long, long, const uint16_t *, const uint16_t *, long, long, float *, long, int);
    void (*convert_rows)(const float *, long, long, long, uint16_t *);
    void (*convert_columns)(const float *, long, long, long, uint16_t *);
    void (*pack)(const float *, long, int, long, long, long, long, uint16_t *);
} bf16_kernels;

#if defined(__x86_64__)
static void pack_avx512_with_scratch(const float *src, long ld, int by_rows, long k, long n, long panel0, long panel1,
                                     uint16_t *dst) {
    uint16_t *scratch = by_rows ? malloc((size_t)mi_bf16_even(k) * 16 * 2) : NULL;
    pack_avx512(src, ld, by_rows, k, n, panel0, panel1, dst, scratch);
    free(scratch);
}
#endif

static const bf16_kernels *kernels_for_cpu(void) {
    static const bf16_kernels portable = {gemm_portable, convert_rows_portable, convert_columns_portable, pack_portable};
#if defined(__x86_64__)
    static const bf16_kernels avx512 = {gemm_avx512, convert_rows_avx512, convert_columns_avx512, pack_avx512_with_scratch};
    static const bf16_kernels amx = {gemm_amx_or_avx512, convert_rows_avx512, convert_columns_avx512, pack_avx512_with_scratch};
    if (mi_bf16_fast()) return mi_cpu_has_amx_bf16() ? &amx : &avx512;
#endif
    return &portable;
}

const char *mi_bf16_kernel(void) {
    if (!mi_bf16_fast()) return "portable";
    return mi_cpu_has_amx_bf16() && !amx_off ? "amx" : "avx512-bf16";
}

void mi_bf16_gemm(long m, long n, long kp, const uint16_t *a, const uint16_t *b, long panel0, long panel1, float *c, long ldc,
                  int accumulate) {
    kernels_for_cpu()->gemm(m, n, kp, a, b, panel0, panel1, c, ldc, accumulate);
}

void mi_bf16_convert_rows(const float *x, long ldx, long rows, long k, uint16_t *dst) {
    kernels_for_cpu()->convert_rows(x, ldx, rows, k, dst);
}

void mi_bf16_convert_columns(const float *x, long ldx, long k, long rows, uint16_t *dst) {
    kernels_for_cpu()->convert_columns(x, ldx, k, rows, dst);
}

void mi_bf16_pack(const float *src, long ld, int by_rows, long k, long n, long panel0, long panel1, uint16_t *dst) {
    kernels_for_cpu()->pack(src, ld, by_rows, k, n, panel0, panel1, dst);
}
