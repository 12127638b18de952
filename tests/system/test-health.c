/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "config/config.h"
#include "basic/fileio.h"
#include "system/health.h"
#include "basic/log.h"

#define MSEC USEC_PER_MSEC
#define FAST (&(HealthOptions) { .interval = 200 * MSEC })

/* ---- loopback servers ---------------------------------------------------------------------- */

typedef enum ServerMode {
        SERVER_CLOSED, /* bound, not listening: connections are refused (and the port stays ours) */
        SERVER_SILENT, /* listening, never accepting: the kernel connects, nobody answers */
        SERVER_HTTP,   /* a child starts listening after `delay` and answers every request with `response` */
} ServerMode;

typedef struct Server {
        int fd;
        int port;
        pid_t child;
} Server;

static int server_serve(int fd, const char *response, usec_t delay) {
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (delay > 0) {
                (void) usleep((useconds_t) delay);
                if (listen(fd, 16) < 0)
                        return 1;
        }
        for (;;) {
                char buf[4096];
                size_t got = 0;
                int c = accept(fd, NULL, NULL);

                if (c < 0)
                        continue;
                while (got < sizeof(buf) - 1) { /* the whole request head, so that close() does not reset */
                        ssize_t k = read(c, buf + got, sizeof(buf) - 1 - got);

                        if (k <= 0)
                                break;
                        got += (size_t) k;
                        buf[got] = 0;
                        if (strstr(buf, "\r\n\r\n"))
                                break;
                }
                (void) !write(c, response, strlen(response));
                close(c);
        }
}

/* family AF_INET or AF_INET6; returns false when that loopback address cannot be bound. */
static bool server_start_family(Server *s, int family, ServerMode mode, const char *response, usec_t delay) {
        struct sockaddr_storage ss = {};
        socklen_t l = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

        if (family == AF_INET6)
                *(struct sockaddr_in6 *) &ss = (struct sockaddr_in6) { .sin6_family = AF_INET6, .sin6_addr = in6addr_loopback };
        else
                *(struct sockaddr_in *) &ss = (struct sockaddr_in) { .sin_family = AF_INET,
                                                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        *s = (Server) { .fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0) };
        if (s->fd < 0 || bind(s->fd, (struct sockaddr *) &ss, l) < 0) {
                if (s->fd >= 0)
                        close(s->fd);
                return false;
        }
        assert_int_equal(getsockname(s->fd, (struct sockaddr *) &ss, &l), 0);
        s->port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port : ((struct sockaddr_in *) &ss)->sin_port);
        if (mode == SERVER_SILENT || (mode == SERVER_HTTP && delay == 0)) /* listening before we go on */
                assert_int_equal(listen(s->fd, 16), 0);
        if (mode == SERVER_HTTP) {
                s->child = fork();
                assert_true(s->child >= 0);
                if (s->child == 0)
                        _exit(server_serve(s->fd, response, delay));
        }
        return true;
}

static Server server_start(ServerMode mode, const char *response, usec_t delay) {
        Server s;

        assert_true(server_start_family(&s, AF_INET, mode, response, delay));
        return s;
}

static Server http_server(int status) {
        char *r = NULL;
        Server s;

        assert_true(asprintf(&r, "HTTP/1.1 %d X\r\nContent-Length: 12\r\nConnection: close\r\n\r\nstatus green", status) > 0);
        s = server_start(SERVER_HTTP, r, 0);
        free(r);
        return s;
}

static void server_stop(Server *s) {
        if (s->child > 0) {
                kill(s->child, SIGKILL);
                waitpid(s->child, NULL, 0);
        }
        close(s->fd);
}

/* ---- helpers ------------------------------------------------------------------------------- */

static Config *config_with(unsigned settle, unsigned timeout, const char *checks) {
        _cleanup_free_ char *yaml = NULL;
        Config *c = NULL;
        Error e = {};

        assert_true(asprintf(&yaml, "host: t\nhealth:\n  settle: %u\n  timeout: %u\n  checks:\n%s", settle, timeout,
                             checks) > 0);
        if (config_load_buffer("test.yaml", yaml, strlen(yaml), &c, &e) < 0)
                fail_msg("%s\n%s", e.message, yaml);
        return c;
}

