/* SPDX-License-Identifier: MIT */
/* agent/config/schedule.c: change windows, parsed strictly, open or closed at a given local time,
 * and when the next one opens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "config/schedule.h"

/* A local time (TZ=UTC for the test): 2026-12-07 is a Monday. */
static time_t at(int day, int hour, int min) {
        struct tm tm = { .tm_year = 126, .tm_mon = 11, .tm_mday = 7 + day, .tm_hour = hour, .tm_min = min,
                         .tm_isdst = -1 };
        return mktime(&tm);
}

static void test_parse(void **state) {
        static const char *const good[] = { "02:00-05:00", "Mon-Fri 02:00-05:00", "Sat,Sun 00:00-24:00",
                                            "Fri-Mon 22:00-02:00", "Mon-Wed,Fri 01:30-01:45", "Sun 23:59-00:01" };
        static const char *const bad[] = { "", "02:00", "2:00-05:00", "02:00-05:00 ", "02:00 - 05:00", "25:00-26:00",
                                           "02:60-03:00", "24:00-01:00", "02:00-24:01", "Mon-Fri02:00-05:00",
                                           "mon 02:00-05:00", "Monday 02:00-05:00", "Mon, 02:00-05:00",
                                           "Mon-Fri-Sat 02:00-05:00", "03:00-03:00", "Mon,,Tue 01:00-02:00" };
        Window w;

        (void) state;
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                if (window_parse(good[i], &w))
                        fail_msg("'%s' refused: %s", good[i], window_parse(good[i], NULL));
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (!window_parse(bad[i], NULL))
                        fail_msg("'%s' accepted", bad[i]);
}

static void test_open(void **state) {
        char *weekdays[] = { (char *) "Mon-Fri 02:00-05:00", NULL };
        char *night[] = { (char *) "Fri-Sat 22:00-02:00", NULL };
        char *none[] = { NULL };
        time_t next;

        (void) state;
        assert_true(schedule_open(none, at(0, 12, 0), &next));
        assert_true(schedule_open(NULL, at(0, 12, 0), &next));

        assert_true(schedule_open(weekdays, at(0, 2, 0), &next));
        assert_true(schedule_open(weekdays, at(0, 4, 59), &next));
        assert_false(schedule_open(weekdays, at(0, 5, 0), &next));
        assert_int_equal(next, at(1, 2, 0));
        /* Saturday: the next opens on Monday. */
        assert_false(schedule_open(weekdays, at(5, 3, 0), &next));
        assert_int_equal(next, at(7, 2, 0));

        /* Past midnight: Friday 23:00 and Saturday 01:00 are in Friday's window, Saturday's
         * runs into Sunday 01:59, Sunday 22:00 is not in one. */
        assert_true(schedule_open(night, at(4, 23, 0), &next));
        assert_true(schedule_open(night, at(5, 1, 0), &next));
        assert_true(schedule_open(night, at(6, 1, 59), &next));
        assert_false(schedule_open(night, at(6, 22, 0), &next));
        assert_int_equal(next, at(11, 22, 0));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_open),
        };

        setenv("TZ", "UTC", 1);
        tzset();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
