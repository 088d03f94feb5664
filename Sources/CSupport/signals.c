#include "CSupport.h"
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal = 0;

static void on_stop(int sig) { stop_signal = sig; }

void mi_install_stop_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART: a blocked read(2) returns EINTR so we notice promptly
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    // A parent may have spawned us with these blocked (posix_spawn inherits the mask).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    // Writes to a closed pipe must fail with EPIPE, which we turn into a quiet stop.
    signal(SIGPIPE, SIG_IGN);
}

int mi_stop_signal(void) { return stop_signal; }

void mi_reraise(int sig) {
    signal(sig, SIG_DFL);
    raise(sig);
}
