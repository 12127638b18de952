/* SPDX-License-Identifier: MIT */
#pragma once

/* Rollout control: whether a verified new revision goes on now. A revision that waits is not
 * an error: the run ends with exit 0 and result "waiting", the state's waiting record says
 * why and until when (status, metrics), and the journal gets one event per change of the
 * reason.
 *
 *   pull:  rollout file (paused, percent, delay)  -> evaluate, verify images, build
 *          -> plan -> change window -> switch inhibitors -> activate
 *   apply: build -> plan -> switch inhibitors -> activate (no rollout, no window: a person
 *          applies a bundle)
 *
 * A revision built outside every window keeps its build (a root) and its evaluation (the
 * waiting record): when the window opens, the next run activates it without evaluating. */

#include <time.h>

#include "engine/run.h"
#include "git/git.h"

struct json_t;

typedef struct GateVerdict {
        const char *reason; /* a WAIT_REASONS entry, when it waits */
        char detail[512];   /* why (it waits, or it goes on) */
        time_t until;       /* when it goes on at the earliest, 0: not known */
        unsigned bucket;
} GateVerdict;

/* The rollout file of revision rev, read and judged: 0 goes on, 1 waits (ret says why), <0
 * the file is unreadable or invalid (reterr). Changes nothing. */
int gate_rollout_decide(const Config *c, const State *s, GitSource *git, const char *rev, GateVerdict *ret,
                        Error *reterr);

/* The rollout file of revision rev (repository.rollout-file at rev): EXIT_OK to go on, else
 * the run's end (waiting: exit 0; an unreadable or invalid file: refused, exit 3). */
ExitCode gate_rollout(Run *run, GitSource *git, const char *rev);

/* Records that rev waits (run->waiting), with detail (printf-like); returns EXIT_OK. */
ExitCode gate_wait(Run *run, const char *rev, const char *reason, time_t until, const char *system,
                   struct json_t *containers, struct json_t *plan, const char *fmt, ...) _printf_(8, 9);

/* Whether the change windows are open now; when not, *ret_next gets when the next opens. */
bool gate_window_open(const Config *c, time_t *ret_next);
