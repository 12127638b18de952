/* SPDX-License-Identifier: MIT */
/* agent/engine/rollout.c: the rollout file, strictly; the buckets, uniform and the same as systemd's
 * application-specific machine id gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/rand.h>
#include <systemd/sd-id128.h>

#include "engine/rollout.h"

static void parse_ok(const char *text, unsigned percent, bool paused, uint64_t delay) {
        Rollout r;
        Error e = {};

        assert_int_equal(rollout_parse(text, strlen(text), &r, &e), 0);
        assert_true(r.present);
        assert_int_equal(r.percent, percent);
        assert_int_equal(r.paused, paused);
        assert_int_equal(r.delay, delay);
}

static void parse_bad(const char *text, const char *needle) {
        Rollout r;
        Error e = {};

        assert_int_equal(rollout_parse(text, strlen(text), &r, &e), -EINVAL);
        if (!strstr(error_message(&e), needle))
                fail_msg("'%s': '%s' does not say '%s'", text, error_message(&e), needle);
}

static void test_parse(void **state) {
        (void) state;
        parse_ok("{}", 100, false, 0);
        parse_ok("{\"percent\": 0}", 0, false, 0);
        parse_ok("{\"percent\": 100, \"paused\": true, \"delay\": 3600}", 100, true, 3600);
        parse_ok("{\"delay\": 31536000}", 100, false, 31536000);

        parse_bad("", "not valid JSON");
        parse_bad("{\"percent\": 50", "not valid JSON");
        parse_bad("[]", "not a JSON object");
        parse_bad("{\"percent\": 101}", "'percent'");
        parse_bad("{\"percent\": -1}", "'percent'");
        parse_bad("{\"percent\": 5.5}", "'percent'");
        parse_bad("{\"percent\": \"50\"}", "'percent'");
        parse_bad("{\"paused\": 1}", "'paused'");
        parse_bad("{\"delay\": -5}", "'delay'");
        parse_bad("{\"delay\": 31536001}", "'delay'");
        parse_bad("{\"percent\": 5, \"percent\": 6}", "not valid JSON");
        parse_bad("{\"percentage\": 5}", "percentage");
}

/* Over 10 000 random machine ids and one revision, each decile of buckets holds 10% of the
 * machines within 2 points. */
static void test_uniform(void **state) {
        const char *rev = "0123456789abcdef0123456789abcdef01234567";
        unsigned deciles[10] = {}, n = 10000;

        (void) state;
        for (unsigned i = 0; i < n; i++) {
                uint8_t id[16];
                unsigned b;

                assert_int_equal(RAND_bytes(id, sizeof(id)), 1);
                b = rollout_bucket_of(id, rev);
                assert_true(b < 100);
                deciles[b / 10]++;
        }
        for (unsigned d = 0; d < 10; d++) {
                printf("# decile %u: %u of %u (%.1f%%)\n", d, deciles[d], n, 100.0 * deciles[d] / n);
                assert_true(deciles[d] >= n / 10 - n / 50 && deciles[d] <= n / 10 + n / 50);
        }
}

/* The same machine: other revisions, other buckets (each release picks other early hosts). */
static void test_revisions_differ(void **state) {
        uint8_t id[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
        unsigned seen[100] = {}, distinct = 0;
        char rev[41];

        (void) state;
        for (unsigned i = 0; i < 200; i++) {
                (void) snprintf(rev, sizeof(rev), "%040x", i);
                seen[rollout_bucket_of(id, rev)]++;
        }
        for (unsigned b = 0; b < 100; b++)
                distinct += seen[b] > 0;
        assert_true(distinct > 50);
        /* And the same revision, the same bucket. */
        assert_int_equal(rollout_bucket_of(id, "x"), rollout_bucket_of(id, "x"));
}

/* The derivation is systemd's own (where this machine has a machine id). */
static void test_matches_systemd(void **state) {
        sd_id128_t m, theirs;
        uint8_t ours[16];

        (void) state;
        if (sd_id128_get_machine(&m) < 0) {
                skip();
                return;
        }
        assert_int_equal(sd_id128_get_machine_app_specific(ROLLOUT_APP_ID, &theirs), 0);
        rollout_app_specific_id(m.bytes, ours);
        assert_memory_equal(ours, theirs.bytes, 16);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_uniform),
                cmocka_unit_test(test_revisions_differ),
                cmocka_unit_test(test_matches_systemd),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
