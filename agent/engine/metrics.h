/* SPDX-License-Identifier: MIT */
#pragma once

/* Prometheus metrics through the node exporter's textfile collector (metrics.textfile),
 * written atomically at the end of every run. Metric names and labels: docs/operations.md. */

#include <stdbool.h>

#include "config/config.h"
#include "system/state.h"
#include "basic/timeutil.h"

#define METRICS_PHASES_MAX 8

typedef struct MetricsPhase {
        const char *name; /* fetch, verify, images, build, activate, check, rollback */
        usec_t duration;
} MetricsPhase;

typedef struct MetricsRun {
        const char *command;
        RunResult result;
        time_t end;
        usec_t duration;
        MetricsPhase phases[METRICS_PHASES_MAX];
        size_t n_phases;
        const char *refusal;  /* the reason, when refused */
        long images_verified; /* -1: no verification ran */
} MetricsRun;

/* The running system or the profile is not what the agent deployed. */
typedef struct MetricsDrift {
        bool drift;
        char *current_system; /* where current-system points */
        char *profile;        /* where the profile points */
} MetricsDrift;

/* 1 (and ret filled) when there is drift, 0 when not or when nothing is deployed. */
int metrics_drift(const Config *c, const State *s, MetricsDrift *ret);
void metrics_drift_done(MetricsDrift *d);

/* Counts run (NULL: nothing new, e.g. `check`) into <state-dir>/metrics.json and, when
 * metrics.textfile is set, writes the .prom file from it and from the state s. */
int metrics_record(const Config *c, const State *s, const MetricsRun *run);

/* What the last `check` found of the running containers (containers.h), then as
 * metrics_record(c, s, NULL). */
int metrics_record_containers(const Config *c, const State *s, long drifted, long not_running);
