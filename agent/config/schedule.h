/* SPDX-License-Identifier: MIT */
#pragma once

/* Change windows (schedule.windows): "[DAYS ]HH:MM-HH:MM", local time. DAYS is a day (Mon), a
 * range (Mon-Fri, Fri-Mon wraps) or a comma list of those (Sat,Sun or Mon-Wed,Fri); without
 * DAYS, every day. A window whose end is not after its start runs past midnight into the next
 * day (22:00-02:00), and belongs to the day it starts on; 00:00-24:00 is the whole day. */

#include <stdbool.h>
#include <time.h>

typedef struct Window {
        bool days[7];          /* tm_wday: 0 Sunday .. 6 Saturday */
        unsigned start, end;   /* minutes after midnight; end may be 1440 */
} Window;

/* NULL when spec is a valid window (then *ret, if not NULL, gets it), else what is wrong. */
const char *window_parse(const char *spec, Window *ret);

/* Whether the local time t is inside one of the windows (NULL or empty: always), and if it is
 * not, when the next one opens (*ret_next; 0 when none ever does). Invalid specs count as
 * never open (the configuration check refuses them). */
bool schedule_open(char *const *windows, time_t t, time_t *ret_next);
