#include "CSupport.h"
#include <stdint.h>

// Vectorisable expf: x·log2(e) rounded to the nearest integer n (1.5·2^23 trick), Cody-Waite
// reduction r = x - n·ln2, degree-6 polynomial, scaled by 2^n; relative error about 2 ulp.
// Each kernel is compiled once per ISA (AVX-512, AVX2+FMA, baseline) and chosen at first call.
static inline __attribute__((always_inline)) float exp_approx(float x) {
    x = __builtin_fminf(__builtin_fmaxf(x, -87.3365447505531f), 88.3762626647949f);
    const float shifter = 12582912.0f;
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    return p * __builtin_bit_cast(float, e);
}

// The kernels of vmath_kernels.h, compiled once per instruction set: KERNEL(name) gives each copy
// its own name and TARGET its instruction set.
#if defined(__x86_64__)
#define KERNEL(name) name##_avx512
#define TARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma")))
#include "vmath_kernels.h"
#undef KERNEL
#undef TARGET
#define KERNEL(name) name##_avx2
#define TARGET __attribute__((target("avx2,fma")))
#include "vmath_kernels.h"
#undef KERNEL
#undef TARGET
#endif
#define KERNEL(name) name##_base
#define TARGET
#include "vmath_kernels.h"
#undef KERNEL
#undef TARGET

typedef struct {
    void (*vexp)(const float *, float *, long);
    void (*silu_mul)(const float *, const float *, float *, long);
    float (*exp_shift_sum)(float *, long, float);
    float (*max)(const float *, long);
    void (*scale)(float *, long, float);
    void (*attend)(const float *, const float *, const float *, long, long, long, float, float *, float *);
    void (*silu_mul_backward)(const float *, const float *, const float *, float *, float *, long);
} kernels;

static const kernels *pick(void) {
    static const kernels base = {vexp_base, silu_mul_base, exp_shift_sum_base, max_base, scale_base, attend_base, silu_mul_backward_base};
#if defined(__x86_64__)
    static const kernels avx512 = {vexp_avx512, silu_mul_avx512, exp_shift_sum_avx512, max_avx512, scale_avx512, attend_avx512, silu_mul_backward_avx512};
    static const kernels avx2 = {vexp_avx2, silu_mul_avx2, exp_shift_sum_avx2, max_avx2, scale_avx2, attend_avx2, silu_mul_backward_avx2};
    if (mi_cpu_has_avx512_skylakex()) return &avx512;
    if (mi_cpu_has_avx2_fma()) return &avx2;
#endif
    return &base;
}

static const kernels *active(void) {
    static const kernels *k = 0;
    const kernels *p = __atomic_load_n(&k, __ATOMIC_ACQUIRE);
    if (!p) { p = pick(); __atomic_store_n(&k, p, __ATOMIC_RELEASE); }
    return p;
}

void mi_vexp(const float *x, float *y, long n) { active()->vexp(x, y, n); }

void mi_silu_mul(const float *gate, const float *up, float *out, long n) { active()->silu_mul(gate, up, out, n); }

float mi_softmax_inplace(float *x, long n) {
    const kernels *k = active();
    float m = k->max(x, n);
    k->scale(x, n, 1.0f / k->exp_shift_sum(x, n, m));
    return m;
}

double mi_logsumexp(const float *x, long n) {
    const kernels *k = active();
    float m = k->max(x, n);
    // The exponentials go through a small buffer so x is left as it was.
    float buf[1024];
    double s = 0;
    for (long i = 0; i < n; i += 1024) {
        long len = n - i < 1024 ? n - i : 1024;
        for (long j = 0; j < len; j++) buf[j] = x[i + j];
        s += k->exp_shift_sum(buf, len, m);
    }
    return (double)m + __builtin_log(s);
}

// Attention of one query over `keys` cached positions (decoding): scores, softmax, weighted sum
// of values. k and v rows are `stride` floats apart; scratch holds `keys` floats.
void mi_attend_one(const float *q, const float *k, const float *v, long stride, long keys, long hd, float scale,
                   float *out, float *scratch) {
    active()->attend(q, k, v, stride, keys, hd, scale, out, scratch);
}

// One AdamW step over p[0..<n) (torch.optim.AdamW's single-tensor arithmetic, in f32), fused
// into one pass so each of p, g, m, v is read once: the update is memory-bound.
// The step for element i: the new moments mi, vi and parameter pn, in torch's order of operations.
#define ADAMW_STEP(i)                                                                           \
        float gi = g[i];                                                                        \
        float mi = m[i] + one_minus_b1 * (gi - m[i]);                                           \
        float vi = v[i] * b2 + one_minus_b2 * gi * gi;                                          \
        float pn = p[i] * decay - step_size * (mi / (__builtin_elementwise_sqrt(vi) / bc2_sqrt + eps));
#define ADAMW_BODY                                                                              \
    _Pragma("clang loop vectorize(assume_safety)")                                              \
    for (long i = 0; i < n; i++) { ADAMW_STEP(i) m[i] = mi; v[i] = vi; p[i] = pn; }
