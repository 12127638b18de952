/* SPDX-License-Identifier: MIT */
#include <jansson.h>

#include "basic/log.h"
#include "engine/plan.h"
#include "system/state.h"
#include "engine/status.h"
#include "basic/timeutil.h"

/* The object of `status --json`: the host, the deployed revision and generation flat at the
 * top, then the state file's content (phase, deployed, known-good, pending), the last run and
 * the history. docs/architecture.md describes it. */
static json_t *status_to_json(const Config *c, const State *s, const LastRun *l) {
        char buf[TIMESTAMP_MAX];
        json_t *state, *j;

        state = state_to_json(s);
        if (!state)
                return NULL;
        j = json_pack("{s:i, s:s, s:s, s:o, s:o, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:{s:o, s:s, s:o, s:o, s:o}, s:O}",
                      "version", STATE_VERSION,
                      "host", c->host,
                      "state-dir", c->state_dir,
                      "revision", s->deployed_revision ? json_string(s->deployed_revision) : json_null(),
                      "generation", s->deployed_generation ? json_string(s->deployed_generation) : json_null(),
                      "phase", json_object_get(state, "phase"),
                      "deployed", json_object_get(state, "deployed"),
                      "known-good", json_object_get(state, "known-good"),
                      "pending", json_object_get(state, "pending"),
                      "failed-revision", json_object_get(state, "failed-revision"),
                      "bundle-sequence", json_object_get(state, "bundle-sequence"),
                      "time-floor", json_object_get(state, "time-floor"),
                      "unhealthy", json_object_get(state, "unhealthy"),
                      "waiting", json_object_get(state, "waiting"),
                      "last-run",
                        "command", l->command ? json_string(l->command) : json_null(),
                        "result", run_result_to_string(l->result),
                        "time", l->time > 0 ? json_string(format_timestamp(buf, l->time)) : json_null(),
                        "revision", l->revision ? json_string(l->revision) : json_null(),
                        "error", l->error ? json_string(l->error) : json_null(),
                      "history", json_object_get(state, "history"));
        json_decref(state);
        return j;
}

/* A revision that waits: which, why, until when, and the plan of its change. */
static void print_waiting(FILE *f, const State *s) {
        char detail[1024], plan[2048];
        const char *until = json_string_value(json_object_get(s->waiting, "until"));
        json_t *pl = json_object_get(s->waiting, "plan");
        _cleanup_free_ char *summary = json_is_object(pl) ? plan_summary(pl) : NULL;

        fprintf(f, "Waiting:     %s (%s): %s%s%s\n", strna(json_string_value(json_object_get(s->waiting, "revision"))),
                strna(json_string_value(json_object_get(s->waiting, "reason"))),
                log_escape(detail, sizeof(detail), strempty(json_string_value(json_object_get(s->waiting, "detail")))),
                until ? "; until " : "", strempty(until));
        if (summary)
                fprintf(f, "             plan: %s\n", log_escape(plan, sizeof(plan), summary));
}

/* The phase, with the revision in flight, and how a pending generation boots. */
static void print_phase(FILE *f, const State *s) {
        fprintf(f, "Phase:       %s%s%s", phase_to_string(s->phase), s->pending ? " " : "",
               s->pending ? s->pending->revision : "");
        if (s->pending && s->pending->activations > 1)
                fprintf(f, " (activation %u: the run before was interrupted)", s->pending->activations);
        fputc('\n', f);
        if (s->pending && s->pending->trial_entry)
                fprintf(f, "Trial boot:  %s boots once at the next boot (entry %s); the default stays the known-good "
                       "generation until `confirm` finds it healthy\n",
                       strna(s->pending->generation), s->pending->trial_entry);
        else if (s->pending && s->phase == PHASE_PENDING_REBOOT)
                fprintf(f, "Boot:        %s is the boot default already (no trial boot: the boot loader has no one-shot "
                       "entry, or system.trial-boot is false)\n",
                       strna(s->pending->generation));
}

/* One deployment of the history: its row of the table, and below it its error, signer, plan,
 * bundle, health checks and images. */
static void print_deployment(FILE *f, const Deployment *d) {
        char b1[TIMESTAMP_MAX], b2[TIMESTAMP_MAX];

        fprintf(f, "%-5llu %-20s %-20s %-18s %-7s %-12.12s %s\n", (unsigned long long) d->id,
               format_timestamp(b1, d->started), d->finished ? format_timestamp(b2, d->finished) : "-",
               run_result_to_string(d->result), d->source, d->revision, d->generation ?: "-");
        if (d->error)
                fprintf(f, "      %s\n", d->error);
        if (d->signer)
                fprintf(f, "      commit signed by %s\n", d->signer);
        if (d->plan) {
                _cleanup_free_ char *summary = plan_summary(d->plan);
                char shown[2048];

                if (summary)
                        fprintf(f, "      plan: %s\n", log_escape(shown, sizeof(shown), summary));
        }
        if (d->bundle)
                fprintf(f, "      bundle %s sequence %lld signed by %s (%s)\n",
                       strna(json_string_value(json_object_get(d->bundle, "id"))),
                       (long long) json_integer_value(json_object_get(d->bundle, "sequence")),
                       strna(json_string_value(json_object_get(d->bundle, "signer"))),
                       strna(json_string_value(json_object_get(d->bundle, "file"))));
        if (d->health) {
                size_t k;
                json_t *h;

                json_array_foreach(d->health, k, h)
                        fprintf(f, "      check %s %s %s\n", strna(json_string_value(json_object_get(h, "name"))),
                               json_is_true(json_object_get(h, "ok")) ? "ok" : "FAIL",
                               strempty(json_string_value(json_object_get(h, "detail"))));
        }
        if (d->images) {
                size_t k;
                json_t *img;

                json_array_foreach(d->images, k, img) {
                        json_t *signers = json_object_get(img, "signers"), *sg;
                        size_t x;

                        fprintf(f, "      image %s %s %s", json_string_value(json_object_get(img, "name")),
                               json_string_value(json_object_get(img, "reference")),
                               json_string_value(json_object_get(img, "digest")) ?: "-");
                        json_array_foreach(signers, x, sg)
                                fprintf(f, "%s%s", x ? ", " : " signed by ", json_string_value(sg));
                        fputc('\n', f);
                }
        }
}

