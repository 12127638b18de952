/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "basic/fileio.h"
#include "basic/log.h"
#include "system/process.h"
#include "basic/stop.h"

static bool pid_gone(pid_t pid) {
        char path[64], st[512] = {};
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        f = fopen(path, "re");
        if (!f)
                return true;
        (void) !fread(st, 1, sizeof(st) - 1, f);
        fclose(f);
        return strstr(st, ") Z ") != NULL;
}

static void test_success(void **state) {
        char *argv[] = { (char *) "true", NULL };
        ProcessResult res;
        Error e = {};

        assert_int_equal(process_run(argv, NULL, &res, &e), 0);
        assert_true(res.exited);
        assert_int_equal(res.exit_status, 0);
        assert_false(res.timed_out);
}

static void test_exit_status(void **state) {
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) "exit 7", NULL };
        ProcessResult res;
        Error e = {};

        assert_int_equal(process_run(argv, NULL, &res, &e), -EPROTO);
        assert_true(res.exited);
        assert_int_equal(res.exit_status, 7);
        assert_non_null(strstr(e.message, "status 7"));
}

static void test_signal(void **state) {
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) "kill -9 $$", NULL };
        ProcessResult res;
        Error e = {};

        assert_int_equal(process_run(argv, NULL, &res, &e), -EPROTO);
        assert_false(res.exited);
        assert_int_equal(res.signal, SIGKILL);
}

static void test_not_found(void **state) {
        char *argv[] = { (char *) "/nonexistent/atticd-test-binary", NULL };
        Error e = {};

        assert_int_equal(process_run(argv, NULL, NULL, &e), -ENOENT);
        assert_non_null(strstr(e.message, "/nonexistent/atticd-test-binary"));
}

static void test_no_shell(void **state) {
        /* The argument reaches the program as one word: nothing interprets it. */
        _cleanup_free_ char *out = NULL;
        char *argv[] = { (char *) "printf", (char *) "%s", (char *) "a b; echo injected", NULL };
        ProcessOptions o = { .capture = &out, .capture_max = 1024 };

        assert_int_equal(process_run(argv, &o, NULL, NULL), 0);
        assert_string_equal(out, "a b; echo injected");
}

static void test_capture_cap(void **state) {
        _cleanup_free_ char *out = NULL;
        char *argv[] = { (char *) "head", (char *) "-c", (char *) "100000", (char *) "/dev/zero", NULL };
        ProcessOptions o = { .capture = &out, .capture_max = 1000 };
        Error e = {};

        assert_int_equal(process_run(argv, &o, NULL, &e), -EFBIG);
        assert_null(out);
}

static void test_timeout_kills_group(void **state) {
        /* The command starts a grandchild in its group; a timeout must take both. */
        char dir[] = "/tmp/test-process-XXXXXX";
        _cleanup_free_ char *pidfile = NULL, *script = NULL, *pid_s = NULL;
        ProcessResult res;
        Error e = {};
        usec_t start = now_usec(CLOCK_MONOTONIC);

        assert_non_null(mkdtemp(dir));
        pidfile = path_join(dir, "pid");
        assert_true(asprintf(&script, "sleep 1000 & echo $! > %s; wait", pidfile) > 0);
        char *argv[] = { (char *) "sh", (char *) "-c", script, NULL };
        ProcessOptions o = { .timeout = 300 * USEC_PER_MSEC, .kill_grace = 200 * USEC_PER_MSEC };

        assert_int_equal(process_run(argv, &o, &res, &e), -ETIMEDOUT);
        assert_true(res.timed_out);
        assert_true(now_usec(CLOCK_MONOTONIC) - start < 5 * USEC_PER_SEC);

        assert_int_equal(read_full_file(pidfile, 64, &pid_s, NULL), 0);
        pid_t pid = (pid_t) strtol(pid_s, NULL, 10);
        assert_true(pid > 0);
        for (int i = 0; i < 300 && !pid_gone(pid); i++)
                usleep(10000);
        assert_true(pid_gone(pid));
        (void) rm_rf(dir);
}

static void test_cwd_and_env(void **state) {
        _cleanup_free_ char *out = NULL;
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) "echo \"$(pwd) $ATTICD_TEST\"", NULL };
        char *env[] = { (char *) "ATTICD_TEST=hello", (char *) "PATH=/usr/bin:/bin", NULL };
        ProcessOptions o = { .cwd = "/", .env = env, .capture = &out, .capture_max = 1024 };

        assert_int_equal(process_run(argv, &o, NULL, NULL), 0);
        assert_string_equal(out, "/ hello\n");
}

static void test_background_holder_does_not_hang(void **state) {
        /* A daemon that keeps the output pipe open must not make the agent wait for it. */
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) "(sleep 3 &) ; echo started", NULL };
        usec_t start = now_usec(CLOCK_MONOTONIC);

        assert_int_equal(process_run(argv, NULL, NULL, NULL), 0);
        assert_true(now_usec(CLOCK_MONOTONIC) - start < 2 * USEC_PER_SEC);
}

