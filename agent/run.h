/* SPDX-License-Identifier: MIT */
#pragma once

/* One run of a command that changes things: the lock, the state, the record of the result.
 * Shared by the engine's commands (engine.c) and the deployment phases (deploy.c). */

#include "config.h"
#include "exitcode.h"
#include "images.h"
#include "state.h"

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
} Run;

/* Takes the lock and reads the state: EXIT_BUSY, EXIT_USAGE (unreadable state) or EXIT_OK. */
ExitCode run_begin(Run *run, const Config *c, const char *command);
void run_done(Run *run);

/* Records the result of the run in last-run.json (never in the state file); returns code. */
ExitCode run_result(Run *run, ExitCode code, RunResult result, const char *revision, const char *error);
int run_save_state(Run *run);

/* Logs a refusal (the "refused" event), records it, returns EXIT_REFUSED. reason is a short
 * word for metrics and filters: "non-fast-forward", "downgrade", "commit-signature",
 * "image-signature", "source", "bundle-signature", "bundle-integrity", "expired", "sequence",
 * "host", "bundle-images". */
ExitCode run_refuse(Run *run, const char *reason, const char *rev, const char *fmt, ...) _printf_(4, 5);

ExitCode log_oom_exit(void);
