/* SPDX-License-Identifier: MIT */
/* agent/engine/run.c and gate.c, the steps every command that changes things goes through, on a
 * state directory of their own (as RAUC's test/install.c drives its install steps): the lock,
 * the state read, the result recorded once per run however many steps record one, a refusal,
 * a revision that waits. No git, no nix, no services. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "basic/fileio.h"
#include "config/config.h"
#include "engine/gate.h"
#include "engine/run.h"

#define REV "0123456789abcdef0123456789abcdef01234567"

typedef struct Fixture {
        char dir[64];
        Config *config;
} Fixture;

static char *path_in(const Fixture *f, const char *name) {
        char *p = path_join(f->dir, name);

        assert_non_null(p);
        return p;
}

static int setup_extra(void **state, const char *extra) {
        Fixture *f = calloc(1, sizeof(*f));
        char yaml[1024];
        Error e = {};

        assert_non_null(f);
        (void) snprintf(f->dir, sizeof(f->dir), "/tmp/test-run-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        (void) snprintf(yaml, sizeof(yaml), "host: testhost\nstate-dir: %s\nmetrics:\n  textfile: %s/agent.prom\n%s",
                        f->dir, f->dir, extra);
        if (config_load_buffer("test.yaml", yaml, strlen(yaml), &f->config, &e) < 0)
                fail_msg("config: %s", error_message(&e));
        *state = f;
        return 0;
}

static int setup(void **state) {
        return setup_extra(state, "");
}

static int teardown(void **state) {
        Fixture *f = *state;

        assert_int_equal(rm_rf(f->dir), 0);
        config_free(f->config);
        free(f);
        return 0;
}

static json_t *load_json(const Fixture *f, const char *name) {
        _cleanup_free_ char *p = path_in(f, name);
        json_error_t err;
        json_t *j = json_load_file(p, 0, &err);

        if (!j)
                fail_msg("%s: %s", p, err.text);
        return j;
}

/* The value of one sample line of the .prom file ("name{labels} value"), -1 when absent. */
static long long prom_value(const Fixture *f, const char *sample) {
        _cleanup_free_ char *p = path_in(f, "agent.prom"), *data = NULL;
        size_t n = strlen(sample);

        assert_int_equal(read_full_file(p, 1 << 20, &data, NULL), 0);
        for (char *line = data, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (strncmp(line, sample, n) == 0 && line[n] == ' ')
                        return strtoll(line + n + 1, NULL, 10);
        }
        return -1;
}

static void test_lock_busy(void **state) {
        Fixture *f = *state;
        Run a, b;

        assert_int_equal(run_begin(&a, f->config, "pull"), EXIT_OK);
        assert_true(a.lock_fd >= 0);
        assert_non_null(a.state);
        /* A second run while the first holds the lock: busy; nothing changes but the metrics,
         * which count it (module.nix: busy runs stay visible there). */
        assert_int_equal(run_begin(&b, f->config, "pull"), EXIT_BUSY);
        run_done(&b);
        assert_int_equal(prom_value(f, "atticd_agent_runs_total{command=\"pull\"}"), 1);
        assert_int_equal(prom_value(f, "atticd_agent_last_run_success{command=\"pull\"}"), 0);
        assert_int_equal(prom_value(f, "atticd_agent_last_run_result{command=\"pull\",result=\"busy\"}"), 1);
        {
                _cleanup_free_ char *p = path_in(f, "state.json");
                assert_int_equal(access(p, F_OK), -1);
        }
        run_done(&a);
        assert_int_equal(run_begin(&b, f->config, "pull"), EXIT_OK);
        run_done(&b);
        assert_int_equal(prom_value(f, "atticd_agent_runs_total{command=\"pull\"}"), 1);
}

static void test_damaged_state(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *p = path_in(f, "state.json"), *after = NULL;
        static const char damaged[] = "{\"version\": 1, \"deployed\": ";
        Run run;

        assert_int_equal(write_file_atomic(p, damaged, strlen(damaged), 0600), 0);
        assert_int_equal(run_begin(&run, f->config, "pull"), EXIT_USAGE);
        run_done(&run);
        /* Left as it was, for a person to look at. */
        assert_int_equal(read_full_file(p, 1 << 20, &after, NULL), 0);
        assert_string_equal(after, damaged);
}

/* A rollback records a result in its deployment step and then its own: the run counts once,
 * with the last result (issue 23: one rollback used to add 2 to runs_total). */
static void test_result_recorded_once(void **state) {
        Fixture *f = *state;
        json_t *last;
        Run run;

        assert_int_equal(run_begin(&run, f->config, "rollback"), EXIT_OK);
        run_phase(&run, "rollback", "Rolling back");
        assert_int_equal(run_result(&run, EXIT_DEPLOY_FAILED, RESULT_ROLLED_BACK, REV, "by hand"), EXIT_DEPLOY_FAILED);
        assert_int_equal(run_result(&run, EXIT_OK, RESULT_SUCCESS, REV, NULL), EXIT_OK);
        run_done(&run);

        assert_int_equal(prom_value(f, "atticd_agent_runs_total{command=\"rollback\"}"), 1);
        assert_int_equal(prom_value(f, "atticd_agent_last_run_success{command=\"rollback\"}"), 1);
        last = load_json(f, "last-run.json");
        assert_string_equal(json_string_value(json_object_get(last, "result")), "success");
        assert_string_equal(json_string_value(json_object_get(last, "command")), "rollback");
        json_decref(last);

        /* A second run adds one. */
        assert_int_equal(run_begin(&run, f->config, "rollback"), EXIT_OK);
        assert_int_equal(run_result(&run, EXIT_OK, RESULT_SUCCESS, REV, NULL), EXIT_OK);
        run_done(&run);
        assert_int_equal(prom_value(f, "atticd_agent_runs_total{command=\"rollback\"}"), 2);
}

