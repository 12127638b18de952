/* SPDX-License-Identifier: MIT */
#pragma once

/* Where an errno is too thin (a YAML line, an HTTP status, a git message), a function fills
 * an Error for its caller. Functions still return 0 or -errno; the Error only carries the
 * human-readable detail. An Error pointer may be NULL when the caller does not want it. */

#include <stdarg.h>
#include <stddef.h>

#include "basic/macro.h"

#define ERROR_MESSAGE_MAX 1024

typedef struct Error {
        char message[ERROR_MESSAGE_MAX];
        const char *reason; /* a refusal's reason word (REASON=, the metrics), a static string; NULL: none */
} Error;

/* Sets the message (truncated to fit) and returns r, so that one can write
 * `return error_set(reterr, -EINVAL, "bad thing: %s", x);`. */
int error_set(Error *e, int r, const char *fmt, ...) _printf_(3, 4);
int error_setv(Error *e, int r, const char *fmt, va_list ap) _printf_(3, 0);

/* Prefixes the current message with "prefix: ". */
int error_prefix(Error *e, int r, const char *fmt, ...) _printf_(3, 4);

static inline const char *error_message(const Error *e) {
        return e && e->message[0] ? e->message : NULL;
}
