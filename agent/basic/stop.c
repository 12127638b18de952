/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "basic/stop.h"

static volatile sig_atomic_t requested;
static int pipe_fds[2] = { -1, -1 };

void stop_request(int sig) {
        int saved = errno;

        if (!requested)
                requested = sig;
        /* The pipe is never read: one byte makes it readable for good. */
        if (pipe_fds[1] >= 0)
                (void) !write(pipe_fds[1], "", 1);
        errno = saved;
}

int stop_install(void) {
        /* SA_RESTART: a read, write or wait in progress goes on (code that never expected EINTR
         * keeps working); what waits for long — poll (process.c watches stop_fd() too) and
         * nanosleep — returns early with EINTR anyway, and looks at stop_requested(). */
        struct sigaction sa = { .sa_handler = stop_request, .sa_flags = SA_RESTART };
        static const int signals[] = { SIGTERM, SIGINT, SIGHUP };

        if (pipe_fds[0] < 0 && pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
                if (sigaction(signals[i], &sa, NULL) < 0)
                        return -errno;
        return 0;
}

bool stop_requested(void) {
        return requested != 0;
}

int stop_signal(void) {
        return requested;
}

int stop_fd(void) {
        return pipe_fds[0];
}
