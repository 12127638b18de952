/* SPDX-License-Identifier: MIT */
/* `verify BUNDLE` and `apply BUNDLE`: offline bundles (docs/bundle-format.md).
 *
 *   verify:  read and verify the whole bundle; write nothing
 *   apply:   verify while extracting into a staging directory below state-dir; only then:
 *            pack -> mirror, fast-forward and commit signature, closure -> store, image
 *            signatures from the bundle, images -> container storage, and the same
 *            deployment as `pull`. The staging directory is removed in every case.
 *
 * The check of a delta bundle is engine-bundle-delta.c; the closure's nix signatures and its
 * import, engine-bundle-closure.c. */

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bundle/bundle.h"
#include "engine/deploy.h"
#include "engine/engine-internal.h"
#include "engine/engine.h"
#include "system/event.h"
#include "basic/fileio.h"
#include "bundle/blob-cache.h"
#include "oci/images.h"
#include "basic/log.h"
#include "system/nix.h"
#include "basic/stop.h"
#include "system/state.h"

#define STAGING_DIR "staging"

static const char *machine_store_dir(void) {
        const char *s = getenv("NIX_STORE_DIR");
        return s && s[0] == '/' ? s : "/nix/store";
}

static void print_info(const BundleInfo *info, const char *path, bool json) {
        const BundleManifest *m = &info->manifest;
        char created[TIMESTAMP_MAX], expires[TIMESTAMP_MAX];

        format_timestamp(created, (time_t) m->created);
        format_timestamp(expires, (time_t) m->expires);
        if (json) {
                json_t *images = json_array();
                json_t *j;
                char *out;

                for (size_t i = 0; images && i < m->n_images; i++)
                        json_array_append_new(images, json_pack("{s:s, s:s}", "reference", m->images[i].reference,
                                                                "digest", m->images[i].digest));
                j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:I, s:b, s:o}", "bundle", path, "id",
                              info->id, "host", m->host, "revision", m->revision, "sequence",
                              (json_int_t) m->sequence, "created", created, "expires", expires, "signer", info->signer,
                              "members", (json_int_t) m->n_members, "bytes", (json_int_t) info->bytes, "closure",
                              m->has_closure, "images", m->has_images && images ? images : json_null());
                if (!m->has_images)
                        json_decref(images);
                out = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
                json_decref(j);
                if (out)
                        puts(out);
                free(out);
                return;
        }
        printf("bundle:    %s\n"
               "id:        %s\n"
               "host:      %s\n"
               "revision:  %s\n"
               "sequence:  %" PRIu64 "\n"
               "created:   %s\n"
               "expires:   %s\n"
               "signer:    %s (%s)\n"
               "members:   %zu, %" PRIu64 " bytes\n"
               "closure:   %s\n",
               path, info->id, m->host, m->revision, m->sequence, created, expires, info->signer, info->signer_path,
               m->n_members, info->bytes, m->has_closure ? "yes" : "no");
        if (!m->has_images)
                printf("images:    not in the bundle\n");
        for (size_t i = 0; i < m->n_images; i++)
                printf("image:     %s %s\n", m->images[i].reference, m->images[i].digest);
}

/* Before anything else: a configuration that can verify nothing, or a file that is not
 * there, is a usage error that touches nothing (not even the lock). */
