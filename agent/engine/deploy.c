/* SPDX-License-Identifier: MIT */
/* The phases of a deployment after verification, each recorded in the state file before its
 * side effect, and the recovery of a run that was interrupted in any of them. */
#include <jansson.h>
#include <signal.h>
#include <string.h>

#include "system/activation.h"
#include "system/bootloader.h"
#include "engine/deploy-internal.h"
#include "engine/roots.h"
#include "system/event.h"
#include "basic/fileio.h"
#include "engine/gate.h"
#include "engine/plan.h"
#include "system/health.h"
#include "basic/log.h"
#include "system/nix.h"
#include "basic/stop.h"


/* A revision whose activation was interrupted this often in a row counts as failed: one that
 * kills the agent (or its unit) must not loop. */
#define ACTIVATIONS_MAX 2

ExitCode deploy_stopped(Run *run, const char *where) {
        const Deployment *p = run->state->pending;
        char msg[ERROR_MESSAGE_MAX];

        msgf(msg, "stopped by %s while %s", sigabbrev_np(stop_signal()) ?: "a signal", where);
        log_notice("Asked to stop (%s): stopping while %s; the next run finishes the job.",
                   sigabbrev_np(stop_signal()) ? strsignal(stop_signal()) : "a signal", where);
        return run_result(run, EXIT_STOPPED, RESULT_INTERRUPTED, p ? p->revision : NULL, msg);
}

HealthVerdict deploy_check_health(Run *run, bool record) {
        HealthReport report = {};
        HealthVerdict v;
        Error e = {};
        int r;

        const Deployment *p = run->state->pending;
        /* In a rollback, what runs and is checked is the rollback's target, not the generation
         * that failed. */
        bool rollback = run->state->phase == PHASE_ROLLING_BACK && p;
        const char *checked = rollback ? (run->state->good_generation ?: p->previous_generation) :
                              p        ? p->generation :
                                         NULL;
        const char *checked_revision = rollback ? run->state->good_revision : p ? p->revision : NULL;

        if (run->config->health.n_checks == 0 && !run->config->health.no_failed_units)
                return HEALTH_PASSED;
        run_phase(run, "check", "Checking the health of %s", strna(checked));
        r = health_run(run->config, NULL, &report, &e);
        if (r == -ECANCELED)
                return HEALTH_STOPPED;
        if (r < 0) {
                log_error("Cannot run the health checks: %s", error_message(&e) ?: strerror(-r));
                return HEALTH_FAILED;
        }
        v = report.healthy ? HEALTH_PASSED : HEALTH_FAILED;
        if (v == HEALTH_FAILED && p) {
                char failed[ERROR_MESSAGE_MAX] = "";
                size_t n = 0;

                for (size_t i = 0; i < report.n && n < sizeof(failed); i++)
                        if (!report.results[i].ok)
                                n += (size_t) snprintf(failed + n, sizeof(failed) - n, "%s%s: %s", n ? "; " : "",
                                                       report.results[i].name, strempty(report.results[i].detail));
                log_event(EVENT_UNHEALTHY, LOG_WARNING,
                          EVENT_FIELDS({ "REVISION", checked_revision }, { "GENERATION", checked },
                                       { "SOURCE", p->source }, { "ERROR", failed }),
                          "Generation %s%s is not healthy: %s", strna(checked),
                          rollback ? " (the rollback's target)" : "", failed);
        }
        if (record && run->state->pending) {
                json_decref(run->state->pending->health);
                run->state->pending->health = health_report_to_json(&report);
        }
        health_report_done(&report);
        return v;
}

/* The rollback could not be done: the machine runs what it runs, and that failed its checks or
 * is unknown. */
static ExitCode rollback_failed(Run *run, const char *msg) {
        log_error("%s. The system needs a person.", msg);
        return deploy_finish(run, RESULT_ROLLBACK_FAILED, msg, EXIT_ROLLBACK_FAILED);
}

