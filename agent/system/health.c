/* SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <stdarg.h>

#include "system/health.h"
#include "system/health-internal.h"
#include "system/notify.h"
#include "basic/log.h"
#include "system/process.h"
#include "basic/stop.h"

/* The first pauses between rounds: a system that is healthy a moment after its activation is
 * seen so at once; then health.interval. */
static const usec_t first_pauses[] = { 100 * USEC_PER_MSEC, 200 * USEC_PER_MSEC, 400 * USEC_PER_MSEC,
                                       800 * USEC_PER_MSEC };

/* A check gets the time left until the timeout, but never less than CHECK_TIME_MIN (the round
 * that runs at the timeout must still be able to pass) and never more than its type's maximum. */
#define CHECK_TIME_MIN (1 * USEC_PER_SEC)

/* ---- rounds -------------------------------------------------------------------------------- */

/* One check (NULL: health.no-failed-units) with the time left until deadline, logged. */
static bool run_check(const HealthCheck *hc, usec_t deadline, HealthResult *res) {
        usec_t start = now_usec(CLOCK_MONOTONIC);
        usec_t budget = MAX(deadline > start ? deadline - start : 0, CHECK_TIME_MIN);
        char *detail = NULL;
        bool ok = false;

        if (!hc)
                ok = health_check_no_failed_units(budget, &detail);
        else if (hc->type == HEALTH_CHECK_HTTP)
                ok = health_check_http(hc, budget, &detail);
        else if (hc->type == HEALTH_CHECK_TCP)
                ok = health_check_tcp(hc, budget, &detail);
        else if (hc->type == HEALTH_CHECK_SYSTEMD_UNITS)
                ok = health_check_units(hc, budget, &detail);
        else if (hc->type == HEALTH_CHECK_COMMAND)
                ok = health_check_command(hc, budget, &detail);

        free(res->detail);
        *res = (HealthResult) { .name = res->name, .ok = ok, .detail = detail, .duration = now_usec(CLOCK_MONOTONIC) - start };
        if (ok)
                log_info("Health check '%s': ok (%s, %llu ms).", res->name, strna(detail),
                         (unsigned long long) (res->duration / USEC_PER_MSEC));
        else
                log_warning("Health check '%s' failed: %s (%llu ms).", res->name, strna(detail),
                            (unsigned long long) (res->duration / USEC_PER_MSEC));
        return ok;
}

