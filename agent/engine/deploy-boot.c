/* SPDX-License-Identifier: MIT */
/* Boot activation (system.action: boot): the new generation is installed for the next boot,
 * the machine reboots inside system.reboot-window, and `confirm` after the boot checks it and
 * confirms it or rolls it back. */
#include "system/activation.h"
#include "system/bootloader.h"
#include "engine/deploy-internal.h"
#include "basic/fileio.h"
#include "basic/log.h"
#include "system/nix.h"
#include "system/process.h"

static int read_boot_id(const Config *c, char **ret) {
        _cleanup_free_ char *id = NULL;
        int r = read_full_file(c->system.boot_id_file, 64, &id, NULL);

        if (r < 0)
                return r;
        id[strcspn(id, "\n")] = 0;
        *ret = TAKE_PTR(id);
        return 0;
}

/* Whether now (local time) is inside system.reboot-window "HH:MM-HH:MM" (which may wrap past
 * midnight); no window: always. */
static bool in_reboot_window(const Config *c) {
        unsigned h1, m1, h2, m2, start, end, now;
        time_t t = time(NULL);
        struct tm tm;

        if (!c->system.reboot_window)
                return true;
        if (sscanf(c->system.reboot_window, "%u:%u-%u:%u", &h1, &m1, &h2, &m2) != 4 || !localtime_r(&t, &tm))
                return false;
        start = h1 * 60 + m1;
        end = h2 * 60 + m2;
        now = (unsigned) (tm.tm_hour * 60 + tm.tm_min);
        return start <= end ? now >= start && now < end : now >= start || now < end;
}

void deploy_reboot(const Config *c, const char *why) {
        Error e = {};
        int r;

        log_notice("Rebooting (%s): %s", why, c->system.reboot_command[0]);
        r = process_run(c->system.reboot_command, &(ProcessOptions) { .name = "reboot", .timeout = 120 * USEC_PER_SEC },
                        NULL, &e);
        if (r < 0)
                log_error("The reboot command failed: %s", error_message(&e) ?: strerror(-r));
}

int deploy_install_for_boot(Run *run, Error *e) {
        const Config *c = run->config;
        Deployment *p = run->state->pending;
        const char *known_good = run->state->good_generation ?: p->previous_generation;
        BootLoader l = bootloader_kind(c);
        _cleanup_free_ char *entry = NULL;
        unsigned n, good_n;
        int r;

        free(p->trial_entry);
        p->trial_entry = NULL;
        if (!c->system.trial_boot || !bootloader_can_boot_once(l) || !known_good || streq(known_good, p->generation)) {
                if (c->system.trial_boot && !bootloader_can_boot_once(l))
                        log_notice("The boot loader (%s) has no one-shot entry: %s becomes the boot default now, before "
                                   "it has booted once.",
                                   boot_loader_to_string(l), p->generation);
                return activation_run(c, p->generation, ACTIVATE_BOOT, PROFILE_NEW, e);
        }

        /* A profile generation of its own, so that the boot loader writes its entry; then the
         * profile goes back to the known-good generation, which stays the default entry. A power
         * cut anywhere in between boots the known-good generation: the loader's default moves
         * only through switch-to-configuration boot, which runs for the known-good one. */
        log_info("Installing %s for one trial boot; the boot default stays %s.", p->generation, known_good);
        r = profile_set(c, p->generation, e);
        if (r < 0)
                return r;
        n = profile_generation_number(c, p->generation);
        if (n == 0)
                return error_set(e, -ENOENT, "no generation of the profile %s holds %s", c->system.profile,
                                 p->generation);
        r = activation_run(c, known_good, ACTIVATE_BOOT, PROFILE_BACK, e);
        if (r < 0)
                return r;
        good_n = profile_generation_number(c, known_good);
        r = bootloader_boot_once(c, l, n, &entry, e);
        if (r < 0) {
                Error e2 = {};

                /* Whatever the tool left behind: the next boot starts the default. */
                if (bootloader_cancel_once(c, l, good_n, &e2) < 0)
                        log_warning("Cannot remove the one-shot boot entry: %s", strna(error_message(&e2)));
                return r;
        }
        p->trial_entry = TAKE_PTR(entry);
        return 0;
}

/* action boot: the new generation is the next boot's; `confirm` after that boot decides. */
ExitCode deploy_pend_reboot(Run *run) {
        Deployment *p = run->state->pending;

        (void) read_boot_id(run->config, &p->boot_id);
        run->state->phase = PHASE_PENDING_REBOOT;
        if (run_save_state(run) < 0)
                return EXIT_USAGE;
        if (p->trial_entry)
                log_info("Revision %s (%s) boots once at the next boot (%s); `confirm` after that boot decides, and "
                         "only a healthy generation becomes the boot default.",
                         p->revision, p->generation, p->trial_entry);
        else
                log_info("Revision %s is installed for the next boot as %s; `confirm` after the reboot decides.",
                         p->revision, p->generation);
        if (in_reboot_window(run->config))
                deploy_reboot(run->config, "a new generation is installed for the next boot");
        else
                log_info("Outside the reboot window %s: rebooting later.", run->config->system.reboot_window);
        return run_result(run, EXIT_OK, RESULT_PENDING_REBOOT, p->revision, NULL);
}

ExitCode deploy_confirm(Run *run) {
        const Config *c = run->config;
        Deployment *p = run->state->pending;
        _cleanup_free_ char *current = NULL, *boot = NULL;

        if (run->state->phase != PHASE_PENDING_REBOOT) {
                log_info("No boot-activated deployment is waiting for confirmation.");
                return EXIT_OK;
        }
        (void) canonicalize_path(c->system.current_system, &current);
        (void) read_boot_id(c, &boot);

        if (streq_ptr(current, p->generation)) {
                log_info("Booted into %s (revision %s): checking its health.", p->generation, p->revision);
                switch (deploy_check_health(run, true)) {
                case HEALTH_STOPPED:
                        return deploy_stopped(run, "checking the health after the reboot");
                case HEALTH_FAILED:
                        return deploy_rollback(run, "the health checks did not pass after the reboot", RESULT_ROLLED_BACK);
                case HEALTH_PASSED:
                        break;
                }
                if (p->trial_entry)
                        return deploy_commit_boot_default(run);
                log_info("Confirmed revision %s (%s).", p->revision, p->generation);
                return deploy_finish(run, RESULT_SUCCESS, NULL, EXIT_OK);
        }
        if (p->boot_id && boot && !streq(p->boot_id, boot))
                /* Rebooted, but not into the new generation: it did not come up. Never
                 * confirmed, so rolled back. */
                return deploy_rollback(run, "the machine rebooted, but not into the new generation", RESULT_ROLLED_BACK);

        log_info("Revision %s waits for a reboot into %s (running: %s).", p->revision, p->generation, strna(current));
        if (in_reboot_window(c))
                deploy_reboot(c, "a new generation is installed for the next boot");
        return run_result(run, EXIT_OK, RESULT_PENDING_REBOOT, p->revision, NULL);
}