static void expect_result(const HealthReport *rep, size_t i, bool ok, const char *detail) {
        assert_true(i < rep->n);
        if (rep->results[i].ok != ok || !strstr(strempty(rep->results[i].detail), detail))
                fail_msg("check '%s': ok=%d detail='%s', expected ok=%d and '%s'", rep->results[i].name,
                         rep->results[i].ok, rep->results[i].detail, ok, detail);
}

/* One round of a single check (printf-style YAML of the checks list). */
static void expect_once(bool ok, const char *detail, const char *fmt, ...) _printf_(3, 4);
static void expect_once(bool ok, const char *detail, const char *fmt, ...) {
        _cleanup_free_ char *checks = NULL;
        HealthReport rep = {};
        va_list ap;

        va_start(ap, fmt);
        assert_true(vasprintf(&checks, fmt, ap) > 0);
        va_end(ap);
        _cleanup_config_ Config *c = config_with(5, 5, checks);
        assert_int_equal(health_run_once(c, &rep, NULL), 0);
        assert_int_equal(rep.rounds, 1);
        assert_int_equal(rep.n, 1);
        assert_true(rep.healthy == ok);
        expect_result(&rep, 0, ok, detail);
        health_report_done(&rep);
}

/* health_run with the given settle and timeout and FAST rounds; returns the seconds it took. */
static double run_timed(const char *checks, unsigned timeout, const HealthOptions *o, HealthReport *rep) {
        _cleanup_config_ Config *c = config_with(0, timeout, checks);
        usec_t start = now_usec(CLOCK_MONOTONIC);

        assert_int_equal(health_run(c, o, rep, NULL), 0);
        return (double) (now_usec(CLOCK_MONOTONIC) - start) / (double) USEC_PER_SEC;
}

static bool process_gone(pid_t pid) {
        char path[64], *stat = NULL, *p;
        bool gone;

        if (kill(pid, 0) < 0 && errno == ESRCH)
                return true;
        (void) snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        if (read_full_file(path, 4096, &stat, NULL) < 0)
                return true;
        p = strrchr(stat, ')');
        gone = p && p[1] == ' ' && p[2] == 'Z'; /* a zombie nobody reaped yet */
        free(stat);
        return gone;
}

/* ---- http ---------------------------------------------------------------------------------- */

static void test_http_status(void **state) {
        Server ok = http_server(200), bad = http_server(500);

        expect_once(true, "HTTP 200", "    - name: web\n      http: {url: \"http://127.0.0.1:%d/health\"}\n", ok.port);
        expect_once(false, "HTTP 500 (expected 200)", "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\"}\n",
                    bad.port);
        /* the expected status is what counts, not whether it is a success */
        expect_once(true, "HTTP 500", "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\", status: 500}\n",
                    bad.port);
        expect_once(false, "HTTP 200 (expected 204)",
                    "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\", status: 204}\n", ok.port);
        server_stop(&ok);
        server_stop(&bad);
}

static void test_http_refused(void **state) {
        Server closed = server_start(SERVER_CLOSED, NULL, 0);

        expect_once(false, "Connection refused", "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\"}\n",
                    closed.port);
        server_stop(&closed);
}

/* A redirect is not followed: the status is what the server said. */
static void test_http_redirect(void **state) {
        Server ok = http_server(200), moved;
        char *r = NULL;

        assert_true(asprintf(&r, "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/\r\nContent-Length: 0\r\n"
                                 "Connection: close\r\n\r\n", ok.port) > 0);
        moved = server_start(SERVER_HTTP, r, 0);
        expect_once(false, "HTTP 302 (expected 200), redirect to 'http://127.0.0.1:",
                    "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\"}\n", moved.port);
        expect_once(true, "HTTP 302", "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\", status: 302}\n",
                    moved.port);
        server_stop(&moved);
        server_stop(&ok);
        free(r);
}

