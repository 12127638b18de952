/* SPDX-License-Identifier: MIT */
/* The check of a delta bundle before anything of it is imported (apply): the machine applied
 * its base, and its store and image blob cache hold what the delta leaves out. */

#include <inttypes.h>
#include <jansson.h>

#include "engine/engine-internal.h"
#include "basic/fileio.h"
#include "bundle/blob-cache.h"
#include "basic/log.h"
#include "system/nix.h"
#include "system/state.h"

/* Whether this machine applied the bundle with that id (a deployment of it in the history, or
 * a sequence at least its). */
static bool bundle_applied_here(const State *s, const char *id, uint64_t sequence) {
        if (s->bundle_sequence >= sequence)
                return true;
        for (size_t i = 0; i < s->n_history; i++)
                if (streq_ptr(json_string_value(json_object_get(s->history[i].bundle, "id")), id))
                        return true;
        return false;
}

/* A delta carries only what its base did not: the machine must have applied the base, its
 * store must hold every path whose NAR the delta leaves out, and its image blob cache every
 * blob the delta leaves out (these are put into the staged layouts here). Refused (exit 3,
 * REASON=base, what is missing listed) with nothing changed otherwise. The history the pack
 * leaves out is checked when the pack is indexed. */
ExitCode engine_check_delta(Run *run, const BundleManifest *m, const char *staging) {
        _cleanup_free_ char *cache = path_join(staging, m->cache ?: ""), *blobs = NULL, *list = NULL;
        _cleanup_strv_free_ char **missing = NULL, **missing_blobs = NULL;
        size_t n;
        Error e = {};
        int r;

        if (!cache || !(blobs = path_join(run->config->state_dir, BLOB_CACHE_DIR)))
                return log_oom_exit();
        if (!bundle_applied_here(run->state, m->base_id, m->base_sequence))
                return run_refuse(run, "base", m->revision,
                                  "a delta of bundle %s (sequence %" PRIu64 "), which this machine has not applied: apply "
                                  "that bundle (or a full one) first",
                                  m->base_id, m->base_sequence);
        if (m->has_closure) {
                r = nix_cache_missing(run->config, cache, m->paths, &missing, &e);
                if (r < 0)
                        return run_refuse(run, "base", m->revision, "cannot tell which paths the delta leaves out: %s",
                                          error_message(&e) ?: strerror(-r));
        }
        r = blob_cache_fill(blobs, staging, m, &missing_blobs, &e);
        if (r == -ENOSPC || r == -EDQUOT)
                return engine_no_space(run, m->revision, staging, 0, r, &e);
        if (r < 0) {
                log_error("%s", error_message(&e) ?: strerror(-r));
                return run_result(run, EXIT_USAGE, RESULT_ERROR, m->revision, error_message(&e));
        }
        for (char **b = missing_blobs; b && *b; b++)
                if (strv_extend(&missing, *b) < 0)
                        return log_oom_exit();
        n = strv_length(missing);
        if (n == 0)
                return EXIT_OK;
        list = strv_join_n(missing, 10, ", ");
        if (!list)
                return log_oom_exit();
        return run_refuse(run, "base", m->revision,
                          "a delta of bundle %s: %zu path(s) and blob(s) it leaves out are not on this machine: %s%s",
                          m->base_id, n, list, n > 10 ? ", ..." : "");
}
