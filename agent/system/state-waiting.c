/* SPDX-License-Identifier: MIT */
/* The waiting record of the state: a new revision that is not deployed yet, and why (rollout,
 * change window, switch inhibitors). Set, cleared and asked for its first-seen time here, and
 * checked here when state.json is read. */
#include <jansson.h>

#include "system/state-internal.h"
#include "basic/strutil.h"
#include "basic/timeutil.h"

static const char *const wait_reasons[] = { WAIT_REASONS, NULL };

static bool wait_reason_valid(const char *reason) {
        for (size_t i = 0; wait_reasons[i]; i++)
                if (streq(wait_reasons[i], reason))
                        return true;
        return false;
}

int state_waiting_check(json_t *w, Error *e) {
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
        if (state_opt_time(first_seen, "waiting: first-seen", &t, e) < 0 || t == 0)
                return error_set(e, -EINVAL, "waiting: first-seen: expected a timestamp");
        if (state_opt_time(until, "waiting: until", &t, e) < 0)
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
                      detail, "first-seen", state_json_time_or_null(first ?: now), "until",
                      state_json_time_or_null(until), "system", state_json_string_or_null(system), "containers",
                      containers ?: json_null(), "plan", plan ?: json_null());
        if (w) {
                json_decref(s->waiting);
                s->waiting = w;
        }
        return changed;
}

void state_clear_waiting(State *s) {
        json_decref(s->waiting);
        s->waiting = NULL;
}
