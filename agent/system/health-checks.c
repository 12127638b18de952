/* SPDX-License-Identifier: MIT */
/* The kinds of health check, each given a budget of time: http (libcurl), tcp (a connect),
 * systemd-units and no-failed-units (sd-bus), command (a process with its group killed at the
 * end). Each returns whether the check passed and a detail for the report; the rounds, the
 * settle and the deadline are health.c's. */
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>

#include "system/bus.h"
#include "basic/curl-dl.h"
#include "system/health-internal.h"
#include "system/notify.h"
#include "basic/log.h"
#include "system/process.h"
#include "basic/stop.h"

/* The most each kind of check may take of the time left. */
#define HTTP_TIME_MAX (10 * USEC_PER_SEC)
#define HTTP_CONNECT_TIME_MAX (5 * USEC_PER_SEC)
#define TCP_TIME_MAX (5 * USEC_PER_SEC)
#define BUS_TIME_MAX (10 * USEC_PER_SEC)
#define COMMAND_TIME_MAX (30 * USEC_PER_SEC)
#define COMMAND_KILL_GRACE (1 * USEC_PER_SEC) /* from SIGTERM to SIGKILL after a command's time is up */

#define HTTP_BODY_MAX (1024 * 1024) /* kept of an answer, for the body check */
#define DETAIL_LIST_MAX 8           /* units named in one detail */

static char *strdupf(const char *fmt, ...) _printf_(1, 2);
static char *strdupf(const char *fmt, ...) {
        va_list ap;
        char *s;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&s, fmt, ap);
        va_end(ap);
        return k < 0 ? NULL : s;
}

/* ---- http ---------------------------------------------------------------------------------- */

static void curl_easy_cleanupp(CURL **h) {
        if (*h)
                sym_curl_easy_cleanup(*h);
}

typedef struct Body {
        bool keep; /* only when the check looks into it */
        char *data;
        size_t size;
} Body;

static size_t body_write(char *p, size_t s, size_t n, void *userdata) {
        Body *b = userdata;
        size_t len = s * n, take;
        char *q;

        if (!b->keep)
                return len;
        take = MIN(len, HTTP_BODY_MAX - b->size);
        if (take == 0)
                return len;
        q = realloc(b->data, b->size + take + 1);
        if (!q)
                return 0; /* ends the transfer with CURLE_WRITE_ERROR */
        memcpy(q + b->size, p, take);
        b->data = q;
        b->size += take;
        b->data[b->size] = 0;
        return len;
}

/* curl's message with the system's reason when curl leaves it out, e.g. "Failed to connect to
 * 127.0.0.1 port 9 after 0 ms: Couldn't connect to server (Connection refused)". */
static char *curl_detail(CURLcode cc, const char *errbuf, long os_errno) {
        const char *msg = errbuf[0] ? errbuf : sym_curl_easy_strerror(cc);
        const char *cause = os_errno > 0 ? strerror((int) os_errno) : NULL;

        if (cause && !strcasestr(msg, cause))
                return strdupf("%s (%s)", msg, cause);
        return strdup(msg);
}

/* GET the URL; ok when the server answers the expected status (redirects are not followed: the
 * status is what the server said) and, with http.body, the body contains that text. */
bool health_check_http(const HealthCheck *hc, usec_t budget, char **detail) {
        _cleanup_(curl_easy_cleanupp) CURL *h = NULL;
        char errbuf[CURL_ERROR_SIZE] = "";
        _cleanup_free_ char *body = NULL;
        Body b = { .keep = !!hc->http_body };
        long status = 0, os_errno = 0;
        char *location = NULL;
        Error dl = {};
        CURLcode cc;

        if (curl_dl_open(&dl) < 0) {
                *detail = strdup(error_message(&dl));
                return false;
        }
        h = sym_curl_easy_init();
        if (!h) {
                *detail = strdup("cannot create a curl handle");
                return false;
        }
        budget = MIN(budget, HTTP_TIME_MAX);
        (void) sym_curl_easy_setopt(h, CURLOPT_URL, hc->http_url);
        (void) sym_curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        (void) sym_curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        (void) sym_curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        (void) sym_curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) (MIN(budget, HTTP_CONNECT_TIME_MAX) / USEC_PER_MSEC));
        (void) sym_curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) (budget / USEC_PER_MSEC));
        (void) sym_curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        (void) sym_curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
        (void) sym_curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        if (hc->http_ca_file)
                (void) sym_curl_easy_setopt(h, CURLOPT_CAINFO, hc->http_ca_file); /* else the system's CAs */
        (void) sym_curl_easy_setopt(h, CURLOPT_USERAGENT, "atticd-agent health check");
        (void) sym_curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* a health check asks the machine, not a proxy */

        /* Fed while the server takes its time (up to the budget). */
        cc = curl_perform_ticking(h, (unsigned) MIN(notify_watchdog_interval() / USEC_PER_MSEC, (usec_t) 1000),
                                  notify_watchdog);
        body = b.data;
        if (cc != CURLE_OK) {
                (void) sym_curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
                *detail = curl_detail(cc, errbuf, os_errno);
                return false;
        }

        (void) sym_curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status != (long) hc->http_status) {
                (void) sym_curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &location);
                if (location)
                        *detail = strdupf("HTTP %ld (expected %u), redirect to '%.200s' not followed", status,
                                          hc->http_status, location);
                else
                        *detail = strdupf("HTTP %ld (expected %u)", status, hc->http_status);
                return false;
        }
        if (hc->http_body && !memmem(body ?: "", b.size, hc->http_body, strlen(hc->http_body))) {
                *detail = strdupf("HTTP %ld, but the body does not contain '%.64s'", status, hc->http_body);
                return false;
        }
        *detail = strdupf("HTTP %ld", status);
        return true;
}

