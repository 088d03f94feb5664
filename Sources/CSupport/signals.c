#define _GNU_SOURCE
#include "CSupport.h"
#include <signal.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal = 0;

// The first SIGINT/SIGTERM asks the stage to stop at the next record or decoding step, and says
// so at once; a second one of the same kind ends the process at once (outputs stay uncommitted).
static void on_stop(int sig) {
    if (stop_signal == sig) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
    static const char message[] = ": stopping: complete records are kept, the rest is dropped (again to stop at once)\n";
    const char *name = program_invocation_short_name;
    size_t n = 0;
    while (name[n]) n++;
    (void)!write(2, name, n);
    (void)!write(2, message, sizeof message - 1);
}

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

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>

// At exit, stdout's buffered bytes (help text, --version) are flushed and checked, as coreutils'
// close_stdout does: a write that fails (e.g. a full disk) exits 74 instead of 0.
static void close_stdout(void) {
    int failed = fflush(stdout) != 0 || ferror(stdout);
    int err = errno;
    if (failed && err != EPIPE) {
        fprintf(stderr, "%s: error: <stdout>: write failed: %s\n", program_invocation_short_name, strerror(err));
        _exit(74);
    }
}

void mi_install_close_stdout(void) { atexit(close_stdout); }
