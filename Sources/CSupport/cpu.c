#include "CSupport.h"

// OpenBLAS's SkylakeX kernels need AVX-512 F, CD, BW, DQ and VL.
int mi_cpu_has_avx512_skylakex(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

int mi_cpu_has_avx2_fma(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

#if defined(__linux__)
#include <malloc.h>
#endif

// Keeps freed blocks in the heap instead of returning them to the kernel (see MemoryTuning.swift).
void mi_retain_freed_memory(void) {
#if defined(__linux__)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}