static void test_agent_killed_takes_command_along(void **state) {
        /* The agent is killed with SIGKILL while a command (and a grandchild) runs: the guard
         * must kill the whole group, so nothing goes on behind the next run's back. */
        char dir[] = "/tmp/test-process-XXXXXX";
        _cleanup_free_ char *pidfile = NULL, *script = NULL, *pid_s = NULL;
        pid_t agent, pid = 0;
        int status;

        assert_non_null(mkdtemp(dir));
        pidfile = path_join(dir, "pid");
        assert_true(asprintf(&script, "sleep 1000 & echo $! > %s.tmp; mv %s.tmp %s; wait", pidfile, pidfile, pidfile) > 0);

        agent = fork();
        assert_true(agent >= 0);
        if (agent == 0) {
                char *argv[] = { (char *) "sh", (char *) "-c", script, NULL };
                (void) process_run(argv, NULL, NULL, NULL);
                _exit(0);
        }
        for (int i = 0; i < 500 && read_full_file(pidfile, 64, &pid_s, NULL) < 0; i++)
                usleep(10000);
        assert_non_null(pid_s);
        pid = (pid_t) strtol(pid_s, NULL, 10);
        assert_true(pid > 0);
        assert_false(pid_gone(pid));

        assert_int_equal(kill(agent, SIGKILL), 0);
        assert_int_equal(waitpid(agent, &status, 0), agent);

        for (int i = 0; i < 300 && !pid_gone(pid); i++)
                usleep(10000);
        assert_true(pid_gone(pid));
        (void) rm_rf(dir);
}

/* Sends SIGTERM to pid after delay_ms, from a process of its own. */
static void term_later(pid_t pid, unsigned delay_ms) {
        pid_t p = fork();

        assert_true(p >= 0);
        if (p == 0) {
                usleep(delay_ms * 1000);
                (void) kill(pid, SIGTERM);
                _exit(0);
        }
}

/* The checks of test_stop_request, in a child of its own (a stop request lasts for the
 * process): returns which check failed, 0 when none did. */
static int stop_request_checks(const char *pidfile) {
        _cleanup_free_ char *script = NULL, *pid_s = NULL;
        usec_t start;
        Error e = {};
        int r;

        if (stop_install() < 0)
                return 1;
        /* A command that runs when SIGTERM comes is stopped, with what it started. */
        if (asprintf(&script, "sleep 1000 & echo $! > %s; wait", pidfile) < 0)
                return 2;
        char *argv[] = { (char *) "sh", (char *) "-c", script, NULL };
        term_later(getpid(), 300);
        start = now_usec(CLOCK_MONOTONIC);
        r = process_run(argv, &(ProcessOptions) { .kill_grace = 500 * USEC_PER_MSEC }, NULL, &e);
        if (r != -ECANCELED || !strstr(e.message, "asked to stop"))
                return 3;
        if (now_usec(CLOCK_MONOTONIC) - start > 4 * USEC_PER_SEC)
                return 4;
        if (read_full_file(pidfile, 64, &pid_s, NULL) < 0)
                return 5;
        for (int i = 0; i < 300 && !pid_gone((pid_t) strtol(pid_s, NULL, 10)); i++)
                usleep(10000);
        if (!pid_gone((pid_t) strtol(pid_s, NULL, 10)))
                return 6;
        /* After the request, nothing new starts... */
        char *t[] = { (char *) "true", NULL };
        if (process_run(t, NULL, NULL, &e) != -ECANCELED)
                return 7;
        /* ...but an activation runs to its end. */
        char *s05[] = { (char *) "sleep", (char *) "0.5", NULL };
        start = now_usec(CLOCK_MONOTONIC);
        if (process_run(s05, &(ProcessOptions) { .keep_on_stop = true }, NULL, &e) != 0)
                return 8;
        if (now_usec(CLOCK_MONOTONIC) - start < 400 * USEC_PER_MSEC)
                return 9;
        return stop_requested() && stop_signal() == SIGTERM ? 0 : 10;
}

static void test_stop_request(void **state) {
        char dir[] = "/tmp/test-process-XXXXXX";
        _cleanup_free_ char *pidfile = NULL;
        pid_t child;
        int status;

        assert_non_null(mkdtemp(dir));
        pidfile = path_join(dir, "pid");
        child = fork();
        assert_true(child >= 0);
        if (child == 0)
                _exit(stop_request_checks(pidfile));
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
                fail_msg("check %d failed", WEXITSTATUS(status));
        (void) rm_rf(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_success),
                cmocka_unit_test(test_exit_status),
                cmocka_unit_test(test_signal),
                cmocka_unit_test(test_not_found),
                cmocka_unit_test(test_no_shell),
                cmocka_unit_test(test_capture_cap),
                cmocka_unit_test(test_timeout_kills_group),
                cmocka_unit_test(test_cwd_and_env),
                cmocka_unit_test(test_background_holder_does_not_hang),
                cmocka_unit_test(test_agent_killed_takes_command_along),
                cmocka_unit_test(test_stop_request),
        };

        log_set_max_level(LOG_WARNING);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
