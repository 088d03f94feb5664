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

#endif