ExitCode deploy_rollback(Run *run, const char *why, RunResult result) {
        const Config *c = run->config;
        Deployment *p = run->state->pending;
        const char *target = run->state->good_generation ?: p->previous_generation;
        bool after_boot = streq_ptr(p->action, "boot") && p->boot_id;
        char msg[ERROR_MESSAGE_MAX];
        Error e = {};
        int r;

        if (streq_ptr(p->source, "rollback"))
                log_info("Rolling back by hand to %s.", strna(target));
        else
                log_error("Deployment of %s failed: %s", p->revision, why);
        if (!target) {
                msgf(msg,
                     "%s; there is no known-good or previous generation to roll back to: the system is on %s as far as "
                     "the agent knows",
                     why, strna(p->generation));
                return rollback_failed(run, msg);
        }

        run->state->phase = PHASE_ROLLING_BACK;
        if (run_save_state(run) < 0)
                return EXIT_USAGE;

        run_phase(run, "rollback", "Rolling back to %s", target);
        log_warning("Rolling back to %s.", target);
        /* A boot-activated generation that failed after its boot: the known-good one becomes
         * the boot entry again, and the machine boots into it. */
        r = activation_run(c, target, after_boot ? ACTIVATE_BOOT : ACTIVATE_SWITCH, PROFILE_BACK, &e);
        if (r < 0 && (stop_requested() || r == -ECANCELED))
                return deploy_stopped(run, "rolling back");
        if (r < 0) {
                _cleanup_free_ char *now = NULL;

                (void) canonicalize_path(c->system.current_system, &now);
                msgf(msg, "%s; the rollback to %s failed too (%s): the system runs %s", why, target,
                     error_message(&e) ?: strerror(-r), strna(now));
                return rollback_failed(run, msg);
        }
        if (after_boot) {
                _cleanup_free_ char *now = NULL;

                if (p->trial_entry) {
                        BootLoader l = bootloader_kind(c);

                        /* The trial boot may not have happened yet: it must not happen. */
                        r = bootloader_cancel_once(c, l, profile_generation_number(c, target), &e);
                        if (r < 0) {
                                msgf(msg, "%s; %s is the boot default again, but the one-shot boot entry %s could not be "
                                     "removed (%s): the next boot may start the failed generation once",
                                     why, target, p->trial_entry, error_message(&e) ?: strerror(-r));
                                return rollback_failed(run, msg);
                        }
                }
                (void) canonicalize_path(c->system.current_system, &now);
                if (streq_ptr(now, target)) {
                        msgf(msg, "%s; %s, which runs, is the boot default", why, target);
                        return deploy_finish(run, result, msg, EXIT_DEPLOY_FAILED);
                }
                msgf(msg, "%s; rolled back to %s for the next boot", why, target);
                deploy_reboot(c, "back to the known-good generation");
                return deploy_finish(run, result, msg, EXIT_DEPLOY_FAILED);
        }
        switch (deploy_check_health(run, false)) {
        case HEALTH_STOPPED:
                return deploy_stopped(run, "checking the health after the rollback");
        case HEALTH_FAILED:
                msgf(msg, "%s; rolled back to %s, but that is not healthy either", why, target);
                return rollback_failed(run, msg);
        case HEALTH_PASSED:
                break;
        }

        msgf(msg, "%s; rolled back to %s", why, target);
        log_warning("Rolled back to %s; the system is healthy again.", target);
        return deploy_finish(run, result, msg, EXIT_DEPLOY_FAILED);
}

/* system.boot-default: after-health: a switch runs switch-to-configuration test, and only a
 * generation that passed its health checks becomes the boot default. */
static bool health_first(const Config *c, const Deployment *p) {
        return c->system.boot_default == BOOT_DEFAULT_AFTER_HEALTH && !streq_ptr(p->action, "boot");
}

/* Recorded before; a run that finds it interrupted does it again. */
ExitCode deploy_commit_boot_default(Run *run) {
        Deployment *p = run->state->pending;
        char msg[ERROR_MESSAGE_MAX];
        Error e = {};
        int r;

        run->state->phase = PHASE_COMMITTING;
        if (run_save_state(run) < 0)
                return EXIT_USAGE;
        run_phase(run, "commit", "Making %s the boot default", p->generation);
        log_info("Healthy: making %s the boot default.", p->generation);
        r = activation_run(run->config, p->generation, ACTIVATE_BOOT, PROFILE_NEW, &e);
        if (r < 0 && (stop_requested() || r == -ECANCELED))
                return deploy_stopped(run, "making the generation the boot default");
        if (r < 0) {
                /* It runs, but the machine would not boot it (a full /boot, a broken loader):
                 * not deployed. */
                msgf(msg, "the generation is healthy, but it could not be made the boot default: %s",
                     error_message(&e) ?: strerror(-r));
                return deploy_rollback(run, msg, RESULT_ROLLED_BACK);
        }
        return deploy_finish(run, RESULT_SUCCESS, NULL, EXIT_OK);
}

