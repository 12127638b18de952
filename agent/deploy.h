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
 * and the recovery of a run that was interrupted in any of them. */

#include "run.h"

/* Builds flake (a flake reference without #host) at revision rev, activates it, checks its
 * health and rolls back when activation or health fails. */
ExitCode deploy_revision(Run *run, const char *flake, const char *rev, const char *source);

/* Finishes the job of an interrupted run (phase != idle): nothing to do for `building`;
 * after `activating` or `checking` the health decides between success and rollback; an
 * interrupted rollback is done again. EXIT_OK when there was nothing to recover or the
 * recovery ended in a known state. */
ExitCode deploy_recover(Run *run);

/* run_begin(), then deploy_recover(): a command that changes the system first finishes what
 * a killed run left. EXIT_OK to go on; otherwise the exit code to end the command with. */
ExitCode deploy_begin(Run *run, const Config *c, const char *command);

/* `confirm` (after a boot): a pending boot-activated deployment running now is checked and
 * confirmed, or rolled back (boot entry back to the known-good generation, and a reboot); one
 * that did not come up after a reboot is rolled back; one still waiting reboots within the
 * reboot window. */
ExitCode deploy_confirm(Run *run);

/* `rollback`: back to the last known-good generation by hand. */
ExitCode deploy_rollback_to_known_good(Run *run);
