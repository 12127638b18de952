/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>

#include "basic/fileio.h"
#include "basic/log.h"
#include "system/nix.h"
#include "system/process.h"

#define NIX_OUTPUT_MAX (1024 * 1024)
#define CONTAINERS_MAX 1024

/* Everything one deployment needs from a configuration, in one evaluation: on NixOS most of
 * its cost (seconds, a gigabyte) is the module system, which these attributes share. (Not
 * "outPath" as a name: nix prints a set that has one as that string.) */
#define EVAL_EXPRESSION                                                                                          \
        "config: let t = config.system.build.toplevel; in { "                                                   \
        "drv = t.drvPath; toplevel = t.outPath; "                                                               \
        "containers = builtins.mapAttrs (name: c: c.image) "                                                    \
        "(config.virtualisation.oci-containers.containers or { }); }"

/* A path as a URL's path: everything but unreserved characters and '/' percent-encoded (RFC
 * 3986), so that a state-dir with a space, '#', '%' or '?' stays one path for nix. */
static char *url_path_encode(const char *path) {
        static const char hex[] = "0123456789ABCDEF";
        char *out = malloc(3 * strlen(path) + 1), *o = out;

        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) path; *p; p++)
                if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                    strchr("-._~/", *p))
                        *o++ = (char) *p;
                else {
                        *o++ = '%';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 0xf];
                }
        *o = 0;
        return out;
}

int flake_ref_for_revision(const char *repo_path, const char *ref, const char *rev, char **ret) {
        _cleanup_free_ char *path = url_path_encode(repo_path), *r = url_path_encode(ref);

        if (!path || !r || asprintf(ret, "git+file://%s?ref=%s&rev=%s", path, r, rev) < 0)
                return -ENOMEM;
        return 0;
}

void system_eval_done(SystemEval *s) {
        if (!s)
                return;
        free(s->drv_path);
        free(s->toplevel);
        json_decref(s->containers);
        *s = (SystemEval) {};
}

static bool is_store_path(const char *p) {
        return p && p[0] == '/' && !strstr(p, "/../") && !strstr(p, "/./") && strlen(p) < 4096;
}

/* Runs nix with argv and parses what it prints as JSON. */
/* nix's own reason for a failure: its "error:" line and what follows it (the last such one). */
typedef struct NixError {
        char text[512];
        bool in_error;
} NixError;

static bool nix_error_line(const char *line, size_t len, void *userdata) {
        NixError *ne = userdata;
        size_t k = strlen(ne->text), skip = strspn(line, " ");

        if (len >= 6 && memcmp(line, "error:", 6) == 0) {
                ne->text[0] = 0;
                k = 0;
                ne->in_error = true;
                line += 6;
                len -= 6;
                skip = strspn(line, " ");
        } else if (!ne->in_error || skip >= len)
                return false;
        if (skip < len && k + 2 < sizeof(ne->text))
                (void) snprintf(ne->text + k, sizeof(ne->text) - k, "%s%.*s", k ? " " : "", (int) (len - skip), line + skip);
        return false; /* logged as well */
}

static int nix_json(char **argv, const char *what, json_t **ret, Error *e) {
        _cleanup_free_ char *out = NULL;
        NixError ne = {};
        json_error_t jerr;
        int r;

        r = process_run(argv,
                        &(ProcessOptions) { .name = what, .capture = &out, .capture_max = NIX_OUTPUT_MAX,
                                            .on_line = nix_error_line, .userdata = &ne },
                        NULL, e);
        if (r == -EPROTO && ne.text[0])
                return error_set(e, r, "%s failed: %s", what, ne.text);
        if (r < 0)
                return r;
        *ret = json_loads(out, JSON_REJECT_DUPLICATES, &jerr);
        if (!*ret)
                return error_set(e, -EBADMSG, "%s printed no JSON: %s", what, jerr.text);
        return 0;
}