/* Every check; all of them run even after one failed, so that the report shows the whole round. */
static void run_round(const Config *c, usec_t deadline, HealthReport *rep) {
        bool all = true;

        rep->rounds++;
        for (size_t i = 0; i < c->health.n_checks; i++)
                all = run_check(&c->health.checks[i], deadline, &rep->results[i]) && all;
        if (c->health.no_failed_units)
                all = run_check(NULL, deadline, &rep->results[c->health.n_checks]) && all;
        rep->healthy = all;
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

static int report_new(const Config *c, HealthReport *ret, Error *reterr) {
        _cleanup_(health_report_done) HealthReport rep = {};
        size_t n = c->health.n_checks + !!c->health.no_failed_units;

        rep.results = calloc(MAX(n, 1u), sizeof(HealthResult));
        if (!rep.results)
                return error_set(reterr, -ENOMEM, "out of memory");
        for (; rep.n < n; rep.n++) {
                rep.results[rep.n].name = strdup(rep.n < c->health.n_checks ? c->health.checks[rep.n].name : "no-failed-units");
                if (!rep.results[rep.n].name)
                        return error_set(reterr, -ENOMEM, "out of memory");
        }
        *ret = rep;
        rep = (HealthReport) {};
        return 0;
}

/* Sleeps until `until`, or until a stop is requested (false then), feeding the service
 * manager's watchdog at least every half interval meanwhile. */
static bool sleep_until(usec_t until) {
        while (!stop_requested()) {
                usec_t now = now_usec(CLOCK_MONOTONIC), step = until;
                struct timespec ts;

                notify_watchdog();
                if (now >= until)
                        return true;
                if (notify_watchdog_interval() != USEC_INFINITY)
                        step = MIN(until, now + notify_watchdog_interval());
                ts = (struct timespec) { .tv_sec = (time_t) (step / USEC_PER_SEC),
                                         .tv_nsec = (long) (step % USEC_PER_SEC) * 1000 };
                (void) clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        }
        return false;
}

/* once: a single round, each check with its own maximum time. */
static int run_rounds(const Config *c, usec_t settle, usec_t timeout, usec_t interval, bool once, HealthReport *ret,
                      Error *reterr) {
        _cleanup_(health_report_done) HealthReport rep = {};
        usec_t deadline, start;
        int r;

        r = report_new(c, &rep, reterr);
        if (r < 0)
                return r;

        if (settle > 0) {
                log_info("Waiting %.1f s for the system to settle before the health checks.", usec_to_seconds(settle));
                if (!sleep_until(now_usec(CLOCK_MONOTONIC) + settle))
                        return error_set(reterr, -ECANCELED, "asked to stop before the health checks");
        }
        start = now_usec(CLOCK_MONOTONIC);
        deadline = once ? USEC_INFINITY : start + timeout;
        for (;;) {
                usec_t now, pause;

                if (stop_requested() && !once)
                        return error_set(reterr, -ECANCELED, "asked to stop during the health checks");
                run_round(c, deadline, &rep);
                rep.elapsed = now_usec(CLOCK_MONOTONIC) - start;
                if (rep.healthy || once)
                        break;
                now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        break;
                pause = rep.rounds <= ELEMENTSOF(first_pauses) ? MIN(first_pauses[rep.rounds - 1], interval) : interval;
                /* The last pause ends at the timeout, and one more round runs then. */
                if (!sleep_until(MIN(now + pause, deadline)))
                        return error_set(reterr, -ECANCELED, "asked to stop during the health checks");
        }

        if (rep.healthy && rep.rounds > 1)
                log_info("Healthy: all %zu check(s) passed in round %u, %.2f s after the first.", rep.n, rep.rounds,
                         usec_to_seconds(rep.elapsed));
        else if (rep.healthy)
                log_info("Healthy: all %zu check(s) passed in round %u.", rep.n, rep.rounds);
        else if (once)
                log_warning("Unhealthy: not every check passed.");
        else
                log_warning("Unhealthy: the checks did not all pass in one round within %.1f s (%u round(s)).",
                            usec_to_seconds(timeout), rep.rounds);
        *ret = rep;
        rep = (HealthReport) {};
        return 0;
}

int health_run(const Config *c, const HealthOptions *o, HealthReport *ret, Error *reterr) {
        static const HealthOptions defaults = {};

        if (!o)
                o = &defaults;
        return run_rounds(c, o->settle_set ? o->settle : c->health.settle * USEC_PER_SEC,
                          o->timeout ?: c->health.timeout * USEC_PER_SEC, o->interval ?: c->health.interval * USEC_PER_SEC, false,
                          ret, reterr);
}

int health_run_once(const Config *c, HealthReport *ret, Error *reterr) {
        return run_rounds(c, 0, 0, 0, true, ret, reterr);
}

/* Details carry text from outside (curl's messages, a command's name): bytes that would make
 * the string invalid UTF-8, and so refused by jansson, become '?'. */
static json_t *json_string_lossy(const char *s) {
        _cleanup_free_ char *copy = NULL;
        json_t *j;

        if (!s)
                return json_null();
        j = json_string(s);
        if (j)
                return j;
        copy = strdup(s);
        if (!copy)
                return NULL;
        for (char *p = copy; *p; p++)
                if ((unsigned char) *p >= 0x80)
                        *p = '?';
        return json_string(copy);
}

json_t *health_report_to_json(const HealthReport *r) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < r->n; i++) {
                const HealthResult *res = &r->results[i];
                json_t *o = json_pack("{s:s, s:b, s:o, s:I}", "name", strempty(res->name), "ok", res->ok, "detail",
                                      json_string_lossy(res->detail), "duration_ms",
                                      (json_int_t) (res->duration / USEC_PER_MSEC));

                if (json_array_append_new(a, o) < 0) {
                        json_decref(a);
                        return NULL;
                }
        }
        return a;
}
