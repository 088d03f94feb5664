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
// Registers an exit handler that flushes stdout and exits 74 when that write fails.
void mi_install_close_stdout(void);



/// y[i] = exp(x[i]) (about 2 ulp), vectorised for the CPU at hand.
void mi_vexp(const float *x, float *y, long n);
/// out[i] = silu(gate[i]) * up[i], where silu(g) = g / (1 + exp(-g)).
void mi_silu_mul(const float *gate, const float *up, float *out, long n);
/// Softmax of x in place; returns the row maximum.
float mi_softmax_inplace(float *x, long n);
/// log(sum(exp(x))) computed stably.
double mi_logsumexp(const float *x, long n);

/// y[i*ldy + j] = sum_k x[i*ldx + k] * W[j][k] for i < m and j0 <= j < j1, with W in ggml's
/// Q4_1 (20-byte) or Q8_0 (34-byte) blocks of 32, row after row; k is a multiple of 32.
/// With `accumulate`, adds to y instead of overwriting it.
void mi_matmul_q4_1(const float *x, long ldx, const void *w, float *y, long ldy, long m, long k, long j0, long j1, int accumulate);
void mi_matmul_q8_0(const float *x, long ldx, const void *w, float *y, long ldy, long m, long k, long j0, long j1, int accumulate);
/// Tests: use the portable block kernels even where AVX-512 is available.
void mi_use_portable_kernels(int on);

/// Attention of one query over `keys` cached keys and values (rows `stride` floats apart).
void mi_attend_one(const float *q, const float *k, const float *v, long stride, long keys, long hd, float scale,
                   float *out, float *scratch);

/// One fused AdamW update (see AdamW.swift for the formula).
void mi_adamw(float *p, const float *g, float *m, float *v, long n, float decay, float one_minus_b1, float b2,
              float one_minus_b2, float bc2_sqrt, float eps, float step_size);
// The AdamW step writing only p (m and v are read, not updated).
void mi_adamw_params(float *p, const float *g, const float *m, const float *v, long n, float decay, float one_minus_b1, float b2,
                     float one_minus_b2, float bc2_sqrt, float eps, float step_size);
// Σ d·(p_new − p) for the AdamW step, writing nothing.
double mi_adamw_delta_dot(const float *p, const float *g, const float *m, const float *v, const float *d, long n, float decay,
                          float one_minus_b1, float b2, float one_minus_b2, float bc2_sqrt, float eps, float step_size);
/// Σ x[i]² accumulated in double.
double mi_sum_squares(const float *x, long n);

/// Backward of out = silu(gate) ⊙ up: dup = dout ⊙ silu(gate), dgate = dout ⊙ up ⊙ silu'(gate).
void mi_silu_mul_backward(const float *gate, const float *up, const float *dout, float *dgate, float *dup, long n);

/// glibc: serve allocations up to 32 MB from the heap and keep freed memory there.
void mi_retain_freed_memory(void);

/// bf16 matrix products with f32 sums (bf16gemm.c). AVX512-BF16 where the CPU has it, else a
/// portable loop with the same rounding of the operands.
int mi_cpu_has_avx512_bf16(void);
/// 1 when mi_bf16_gemm runs a native kernel (AVX512-BF16, and AMX tiles where the CPU has them).
int mi_bf16_fast(void);
/// Tests: use the portable loop even where AVX512-BF16 is available.
void mi_bf16_use_portable(int on);
/// 1 when the CPU has AMX-BF16 tiles and Linux lets this process use them (then products of 8 rows
/// or more run on tiles).
int mi_cpu_has_amx_bf16(void);
/// Tests: 0 keeps the AMX tiles out of mi_bf16_gemm (the AVX512-BF16 kernel does every product).
void mi_bf16_use_amx(int on);
/// 1 where bf16 products are faster than f32 ones: AMX, or AVX512-BF16 on a CPU that is not Intel's.
int mi_bf16_preferred(void);
/// The kernel mi_bf16_gemm runs: "amx", "avx512-bf16" or "portable".
const char *mi_bf16_kernel(void);
unsigned short mi_bf16_from_float(float f);
float mi_bf16_to_float(unsigned short h);
/// k rounded up to even; panels of 16 columns in n; elements of a packed [k, n] operand.
long mi_bf16_even(long k);
long mi_bf16_panels(long n);
long mi_bf16_packed_count(long k, long n);
/// dst[r][0..<k] = bf16(x[r * ldx + i]), rows mi_bf16_even(k) apart (a zero pads an odd k).
void mi_bf16_convert_rows(const float *x, long ldx, long rows, long k, unsigned short *dst);
/// dst[r][i] = bf16(x[i * ldx + r]) for x [k, rows]: the transpose, rows mi_bf16_even(k) apart.
void mi_bf16_convert_columns(const float *x, long ldx, long k, long rows, unsigned short *dst);
/// Packs panels panel0..<panel1 of B [k, n]: B[i][j] = src[j * ld + i] with by_rows, else src[i * ld + j].
void mi_bf16_pack(const float *src, long ld, int by_rows, long k, long n, long panel0, long panel1, unsigned short *dst);
/// C[m, n] (+)= A · B for the columns of panels panel0..<panel1; A from mi_bf16_convert_*, rows kp
/// apart (kp even); B from mi_bf16_pack.
void mi_bf16_gemm(long m, long n, long kp, const unsigned short *a, const unsigned short *b, long panel0, long panel1, float *c,
                  long ldc, int accumulate);

#endif
