/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "basic/macro.h"
#include "config/schedule.h"

#define MINUTES_PER_DAY (24 * 60)

static const char *const day_names[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };

static int day_of(const char *s) {
        for (int i = 0; i < 7; i++)
                if (strncmp(s, day_names[i], 3) == 0)
                        return i;
        return -1;
}

/* "HH:MM" (24:00 only as an end): minutes after midnight, or -1. */
static int minutes_of(const char *s, bool end) {
        unsigned h, m;

        if (strlen(s) != 5 || s[2] != ':' || !strchr("0123456789", s[0]) || !strchr("0123456789", s[1]) ||
            !strchr("0123456789", s[3]) || !strchr("0123456789", s[4]))
                return -1;
        h = (unsigned) (s[0] - '0') * 10 + (unsigned) (s[1] - '0');
        m = (unsigned) (s[3] - '0') * 10 + (unsigned) (s[4] - '0');
        if (m > 59 || h > 24 || (h == 24 && (m != 0 || !end)))
                return -1;
        return (int) (h * 60 + m);
}

static const char *parse_days(const char *s, size_t len, bool days[7]) {
        static const char *const bad = "days must be Mon..Sun, a range (Mon-Fri) or a list (Sat,Sun)";

        while (len > 0) {
                const char *comma = memchr(s, ',', len);
                size_t n = comma ? (size_t) (comma - s) : len;
                int a, b;

                if (n == 3) {
                        a = b = day_of(s);
                } else if (n == 7 && s[3] == '-') {
                        a = day_of(s);
                        b = day_of(s + 4);
                } else
                        return bad;
                if (a < 0 || b < 0)
                        return bad;
                for (int d = a;; d = (d + 1) % 7) {
                        days[d] = true;
                        if (d == b)
                                break;
                }
                if (!comma)
                        break;
                len -= n + 1;
                s = comma + 1;
                if (len == 0)
                        return bad;
        }
        return NULL;
}

const char *window_parse(const char *spec, Window *ret) {
        static const char *const bad = "must be [DAYS ]HH:MM-HH:MM (local time, e.g. \"Mon-Fri 02:00-05:00\")";
        Window w = {};
        const char *space = strchr(spec, ' '), *times = space ? space + 1 : spec, *problem;
        char start[6], end[6];
        int a, b;

        if (space) {
                problem = parse_days(spec, (size_t) (space - spec), w.days);
                if (problem)
                        return problem;
        } else
                for (int d = 0; d < 7; d++)
                        w.days[d] = true;
        if (strlen(times) != 11 || times[5] != '-')
                return bad;
        memcpy(start, times, 5);
        start[5] = 0;
        memcpy(end, times + 6, 5);
        end[5] = 0;
        a = minutes_of(start, false);
        b = minutes_of(end, true);
        if (a < 0 || b < 0)
                return bad;
        if (a == b)
                return "is empty (its start is its end)";
        w.start = (unsigned) a;
        w.end = (unsigned) b;
        if (ret)
                *ret = w;
        return NULL;
}

/* Whether minute m (0 .. 7 * 1440 - 1, from Sunday 00:00 of t's week) is inside w. */
static bool window_has(const Window *w, unsigned m) {
        unsigned day = m / MINUTES_PER_DAY, at = m % MINUTES_PER_DAY, prev = (day + 6) % 7;

        if (w->start < w->end)
                return w->days[day] && at >= w->start && at < w->end;
        /* Past midnight: the evening of its day, the morning of the next. */
        return (w->days[day] && at >= w->start) || (w->days[prev] && at < w->end);
}

bool schedule_open(char *const *windows, time_t t, time_t *ret_next) {
        Window ws[64];
        size_t n = 0;
        struct tm tm;
        unsigned now;

        if (ret_next)
                *ret_next = 0;
        if (!windows || !windows[0])
                return true;
        for (char *const *s = windows; *s && n < ELEMENTSOF(ws); s++)
                if (!window_parse(*s, &ws[n]))
                        n++;
        if (!localtime_r(&t, &tm))
                return false;
        now = (unsigned) (tm.tm_wday * MINUTES_PER_DAY + tm.tm_hour * 60 + tm.tm_min);
        for (size_t i = 0; i < n; i++)
                if (window_has(&ws[i], now))
                        return true;
        /* The next minute of the coming week inside one, as a local time (mktime: the
         * daylight saving time of that day). */
        for (unsigned k = 1; k <= 7 * MINUTES_PER_DAY; k++) {
                unsigned m = (now + k) % (7 * MINUTES_PER_DAY);

                for (size_t i = 0; i < n; i++)
                        if (window_has(&ws[i], m)) {
                                struct tm next = tm;

                                next.tm_sec = 0;
                                next.tm_min += (int) k;
                                next.tm_isdst = -1;
                                if (ret_next)
                                        *ret_next = mktime(&next);
                                return false;
                        }
        }
        return false;
}