/* Activated (or found so by recovery): health decides. */
static ExitCode check_and_record(Run *run) {
        Deployment *p = run->state->pending;

        if (streq_ptr(p->action, "boot"))
                return deploy_pend_reboot(run);

        run->state->phase = PHASE_CHECKING;
        if (run_save_state(run) < 0)
                return EXIT_USAGE;
        switch (deploy_check_health(run, true)) {
        case HEALTH_STOPPED:
                return deploy_stopped(run, "checking the health");
        case HEALTH_FAILED:
                return deploy_rollback(run, "the health checks did not pass in time", RESULT_ROLLED_BACK);
        case HEALTH_PASSED:
                break;
        }
        if (health_first(run->config, p))
                return deploy_commit_boot_default(run);
        return deploy_finish(run, RESULT_SUCCESS, NULL, EXIT_OK);
}

/* Activates the pending generation (again, after an interruption): counted, recorded before it
 * starts, and never judged when a stop interrupted it. The caller made sure that no other
 * activation runs. */
static ExitCode activate_pending(Run *run) {
        const Config *c = run->config;
        Deployment *p = run->state->pending;
        const char *action = p->action;
        ActivationVerb verb = streq(action, "boot") ? ACTIVATE_BOOT : health_first(c, p) ? ACTIVATE_TEST : ACTIVATE_SWITCH;
        char msg[ERROR_MESSAGE_MAX];
        Error e = {};
        int r;

        p->activations++;
        run->state->phase = PHASE_ACTIVATING;
        if (run_save_state(run) < 0)
                return EXIT_USAGE;

        run_phase(run, "activate", "Activating %s (%s)", p->generation, activation_verb_to_string(verb));
        log_info("Activating %s (%s%s)%s.", p->generation, activation_verb_to_string(verb),
                 verb == ACTIVATE_TEST ? ": the boot default moves once it is healthy" : "",
                 p->activations > 1 ? ", again" : "");
        if (verb == ACTIVATE_BOOT)
                r = deploy_install_for_boot(run, &e);
        else
                r = activation_run(c, p->generation, verb, PROFILE_NEW, &e);
        /* An activation that a stop (or the service manager's SIGTERM to the whole unit)
         * interrupted says nothing about the revision: the next run activates it again. */
        if (r < 0 && (stop_requested() || r == -ECANCELED))
                return deploy_stopped(run, "activating");
        if (r < 0) {
                msgf(msg, "activation failed: %s", error_message(&e) ?: strerror(-r));
                return deploy_rollback(run, msg, RESULT_ROLLED_BACK);
        }
        log_event(EVENT_ACTIVATED, LOG_INFO,
                  EVENT_FIELDS({ "REVISION", p->revision }, { "GENERATION", p->generation }, { "SOURCE", p->source },
                               { "ACTION", action }),
                  "Activated revision %s as %s (%s).", p->revision, p->generation, action);
        if (stop_requested() && !streq(action, "boot")) {
                /* Activated: what is owed is the health checks, which the next run does. */
                run->state->phase = PHASE_CHECKING;
                if (run_save_state(run) < 0)
                        return EXIT_USAGE;
                return deploy_stopped(run, "activated, before the health checks");
        }
        return check_and_record(run);
}

/* Another activation may run (the detached one of a killed run, one started by hand): nothing
 * starts before it ended. EXIT_OK once idle; otherwise the run ends here, the state as it is. */
static ExitCode wait_for_activations(Run *run) {
        const Deployment *p = run->state->pending;
        Error e = {};
        int r;

        r = activation_wait_idle(run->config, &e);
        if (r == -ECANCELED)
                return deploy_stopped(run, "waiting for another activation");
        if (r < 0) {
                log_error("Cannot go on: %s; nothing was changed.", error_message(&e) ?: strerror(-r));
                return run_result(run, EXIT_BUSY, RESULT_ERROR, p ? p->revision : NULL, error_message(&e));
        }
        return EXIT_OK;
}

