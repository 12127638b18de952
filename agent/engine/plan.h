/* SPDX-License-Identifier: MIT */
#pragma once

/* The plan of a switch: what activating a built system instead of the running one changes,
 * recorded before the activation (history entry, journal, status --json) and printed by
 * `atticd-agent plan`:
 *
 *   {"from": running system, "to": new system,
 *    "packages": ["name: 1.0 → 1.1, +12.3 KiB", ...]      nix store diff-closures
 *    "units": {"stop": [...], "restart": [...], "start": [...], "reload": [...]}
 *                                                         switch-to-configuration dry-activate
 *    "reboot-required": bool, "reboot-reasons": ["kernel", "initrd", "switch-inhibitors"],
 *    "inhibitors": ["what changed", ...],                  system.switch.inhibitors
 *    "errors": ["what could not be found out", ...]}
 *
 * The texts come from nix and from the new system: they are escaped wherever they are shown.
 * Decisions use files and links only (kernel, initrd, switch-inhibitors), never the texts. */

#include <stdbool.h>

#include "config/config.h"

struct json_t;

/* Never fails but for memory: what cannot be found out is listed under "errors". */
int plan_make(const Config *c, const char *toplevel, struct json_t **ret);

/* Whether the new system's switch inhibitors differ from the running one's: NixOS refuses to
 * switch into it. */
bool plan_switch_inhibited(struct json_t *plan);

/* A one-line summary ("2 package change(s); restart web.service; reboot required: kernel"). */
char *plan_summary(struct json_t *plan);

/* The plan for a person, on stdout. */
void plan_print(struct json_t *plan);
