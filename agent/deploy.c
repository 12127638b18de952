/* SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <stdarg.h>

#include "deploy.h"
#include "event.h"
#include "fileio.h"
#include "health.h"
#include "log.h"
#include "process.h"
#include "rebuild.h"

#define BUILD_DIR "build"

/* A message that does not fit is cut: the start says the most. */
static void msgf(char msg[static ERROR_MESSAGE_MAX], const char *fmt, ...) _printf_(2, 3);
static void msgf(char msg[static ERROR_MESSAGE_MAX], const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, ERROR_MESSAGE_MAX, fmt, ap);
        va_end(ap);
}

/* Runs the health checks (settle, rounds, timeout); true when healthy or when no checks are
 * configured. The last round's results go to the pending deployment. */
static bool check_health(Run *run, bool record) {
        HealthReport report = {};
        Error e = {};
        bool healthy;
        int r;

        if (run->config->health.n_checks == 0 && !run->config->health.no_failed_units)
                return true;
        run_phase(run, "check", "Checking the health of %s", strna(run->state->pending ? run->state->pending->generation : NULL));
        r = health_run(run->config, NULL, &report, &e);
        if (r < 0) {
                log_error("Cannot run the health checks: %s", error_message(&e) ?: strerror(-r));
                return false;
        }
        healthy = report.healthy;
        if (!healthy && run->state->pending) {
                const Deployment *p = run->state->pending;
                char failed[ERROR_MESSAGE_MAX] = "";
                size_t n = 0;

                for (size_t i = 0; i < report.n && n < sizeof(failed); i++)
                        if (!report.results[i].ok)
                                n += (size_t) snprintf(failed + n, sizeof(failed) - n, "%s%s: %s", n ? "; " : "",
                                                       report.results[i].name, strempty(report.results[i].detail));
                log_event(EVENT_UNHEALTHY, LOG_WARNING,
                          EVENT_FIELDS({ "REVISION", p->revision }, { "GENERATION", p->generation },
                                       { "SOURCE", p->source }, { "ERROR", failed }),
                          "Generation %s is not healthy: %s", strna(p->generation), failed);
        }
        if (record && run->state->pending) {
                json_decref(run->state->pending->health);
                run->state->pending->health = health_report_to_json(&report);
        }
        health_report_done(&report);
        return healthy;
}

