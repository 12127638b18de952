/* SPDX-License-Identifier: MIT */
#pragma once

/* Activation: a built generation becomes the running system (switch) or the next boot's
 * (boot), without any evaluation. How, by system.activation:
 *
 *   direct         what nixos-rebuild does inside: the system profile (nix.c), then
 *                  GENERATION/bin/switch-to-configuration ACTION. When systemd manages the
 *                  machine, switch-to-configuration runs in a transient unit
 *                  (`systemd-run --unit=atticd-agent-switch-to-configuration --wait`), as
 *                  nixos-rebuild-ng does: the agent's death, or a stop or restart of the agent's
 *                  own unit (nixpkgs #258571), cannot cut an activation in half, and the services
 *                  it starts never live in the agent's cgroup.
 *   nixos-rebuild  `REBUILD-COMMAND ACTION --store-path GENERATION --no-reexec`, for a
 *                  nixos-rebuild-ng that has --store-path (nixpkgs PR #482430).
 *
 * Never two at once: switch-to-configuration holds system.activation-lock while it runs and
 * gives up at once when another one holds it, so the agent waits until no activation runs (its
 * own from an earlier, killed run; one that nixos-rebuild-ng left running in a transient unit;
 * one started by hand) before it activates, checks health or rolls back. */

#include "config/config.h"
#include "basic/error.h"

/* What switch-to-configuration (and nixos-rebuild) is asked to do. */
typedef enum ActivationVerb {
        ACTIVATE_SWITCH, /* the running system and the boot default */
        ACTIVATE_BOOT,   /* the boot default only */
        ACTIVATE_TEST,   /* the running system only: the boot default does not move */
} ActivationVerb;

const char *activation_verb_to_string(ActivationVerb v);

typedef enum ProfileUpdate {
        PROFILE_NEW,  /* a new profile generation, as nixos-rebuild makes (a deployment) */
        PROFILE_BACK, /* back to the generation number that holds it (a rollback) */
} ProfileUpdate;

/* Waits, at most system.activation-timeout, until no activation runs: the lock is free and,
 * with systemd, no nixos-rebuild-switch-to-configuration* or atticd-agent-switch-to-configuration*
 * unit is active. 0 once idle; -ETIMEDOUT; -ECANCELED when a stop was requested meanwhile. */
int activation_wait_idle(const Config *c, Error *reterr);

/* Activates generation: for switch and boot the profile first (p), then switch-to-configuration
 * VERB (test never touches the profile); for switch and test, current-system must then point at
 * it (-EPROTO otherwise). Waits for another activation first. A stop request does not
 * interrupt it; system.activation-timeout does (-ETIMEDOUT). */
int activation_run(const Config *c, const char *generation, ActivationVerb verb, ProfileUpdate p, Error *reterr);

/* Whether every program that a deployment and its rollback run can be run: system.nix-command
 * (build, profile, rollback), the rebuild-command with activation nixos-rebuild, and the
 * reboot-command with action boot; each an executable file, by its path or on $PATH. -ENOENT
 * or -EACCES with the key and the program in reterr. */
int activation_check_tools(const Config *c, Error *reterr);