/* For the deployment being built (deploy_revision, after the build): the plan, recorded in it
 * and in the journal; then the change window (t->schedule) and the switch inhibitors (a
 * switch becomes a boot, or waits: system.on-switch-inhibited). EXIT_OK to activate; when the
 * revision waits, the pending deployment is dropped (nothing was changed) and run->waiting is
 * set. */
static ExitCode before_switch(Run *run, const DeployTarget *t) {
        const Config *c = run->config;
        Deployment *p = run->state->pending;
        _cleanup_free_ char *summary = NULL;
        json_t *plan = NULL;
        time_t next = 0;
        ExitCode code;

        run_phase(run, "plan", "Planning the switch to %s", t->toplevel);
        if (plan_make(c, t->toplevel, &plan) < 0 || !(summary = plan_summary(plan))) {
                json_decref(plan);
                return log_oom_exit();
        }
        log_event(EVENT_PLAN, LOG_INFO,
                  EVENT_FIELDS({ "REVISION", t->revision }, { "GENERATION", t->toplevel }, { "PLAN", summary }),
                  "Plan of revision %s: %s.", t->revision, summary);

        if (t->schedule && !gate_window_open(c, &next)) {
                state_abandon(run->state);
                code = gate_wait(run, t->revision, "window", next, t->toplevel, t->containers, plan,
                                 "outside every change window (schedule.windows); built, to be activated in the next");
                json_decref(plan);
                return code;
        }
        if (plan_switch_inhibited(plan) && streq(p->action, "switch")) {
                if (c->system.on_switch_inhibited == SWITCH_INHIBITED_WAIT) {
                        state_abandon(run->state);
                        code = gate_wait(run, t->revision, "switch-inhibited", 0, t->toplevel, t->containers, plan,
                                         "its switch inhibitors changed, and system.on-switch-inhibited is wait: it "
                                         "needs a boot (apply it by hand, or set on-switch-inhibited: boot)");
                        json_decref(plan);
                        return code;
                }
                log_warning("The switch inhibitors of revision %s changed (NixOS refuses to switch into it): installing "
                            "it for the next boot instead (system.on-switch-inhibited: boot).", t->revision);
                free(p->action);
                p->action = strdup("boot");
                if (!p->action) {
                        json_decref(plan);
                        return log_oom_exit();
                }
        }
        p->plan = plan;
        state_clear_waiting(run->state);
        return run_save_state(run) < 0 ? EXIT_USAGE : EXIT_OK;
}