static void test_refuse(void **state) {
        Fixture *f = *state;
        json_t *last;
        Run run;

        assert_int_equal(run_begin(&run, f->config, "pull"), EXIT_OK);
        assert_int_equal(run_refuse(&run, "non-fast-forward", REV, "revision %s is not a fast-forward", REV),
                         EXIT_REFUSED);
        run_done(&run);

        last = load_json(f, "last-run.json");
        assert_string_equal(json_string_value(json_object_get(last, "result")), "refused");
        assert_non_null(strstr(json_string_value(json_object_get(last, "error")), "not a fast-forward"));
        json_decref(last);
        assert_int_equal(prom_value(f, "atticd_agent_refusals_total{reason=\"non-fast-forward\"}"), 1);
        assert_int_equal(prom_value(f, "atticd_agent_last_run_success{command=\"pull\"}"), 0);
        /* A refusal writes no state file: there was none, there is none. */
        {
                _cleanup_free_ char *p = path_in(f, "state.json");
                assert_int_equal(access(p, F_OK), -1);
        }
}

/* A revision that waits: the waiting record in the state file, result waiting, exit 0; the
 * same reason again changes the record's detail but not its first-seen time. */
static void test_wait(void **state) {
        Fixture *f = *state;
        json_t *s, *w;
        char *first;
        Run run;

        assert_int_equal(run_begin(&run, f->config, "pull"), EXIT_OK);
        assert_int_equal(gate_wait(&run, REV, "rollout-percent", 0, NULL, NULL, NULL, "not in the first %u%%", 10u), EXIT_OK);
        assert_true(run.waiting);
        run_done(&run);

        s = load_json(f, "state.json");
        w = json_object_get(s, "waiting");
        assert_string_equal(json_string_value(json_object_get(w, "revision")), REV);
        assert_string_equal(json_string_value(json_object_get(w, "reason")), "rollout-percent");
        assert_string_equal(json_string_value(json_object_get(w, "detail")), "not in the first 10%");
        /* A timestamp, kept while the reason stays. */
        first = strdup(json_string_value(json_object_get(w, "first-seen")) ?: "");
        assert_true(strlen(first) >= 20);
        json_decref(s);
        assert_int_equal(prom_value(f, "atticd_agent_waiting"), 1);
        assert_int_equal(prom_value(f, "atticd_agent_last_run_success{command=\"pull\"}"), 1);

        sleep(1);
        assert_int_equal(run_begin(&run, f->config, "pull"), EXIT_OK);
        assert_int_equal(gate_wait(&run, REV, "rollout-percent", 0, NULL, NULL, NULL, "not in the first 20%%"), EXIT_OK);
        run_done(&run);
        s = load_json(f, "state.json");
        w = json_object_get(s, "waiting");
        assert_string_equal(json_string_value(json_object_get(w, "detail")), "not in the first 20%");
        assert_string_equal(json_string_value(json_object_get(w, "first-seen")), first);
        json_decref(s);
        free(first);
}

static int setup_windows(void **state) {
        return setup_extra(state, "schedule:\n  windows: [\"Mon-Sun 00:00-24:00\"]\n");
}

static int setup_no_window(void **state) {
        /* A window of one minute a week that is never now: the day of the week after today's. */
        char extra[128];
        time_t now = time(NULL);
        struct tm tm;
        static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };

        assert_non_null(localtime_r(&now, &tm));
        (void) snprintf(extra, sizeof(extra), "schedule:\n  windows: [\"%s 03:00-03:01\"]\n", days[(tm.tm_wday + 2) % 7]);
        return setup_extra(state, extra);
}

static void test_window_open(void **state) {
        Fixture *f = *state;
        time_t next = 0;

        assert_true(gate_window_open(f->config, &next));
}

static void test_window_closed(void **state) {
        Fixture *f = *state;
        time_t next = 0, now = time(NULL);

        assert_false(gate_window_open(f->config, &next));
        /* The next opening: within the week, one or two days on. */
        assert_true(next > now + 86400 - 3600 && next <= now + 3 * 86400);
}

static void test_no_windows_always_open(void **state) {
        Fixture *f = *state;
        time_t next = 0;

        assert_true(gate_window_open(f->config, &next));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_lock_busy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_damaged_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_result_recorded_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuse, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wait, setup, teardown),
                cmocka_unit_test_setup_teardown(test_window_open, setup_windows, teardown),
                cmocka_unit_test_setup_teardown(test_window_closed, setup_no_window, teardown),
                cmocka_unit_test_setup_teardown(test_no_windows_always_open, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
