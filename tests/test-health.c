/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "config.h"
#include "fileio.h"
#include "health.h"
#include "log.h"

/* A listening socket on a free loopback port; with `status`, a child answers every
 * connection with that HTTP status. */
typedef struct Server {
        int fd;
        int port;
        pid_t child;
} Server;

static Server server_start(int status) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(a);
        Server s = { .fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) };

        assert_true(s.fd >= 0);
        assert_int_equal(bind(s.fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(s.fd, 16), 0);
        assert_int_equal(getsockname(s.fd, (struct sockaddr *) &a, &l), 0);
        s.port = ntohs(a.sin_port);
        if (status > 0) {
                s.child = fork();
                assert_true(s.child >= 0);
                if (s.child == 0) {
                        for (;;) {
                                char buf[4096], resp[128];
                                int c = accept(s.fd, NULL, NULL);
                                int n;

                                if (c < 0)
                                        continue;
                                (void) !read(c, buf, sizeof(buf));
                                n = snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                             status);
                                (void) !write(c, resp, (size_t) n);
                                close(c);
                        }
                }
        }
        return s;
}

static void server_stop(Server *s) {
        if (s->child > 0) {
                kill(s->child, SIGKILL);
                waitpid(s->child, NULL, 0);
        }
        close(s->fd);
}

static int free_port(void) {
        Server s = server_start(0);
        int p = s.port;
        server_stop(&s);
        return p; /* closed now: connections are refused */
}

static Config *config_with(const char *checks, unsigned timeout) {
        _cleanup_free_ char *yaml = NULL;
        Config *c = NULL;
        Error e = {};

        assert_true(asprintf(&yaml, "host: t\nhealth:\n  settle: 0\n  timeout: %u\n  checks:\n%s", timeout, checks) > 0);
        if (config_load_buffer("test.yaml", yaml, strlen(yaml), &c, &e) < 0)
                fail_msg("%s", e.message);
        return c;
}

static void expect_once(const char *checks, bool healthy, const char *detail) {
        _cleanup_config_ Config *c = config_with(checks, 5);
        HealthReport rep = {};

        assert_int_equal(health_run_once(c, &rep, NULL), 0);
        if (rep.healthy != healthy || !strstr(strempty(rep.results[0].detail), detail))
                fail_msg("%s: healthy=%d detail='%s'", checks, rep.healthy, rep.results[0].detail);
        health_report_done(&rep);
}

static void test_http(void **state) {
        Server ok = server_start(200), bad = server_start(500);
        char buf[512];

        snprintf(buf, sizeof(buf), "    - name: web\n      http: {url: \"http://127.0.0.1:%d/health\"}\n", ok.port);
        expect_once(buf, true, "HTTP 200");
        snprintf(buf, sizeof(buf), "    - name: web\n      http: {url: \"http://127.0.0.1:%d/health\"}\n", bad.port);
        expect_once(buf, false, "HTTP 500 (expected 200)");
        snprintf(buf, sizeof(buf), "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\", status: 500}\n", bad.port);
        expect_once(buf, true, "HTTP 500");
        snprintf(buf, sizeof(buf), "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\"}\n", free_port());
        expect_once(buf, false, "");
        server_stop(&ok);
        server_stop(&bad);
}

static void test_tcp(void **state) {
        Server s = server_start(0);
        char buf[256];

        snprintf(buf, sizeof(buf), "    - name: db\n      tcp: \"127.0.0.1:%d\"\n", s.port);
        expect_once(buf, true, "connected");
        server_stop(&s);
        snprintf(buf, sizeof(buf), "    - name: db\n      tcp: \"127.0.0.1:%d\"\n", s.port);
        expect_once(buf, false, "refused");
}

static void test_command(void **state) {
        expect_once("    - name: smoke\n      command: [true]\n", true, "exit status 0");
        expect_once("    - name: smoke\n      command: [sh, -c, \"exit 3\"]\n", false, "status 3");
        expect_once("    - name: smoke\n      command: [/nonexistent/x]\n", false, "/nonexistent/x");
}

static void test_units_without_bus(void **state) {
        setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus", 1);
        expect_once("    - name: units\n      systemd-units: [nginx.service]\n", false, "system bus");
        unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
}

/* Rounds until every check passes in the same round; a check that turns healthy after a
 * while passes within the timeout, one that never does fails after it. */
static void test_rounds(void **state) {
        char dir[] = "/tmp/test-health-XXXXXX", buf[512];
        _cleanup_free_ char *flag = NULL;
        HealthReport rep = {};
        usec_t start;
        pid_t p;

        assert_non_null(mkdtemp(dir));
        flag = path_join(dir, "ready");
        snprintf(buf, sizeof(buf), "    - name: ready\n      command: [test, -e, \"%s\"]\n", flag);
        _cleanup_config_ Config *c = config_with(buf, 4);

        p = fork();
        if (p == 0) {
                usleep(700000);
                _exit(write_file_atomic(flag, "", 0, 0644) < 0);
        }
        start = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(health_run(c, &(HealthOptions) { .interval = 200 * USEC_PER_MSEC }, &rep, NULL), 0);
        waitpid(p, NULL, 0);
        assert_true(rep.healthy);
        assert_true(rep.rounds > 1);
        health_report_done(&rep);

        /* never healthy: gives up after the timeout */
        _cleanup_config_ Config *never = config_with("    - name: never\n      command: [false]\n", 2);
        start = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(health_run(never, &(HealthOptions) { .interval = 200 * USEC_PER_MSEC }, &rep, NULL), 0);
        assert_false(rep.healthy);
        assert_true(now_usec(CLOCK_MONOTONIC) - start < 4 * USEC_PER_SEC);
        assert_true(rep.rounds >= 3);
        health_report_done(&rep);
        (void) rm_rf(dir);
}

static void test_same_round(void **state) {
        /* one check passes, one fails: unhealthy, and the report says which */
        _cleanup_config_ Config *c = config_with("    - name: a\n      command: [true]\n    - name: b\n      command: [false]\n", 1);
        HealthReport rep = {};

        assert_int_equal(health_run(c, &(HealthOptions) { .interval = 200 * USEC_PER_MSEC }, &rep, NULL), 0);
        assert_false(rep.healthy);
        assert_int_equal(rep.n, 2);
        assert_true(rep.results[0].ok);
        assert_false(rep.results[1].ok);
        assert_string_equal(rep.results[1].name, "b");
        health_report_done(&rep);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_http),
                cmocka_unit_test(test_tcp),
                cmocka_unit_test(test_command),
                cmocka_unit_test(test_units_without_bus),
                cmocka_unit_test(test_rounds),
                cmocka_unit_test(test_same_round),
        };
        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
