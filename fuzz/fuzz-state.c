/* SPDX-License-Identifier: MIT */
/* The state file reader (agent/system/state.c): the input as state.json, read as state_load() reads
 * it (json_loadb, then state_from_json), and as last-run.json through last_run_load().
 *
 * What must hold for a state that loads: state_to_json() writes it, what it writes loads
 * again and writes the same; and the next deployment the engine would record on top of it
 * (state_begin/state_finish, as after a run interrupted or not) also writes a file that loads,
 * so that no state file that the agent accepts makes it write one it refuses. */

#include <jansson.h>

#include "fuzz-common.h"
#include "basic/macro.h"
#include "system/state.h"

/* Writes s, reads it back; returns what was written. */
static json_t *round_trip(const State *s, const char *what) {
        _cleanup_(json_decrefp) json_t *again = NULL;
        _cleanup_state_ State *s2 = NULL;
        json_t *j = state_to_json(s);
        Error e = {};
        int r;

        if (!j)
                fuzz_fail("%s: state_to_json() failed", what);
        r = state_from_json(j, &s2, &e);
        if (r < 0) {
                char *dump = json_dumps(j, JSON_COMPACT);
                fuzz_fail("%s: the state the agent writes does not load again: %s\n%s", what, e.message, dump);
        }
        again = state_to_json(s2);
        if (!again || !json_equal(j, again)) {
                char *a = json_dumps(j, JSON_COMPACT), *b = again ? json_dumps(again, JSON_COMPACT) : NULL;
                fuzz_fail("%s: the state changes on a second round trip:\n%s\n%s", what, a, b);
        }
        return j;
}

static void state_file(const uint8_t *data, size_t size) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_state_ State *s = NULL;
        Error e = {};
        int r;

        j = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
        if (!j)
                return;
        r = state_from_json(j, &s, &e);
        fuzz_report("state_from_json", r, &e);
        if (r < 0) {
                if (!e.message[0])
                        fuzz_fail("state_from_json() failed with %d and no message", r);
                return;
        }
        json_decref(round_trip(s, "loaded"));

        /* Known (fuzz/known-bugs state-pending-id): the pending deployment's id is not checked
         * against next-id and the history's ids, and finishing it writes a history that does
         * not load. */
        if (fuzz_known("state-pending-id") && s->pending &&
            (s->pending->id >= s->next_id || (s->n_history > 0 && s->pending->id <= s->history[s->n_history - 1].id)))
                return;

        /* What the engine does next: a run finds the deployment in flight and finishes it (as
         * interrupted), or starts a new one and finishes it. */
        if (s->pending) {
                if (state_finish(s, RESULT_INTERRUPTED, "interrupted", NULL) < 0)
                        fuzz_fail("state_finish() of the pending deployment failed");
        } else {
                if (state_begin(s, PHASE_BUILDING, "0123456789abcdef0123456789abcdef01234567", "main", "pull",
                                "switch") < 0)
                        fuzz_fail("state_begin() failed on an idle state");
                if (state_finish(s, RESULT_SUCCESS, NULL, NULL) < 0)
                        fuzz_fail("state_finish() failed");
        }
        json_decref(round_trip(s, "after the next deployment"));
}

static void last_run_file(const uint8_t *data, size_t size) {
        LastRun l = {};
        Error e = {};
        int r;

        if (fuzz_write_file(fuzz_tmp_path(LAST_RUN_FILE), data, size) < 0)
                abort();
        r = last_run_load(fuzz_tmpdir(), &l, &e);
        fuzz_report("last_run_load", r, &e);
        if (r < 0 && !e.message[0])
                fuzz_fail("last_run_load() failed with %d and no message", r);
        if (r >= 0 && !l.command)
                fuzz_fail("last_run_load() succeeded without a command");
        last_run_done(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > STATE_FILE_MAX)
                return 0;
        state_file(data, size);
        last_run_file(data, size);
        return 0;
}