ExitCode deploy_revision(Run *run, const DeployTarget *t) {
        const Config *c = run->config;
        _cleanup_free_ char *out_link = NULL, *before = NULL;
        Deployment *p;
        Error e = {};
        int r;

        out_link = path_join(c->state_dir, ROOT_PENDING);
        if (!out_link)
                return log_oom_exit();

        r = state_begin(run->state, PHASE_BUILDING, t->revision, c->repository.ref, t->source,
                        system_action_to_string(c->system.action));
        if (r < 0)
                return log_oom_exit();
        p = run->state->pending;
        p->signer = TAKE_PTR(run->signer);
        p->images = image_set_to_json(&run->images);
        p->bundle = TAKE_PTR(run->bundle);
        if (!p->images || run_save_state(run) < 0)
                return EXIT_USAGE;

        run_phase(run, "build", "Building revision %s", t->revision);
        if (t->drv_path) {
                log_info("Building revision %s for host '%s'.", t->revision, c->host);
                r = nix_build_system(c, t->drv_path, t->toplevel, out_link, streq(t->source, "bundle"), &e);
        } else {
                r = nix_store_has(c, t->toplevel, &e);
                if (r == 0)
                        r = error_set(&e, -ENOENT, "the store does not hold %s", t->toplevel);
                if (r > 0)
                        r = nix_add_root(c, out_link, t->toplevel, &e);
        }
        if (r == -ECANCELED || stop_requested())
                return deploy_finish(run, RESULT_INTERRUPTED, "stopped while building", EXIT_STOPPED);
        /* Nothing roots the derivation between the evaluation and the build: a garbage
         * collection meanwhile is the machine's doing, not the revision's. */
        if (r < 0 && t->drv_path && access(t->drv_path, F_OK) < 0 && errno == ENOENT) {
                log_error("The derivation %s was collected before it was built; the next run evaluates again.",
                          t->drv_path);
                return deploy_finish(run, RESULT_INTERRUPTED, "the derivation was garbage-collected before the build",
                                     EXIT_TRANSIENT);
        }
        if (r < 0) {
                log_error("Deployment of %s failed: %s", t->revision, error_message(&e) ?: strerror(-r));
                return deploy_finish(run, RESULT_BUILD_FAILED, error_message(&e) ?: strerror(-r), EXIT_DEPLOY_FAILED);
        }

        /* Nothing on the system has changed so far: wait for another activation here, so that
         * giving up leaves nothing to recover. */
        r = activation_wait_idle(c, &e);
        if (r == -ECANCELED)
                return deploy_finish(run, RESULT_INTERRUPTED, "stopped while waiting for another activation",
                                     EXIT_STOPPED);
        if (r < 0) {
                log_error("Cannot go on: %s; nothing was changed.", error_message(&e) ?: strerror(-r));
                return deploy_finish(run, RESULT_INTERRUPTED, error_message(&e) ?: strerror(-r), EXIT_BUSY);
        }

        /* Before anything changes: the plan (its dry-activate takes switch-to-configuration's
         * lock, so only once no other activation runs), the change window, the switch
         * inhibitors. */
        {
                ExitCode code = before_switch(run, t);

                if (code != EXIT_OK || run->waiting)
                        return code;
                p = run->state->pending;
        }

        /* What the profile points to now is where a failure goes back to when nothing is
         * known good yet. */
        (void) profile_generation(c, &before, NULL);
        p->generation = strdup(t->toplevel);
        p->previous_generation = TAKE_PTR(before);
        if (!p->generation)
                return log_oom_exit();
        return activate_pending(run);
}

ExitCode deploy_failed(Run *run, const char *revision, const char *source, const char *error) {
        const Config *c = run->config;

        if (state_begin(run->state, PHASE_BUILDING, revision, c->repository.ref, source,
                        system_action_to_string(c->system.action)) < 0)
                return log_oom_exit();
        run->state->pending->signer = TAKE_PTR(run->signer);
        run->state->pending->bundle = TAKE_PTR(run->bundle);
        return deploy_finish(run, RESULT_BUILD_FAILED, error, EXIT_DEPLOY_FAILED);
}

/* A run was interrupted during the activation (or the system no longer runs the generation
 * being checked): activated again to its end, then health decides. Twice interrupted in a row
 * counts as failed. */
static ExitCode resume_activation(Run *run) {
        Deployment *p = run->state->pending;
        ExitCode code;
        char msg[ERROR_MESSAGE_MAX];

        code = wait_for_activations(run);
        if (code != EXIT_OK)
                return code;
        if (p->activations >= ACTIVATIONS_MAX) {
                msgf(msg, "its activation was interrupted %u times in a row", p->activations);
                return deploy_rollback(run, msg, RESULT_ROLLED_BACK);
        }
        log_warning("The previous run was stopped while activating %s (revision %s); activating it again.",
                    p->generation, p->revision);
        return activate_pending(run);
}