static void print_table(FILE *f, const Config *c, const State *s, const LastRun *l) {
        char b1[TIMESTAMP_MAX];

        fprintf(f, "Host:        %s\n", c->host);
        fprintf(f, "Deployed:    %s\n", s->deployed_revision ?: "nothing yet");
        if (s->deployed_generation)
                fprintf(f, "Generation:  %s\n", s->deployed_generation);
        fprintf(f, "Known good:  %s\n", s->good_generation ?: "none");
        if (s->unhealthy) {
                char since[TIMESTAMP_MAX];

                fprintf(f, "UNHEALTHY:   the system runs %s, which failed its checks (revision %s), and the rollback\n"
                       "             failed at %s: %s\n"
                       "             A healthy deployment or a successful `atticd-agent rollback` ends this.\n",
                       strna(s->unhealthy->generation), s->unhealthy->revision,
                       format_timestamp(since, s->unhealthy->since), strna(s->unhealthy->error));
        }
        if (s->failed_revision)
                fprintf(f, "Failed:      %s (not tried again until the ref moves; pull --retry)\n", s->failed_revision);
        if (s->bundle_sequence > 0)
                fprintf(f, "Bundle:      sequence %llu applied last\n", (unsigned long long) s->bundle_sequence);
        if (s->time_floor > 0) {
                char floor_ts[TIMESTAMP_MAX];

                fprintf(f, "Time floor:  %s (the latest signed time seen; bundles are judged by it)%s\n",
                        format_timestamp(floor_ts, (time_t) s->time_floor),
                        time(NULL) < s->time_floor ? " -- the clock is BEHIND it" : "");
        }
        if (s->waiting)
                print_waiting(f, s);
        print_phase(f, s);
        if (l->result != RESULT_NONE)
                fprintf(f, "Last run:    %s %s at %s%s%s\n", strna(l->command), run_result_to_string(l->result),
                       format_timestamp(b1, l->time), l->error ? ": " : "", strempty(l->error));
        else
                fprintf(f, "Last run:    none\n");

        if (s->n_history == 0)
                return;
        fprintf(f, "\n%-5s %-20s %-20s %-18s %-7s %-12s %s\n", "ID", "STARTED", "FINISHED", "RESULT", "SOURCE",
               "REVISION", "GENERATION");
        for (size_t i = s->n_history; i > 0; i--)
                print_deployment(f, &s->history[i - 1]);
}

/* The table holds text from outside (a server's error, a health check's answer, a title read
 * from grub.cfg): shown line by line with every control character escaped. */
static int print_escaped(const char *text) {
        for (const char *line = text; *line;) {
                size_t n = strcspn(line, "\n");
                _cleanup_free_ char *raw = strndup(line, n), *shown = malloc(4 * n + 1);

                if (!raw || !shown)
                        return -ENOMEM;
                puts(log_escape(shown, 4 * n + 1, raw));
                line += n + (line[n] == '\n');
        }
        return 0;
}

ExitCode status_show(const Config *c, bool json) {
        _cleanup_state_ State *s = NULL;
        LastRun l = {};
        Error e = {};
        int r;

        r = state_load(c->state_dir, &s, &e);
        if (r < 0) {
                log_error("The state file is unreadable: %s", error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        r = last_run_load(c->state_dir, &l, &e);
        if (r < 0) {
                log_error("The record of the last run is unreadable: %s", error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }

        if (json) {
                json_t *j = status_to_json(c, s, &l);
                char *out;

                last_run_done(&l);
                if (!j)
                        return log_error_errno(ENOMEM, "Out of memory."), EXIT_USAGE;
                out = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                json_decref(j);
                if (!out)
                        return log_error_errno(ENOMEM, "Out of memory."), EXIT_USAGE;
                puts(out);
                free(out);
                return EXIT_OK;
        }

        {
                _cleanup_free_ char *text = NULL;
                size_t size = 0;
                FILE *f = open_memstream(&text, &size);

                if (!f) {
                        last_run_done(&l);
                        return log_error_errno(ENOMEM, "Out of memory."), EXIT_USAGE;
                }
                print_table(f, c, s, &l);
                last_run_done(&l);
                if (fclose(f) != 0 || print_escaped(text) < 0)
                        return log_error_errno(ENOMEM, "Out of memory."), EXIT_USAGE;
        }
        return EXIT_OK;
}
