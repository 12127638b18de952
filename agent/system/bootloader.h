/* SPDX-License-Identifier: MIT */
#pragma once

/* The boot loader, for a trial boot (system.action boot): a new generation is booted once
 * through the loader's one-shot entry (systemd-boot's LoaderEntryOneShot through `bootctl
 * set-oneshot`, GRUB's next_entry through `grub-reboot`), while the default entry stays the
 * known-good generation. Whoever resets the machine next (a watchdog, a person) boots the
 * known-good generation again, with no agent code running. */

#include <stdbool.h>

#include "config/config.h"
#include "basic/error.h"

/* system.boot-loader, with auto resolved: systemd-boot when it booted the machine (its
 * LoaderInfo EFI variable exists), GRUB when <boot-directory>/grub/grub.cfg exists, else other. */
BootLoader bootloader_kind(const Config *c);

/* Whether the loader has a one-shot entry (systemd-boot, GRUB). */
bool bootloader_can_boot_once(BootLoader l);

/* Makes the entry of profile generation N the next boot's, for that boot only. *ret_entry gets
 * the entry's id (what status shows). -ENOENT: the loader has no entry for it. */
int bootloader_boot_once(const Config *c, BootLoader l, unsigned generation, char **ret_entry, Error *reterr);

/* Undoes bootloader_boot_once(): the next boot starts the default entry. For GRUB (whose
 * grub-reboot cannot unset) the one-shot names default_generation's entry. */
int bootloader_cancel_once(const Config *c, BootLoader l, unsigned default_generation, Error *reterr);
