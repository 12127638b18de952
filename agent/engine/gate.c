/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "engine/roots.h"
#include "system/event.h"
#include "engine/gate.h"
#include "basic/log.h"
#include "engine/plan.h"
#include "engine/rollout.h"
#include "config/schedule.h"
#include "basic/timeutil.h"

bool gate_window_open(const Config *c, time_t *ret_next) {
        return schedule_open(c->schedule.windows, time(NULL), ret_next);
}

ExitCode gate_wait(Run *run, const char *rev, const char *reason, time_t until, const char *system,
                   json_t *containers, json_t *plan, const char *fmt, ...) {
        char detail[512], when[TIMESTAMP_MAX] = "";
        bool changed;
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        if (until > 0)
                (void) format_timestamp(when, until);

        changed = state_set_waiting(run->state, rev, reason, detail, time(NULL), until, system, json_incref(containers),
                                    json_incref(plan));
        run->waiting = true;
        if (changed)
                log_event(EVENT_WAITING, LOG_NOTICE,
                          EVENT_FIELDS({ "REVISION", rev }, { "REASON", reason }, { "DETAIL", detail },
                                       { "UNTIL", when[0] ? when : NULL }),
                          "Revision %s waits: %s%s%s.", rev, detail, when[0] ? "; until " : "", when);
        else
                /* Once per change of the reason in the journal; a person at a terminal still
                 * wants to know why nothing happened. */
                log_full_errno(isatty(STDERR_FILENO) ? LOG_INFO : LOG_DEBUG, 0, "Revision %s still waits: %s%s%s.", rev,
                               detail, when[0] ? "; until " : "", when);
        if (run_save_state(run) < 0)
                return EXIT_USAGE;
        roots_sync(run);
        return run_result(run, EXIT_OK, RESULT_WAITING, rev, NULL);
}

int gate_rollout_decide(const Config *c, const State *s, GitSource *git, const char *rev, GateVerdict *ret, Error *e) {
        _cleanup_free_ char *data = NULL;
        Rollout ro = {};
        time_t now = time(NULL), first;
        unsigned bucket;
        size_t size;
        Error be = {};
        int r;

        *ret = (GateVerdict) {};
        r = git_source_read_file(git, rev, c->repository.rollout_file, ROLLOUT_FILE_MAX, &data, &size, e);
        if (r == -ENOENT)
                return 0; /* no rollout file: everyone, now */
        if (r >= 0)
                r = rollout_parse(data, size, &ro, e);
        if (r < 0)
                return r == -ENOMEM ? r : error_prefix(e, r, "the rollout file '%s' of revision %s", c->repository.rollout_file, rev);

        if (ro.paused) {
                ret->reason = "rollout-paused";
                (void) snprintf(ret->detail, sizeof(ret->detail), "the rollout is paused (%s)", c->repository.rollout_file);
                return 1;
        }
        if (rollout_bucket(c, rev, &bucket, &be) < 0) {
                /* Without a machine id this host is among the last. */
                log_warning("%s", error_message(&be));
                bucket = 99;
        }
        ret->bucket = bucket;
        if (bucket >= ro.percent) {
                ret->reason = "rollout-percent";
                (void) snprintf(ret->detail, sizeof(ret->detail), "this host's bucket %u is not below the rollout's %u%%",
                                bucket, ro.percent);
                return 1;
        }
        first = state_first_seen(s, rev) ?: now;
        if (ro.delay > 0 && (uint64_t) (now - MIN(first, now)) < ro.delay) {
                ret->reason = "rollout-delay";
                ret->until = first + (time_t) ro.delay;
                (void) snprintf(ret->detail, sizeof(ret->detail),
                                "the rollout's delay of %" PRIu64 " s since this host first saw it is not over", ro.delay);
                return 1;
        }
        (void) snprintf(ret->detail, sizeof(ret->detail), "this host's bucket %u is below %u%%%s", bucket, ro.percent,
                        ro.delay > 0 ? ", the delay is over" : "");
        return 0;
}

ExitCode gate_rollout(Run *run, GitSource *git, const char *rev) {
        GateVerdict v;
        Error e = {};
        int r;

        r = gate_rollout_decide(run->config, run->state, git, rev, &v, &e);
        if (r == -ENOMEM)
                return log_oom_exit();
        if (r < 0)
                return run_refuse(run, "rollout-file", rev, "%s", error_message(&e) ?: strerror(-r));
        if (r > 0)
                return gate_wait(run, rev, v.reason, v.until, NULL, NULL, NULL, "%s", v.detail);
        if (v.detail[0])
                log_info("Rollout: %s; taking revision %s.", v.detail, rev);
        return EXIT_OK;
}
