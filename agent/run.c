/* SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <stdarg.h>

#include "event.h"
#include "lock.h"
#include "log.h"
#include "run.h"

ExitCode log_oom_exit(void) {
        log_error_errno(ENOMEM, "Out of memory.");
        return EXIT_USAGE;
}

void run_done(Run *run) {
        state_free(run->state);
        closep(&run->lock_fd);
        free(run->signer);
        image_set_done(&run->images);
        json_decref(run->bundle);
}

ExitCode run_result(Run *run, ExitCode code, RunResult result, const char *revision, const char *error) {
        int r = last_run_save(run->config->state_dir, run->command, result, revision, error);

        if (r < 0)
                log_warning_errno(r, "Failed to record the result of this run in '%s': %m", run->config->state_dir);
        return code;
}

int run_save_state(Run *run) {
        int r = state_save(run->state, run->config->state_dir);

        if (r < 0)
                return log_error_errno(r, "Failed to write the state file in '%s': %m", run->config->state_dir);
        return 0;
}

ExitCode run_refuse(Run *run, const char *reason, const char *rev, const char *fmt, ...) {
        char msg[ERROR_MESSAGE_MAX];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        run->refusal = reason;
        log_event(EVENT_REFUSED, LOG_ERR,
                  EVENT_FIELDS({ "REVISION", rev }, { "REASON", reason }, { "COMMAND", run->command }, { "ERROR", msg }),
                  "Refused, nothing was changed: %s", msg);
        return run_result(run, EXIT_REFUSED, RESULT_REFUSED, rev, msg);
}

ExitCode run_begin(Run *run, const Config *c, const char *command) {
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
        return EXIT_OK;
}
