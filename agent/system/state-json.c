/* SPDX-License-Identifier: MIT */
/* The state as JSON: state_to_json() and the strict state_from_json(), with the writers and
 * readers of its parts (a deployment, the deployed and known-good pairs, the unhealthy record,
 * the history), and the small JSON helpers that the other files of the state share: a string
 * or null, a timestamp or null, both ways. */
#include <jansson.h>

#include "system/state-internal.h"
#include "basic/strutil.h"
#include "basic/timeutil.h"

/* ---- to JSON ---- */

json_t *state_json_string_or_null(const char *s) {
        return s ? json_string(s) : json_null();
}

json_t *state_json_time_or_null(time_t t) {
        char buf[TIMESTAMP_MAX];
        return t > 0 ? json_string(format_timestamp(buf, t)) : json_null();
}

static json_t *deployment_to_json(const Deployment *d) {
        return json_pack("{s:I, s:s, s:o, s:s, s:o, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o}",
                         "id", (json_int_t) d->id,
                         "revision", d->revision,
                         "generation", state_json_string_or_null(d->generation),
                         "source", d->source,
                         "ref", state_json_string_or_null(d->ref),
                         "action", d->action,
                         "started", state_json_time_or_null(d->started),
                         "finished", state_json_time_or_null(d->finished),
                         "result", run_result_to_string(d->result),
                         "error", state_json_string_or_null(d->error),
                         "signer", state_json_string_or_null(d->signer),
                         "images", d->images ? json_incref(d->images) : json_null(),
                         "previous-generation", state_json_string_or_null(d->previous_generation),
                         "health", d->health ? json_incref(d->health) : json_null(),
                         "boot-id", state_json_string_or_null(d->boot_id),
                         "trial-entry", state_json_string_or_null(d->trial_entry),
                         "bundle", d->bundle ? json_incref(d->bundle) : json_null(),
                         "activations", (json_int_t) d->activations,
                         "plan", d->plan ? json_incref(d->plan) : json_null());
}

static json_t *unhealthy_to_json(const Unhealthy *u) {
        if (!u)
                return json_null();
        return json_pack("{s:s, s:o, s:o, s:o}", "revision", u->revision, "generation",
                         state_json_string_or_null(u->generation), "error", state_json_string_or_null(u->error),
                         "since", state_json_time_or_null(u->since));
}

static json_t *pair_to_json(const char *revision, const char *generation) {
        if (!revision)
                return json_null();
        return json_pack("{s:s, s:o}", "revision", revision, "generation", state_json_string_or_null(generation));
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
                         "failed-revision", state_json_string_or_null(s->failed_revision),
                         "bundle-sequence", s->bundle_sequence > 0 ? json_integer((json_int_t) s->bundle_sequence) : json_null(),
                         "time-floor", s->time_floor > 0 ? json_integer((json_int_t) s->time_floor) : json_null(),
                         "unhealthy", unhealthy_to_json(s->unhealthy),
                         "waiting", s->waiting ? json_incref(s->waiting) : json_null(),
                         "pending", s->pending ? deployment_to_json(s->pending) : json_null(),
                         "history", history);
}

/* ---- from JSON, strictly ---- */

int state_opt_string(json_t *v, const char *what, char **ret, Error *e) {
        if (json_is_null(v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return error_set(e, -EINVAL, "%s: expected a string or null", what);
        return state_strdup_null(json_string_value(v), ret);
}

int state_opt_time(json_t *v, const char *what, time_t *ret, Error *e) {
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
        if ((r = state_opt_string(generation, what, &d.generation, e)) < 0 ||
            (r = state_opt_string(ref, what, &d.ref, e)) < 0 || (r = state_opt_string(error, what, &d.error, e)) < 0 ||
            (r = state_opt_string(signer, what, &d.signer, e)) < 0 ||
            (r = state_opt_string(previous, what, &d.previous_generation, e)) < 0 ||
            (r = state_opt_string(boot_id, what, &d.boot_id, e)) < 0 ||
            (trial_entry && (r = state_opt_string(trial_entry, what, &d.trial_entry, e)) < 0) ||
            (r = state_opt_time(started, what, &d.started, e)) < 0 ||
            (r = state_opt_time(finished, what, &d.finished, e)) < 0)
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
        r = state_opt_string(generation, what, ret_generation, e);
        if (r < 0)
                return r;
        return state_strdup_null(revision, ret_revision);
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
        else if ((r = state_opt_string(generation, "unhealthy", &u->generation, e)) >= 0 &&
                 (r = state_opt_string(error, "unhealthy", &u->error, e)) >= 0)
                r = state_opt_time(since, "unhealthy", &u->since, e);
        if (r < 0) {
                state_unhealthy_free(u);
                return r;
        }
        *ret = u;
        return 0;
}

/* The history into s (whose next-id is read already): at most STATE_HISTORY_MAX deployments,
 * their ids increasing and below next-id. */
static int history_from_json(json_t *history, State *s, Error *e) {
        json_t *v;
        size_t i;
        int r;

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
        return 0;
}

int state_from_json(json_t *j, State **ret, Error *e) {
        _cleanup_state_ State *s = NULL;
        json_t *deployed, *good, *pending, *history, *failed, *sequence = NULL, *unhealthy = NULL, *floor = NULL,
               *waiting = NULL;
        json_int_t version, next_id;
        const char *phase;
        json_error_t jerr;
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
        r = state_waiting_check(waiting, e);
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
        r = state_strdup_null(json_is_null(failed) ? NULL : json_string_value(failed), &s->failed_revision);
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

        r = history_from_json(history, s, e);
        if (r < 0)
                return r;

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
