/* SPDX-License-Identifier: MIT */
/* The state in memory and on disk: the deployment and state records (new, copy, free), reading
 * and writing state.json (bounded, atomically), and the moves of a deployment (begin, finish,
 * abandon) with what they change: deployed, known good, failed revision, unhealthy, time floor.
 * The JSON form is state-json.c's, the waiting record state-waiting.c's, last-run.json
 * state-last-run.c's. */
#include <jansson.h>

#include "basic/fileio.h"
#include "basic/log.h"
#include "system/state-internal.h"
#include "basic/strutil.h"

static const char *const phase_table[_PHASE_MAX] = {
        [PHASE_IDLE] = "idle",
        [PHASE_BUILDING] = "building",
        [PHASE_ACTIVATING] = "activating",
        [PHASE_CHECKING] = "checking",
        [PHASE_ROLLING_BACK] = "rolling-back",
        [PHASE_PENDING_REBOOT] = "pending-reboot",
        [PHASE_COMMITTING] = "committing",
};

static const char *const result_table[_RESULT_MAX] = {
        [RESULT_NONE] = "none",
        [RESULT_SUCCESS] = "success",
        [RESULT_NO_CHANGE] = "no-change",
        [RESULT_BUILD_FAILED] = "build-failed",
        [RESULT_ACTIVATION_FAILED] = "activation-failed",
        [RESULT_REFUSED] = "refused",
        [RESULT_TRANSIENT] = "transient",
        [RESULT_INTERRUPTED] = "interrupted",
        [RESULT_ERROR] = "error",
        [RESULT_ROLLED_BACK] = "rolled-back",
        [RESULT_ROLLBACK_FAILED] = "rollback-failed",
        [RESULT_KNOWN_BAD] = "known-bad",
        [RESULT_PENDING_REBOOT] = "pending-reboot",
        [RESULT_WAITING] = "waiting",
        [RESULT_BUSY] = "busy",
};

DEFINE_STRING_TABLE_LOOKUP(phase, Phase, phase_table, _PHASE_MAX)
DEFINE_STRING_TABLE_LOOKUP(run_result, RunResult, result_table, _RESULT_MAX)

void deployment_done(Deployment *d) {
        if (!d)
                return;
        free(d->revision);
        free(d->generation);
        free(d->source);
        free(d->ref);
        free(d->action);
        free(d->error);
        free(d->signer);
        free(d->previous_generation);
        free(d->boot_id);
        free(d->trial_entry);
        json_decref(d->images);
        json_decref(d->bundle);
        json_decref(d->health);
        json_decref(d->plan);
        *d = (Deployment) {};
}