int nix_evaluate_system(const Config *c, const char *flake, SystemEval *ret, Error *e) {
        _cleanup_free_ char *installable = NULL;
        SystemEval s = {};
        json_t *j = NULL, *containers, *v;
        const char *drv, *out, *name;
        json_error_t jerr;
        int r;

        if (asprintf(&installable, "%s#nixosConfigurations.\"%s\".config", flake, c->host) < 0)
                return -ENOMEM;
        char *argv[] = { c->system.nix_command, (char *) "eval", (char *) "--json", installable,
                         (char *) "--apply", (char *) EVAL_EXPRESSION, NULL };

        log_info("Evaluating %s.", installable);
        r = nix_json(argv, "nix eval", &j, e);
        if (r < 0)
                return error_prefix(e, r, "the evaluation of host '%s' failed", c->host);
        if (json_unpack_ex(j, &jerr, JSON_STRICT, "{s:s, s:s, s:o}", "drv", &drv, "toplevel", &out, "containers",
                           &containers) < 0) {
                json_decref(j);
                return error_set(e, -EBADMSG, "nix eval printed an unexpected object: %s", jerr.text);
        }
        if (!is_store_path(drv) || strlen(drv) < 5 || !streq(drv + strlen(drv) - 4, ".drv") || !is_store_path(out)) {
                json_decref(j);
                return error_set(e, -EBADMSG, "the toplevel's derivation '%s' or output '%s' is not a store path", drv,
                                 out);
        }
        if (!json_is_object(containers) || json_object_size(containers) > CONTAINERS_MAX) {
                json_decref(j);
                return error_set(e, -EBADMSG, "the containers are not an object of at most %d images", CONTAINERS_MAX);
        }
        json_object_foreach(containers, name, v)
                if (!json_is_string(v)) {
                        json_decref(j);
                        return error_set(e, -EBADMSG, "container '%s': image is not a string", name);
                }

        s.drv_path = strdup(drv);
        s.toplevel = strdup(out);
        s.containers = json_incref(containers);
        json_decref(j);
        if (!s.drv_path || !s.toplevel) {
                system_eval_done(&s);
                return -ENOMEM;
        }
        log_info("Host '%s' is %s (%zu container image(s)).", c->host, s.toplevel, json_object_size(s.containers));
        *ret = s;
        return 0;
}

/* Nix 2.13 added DRV^OUTPUTS for store derivations; 2.15 made a bare DRV mean the file
 * itself. So the outputs of a derivation are DRV^* from 2.13 on and DRV before. */
static int nix_has_drv_outputs_syntax(const Config *c, bool *ret, Error *e) {
        static int cached = -1;
        _cleanup_free_ char *out = NULL;
        const char *v;
        unsigned major = 0, minor = 0;
        int r;

        if (cached >= 0) {
                *ret = cached;
                return 0;
        }
        char *argv[] = { c->system.nix_command, (char *) "--version", NULL };
        r = process_run(argv, &(ProcessOptions) { .name = "nix --version", .capture = &out, .capture_max = 4096 }, NULL,
                        e);
        if (r < 0)
                return r;
        /* "nix (Nix) 2.8.0", "nix (Lix, like Nix) 2.91.1": the last word. */
        out[strcspn(out, "\n")] = 0;
        v = strrchr(out, ' ');
        v = v ? v + 1 : out;
        if (sscanf(v, "%u.%u", &major, &minor) != 2)
                return error_set(e, -EBADMSG, "cannot read the version of nix from '%s'", out);
        cached = major > 2 || (major == 2 && minor >= 13);
        *ret = cached;
        return 0;
}