static int read_boot_id(char **ret) {
        _cleanup_free_ char *id = NULL;
        int r = read_full_file("/proc/sys/kernel/random/boot_id", 64, &id, NULL);

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

static void reboot_now(const Config *c, const char *why) {
        Error e = {};
        int r;

        log_notice("Rebooting (%s): %s", why, c->system.reboot_command[0]);
        r = process_run(c->system.reboot_command, &(ProcessOptions) { .name = "reboot", .timeout = 120 * USEC_PER_SEC },
                        NULL, &e);
        if (r < 0)
                log_error("The reboot command failed: %s", error_message(&e) ?: strerror(-r));
}

/* hooks.on-success / hooks.on-failure, with what happened in their environment. A hook
 * that fails is reported and changes nothing. */
static void run_hook(const Config *c, const Deployment *d, RunResult result, const char *error) {
        char **argv = result == RESULT_SUCCESS ? c->hooks.on_success : c->hooks.on_failure;
        _cleanup_strv_free_ char **env = NULL;
        char *extra[6] = {};
        Error e = {};
        size_t n = strv_length(environ), k = 0;
        int r;

        if (strv_length(argv) == 0)
                return;
        if (asprintf(&extra[k++], "ATTICD_REVISION=%s", strempty(d->revision)) < 0 ||
            asprintf(&extra[k++], "ATTICD_GENERATION=%s", strempty(d->generation)) < 0 ||
            asprintf(&extra[k++], "ATTICD_RESULT=%s", run_result_to_string(result)) < 0 ||
            asprintf(&extra[k++], "ATTICD_ERROR=%s", strempty(error)) < 0 ||
            asprintf(&extra[k++], "ATTICD_SOURCE=%s", strempty(d->source)) < 0) {
                log_oom_exit();
                for (size_t i = 0; i < k; i++)
                        free(extra[i]);
                return;
        }
        env = calloc(n + k + 1, sizeof(char *));
        if (!env) {
                for (size_t i = 0; i < k; i++)
                        free(extra[i]);
                return;
        }
        for (size_t i = 0; i < k; i++)
                env[i] = extra[i];
        for (size_t i = 0, j = k; i < n; i++)
                if (strncmp(environ[i], "ATTICD_", 7) != 0)
                        env[j++] = strdup(environ[i]);
        r = process_run(argv, &(ProcessOptions) { .name = "hook", .env = env, .timeout = 60 * USEC_PER_SEC }, NULL, &e);
        if (r < 0)
                log_warning("The %s hook failed: %s", result == RESULT_SUCCESS ? "on-success" : "on-failure",
                            error_message(&e) ?: strerror(-r));
}

/* The event that closes a deployment: healthy (and bundle-applied), build-failed,
 * rolled-back or rollback-failed. */
static void emit_outcome(const Deployment *d, RunResult result, const char *error) {
        json_t *b = d->bundle;
        char seq[32] = "";
        const char *bundle_id = json_string_value(json_object_get(b, "id"));

        if (json_is_integer(json_object_get(b, "sequence")))
                (void) snprintf(seq, sizeof(seq), "%lld", (long long) json_integer_value(json_object_get(b, "sequence")));
#define FIELDS_OF(d, err)                                                                                           \
        EVENT_FIELDS({ "REVISION", (d)->revision }, { "GENERATION", (d)->generation }, { "SOURCE", (d)->source },   \
                     { "BUNDLE_ID", bundle_id }, { "BUNDLE_SEQUENCE", seq[0] ? seq : NULL }, { "ERROR", (err) })
        switch (result) {
        case RESULT_SUCCESS:
                log_event(EVENT_HEALTHY, LOG_INFO, FIELDS_OF(d, NULL), "Revision %s is deployed and healthy as %s.",
                          d->revision, strna(d->generation));
                if (streq_ptr(d->source, "bundle"))
                        log_event(EVENT_BUNDLE_APPLIED, LOG_INFO, FIELDS_OF(d, NULL),
                                  "Bundle %s (sequence %s) applied: revision %s.", strna(bundle_id), seq, d->revision);
                break;
        case RESULT_BUILD_FAILED:
                log_event(EVENT_BUILD_FAILED, LOG_ERR, FIELDS_OF(d, error), "Revision %s did not build: %s", d->revision,
                          strna(error));
                break;
        case RESULT_ROLLED_BACK:
        case RESULT_INTERRUPTED:
                if (!d->generation && result == RESULT_INTERRUPTED)
                        break;
                log_event(EVENT_ROLLED_BACK, LOG_WARNING, FIELDS_OF(d, error), "Revision %s was rolled back: %s",
                          d->revision, strna(error));
                break;
        case RESULT_ROLLBACK_FAILED:
                log_event(EVENT_ROLLBACK_FAILED, LOG_CRIT, FIELDS_OF(d, error),
                          "Revision %s failed and so did the rollback: %s", d->revision, strna(error));
                break;
        default:
                break;
        }
#undef FIELDS_OF
}

static ExitCode finish(Run *run, RunResult result, const char *error, ExitCode code) {
        const Deployment *p = run->state->pending;
        _cleanup_free_ char *rev = p ? strdup(p->revision) : NULL;
        Deployment copy = {};
        int r;

        if (p && deployment_copy(p, &copy) < 0)
                return log_oom_exit();
        if (p)
                emit_outcome(&copy, result, error);
        r = state_finish(run->state, result, error);
        if (r < 0 || run_save_state(run) < 0) {
                deployment_done(&copy);
                return EXIT_USAGE;
        }
        if (result == RESULT_SUCCESS || result == RESULT_BUILD_FAILED || result == RESULT_ROLLED_BACK ||
            result == RESULT_ROLLBACK_FAILED)
                run_hook(run->config, &copy, result, error);
        deployment_done(&copy);
        return run_result(run, code, result, rev, error);
}

/* Back to the known-good generation (or, with none yet, to what the profile pointed to before
 * this deployment), activated, and healthy again. */
static ExitCode rollback(Run *run, const char *why, RunResult result) {
        const Config *c = run->config;
        Deployment *p = run->state->pending;
        const char *target = run->state->good_generation ?: p->previous_generation;
        char msg[ERROR_MESSAGE_MAX];
        Error e = {};
        int r;

        if (streq_ptr(p->source, "rollback"))
                log_info("Rolling back by hand from %s.", strna(p->previous_generation));
        else
                log_error("Deployment of %s failed: %s", p->revision, why);
        if (!target) {
                msgf(msg,
                                "%s; there is no known-good or previous generation to roll back to: the system is on "
                                "%s as far as the agent knows",
                                why, strna(p->generation));
                log_error("%s. The system needs a person.", msg);
                return finish(run, RESULT_ROLLBACK_FAILED, msg, EXIT_ROLLBACK_FAILED);
        }

        run->state->phase = PHASE_ROLLING_BACK;
        if (run_save_state(run) < 0)
                return EXIT_USAGE;

        run_phase(run, "rollback", "Rolling back to %s", target);
        log_warning("Rolling back to %s.", target);
        r = profile_switch_to(c, target, &e);
        if (r >= 0 && run->state->phase == PHASE_ROLLING_BACK && streq_ptr(p->action, "boot") && p->boot_id) {
                /* A boot-activated generation that failed after its boot: the known-good one
                 * becomes the boot entry again, and the machine boots into it. */
                r = generation_activate(c, target, SYSTEM_ACTION_BOOT, &e);
                if (r >= 0) {
                        msgf(msg, "%s; rolled back to %s for the next boot", why, target);
                        reboot_now(c, "back to the known-good generation");
                        return finish(run, result, msg, EXIT_DEPLOY_FAILED);
                }
        } else if (r >= 0)
                r = generation_activate(c, target, SYSTEM_ACTION_SWITCH, &e);
        if (r < 0) {
                _cleanup_free_ char *now = NULL;

                (void) profile_generation(c, &now, NULL);
                msgf(msg, "%s; the rollback to %s failed too (%s): the profile points to %s",
                                why, target, error_message(&e) ?: strerror(-r), strna(now));
                log_error("%s. The system needs a person.", msg);
                return finish(run, RESULT_ROLLBACK_FAILED, msg, EXIT_ROLLBACK_FAILED);
        }
        if (!check_health(run, false)) {
                msgf(msg, "%s; rolled back to %s, but that is not healthy either", why, target);
                log_error("%s. The system needs a person.", msg);
                return finish(run, RESULT_ROLLBACK_FAILED, msg, EXIT_ROLLBACK_FAILED);
        }

        msgf(msg, "%s; rolled back to %s", why, target);
        log_warning("Rolled back to %s; the system is healthy again.", target);
        return finish(run, result, msg, EXIT_DEPLOY_FAILED);
}

/* action boot: the new generation is the next boot's; `confirm` after that boot decides. */
static ExitCode pend_reboot(Run *run) {
        Deployment *p = run->state->pending;

        (void) read_boot_id(&p->boot_id);
        run->state->phase = PHASE_PENDING_REBOOT;
        if (run_save_state(run) < 0)
                return EXIT_USAGE;
        log_info("Revision %s is installed for the next boot as %s; `confirm` after the reboot decides.", p->revision,
                 p->generation);
        if (in_reboot_window(run->config))
                reboot_now(run->config, "a new generation is installed for the next boot");
        else
                log_info("Outside the reboot window %s: rebooting later.", run->config->system.reboot_window);
        return run_result(run, EXIT_OK, RESULT_PENDING_REBOOT, p->revision, NULL);
}

/* Activated (or about to be found so by recovery): health decides. */
static ExitCode check_and_record(Run *run) {
        const Config *c = run->config;
        Deployment *p = run->state->pending;

        if (streq_ptr(p->action, "boot"))
                return pend_reboot(run);

        if (c->health.n_checks > 0 || c->health.no_failed_units) {
                run->state->phase = PHASE_CHECKING;
                if (run_save_state(run) < 0)
                        return EXIT_USAGE;
                if (!check_health(run, true))
                        return rollback(run, "the health checks did not pass in time", RESULT_ROLLED_BACK);
        }

        return finish(run, RESULT_SUCCESS, NULL, EXIT_OK);
}

ExitCode deploy_revision(Run *run, const char *flake, const char *rev, const char *source) {
        const Config *c = run->config;
        _cleanup_free_ char *workdir = NULL, *toplevel = NULL, *now = NULL, *before = NULL;
        char msg[ERROR_MESSAGE_MAX];
        Deployment *p;
        Error e = {};
        int r;

        workdir = path_join(c->state_dir, BUILD_DIR);
        if (!workdir)
                return log_oom_exit();

        r = state_begin(run->state, PHASE_BUILDING, rev, c->repository.ref, source,
                        system_action_to_string(c->system.action));
        if (r < 0)
                return log_oom_exit();
        p = run->state->pending;
        p->signer = TAKE_PTR(run->signer);
        p->images = image_set_to_json(&run->images);
        p->bundle = TAKE_PTR(run->bundle);
        if (!p->images || run_save_state(run) < 0)
                return EXIT_USAGE;

        run_phase(run, "build", "Building revision %s", rev);
        log_info("Building revision %s for host '%s'.", rev, c->host);
        r = rebuild_build(c, flake, workdir, streq_ptr(source, "bundle"), &toplevel, &e);
        if (r < 0) {
                log_error("Deployment of %s failed: %s", rev, error_message(&e) ?: strerror(-r));
                return finish(run, RESULT_BUILD_FAILED, error_message(&e) ?: strerror(-r), EXIT_DEPLOY_FAILED);
        }

        /* What the profile points to now is where a failure goes back to when nothing is
         * known good yet. */
        (void) profile_generation(c, &before, NULL);
        p->generation = strdup(toplevel);
        p->previous_generation = TAKE_PTR(before);
        if (!p->generation)
                return log_oom_exit();
        run->state->phase = PHASE_ACTIVATING;
        if (run_save_state(run) < 0)
                return EXIT_USAGE;

        run_phase(run, "activate", "Activating %s (%s)", toplevel, system_action_to_string(c->system.action));
        log_info("Activating %s (%s).", toplevel, system_action_to_string(c->system.action));
        r = rebuild_activate(c, flake, workdir, c->system.action, streq_ptr(source, "bundle"), &e);
        if (r < 0) {
                msgf(msg, "activation failed: %s", error_message(&e) ?: strerror(-r));
                return rollback(run, msg, RESULT_ROLLED_BACK);
        }

        /* nixos-rebuild evaluated the flake a second time: what it installed must be what was
         * built. */
        r = profile_generation(c, &now, &e);
        if (r < 0 || !streq(now, toplevel)) {
                msgf(msg, "the profile '%s' points to '%s', not to the built '%s'",
                                c->system.profile, strna(now), toplevel);
                return rollback(run, msg, RESULT_ROLLED_BACK);
        }
        log_event(EVENT_ACTIVATED, LOG_INFO,
                  EVENT_FIELDS({ "REVISION", rev }, { "GENERATION", toplevel }, { "SOURCE", source },
                               { "ACTION", system_action_to_string(c->system.action) }),
                  "Activated revision %s as %s (%s).", rev, toplevel, system_action_to_string(c->system.action));

        return check_and_record(run);
}

ExitCode deploy_recover(Run *run) {
        Deployment *p = run->state->pending;
        _cleanup_free_ char *now = NULL;

        switch (run->state->phase) {
        case PHASE_IDLE:
                return EXIT_OK;

        case PHASE_BUILDING:
                log_warning("The previous run was stopped while building %s; nothing had changed.", p->revision);
                return finish(run, RESULT_INTERRUPTED, "the agent was stopped while building", EXIT_OK);

        case PHASE_ACTIVATING:
        case PHASE_CHECKING:
                log_warning("The previous run was stopped while %s %s; finishing its job.",
                            phase_to_string(run->state->phase), p->revision);
                (void) profile_generation(run->config, &now, NULL);
                /* The activation did not get as far as the profile: not the revision's fault.
                 * Make sure the system is on the known-good generation, and let the next
                 * attempt try the revision again. */
                if (!streq_ptr(now, p->generation))
                        return rollback(run, "the agent was stopped during the activation", RESULT_INTERRUPTED);
                return check_and_record(run);

        case PHASE_PENDING_REBOOT:
                return deploy_confirm(run);

        case PHASE_ROLLING_BACK:
                log_warning("The previous run was stopped while rolling back from %s; rolling back again.",
                            p->revision);
                return rollback(run, "the agent was stopped during a rollback", RESULT_ROLLED_BACK);

        default:
                return EXIT_USAGE;
        }
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
        (void) read_boot_id(&boot);

        if (streq_ptr(current, p->generation)) {
                log_info("Booted into %s (revision %s): checking its health.", p->generation, p->revision);
                if (!check_health(run, true))
                        return rollback(run, "the health checks did not pass after the reboot", RESULT_ROLLED_BACK);
                log_info("Confirmed revision %s (%s).", p->revision, p->generation);
                return finish(run, RESULT_SUCCESS, NULL, EXIT_OK);
        }
        if (p->boot_id && boot && !streq(p->boot_id, boot))
                /* Rebooted, but not into the new generation: it did not come up. Never
                 * confirmed, so rolled back. */
                return rollback(run, "the machine rebooted, but not into the new generation", RESULT_ROLLED_BACK);

        log_info("Revision %s waits for a reboot into %s (running: %s).", p->revision, p->generation, strna(current));
        if (in_reboot_window(c))
                reboot_now(c, "a new generation is installed for the next boot");
        return run_result(run, EXIT_OK, RESULT_PENDING_REBOOT, p->revision, NULL);
}

ExitCode deploy_rollback_to_known_good(Run *run) {
        State *s = run->state;
        int r;

        if (!s->good_generation) {
                log_error("There is no known-good generation to roll back to.");
                return run_result(run, EXIT_USAGE, RESULT_ERROR, NULL, "no known-good generation");
        }
        r = state_begin(s, PHASE_ACTIVATING, s->good_revision, NULL, "rollback", "switch");
        if (r < 0)
                return log_oom_exit();
        s->pending->generation = strdup(s->good_generation);
        (void) profile_generation(run->config, &s->pending->previous_generation, NULL);
        if (!s->pending->generation || run_save_state(run) < 0)
                return EXIT_USAGE;
        return rollback(run, "rollback requested by hand", RESULT_ROLLED_BACK) == EXIT_DEPLOY_FAILED
                       ? run_result(run, EXIT_OK, RESULT_ROLLED_BACK, s->good_revision, NULL)
                       : EXIT_ROLLBACK_FAILED;
}

ExitCode deploy_begin(Run *run, const Config *c, const char *command) {
        ExitCode code;

        code = run_begin(run, c, command);
        if (code != EXIT_OK)
                return code;
        /* A recovery that ended in a known state (even a rollback) lets the command go on. */
        code = deploy_recover(run);
        return code == EXIT_USAGE ? code : EXIT_OK;
}
