/* SPDX-License-Identifier: MIT */
#include <jansson.h>

#include "log.h"
#include "state.h"
#include "status.h"
#include "timeutil.h"

/* The object of `status --json`: the state file's content (deployed, known-good, phase,
 * pending, history) plus the host, the last run and, flat at the top, the deployed revision
 * and generation. docs/architecture.md describes it. */
static json_t *status_to_json(const Config *c, const State *s, const LastRun *l) {
        char buf[TIMESTAMP_MAX];
        json_t *j = state_to_json(s), *last;

        if (!j)
                return NULL;
        last = json_pack("{s:o, s:s, s:o, s:o, s:o}",
                         "command", l->command ? json_string(l->command) : json_null(),
                         "result", run_result_to_string(l->result),
                         "time", l->time > 0 ? json_string(format_timestamp(buf, l->time)) : json_null(),
                         "revision", l->revision ? json_string(l->revision) : json_null(),
                         "error", l->error ? json_string(l->error) : json_null());
        if (!last || json_object_set_new(j, "last-run", last) < 0 ||
            json_object_set_new(j, "host", json_string(c->host)) < 0 ||
            json_object_set_new(j, "state-dir", json_string(c->state_dir)) < 0 ||
            json_object_set_new(j, "revision", s->deployed_revision ? json_string(s->deployed_revision) : json_null()) < 0 ||
            json_object_set_new(j, "generation", s->deployed_generation ? json_string(s->deployed_generation) : json_null()) < 0) {
                json_decref(j);
                return NULL;
        }
        json_object_del(j, "next-id");
        return j;
}

static void print_table(const Config *c, const State *s, const LastRun *l) {
        char b1[TIMESTAMP_MAX], b2[TIMESTAMP_MAX];

        printf("Host:        %s\n", c->host);
        printf("Deployed:    %s\n", s->deployed_revision ?: "nothing yet");
        if (s->deployed_generation)
                printf("Generation:  %s\n", s->deployed_generation);
        printf("Known good:  %s\n", s->good_generation ?: "none");
        printf("Phase:       %s%s%s\n", phase_to_string(s->phase), s->pending ? " " : "",
               s->pending ? s->pending->revision : "");
        if (l->result != RESULT_NONE)
                printf("Last run:    %s %s at %s%s%s\n", strna(l->command), run_result_to_string(l->result),
                       format_timestamp(b1, l->time), l->error ? ": " : "", strempty(l->error));
        else
                printf("Last run:    none\n");

        if (s->n_history == 0)
                return;
        printf("\n%-5s %-20s %-20s %-18s %-7s %-12s %s\n", "ID", "STARTED", "FINISHED", "RESULT", "SOURCE",
               "REVISION", "GENERATION");
        for (size_t i = s->n_history; i > 0; i--) {
                const Deployment *d = &s->history[i - 1];

                printf("%-5llu %-20s %-20s %-18s %-7s %-12.12s %s\n", (unsigned long long) d->id,
                       format_timestamp(b1, d->started), d->finished ? format_timestamp(b2, d->finished) : "-",
                       run_result_to_string(d->result), d->source, d->revision, d->generation ?: "-");
                if (d->error)
                        printf("      %s\n", d->error);
        }
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

        print_table(c, s, &l);
        last_run_done(&l);
        return EXIT_OK;
}