static void test_http_body(void **state) {
        Server ok = http_server(200);

        expect_once(true, "HTTP 200", "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\", body: green}\n",
                    ok.port);
        expect_once(false, "HTTP 200, but the body does not contain 'red'",
                    "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\", body: red}\n", ok.port);
        server_stop(&ok);
}

/* A server that connects but never answers: the request gives up when the health timeout
 * runs out (here 1 s), not after curl's own minutes. */
static void test_http_no_answer(void **state) {
        Server silent = server_start(SERVER_SILENT, NULL, 0);
        HealthReport rep = {};
        char checks[256];
        double took;

        (void) snprintf(checks, sizeof(checks), "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\"}\n",
                        silent.port);
        took = run_timed(checks, 1, FAST, &rep);
        expect_result(&rep, 0, false, "timed out");
        assert_false(rep.healthy);
        if (took < 0.9 || took > 2.5)
                fail_msg("took %.2f s", took);
        health_report_done(&rep);
        server_stop(&silent);
}

static void test_http_ipv6(void **state) {
        const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        Server s;

        if (!server_start_family(&s, AF_INET6, SERVER_HTTP, resp, 0))
                skip(); /* no IPv6 loopback here */
        expect_once(true, "HTTP 200", "    - name: web\n      http: {url: \"http://[::1]:%d/\"}\n", s.port);
        server_stop(&s);
}

/* ---- tcp ----------------------------------------------------------------------------------- */

static void test_tcp(void **state) {
        Server open = server_start(SERVER_SILENT, NULL, 0), closed = server_start(SERVER_CLOSED, NULL, 0);

        expect_once(true, "connected", "    - name: db\n      tcp: \"127.0.0.1:%d\"\n", open.port);
        expect_once(false, "Connection refused", "    - name: db\n      tcp: \"127.0.0.1:%d\"\n", closed.port);
        /* a name with several addresses (::1 and 127.0.0.1): each is tried */
        expect_once(true, "connected", "    - name: db\n      tcp: \"localhost:%d\"\n", open.port);
        expect_once(false, "cannot resolve 'no-such-host.invalid'", "    - name: db\n      tcp: \"no-such-host.invalid:80\"\n");
        server_stop(&open);
        server_stop(&closed);
}

/* A listener whose queue is full drops new connection attempts: the check gives up when the
 * health timeout (1 s) runs out. */