/* ---- tcp ----------------------------------------------------------------------------------- */

/* "host:port" or "[v6-address]:port" (as config.c checked it) into host and port. */
static int split_address(const char *a, char **ret_host, const char **ret_port) {
        const char *colon = strrchr(a, ':');
        char *host;

        if (!colon || colon == a)
                return -EINVAL;
        if (a[0] == '[' && colon - a >= 2 && colon[-1] == ']')
                host = strndup(a + 1, (size_t) (colon - a - 2));
        else
                host = strndup(a, (size_t) (colon - a));
        if (!host)
                return -ENOMEM;
        *ret_host = host;
        *ret_port = colon + 1;
        return 0;
}

/* A non-blocking connect that must complete before the deadline; 0 or -errno. */
static int connect_before(const struct addrinfo *a, usec_t deadline) {
        _cleanup_close_ int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        socklen_t len = sizeof(int);
        int err = 0;

        if (fd < 0)
                return -errno;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
                return 0;
        if (errno != EINPROGRESS)
                return -errno;
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                usec_t now = now_usec(CLOCK_MONOTONIC);
                int k;

                if (now >= deadline)
                        return -ETIMEDOUT;
                notify_watchdog();
                k = poll(&p, 1, (int) MIN((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC,
                                          MIN(notify_watchdog_interval() / USEC_PER_MSEC + 1, (usec_t) 60000)));
                if (k > 0)
                        break;
                if (k < 0 && errno != EINTR)
                        return -errno;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                return -errno;
        return -err;
}

/* Ok when one of the host's addresses accepts a connection. */
bool health_check_tcp(const HealthCheck *hc, usec_t budget, char **detail) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai = NULL;
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + MIN(budget, TCP_TIME_MAX);
        _cleanup_free_ char *host = NULL;
        const char *port;
        int r = -EADDRNOTAVAIL, k;

        if (split_address(hc->tcp_address, &host, &port) < 0) {
                *detail = strdupf("cannot use the address '%s'", hc->tcp_address);
                return false;
        }
        k = getaddrinfo(host, port, &hints, &ai);
        if (k != 0) {
                *detail = strdupf("cannot resolve '%s': %s", host, k == EAI_SYSTEM ? strerror(errno) : gai_strerror(k));
                return false;
        }
        for (const struct addrinfo *a = ai; a; a = a->ai_next) {
                r = connect_before(a, deadline);
                if (r == 0 || r == -ETIMEDOUT) /* the time is shared: no use trying the next address */
                        break;
        }
        freeaddrinfo(ai);

        if (r == 0)
                *detail = strdup("connected");
        else if (r == -ETIMEDOUT)
                *detail = strdupf("%s after %.1f s", strerror(ETIMEDOUT), usec_to_seconds(MIN(budget, TCP_TIME_MAX)));
        else
                *detail = strdup(strerror(-r));
        return r == 0;
}

/* ---- systemd-units, no-failed-units ---------------------------------------------------------- */

/* system_bus_open() with its message as a check's detail. */
static int open_bus(usec_t deadline, sd_bus **ret, char **detail) {
        Error e = {};
        int r = system_bus_open(deadline, ret, &e);

        if (r < 0)
                *detail = strdup(error_message(&e) ?: strerror(-r));
        return r;
}

/* The unit's ActiveState and, when that is not "active", its LoadState. LoadUnit rather than
 * GetUnit: a unit that nothing has pulled in yet is then reported by its state ("inactive")
 * instead of as an error. */
static int unit_state(sd_bus *bus, const char *unit, usec_t deadline, char **ret_active, char **ret_load,
                      sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *active = NULL, *load = NULL;
        const char *path = NULL;
        int r;

        r = bus_call_timeout(bus, deadline);
        if (r >= 0)
                r = sd_bus_call_method(bus, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER, "LoadUnit", error, &reply,
                                       "s", unit);
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0)
                r = bus_call_timeout(bus, deadline);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, SYSTEMD_SERVICE, path, SYSTEMD_UNIT, "ActiveState", error, &active);
        if (r >= 0 && !streq(active, "active")) {
                r = bus_call_timeout(bus, deadline);
                if (r >= 0)
                        r = sd_bus_get_property_string(bus, SYSTEMD_SERVICE, path, SYSTEMD_UNIT, "LoadState", error, &load);
        }
        if (r < 0)
                return r;
        *ret_active = TAKE_PTR(active);
        *ret_load = TAKE_PTR(load);
        return 0;
}

