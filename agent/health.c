/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>

#include "health.h"
#include "log.h"
#include "process.h"

#define CHECK_TIMEOUT_MAX (30 * USEC_PER_SEC)
#define DEFAULT_INTERVAL (2 * USEC_PER_SEC)

#define HTTP_BODY_MAX (1024 * 1024)

typedef struct Body {
        char *data;
        size_t size;
} Body;

/* Keeps at most HTTP_BODY_MAX bytes of the answer, for the body check. */
static size_t collect(char *p, size_t s, size_t n, void *u) {
        Body *b = u;
        size_t len = s * n, take = MIN(len, HTTP_BODY_MAX - b->size);
        char *q;

        if (take == 0)
                return len;
        q = realloc(b->data, b->size + take + 1);
        if (!q)
                return 0;
        memcpy(q + b->size, p, take);
        b->data = q;
        b->size += take;
        b->data[b->size] = 0;
        return len;
}

static bool check_http(const HealthCheck *hc, usec_t budget, char **detail) {
        CURL *h = curl_easy_init();
        _cleanup_free_ char *body = NULL;
        Body b = {};
        long status = 0;
        CURLcode cc;

        if (!h) {
                *detail = strdup("cannot create a curl handle");
                return false;
        }
        (void) curl_easy_setopt(h, CURLOPT_URL, hc->http_url);
        (void) curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        (void) curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) MAX(budget / USEC_PER_MSEC, 1u));
        (void) curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        (void) curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        if (hc->http_ca_file)
                (void) curl_easy_setopt(h, CURLOPT_CAINFO, hc->http_ca_file);
        (void) curl_easy_setopt(h, CURLOPT_USERAGENT, "atticd-agent health check");
        (void) curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* a health check asks the machine, not a proxy */
        cc = curl_easy_perform(h);
        (void) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        body = b.data;

        if (cc != CURLE_OK) {
                if (asprintf(detail, "%s", curl_easy_strerror(cc)) < 0)
                        *detail = NULL;
                return false;
        }
        if (asprintf(detail, "HTTP %ld%s", status, status == (long) hc->http_status ? "" : " (expected other)") < 0)
                *detail = NULL;
        if (status != (long) hc->http_status && *detail) {
                free(*detail);
                if (asprintf(detail, "HTTP %ld (expected %u)", status, hc->http_status) < 0)
                        *detail = NULL;
        }
        if (status != (long) hc->http_status)
                return false;
        if (hc->http_body && !strstr(strempty(body), hc->http_body)) {
                free(*detail);
                if (asprintf(detail, "HTTP %ld, but the body does not contain '%.64s'", status, hc->http_body) < 0)
                        *detail = NULL;
                return false;
        }
        return true;
}

static bool check_tcp(const HealthCheck *hc, usec_t budget, char **detail) {
        _cleanup_free_ char *host = NULL;
        const char *colon = strrchr(hc->tcp_address, ':');
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
        int k, err = 0;
        socklen_t len = sizeof(err);
        bool ok = false;

        host = strndup(hc->tcp_address, (size_t) (colon - hc->tcp_address));
        if (!host)
                return false;
        if (host[0] == '[') { /* [v6]:port */
                memmove(host, host + 1, strlen(host));
                host[strlen(host) - 1] = 0;
        }
        k = getaddrinfo(host, colon + 1, &hints, &ai);
        if (k != 0) {
                if (asprintf(detail, "%s", gai_strerror(k)) < 0)
                        *detail = NULL;
                return false;
        }
        for (struct addrinfo *a = ai; a && !ok; a = a->ai_next) {
                _cleanup_close_ int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                struct pollfd p = { .fd = fd, .events = POLLOUT };

                if (fd < 0)
                        continue;
                if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
                        err = errno;
                        continue;
                }
                if (poll(&p, 1, (int) MAX(budget / USEC_PER_MSEC, 1u)) <= 0) {
                        err = ETIMEDOUT;
                        continue;
                }
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
                        ok = true;
        }
        freeaddrinfo(ai);
        if (asprintf(detail, "%s", ok ? "connected" : strerror(err ?: ECONNREFUSED)) < 0)
                *detail = NULL;
        return ok;
}

