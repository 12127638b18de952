/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define COMMIT_ID_HEX 40

/* Whether s is exactly len lowercase hex digits. */
static inline bool is_hex(const char *s, size_t len) {
        size_t i;

        if (!s)
                return false;
        for (i = 0; s[i]; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return i == len;
}

/* A full git commit id as the agent records it: 40 lowercase hex digits. */
static inline bool is_commit_id(const char *s) {
        return is_hex(s, COMMIT_ID_HEX);
}

/* The lowercase hex of the n bytes at p, into ret, which holds 2n + 1 characters; returns ret. */
static inline char *hex_encode(const uint8_t *p, size_t n, char *ret) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                ret[2 * i] = digits[p[i] >> 4];
                ret[2 * i + 1] = digits[p[i] & 0xf];
        }
        ret[2 * n] = 0;
        return ret;
}

/* String tables for enums (systemd's DEFINE_STRING_TABLE_LOOKUP): name_to_string() and
 * name_from_string(), the latter returning the index or -EINVAL. */
#define DEFINE_STRING_TABLE_LOOKUP(name, type, table, max)                       \
        const char *name##_to_string(type v) {                                   \
                return (int) v >= 0 && v < (max) ? (table)[v] : NULL;            \
        }                                                                        \
        int name##_from_string(const char *s, type *ret) {                       \
                for (int i = 0; i < (int) (max); i++)                            \
                        if ((table)[i] && strcmp((table)[i], s) == 0) {          \
                                *ret = (type) i;                                 \
                                return 0;                                        \
                        }                                                        \
                return -EINVAL;                                                  \
        }
