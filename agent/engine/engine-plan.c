/* SPDX-License-Identifier: MIT */
/* `atticd-agent plan`: fetch, verify and build the new revision of the client repository (if
 * there is one), and print what activating it would change and whether this host would take
 * it now (rollout, change window, switch inhibitors). Nothing is activated and the state file
 * is not written: the build is kept (a garbage-collector root, state-dir/gcroots/plan), so
 * that the pull that deploys it builds nothing. */

#include <jansson.h>
#include <stdio.h>

#include "engine/deploy-internal.h"
#include "engine/roots.h"
#include "engine/engine.h"
#include "engine/engine-internal.h"
#include "basic/fileio.h"
#include "engine/gate.h"
#include "basic/log.h"
#include "engine/plan.h"
#include "basic/timeutil.h"


static void print_result(json_t *out, bool json) {
        char shown[1024], when[TIMESTAMP_MAX];
        json_t *w = json_object_get(out, "waiting");

        if (json) {
                char *s = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

                if (s)
                        printf("%s\n", s);
                free(s);
                return;
        }
        printf("revision:  %s\n", strna(json_string_value(json_object_get(out, "revision"))));
        printf("deployed:  %s\n", strna(json_string_value(json_object_get(out, "deployed"))));
        if (!json_is_true(json_object_get(out, "new"))) {
                printf("nothing new to deploy\n");
                return;
        }
        if (json_is_object(w)) {
                json_int_t until = json_integer_value(json_object_get(w, "until"));

                printf("now:       would wait (%s): %s%s%s\n", strna(json_string_value(json_object_get(w, "reason"))),
                       log_escape(shown, sizeof(shown), strempty(json_string_value(json_object_get(w, "detail")))),
                       until > 0 ? "; until " : "", until > 0 ? format_timestamp(when, (time_t) until) : "");
        } else
                printf("now:       would %s it\n", strna(json_string_value(json_object_get(out, "action"))));
        if (json_is_object(json_object_get(out, "plan")))
                plan_print(json_object_get(out, "plan"));
}

static json_t *verdict_json(const GateVerdict *v) {
        return json_pack("{s:s, s:s, s:I}", "reason", v->reason, "detail", v->detail, "until", (json_int_t) v->until);
}

static ExitCode plan(Run *run, bool json) {
        const Config *c = run->config;
        _cleanup_git_source_ GitSource *git = NULL;
        _cleanup_free_ char *repo_path = NULL, *flake = NULL, *out_link = NULL;
        _cleanup_(system_eval_done) SystemEval sys = {};
        json_t *out = NULL, *the_plan = NULL;
        GateVerdict v = {};
        char rev[COMMIT_ID_HEX + 1];
        time_t next = 0;
        ExitCode code;
        Error e = {};
        int r;

        if (run->state->phase != PHASE_IDLE) {
                log_error("A deployment of %s is %s (or was interrupted there); `pull` finishes it. No plan now.",
                          run->state->pending ? run->state->pending->revision : "?", phase_to_string(run->state->phase));
                return EXIT_BUSY;
        }
        code = engine_fetch_revision(run, &repo_path, &git, rev);
        if (code != EXIT_OK)
                return code;
        out = json_pack("{s:s, s:o, s:b}", "revision", rev, "deployed",
                        run->state->deployed_revision ? json_string(run->state->deployed_revision) : json_null(), "new",
                        !streq_ptr(rev, run->state->deployed_revision));
        if (!out)
                return log_oom_exit();
        if (streq_ptr(rev, run->state->deployed_revision)) {
                print_result(out, json);
                json_decref(out);
                return EXIT_OK;
        }

        code = engine_verify_revision(run, git, rev);
        if (code != EXIT_OK)
                goto finish;
        r = gate_rollout_decide(c, run->state, git, rev, &v, &e);
        if (r < 0) {
                code = run_refuse(run, "rollout-file", rev, "%s", error_message(&e) ?: strerror(-r));
                goto finish;
        }

        r = git_source_pin(git, rev, &e);
        if (r < 0 || flake_ref_for_revision(repo_path, GIT_DEPLOY_REF, rev, &flake) < 0) {
                log_error("Failed to pin the revision: %s", error_message(&e) ?: strerror(-r));
                code = EXIT_USAGE;
                goto finish;
        }
        /* Evaluated and built as `pull` would, but a failure is not remembered against the
         * revision: this is a look, not a deployment. */
        run_phase(run, "evaluate", "Evaluating revision %s", rev);
        r = nix_evaluate_system(c, flake, &sys, &e);
        if (r >= 0)
                r = image_set_from_containers(sys.containers, &run->images, &e);
        if (r < 0) {
                log_error("Cannot evaluate revision %s: %s", rev, error_message(&e) ?: strerror(-r));
                code = EXIT_DEPLOY_FAILED;
                goto finish;
        }
        code = engine_check_images(run, rev);
        if (code != EXIT_OK)
                goto finish;
        run_phase(run, "build", "Building revision %s", rev);
        out_link = path_join(c->state_dir, ROOT_PLAN);
        if (!out_link)
                return log_oom_exit();
        r = nix_build_system(c, sys.drv_path, sys.toplevel, out_link, false, &e);
        if (r < 0) {
                log_error("Revision %s does not build: %s", rev, error_message(&e) ?: strerror(-r));
                code = EXIT_DEPLOY_FAILED;
                goto finish;
        }
        if (plan_make(c, sys.toplevel, &the_plan) < 0)
                return log_oom_exit();
        (void) json_object_set_new(out, "plan", the_plan);

        /* What a pull now would do: the rollout first, then the window, then the inhibitors. */
        if (!v.reason && !gate_window_open(c, &next)) {
                v.reason = "window";
                v.until = next;
                (void) snprintf(v.detail, sizeof(v.detail), "outside every change window (schedule.windows)");
        }
        (void) json_object_set_new(out, "action", json_string(system_action_to_string(c->system.action)));
        if (!v.reason && plan_switch_inhibited(the_plan) && c->system.action == SYSTEM_ACTION_SWITCH) {
                if (c->system.on_switch_inhibited == SWITCH_INHIBITED_WAIT) {
                        v.reason = "switch-inhibited";
                        (void) snprintf(v.detail, sizeof(v.detail),
                                        "its switch inhibitors changed, and system.on-switch-inhibited is wait");
                } else
                        (void) json_object_set_new(out, "action", json_string("boot"));
        }
        (void) json_object_set_new(out, "waiting", v.reason ? verdict_json(&v) : json_null());
        print_result(out, json);
        code = EXIT_OK;
finish:
        json_decref(out);
        return code;
}

ExitCode engine_plan(const Config *c, bool json) {
        _cleanup_(run_done) Run run = {};
        ExitCode code;

        if (!c->repository.present || !c->repository.url) {
                log_error("%s: no repository.url: there is nothing to plan from.", c->path);
                return EXIT_USAGE;
        }
        code = run_begin(&run, c, "plan");
        if (code != EXIT_OK)
                return code;
        return plan(&run, json);
}