static bool check_units(const HealthCheck *hc, char **detail) {
        sd_bus *bus = NULL;
        bool ok = true;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                if (asprintf(detail, "cannot connect to the system bus: %s", strerror(-r)) < 0)
                        *detail = NULL;
                return false;
        }
        for (char **u = hc->units; u && *u && ok; u++) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                sd_bus_message *reply = NULL;
                _cleanup_free_ char *state = NULL;
                const char *path;

                r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "LoadUnit", &error, &reply, "s", *u);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "o", &path);
                if (r >= 0)
                        r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path,
                                                       "org.freedesktop.systemd1.Unit", "ActiveState", &error, &state);
                if (r < 0) {
                        ok = false;
                        if (asprintf(detail, "%s: %s", *u, error.message ?: strerror(-r)) < 0)
                                *detail = NULL;
                } else if (!streq(state, "active")) {
                        ok = false;
                        if (asprintf(detail, "%s is %s", *u, state) < 0)
                                *detail = NULL;
                }
                sd_bus_error_free(&error);
                sd_bus_message_unref(reply);
        }
        sd_bus_flush_close_unref(bus);
        if (ok && asprintf(detail, "%zu unit(s) active", strv_length(hc->units)) < 0)
                *detail = NULL;
        return ok;
}

/* health.no-failed-units: no unit of the system may be in the failed state. */
static bool check_no_failed_units(char **detail) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        _cleanup_free_ char *names = NULL;
        sd_bus *bus = NULL;
        size_t n = 0, len = 0;
        const char *name;
        int r;

        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "ListUnitsFiltered", &error, &reply, "as", 1,
                                       "failed");
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(ssssssouso)", &name, NULL, NULL, NULL, NULL, NULL, NULL,
                                                  NULL, NULL, NULL)) > 0) {
                size_t l = strlen(name);
                char *p;

                n++;
                if (len > 200)
                        continue;
                p = realloc(names, len + l + 3);
                if (!p)
                        break;
                names = p;
                (void) snprintf(names + len, l + 3, "%s%s", len ? ", " : "", name);
                len += l + (len ? 2 : 0);
        }
        if (r < 0) {
                if (asprintf(detail, "cannot list the failed units: %s", error.message ?: strerror(-r)) < 0)
                        *detail = NULL;
        } else if (n > 0) {
                if (asprintf(detail, "%zu failed unit(s): %s", n, strempty(names)) < 0)
                        *detail = NULL;
        } else
                *detail = strdup("no failed units");
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return r >= 0 && n == 0;
}

static bool check_command(const HealthCheck *hc, usec_t budget, char **detail) {
        ProcessResult res = {};
        Error e = {};
        int r;

        r = process_run(hc->command, &(ProcessOptions) { .name = hc->name, .timeout = budget }, &res, &e);
        if (r == 0) {
                *detail = strdup("exit status 0");
                return true;
        }
        *detail = strdup(e.message[0] ? e.message : strerror(-r));
        return false;
}

static void run_check(const HealthCheck *hc, usec_t budget, HealthResult *ret) {
        usec_t start = now_usec(CLOCK_MONOTONIC);
        char *detail = NULL;
        bool ok = false;

        budget = MIN(MAX(budget, USEC_PER_SEC), CHECK_TIMEOUT_MAX);
        switch (hc->type) {
        case HEALTH_CHECK_HTTP:
                ok = check_http(hc, budget, &detail);
                break;
        case HEALTH_CHECK_TCP:
                ok = check_tcp(hc, budget, &detail);
                break;
        case HEALTH_CHECK_SYSTEMD_UNITS:
                ok = check_units(hc, &detail);
                break;
        case HEALTH_CHECK_COMMAND:
                ok = check_command(hc, budget, &detail);
                break;
        }
        free(ret->name);
        free(ret->detail);
        *ret = (HealthResult) {
                .name = strdup(hc->name),
                .ok = ok,
                .detail = detail,
                .duration = now_usec(CLOCK_MONOTONIC) - start,
        };
        log_full_errno(ok ? LOG_INFO : LOG_WARNING, 0, "Health check '%s': %s (%s, %llu ms)", hc->name,
                       ok ? "ok" : "FAILED", strna(detail), (unsigned long long) (ret->duration / USEC_PER_MSEC));
}