static ExitCode preflight(const Config *c, const char *path, CosignKeyring **ret) {
        struct stat st;
        Error e = {};
        int r;

        r = bundle_keyring_load(c->bundle.keys, ret, &e);
        if (r < 0) {
                log_error("%s", error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        if (access(path, R_OK) < 0) {
                log_error("cannot open the bundle '%s': %m", path);
                *ret = cosign_keyring_free(*ret);
                return EXIT_USAGE;
        }
        /* Before the lock is taken: a FIFO or a device would keep it while nothing comes. */
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
                log_error("'%s' is not a regular file; a bundle is read from a file.", path);
                *ret = cosign_keyring_free(*ret);
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

/* 0, -EPERM when a verification refused the bundle (e->reason says which), or another -errno. */
static int read_bundle(const Config *c, const CosignKeyring *keys, const char *path, const BundleOptions *o,
                       const State *s, int staging_fd, Progress *progress, BundleInfo *info, Error *e) {
        BundleExpect x = {
                .host = c->host,
                .store_dir = machine_store_dir(),
                .last_sequence = s->bundle_sequence,
                .allow_downgrade = o->allow_downgrade,
                .now = time(NULL),
                .time_floor = s->time_floor,
                .future_tolerance = c->bundle.future_tolerance,
        };
        char a[TIMESTAMP_MAX], b[TIMESTAMP_MAX];

        if ((int64_t) x.now < x.time_floor)
                log_warning("The clock (%s) is behind the time floor (%s), the latest signed time this machine has seen: "
                            "bundles are judged by the floor. Set the clock.",
                            format_timestamp(a, x.now), format_timestamp(b, (time_t) x.time_floor));

        return bundle_read(path,
                           &(BundleReadOptions) {
                                   .keys = keys,
                                   .expect = &x,
                                   .staging_fd = staging_fd,
                                   .progress = progress,
                           },
                           info, e);
}

ExitCode engine_verify_bundle(const Config *c, const char *path, const BundleOptions *o, bool json) {
        _cleanup_(bundle_info_done) BundleInfo info = {};
        _cleanup_(cosign_keyring_freep) CosignKeyring *keys = NULL;
        _cleanup_state_ State *state = NULL;
        ExitCode code;
        Error e = {};
        int r;

        code = preflight(c, path, &keys);
        if (code != EXIT_OK)
                return code;

        /* Read only: no lock, no last-run.json; the state file is replaced atomically. */
        r = state_load(c->state_dir, &state, &e);
        if (r < 0) {
                log_error("Cannot read the state in '%s': %s", c->state_dir, error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        {
                _cleanup_free_ char *label = NULL;
                Progress progress = {};

                if (isatty(STDERR_FILENO) && !o->quiet && asprintf(&label, "Verifying '%s'", path) < 0)
                        return log_oom_exit();
                progress.label = label;
                r = read_bundle(c, keys, path, o, state, -EBADF, label ? &progress : NULL, &info, &e);
                progress_end(&progress);
        }
        if (r == -EPERM) {
                log_error("Refused '%s': %s", path, error_message(&e));
                return EXIT_REFUSED;
        }
        if (r < 0) {
                log_error("%s", error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        print_info(&info, path, json);
        log_info("Bundle '%s' verified: revision %s, sequence %" PRIu64 ", signed by %s.", path,
                 info.manifest.revision, info.manifest.sequence, info.signer);
        return EXIT_OK;
}

/* ---- apply ---- */

typedef struct Staging {
        char *path;
        int fd;
} Staging;

/* A full file system, or a quota, is the machine's state, not the bundle's: never a refusal;
 * a transient failure that names the file system and the space needed. Nothing was changed:
 * the staging directory goes, the mirror only ever gets a pack that was indexed whole. */
ExitCode engine_no_space(Run *run, const char *rev, const char *dir, uint64_t needed, int r, const Error *e) {
        _cleanup_free_ char *msg = NULL;
        struct statvfs sv;
        uint64_t free_bytes = statvfs(dir, &sv) == 0 ? (uint64_t) sv.f_bavail * sv.f_frsize : 0;

        if (asprintf(&msg,
                     "%s on the file system of '%s' (%" PRIu64 " MiB free; the bundle needs about %" PRIu64
                     " MiB there): %s; nothing was changed",
                     r == -EDQUOT ? "the disk quota is exhausted" : "no space left", dir, free_bytes >> 20,
                     (needed + (1 << 20) - 1) >> 20, error_message(e) ?: strerror(-r)) < 0)
                return log_oom_exit();
        log_error("%s", msg);
        return run_result(run, EXIT_TRANSIENT, RESULT_TRANSIENT, rev, msg);
}

/* The journal gets one line per phase of apply, with its size and duration. */
static void log_phase_done(const char *what, const char *path, uint64_t size, usec_t started) {
        usec_t took = now_usec(CLOCK_MONOTONIC) - started;
        double seconds = (double) took / USEC_PER_SEC;

        log_info("%s '%s': %.1f MiB in %.1f s (%.1f MiB/s).", what, path, (double) size / (1024 * 1024), seconds,
                 seconds > 0 ? (double) size / (1024 * 1024) / seconds : 0.0);
}

/* The bytes of the bundle's binary cache (its NARs and narinfos). */
static uint64_t closure_size(const char *staging, const BundleManifest *m) {
        uint64_t size = 0;

        for (size_t i = 0; i < m->n_members; i++)
                if (strncmp(m->members[i].path, m->cache, strlen(m->cache)) == 0 &&
                    m->members[i].path[strlen(m->cache)] == '/')
                        size += m->members[i].size;
        (void) staging;
        return size;
}

static uint64_t bundle_size(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 ? (uint64_t) st.st_size : 0;
}

static void staging_done(Staging *s) {
        closep(&s->fd);
        if (s->path)
                (void) rm_rf(s->path);
        free(s->path);
        *s = (Staging) { .fd = -EBADF };
}

/* A fresh staging directory; what earlier, interrupted runs left there is removed first
 * (the lock is held). */
static int staging_create(const Config *c, Staging *ret, Error *e) {
        _cleanup_free_ char *top = path_join(c->state_dir, STAGING_DIR), *path = NULL;
        int r;

        if (!top)
                return -ENOMEM;
        r = rm_rf(top);
        if (r < 0 && r != -ENOENT)
                return error_set(e, r, "cannot remove the old staging directory '%s': %s", top, strerror(-r));
        if (mkdir(top, 0700) < 0)
                return error_set(e, -errno, "cannot create '%s': %m", top);
        path = path_join(top, "bundle-XXXXXX");
        if (!path)
                return -ENOMEM;
        if (!mkdtemp(path))
                return error_set(e, -errno, "cannot create a staging directory in '%s': %m", top);
        ret->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ret->fd < 0) {
                r = error_set(e, -errno, "cannot open '%s': %m", path);
                (void) rm_rf(path);
                return r;
        }
        ret->path = TAKE_PTR(path);
        return 0;
}

/* The images of the revision come from the bundle's layouts: each must be there, and must be
 * the image the manifest names (its digest). */
static ExitCode images_from_bundle(Run *run, const BundleManifest *m, const char *staging) {
        for (size_t i = 0; i < run->images.n; i++) {
                ImageCheck *ic = &run->images.images[i];
                const BundleImage *bi = NULL;

                for (size_t k = 0; k < m->n_images && !bi; k++)
                        if (streq(m->images[k].reference, ic->reference))
                                bi = &m->images[k];
                if (!bi)
                        return run_refuse(run, "bundle-images", m->revision, "image '%s' (%s) of revision %s is not in the bundle",
                                          ic->name, ic->reference, m->revision);
                ic->layout = path_join(staging, bi->layout);
                ic->digest = strdup(bi->digest);
                if (!ic->layout || !ic->digest)
                        return log_oom_exit();
        }
        return EXIT_OK;
}

static ExitCode import_images(Run *run, const char *rev) {
        Error e = {};
        int r;

        if (run->images.n == 0)
                return EXIT_OK;
        r = images_import(run->config->bundle.image_import_command, &run->images, &e);
        if (r < 0) {
                log_error("Importing the images failed; the system was not changed: %s", error_message(&e));
                return run_result(run, EXIT_DEPLOY_FAILED, RESULT_BUILD_FAILED, rev, error_message(&e));
        }
        return EXIT_OK;
}

/* apply --reevaluate: the bundled flake, evaluated here offline, must give the signed system and
 * containers. Needs the sources of the flake's inputs in the store (bundle create
 * --with-sources). */
static ExitCode reevaluate(Run *run, const BundleManifest *m, const char *flake, SystemEval *ret) {
        SystemEval sys = {};
        Error e = {};
        int r;

        run_phase(run, "evaluate", "Evaluating revision %s offline", m->revision);
        r = nix_evaluate_system(run->config, flake, &sys, &e);
        if (r == -ECANCELED || stop_requested())
                return run_result(run, EXIT_STOPPED, RESULT_INTERRUPTED, m->revision, "stopped while evaluating");
        if (r < 0)
                return run_refuse(run, "reevaluate", m->revision,
                                  "--reevaluate: the bundled flake does not evaluate here (a bundle made without "
                                  "--with-sources has no sources of its inputs): %s",
                                  error_message(&e) ?: strerror(-r));
        if (!streq(sys.toplevel, m->system)) {
                ExitCode code = run_refuse(run, "reevaluate", m->revision,
                                           "--reevaluate: revision %s evaluates to %s here, not to the signed %s",
                                           m->revision, sys.toplevel, m->system);
                system_eval_done(&sys);
                return code;
        }
        if (!json_equal(sys.containers, m->containers)) {
                system_eval_done(&sys);
                return run_refuse(run, "reevaluate", m->revision,
                                  "--reevaluate: the containers of revision %s here are not the signed ones",
                                  m->revision);
        }
        log_info("Revision %s evaluates here to the signed %s.", m->revision, m->system);
        *ret = sys;
        return EXIT_OK;
}

static int record_bundle(Run *run, const BundleInfo *info, const char *path) {
        _cleanup_free_ char *abs = NULL;

        (void) canonicalize_path(path, &abs);
        run->bundle = json_pack("{s:s, s:I, s:I, s:s, s:s}", "id", info->id, "sequence",
                                (json_int_t) info->manifest.sequence, "created", (json_int_t) info->manifest.created,
                                "signer", info->signer, "file", abs ?: path);
        return run->bundle ? 0 : -ENOMEM;
}

/* Step 1: the bundle verified completely while it is extracted to the staging directory. */
static ExitCode stage_bundle(Run *run, const CosignKeyring *keys, const char *path, const BundleOptions *o,
                             Staging *staging, Progress *progress, BundleInfo *info) {
        const BundleManifest *m = &info->manifest;
        usec_t started;
        char seq[32];
        Error e = {};
        int r;

        run_phase(run, "bundle", "Verifying bundle %s", path);
        r = staging_create(run->config, staging, &e);
        if (r < 0) {
                log_error("%s", error_message(&e) ?: strerror(-r));
                return run_result(run, EXIT_USAGE, RESULT_ERROR, NULL, error_message(&e));
        }
        started = now_usec(CLOCK_MONOTONIC);
        r = read_bundle(run->config, keys, path, o, run->state, staging->fd, progress, info, &e);
        if (r == -ENOSPC || r == -EDQUOT)
                return engine_no_space(run, NULL, staging->path, bundle_size(path), r, &e);
        if (r == -EPERM)
                return run_refuse(run, e.reason, NULL, "bundle '%s': %s", path, error_message(&e));
        if (r < 0) {
                log_error("%s", error_message(&e) ?: strerror(-r));
                return run_result(run, EXIT_USAGE, RESULT_ERROR, NULL, error_message(&e));
        }
        log_phase_done("Verified and extracted", path, bundle_size(path), started);
        (void) snprintf(seq, sizeof(seq), "%" PRIu64, m->sequence);
        log_event(EVENT_UPDATE_FOUND, LOG_INFO,
                  EVENT_FIELDS({ "REVISION", m->revision }, { "SOURCE", "bundle" }, { "BUNDLE_ID", info->id },
                               { "BUNDLE_SEQUENCE", seq }, { "BUNDLE_SIGNER", info->signer },
                               { "DEPLOYED_REVISION", run->state->deployed_revision }),
                  "Bundle '%s' verified: revision %s, sequence %" PRIu64 ", signed by %s (%s); deployed: %s.", path,
                  m->revision, m->sequence, info->signer, info->signer_path, strna(run->state->deployed_revision));
        return EXIT_OK;
}

/* Step 2: the history into the mirror; the revision must be in it then. */
static ExitCode import_history(Run *run, const char *path, const BundleManifest *m, const char *staging,
                               char **ret_repo_path, GitSource **ret_git) {
        _cleanup_git_source_ GitSource *git = NULL;
        _cleanup_free_ char *repo_path = NULL, *pack = NULL;
        char resolved[COMMIT_ID_HEX + 1];
        const char *rev = m->revision;
        ExitCode code;
        Error e = {};
        int r;

        code = engine_open_mirror(run, &repo_path, &git);
        if (code != EXIT_OK)
                return run_result(run, code, RESULT_ERROR, rev, "cannot open the local mirror");
        pack = path_join(staging, m->repository);
        if (!pack)
                return log_oom_exit();
        r = git_source_import_pack(git, pack, m->base_revision[0] ? m->base_revision : NULL, &e);
        if (r == -ENOSPC || r == -EDQUOT)
                return engine_no_space(run, rev, repo_path, bundle_size(pack), r, &e);
        if (r == -ENXIO)
                return run_refuse(run, "base", rev, "bundle '%s': %s", path, error_message(&e));
        if (r == -EBADMSG)
                return run_refuse(run, "bundle-integrity", rev, "bundle '%s': %s", path, error_message(&e));
        if (r < 0) {
                log_error("Cannot import the repository pack: %s", error_message(&e) ?: strerror(-r));
                return run_result(run, EXIT_USAGE, RESULT_ERROR, rev, error_message(&e));
        }
        if (git_source_resolve(git, rev, resolved, &e) < 0)
                return run_refuse(run, "bundle-integrity", rev, "bundle '%s': the pack does not hold commit %s", path, rev);
        *ret_repo_path = TAKE_PTR(repo_path);
        *ret_git = TAKE_PTR(git);
        return EXIT_OK;
}

/* Step 3: the system the manifest names, which is what gets activated: its closure imported,
 * and then it must be in the store, or (with --reevaluate, whose evaluation must give exactly
 * it) be built here. */
static ExitCode import_system(Run *run, const char *path, const BundleOptions *o, const BundleManifest *m,
                              const char *staging, const char *flake, Progress *progress, SystemEval *sys,
                              bool *ret_has_system) {
        usec_t started;
        ExitCode code;
        Error e = {};
        int has_system;

        if (m->has_closure) {
                code = engine_verify_nix_signatures(run, m, staging);
                if (code != EXIT_OK)
                        return code;
                started = now_usec(CLOCK_MONOTONIC);
                code = engine_import_closure(run, m, staging, progress);
                if (code != EXIT_OK)
                        return code;
                log_phase_done("Imported the closure of", path, closure_size(staging, m), started);
        }
        progress_end(progress); /* the bundle is in: what follows is the deployment's */
        has_system = nix_store_has(run->config, m->system, &e);
        if (has_system < 0) {
                log_error("%s", error_message(&e) ?: strerror(-has_system));
                return run_result(run, EXIT_USAGE, RESULT_ERROR, m->revision, error_message(&e));
        }
        if (o->reevaluate) {
                code = reevaluate(run, m, flake, sys);
                if (code != EXIT_OK)
                        return code;
        } else if (has_system == 0)
                return run_refuse(run, "bundle-closure", m->revision,
                                  "bundle '%s' %s system %s, and the store does not hold it (apply --reevaluate "
                                  "builds it here from the bundled flake)",
                                  path, m->has_closure ? "does not carry the closure of its" : "carries no closure of its",
                                  m->system);
        *ret_has_system = has_system > 0;
        return EXIT_OK;
}

/* Step 4: the images the manifest names, from the bundle's layouts (or, in a bundle without
 * images, from their registries): verified, imported, and kept for the deltas to come. */
static ExitCode bring_images(Run *run, const BundleManifest *m, const char *staging) {
        _cleanup_free_ char *blobs = NULL;
        ExitCode code;
        Error e = {};
        int r;

        r = image_set_from_containers(m->containers, &run->images, &e);
        if (r < 0) {
                log_error("%s", error_message(&e) ?: strerror(-r));
                return run_result(run, EXIT_USAGE, RESULT_ERROR, m->revision, error_message(&e));
        }
        if (m->has_images) {
                code = images_from_bundle(run, m, staging);
                if (code != EXIT_OK)
                        return code;
        }
        code = engine_check_images(run, m->revision);
        if (code != EXIT_OK || !m->has_images)
                return code;
        code = import_images(run, m->revision);
        if (code != EXIT_OK)
                return code;
        blobs = path_join(run->config->state_dir, BLOB_CACHE_DIR);
        if (!blobs)
                return log_oom_exit();
        (void) blob_cache_keep(blobs, staging, m);
        return EXIT_OK;
}

static ExitCode apply(Run *run, const CosignKeyring *keys, const char *path, const BundleOptions *o) {
        _cleanup_free_ char *label = NULL, *repo_path = NULL, *flake = NULL;
        _cleanup_(progress_end) Progress progress = {};
        _cleanup_(staging_done) Staging staging = { .fd = -EBADF };
        _cleanup_(bundle_info_done) BundleInfo info = {};
        _cleanup_git_source_ GitSource *git = NULL;
        _cleanup_(system_eval_done) SystemEval sys = {};
        const BundleManifest *m = &info.manifest;
        const char *rev = m->revision;
        bool has_system = false;
        ExitCode code;
        Error e = {};
        int r;

        if (run->state->phase == PHASE_PENDING_REBOOT) {
                log_error("A boot-activated deployment waits for its reboot and confirmation; apply the bundle after it.");
                return run_result(run, EXIT_BUSY, RESULT_ERROR, NULL, "a deployment waits for its reboot");
        }
        if (isatty(STDERR_FILENO) && !o->quiet) {
                if (asprintf(&label, "Applying '%s'", path) < 0)
                        return log_oom_exit();
                progress.label = label;
        }

        code = stage_bundle(run, keys, path, o, &staging, label ? &progress : NULL, &info);
        if (code != EXIT_OK)
                return code;
        if (m->has_base) {
                code = engine_check_delta(run, m, staging.path);
                if (code != EXIT_OK)
                        return code;
        }
        code = import_history(run, path, m, staging.path, &repo_path, &git);
        if (code != EXIT_OK)
                return code;

        if (streq_ptr(rev, run->state->deployed_revision)) {
                log_info("Revision %s is deployed already; nothing to do.", rev);
                /* Its signed time is a time this machine has seen: the floor, for good (a
                 * deployment of a bundle raises it when it ends, state_finish). */
                if ((m->sequence > run->state->bundle_sequence) | state_raise_time_floor(run->state, m->created)) {
                        run->state->bundle_sequence = MAX(run->state->bundle_sequence, m->sequence);
                        if (run_save_state(run) < 0)
                                return EXIT_USAGE;
                }
                return run_result(run, EXIT_OK, RESULT_NO_CHANGE, rev, NULL);
        }

        /* The same checks as a pulled revision. */
        code = engine_verify_revision(run, git, rev);
        if (code != EXIT_OK)
                return code;
        r = git_source_pin(git, rev, &e);
        if (r < 0 || flake_ref_for_revision(repo_path, GIT_DEPLOY_REF, rev, &flake) < 0) {
                log_error("Failed to pin the revision: %s", error_message(&e) ?: strerror(-r));
                return run_result(run, EXIT_USAGE, RESULT_ERROR, rev, error_message(&e));
        }

        code = import_system(run, path, o, m, staging.path, flake, label ? &progress : NULL, &sys, &has_system);
        if (code != EXIT_OK)
                return code;
        code = bring_images(run, m, staging.path);
        if (code != EXIT_OK)
                return code;

        if (record_bundle(run, &info, path) < 0)
                return log_oom_exit();
        staging_done(&staging); /* everything needed is imported */
        return deploy_revision(run, &(DeployTarget) {
                                            .revision = rev,
                                            .source = "bundle",
                                            .drv_path = has_system ? NULL : sys.drv_path,
                                            .toplevel = m->system,
                                    });
}

ExitCode engine_apply_bundle(const Config *c, const char *path, const BundleOptions *o) {
        _cleanup_(run_done) Run run = {};
        _cleanup_(cosign_keyring_freep) CosignKeyring *keys = NULL;
        ExitCode code;

        code = preflight(c, path, &keys);
        if (code != EXIT_OK)
                return code;
        code = deploy_begin(&run, c, "apply");
        if (code != EXIT_OK)
                return deploy_exit(&run, code);
        return deploy_exit(&run, apply(&run, keys, path, o));
}