int nix_build_system(const Config *c, const char *drv_path, const char *expected, const char *out_link, bool offline,
                     Error *e) {
        _cleanup_free_ char *installable = NULL, *dir = NULL, *link_copy = strdup(out_link);
        const char *built;
        bool caret = false;
        json_t *j = NULL;
        int r;

        if (!link_copy)
                return -ENOMEM;
        r = nix_has_drv_outputs_syntax(c, &caret, e);
        if (r < 0)
                return r;
        if (asprintf(&installable, "%s%s", drv_path, caret ? "^*" : "") < 0)
                return -ENOMEM;
        dir = strdup(dirname(link_copy));
        if (!dir)
                return -ENOMEM;
        r = mkdir_parents(dir, 0755);
        if (r < 0)
                return error_set(e, r, "cannot create '%s': %s", dir, strerror(-r));
        /* A link left by an earlier build must never be taken for this one. */
        if (unlink(out_link) < 0 && errno != ENOENT)
                return error_set(e, -errno, "cannot remove '%s': %m", out_link);

        char *argv[] = { c->system.nix_command, (char *) "build", (char *) "--json", (char *) "--out-link",
                         (char *) out_link, installable, offline ? (char *) "--option" : NULL, (char *) "substituters",
                         (char *) "", NULL };
        log_info("Building %s%s.", drv_path, offline ? " (offline: no substituter)" : "");
        r = nix_json(argv, "nix build", &j, e);
        if (r < 0)
                return r;
        built = json_string_value(json_object_get(json_object_get(json_array_get(j, 0), "outputs"), "out"));
        if (!built || !streq(built, expected)) {
                r = error_set(e, -EPROTO, "building %s gave '%s', not the evaluated '%s'", drv_path, strna(built),
                              expected);
                json_decref(j);
                return r;
        }
        json_decref(j);
        return 0;
}

int nix_store_has(const Config *c, const char *path, Error *e) {
        ProcessResult res = {};
        Error pe = {};
        int r;

        char *argv[] = { c->system.nix_command, (char *) "path-info", (char *) path, NULL };
        r = process_run(argv, &(ProcessOptions) { .name = "nix path-info", .log_level = LOG_DEBUG }, &res, &pe);
        if (r == 0)
                return 1;
        if (r == -EPROTO && res.exited && res.exit_status == 1)
                return 0;
        return error_set(e, r, "cannot ask nix about '%s': %s", path, error_message(&pe) ?: strerror(-r));
}

/* Another program of nix (nix-store, nix-env): beside system.nix-command when that is a path,
 * else looked up in PATH as well. */
static char *nix_sibling(const Config *c, const char *name) {
        _cleanup_free_ char *dir = NULL;

        if (!strchr(c->system.nix_command, '/'))
                return strdup(name);
        dir = strdup(c->system.nix_command);
        return dir ? path_join(dirname(dir), name) : NULL;
}

/* nix path-info --json --recursive of paths in the binary cache at cache_dir. */
int nix_cache_path_info(const Config *c, const char *cache_dir, char *const *paths, json_t **ret, Error *e) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *store = NULL;

        if (asprintf(&store, "file://%s", cache_dir) < 0)
                return -ENOMEM;
        if (strv_extend(&argv, c->system.nix_command) < 0 || strv_extend(&argv, "path-info") < 0 ||
            strv_extend(&argv, "--json") < 0 || strv_extend(&argv, "--recursive") < 0 ||
            strv_extend(&argv, "--store") < 0 || strv_extend(&argv, store) < 0)
                return -ENOMEM;
        for (char *const *p = paths; p && *p; p++)
                if (strv_extend(&argv, *p) < 0)
                        return -ENOMEM;
        return nix_json(argv, "nix path-info", ret, e);
}

int nix_cache_nar_sizes(const Config *c, const char *cache_dir, char *const *paths, json_t **ret, Error *e) {
        json_t *infos = NULL, *info, *sizes = json_object();
        size_t i;
        int r;

        if (!sizes)
                return -ENOMEM;
        r = nix_cache_path_info(c, cache_dir, paths, &infos, e);
        if (r < 0) {
                json_decref(sizes);
                return r;
        }
        json_array_foreach(infos, i, info) {
                const char *path = json_string_value(json_object_get(info, "path"));
                json_t *size = json_object_get(info, "narSize");

                if (path && json_is_integer(size) && json_object_set(sizes, path, size) < 0) {
                        json_decref(infos);
                        json_decref(sizes);
                        return -ENOMEM;
                }
        }
        json_decref(infos);
        *ret = sizes;
        return 0;
}

