/* SPDX-License-Identifier: MIT */
#include "engine.h"
#include "fileio.h"
#include "git.h"
#include "lock.h"
#include "log.h"
#include "rebuild.h"
#include "state.h"

#define REPO_DIR "repo.git"

static ExitCode log_oom_exit(void) {
        log_error_errno(ENOMEM, "Out of memory.");
        return EXIT_USAGE;
}
#define BUILD_DIR "build"

typedef struct Run {
        const Config *config;
        const char *command;
        int lock_fd;
        State *state;
} Run;

static void run_done(Run *run) {
        state_free(run->state);
        closep(&run->lock_fd);
}

/* Records the result of the run in last-run.json (never in the state file). */
static ExitCode run_result(Run *run, ExitCode code, RunResult result, const char *revision, const char *error) {
        int r = last_run_save(run->config->state_dir, run->command, result, revision, error);

        if (r < 0)
                log_warning_errno(r, "Failed to record the result of this run in '%s': %m", run->config->state_dir);
        return code;
}

static int run_save_state(Run *run) {
        int r = state_save(run->state, run->config->state_dir);

        if (r < 0)
                return log_error_errno(r, "Failed to write the state file in '%s': %m", run->config->state_dir);
        return 0;
}

/* Takes the lock and reads the state. A run that finds the phase of an earlier run that was
 * interrupted closes that deployment as interrupted first. */
static ExitCode run_begin(Run *run, const Config *c, const char *command) {
        Error e = {};
        int r;

        *run = (Run) { .config = c, .command = command, .lock_fd = -EBADF };

        r = lock_acquire(c->state_dir);
        if (r == -EBUSY) {
                log_error("Another atticd-agent run holds the lock in '%s'; nothing was done.", c->state_dir);
                return EXIT_BUSY;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to take the lock in '%s': %m", c->state_dir);
                return EXIT_USAGE;
        }
        run->lock_fd = r;

        r = state_load(c->state_dir, &run->state, &e);
        if (r < 0) {
                log_error("The state file is unreadable, nothing was changed: %s", error_message(&e) ?: strerror(-r));
                log_error("Move it away to start over (the agent then forgets what it deployed).");
                return EXIT_USAGE;
        }

        if (run->state->phase != PHASE_IDLE) {
                const Deployment *p = run->state->pending;

                log_warning("The previous run was interrupted while %s revision %s; recording it as interrupted.",
                            phase_to_string(run->state->phase), p->revision);
                r = state_finish(run->state, RESULT_INTERRUPTED, "the agent was stopped before it finished");
                if (r < 0 || run_save_state(run) < 0)
                        return EXIT_USAGE;
        }
        return EXIT_OK;
}

static ExitCode deploy_failed(Run *run, RunResult result, const char *error) {
        int r;

        log_error("Deployment of %s failed: %s", run->state->pending->revision, error);
        r = state_finish(run->state, result, error);
        if (r >= 0)
                (void) run_save_state(run);
        return EXIT_DEPLOY_FAILED;
}

/* Builds, activates and records revision rev from the local mirror. */
static ExitCode deploy_revision(Run *run, const char *repo_path, const char *rev, const char *source) {
        const Config *c = run->config;
        _cleanup_free_ char *flake = NULL, *workdir = NULL, *toplevel = NULL, *now = NULL;
        Error e = {};
        int r;

        r = flake_ref_for_revision(repo_path, GIT_DEPLOY_REF, rev, &flake);
        if (r < 0)
                return log_oom_exit();
        workdir = path_join(c->state_dir, BUILD_DIR);
        if (!workdir)
                return log_oom_exit();

        r = state_begin(run->state, PHASE_BUILDING, rev, c->repository.ref, source,
                        system_action_to_string(c->system.action));
        if (r < 0 || run_save_state(run) < 0)
                return EXIT_USAGE;

        log_info("Building revision %s for host '%s'.", rev, c->host);
        r = rebuild_build(c, flake, workdir, &toplevel, &e);
        if (r < 0)
                return deploy_failed(run, RESULT_BUILD_FAILED, error_message(&e) ?: strerror(-r));

        run->state->pending->generation = strdup(toplevel);
        if (!run->state->pending->generation)
                return log_oom_exit();
        run->state->phase = PHASE_ACTIVATING;
        if (run_save_state(run) < 0)
                return EXIT_USAGE;

        log_info("Activating %s (%s).", toplevel, system_action_to_string(c->system.action));
        r = rebuild_activate(c, flake, workdir, c->system.action, &e);
        if (r < 0)
                return deploy_failed(run, RESULT_ACTIVATION_FAILED, error_message(&e) ?: strerror(-r));

        /* nixos-rebuild evaluated the flake a second time: make sure that what it installed is
         * what was built. */
        r = profile_generation(c, &now, &e);
        if (r < 0)
                return deploy_failed(run, RESULT_ACTIVATION_FAILED, error_message(&e));
        if (!streq(now, toplevel)) {
                char msg[ERROR_MESSAGE_MAX];

                (void) snprintf(msg, sizeof(msg), "the profile '%s' points to '%s', not to the built '%s'",
                                c->system.profile, now, toplevel);
                return deploy_failed(run, RESULT_ACTIVATION_FAILED, msg);
        }

        r = state_finish(run->state, RESULT_SUCCESS, NULL);
        if (r < 0 || run_save_state(run) < 0)
                return EXIT_USAGE;

        log_info("Deployed revision %s as %s.", rev, toplevel);
        return EXIT_OK;
}