static void test_tcp_no_answer(void **state) {
        Server full = server_start(SERVER_CLOSED, NULL, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fill[3];
        HealthReport rep = {};
        char checks[256];
        double took;

        assert_int_equal(listen(full.fd, 0), 0);
        a.sin_port = htons((uint16_t) full.port);
        for (size_t i = 0; i < ELEMENTSOF(fill); i++) {
                fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                assert_true(fill[i] >= 0);
                (void) connect(fill[i], (struct sockaddr *) &a, sizeof(a));
        }
        (void) usleep(50000);
        (void) snprintf(checks, sizeof(checks), "    - name: db\n      tcp: \"127.0.0.1:%d\"\n", full.port);
        took = run_timed(checks, 1, FAST, &rep);
        expect_result(&rep, 0, false, "Connection timed out after 1.0 s");
        assert_int_equal(rep.rounds, 1);
        if (took < 0.9 || took > 2.0)
                fail_msg("took %.2f s", took);
        health_report_done(&rep);
        for (size_t i = 0; i < ELEMENTSOF(fill); i++)
                close(fill[i]);
        server_stop(&full);
}

static void test_tcp_ipv6(void **state) {
        Server open, closed;

        if (!server_start_family(&open, AF_INET6, SERVER_SILENT, NULL, 0))
                skip();
        assert_true(server_start_family(&closed, AF_INET6, SERVER_CLOSED, NULL, 0));
        expect_once(true, "connected", "    - name: db\n      tcp: \"[::1]:%d\"\n", open.port);
        expect_once(false, "Connection refused", "    - name: db\n      tcp: \"[::1]:%d\"\n", closed.port);
        server_stop(&open);
        server_stop(&closed);
}

/* ---- command ------------------------------------------------------------------------------- */

static void test_command(void **state) {
        expect_once(true, "exit status 0", "    - name: smoke\n      command: [true]\n");
        expect_once(false, "exit status 1", "    - name: smoke\n      command: [false]\n");
        expect_once(false, "exit status 3", "    - name: smoke\n      command: [sh, -c, \"exit 3\"]\n");
        expect_once(false, "killed by signal 9 (SIGKILL)", "    - name: smoke\n      command: [sh, -c, \"kill -9 $$\"]\n");
        expect_once(false, "failed to start /nonexistent/x: No such file or directory",
                    "    - name: smoke\n      command: [/nonexistent/x]\n");
}

/* A command past the time left is killed, with what it started in the background. */
static void test_command_timeout(void **state) {
        char dir[] = "/tmp/test-health-XXXXXX", checks[512];
        _cleanup_free_ char *pidfile = NULL, *pid = NULL;
        HealthReport rep = {};
        double took;

        assert_non_null(mkdtemp(dir));
        pidfile = path_join(dir, "pid");
        (void) snprintf(checks, sizeof(checks),
                        "    - name: slow\n      command: [sh, -c, \"sleep 30 & echo $! > %s; wait\"]\n", pidfile);
        took = run_timed(checks, 1, FAST, &rep);
        expect_result(&rep, 0, false, "timed out after 1.0 s and was killed");
        assert_int_equal(rep.rounds, 1);
        /* Killed at the timeout, not after the 30 s sleep; the upper bound leaves room for a
         * loaded machine (CI runs fuzzers beside it). */
        if (took < 0.9 || took > 10)
                fail_msg("took %.2f s", took);
        assert_int_equal(read_full_file(pidfile, 64, &pid, NULL), 0);
        /* Killed with its group: a SIGKILL sent at the timeout takes effect asynchronously, so a
         * loaded machine may show the process for a moment longer; it must be gone within 5 s,
         * long before its 30 s sleep would end. */
        for (unsigned i = 0; i < 500 && !process_gone((pid_t) strtol(pid, NULL, 10)); i++)
                (void) usleep(10 * 1000);
        assert_true(process_gone((pid_t) strtol(pid, NULL, 10)));
        health_report_done(&rep);
        (void) rm_rf(dir);
}

/* ---- systemd without a bus ----------------------------------------------------------------- */

static void test_units_without_bus(void **state) {
        _cleanup_config_ Config *c = config_with(0, 1, "    - name: units\n      systemd-units: [nginx.service]\n");
        HealthReport rep = {};

        expect_once(false, "cannot connect to the system bus (unix:path=/nonexistent/bus)",
                    "    - name: units\n      systemd-units: [nginx.service]\n");
        c->health.no_failed_units = true;
        assert_int_equal(health_run_once(c, &rep, NULL), 0);
        assert_int_equal(rep.n, 2);
        assert_string_equal(rep.results[1].name, "no-failed-units");
        expect_result(&rep, 1, false, "cannot connect to the system bus (unix:path=/nonexistent/bus)");
        health_report_done(&rep);
}

/* A bus that takes the connection and then says nothing (a hung D-Bus daemon): the checks give
 * up when the health timeout runs out, not after sd-bus's own 90 s. */
static void test_units_hung_bus(void **state) {
        char dir[] = "/tmp/test-health-XXXXXX", checks[] = "    - name: units\n      systemd-units: [nginx.service]\n";
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        _cleanup_free_ char *address = NULL;
        _cleanup_config_ Config *c = config_with(0, 1, checks);
        HealthReport rep = {};
        usec_t start;
        double took;

        assert_non_null(mkdtemp(dir));
        (void) snprintf(a.sun_path, sizeof(a.sun_path), "%s/bus", dir);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(fd, 16), 0);
        assert_true(asprintf(&address, "unix:path=%s", a.sun_path) > 0);
        assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", address, 1), 0);

        took = run_timed(checks, 1, FAST, &rep);
        expect_result(&rep, 0, false, "no answer on the system bus (unix:path=/tmp/test-health-");
        assert_int_equal(rep.rounds, 1);
        if (took < 0.9 || took > 2.0)
                fail_msg("took %.2f s", took);
        health_report_done(&rep);

        c->health.no_failed_units = true;
        start = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(health_run(c, FAST, &rep, NULL), 0);
        assert_true(now_usec(CLOCK_MONOTONIC) - start < 3 * USEC_PER_SEC); /* two checks of 1 s at most */
        expect_result(&rep, 1, false, "no answer on the system bus");
        health_report_done(&rep);

        assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus", 1), 0);
        (void) rm_rf(dir);
}

