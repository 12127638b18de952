/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

static int max_level = LOG_INFO;
static int prefix_mode = -1; /* -1: decide by isatty(stderr) */

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_prefix(int enabled) {
        prefix_mode = enabled;
}

static bool use_prefix(void) {
        if (prefix_mode < 0)
                prefix_mode = !isatty(STDERR_FILENO);
        return prefix_mode;
}

int log_internal(int level, int error, const char *fmt, ...) {
        char buf[4096];
        va_list ap;
        int saved_errno = errno;

        if (error < 0)
                error = -error;

        if (level <= max_level) {
                /* glibc expands %m from errno: point it at the error being reported. */
                errno = error;
                va_start(ap, fmt);
                (void) vsnprintf(buf, sizeof(buf), fmt, ap);
                va_end(ap);

                /* One line per call: a newline inside the message would start a line that
                 * journald files without our prefix. */
                for (char *p = buf; *p; p++)
                        if (*p == '\n' || *p == '\r')
                                *p = ' ';

                if (use_prefix())
                        fprintf(stderr, "<%d>%s\n", level, buf);
                else
                        fprintf(stderr, "%s\n", buf);
                fflush(stderr);
        }

        errno = saved_errno;
        return -error;
}
