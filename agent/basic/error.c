/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "basic/error.h"

int error_setv(Error *e, int r, const char *fmt, va_list ap) {
        if (e)
                (void) vsnprintf(e->message, sizeof(e->message), fmt, ap);
        return r;
}

int error_set(Error *e, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        error_setv(e, r, fmt, ap);
        va_end(ap);
        return r;
}

int error_prefix(Error *e, int r, const char *fmt, ...) {
        char prefix[ERROR_MESSAGE_MAX], old[ERROR_MESSAGE_MAX];
        va_list ap;

        if (!e)
                return r;

        va_start(ap, fmt);
        (void) vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);

        memcpy(old, e->message, sizeof(old));
        /* A message that does not fit is cut: the start says the most. */
        if (snprintf(e->message, sizeof(e->message), "%s%s%s", prefix, old[0] ? ": " : "", old) >=
            (int) sizeof(e->message))
                e->message[sizeof(e->message) - 1] = 0;
        return r;
}
