// Elementwise and attention kernels, included by vmath.c once per instruction set with
// KERNEL(name) (the copy's function name) and TARGET (its instruction set) defined. No include
// guard: each inclusion is a new copy. Every iteration touches only index i, so in-place calls
// (out == in) are safe to vectorise; the pragmas say so, and allow the sums to be reassociated
// across vector lanes.

TARGET static void KERNEL(vexp)(const float *x, float *y, long n) {
#pragma clang loop vectorize(assume_safety)
    for (long i = 0; i < n; i++) y[i] = exp_approx(x[i]);
}

TARGET static void KERNEL(silu_mul)(const float *g, const float *u, float *o, long n) {
#pragma clang loop vectorize(assume_safety)
    for (long i = 0; i < n; i++) o[i] = g[i] / (1.0f + exp_approx(-g[i])) * u[i];
}

// x[i] = exp(x[i] - m); returns the sum.
TARGET static float KERNEL(exp_shift_sum)(float *x, long n, float m) {
#pragma clang fp reassociate(on)
    float s = 0;
#pragma clang loop vectorize(assume_safety)
    for (long i = 0; i < n; i++) {
        x[i] = exp_approx(x[i] - m);
        s += x[i];
    }
    return s;
}

TARGET static float KERNEL(max)(const float *x, long n) {
    float lanes[16];
    for (int k = 0; k < 16; k++) lanes[k] = x[0];
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) lanes[k] = lanes[k] > x[i + k] ? lanes[k] : x[i + k];
    float m = x[0];
    for (int k = 0; k < 16; k++) m = m > lanes[k] ? m : lanes[k];
    for (; i < n; i++) m = m > x[i] ? m : x[i];
    return m;
}

TARGET static void KERNEL(scale)(float *x, long n, float a) {
    for (long i = 0; i < n; i++) x[i] *= a;
}

// Backward of silu_mul: o = silu(g)·u, given da = ∂L/∂o.
TARGET static void KERNEL(silu_mul_backward)(const float *g, const float *u, const float *da, float *dg, float *du, long n) {
#pragma clang loop vectorize(assume_safety)
    for (long i = 0; i < n; i++) {
        float sig = 1.0f / (1.0f + exp_approx(-g[i]));
        du[i] = da[i] * (g[i] * sig);
        dg[i] = da[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    }
}

// One query over `keys` positions: scores, softmax, weighted sum of values.
TARGET static void KERNEL(attend)(const float *q, const float *k, const float *v, long stride, long keys, long hd, float scale,
                                  float *out, float *scratch) {
#pragma clang fp reassociate(on)
    for (long j = 0; j < keys; j++) {
        const float *kr = k + j * stride;
        float s = 0;
        for (long t = 0; t < hd; t++) s += q[t] * kr[t];
        scratch[j] = s * scale;
    }
    float m = KERNEL(max)(scratch, keys);
    KERNEL(scale)(scratch, keys, 1.0f / KERNEL(exp_shift_sum)(scratch, keys, m));
    for (long t = 0; t < hd; t++) out[t] = 0;
    for (long j = 0; j < keys; j++) {
        const float *vr = v + j * stride;
        float p = scratch[j];
#pragma clang loop vectorize(assume_safety)
        for (long t = 0; t < hd; t++) out[t] += p * vr[t];
    }
}
