#ifndef MI_CSUPPORT_H
#define MI_CSUPPORT_H

/// CPU features relevant to OpenBLAS kernel choice (1 = present).
int mi_cpu_has_avx512_skylakex(void);
int mi_cpu_has_avx2_fma(void);

/// Installs SIGINT/SIGTERM handlers (without SA_RESTART, so blocking reads return EINTR)
/// that only record the signal number; the record loops poll it between records.
void mi_install_stop_handlers(void);
/// The signal that requested a stop, or 0.
int mi_stop_signal(void);
/// Restores the default disposition of `sig` and raises it, so a calling shell sees the signal.
void mi_reraise(int sig);



/// y[i] = exp(x[i]) (about 2 ulp), vectorised for the CPU at hand.
void mi_vexp(const float *x, float *y, long n);
/// out[i] = silu(gate[i]) * up[i], where silu(g) = g / (1 + exp(-g)).
void mi_silu_mul(const float *gate, const float *up, float *out, long n);
/// Softmax of x in place; returns the row maximum.
float mi_softmax_inplace(float *x, long n);
/// log(sum(exp(x))) computed stably.
double mi_logsumexp(const float *x, long n);
#endif
