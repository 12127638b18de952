/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "basic/timeutil.h"

usec_t now_usec(clockid_t clock) {
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                return 0;
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

char *format_timestamp(char buf[TIMESTAMP_MAX], time_t t) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, TIMESTAMP_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                (void) snprintf(buf, TIMESTAMP_MAX, "invalid");
        return buf;
}

int parse_timestamp(const char *s, time_t *ret) {
        struct tm tm = {};
        const char *end;
        time_t t;

        end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end != 0)
                return -EINVAL;
        t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret = t;
        return 0;
}