ExitCode deploy_recover(Run *run) {
        const Config *c = run->config;
        Deployment *p = run->state->pending;
        _cleanup_free_ char *current = NULL;
        ExitCode code;

        switch (run->state->phase) {
        case PHASE_IDLE:
                return EXIT_OK;

        case PHASE_BUILDING:
                log_warning("The previous run was stopped while building %s; nothing had changed.", p->revision);
                return deploy_finish(run, RESULT_INTERRUPTED, "the agent was stopped while building", EXIT_OK);

        case PHASE_ACTIVATING:
                return resume_activation(run);

        case PHASE_CHECKING:
        case PHASE_COMMITTING: {
                bool checking = run->state->phase == PHASE_CHECKING;

                code = wait_for_activations(run);
                if (code != EXIT_OK)
                        return code;
                /* The health of what runs is the health of the generation only when it runs.
                 * Something switched meanwhile, or a power cut booted the default, which had not
                 * moved yet: activated again first. */
                (void) canonicalize_path(c->system.current_system, &current);
                if (!streq_ptr(current, p->generation)) {
                        log_warning("The previous run was stopped while %s %s, and the system now runs %s.",
                                    checking ? "checking" : "making the boot default", p->generation, strna(current));
                        return resume_activation(run);
                }
                log_warning("The previous run was stopped while %s %s; %s.",
                            checking ? "checking" : "making the boot default", p->generation,
                            checking ? "checking it again" : "doing it again");
                return checking ? check_and_record(run) : deploy_commit_boot_default(run);
        }

        case PHASE_PENDING_REBOOT:
                /* `rollback` cancels it (deploy_rollback_to_known_good), without a reboot first. */
                if (streq_ptr(run->command, "rollback"))
                        return EXIT_OK;
                return deploy_confirm(run);

        case PHASE_ROLLING_BACK:
                code = wait_for_activations(run);
                if (code != EXIT_OK)
                        return code;
                log_warning("The previous run was stopped while rolling back from %s; rolling back again.",
                            p->revision);
                return deploy_rollback(run, "the agent was stopped during a rollback", RESULT_ROLLED_BACK);

        default:
                return EXIT_USAGE;
        }
}

ExitCode deploy_rollback_to_known_good(Run *run) {
        State *s = run->state;
        ExitCode code;
        int r;

        if (s->phase == PHASE_PENDING_REBOOT) {
                /* A boot deployment that waits for its reboot, or for its confirmation: it is
                 * cancelled, and the known-good generation is the next boot's. */
                log_notice("Cancelling the deployment of %s, which waits for a reboot or its confirmation.",
                           s->pending->revision);
                code = deploy_rollback(run, "rollback requested by hand", RESULT_ROLLED_BACK);
                if (code == EXIT_DEPLOY_FAILED)
                        return run_result(run, EXIT_OK, RESULT_ROLLED_BACK, s->good_revision, NULL);
                return code;
        }
        if (!s->good_generation) {
                log_error("There is no known-good generation to roll back to.");
                return run_result(run, EXIT_USAGE, RESULT_ERROR, NULL, "no known-good generation");
        }
        r = state_begin(s, PHASE_ROLLING_BACK, s->good_revision, NULL, "rollback", "switch");
        if (r < 0)
                return log_oom_exit();
        s->pending->generation = strdup(s->good_generation);
        (void) profile_generation(run->config, &s->pending->previous_generation, NULL);
        if (!s->pending->generation || run_save_state(run) < 0)
                return EXIT_USAGE;
        code = deploy_rollback(run, "rollback requested by hand", RESULT_ROLLED_BACK);
        if (code == EXIT_DEPLOY_FAILED)
                return run_result(run, EXIT_OK, RESULT_ROLLED_BACK, s->good_revision, NULL);
        return code;
}

ExitCode deploy_begin(Run *run, const Config *c, const char *command) {
        ExitCode code;
        Error e = {};

        /* Before anything is changed: a deployment that could not be rolled back must not start. */
        *run = (Run) { .config = c, .command = command, .lock_fd = -EBADF };
        if (activation_check_tools(c, &e) < 0) {
                log_error("%s; nothing was done.", error_message(&e));
                return EXIT_USAGE;
        }
        code = run_begin(run, c, command);
        if (code != EXIT_OK)
                return code;
        /* A recovery that ended in a known state (even a rollback, failed or not: the state
         * records it) lets the command go on; one that could not decide ends the run. */
        code = deploy_recover(run);
        /* State files written by an agent that kept no roots get them now. */
        if (code != EXIT_STOPPED)
                roots_sync(run);
        return code == EXIT_USAGE || code == EXIT_BUSY || code == EXIT_STOPPED ? code : EXIT_OK;
}

ExitCode deploy_exit(Run *run, ExitCode code) {
        const Unhealthy *u = run->state ? run->state->unhealthy : NULL;

        if (!u || code == EXIT_USAGE || code == EXIT_BUSY || code == EXIT_STOPPED)
                return code;
        log_error("The system runs %s, which failed its checks (revision %s), and the rollback failed: %s. It needs a "
                  "person: a healthy deployment or a successful `atticd-agent rollback` ends this.",
                  strna(u->generation), u->revision, strna(u->error));
        return EXIT_ROLLBACK_FAILED;
}
