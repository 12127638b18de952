/* SPDX-License-Identifier: MIT */
#pragma once

/* Health checks (health: in the configuration): http, tcp, systemd-units (over sd-bus on the
 * system bus) and command. health_run() waits `settle`, then runs every check in rounds until
 * all pass in the same round or `timeout` runs out. */

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "error.h"
#include "timeutil.h"

typedef struct HealthResult {
        char *name;
        bool ok;
        char *detail; /* "HTTP 200", "connection refused", "nginx.service is failed", "exit status 3" */
        usec_t duration;
} HealthResult;

typedef struct HealthReport {
        HealthResult *results; /* the last round: one per check, in configuration order */
        size_t n;
        unsigned rounds;
        bool healthy; /* every check passed in the same round */
} HealthReport;

typedef struct HealthOptions {
        usec_t interval; /* between rounds; 0: 2 s */
} HealthOptions;

int health_run(const Config *c, const HealthOptions *o, HealthReport *ret, Error *reterr);
int health_run_once(const Config *c, HealthReport *ret, Error *reterr);
void health_report_done(HealthReport *r);
struct json_t *health_report_to_json(const HealthReport *r);
