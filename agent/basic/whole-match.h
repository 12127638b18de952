/* SPDX-License-Identifier: MIT */
#pragma once

/* A POSIX extended regular expression (regcomp(3), REG_EXTENDED) that must match a whole
 * string, as an identity policy means it: "https://github.com/org/.*" accepts
 * "https://github.com/org/repo" and not "https://evil.example/?https://github.com/org/x". The
 * whole string must be the match regexec(3) finds (POSIX: the leftmost, then the longest), so
 * no ^ or $ is needed and an alternation cannot escape an anchor. This differs from cosign's
 * --certificate-identity-regexp, which is Go's unanchored MatchString. */

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "basic/error.h"

#define WHOLE_MATCH_EXPR_MAX 1024u

/* 0; -EINVAL with regerror()'s words in reterr (an invalid or over-long expression); -ENOMEM.
 * On success the caller regfree()s *ret. */
int whole_match_compile(const char *expr, regex_t *ret, Error *reterr);

/* Whether the n bytes at s, all of them, match; never for bytes that hold a NUL. */
bool whole_match(const regex_t *re, const void *s, size_t n);
