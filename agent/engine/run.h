/* SPDX-License-Identifier: MIT */
#pragma once

/* One run of a command that changes things: the lock, the state, the record of the result.
 * Shared by the engine's commands (engine.c) and the deployment phases (deploy.c). */

#include "config/config.h"
#include "basic/exitcode.h"
#include "oci/images.h"
#include "engine/metrics.h"
#include "system/state.h"

typedef struct Run {
        const Config *config;
        const char *command;
        int lock_fd;
        State *state;
        /* What the verifications found, recorded with the deployment. */
        char *signer;
        ImageSet images;
        struct json_t *bundle; /* applying a bundle: {id, sequence, signer, file} */
        const char *refusal;   /* the reason of a refusal, for the metrics */
        /* Timing, for the metrics. */
        usec_t start;
        usec_t phase_start;
        MetricsPhase phases[METRICS_PHASES_MAX];
        size_t n_phases;
        long images_verified; /* -1 until a verification ran */
        bool waiting;         /* the revision waits (gate.h): not an error, nothing deployed */
        RunResult result;     /* the last result recorded (run_result, run_metrics); the metrics get
                               * it once, when the run ends (run_done) */
        bool result_set;
} Run;

/* Takes the lock and reads the state: EXIT_BUSY, EXIT_USAGE (unreadable state) or EXIT_OK. */
ExitCode run_begin(Run *run, const Config *c, const char *command);
void run_done(Run *run);

/* Enters a phase of the run (fetch, verify, images, build, activate, check, rollback): the
 * service manager's STATUS= line, and the previous phase's duration for the metrics. */
void run_phase(Run *run, const char *phase, const char *fmt, ...) _printf_(3, 4);

/* Records the result of the run in last-run.json (never in the state file) and in the
 * metrics; returns code. */
ExitCode run_result(Run *run, ExitCode code, RunResult result, const char *revision, const char *error);
/* Only the metrics (commands that check but do not deploy: verify-images). */
void run_metrics(Run *run, RunResult result);
int run_save_state(Run *run);

/* Logs a refusal (the "refused" event), records it, returns EXIT_REFUSED. reason is a short
 * word for metrics and filters: "non-fast-forward", "downgrade", "commit-signature",
 * "image-signature", "source", "bundle-signature", "bundle-integrity", "expired", "sequence",
 * "host", "bundle-images", "bundle-closure", "reevaluate". */
ExitCode run_refuse(Run *run, const char *reason, const char *rev, const char *fmt, ...) _printf_(4, 5);

ExitCode log_oom_exit(void);
