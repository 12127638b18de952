/* SPDX-License-Identifier: MIT */
#pragma once

/* Health checks (health: in the configuration): http, tcp, systemd-units (over sd-bus on the
 * system bus), command, and health.no-failed-units. health_run() waits `settle`, then runs
 * every check in rounds until all pass in the same round or `timeout` runs out; each check's
 * own time is capped by what is left (and by a per-type maximum). A failing check is a result,
 * not an error: the functions return < 0 only when they cannot run the checks at all. */

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "basic/error.h"
#include "basic/timeutil.h"

typedef struct HealthResult {
        char *name;
        bool ok;
        char *detail; /* "HTTP 200", "Connection refused", "nginx.service is failed", "exit status 3"; may be NULL */
        usec_t duration;
} HealthResult;

typedef struct HealthReport {
        HealthResult *results; /* the last round: one per check in configuration order, then no-failed-units */
        size_t n;
        unsigned rounds;
        usec_t elapsed; /* from the start of the first round to the end of the last */
        bool healthy;   /* every check passed in the same round */
} HealthReport;

/* Overrides for health_run(); NULL or all zero: the configuration's values. */
typedef struct HealthOptions {
        usec_t settle;   /* with settle_set: instead of health.settle (0 allowed) */
        bool settle_set;
        usec_t timeout;  /* > 0: instead of health.timeout */
        usec_t interval; /* between rounds after the first ones (capped by the time left); 0:
                          * health.interval */
} HealthOptions;

/* Waits settle, then runs rounds until every check passes in one round or the timeout runs out.
 * The pauses between rounds grow from 100 ms (100, 200, 400, 800 ms), then are the interval; after
 * the last pause (which ends at the timeout) one more round runs, so a system gets the whole
 * timeout to become healthy. Each result is logged as it comes (info: ok, warning: not).
 * Returns 0 with ret->healthy set either way; -ECANCELED when a stop was requested (stop.h)
 * before a verdict; -ENOMEM (reterr set) when it cannot run. */
int health_run(const Config *c, const HealthOptions *o, HealthReport *ret, Error *reterr);

/* One round now: no settle, no retries, each check with its own maximum time (for `check`). */
int health_run_once(const Config *c, HealthReport *ret, Error *reterr);

void health_report_done(HealthReport *r);

/* [{"name", "ok", "detail", "duration_ms"}, ...] for the state history and `check --json`; NULL
 * when out of memory. */
struct json_t *health_report_to_json(const HealthReport *r);
