/* SPDX-License-Identifier: MIT */
#pragma once

/* What the files of the deployment share: deploy.c (the phases), deploy-boot.c (boot
 * activation, the reboot and `confirm`), deploy-finish.c (the end of a deployment). */

#include "engine/deploy.h"
#include "basic/error.h"

typedef enum HealthVerdict {
        HEALTH_PASSED,
        HEALTH_FAILED,
        HEALTH_STOPPED, /* a stop was requested before a verdict */
} HealthVerdict;

/* A message that does not fit is cut: the start says the most. */
void msgf(char msg[static ERROR_MESSAGE_MAX], const char *fmt, ...) _printf_(2, 3);

/* Ends the pending deployment with result: the state file (history, deployed, known good,
 * failed revision, unhealthy), the event, the hooks, last-run.json; returns code. */
ExitCode deploy_finish(Run *run, RunResult result, const char *error, ExitCode code);


/* A stop was requested: the state stays as it is (the next run finishes the job), the run is
 * recorded as interrupted; EXIT_STOPPED. */
ExitCode deploy_stopped(Run *run, const char *where);

/* The health checks (settle, rounds, timeout) of the running system; passed when none are
 * configured. record: the last round's results go to the pending deployment. */
HealthVerdict deploy_check_health(Run *run, bool record);

/* Back to the known-good generation (or, with none yet, to what the profile pointed to before
 * this deployment), activated, and healthy again; result is the pending deployment's result
 * when that works (EXIT_DEPLOY_FAILED), else rollback-failed (EXIT_ROLLBACK_FAILED). */
ExitCode deploy_rollback(Run *run, const char *why, RunResult result);

/* action boot: installs the pending generation for the next boot. With a loader that has a
 * one-shot entry (and system.trial-boot), for that boot only: the default entry stays the
 * known-good generation, and Deployment.trial_entry names the one-shot entry. Else it becomes
 * the boot default. */
int deploy_install_for_boot(Run *run, Error *reterr);

/* Healthy and running: the pending generation becomes the boot default (phase committing: the
 * profile, then switch-to-configuration boot), and the deployment succeeds. */
ExitCode deploy_commit_boot_default(Run *run);

/* Activated for the next boot: phase pending-reboot, and a reboot inside the window. */
ExitCode deploy_pend_reboot(Run *run);

/* Runs system.reboot-command; a failure is logged. */
void deploy_reboot(const Config *c, const char *why);
