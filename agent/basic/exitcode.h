/* SPDX-License-Identifier: MIT */
#pragma once

/* The exit codes (docs/atticd-agent.8.scd, EXIT STATUS). Fixed: tests outside this repository
 * rely on them. */
typedef enum ExitCode {
        EXIT_OK = 0,              /* deployed, nothing to do, verified, healthy */
        EXIT_DEPLOY_FAILED = 1,   /* build, activation or health failed (check: unhealthy) */
        EXIT_USAGE = 2,           /* usage or configuration error */
        EXIT_REFUSED = 3,         /* a verification failed; nothing was changed */
        EXIT_BUSY = 4,            /* another run holds the lock */
        EXIT_ROLLBACK_FAILED = 5, /* the rollback itself failed: the system needs a person */
        EXIT_TRANSIENT = 6,       /* the source was unreachable; try later */

        /* Not in the contract: asked to stop (SIGTERM, SIGINT) and stopped at a safe point; the
         * next run finishes the job. 128 + SIGTERM, as a shell reports a process SIGTERM ended;
         * the NixOS module lists it in SuccessExitStatus=. */
        EXIT_STOPPED = 143,
} ExitCode;
