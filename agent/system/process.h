/* SPDX-License-Identifier: MIT */
#pragma once

/* Running other programs (nix, nixos-rebuild, health check commands).
 *
 * Always an argv array, never a shell. Each command runs in a process group of its own,
 * under a small guard process: if the agent dies, even by SIGKILL, the guard gets its
 * parent-death signal and kills the whole group, so that no nix build or activation goes on
 * behind the back of the next run. A timeout kills the whole group (SIGTERM, then SIGKILL
 * after a grace period). stdout and stderr are passed on to the log line by line, or stdout
 * is captured (with a size cap) for commands whose output the agent reads. */

#include <stdbool.h>
#include <stddef.h>

#include "basic/error.h"
#include "basic/timeutil.h"

typedef struct ProcessOptions {
        const char *name;    /* prefix of logged lines; default: basename of argv[0] */
        const char *cwd;     /* NULL: inherit */
        char **env;          /* NULL: inherit the agent's environment */
        usec_t timeout;      /* 0: none */
        usec_t kill_grace;   /* after the timeout's SIGTERM; 0: 5 s */
        char **capture;      /* non-NULL: stdout is collected here (NUL-terminated) */
        size_t capture_max;  /* cap on captured stdout; exceeding it kills the command */
        int log_level;       /* level of the command's output lines; 0: LOG_INFO */
        bool keep_on_stop;   /* a stop request (stop.h) does not stop it: an activation the
                              * agent started runs to its end, within its timeout */
        /* Each output line that is not captured, before it is logged: true when the callback
         * took care of it (then it is not logged). */
        bool (*on_line)(const char *line, size_t len, void *userdata);
        void *userdata;
} ProcessOptions;

typedef struct ProcessResult {
        bool exited;      /* exited normally, with exit_status */
        int exit_status;
        int signal;       /* killed by this signal, when !exited */
        bool timed_out;
        usec_t duration;
} ProcessResult;

/* Returns 0 when the command exited with status 0, otherwise:
 *   -ENOENT, -EACCES, ...  the command could not be started (the errno of execve)
 *   -ETIMEDOUT             it ran past the timeout and was killed
 *   -EFBIG                 its captured output went over capture_max
 *   -EPROTO                it exited with a non-zero status or was killed by a signal
 *   -ECANCELED             a stop was requested (stop.h): it was stopped (SIGTERM, then
 *                          SIGKILL after the grace period), or not started at all
 * reterr (may be NULL) gets a message such as "nixos-rebuild exited with status 1".
 * ret (may be NULL) gets the details. */
int process_run(char *const argv[], const ProcessOptions *opts, ProcessResult *ret, Error *reterr);