int nix_cache_missing(const Config *c, const char *cache_dir, char *const *paths, char ***ret, Error *e) {
        _cleanup_strv_free_ char **argv = NULL, **absent = NULL, **missing = NULL;
        _cleanup_free_ char *nix_store = NULL, *out = NULL;
        json_t *infos = NULL, *info;
        size_t i;
        int r;

        r = nix_cache_path_info(c, cache_dir, paths, &infos, e);
        if (r < 0)
                return r;
        /* The paths whose NAR file the cache does not hold. */
        json_array_foreach(infos, i, info) {
                const char *path = json_string_value(json_object_get(info, "path"));
                const char *url = json_string_value(json_object_get(info, "url"));
                _cleanup_free_ char *file = url ? path_join(cache_dir, url) : NULL;

                if (!path || !url || strstr(url, "..")) {
                        json_decref(infos);
                        return error_set(e, -EBADMSG, "nix path-info: an entry of the bundle's cache without path or url");
                }
                if (!file) {
                        json_decref(infos);
                        return -ENOMEM;
                }
                if (access(file, F_OK) < 0 && strv_extend(&absent, path) < 0) {
                        json_decref(infos);
                        return -ENOMEM;
                }
        }
        json_decref(infos);
        if (!absent) {
                *ret = NULL;
                return 0;
        }

        /* Of those, the ones this machine's store does not have: one nix-store call for all. */
        nix_store = nix_sibling(c, "nix-store");
        if (!nix_store || strv_extend(&argv, nix_store) < 0 || strv_extend(&argv, "--check-validity") < 0 ||
            strv_extend(&argv, "--print-invalid") < 0)
                return -ENOMEM;
        for (char **p = absent; *p; p++)
                if (strv_extend(&argv, *p) < 0)
                        return -ENOMEM;
        r = process_run(argv,
                        &(ProcessOptions) { .name = "nix-store --check-validity", .capture = &out,
                                            .capture_max = NIX_OUTPUT_MAX },
                        NULL, e);
        if (r < 0)
                return r;
        for (char *line = out, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (*line && strv_extend(&missing, line) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(missing);
        return 0;
}

int nix_add_root(const Config *c, const char *link, const char *path, Error *e) {
        _cleanup_free_ char *copy = strdup(link);
        int r;

        if (!copy)
                return -ENOMEM;
        r = mkdir_parents(dirname(copy), 0755);
        if (r < 0)
                return error_set(e, r, "cannot create the directory of '%s': %s", link, strerror(-r));
        char *argv[] = { c->system.nix_command, (char *) "build", (char *) "--out-link", (char *) link, (char *) path,
                         NULL };
        return process_run(argv, &(ProcessOptions) { .name = "nix build --out-link", .log_level = LOG_DEBUG }, NULL, e);
}

/* The sources of a flake and of its inputs, as `nix flake archive --json` prints them:
 * {"path": ..., "inputs": {name: {"path": ..., "inputs": {...}}}}. */
static int collect_flake_paths(json_t *j, char ***paths, unsigned depth) {
        json_t *path = json_object_get(j, "path"), *inputs = json_object_get(j, "inputs"), *v;
        const char *k;

        if (depth > 32)
                return -ELOOP;
        if (json_is_string(path) && strv_extend(paths, json_string_value(path)) < 0)
                return -ENOMEM;
        json_object_foreach(inputs, k, v) {
                int r = collect_flake_paths(v, paths, depth + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

int nix_flake_archive(const Config *c, const char *flake, const char *to, char ***paths, Error *e) {
        json_t *j = NULL;
        int r;

        char *argv[] = { c->system.nix_command, (char *) "flake", (char *) "archive", (char *) "--json",
                         (char *) "--to", (char *) to, (char *) flake, NULL };
        r = nix_json(argv, "nix flake archive", &j, e);
        if (r < 0)
                return error_prefix(e, r, "nix flake archive failed");
        r = collect_flake_paths(j, paths, 0);
        json_decref(j);
        return r;
}

int profile_generation(const Config *c, char **ret, Error *e) {
        int r = canonicalize_path(c->system.profile, ret);

        if (r < 0)
                return error_set(e, r, "cannot resolve the system profile '%s': %s", c->system.profile,
                                 strerror(-r));
        return 0;
}

unsigned profile_generation_number(const Config *c, const char *generation) {
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

static int number_cmp_desc(const void *a, const void *b) {
        unsigned x = *(const unsigned *) a, y = *(const unsigned *) b;
        return x < y ? 1 : x > y ? -1 : 0;
}

int profile_prune(const Config *c, unsigned keep, char *const *protect, unsigned *ret_deleted, Error *e) {
        _cleanup_free_ char *copy = strdup(c->system.profile), *copy2 = strdup(c->system.profile), *current = NULL,
                            *nix_env = NULL;
        _cleanup_free_ unsigned *numbers = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        size_t n = 0, allocated = 0, deleted = 0;
        const char *dir, *base;
        struct dirent *de;
        size_t bl;
        int r;

        *ret_deleted = 0;
        if (!copy || !copy2)
                return -ENOMEM;
        dir = dirname(copy);
        base = basename(copy2);
        bl = strlen(base);
        (void) readlink_malloc(c->system.profile, &current);
        d = opendir(dir);
        if (!d)
                return error_set(e, -errno, "cannot read '%s': %m", dir);
        while ((de = readdir(d))) {
                _cleanup_free_ char *link = NULL, *target = NULL;
                bool protected = false;
                char *end;
                unsigned long num;

                if (strncmp(de->d_name, base, bl) != 0 || de->d_name[bl] != '-')
                        continue;
                num = strtoul(de->d_name + bl + 1, &end, 10);
                if (num == 0 || num > UINT_MAX || !streq(end, "-link"))
                        continue;
                /* The generation the profile points to, and those the caller needs (the known-good
                 * generation, one in flight), stay whatever their age. */
                link = path_join(dir, de->d_name);
                if (!link || readlink_malloc(link, &target) < 0 || streq_ptr(current, de->d_name))
                        continue;
                for (char *const *p = protect; p && *p && !protected; p++)
                        protected = streq(*p, target);
                if (protected)
                        continue;
                if (n == allocated) {
                        size_t k = MAX(allocated * 2, 16u);
                        unsigned *l = realloc(numbers, k * sizeof(unsigned));
                        if (!l)
                                return -ENOMEM;
                        numbers = l;
                        allocated = k;
                }
                numbers[n++] = (unsigned) num;
        }
        if (n == 0)
                return 0;
        /* The newest first: the current generation counts as one of the keep. */
        qsort(numbers, n, sizeof(unsigned), number_cmp_desc);
        nix_env = nix_sibling(c, "nix-env");
        if (!nix_env || strv_extend(&argv, nix_env) < 0 || strv_extend(&argv, "--profile") < 0 ||
            strv_extend(&argv, c->system.profile) < 0 || strv_extend(&argv, "--delete-generations") < 0)
                return -ENOMEM;
        for (size_t i = keep > 0 ? keep - 1 : 0; i < n; i++) {
                char num[16];

                (void) snprintf(num, sizeof(num), "%u", numbers[i]);
                if (strv_extend(&argv, num) < 0)
                        return -ENOMEM;
                deleted++;
        }
        if (deleted == 0)
                return 0;
        r = process_run(argv, &(ProcessOptions) { .name = "nix-env --delete-generations", .timeout = 300 * USEC_PER_SEC },
                        NULL, e);
        if (r < 0)
                return r;
        *ret_deleted = (unsigned) deleted;
        return 0;
}

int profile_set(const Config *c, const char *generation, Error *e) {
        char *argv[] = { c->system.nix_command, (char *) "build", (char *) "--no-link", (char *) "--profile",
                         c->system.profile, (char *) generation, NULL };

        log_info("Pointing the system profile at %s.", generation);
        return process_run(argv, &(ProcessOptions) { .name = "nix build --profile", .timeout = 300 * USEC_PER_SEC },
                           NULL, e);
}

int profile_switch_to(const Config *c, const char *generation, Error *e) {
        unsigned n = profile_generation_number(c, generation);
        char number[16];

        if (n == 0)
                return profile_set(c, generation, e);
        (void) snprintf(number, sizeof(number), "%u", n);
        char *argv[] = { c->system.nix_command, (char *) "profile", (char *) "rollback", (char *) "--profile",
                         c->system.profile, (char *) "--to", number, NULL };
        log_info("Pointing the system profile back at generation %u (%s).", n, generation);
        return process_run(argv, &(ProcessOptions) { .name = "nix profile", .timeout = 300 * USEC_PER_SEC }, NULL, e);
}
