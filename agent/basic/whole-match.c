/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/whole-match.h"

int whole_match_compile(const char *expr, regex_t *ret, Error *e) {
        char why[256];
        int r;

        if (!expr || strlen(expr) > WHOLE_MATCH_EXPR_MAX)
                return error_set(e, -EINVAL, "a regular expression of at most %u bytes is expected", WHOLE_MATCH_EXPR_MAX);
        r = regcomp(ret, expr, REG_EXTENDED);
        if (r == REG_ESPACE)
                return error_set(e, -ENOMEM, "out of memory");
        if (r != 0) {
                regerror(r, ret, why, sizeof(why));
                return error_set(e, -EINVAL, "not a POSIX extended regular expression: %s", why);
        }
        return 0;
}

bool whole_match(const regex_t *re, const void *s, size_t n) {
        _cleanup_free_ char *copy = NULL;
        regmatch_t m;

        if (!re || !s || memchr(s, 0, n))
                return false;
        copy = strndup(s, n);
        return copy && regexec(re, copy, 1, &m, 0) == 0 && m.rm_so == 0 && (size_t) m.rm_eo == n;
}
