/* SPDX-License-Identifier: MIT */
#pragma once

/* Garbage-collector roots below state-dir (indirect roots of nix): the known-good generation,
 * and the generation of the deployment in flight, so that no garbage collection can take what
 * a rollback needs, or what waits for its reboot. */

#include "engine/run.h"

#define ROOT_KNOWN_GOOD "gcroots/known-good"
#define ROOT_PENDING "gcroots/pending"
#define ROOT_WAITING "gcroots/waiting" /* a revision built ahead of its change window */
#define ROOT_PLAN "gcroots/plan"       /* what `plan` built, until a deployment ends */

/* The roots follow the state: known-good -> State.good_generation, waiting -> the waiting
 * record's system, pending -> the pending deployment's generation; a root of anything else is
 * dropped. Failures are logged. */
void roots_sync(Run *run);