static ExitCode source_error(Run *run, int r, const Error *e) {
        const char *msg = error_message(e) ?: strerror(-r);

        switch (r) {
        case -EACCES:
                log_error("The repository refused the credentials (try later, or fix them): %s", msg);
                return run_result(run, EXIT_TRANSIENT, RESULT_TRANSIENT, NULL, msg);
        case -EHOSTUNREACH:
                log_error("The repository is unreachable; nothing was changed: %s", msg);
                return run_result(run, EXIT_TRANSIENT, RESULT_TRANSIENT, NULL, msg);
        case -ENOENT:
                log_error("Refused: %s", msg);
                return run_result(run, EXIT_REFUSED, RESULT_REFUSED, NULL, msg);
        default:
                log_error("Failed to fetch the repository: %s", msg);
                return run_result(run, EXIT_TRANSIENT, RESULT_TRANSIENT, NULL, msg);
        }
}

ExitCode engine_pull(const Config *c) {
        _cleanup_(run_done) Run run = {};
        _cleanup_git_source_ GitSource *git = NULL;
        _cleanup_free_ char *repo_path = NULL;
        const Deployment *last;
        char rev[GIT_REV_HEX + 1];
        ExitCode code;
        Error e = {};
        int r;

        if (!c->repository.present) {
                log_error("%s: no 'repository' section: there is nothing to pull from.", c->path);
                return EXIT_USAGE;
        }

        code = run_begin(&run, c, "pull");
        if (code != EXIT_OK)
                return code;

        repo_path = path_join(c->state_dir, REPO_DIR);
        if (!repo_path)
                return log_oom_exit();

        r = git_source_open(repo_path, &git, &e);
        if (r < 0) {
                log_error("Failed to open the local mirror: %s", error_message(&e) ?: strerror(-r));
                return run_result(&run, EXIT_USAGE, RESULT_ERROR, NULL, error_message(&e));
        }

        log_debug("Fetching %s", c->repository.url);
        r = git_source_fetch(git, c->repository.url, &e);
        if (r < 0)
                return source_error(&run, r, &e);

        r = git_source_resolve(git, c->repository.ref, rev, &e);
        if (r < 0)
                return source_error(&run, r, &e);

        if (streq_ptr(rev, run.state->deployed_revision)) {
                log_info("Revision %s ('%s') is deployed already; nothing to do.", rev, c->repository.ref);
                return run_result(&run, EXIT_OK, RESULT_NO_CHANGE, rev, NULL);
        }

        log_info("New revision %s ('%s'), deployed: %s.", rev, c->repository.ref, strna(run.state->deployed_revision));

        r = git_source_pin(git, rev, &e);
        if (r < 0) {
                log_error("Failed to pin the revision: %s", error_message(&e));
                return run_result(&run, EXIT_USAGE, RESULT_ERROR, rev, error_message(&e));
        }

        code = deploy_revision(&run, repo_path, rev, "pull");
        last = run.state->n_history > 0 ? &run.state->history[run.state->n_history - 1] : NULL;
        if (last && streq(last->revision, rev))
                return run_result(&run, code, last->result, rev, last->error);
        return run_result(&run, code, RESULT_ERROR, rev, "the deployment could not be recorded");
}
