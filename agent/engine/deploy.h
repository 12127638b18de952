/* SPDX-License-Identifier: MIT */
#pragma once

/* The phases of a deployment once a revision is verified, each recorded in the state file
 * before its side effect:
 *
 *   building -> activating -> checking -> recorded as deployed and known good
 *                    |             |
 *                    +-------------+--> rolling-back -> rolled back (exit 1)
 *                                                     -> rollback failed (exit 5)
 *
 * and the recovery of a run that was interrupted in any of them. No phase evaluates the flake:
 * the build realises the derivation that the one evaluation of the revision gave, and the
 * activation activates exactly the store path that the build gave. */

#include "engine/run.h"

/* What to deploy: one evaluation's result. */
typedef struct DeployTarget {
        const char *revision;
        const char *source;   /* "pull" or "bundle" */
        const char *drv_path; /* the derivation to build (offline for a bundle); NULL: toplevel is in
                               * the store already */
        const char *toplevel; /* the generation */
        bool schedule;        /* activate only inside schedule.windows (pull; apply is a person's) */
        struct json_t *containers; /* the system's containers, for the waiting record (borrowed) */
} DeployTarget;

/* Builds the target, activates it, checks its health and rolls back when activation or health
 * fails. */
ExitCode deploy_revision(Run *run, const DeployTarget *t);

/* A revision that failed before its deployment began (its evaluation): recorded as build-failed
 * in the history, remembered like a failed build; EXIT_DEPLOY_FAILED. */
ExitCode deploy_failed(Run *run, const char *revision, const char *source, const char *error);

/* Finishes the job of an interrupted run (phase != idle), after waiting for an activation that
 * may still run: `building` changed nothing; after `activating`, the activation runs again to
 * its end (a second interruption in a row counts as a failure) and health decides; after
 * `checking`, health decides (an activation first when the generation no longer runs); an
 * interrupted rollback is done again. EXIT_OK when there was nothing to recover or the
 * recovery ended in a known state; EXIT_BUSY when another activation did not end in time;
 * EXIT_STOPPED. */
ExitCode deploy_recover(Run *run);

/* run_begin(), then deploy_recover(): a command that changes the system first finishes what
 * a killed run left. EXIT_OK to go on; otherwise the exit code to end the command with. */
ExitCode deploy_begin(Run *run, const Config *c, const char *command);

/* The exit code of a command that deploys, given the code of what it did: while the machine is
 * left on a generation that failed its checks (a rollback failed: State.unhealthy), 5 (but for
 * 2, 4 and a stop). */
ExitCode deploy_exit(Run *run, ExitCode code);

/* `confirm` (after a boot): a pending boot-activated deployment running now is checked and
 * confirmed, or rolled back (boot entry back to the known-good generation, and a reboot); one
 * that did not come up after a reboot is rolled back; one still waiting reboots within the
 * reboot window. */
ExitCode deploy_confirm(Run *run);

/* `rollback`: back to the last known-good generation by hand. */
ExitCode deploy_rollback_to_known_good(Run *run);
