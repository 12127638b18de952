/* SPDX-License-Identifier: MIT */
#include <sys/stat.h>

#include "fileio.h"
#include "log.h"
#include "process.h"
#include "rebuild.h"

int flake_ref_for_revision(const char *repo_path, const char *ref, const char *rev, char **ret) {
        if (asprintf(ret, "git+file://%s?ref=%s&rev=%s", repo_path, ref, rev) < 0)
                return -ENOMEM;
        return 0;
}

static int run_rebuild(const Config *c, const char *verb, const char *flake, const char *workdir, Error *e) {
        _cleanup_free_ char *installable = NULL;
        ProcessOptions opts = {
                .name = "nixos-rebuild",
                .cwd = workdir,
        };

        if (asprintf(&installable, "%s#%s", flake, c->host) < 0)
                return -ENOMEM;

        char *argv[] = { c->system.rebuild_command, (char *) verb, (char *) "--flake", installable, NULL };

        log_info("Running %s %s --flake %s", c->system.rebuild_command, verb, installable);
        return process_run(argv, &opts, NULL, e);
}

int rebuild_build(const Config *c, const char *flake, const char *workdir, char **ret, Error *e) {
        _cleanup_free_ char *result = NULL, *target = NULL;
        int r;

        r = mkdir_parents(workdir, 0755);
        if (r < 0)
                return error_set(e, r, "failed to create '%s': %s", workdir, strerror(-r));

        result = path_join(workdir, "result");
        if (!result)
                return -ENOMEM;
        /* A result left from an earlier build must never be taken for this one. */
        if (unlink(result) < 0 && errno != ENOENT)
                return error_set(e, -errno, "failed to remove '%s': %m", result);

        r = run_rebuild(c, "build", flake, workdir, e);
        if (r < 0)
                return r;

        r = readlink_malloc(result, &target);
        if (r < 0)
                return error_set(e, -EPROTO, "nixos-rebuild build succeeded but left no '%s': %s", result,
                                 strerror(-r));
        if (target[0] != '/')
                return error_set(e, -EPROTO, "'%s' points to '%s', not to a store path", result, target);

        *ret = TAKE_PTR(target);
        return 0;
}

int rebuild_activate(const Config *c, const char *flake, const char *workdir, SystemAction action, Error *e) {
        return run_rebuild(c, system_action_to_string(action), flake, workdir, e);
}

int profile_generation(const Config *c, char **ret, Error *e) {
        int r = canonicalize_path(c->system.profile, ret);

        if (r < 0)
                return error_set(e, r, "cannot resolve the system profile '%s': %s", c->system.profile,
                                 strerror(-r));
        return 0;
}
