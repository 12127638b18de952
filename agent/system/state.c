/* SPDX-License-Identifier: MIT */
#include <jansson.h>

#include "basic/fileio.h"
#include "basic/log.h"
#include "system/state.h"
#include "basic/strutil.h"
#include "basic/timeutil.h"

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

static int strdup_null(const char *s, char **ret) {
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

        if (strdup_null(src->revision, &d.revision) < 0 || strdup_null(src->generation, &d.generation) < 0 ||
            strdup_null(src->source, &d.source) < 0 || strdup_null(src->ref, &d.ref) < 0 ||
            strdup_null(src->action, &d.action) < 0 || strdup_null(src->error, &d.error) < 0 ||
            strdup_null(src->signer, &d.signer) < 0 ||
            strdup_null(src->previous_generation, &d.previous_generation) < 0 ||
            strdup_null(src->boot_id, &d.boot_id) < 0 ||
            strdup_null(src->trial_entry, &d.trial_entry) < 0) {
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

static void unhealthy_free(Unhealthy *u) {
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
        unhealthy_free(s->unhealthy);
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

/* ---- to JSON ---- */

static json_t *json_string_or_null(const char *s) {
        return s ? json_string(s) : json_null();
}

static json_t *json_time_or_null(time_t t) {
        char buf[TIMESTAMP_MAX];
        return t > 0 ? json_string(format_timestamp(buf, t)) : json_null();
}

static json_t *deployment_to_json(const Deployment *d) {
        return json_pack("{s:I, s:s, s:o, s:s, s:o, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o}",
                         "id", (json_int_t) d->id,
                         "revision", d->revision,
                         "generation", json_string_or_null(d->generation),
                         "source", d->source,
                         "ref", json_string_or_null(d->ref),
                         "action", d->action,
                         "started", json_time_or_null(d->started),
                         "finished", json_time_or_null(d->finished),
                         "result", run_result_to_string(d->result),
                         "error", json_string_or_null(d->error),
                         "signer", json_string_or_null(d->signer),
                         "images", d->images ? json_incref(d->images) : json_null(),
                         "previous-generation", json_string_or_null(d->previous_generation),
                         "health", d->health ? json_incref(d->health) : json_null(),
                         "boot-id", json_string_or_null(d->boot_id),
                         "trial-entry", json_string_or_null(d->trial_entry),
                         "bundle", d->bundle ? json_incref(d->bundle) : json_null(),
                         "activations", (json_int_t) d->activations,
                         "plan", d->plan ? json_incref(d->plan) : json_null());
}

static json_t *unhealthy_to_json(const Unhealthy *u) {
        if (!u)
                return json_null();
        return json_pack("{s:s, s:o, s:o, s:o}", "revision", u->revision, "generation",
                         json_string_or_null(u->generation), "error", json_string_or_null(u->error), "since",
                         json_time_or_null(u->since));
}

static json_t *pair_to_json(const char *revision, const char *generation) {
        if (!revision)
                return json_null();
        return json_pack("{s:s, s:o}", "revision", revision, "generation", json_string_or_null(generation));
}

json_t *state_to_json(const State *s) {
        json_t *history = json_array();

        if (!history)
                return NULL;
        for (size_t i = 0; i < s->n_history; i++)
                if (json_array_append_new(history, deployment_to_json(&s->history[i])) < 0) {
                        json_decref(history);
                        return NULL;
                }

        return json_pack("{s:i, s:I, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                         "version", STATE_VERSION,
                         "next-id", (json_int_t) s->next_id,
                         "deployed", pair_to_json(s->deployed_revision, s->deployed_generation),
                         "known-good", pair_to_json(s->good_revision, s->good_generation),
                         "phase", phase_to_string(s->phase),
                         "failed-revision", json_string_or_null(s->failed_revision),
                         "bundle-sequence", s->bundle_sequence > 0 ? json_integer((json_int_t) s->bundle_sequence) : json_null(),
                         "time-floor", s->time_floor > 0 ? json_integer((json_int_t) s->time_floor) : json_null(),
                         "unhealthy", unhealthy_to_json(s->unhealthy),
                         "waiting", s->waiting ? json_incref(s->waiting) : json_null(),
                         "pending", s->pending ? deployment_to_json(s->pending) : json_null(),
                         "history", history);
}

/* ---- from JSON, strictly ---- */

static int opt_string(json_t *v, const char *what, char **ret, Error *e) {
        if (json_is_null(v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return error_set(e, -EINVAL, "%s: expected a string or null", what);
        return strdup_null(json_string_value(v), ret);
}

static int opt_time(json_t *v, const char *what, time_t *ret, Error *e) {
        if (json_is_null(v)) {
                *ret = 0;
                return 0;
        }
        if (!json_is_string(v) || parse_timestamp(json_string_value(v), ret) < 0)
                return error_set(e, -EINVAL, "%s: expected a timestamp (YYYY-MM-DDTHH:MM:SSZ) or null", what);
        return 0;
}

/* [{name, reference, digest, signers: [...], sbom}] */
static int images_from_json(json_t *a, const char *what, Error *e) {
        json_error_t jerr;
        json_t *v, *signers, *digest, *k;
        const char *name, *reference;
        int sbom;
        size_t i, l;

        if (json_is_null(a))
                return 0;
        if (!json_is_array(a))
                return error_set(e, -EINVAL, "%s: images: expected an array or null", what);
        json_array_foreach(a, i, v) {
                if (json_unpack_ex(v, &jerr, JSON_STRICT, "{s:s, s:s, s:o, s:o, s:b}", "name", &name, "reference",
                                   &reference, "digest", &digest, "signers", &signers, "sbom", &sbom) < 0)
                        return error_set(e, -EINVAL, "%s: images[%zu]: %s", what, i, jerr.text);
                if (!json_is_null(digest) && !json_is_string(digest))
                        return error_set(e, -EINVAL, "%s: images[%zu]: digest must be a string or null", what, i);
                if (!json_is_array(signers))
                        return error_set(e, -EINVAL, "%s: images[%zu]: signers must be an array", what, i);
                json_array_foreach(signers, l, k)
                        if (!json_is_string(k))
                                return error_set(e, -EINVAL, "%s: images[%zu]: signers must be strings", what, i);
        }
        return 0;
}

static int deployment_from_json(json_t *j, const char *what, Deployment *ret, Error *e) {
        json_t *generation, *ref, *started, *finished, *error, *signer, *images, *previous, *health, *boot_id,
                *bundle = NULL, *activations = NULL, *trial_entry = NULL, *plan = NULL;
        const char *revision, *source, *action, *result;
        json_int_t id;
        json_error_t jerr;
        Deployment d = {};
        int r;

        /* "bundle", "activations" and "trial-entry" came after the first files were written:
         * optional. */
        if (json_unpack_ex(j, &jerr, JSON_STRICT,
                           "{s:I, s:s, s:o, s:s, s:o, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s?o, s?o, s?o, s?o}",
                           "id", &id, "revision", &revision, "generation", &generation, "source", &source,
                           "ref", &ref, "action", &action, "started", &started, "finished", &finished,
                           "result", &result, "error", &error, "signer", &signer, "images", &images,
                           "previous-generation", &previous, "health", &health, "boot-id", &boot_id, "bundle", &bundle,
                           "activations", &activations, "trial-entry", &trial_entry, "plan", &plan) < 0)
                return error_set(e, -EINVAL, "%s: %s", what, jerr.text);
        if (activations && !(json_is_integer(activations) && json_integer_value(activations) >= 0 &&
                             json_integer_value(activations) <= 1000))
                return error_set(e, -EINVAL, "%s: activations: expected an integer from 0 to 1000", what);
        if (bundle && !json_is_null(bundle) && !json_is_object(bundle))
                return error_set(e, -EINVAL, "%s: bundle: expected an object or null", what);
        if (plan && !json_is_null(plan) && !json_is_object(plan))
                return error_set(e, -EINVAL, "%s: plan: expected an object or null", what);
        r = images_from_json(images, what, e);
        if (r < 0)
                return r;
        if (!json_is_null(health) && !json_is_array(health))
                return error_set(e, -EINVAL, "%s: health: expected an array or null", what);

        if (id <= 0)
                return error_set(e, -EINVAL, "%s: id must be positive", what);
        if (!is_commit_id(revision))
                return error_set(e, -EINVAL, "%s: revision '%s' is not a commit id", what, revision);
        if (!streq(source, "pull") && !streq(source, "bundle") && !streq(source, "rollback") &&
            !streq(source, "recovery"))
                return error_set(e, -EINVAL, "%s: unknown source '%s'", what, source);
        if (!streq(action, "switch") && !streq(action, "boot"))
                return error_set(e, -EINVAL, "%s: unknown action '%s'", what, action);

        d.id = (uint64_t) id;
        d.activations = activations ? (unsigned) json_integer_value(activations) : 0;
        if (run_result_from_string(result, &d.result) < 0) {
                r = error_set(e, -EINVAL, "%s: unknown result '%s'", what, result);
                goto fail;
        }
        d.revision = strdup(revision);
        d.source = strdup(source);
        d.action = strdup(action);
        if (!d.revision || !d.source || !d.action) {
                r = -ENOMEM;
                goto fail;
        }
        if ((r = opt_string(generation, what, &d.generation, e)) < 0 || (r = opt_string(ref, what, &d.ref, e)) < 0 ||
            (r = opt_string(error, what, &d.error, e)) < 0 || (r = opt_string(signer, what, &d.signer, e)) < 0 ||
            (r = opt_string(previous, what, &d.previous_generation, e)) < 0 ||
            (r = opt_string(boot_id, what, &d.boot_id, e)) < 0 ||
            (trial_entry && (r = opt_string(trial_entry, what, &d.trial_entry, e)) < 0) ||
            (r = opt_time(started, what, &d.started, e)) < 0 ||
            (r = opt_time(finished, what, &d.finished, e)) < 0)
                goto fail;
        if (d.generation && d.generation[0] != '/') {
                r = error_set(e, -EINVAL, "%s: generation '%s' is not an absolute path", what, d.generation);
                goto fail;
        }

        d.images = json_is_null(images) ? NULL : json_incref(images);
        d.health = json_is_null(health) ? NULL : json_incref(health);
        d.bundle = !bundle || json_is_null(bundle) ? NULL : json_incref(bundle);
        d.plan = !plan || json_is_null(plan) ? NULL : json_incref(plan);
        *ret = d;
        return 0;
fail:
        deployment_done(&d);
        return r;
}

static int pair_from_json(json_t *j, const char *what, char **ret_revision, char **ret_generation, Error *e) {
        const char *revision;
        json_t *generation;
        json_error_t jerr;
        int r;

        if (json_is_null(j))
                return 0;
        if (json_unpack_ex(j, &jerr, JSON_STRICT, "{s:s, s:o}", "revision", &revision, "generation", &generation) < 0)
                return error_set(e, -EINVAL, "%s: %s", what, jerr.text);
        if (!is_commit_id(revision))
                return error_set(e, -EINVAL, "%s: revision '%s' is not a commit id", what, revision);
        r = opt_string(generation, what, ret_generation, e);
        if (r < 0)
                return r;
        return strdup_null(revision, ret_revision);
}

static int unhealthy_from_json(json_t *j, Unhealthy **ret, Error *e) {
        json_t *generation, *error, *since;
        const char *revision;
        json_error_t jerr;
        Unhealthy *u;
        int r;

        if (!j || json_is_null(j))
                return 0;
        if (json_unpack_ex(j, &jerr, JSON_STRICT, "{s:s, s:o, s:o, s:o}", "revision", &revision, "generation",
                           &generation, "error", &error, "since", &since) < 0)
                return error_set(e, -EINVAL, "unhealthy: %s", jerr.text);
        if (!is_commit_id(revision))
                return error_set(e, -EINVAL, "unhealthy: revision '%s' is not a commit id", revision);
        u = calloc(1, sizeof(Unhealthy));
        if (!u)
                return -ENOMEM;
        u->revision = strdup(revision);
        if (!u->revision)
                r = -ENOMEM;
        else if ((r = opt_string(generation, "unhealthy", &u->generation, e)) >= 0 &&
                 (r = opt_string(error, "unhealthy", &u->error, e)) >= 0)
                r = opt_time(since, "unhealthy", &u->since, e);
        if (r < 0) {
                unhealthy_free(u);
                return r;
        }
        *ret = u;
        return 0;
}

static const char *const wait_reasons[] = { WAIT_REASONS, NULL };

static bool wait_reason_valid(const char *reason) {
        for (size_t i = 0; wait_reasons[i]; i++)
                if (streq(wait_reasons[i], reason))
                        return true;
        return false;
}

static int waiting_check(json_t *w, Error *e) {
        json_t *until, *system, *containers, *plan, *first_seen;
        const char *revision, *reason, *detail;
        json_error_t jerr;
        time_t t;

        if (!w || json_is_null(w))
                return 0;
        if (json_unpack_ex(w, &jerr, JSON_STRICT, "{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "revision", &revision,
                           "reason", &reason, "detail", &detail, "first-seen", &first_seen, "until", &until, "system",
                           &system, "containers", &containers, "plan", &plan) < 0)
                return error_set(e, -EINVAL, "waiting: %s", jerr.text);
        if (!is_commit_id(revision))
                return error_set(e, -EINVAL, "waiting: revision '%s' is not a commit id", revision);
        if (!wait_reason_valid(reason))
                return error_set(e, -EINVAL, "waiting: unknown reason '%s'", reason);
        if (opt_time(first_seen, "waiting: first-seen", &t, e) < 0 || t == 0)
                return error_set(e, -EINVAL, "waiting: first-seen: expected a timestamp");
        if (opt_time(until, "waiting: until", &t, e) < 0)
                return -EINVAL;
        if (!json_is_null(system) && !(json_is_string(system) && json_string_value(system)[0] == '/'))
                return error_set(e, -EINVAL, "waiting: system: expected an absolute path or null");
        if (!json_is_null(containers) && !json_is_object(containers))
                return error_set(e, -EINVAL, "waiting: containers: expected an object or null");
        if (!json_is_null(plan) && !json_is_object(plan))
                return error_set(e, -EINVAL, "waiting: plan: expected an object or null");
        return 0;
}

time_t state_first_seen(const State *s, const char *revision) {
        time_t t = 0;

        if (!s->waiting || !streq_ptr(json_string_value(json_object_get(s->waiting, "revision")), revision))
                return 0;
        (void) parse_timestamp(json_string_value(json_object_get(s->waiting, "first-seen")), &t);
        return t;
}

bool state_set_waiting(State *s, const char *revision, const char *reason, const char *detail, time_t now,
                       time_t until, const char *system, json_t *containers, json_t *plan) {
        time_t first = state_first_seen(s, revision);
        bool changed = !first || !streq_ptr(json_string_value(json_object_get(s->waiting, "reason")), reason);
        json_t *w;

        w = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "revision", revision, "reason", reason, "detail",
                      detail, "first-seen", json_time_or_null(first ?: now), "until", json_time_or_null(until), "system",
                      json_string_or_null(system), "containers", containers ?: json_null(), "plan", plan ?: json_null());
        if (w) {
                json_decref(s->waiting);
                s->waiting = w;
        }
        return changed;
}

void state_abandon(State *s) {
        if (s->pending) {
                deployment_done(s->pending);
                free(s->pending);
                s->pending = NULL;
        }
        s->phase = PHASE_IDLE;
}

void state_clear_waiting(State *s) {
        json_decref(s->waiting);
        s->waiting = NULL;
}

int state_from_json(json_t *j, State **ret, Error *e) {
        _cleanup_state_ State *s = NULL;
        json_t *deployed, *good, *pending, *history, *v, *failed, *sequence = NULL, *unhealthy = NULL, *floor = NULL,
               *waiting = NULL;
        json_int_t version, next_id;
        const char *phase;
        json_error_t jerr;
        size_t i;
        int r;

        /* The version first, alone: a newer agent's file gets a clear message. */
        if (json_unpack_ex(j, &jerr, 0, "{s:I}", "version", &version) < 0)
                return error_set(e, -EINVAL, "not a state file of this agent: %s", jerr.text);
        if (version != STATE_VERSION)
                return error_set(e, -EPROTONOSUPPORT, "unsupported state version %lld (this agent reads version %d)",
                                 (long long) version, STATE_VERSION);

        /* "bundle-sequence", "unhealthy", "time-floor" and "waiting" came later: optional. */
        if (json_unpack_ex(j, &jerr, JSON_STRICT, "{s:I, s:I, s:o, s:o, s:s, s:o, s?o, s?o, s?o, s?o, s:o, s:o}",
                           "version", &version, "next-id", &next_id, "deployed", &deployed, "known-good", &good,
                           "phase", &phase, "failed-revision", &failed, "bundle-sequence", &sequence, "time-floor",
                           &floor, "unhealthy", &unhealthy, "waiting", &waiting, "pending", &pending, "history",
                           &history) < 0)
                return error_set(e, -EINVAL, "not a state file of this agent: a key is missing, unknown or of the wrong type (%s)", jerr.text);
        r = waiting_check(waiting, e);
        if (r < 0)
                return r;
        if (sequence && !json_is_null(sequence) && !(json_is_integer(sequence) && json_integer_value(sequence) > 0))
                return error_set(e, -EINVAL, "bundle-sequence: expected a positive integer or null");
        if (floor && !json_is_null(floor) && !(json_is_integer(floor) && json_integer_value(floor) > 0))
                return error_set(e, -EINVAL, "time-floor: expected a positive integer (seconds since the epoch) or null");

        r = state_new(&s);
        if (r < 0)
                return r;
        if (next_id <= 0)
                return error_set(e, -EINVAL, "next-id must be positive");
        s->next_id = (uint64_t) next_id;
        s->bundle_sequence = json_is_integer(sequence) ? (uint64_t) json_integer_value(sequence) : 0;
        s->time_floor = json_is_integer(floor) ? (int64_t) json_integer_value(floor) : 0;
        s->waiting = waiting && !json_is_null(waiting) ? json_incref(waiting) : NULL;

        if (phase_from_string(phase, &s->phase) < 0)
                return error_set(e, -EINVAL, "unknown phase '%s'", phase);
        r = unhealthy_from_json(unhealthy, &s->unhealthy, e);
        if (r < 0)
                return r;

        r = pair_from_json(deployed, "deployed", &s->deployed_revision, &s->deployed_generation, e);
        if (r < 0)
                return r;
        r = pair_from_json(good, "known-good", &s->good_revision, &s->good_generation, e);
        if (r < 0)
                return r;
        if (!json_is_null(failed) && !(json_is_string(failed) && is_commit_id(json_string_value(failed))))
                return error_set(e, -EINVAL, "failed-revision: expected a commit id or null");
        r = strdup_null(json_is_null(failed) ? NULL : json_string_value(failed), &s->failed_revision);
        if (r < 0)
                return r;

        if (!json_is_null(pending)) {
                s->pending = calloc(1, sizeof(Deployment));
                if (!s->pending)
                        return -ENOMEM;
                r = deployment_from_json(pending, "pending", s->pending, e);
                if (r < 0)
                        return r;
        }
        if ((s->phase == PHASE_IDLE) != (s->pending == NULL))
                return error_set(e, -EINVAL, "phase '%s' does not match the pending deployment", phase);

        if (!json_is_array(history))
                return error_set(e, -EINVAL, "history: expected an array");
        if (json_array_size(history) > STATE_HISTORY_MAX)
                return error_set(e, -EINVAL, "history: more than %d entries", STATE_HISTORY_MAX);
        s->history = calloc(MAX(json_array_size(history), 1u), sizeof(Deployment));
        if (!s->history)
                return -ENOMEM;
        json_array_foreach(history, i, v) {
                char what[32];

                (void) snprintf(what, sizeof(what), "history[%zu]", i);
                r = deployment_from_json(v, what, &s->history[i], e);
                if (r < 0)
                        return r;
                s->n_history = i + 1;
                if (s->history[i].id >= s->next_id)
                        return error_set(e, -EINVAL, "%s: id %llu is not below next-id", what,
                                         (unsigned long long) s->history[i].id);
                if (i > 0 && s->history[i].id <= s->history[i - 1].id)
                        return error_set(e, -EINVAL, "%s: ids are not increasing", what);
        }

        /* The pending deployment was begun last: it goes into the history after every entry. */
        if (s->pending && s->pending->id >= s->next_id)
                return error_set(e, -EINVAL, "pending: id %llu is not below next-id",
                                 (unsigned long long) s->pending->id);
        if (s->pending && s->n_history > 0 && s->pending->id <= s->history[s->n_history - 1].id)
                return error_set(e, -EINVAL, "pending: id %llu is not above the history's",
                                 (unsigned long long) s->pending->id);

        *ret = TAKE_PTR(s);
        return 0;
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
        if (strdup_null(revision, &d->revision) < 0 || strdup_null(ref, &d->ref) < 0 ||
            strdup_null(source, &d->source) < 0 || strdup_null(action, &d->action) < 0) {
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

        if (strdup_null(d->revision, &rev) < 0)
                return -ENOMEM;
        if (strdup_null(d->generation, &gen) < 0) {
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
        if (strdup_null(d->revision, &u->revision) < 0 || strdup_null(running, &u->generation) < 0 ||
            strdup_null(error, &u->error) < 0) {
                unhealthy_free(u);
                return -ENOMEM;
        }
        unhealthy_free(s->unhealthy);
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
        if (strdup_null(error, &d->error) < 0)
                return -ENOMEM;

        /* The revision a pull failed with is remembered, until another one succeeds. */
        if (streq_ptr(d->source, "pull") &&
            (result == RESULT_SUCCESS || result == RESULT_BUILD_FAILED || result == RESULT_ACTIVATION_FAILED ||
             result == RESULT_ROLLED_BACK || result == RESULT_ROLLBACK_FAILED)) {
                free(s->failed_revision);
                s->failed_revision = NULL;
                if (result != RESULT_SUCCESS && strdup_null(d->revision, &s->failed_revision) < 0)
                        return -ENOMEM;
        }
        if (result == RESULT_ROLLBACK_FAILED && set_unhealthy(s, d, error, running) < 0)
                return -ENOMEM;
        if (result == RESULT_SUCCESS || result == RESULT_ROLLED_BACK) {
                unhealthy_free(TAKE_PTR(s->unhealthy));
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

/* ---- last-run.json ---- */

void last_run_done(LastRun *l) {
        free(l->command);
        free(l->revision);
        free(l->error);
        *l = (LastRun) {};
}

int last_run_save(const char *dir, const char *command, RunResult result, const char *revision, const char *error) {
        _cleanup_free_ char *path = path_join(dir, LAST_RUN_FILE), *data = NULL;
        json_t *j;

        if (!path)
                return -ENOMEM;
        j = json_pack("{s:s, s:s, s:o, s:o, s:o}", "command", command, "result", run_result_to_string(result),
                      "time", json_time_or_null(time(NULL)), "revision", json_string_or_null(revision),
                      "error", json_string_or_null(error));
        if (!j)
                return -ENOMEM;
        data = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (!data)
                return -ENOMEM;
        return write_file_atomic(path, data, strlen(data), 0600);
}

int last_run_load(const char *dir, LastRun *ret, Error *e) {
        _cleanup_free_ char *path = path_join(dir, LAST_RUN_FILE), *data = NULL;
        const char *command, *result;
        json_t *j, *t, *rev, *err;
        json_error_t jerr;
        LastRun l = {};
        size_t size;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_full_file(path, 64 * 1024, &data, &size);
        if (r == -ENOENT) {
                *ret = (LastRun) { .result = RESULT_NONE };
                return 0;
        }
        if (r < 0)
                return error_set(e, r, "%s: %s", path, strerror(-r));
        j = json_loadb(data, size, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return error_set(e, -EINVAL, "%s: not valid JSON: %s", path, jerr.text);
        if (json_unpack_ex(j, &jerr, JSON_STRICT, "{s:s, s:s, s:o, s:o, s:o}", "command", &command, "result", &result,
                           "time", &t, "revision", &rev, "error", &err) < 0) {
                r = error_set(e, -EINVAL, "%s: %s", path, jerr.text);
                goto out;
        }
        if (run_result_from_string(result, &l.result) < 0) {
                r = error_set(e, -EINVAL, "%s: unknown result '%s'", path, result);
                goto out;
        }
        l.command = strdup(command);
        if (!l.command) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = opt_time(t, path, &l.time, e)) < 0 || (r = opt_string(rev, path, &l.revision, e)) < 0 ||
            (r = opt_string(err, path, &l.error, e)) < 0)
                goto out;
        *ret = l;
        l = (LastRun) {};
        r = 0;
out:
        last_run_done(&l);
        json_decref(j);
        return r;
}

bool state_raise_time_floor(State *s, int64_t t) {
        if (t <= s->time_floor)
                return false;
        s->time_floor = t;
        return true;
}