int state_strdup_null(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int deployment_copy(const Deployment *src, Deployment *dst) {
        Deployment d = {
                .id = src->id,
                .started = src->started,
                .finished = src->finished,
                .result = src->result,
                .activations = src->activations,
                .images = json_incref(src->images),
                .bundle = json_incref(src->bundle),
                .health = json_incref(src->health),
                .plan = json_incref(src->plan),
        };

        if (state_strdup_null(src->revision, &d.revision) < 0 ||
            state_strdup_null(src->generation, &d.generation) < 0 ||
            state_strdup_null(src->source, &d.source) < 0 || state_strdup_null(src->ref, &d.ref) < 0 ||
            state_strdup_null(src->action, &d.action) < 0 || state_strdup_null(src->error, &d.error) < 0 ||
            state_strdup_null(src->signer, &d.signer) < 0 ||
            state_strdup_null(src->previous_generation, &d.previous_generation) < 0 ||
            state_strdup_null(src->boot_id, &d.boot_id) < 0 ||
            state_strdup_null(src->trial_entry, &d.trial_entry) < 0) {
                deployment_done(&d);
                return -ENOMEM;
        }
        *dst = d;
        return 0;
}

int state_new(State **ret) {
        State *s = calloc(1, sizeof(State));

        if (!s)
                return -ENOMEM;
        s->next_id = 1;
        *ret = s;
        return 0;
}

void state_unhealthy_free(Unhealthy *u) {
        if (!u)
                return;
        free(u->revision);
        free(u->generation);
        free(u->error);
        free(u);
}

State *state_free(State *s) {
        if (!s)
                return NULL;
        state_unhealthy_free(s->unhealthy);
        json_decref(s->waiting);
        free(s->deployed_revision);
        free(s->deployed_generation);
        free(s->good_revision);
        free(s->good_generation);
        free(s->failed_revision);
        if (s->pending) {
                deployment_done(s->pending);
                free(s->pending);
        }
        for (size_t i = 0; i < s->n_history; i++)
                deployment_done(&s->history[i]);
        free(s->history);
        free(s);
        return NULL;
}

int state_load(const char *dir, State **ret, Error *e) {
        _cleanup_free_ char *path = path_join(dir, STATE_FILE), *data = NULL;
        json_error_t jerr;
        json_t *j;
        size_t size;
        int r;

        if (!path)
                return -ENOMEM;

        r = read_full_file(path, STATE_FILE_MAX, &data, &size);
        if (r == -ENOENT)
                return state_new(ret);
        if (r == -EFBIG)
                return error_set(e, r, "%s: file is larger than %d bytes", path, STATE_FILE_MAX);
        if (r < 0)
                return error_set(e, r, "%s: %s", path, strerror(-r));

        j = json_loadb(data, size, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return error_set(e, -EINVAL, "%s:%d: not valid JSON: %s", path, jerr.line, jerr.text);

        r = state_from_json(j, ret, e);
        json_decref(j);
        if (r < 0)
                return error_prefix(e, r, "%s", path);
        return 0;
}

/* The state as written: never larger than STATE_WRITE_MAX, so never a file the reader refuses.
 * The oldest history entries go first (the anchors, the deployment in flight and the newest
 * history stay); -EFBIG when even that is not enough. */
static int dump_bounded(json_t *j, char **ret) {
        json_t *history = json_object_get(j, "history");
        size_t dropped = 0;

        for (;;) {
                char *data = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                size_t size, excess, n, k = 0;

                if (!data)
                        return -ENOMEM;
                size = strlen(data);
                if (size <= STATE_WRITE_MAX) {
                        if (dropped > 0)
                                log_notice("The state file would be larger than %d bytes: the %zu oldest history "
                                           "entries were dropped.",
                                           STATE_WRITE_MAX, dropped);
                        *ret = data;
                        return 0;
                }
                free(data);
                n = json_array_size(history);
                if (n == 0)
                        return -EFBIG;
                /* The oldest entries that make up the excess, at least one. */
                excess = size - STATE_WRITE_MAX;
                for (size_t got = 0; k < n && got < excess; k++) {
                        _cleanup_free_ char *entry = json_dumps(json_array_get(history, k), JSON_INDENT(2));

                        if (!entry)
                                return -ENOMEM;
                        got += strlen(entry);
                }
                for (size_t i = 0; i < k; i++)
                        (void) json_array_remove(history, 0);
                dropped += k;
        }
}

int state_save(const State *s, const char *dir) {
        _cleanup_free_ char *path = path_join(dir, STATE_FILE), *data = NULL;
        json_t *j;
        int r;

        if (!path)
                return -ENOMEM;
        j = state_to_json(s);
        if (!j)
                return -ENOMEM;
        r = dump_bounded(j, &data);
        json_decref(j);
        if (r < 0)
                return r;
        return write_file_atomic(path, data, strlen(data), 0600);
}

int state_begin(State *s, Phase phase, const char *revision, const char *ref, const char *source,
                const char *action) {
        Deployment *d;

        if (s->pending)
                return -EBUSY;
        d = calloc(1, sizeof(Deployment));
        if (!d)
                return -ENOMEM;
        *d = (Deployment) {
                .id = s->next_id,
                .started = time(NULL),
                .result = RESULT_NONE,
        };
        if (state_strdup_null(revision, &d->revision) < 0 || state_strdup_null(ref, &d->ref) < 0 ||
            state_strdup_null(source, &d->source) < 0 || state_strdup_null(action, &d->action) < 0) {
                deployment_done(d);
                free(d);
                return -ENOMEM;
        }
        s->next_id++;
        s->pending = d;
        s->phase = phase;
        return 0;
}

static int set_pair(char **revision, char **generation, const Deployment *d) {
        char *rev, *gen;

        if (state_strdup_null(d->revision, &rev) < 0)
                return -ENOMEM;
        if (state_strdup_null(d->generation, &gen) < 0) {
                free(rev);
                return -ENOMEM;
        }
        free(*revision);
        free(*generation);
        *revision = rev;
        *generation = gen;
        return 0;
}

static int set_unhealthy(State *s, const Deployment *d, const char *error, const char *running) {
        Unhealthy *u = calloc(1, sizeof(Unhealthy));

        if (!u)
                return -ENOMEM;
        u->since = time(NULL);
        if (state_strdup_null(d->revision, &u->revision) < 0 || state_strdup_null(running, &u->generation) < 0 ||
            state_strdup_null(error, &u->error) < 0) {
                state_unhealthy_free(u);
                return -ENOMEM;
        }
        state_unhealthy_free(s->unhealthy);
        s->unhealthy = u;
        return 0;
}

const Deployment *state_deployed_entry(const State *s) {
        for (size_t i = s->n_history; i > 0; i--) {
                const Deployment *d = &s->history[i - 1];

                if (d->result == RESULT_SUCCESS && streq_ptr(d->revision, s->deployed_revision) &&
                    streq_ptr(d->generation, s->deployed_generation))
                        return d;
        }
        return NULL;
}

int state_finish(State *s, RunResult result, const char *error, const char *running) {
        Deployment *d = s->pending;
        int r;

        if (!d)
                return -ENOENT;
        d->result = result;
        d->finished = time(NULL);
        free(d->error);
        if (state_strdup_null(error, &d->error) < 0)
                return -ENOMEM;

        /* The revision a pull failed with is remembered, until another one succeeds. */
        if (streq_ptr(d->source, "pull") &&
            (result == RESULT_SUCCESS || result == RESULT_BUILD_FAILED || result == RESULT_ACTIVATION_FAILED ||
             result == RESULT_ROLLED_BACK || result == RESULT_ROLLBACK_FAILED)) {
                free(s->failed_revision);
                s->failed_revision = NULL;
                if (result != RESULT_SUCCESS && state_strdup_null(d->revision, &s->failed_revision) < 0)
                        return -ENOMEM;
        }
        if (result == RESULT_ROLLBACK_FAILED && set_unhealthy(s, d, error, running) < 0)
                return -ENOMEM;
        if (result == RESULT_SUCCESS || result == RESULT_ROLLED_BACK) {
                state_unhealthy_free(TAKE_PTR(s->unhealthy));
        }
        {
                json_t *created = json_object_get(d->bundle, "created");

                /* A bundle that verified (its deployment began only then) carries a signed time:
                 * the time floor, whatever became of the deployment. */
                if (json_is_integer(created))
                        (void) state_raise_time_floor(s, (int64_t) json_integer_value(created));
        }
        if (result == RESULT_SUCCESS) {
                json_t *seq = json_object_get(d->bundle, "sequence");

                /* A bundle's sequence counts as applied only once its deployment succeeded. */
                if (json_is_integer(seq) && (uint64_t) json_integer_value(seq) > s->bundle_sequence)
                        s->bundle_sequence = (uint64_t) json_integer_value(seq);
                /* Activated, and healthy when health checks are configured: that is what
                 * "known good" means. */
                r = set_pair(&s->deployed_revision, &s->deployed_generation, d);
                if (r < 0)
                        return r;
                r = set_pair(&s->good_revision, &s->good_generation, d);
                if (r < 0)
                        return r;
        }

        if (s->n_history == STATE_HISTORY_MAX) {
                deployment_done(&s->history[0]);
                memmove(s->history, s->history + 1, (s->n_history - 1) * sizeof(Deployment));
                s->n_history--;
        } else {
                Deployment *h = realloc(s->history, (s->n_history + 1) * sizeof(Deployment));
                if (!h)
                        return -ENOMEM;
                s->history = h;
        }
        s->history[s->n_history++] = *d;
        free(d);
        s->pending = NULL;
        s->phase = PHASE_IDLE;
        return 0;
}

void state_abandon(State *s) {
        if (s->pending) {
                deployment_done(s->pending);
                free(s->pending);
                s->pending = NULL;
        }
        s->phase = PHASE_IDLE;
}

bool state_raise_time_floor(State *s, int64_t t) {
        if (t <= s->time_floor)
                return false;
        s->time_floor = t;
        return true;
}