/* ---- rounds -------------------------------------------------------------------------------- */

/* A check that turns healthy after 0.6 s (its server starts listening late) passes in a later
 * round, well within the timeout. */
static void test_rounds_until_healthy(void **state) {
        Server late = server_start(SERVER_HTTP, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                   600 * MSEC);
        HealthReport rep = {};
        char checks[256];
        double took;

        (void) snprintf(checks, sizeof(checks), "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\"}\n", late.port);
        took = run_timed(checks, 3, FAST, &rep);
        assert_true(rep.healthy);
        assert_true(rep.rounds > 1);
        expect_result(&rep, 0, true, "HTTP 200");
        if (took < 0.5 || took > 1.5)
                fail_msg("took %.2f s", took);
        health_report_done(&rep);
        server_stop(&late);
}

/* A service that is back 0.3 s after the start is seen by the round after it, not 2 s later:
 * with the configured interval of 2 s, the pauses grow from 100 ms (rounds at 0, 0.1, 0.3 and
 * 0.7 s), so the service is seen in round 3 or 4. */
static void test_rounds_back_off_from_100ms(void **state) {
        Server late = server_start(SERVER_HTTP, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                   300 * MSEC);
        HealthReport rep = {};
        char checks[256];
        double took;

        (void) snprintf(checks, sizeof(checks), "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\"}\n", late.port);
        took = run_timed(checks, 10, &(HealthOptions) { .interval = 2 * USEC_PER_SEC }, &rep);
        assert_true(rep.healthy);
        if (rep.rounds < 3 || rep.rounds > 4)
                fail_msg("healthy in round %u, not 3 or 4", rep.rounds);
        assert_true(rep.elapsed >= 300 * MSEC);
        if (took >= 2.0)
                fail_msg("took %.2f s: the rounds did not back off from 100 ms", took);
        health_report_done(&rep);
        server_stop(&late);
}

/* With settle, the first round waits: the same late server is up by then. */
static void test_settle(void **state) {
        Server late = server_start(SERVER_HTTP, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                                   300 * MSEC);
        HealthReport rep = {};
        char checks[256];
        double took;

        (void) snprintf(checks, sizeof(checks), "    - name: web\n      http: {url: \"http://127.0.0.1:%d/\"}\n", late.port);
        took = run_timed(checks, 3, &(HealthOptions) { .settle = 600 * MSEC, .settle_set = true, .interval = 200 * MSEC },
                         &rep);
        assert_true(rep.healthy);
        assert_int_equal(rep.rounds, 1);
        if (took < 0.6 || took > 1.5)
                fail_msg("took %.2f s", took);
        health_report_done(&rep);
        server_stop(&late);
}

/* A check that never passes: unhealthy once the timeout ran out, and not much later. The pause
 * before the last round ends at the timeout, and that round still runs. */
static void test_never_healthy(void **state) {
        HealthReport rep = {};
        double took;

        took = run_timed("    - name: never\n      command: [false]\n", 2, FAST, &rep);
        assert_false(rep.healthy);
        expect_result(&rep, 0, false, "exit status 1");
        assert_true(rep.rounds >= 6); /* every 0.2 s for 2 s, minus the time of the rounds */
        if (took < 2.0 || took > 2.7)
                fail_msg("took %.2f s", took);
        health_report_done(&rep);

        /* the first pauses grow from 100 ms, and a pause past the timeout is cut short: rounds at 0,
         * 0.1, 0.3, 0.7 and 1 s (not 1.5) */
        took = run_timed("    - name: never\n      command: [false]\n", 1, &(HealthOptions) { .interval = 10 * USEC_PER_SEC },
                         &rep);
        assert_false(rep.healthy);
        assert_int_equal(rep.rounds, 5);
        if (took < 1.0 || took > 1.7)
                fail_msg("took %.2f s", took);
        health_report_done(&rep);

        /* health.timeout 0 (no override): one round */
        took = run_timed("    - name: never\n      command: [false]\n", 0, NULL, &rep);
        assert_int_equal(rep.rounds, 1);
        assert_true(took < 0.7);
        health_report_done(&rep);
}

