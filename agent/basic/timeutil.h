/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <time.h>

typedef uint64_t usec_t;
#define USEC_PER_SEC ((usec_t) 1000000ULL)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_INFINITY ((usec_t) UINT64_MAX)

usec_t now_usec(clockid_t clock);

/* For messages: "%.1f s". */
static inline double usec_to_seconds(usec_t u) {
        return (double) u / (double) USEC_PER_SEC;
}

/* "2026-11-22T08:00:00Z" (UTC, seconds). buf must hold TIMESTAMP_MAX bytes. */
#define TIMESTAMP_MAX 32
char *format_timestamp(char buf[TIMESTAMP_MAX], time_t t);
/* Parses exactly the form format_timestamp() writes. */
int parse_timestamp(const char *s, time_t *ret);
