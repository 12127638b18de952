/* SPDX-License-Identifier: MIT */
/* `check`: one round of the health checks against the running system, and whether it is what
 * the agent deployed: the system and profile (drift by hand) and the images the containers run
 * (runtime trust). Reads the state, changes nothing but the container metrics. */

#include <jansson.h>

#include "engine/engine.h"
#include "engine/metrics.h"
#include "engine/run.h"
#include "oci/containers.h"
#include "system/event.h"
#include "system/health.h"
#include "basic/log.h"
#include "system/state.h"

/* The running system and the profile must be what the agent deployed: anything else is a
 * change made by hand (nixos-rebuild, nix-env) behind its back. */
static bool check_drift(const Config *c, const State *s, MetricsDrift *d) {
        if (metrics_drift(c, s, d) <= 0)
                return false;
        log_event(EVENT_DRIFT, LOG_WARNING,
                  EVENT_FIELDS({ "REVISION", s->deployed_revision }, { "GENERATION", s->deployed_generation },
                               { "CURRENT_SYSTEM", d->current_system }, { "PROFILE", d->profile }),
                  "Drift: the agent deployed %s (revision %s), but %s points to %s and the profile %s to %s.",
                  s->deployed_generation, s->deployed_revision, c->system.current_system, strna(d->current_system),
                  c->system.profile, strna(d->profile));
        return true;
}

/* One container's verdict: an event when it runs another image, a note when it does not run. */
static void report_container(const State *s, const ContainerCheck *cc, size_t *not_running) {
        if (cc->state == CONTAINER_OTHER_IMAGE)
                log_event(EVENT_CONTAINER_DRIFT, LOG_WARNING,
                          EVENT_FIELDS({ "REVISION", s->deployed_revision }, { "CONTAINER", cc->name },
                                       { "EXPECTED_DIGEST", cc->expected }, { "RUNNING_DIGEST", cc->running }),
                          "Container %s runs %s, not the verified image %s (revision %s).", cc->name, cc->running,
                          cc->expected, s->deployed_revision);
        else if (cc->state == CONTAINER_NOT_RUNNING) {
                (*not_running)++;
                log_warning("Container %s (%s) is not running; the health checks decide whether that matters.", cc->name,
                            cc->reference);
        } else if (cc->state == CONTAINER_UNKNOWN)
                log_warning("Container %s: %s.", cc->name, cc->detail);
}

ExitCode engine_check(const Config *c, bool json) {
        _cleanup_(container_report_done) ContainerReport containers = {};
        _cleanup_(metrics_drift_done) MetricsDrift drift = {};
        size_t not_running = 0;
        _cleanup_state_ State *state = NULL;
        HealthReport report = {};
        bool drifted;
        Error e = {};
        int r;

        /* Read only: no lock; the state file is replaced atomically. */
        r = state_load(c->state_dir, &state, &e);
        if (r < 0) {
                log_error("Cannot read the state in '%s': %s", c->state_dir, error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        drifted = check_drift(c, state, &drift);

        r = health_run_once(c, &report, &e);
        if (r < 0) {
                log_error("Cannot run the health checks: %s", error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        /* Runtime trust: what the containers run is what was verified. */
        {
                const Deployment *d = state_deployed_entry(state);

                r = containers_check(c, d ? d->images : NULL, &containers);
                if (r < 0)
                        return log_oom_exit();
                for (size_t i = 0; i < containers.n; i++)
                        report_container(state, &containers.checks[i], &not_running);
                (void) metrics_record_containers(c, state, (long) containers.drifted, (long) not_running);
        }
        drifted = drifted || containers.drifted > 0;
        if (json) {
                json_t *j = json_pack("{s:b, s:o, s:b, s:o, s:o, s:o}", "healthy", report.healthy && !drifted, "checks",
                                      health_report_to_json(&report), "drift", drifted, "current-system",
                                      drift.current_system ? json_string(drift.current_system) : json_null(), "profile",
                                      drift.profile ? json_string(drift.profile) : json_null(), "containers",
                                      container_report_to_json(&containers));
                char *out = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

                json_decref(j);
                if (out)
                        puts(out);
                free(out);
        } else {
                for (size_t i = 0; i < report.n; i++) {
                        char detail[1024]; /* a service's answer: no control characters */

                        printf("%-20s %-4s %s\n", report.results[i].name, report.results[i].ok ? "ok" : "FAIL",
                               log_escape(detail, sizeof(detail), report.results[i].detail));
                }
                if (drift.drift)
                        printf("%-20s %-4s current-system %s, profile %s, deployed %s\n", "drift", "FAIL",
                               strna(drift.current_system), strna(drift.profile), state->deployed_generation);
                for (size_t i = 0; i < containers.n; i++) {
                        const ContainerCheck *cc = &containers.checks[i];
                        char name[256], detail[1024];

                        printf("container %-10s %-4s %s\n", log_escape(name, sizeof(name), cc->name),
                               cc->state == CONTAINER_OK ? "ok" : cc->state == CONTAINER_OTHER_IMAGE ? "FAIL" : "note",
                               log_escape(detail, sizeof(detail), cc->detail));
                }
        }
        r = report.healthy && !drifted;
        health_report_done(&report);
        /* A generation that failed its checks and could not be rolled back is not made healthy
         * by one good round: a person decides (a deployment or `rollback`). */
        if (state->unhealthy) {
                log_error("The system runs %s, which failed its checks (revision %s), and the rollback failed: %s.",
                          strna(state->unhealthy->generation), state->unhealthy->revision, strna(state->unhealthy->error));
                return EXIT_ROLLBACK_FAILED;
        }
        if (state->phase == PHASE_ROLLING_BACK) {
                log_error("A rollback from revision %s was interrupted; the next pull, apply or rollback finishes it.",
                          state->pending->revision);
                return EXIT_ROLLBACK_FAILED;
        }
        return r ? EXIT_OK : EXIT_DEPLOY_FAILED;
}
