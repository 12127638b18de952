/* SPDX-License-Identifier: MIT */
/* The end of a deployment: the record in the state file, the event that closes it, the hooks,
 * and last-run.json. */
#include <jansson.h>
#include <stdarg.h>

#include "engine/deploy-internal.h"
#include "engine/roots.h"
#include "system/event.h"
#include "basic/fileio.h"
#include "basic/log.h"
#include "system/nix.h"
#include "system/process.h"

void msgf(char msg[static ERROR_MESSAGE_MAX], const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, ERROR_MESSAGE_MAX, fmt, ap);
        va_end(ap);
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

/* system.keep-generations: the old profile generations go, never the known-good one, one in
 * flight or one built ahead of its window; their boot entries go at the next boot loader
 * install (the next deployment). A failure is logged: the deployment stands. */
static void prune_generations(Run *run) {
        const State *s = run->state;
        const char *waiting = s->waiting ? json_string_value(json_object_get(s->waiting, "system")) : NULL;
        char *protect[] = { s->good_generation, s->deployed_generation, (char *) waiting, NULL };
        unsigned deleted = 0;
        Error e = {};
        int r;

        /* NULL entries end the list early: move the set ones to the front. */
        for (size_t i = 0, k = 0; i < ELEMENTSOF(protect); i++)
                if (protect[i] || i == ELEMENTSOF(protect) - 1)
                        protect[k++] = protect[i];
        r = profile_prune(run->config, run->config->system.keep_generations, protect, &deleted, &e);
        if (r < 0)
                log_warning("Cannot delete the old system generations (system.keep-generations: %u): %s",
                            run->config->system.keep_generations, error_message(&e) ?: strerror(-r));
        else if (deleted > 0)
                log_info("Deleted %u old system generation(s), keeping the newest %u (system.keep-generations).", deleted,
                         run->config->system.keep_generations);
}

ExitCode deploy_finish(Run *run, RunResult result, const char *error, ExitCode code) {
        const Deployment *p = run->state->pending;
        _cleanup_free_ char *rev = p ? strdup(p->revision) : NULL, *running = NULL;
        Deployment copy = {};
        int r;

        if (p && deployment_copy(p, &copy) < 0)
                return log_oom_exit();
        if (p)
                emit_outcome(&copy, result, error);
        /* A failed rollback leaves the machine on whatever runs now: the record names it. */
        if (result == RESULT_ROLLBACK_FAILED)
                (void) canonicalize_path(run->config->system.current_system, &running);
        r = state_finish(run->state, result, error, running);
        if (r < 0 || run_save_state(run) < 0) {
                deployment_done(&copy);
                return EXIT_USAGE;
        }
        roots_sync(run);
        /* What `plan` built and kept for this deployment is not needed any more. */
        {
                _cleanup_free_ char *plan_root = path_join(run->config->state_dir, ROOT_PLAN);

                if (plan_root)
                        (void) unlink(plan_root);
        }
        if (result == RESULT_SUCCESS && run->config->system.keep_generations > 0)
                prune_generations(run);
        if (result == RESULT_SUCCESS || result == RESULT_BUILD_FAILED || result == RESULT_ROLLED_BACK ||
            result == RESULT_ROLLBACK_FAILED)
                run_hook(run->config, &copy, result, error);
        deployment_done(&copy);
        return run_result(run, code, result, rev, error);
}
