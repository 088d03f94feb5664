#include "CSupport.h"
#include <stdint.h>
#include <string.h>

// Vectorisable expf: round-to-nearest range reduction by ln2 (Cody-Waite split) and a degree-6
// polynomial on [-ln2/2, ln2/2]; relative error ~2 ulp. Compiled per ISA and picked at load time.
#define MI_CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))

static inline float exp_approx(float x) {
    const float hi = 88.3762626647949f, lo = -87.3365447505531f;
    x = x > hi ? hi : x;
    x = x < lo ? lo : x;
    const float log2e = 1.44269504088896341f;
    float n = __builtin_roundevenf(x * log2e);
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
    float scale;
    memcpy(&scale, &e, sizeof scale);
    return p * scale;
}

MI_CLONES void mi_vexp(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) y[i] = exp_approx(x[i]);
}

MI_CLONES void mi_silu_mul(const float *gate, const float *up, float *out, long n) {
    for (long i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + exp_approx(-g)) * up[i];
    }
}

MI_CLONES float mi_softmax_inplace(float *x, long n) {
    float m = x[0];
    for (long i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    float s = 0;
    for (long i = 0; i < n; i++) { x[i] = exp_approx(x[i] - m); s += x[i]; }
    float inv = 1.0f / s;
    for (long i = 0; i < n; i++) x[i] *= inv;
    return m;
}

MI_CLONES double mi_logsumexp(const float *x, long n) {
    float m = x[0];
    for (long i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    // Sum in float lanes, then in double: exact enough for log-probabilities over 50k logits.
    float partial[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) partial[k] += exp_approx(x[i + k] - m);
    double s = 0;
    for (int k = 0; k < 16; k++) s += partial[k];
    for (; i < n; i++) s += exp_approx(x[i] - m);
    return (double)m + __builtin_log(s);
}
