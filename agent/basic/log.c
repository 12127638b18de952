/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "basic/log.h"
#include "basic/macro.h"

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

const char *log_escape(char *buf, size_t size, const char *s) {
        size_t n = 0;

        if (size == 0)
                return buf;
        for (const unsigned char *p = (const unsigned char *) strempty(s); *p; p++) {
                bool c1 = p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f; /* U+0080..U+009F */

                if (*p == '\n' || *p == '\r') {
                        if (n + 1 >= size)
                                break;
                        buf[n++] = ' ';
                } else if ((*p < 0x20 && *p != '\t') || *p == 0x7f || c1) {
                        if (n + (c1 ? 8 : 4) >= size)
                                break;
                        n += (size_t) snprintf(buf + n, size - n, "\\x%02x", *p);
                        if (c1)
                                n += (size_t) snprintf(buf + n, size - n, "\\x%02x", *++p);
                } else {
                        if (n + 1 >= size)
                                break;
                        buf[n++] = (char) *p;
                }
        }
        buf[n] = 0;
        return buf;
}

static char status_line[512]; /* "" when none is shown */

void log_status(const char *line) {
        (void) snprintf(status_line, sizeof(status_line), "%s", line);
        /* Rewritten in place; \033[K clears what a longer line left. */
        fprintf(stderr, "\r%s\033[K", status_line);
        fflush(stderr);
}

void log_status_end(void) {
        if (!status_line[0])
                return;
        fputc('\n', stderr);
        fflush(stderr);
        status_line[0] = 0;
}

int log_internal(int level, int error, const char *fmt, ...) {
        char buf[4096], shown[4096];
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
                 * journald files without our prefix. And no control characters: messages
                 * carry text from outside (a server's error, a realm). */
                (void) log_escape(shown, sizeof(shown), buf);

                if (status_line[0])
                        fputs("\r\033[K", stderr);
                if (use_prefix())
                        fprintf(stderr, "<%d>%s\n", level, shown);
                else
                        fprintf(stderr, "%s\n", shown);
                if (status_line[0])
                        fputs(status_line, stderr);
                fflush(stderr);
        }

        errno = saved_errno;
        return -error;
}