/* Every check must pass in the same round: here 'a' passes in the even rounds and 'b' in the
 * odd ones, so each passes again and again, but the system is never healthy. */
static void test_same_round(void **state) {
        char dir[] = "/tmp/test-health-XXXXXX", checks[1024];
        HealthReport rep = {};

        assert_non_null(mkdtemp(dir));
        (void) snprintf(checks, sizeof(checks),
                        "    - name: a\n      command: [sh, -c, \"if [ -e %s/f ]; then rm %s/f; else touch %s/f; exit 1; fi\"]\n"
                        "    - name: b\n      command: [test, -e, \"%s/f\"]\n"
                        "    - name: c\n      command: [true]\n",
                        dir, dir, dir, dir);
        (void) run_timed(checks, 1, FAST, &rep);
        assert_false(rep.healthy);
        assert_true(rep.rounds >= 3);
        assert_int_equal(rep.n, 3);
        assert_string_equal(rep.results[0].name, "a");
        assert_string_equal(rep.results[1].name, "b");
        assert_true(rep.results[0].ok != rep.results[1].ok); /* the last round: one of the two */
        assert_true(rep.results[2].ok);
        health_report_done(&rep);
        (void) rm_rf(dir);
}

/* ---- report -------------------------------------------------------------------------------- */

static void test_json(void **state) {
        HealthReport rep = {};
        json_t *j, *e;

        (void) run_timed("    - name: a\n      command: [true]\n    - name: b\n      command: [sh, -c, \"exit 4\"]\n", 0,
                         NULL, &rep);
        j = health_report_to_json(&rep);
        assert_non_null(j);
        assert_int_equal(json_array_size(j), 2);
        e = json_array_get(j, 1);
        assert_string_equal(json_string_value(json_object_get(e, "name")), "b");
        assert_true(json_is_false(json_object_get(e, "ok")));
        assert_string_equal(json_string_value(json_object_get(e, "detail")), "exit status 4");
        assert_true(json_is_integer(json_object_get(e, "duration_ms")));
        assert_true(json_is_true(json_object_get(json_array_get(j, 0), "ok")));
        json_decref(j);

        /* text that is not UTF-8 does not lose the report */
        free(rep.results[0].detail);
        rep.results[0].detail = strdup("bad \xff byte");
        j = health_report_to_json(&rep);
        assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "detail")), "bad ? byte");
        json_decref(j);
        health_report_done(&rep);
        health_report_done(&rep); /* twice is fine */
}

static int setup(void **state) {
        /* no system bus for the units tests; and never one of this machine */
        return setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus", 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_http_status),
                cmocka_unit_test(test_http_refused),
                cmocka_unit_test(test_http_redirect),
                cmocka_unit_test(test_http_body),
                cmocka_unit_test(test_http_no_answer),
                cmocka_unit_test(test_http_ipv6),
                cmocka_unit_test(test_tcp),
                cmocka_unit_test(test_tcp_no_answer),
                cmocka_unit_test(test_tcp_ipv6),
                cmocka_unit_test(test_command),
                cmocka_unit_test(test_command_timeout),
                cmocka_unit_test(test_units_without_bus),
                cmocka_unit_test(test_units_hung_bus),
                cmocka_unit_test(test_rounds_until_healthy),
                cmocka_unit_test(test_rounds_back_off_from_100ms),
                cmocka_unit_test(test_settle),
                cmocka_unit_test(test_never_healthy),
                cmocka_unit_test(test_same_round),
                cmocka_unit_test(test_json),
        };
        log_set_max_level(getenv("TEST_VERBOSE") ? LOG_DEBUG : LOG_ERR);
        return cmocka_run_group_tests(tests, setup, NULL);
}
