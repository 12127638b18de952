/* SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <stdarg.h>

#include "engine/engine.h"
#include "engine/roots.h"
#include "engine/engine-internal.h"
#include "engine/gate.h"
#include "system/event.h"
#include "basic/fileio.h"
#include "git/git.h"
#include "oci/images.h"
#include "engine/deploy.h"
#include "basic/log.h"
#include "system/nix.h"
#include "sign/sshsig.h"
#include "engine/run.h"
#include "system/state.h"
#include "basic/stop.h"


/* The local mirror of the client repository below state-dir. */
ExitCode engine_open_mirror(Run *run, char **ret_path, GitSource **ret) {
        _cleanup_free_ char *path = path_join(run->config->state_dir, REPO_DIR);
        Error e = {};
        int r;

        if (!path)
                return log_oom_exit();
        r = git_source_open(path, ret, &e);
        if (r < 0) {
                log_error("Failed to open the local mirror: %s", error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        *ret_path = TAKE_PTR(path);
        return EXIT_OK;
}

/* Fast-forward only: the new revision must descend from the deployed one. Anything else is
 * a history rewrite, a force-push or a downgrade, and is refused unless the configuration
 * allows it. */
static ExitCode verify_fast_forward(Run *run, GitSource *git, const char *rev) {
        const char *deployed = run->state->deployed_revision;
        Error e = {};
        int r;

        if (!deployed)
                return EXIT_OK;
        if (run->config->repository.allow_non_fast_forward) {
                log_debug("allow-non-fast-forward is set: not checking that %s descends from %s.", rev, deployed);
                return EXIT_OK;
        }

        r = git_source_descends_from(git, rev, deployed, &e);
        if (r > 0)
                return EXIT_OK;
        if (r == -ENOENT)
                return run_refuse(run, "non-fast-forward", rev,
                              "the remote no longer has the deployed revision %s, so %s cannot be shown to descend "
                              "from it (history rewritten?)", deployed, rev);
        if (r < 0)
                return run_refuse(run, "non-fast-forward", rev, "cannot check that %s descends from %s: %s", rev, deployed, error_message(&e));

        r = git_source_descends_from(git, deployed, rev, &e);
        if (r > 0)
                return run_refuse(run, "downgrade", rev, "%s is older than the deployed revision %s: a downgrade", rev, deployed);
        return run_refuse(run, "non-fast-forward", rev,
                      "%s does not descend from the deployed revision %s: not a fast-forward (force-push or "
                      "history rewrite)", rev, deployed);
}

/* With repository.allowed-signers, the commit must carry an SSH signature by a listed key. */
static ExitCode verify_commit_signature(Run *run, GitSource *git, const char *rev) {
        const char *signers = run->config->repository.allowed_signers;
        _cleanup_free_ char *signature = NULL, *data = NULL;
        _cleanup_(sshsig_signer_done) SshsigSigner signer = {};
        size_t size;
        Error e = {};
        int r;

        if (!signers)
                return EXIT_OK;

        r = git_source_commit_signature(git, rev, &signature, &data, &size, &e);
        if (r == -ENOENT)
                return run_refuse(run, "commit-signature", rev, "commit %s is not signed, and allowed-signers '%s' requires a signature", rev,
                              signers);
        if (r < 0)
                return run_refuse(run, "commit-signature", rev, "cannot read the signature of commit %s: %s", rev, error_message(&e));

        r = sshsig_verify(signers, signature, data, size, "git", time(NULL), &signer, &e);
        /* The allowed_signers file itself is malformed or unreadable: the machine's
         * configuration, not the revision's fault (exit 2; `config check` says the same). */
        if (r == -EINVAL || r == -EFBIG || r == -ENOENT || r == -EACCES || r == -EISDIR || r == -ENOTDIR ||
            r == -EBADFD || r == -ELOOP || r == -EIO) {
                log_error("%s: repository.allowed-signers: %s; nothing was changed.", run->config->path,
                          error_message(&e) ?: strerror(-r));
                return run_result(run, EXIT_USAGE, RESULT_ERROR, rev, error_message(&e));
        }
        if (r == -ENOMEM)
                return log_oom_exit();
        if (r < 0)
                return run_refuse(run, "commit-signature", rev, "the signature of commit %s is not acceptable: %s", rev,
                              error_message(&e) ?: strerror(-r));

        log_info("Commit %s is signed by %s (%s %s).", rev, signer.principal, signer.key_type, signer.fingerprint);
        if (asprintf(&run->signer, "%s %s", signer.principal, signer.fingerprint) < 0)
                return log_oom_exit();
        return EXIT_OK;
}

ExitCode engine_verify_revision(Run *run, GitSource *git, const char *rev) {
        const char *deployed = run->state->deployed_revision;
        char history[128];
        ExitCode code;

        run_phase(run, "verify", "Verifying revision %s", rev);
        code = verify_fast_forward(run, git, rev);
        if (code != EXIT_OK)
                return code;
        code = verify_commit_signature(run, git, rev);
        if (code != EXIT_OK)
                return code;
        if (!deployed)
                (void) snprintf(history, sizeof(history), "is the first deployment (nothing deployed to compare with)");
        else if (run->config->repository.allow_non_fast_forward)
                (void) snprintf(history, sizeof(history), "was not checked against the deployed %s "
                                "(repository.allow-non-fast-forward)", deployed);
        else
                (void) snprintf(history, sizeof(history), "is a fast-forward of %s", deployed);
        log_event(EVENT_REPOSITORY_VERIFIED, LOG_INFO,
                  EVENT_FIELDS({ "REVISION", rev }, { "DEPLOYED_REVISION", run->state->deployed_revision },
                               { "SIGNER", run->signer }, { "COMMAND", run->command }),
                  "Revision %s %s%s%s.", rev, history, run->signer ? ", signed by " : "", strempty(run->signer));
        return EXIT_OK;
}

/* "name=digest,name=digest" and the distinct signer fingerprints, for the images-verified event. */
static void image_summary(const ImageSet *set, char *digests, size_t dsize, char *signers, size_t ssize) {
        size_t dn = 0, sn = 0;

        digests[0] = signers[0] = 0;
        for (size_t i = 0; i < set->n && dn < dsize; i++)
                dn += (size_t) snprintf(digests + dn, dsize - dn, "%s%s=%s", dn ? "," : "", set->images[i].name,
                                        strna(set->images[i].digest));
        for (size_t i = 0; i < set->n; i++)
                for (char **k = set->images[i].signers; k && *k && sn < ssize; k++)
                        if (!strstr(signers, *k))
                                sn += (size_t) snprintf(signers + sn, ssize - sn, "%s%s", sn ? "," : "", *k);
}

ExitCode engine_evaluate_revision(Run *run, const char *flake, const char *rev, SystemEval *ret) {
        Error e = {};
        int r;

        run_phase(run, "evaluate", "Evaluating revision %s", rev);
        r = nix_evaluate_system(run->config, flake, ret, &e);
        if (r == 0)
                r = image_set_from_containers(ret->containers, &run->images, &e);
        if (r == -ECANCELED || stop_requested())
                return run_result(run, EXIT_STOPPED, RESULT_INTERRUPTED, rev, "stopped while evaluating");
        if (r < 0) {
                log_error("Cannot evaluate revision %s: %s", rev, error_message(&e) ?: strerror(-r));
                /* Recorded and remembered like a failed build: an evaluation costs seconds and a
                 * gigabyte, and the next timer tick would only pay it again. */
                return deploy_failed(run, rev, "pull", error_message(&e) ?: strerror(-r));
        }
        return EXIT_OK;
}

ExitCode engine_check_images(Run *run, const char *rev) {
        Error e = {};
        int r;

        if (run->images.n == 0)
                return EXIT_OK;

        run_phase(run, "images", "Verifying the signatures of %zu image(s)", run->images.n);
        r = images_verify(run->config, &run->images, &e);
        if (r == -EPERM || r == -EBADMSG || r == -EKEYREJECTED || r == -EFBIG)
                return run_refuse(run, "image-signature", rev, "%s", error_message(&e) ?: strerror(-r));
        if (r == -EINVAL || r == -ENOENT) {
                /* images.keys names a file that is not a usable key, or images.keyless a trusted
                 * root that does not load: the configuration's problem. The message names which. */
                log_error("The images cannot be verified (%s); nothing was changed: %s", images_trust_keys(run->config),
                          error_message(&e) ?: strerror(-r));
                return run_result(run, EXIT_USAGE, RESULT_ERROR, rev, error_message(&e));
        }
        if (r < 0) {
                log_error("The registry could not be asked; nothing was changed: %s", error_message(&e) ?: strerror(-r));
                return run_result(run, EXIT_TRANSIENT, RESULT_TRANSIENT, rev, error_message(&e));
        }
        /* No keys, nothing verified (images_verify() said so): no claim that they are signed. */
        if (!images_verification_configured(run->config))
                return EXIT_OK;
        for (size_t i = 0; i < run->images.n; i++)
                log_info("Image '%s' %s is %s, signed by %zu trusted %s%s.", run->images.images[i].name,
                         run->images.images[i].reference, run->images.images[i].digest,
                         strv_length(run->images.images[i].signers),
                         run->config->images.keyless.n_identities > 0 ? "signer(s)" : "key(s)",
                         run->images.images[i].sbom ? ", with an SBOM" : "");
        run->images_verified = (long) run->images.n;
        {
                char digests[2048], signers[1024];

                image_summary(&run->images, digests, sizeof(digests), signers, sizeof(signers));
                log_event(EVENT_IMAGES_VERIFIED, LOG_INFO,
                          EVENT_FIELDS({ "REVISION", rev }, { "IMAGE_DIGESTS", digests },
                                       { "IMAGE_SIGNERS", signers[0] ? signers : NULL }, { "COMMAND", run->command }),
                          "The %zu image(s) of revision %s are signed by the trusted keys.", run->images.n, rev);
        }
        return EXIT_OK;
}

static ExitCode source_error(Run *run, int r, const Error *e) {
        const char *msg = error_message(e) ?: strerror(-r);

        switch (r) {
        case -EACCES:
                log_error("Access was refused (fix the credentials, or try later); nothing was changed: %s", msg);
                return run_result(run, EXIT_TRANSIENT, RESULT_TRANSIENT, NULL, msg);
        case -EHOSTUNREACH:
                log_error("The repository is unreachable; nothing was changed: %s", msg);
                return run_result(run, EXIT_TRANSIENT, RESULT_TRANSIENT, NULL, msg);
        case -ETIMEDOUT:
                log_error("The repository did not answer in time; nothing was changed: %s", msg);
                return run_result(run, EXIT_TRANSIENT, RESULT_TRANSIENT, NULL, msg);
        case -ENOENT:
        case -EKEYREJECTED:
        case -EFBIG:
                return run_refuse(run, "source", NULL, "%s", msg);
        default:
                log_error("Failed to fetch the repository: %s", msg);
                return run_result(run, EXIT_TRANSIENT, RESULT_TRANSIENT, NULL, msg);
        }
}

ExitCode engine_fetch_revision(Run *run, char **ret_repo_path, GitSource **ret_git, char rev[static COMMIT_ID_HEX + 1]) {
        const Config *c = run->config;
        _cleanup_git_source_ GitSource *git = NULL;
        _cleanup_free_ char *repo_path = NULL;
        ExitCode code;
        Error e = {};
        int r;

        /* A local repository that is not there is the configuration's mistake (exit 2), not an
         * unreachable remote (exit 6, which the units take for "try again later"). */
        {
                const char *local = strncmp(c->repository.url, "file://", 7) == 0 ? c->repository.url + 7 :
                                    c->repository.url[0] == '/'                  ? c->repository.url :
                                                                                   NULL;

                if (local && access(local, F_OK) < 0 && errno == ENOENT) {
                        log_error("%s: repository.url: '%s' does not exist on this machine.", c->path, local);
                        return run_result(run, EXIT_USAGE, RESULT_ERROR, NULL, "repository.url does not exist");
                }
        }
        code = engine_open_mirror(run, &repo_path, &git);
        if (code != EXIT_OK)
                return run_result(run, code, RESULT_ERROR, NULL, "cannot open the local mirror");

        run_phase(run, "fetch", "Fetching %s", c->repository.url);
        log_debug("Fetching %s", c->repository.url);
        r = git_source_fetch(git,
                             &(GitRemote) {
                                     .url = c->repository.url,
                                     .http_username = c->repository.http_username,
                                     .http_password_file = c->repository.http_password_file,
                                     .ca_file = c->repository.ca_file,
                                     .ssh_key = c->repository.ssh_key,
                                     .ssh_known_hosts = c->repository.ssh_known_hosts,
                                     .connect_timeout = c->repository.connect_timeout,
                                     .stall_timeout = c->repository.stall_timeout,
                                     .fetch_timeout = c->repository.fetch_timeout,
                                     .max_fetch_size = (uint64_t) c->repository.max_fetch_mib << 20,
                             },
                             &e);
        if (r < 0)
                return source_error(run, r, &e);

        r = git_source_resolve(git, c->repository.ref, rev, &e);
        if (r < 0)
                return source_error(run, r, &e);
        if (stop_requested())
                return run_result(run, EXIT_STOPPED, RESULT_INTERRUPTED, rev, "stopped after the fetch");
        *ret_repo_path = TAKE_PTR(repo_path);
        *ret_git = TAKE_PTR(git);
        return EXIT_OK;
}


/* The system of rev that an earlier run built outside every change window (the waiting
 * record): still in the window's wait, or the system to activate without evaluating it
 * again. Nothing (sys empty) when there is no such system. */
static ExitCode built_ahead(Run *run, const char *rev, SystemEval *sys) {
        json_t *w = run->state->waiting;
        const char *system = json_string_value(json_object_get(w, "system"));
        json_t *containers = json_object_get(w, "containers");
        time_t next = 0;
        Error e = {};
        int r;

        if (!system || !streq_ptr(json_string_value(json_object_get(w, "revision")), rev) ||
            nix_store_has(run->config, system, &e) <= 0)
                return EXIT_OK;
        if (!gate_window_open(run->config, &next))
                return gate_wait(run, rev, "window", next, system, containers, json_object_get(w, "plan"),
                                 "outside every change window (schedule.windows); built, to be activated in the next");
        log_info("Revision %s was built before its change window: %s.", rev, system);
        sys->toplevel = strdup(system);
        sys->containers = json_incref(json_is_object(containers) ? containers : NULL);
        if (!sys->toplevel)
                return log_oom_exit();
        r = image_set_from_containers(sys->containers, &run->images, &e);
        if (r < 0) {
                log_error("%s", error_message(&e) ?: strerror(-r));
                return run_result(run, EXIT_USAGE, RESULT_ERROR, rev, error_message(&e));
        }
        return EXIT_OK;
}

static ExitCode pull(Run *run, const Config *c, const PullOptions *o) {
        _cleanup_git_source_ GitSource *git = NULL;
        _cleanup_free_ char *repo_path = NULL, *flake = NULL;
        _cleanup_(system_eval_done) SystemEval sys = {};
        char rev[COMMIT_ID_HEX + 1];
        ExitCode code;
        Error e = {};
        int r;

        if (run->state->phase == PHASE_PENDING_REBOOT) {
                /* A boot-activated deployment waits for its reboot and confirmation: nothing
                 * new on top of it. */
                return EXIT_OK;
        }

        code = engine_fetch_revision(run, &repo_path, &git, rev);
        if (code != EXIT_OK)
                return code;

        if (streq_ptr(rev, run->state->deployed_revision)) {
                log_info("Revision %s ('%s') is deployed already; nothing to do.", rev, c->repository.ref);
                /* A revision that waited and was deployed by other means, or a ref moved back. */
                if (run->state->waiting) {
                        state_clear_waiting(run->state);
                        if (run_save_state(run) < 0)
                                return EXIT_USAGE;
                        roots_sync(run);
                }
                return run_result(run, EXIT_OK, RESULT_NO_CHANGE, rev, NULL);
        }

        if (streq_ptr(rev, run->state->failed_revision) && !o->retry) {
                log_warning("Revision %s ('%s') failed before; not trying it again until '%s' moves "
                            "(or pull --retry).", rev, c->repository.ref, c->repository.ref);
                return run_result(run, EXIT_OK, RESULT_KNOWN_BAD, rev, "failed before");
        }

        /* Once per revision, not once per run while it waits. */
        if (state_first_seen(run->state, rev) == 0)
                log_event(EVENT_UPDATE_FOUND, LOG_INFO,
                          EVENT_FIELDS({ "REVISION", rev }, { "REF", c->repository.ref }, { "SOURCE", "pull" },
                                       { "DEPLOYED_REVISION", run->state->deployed_revision }),
                          "New revision %s ('%s'), deployed: %s.", rev, c->repository.ref,
                          strna(run->state->deployed_revision));

        code = engine_verify_revision(run, git, rev);
        if (code != EXIT_OK)
                return code;
        code = gate_rollout(run, git, rev);
        if (code != EXIT_OK || run->waiting)
                return code;

        r = git_source_pin(git, rev, &e);
        if (r < 0) {
                log_error("Failed to pin the revision: %s", error_message(&e));
                return run_result(run, EXIT_USAGE, RESULT_ERROR, rev, error_message(&e));
        }

        r = flake_ref_for_revision(repo_path, GIT_DEPLOY_REF, rev, &flake);
        if (r < 0)
                return log_oom_exit();

        /* Built ahead of its change window: no second evaluation, no second build. */
        code = built_ahead(run, rev, &sys);
        if (code != EXIT_OK || run->waiting)
                return code;
        if (!sys.toplevel) {
                code = engine_evaluate_revision(run, flake, rev, &sys);
                if (code != EXIT_OK)
                        return code;
        }
        code = engine_check_images(run, rev);
        if (code != EXIT_OK)
                return code;

        return deploy_revision(run, &(DeployTarget) {
                                            .revision = rev,
                                            .source = "pull",
                                            .drv_path = sys.drv_path,
                                            .toplevel = sys.toplevel,
                                            .schedule = true,
                                            .containers = sys.containers,
                                    });
}

ExitCode engine_pull(const Config *c, const PullOptions *o) {
        _cleanup_(run_done) Run run = {};
        ExitCode code;

        if (!c->repository.present || !c->repository.url) {
                log_error("%s: no repository.url: there is nothing to pull from.", c->path);
                return EXIT_USAGE;
        }
        code = deploy_begin(&run, c, "pull");
        if (code != EXIT_OK)
                return deploy_exit(&run, code);
        return deploy_exit(&run, pull(&run, c, o));
}

/* The images of the revision to verify: the deployed revision's from its record (no
 * evaluation); another's, or one without a usable record, from one evaluation. */
static ExitCode images_to_verify(Run *run, const char *rev_arg, char rev[static COMMIT_ID_HEX + 1]) {
        const State *s = run->state;
        _cleanup_git_source_ GitSource *git = NULL;
        _cleanup_free_ char *repo_path = NULL, *flake = NULL;
        const Deployment *d;
        ExitCode code;
        Error e = {};
        int r;

        if (!rev_arg && !s->deployed_revision) {
                log_error("Nothing is deployed yet; give a revision with --rev.");
                return EXIT_USAGE;
        }
        if (!rev_arg || streq(rev_arg, s->deployed_revision)) {
                (void) snprintf(rev, COMMIT_ID_HEX + 1, "%s", s->deployed_revision);
                d = state_deployed_entry(s);
                if (d && d->images && image_set_from_record(d->images, &run->images, &e) == 0) {
                        log_debug("The images of revision %s as deployed: %zu.", rev, run->images.n);
                        return EXIT_OK;
                }
                log_debug("No record of the images of revision %s: evaluating it.", rev);
        }

        code = engine_open_mirror(run, &repo_path, &git);
        if (code != EXIT_OK)
                return code;
        r = git_source_resolve(git, rev_arg ?: s->deployed_revision, rev, &e);
        if (r < 0) {
                log_error("%s", error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        if (streq(rev, s->deployed_revision) && rev_arg && !streq(rev_arg, rev))
                return images_to_verify(run, NULL, rev);
        r = git_source_pin_ref(git, GIT_VERIFY_REF, rev, &e);
        if (r < 0 || flake_ref_for_revision(repo_path, GIT_VERIFY_REF, rev, &flake) < 0) {
                log_error("Failed to pin the revision: %s", error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        r = images_of_revision(run->config, flake, &run->images, &e);
        if (r < 0) {
                log_error("Cannot list the images of revision %s: %s", rev, error_message(&e) ?: strerror(-r));
                return EXIT_DEPLOY_FAILED;
        }
        return EXIT_OK;
}

ExitCode engine_verify_images(const Config *c, const char *rev_arg, bool json) {
        _cleanup_(run_done) Run run = {};
        char rev[COMMIT_ID_HEX + 1];
        bool refused, unchecked;
        ExitCode code;
        Error e = {};
        int r;

        code = run_begin(&run, c, "verify-images");
        if (code != EXIT_OK)
                return code;
        code = images_to_verify(&run, rev_arg, rev);
        if (code != EXIT_OK)
                return code;

        r = run.images.n > 0 ? images_verify(c, &run.images, &e) : 0;
        refused = r == -EPERM || r == -EBADMSG || r == -EKEYREJECTED || r == -EFBIG;
        /* Nothing was checked: no keys, or a key or the registry could not be used. */
        unchecked = (r < 0 && !refused) || !images_verification_configured(c);
        if (r == 0)
                run.images_verified = images_verification_configured(c) ? (long) run.images.n : 0;
        if (refused) {
                run.refusal = "image-signature";
                log_event(EVENT_REFUSED, LOG_ERR,
                          EVENT_FIELDS({ "REVISION", rev }, { "REASON", "image-signature" }, { "COMMAND", "verify-images" },
                                       { "ERROR", error_message(&e) }),
                          "Refused: %s", error_message(&e) ?: strerror(-r));
        }
        run_metrics(&run, r == 0 ? RESULT_SUCCESS : refused ? RESULT_REFUSED :
                          r == -EINVAL || r == -ENOENT ? RESULT_ERROR : RESULT_TRANSIENT);

        if (json) {
                json_t *j = json_pack("{s:s, s:o, s:b}", "revision", rev, "images", image_set_to_json(&run.images),
                                      "verified", r == 0);
                char *out = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

                json_decref(j);
                if (out)
                        puts(out);
                free(out);
        } else
                for (size_t i = 0; i < run.images.n; i++) {
                        const ImageCheck *ic = &run.images.images[i];

                        char error[ERROR_MESSAGE_MAX]; /* a registry's words: no control characters */

                        printf("%-16s %-60s %s %s\n", ic->name, ic->reference, ic->digest ?: "-",
                               ic->result != 0 ? log_escape(error, sizeof(error), ic->error.message) :
                               unchecked        ? "not verified" : "ok");
                }

        if (refused)
                return EXIT_REFUSED;
        if (r == -EINVAL || r == -ENOENT) {
                log_error("The images cannot be verified (%s): %s", images_trust_keys(c), error_message(&e) ?: strerror(-r));
                return EXIT_USAGE;
        }
        if (r < 0) {
                log_error("The registry could not be asked: %s", error_message(&e) ?: strerror(-r));
                return EXIT_TRANSIENT;
        }
        if (unchecked)
                log_warning("The %zu image(s) of revision %s were not verified: images.keys is empty.", run.images.n, rev);
        else
                log_info("All %zu image(s) of revision %s are signed by the trusted keys.", run.images.n, rev);
        return EXIT_OK;
}

ExitCode engine_rollback(const Config *c) {
        _cleanup_(run_done) Run run = {};
        ExitCode code;

        code = deploy_begin(&run, c, "rollback");
        if (code != EXIT_OK)
                return code;
        return deploy_rollback_to_known_good(&run);
}

ExitCode engine_confirm(const Config *c) {
        _cleanup_(run_done) Run run = {};
        ExitCode code;

        code = run_begin(&run, c, "confirm");
        if (code != EXIT_OK)
                return code;
        if (run.state->phase != PHASE_PENDING_REBOOT && run.state->phase != PHASE_IDLE)
                return deploy_recover(&run);
        return deploy_confirm(&run);
}
