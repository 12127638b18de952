/* SPDX-License-Identifier: MIT */
/* <state-dir>/last-run.json: the command, result, time, revision and error of the last run,
 * kept apart from the state file so that a refused or transient run is reported without
 * touching state.json. */
#include <jansson.h>

#include "basic/fileio.h"
#include "system/state-internal.h"

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
                      "time", state_json_time_or_null(time(NULL)), "revision", state_json_string_or_null(revision),
                      "error", state_json_string_or_null(error));
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
        if ((r = state_opt_time(t, path, &l.time, e)) < 0 || (r = state_opt_string(rev, path, &l.revision, e)) < 0 ||
            (r = state_opt_string(err, path, &l.error, e)) < 0)
                goto out;
        *ret = l;
        l = (LastRun) {};
        r = 0;
out:
        last_run_done(&l);
        json_decref(j);
        return r;
}
