/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <libgen.h>
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

/* offline: a bundle's deployment, whose closure was imported from the bundle; nix must not
 * reach for a substituter (an air-gapped machine has none, and a connected one must not fill
 * in what the signed bundle left out). */
static int run_rebuild(const Config *c, const char *verb, const char *flake, const char *workdir, bool offline,
                       Error *e) {
        _cleanup_free_ char *installable = NULL;
        ProcessOptions opts = {
                .name = "nixos-rebuild",
                .cwd = workdir,
        };

        if (asprintf(&installable, "%s#%s", flake, c->host) < 0)
                return -ENOMEM;

        char *argv[] = { c->system.rebuild_command, (char *) verb, (char *) "--flake", installable,
                         offline ? (char *) "--option" : NULL, (char *) "substituters", (char *) "", NULL };

        log_info("Running %s %s --flake %s%s", c->system.rebuild_command, verb, installable,
                 offline ? " --option substituters ''" : "");
        return process_run(argv, &opts, NULL, e);
}

int rebuild_build(const Config *c, const char *flake, const char *workdir, bool offline, char **ret, Error *e) {
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

        r = run_rebuild(c, "build", flake, workdir, offline, e);
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

int rebuild_activate(const Config *c, const char *flake, const char *workdir, SystemAction action, bool offline,
                     Error *e) {
        return run_rebuild(c, system_action_to_string(action), flake, workdir, offline, e);
}

int profile_generation(const Config *c, char **ret, Error *e) {
        int r = canonicalize_path(c->system.profile, ret);

        if (r < 0)
                return error_set(e, r, "cannot resolve the system profile '%s': %s", c->system.profile,
                                 strerror(-r));
        return 0;
}

/* nix-env next to the configured nix: "nix" gives "nix-env" (from PATH), "/x/bin/nix" gives
 * "/x/bin/nix-env". */
static int nix_env_command(const Config *c, char **ret) {
        const char *slash = strrchr(c->system.nix_command, '/');

        if (!slash)
                *ret = strdup("nix-env");
        else if (asprintf(ret, "%.*s/nix-env", (int) (slash - c->system.nix_command), c->system.nix_command) < 0)
                *ret = NULL;
        return *ret ? 0 : -ENOMEM;
}

/* The number of the profile generation whose link points at generation, or 0. Generation
 * links are <profile>-<N>-link beside the profile. */
static unsigned find_generation_number(const Config *c, const char *generation) {
        _cleanup_free_ char *copy = strdup(c->system.profile), *copy2 = strdup(c->system.profile);
        _cleanup_(closedirp) DIR *d = NULL;
        const char *dir, *base;
        struct dirent *de;
        unsigned found = 0;
        size_t bl;

        if (!copy || !copy2)
                return 0;
        dir = dirname(copy);
        base = basename(copy2);
        bl = strlen(base);
        d = opendir(dir);
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                _cleanup_free_ char *link = NULL, *target = NULL;
                char *end;
                unsigned long n;

                if (strncmp(de->d_name, base, bl) != 0 || de->d_name[bl] != '-')
                        continue;
                n = strtoul(de->d_name + bl + 1, &end, 10);
                if (n == 0 || !streq(end, "-link"))
                        continue;
                link = path_join(dir, de->d_name);
                if (link && readlink_malloc(link, &target) >= 0 && streq(target, generation) && n > found)
                        found = (unsigned) n;
        }
        return found;
}

int profile_switch_to(const Config *c, const char *generation, Error *e) {
        _cleanup_free_ char *nix_env = NULL;
        char number[16];
        unsigned n;
        int r;

        r = nix_env_command(c, &nix_env);
        if (r < 0)
                return r;
        n = find_generation_number(c, generation);
        if (n > 0) {
                (void) snprintf(number, sizeof(number), "%u", n);
                char *argv[] = { nix_env, (char *) "-p", c->system.profile, (char *) "--switch-generation", number, NULL };
                log_info("Pointing the system profile back at generation %u (%s).", n, generation);
                return process_run(argv, &(ProcessOptions) { .name = "nix-env", .timeout = 300 * USEC_PER_SEC }, NULL, e);
        }
        char *argv[] = { nix_env, (char *) "-p", c->system.profile, (char *) "--set", (char *) generation, NULL };
        log_info("Pointing the system profile at %s (a new generation: no generation link holds it).", generation);
        return process_run(argv, &(ProcessOptions) { .name = "nix-env", .timeout = 300 * USEC_PER_SEC }, NULL, e);
}

int generation_activate(const Config *c, const char *generation, SystemAction action, Error *e) {
        _cleanup_free_ char *script = path_join(generation, "bin/switch-to-configuration");

        if (!script)
                return -ENOMEM;
        char *argv[] = { script, (char *) system_action_to_string(action), NULL };
        log_info("Running %s %s", script, system_action_to_string(action));
        return process_run(argv, &(ProcessOptions) { .name = "switch-to-configuration" }, NULL, e);
}