/* Ok when every unit is "active"; the detail names those that are not, with their state. */
bool health_check_units(const HealthCheck *hc, usec_t budget, char **detail) {
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + MIN(budget, BUS_TIME_MAX);
        _cleanup_free_ char *list = NULL;
        size_t size = 0, n = strv_length(hc->units), bad = 0;
        _cleanup_fclose_ FILE *f = NULL;

        if (open_bus(deadline, &bus, detail) < 0)
                return false;
        f = open_memstream(&list, &size);
        if (!f)
                return false;

        for (char **u = hc->units; u && *u; u++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *active = NULL, *load = NULL;
                int r = unit_state(bus, *u, deadline, &active, &load, &error);

                if (r == -ETIMEDOUT || (r < 0 && sd_bus_is_open(bus) <= 0)) {
                        /* systemd does not answer at all: no use asking about the other units */
                        *detail = strdupf("no answer from systemd on the system bus (%s) about %s: %s",
                                          system_bus_address(), *u, strerror(-r));
                        return false;
                }
                if (r >= 0 && streq(active, "active"))
                        continue;
                if (bad++ >= DETAIL_LIST_MAX)
                        continue;
                if (bad > 1)
                        fputs(", ", f);
                if (r < 0)
                        fprintf(f, "%s: %s", *u, error.message ?: strerror(-r));
                else if (streq_ptr(load, "loaded"))
                        fprintf(f, "%s is %s", *u, active);
                else
                        fprintf(f, "%s is %s (%s)", *u, active, strna(load));
        }
        if (bad > DETAIL_LIST_MAX)
                fprintf(f, " and %zu more", bad - DETAIL_LIST_MAX);
        if (fclose(TAKE_PTR(f)) != 0)
                return false;

        if (bad > 0) {
                *detail = TAKE_PTR(list);
                return false;
        }
        *detail = n == 1 ? strdupf("%s is active", hc->units[0]) : strdupf("all %zu units are active", n);
        return true;
}

/* health.no-failed-units: ok when no unit of the system is in the "failed" state. */
bool health_check_no_failed_units(usec_t budget, char **detail) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + MIN(budget, BUS_TIME_MAX);
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *list = NULL;
        size_t size = 0, n = 0;
        _cleanup_fclose_ FILE *f = NULL;
        const char *name;
        int r;

        if (open_bus(deadline, &bus, detail) < 0)
                return false;
        f = open_memstream(&list, &size);
        if (!f)
                return false;

        r = bus_call_timeout(bus, deadline);
        if (r >= 0)
                r = sd_bus_call_method(bus, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER, "ListUnitsFiltered", &error,
                                       &reply, "as", 1, "failed");
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
        while (r >= 0) {
                r = sd_bus_message_read(reply, "(ssssssouso)", &name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                        NULL);
                if (r <= 0)
                        break;
                if (n++ < DETAIL_LIST_MAX)
                        fprintf(f, "%s%s", n > 1 ? ", " : "", name);
        }
        if (n > DETAIL_LIST_MAX)
                fprintf(f, " and %zu more", n - DETAIL_LIST_MAX);
        if (fclose(TAKE_PTR(f)) != 0)
                return false;

        if (r < 0)
                *detail = strdupf("cannot list the failed units on the system bus (%s): %s", system_bus_address(),
                                  error.message ?: strerror(-r));
        else if (n > 0)
                *detail = strdupf("%zu failed unit%s: %s", n, n == 1 ? "" : "s", list);
        else
                *detail = strdup("no failed units");
        return r >= 0 && n == 0;
}

/* ---- command ------------------------------------------------------------------------------- */

/* Ok when the command exits with status 0 in time; past its time its process group is killed. */
bool health_check_command(const HealthCheck *hc, usec_t budget, char **detail) {
        ProcessResult res = {};
        Error e = {};
        int r;

        budget = MIN(budget, COMMAND_TIME_MAX);
        r = process_run(hc->command,
                        &(ProcessOptions) { .name = hc->name, .timeout = budget, .kill_grace = COMMAND_KILL_GRACE },
                        &res, &e);
        if (r == 0)
                *detail = strdup("exit status 0");
        else if (res.timed_out)
                *detail = strdupf("timed out after %.1f s and was killed", usec_to_seconds(budget));
        else if (res.exited)
                *detail = strdupf("exit status %d", res.exit_status);
        else if (res.signal > 0)
                *detail = strdupf("killed by signal %d (SIG%s)", res.signal, sigabbrev_np(res.signal) ?: "?");
        else /* could not be started */
                *detail = strdup(error_message(&e) ?: strerror(-r));
        return r == 0;
}