void health_report_done(HealthReport *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++) {
                free(r->results[i].name);
                free(r->results[i].detail);
        }
        free(r->results);
        *r = (HealthReport) {};
}

static int round_of_checks(const Config *c, usec_t deadline, HealthReport *rep) {
        bool all = true;

        for (size_t i = 0; i < c->health.n_checks; i++) {
                usec_t now = now_usec(CLOCK_MONOTONIC);

                run_check(&c->health.checks[i], deadline > now ? deadline - now : 0, &rep->results[i]);
                all = all && rep->results[i].ok;
        }
        if (c->health.no_failed_units) {
                HealthResult *res = &rep->results[c->health.n_checks];
                usec_t start = now_usec(CLOCK_MONOTONIC);
                char *detail = NULL;
                bool ok = check_no_failed_units(&detail);

                free(res->name);
                free(res->detail);
                *res = (HealthResult) { .name = strdup("no-failed-units"), .ok = ok, .detail = detail,
                                        .duration = now_usec(CLOCK_MONOTONIC) - start };
                log_full_errno(ok ? LOG_INFO : LOG_WARNING, 0, "Health check 'no-failed-units': %s (%s)",
                               ok ? "ok" : "FAILED", strna(detail));
                all = all && ok;
        }
        rep->rounds++;
        rep->healthy = all;
        return 0;
}

static int report_new(const Config *c, HealthReport *ret) {
        *ret = (HealthReport) { .n = c->health.n_checks + !!c->health.no_failed_units };
        ret->results = calloc(MAX(ret->n, 1u), sizeof(HealthResult));
        return ret->results ? 0 : -ENOMEM;
}

int health_run_once(const Config *c, HealthReport *ret, Error *e) {
        int r = report_new(c, ret);

        if (r < 0)
                return r;
        return round_of_checks(c, now_usec(CLOCK_MONOTONIC) + CHECK_TIMEOUT_MAX, ret);
}

int health_run(const Config *c, const HealthOptions *o, HealthReport *ret, Error *e) {
        usec_t interval = o && o->interval ? o->interval : DEFAULT_INTERVAL;
        usec_t start, deadline;
        int r;

        r = report_new(c, ret);
        if (r < 0)
                return r;
        if (c->health.settle > 0) {
                log_info("Waiting %u s for the system to settle before the health checks.", c->health.settle);
                (void) usleep((useconds_t) 0); /* nothing to flush */
                for (usec_t end = now_usec(CLOCK_MONOTONIC) + c->health.settle * USEC_PER_SEC;
                     now_usec(CLOCK_MONOTONIC) < end;)
                        (void) usleep((useconds_t) MIN(end - now_usec(CLOCK_MONOTONIC), (usec_t) 500000));
        }
        start = now_usec(CLOCK_MONOTONIC);
        deadline = start + c->health.timeout * USEC_PER_SEC;
        for (;;) {
                usec_t now;

                round_of_checks(c, deadline, ret);
                if (ret->healthy) {
                        log_info("Healthy: all %zu check(s) passed in round %u.", ret->n, ret->rounds);
                        return 0;
                }
                now = now_usec(CLOCK_MONOTONIC);
                if (now + interval >= deadline)
                        break;
                (void) usleep((useconds_t) interval);
        }
        log_warning("Unhealthy: the checks did not all pass within %u s (%u round(s)).", c->health.timeout, ret->rounds);
        return 0;
}

json_t *health_report_to_json(const HealthReport *r) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < r->n; i++)
                if (json_array_append_new(a, json_pack("{s:s, s:b, s:o, s:I}", "name", strempty(r->results[i].name), "ok",
                                                       r->results[i].ok,
                                                       "detail", r->results[i].detail ? json_string(r->results[i].detail)
                                                                                      : json_null(),
                                                       "duration_ms",
                                                       (json_int_t) (r->results[i].duration / USEC_PER_MSEC))) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}
