/* SPDX-License-Identifier: MIT */
/* The closure of a bundle into the nix store (apply, step 3): the nix signatures that
 * bundle.nix-keys requires of it, checked by `nix store verify`, and its import by `nix copy`,
 * whose internal-json log becomes the bundle's progress line on a terminal (ImportProgress). */

#include <jansson.h>

#include "engine/engine-internal.h"
#include "basic/fileio.h"
#include "basic/log.h"
#include "system/process.h"
#include "system/nix.h"

/* bundle.nix-keys: a second, independent key. Every path of the closure (as the bundle's binary
 * cache holds it) must carry a valid narinfo signature by one of these nix keys, checked by nix
 * (`nix store verify`, trusting those keys only): a stolen bundle key alone cannot then put
 * content under a release's store path. */
ExitCode engine_verify_nix_signatures(Run *run, const BundleManifest *m, const char *staging) {
        const Config *c = run->config;
        _cleanup_free_ char *cache = path_join(staging, m->cache), *store = NULL, *keys = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        ProcessResult pr = {};
        Error e = {};
        int r;

        if (strv_length(c->bundle.nix_keys) == 0)
                return EXIT_OK;
        keys = strv_join_n(c->bundle.nix_keys, SIZE_MAX, " ");
        if (!cache || !keys || asprintf(&store, "file://%s", cache) < 0)
                return log_oom_exit();
        if (strv_extend(&argv, c->system.nix_command) < 0 || strv_extend(&argv, "store") < 0 ||
            strv_extend(&argv, "verify") < 0 || strv_extend(&argv, "--store") < 0 || strv_extend(&argv, store) < 0 ||
            strv_extend(&argv, "--recursive") < 0 || strv_extend(&argv, "--no-contents") < 0 ||
            strv_extend(&argv, "--sigs-needed") < 0 || strv_extend(&argv, "1") < 0 ||
            strv_extend(&argv, "--option") < 0 || strv_extend(&argv, "trusted-public-keys") < 0 ||
            strv_extend(&argv, keys) < 0)
                return log_oom_exit();
        for (char **p = m->paths; p && *p; p++)
                if (strv_extend(&argv, *p) < 0)
                        return log_oom_exit();

        run_phase(run, "nix-signatures", "Checking the nix signatures of the closure of %s", m->paths[0]);
        log_info("Checking that every path of the closure is signed by a key of bundle.nix-keys.");
        r = process_run(argv, &(ProcessOptions) { .name = "nix store verify" }, &pr, &e);
        /* nix store verify: 2 in its status when a path is not signed by a trusted key. */
        if (r == -EPROTO && pr.exited && (pr.exit_status & 2))
                return run_refuse(run, "nix-signature", m->revision,
                                  "a path of the bundle's closure is not signed by a key of bundle.nix-keys (nix store "
                                  "verify: see above): the bundle key alone does not make a closure trusted here");
        if (r < 0)
                return run_refuse(run, "nix-signature", m->revision,
                                  "the nix signatures of the bundle's closure could not be checked: %s",
                                  error_message(&e) ?: strerror(-r));
        return EXIT_OK;
}

/* nix copy's progress on a terminal (--log-format internal-json): each path it copied counts
 * its NAR size as imported; its messages are logged; nothing else of it shows. */
typedef struct ImportProgress {
        Progress *progress;
        json_t *sizes;   /* {path: NAR size} */
        json_t *copying; /* {activity id: path} */
} ImportProgress;

static bool import_line(const char *line, size_t len, void *userdata) {
        ImportProgress *ip = userdata;
        const char *action, *text;
        json_t *j, *id;
        char key[32];
        int level;

        if (len < 5 || memcmp(line, "@nix ", 5) != 0)
                return false;
        j = json_loadb(line + 5, len - 5, 0, NULL);
        action = json_string_value(json_object_get(j, "action"));
        if (!action) {
                json_decref(j);
                return false;
        }
        id = json_object_get(j, "id");
        (void) snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        if (streq(action, "start") && json_integer_value(json_object_get(j, "type")) == NIX_ACT_COPY_PATH) {
                json_t *path = json_array_get(json_object_get(j, "fields"), 0);

                if (json_is_string(path))
                        (void) json_object_set(ip->copying, key, path);
        } else if (streq(action, "stop") && json_object_get(ip->copying, key)) {
                const char *path = json_string_value(json_object_get(ip->copying, key));

                ip->progress->import_done += (uint64_t) MAX(json_integer_value(json_object_get(ip->sizes, path)), 0);
                (void) json_object_del(ip->copying, key);
                progress_update(ip->progress, false);
        } else if (streq(action, "msg")) {
                text = json_string_value(json_object_get(j, "raw_msg")) ?: json_string_value(json_object_get(j, "msg"));
                level = (int) json_integer_value(json_object_get(j, "level"));
                if (text)
                        log_full_errno(level == 0 ? LOG_ERR : level == 1 ? LOG_WARNING : level <= 3 ? LOG_INFO : LOG_DEBUG, 0,
                                       "nix copy: %s", text);
        }
        json_decref(j);
        return true;
}

ExitCode engine_import_closure(Run *run, const BundleManifest *m, const char *staging, Progress *progress) {
        const Config *c = run->config;
        _cleanup_free_ char *cache = path_join(staging, m->cache), *from = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        ImportProgress ip = { .progress = progress };
        Error e = {};
        int r;

        if (!cache || asprintf(&from, "file://%s", cache) < 0)
                return log_oom_exit();
        /* No nix signature check: the bundle signature covers every narinfo and NAR
         * (docs/bundle-format.md 5.2), and nix checks each NAR against its narinfo. */
        if (strv_extend(&argv, c->system.nix_command) < 0 || strv_extend(&argv, "copy") < 0 ||
            strv_extend(&argv, "--no-check-sigs") < 0 || strv_extend(&argv, "--from") < 0 ||
            strv_extend(&argv, from) < 0)
                return log_oom_exit();
        /* On a terminal, nix's lines become the bundle's progress line. */
        if (progress && progress->import_total > 0 && nix_cache_nar_sizes(c, cache, m->paths, &ip.sizes, NULL) >= 0) {
                ip.copying = json_object();
                if (!ip.copying || strv_extend(&argv, "--log-format") < 0 || strv_extend(&argv, "internal-json") < 0) {
                        json_decref(ip.sizes);
                        json_decref(ip.copying);
                        return log_oom_exit();
                }
        }
        for (char **p = m->paths; p && *p; p++)
                if (strv_extend(&argv, *p) < 0)
                        return log_oom_exit();

        run_phase(run, "import", "Importing the closure of %s", m->paths[0]);
        log_info("Importing the closure of %s (%zu path(s) with their dependencies).", m->paths[0],
                 strv_length(m->paths));
        r = process_run(argv,
                        &(ProcessOptions) { .name = "nix copy",
                                            .on_line = ip.copying ? import_line : NULL,
                                            .userdata = &ip },
                        NULL, &e);
        json_decref(ip.sizes);
        json_decref(ip.copying);
        if (r < 0) {
                progress_end(progress);
                log_error("Importing the closure failed; the system was not changed: %s", error_message(&e));
                return run_result(run, EXIT_DEPLOY_FAILED, RESULT_BUILD_FAILED, m->revision, error_message(&e));
        }
        /* What nix skipped (valid already) is done as well. */
        if (progress) {
                progress->import_done = progress->import_total;
                progress_end(progress);
        }
        return EXIT_OK;
}
