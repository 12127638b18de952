/* SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <stdarg.h>

#include "system/event.h"
#include "system/lock.h"
#include "system/notify.h"
#include "basic/log.h"
#include "engine/run.h"

ExitCode log_oom_exit(void) {
        log_error_errno(ENOMEM, "Out of memory.");
        return EXIT_USAGE;
}


static void phase_end(Run *run) {
        usec_t now = now_usec(CLOCK_MONOTONIC);

        if (run->n_phases > 0 && run->phase_start > 0)
                run->phases[run->n_phases - 1].duration = now - run->phase_start;
        run->phase_start = 0;
}

void run_phase(Run *run, const char *phase, const char *fmt, ...) {
        char status[512];
        va_list ap;
        size_t i;

        va_start(ap, fmt);
        (void) vsnprintf(status, sizeof(status), fmt, ap);
        va_end(ap);
        notify_status("%s", status);

        phase_end(run);
        /* A phase entered again (check after a rollback) counts from its last start. */
        for (i = 0; i < run->n_phases && !streq(run->phases[i].name, phase); i++)
                ;
        if (i == run->n_phases) {
                if (run->n_phases == METRICS_PHASES_MAX)
                        return;
                run->n_phases++;
        } else if (i != run->n_phases - 1) {
                MetricsPhase p = run->phases[i];
                memmove(run->phases + i, run->phases + i + 1, (run->n_phases - i - 1) * sizeof(MetricsPhase));
                run->phases[run->n_phases - 1] = p;
        }
        run->phases[run->n_phases - 1] = (MetricsPhase) { .name = phase };
        run->phase_start = now_usec(CLOCK_MONOTONIC);
}

/* The metrics of the run, once, with its last result (a step may record one that a later one
 * overrides: a rollback's deploy_finish, then the rollback command's own). */
static void record_metrics(Run *run) {
        MetricsRun m = {
                .command = run->command,
                .result = run->result,
                .end = time(NULL),
                .refusal = run->refusal,
                .images_verified = run->images_verified,
                .duration = run->start > 0 ? now_usec(CLOCK_MONOTONIC) - run->start : 0,
        };

        if (!run->result_set || !run->config)
                return;
        memcpy(m.phases, run->phases, sizeof(m.phases));
        m.n_phases = run->n_phases;
        (void) metrics_record(run->config, run->state, &m);
        run->result_set = false;
}

void run_done(Run *run) {
        record_metrics(run);
        state_free(run->state);
        closep(&run->lock_fd);
        free(run->signer);
        image_set_done(&run->images);
        json_decref(run->bundle);
}

void run_metrics(Run *run, RunResult result) {
        phase_end(run);
        run->result = result;
        run->result_set = true;
        notify_status("Idle: last %s %s", run->command, run_result_to_string(result));
}

ExitCode run_result(Run *run, ExitCode code, RunResult result, const char *revision, const char *error) {
        int r = last_run_save(run->config->state_dir, run->command, result, revision, error);

        if (r < 0)
                log_warning_errno(r, "Failed to record the result of this run in '%s': %m", run->config->state_dir);
        run_metrics(run, result);
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

        *run = (Run) {
                .config = c,
                .command = command,
                .lock_fd = -EBADF,
                .start = now_usec(CLOCK_MONOTONIC),
                .images_verified = -1,
        };

        r = lock_acquire(c->state_dir, &e);
        if (r == -EBUSY) {
                log_error("Another atticd-agent run holds the lock in '%s'; nothing was done.", c->state_dir);
                /* Counted all the same (last_run_success 0, result busy), with the state as the
                 * other run last wrote it: it is only ever replaced whole. */
                (void) state_load(c->state_dir, &run->state, NULL);
                run->result = RESULT_BUSY;
                run->result_set = true;
                return EXIT_BUSY;
        }
        if (r < 0) {
                log_error("Cannot take the lock in '%s': %s; nothing was done.", c->state_dir,
                          error_message(&e) ?: strerror(-r));
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