#pragma clang fp contract(off)
__attribute__((target("avx512f"))) static void adamw_avx512(float *p, const float *g, float *m, float *v, long n, float decay,
    float one_minus_b1, float b2, float one_minus_b2, float bc2_sqrt, float eps, float step_size) { ADAMW_BODY }
static void adamw_base(float *p, const float *g, float *m, float *v, long n, float decay,
    float one_minus_b1, float b2, float one_minus_b2, float bc2_sqrt, float eps, float step_size) { ADAMW_BODY }

void mi_adamw(float *p, const float *g, float *m, float *v, long n, float decay, float one_minus_b1, float b2,
              float one_minus_b2, float bc2_sqrt, float eps, float step_size) {
#if defined(__x86_64__)
    if (mi_cpu_has_avx512_skylakex()) { adamw_avx512(p, g, m, v, n, decay, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps, step_size); return; }
#endif
    adamw_base(p, g, m, v, n, decay, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps, step_size);
}

// The same step for a probe that discards it afterwards: only p is written (m and v keep the
// state to restore), or nothing is written and the step's change Δp = p_new − p (the f32 values
// the update would store) is dotted with d, for the first-order local data influence.
#define ADAMW_PARAMS_BODY                                                                       \
    _Pragma("clang loop vectorize(assume_safety)")                                              \
    for (long i = 0; i < n; i++) { ADAMW_STEP(i) p[i] = pn; }
// Sixteen double lanes: elementwise adds vectorise without reassociating the sum's order.
#define ADAMW_DOT_BODY                                                                          \
    double lanes[16] = {0};                                                                     \
    long i = 0;                                                                                 \
    for (; i + 16 <= n; i += 16) {                                                              \
        float delta[16];                                                                        \
        for (int j = 0; j < 16; j++) { ADAMW_STEP(i + j) delta[j] = pn - p[i + j]; }            \
        for (int j = 0; j < 16; j++) lanes[j] += (double)d[i + j] * (double)delta[j];           \
    }                                                                                           \
    double total = 0;                                                                           \
    for (; i < n; i++) { ADAMW_STEP(i) total += (double)d[i] * (double)(pn - p[i]); }          \
    for (int j = 0; j < 16; j++) total += lanes[j];                                             \
    return total;
__attribute__((target("avx512f"))) static void adamw_params_avx512(float *p, const float *g, const float *m, const float *v, long n,
    float decay, float one_minus_b1, float b2, float one_minus_b2, float bc2_sqrt, float eps, float step_size) { ADAMW_PARAMS_BODY }
static void adamw_params_base(float *p, const float *g, const float *m, const float *v, long n,
    float decay, float one_minus_b1, float b2, float one_minus_b2, float bc2_sqrt, float eps, float step_size) { ADAMW_PARAMS_BODY }
__attribute__((target("avx512f"))) static double adamw_dot_avx512(const float *p, const float *g, const float *m, const float *v,
    const float *d, long n, float decay, float one_minus_b1, float b2, float one_minus_b2, float bc2_sqrt, float eps, float step_size) { ADAMW_DOT_BODY }
static double adamw_dot_base(const float *p, const float *g, const float *m, const float *v,
    const float *d, long n, float decay, float one_minus_b1, float b2, float one_minus_b2, float bc2_sqrt, float eps, float step_size) { ADAMW_DOT_BODY }

void mi_adamw_params(float *p, const float *g, const float *m, const float *v, long n, float decay, float one_minus_b1, float b2,
                     float one_minus_b2, float bc2_sqrt, float eps, float step_size) {
#if defined(__x86_64__)
    if (mi_cpu_has_avx512_skylakex()) { adamw_params_avx512(p, g, m, v, n, decay, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps, step_size); return; }
#endif
    adamw_params_base(p, g, m, v, n, decay, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps, step_size);
}

double mi_adamw_delta_dot(const float *p, const float *g, const float *m, const float *v, const float *d, long n, float decay,
                          float one_minus_b1, float b2, float one_minus_b2, float bc2_sqrt, float eps, float step_size) {
#if defined(__x86_64__)
    if (mi_cpu_has_avx512_skylakex()) return adamw_dot_avx512(p, g, m, v, d, n, decay, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps, step_size);
#endif
    return adamw_dot_base(p, g, m, v, d, n, decay, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps, step_size);
}

// Sum of squares in double lanes (for the global gradient norm).
double mi_sum_squares(const float *x, long n) {
    double lanes[8] = {0};
    long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) lanes[k] += (double)x[i + k] * (double)x[i + k];
    double s = 0;
    for (int k = 0; k < 8; k++) s += lanes[k];
    for (; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

void mi_silu_mul_backward(const float *gate, const float *up, const float *dout, float *dgate, float *dup, long n) {
    active()->silu_mul_backward(gate, up, dout, dgate, dup, n);
}
