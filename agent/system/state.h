/* SPDX-License-Identifier: MIT */
#pragma once

/* The state file, <state-dir>/state.json: what is deployed, what is known to be good, the
 * phase of a deployment in flight, and the history of deployments. JSON through jansson,
 * written atomically (temporary file, fsync, rename, fsync of the directory), read back
 * strictly: an unknown key, a wrong type or an unknown version is an error, never a silent
 * reset.
 *
 * The result of the last run is kept apart, in <state-dir>/last-run.json, so that a refused
 * or transient run can be reported without touching the state file. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "basic/error.h"

#define STATE_FILE "state.json"
#define LAST_RUN_FILE "last-run.json"
#define STATE_VERSION 1
#define STATE_FILE_MAX (16 * 1024 * 1024)
/* What the agent writes at most: half what it reads, the oldest history dropped first. */
#define STATE_WRITE_MAX (STATE_FILE_MAX / 2)
#define STATE_HISTORY_MAX 100

/* Where a deployment is. Recorded before each side effect, so that a run that finds a phase
 * other than idle knows that the previous one was interrupted, and where. */
typedef enum Phase {
        PHASE_IDLE,
        PHASE_BUILDING,     /* nothing changed on the system yet */
        PHASE_ACTIVATING,   /* the profile and the running system may be the new generation */
        PHASE_CHECKING,     /* activated; health checks running */
        PHASE_ROLLING_BACK, /* going back to pending->previous_generation */
        PHASE_PENDING_REBOOT, /* action boot: installed for the next boot, to be confirmed after it */
        PHASE_COMMITTING,   /* healthy: being made the boot default (profile, boot entry) */
        _PHASE_MAX,
} Phase;

typedef enum RunResult {
        RESULT_NONE,               /* nothing ran yet */
        RESULT_SUCCESS,            /* deployed */
        RESULT_NO_CHANGE,          /* nothing to do */
        RESULT_BUILD_FAILED,
        RESULT_ACTIVATION_FAILED,
        RESULT_REFUSED,            /* a verification failed */
        RESULT_TRANSIENT,          /* the source was unreachable */
        RESULT_INTERRUPTED,        /* the run was killed; found by the next one */
        RESULT_ERROR,              /* anything else (configuration, local I/O) */
        RESULT_ROLLED_BACK,        /* failed (activation or health) and back on the known-good generation */
        RESULT_ROLLBACK_FAILED,    /* failed, and so did the rollback: a person is needed */
        RESULT_KNOWN_BAD,          /* the revision failed before and was not tried again */
        RESULT_PENDING_REBOOT,     /* installed for the next boot; `confirm` decides after it */
        RESULT_WAITING,            /* a new revision waits: rollout, change window or switch inhibitors */
        RESULT_BUSY,               /* another run held the lock: nothing was done (metrics only) */
        _RESULT_MAX,
} RunResult;

typedef struct Deployment {
        uint64_t id;
        char *revision;   /* 40 hex digits */
        char *generation; /* store path of the system toplevel, NULL before it is built */
        char *source;     /* "pull" or "bundle" */
        char *ref;        /* what was asked for (branch, tag, commit), informative */
        char *action;     /* "switch" or "boot" */
        time_t started;
        time_t finished;  /* 0 while in flight */
        RunResult result;
        char *error;      /* NULL on success */
        char *signer;     /* the commit's signer ("principal SHA256:..."), NULL when not required */
        char *previous_generation; /* what the profile pointed to before: the rollback target
                                    * when there is no known-good generation yet */
        struct json_t *health;     /* [{name, ok, detail, duration_ms}] of the last round, or NULL */
        char *boot_id;             /* action boot: the boot it was installed in */
        char *trial_entry;         /* action boot: the boot entry that boots it once (one-shot), NULL
                                    * when it was made the boot default at once */
        unsigned activations;      /* activations begun; one more than 1 means a run was interrupted
                                    * during the activation (2: twice, and the revision counts as failed) */
        struct json_t *images; /* [{name, reference, digest, signers, sbom}], NULL before verified */
        struct json_t *bundle; /* source "bundle": {id, sequence, signer, file}; else NULL */
        struct json_t *plan;   /* what the switch changes (plan.h), NULL when not known */
} Deployment;

/* The machine left on a generation that failed its checks, because the rollback failed too:
 * until a healthy deployment or a successful rollback, pull and check exit 5. */
typedef struct Unhealthy {
        char *revision;   /* the revision whose deployment failed */
        char *generation; /* what current-system pointed to when the rollback failed */
        char *error;
        time_t since;
} Unhealthy;

typedef struct State {
        uint64_t next_id;
        char *deployed_revision;   /* what the system runs, as far as the agent knows */
        char *deployed_generation;
        char *good_revision;       /* the last generation known to be good */
        char *good_generation;
        Phase phase;
        Deployment *pending;       /* the deployment in flight when phase != idle */
        char *failed_revision;     /* not tried again until the ref moves (or pull --retry) */
        uint64_t bundle_sequence;  /* the sequence of the last bundle applied successfully, 0: none */
        int64_t time_floor;        /* the latest signed time seen (a bundle's created), 0: none; expiry
                                    * is judged against max(clock, time_floor), and it never goes back */
        Unhealthy *unhealthy;      /* NULL unless a rollback failed (see Unhealthy) */
        struct json_t *waiting;    /* NULL, or the revision that waits (see state_set_waiting) */
        Deployment *history;       /* oldest first */
        size_t n_history;
} State;

typedef struct LastRun {
        char *command;
        RunResult result;
        time_t time;
        char *revision;
        char *error;
} LastRun;

int state_new(State **ret);
/* Reads <dir>/state.json; a missing file gives an empty state (-ENOENT is not an error
 * here), anything unreadable or invalid is an error with the detail in reterr. */
int state_load(const char *dir, State **ret, Error *reterr);
int state_save(const State *s, const char *dir);
State *state_free(State *s);
static inline void state_freep(State **s) {
        state_free(*s);
}
#define _cleanup_state_ _cleanup_(state_freep)

/* Serialization, also used by `status --json`. */
struct json_t;
struct json_t *state_to_json(const State *s);
int state_from_json(struct json_t *j, State **ret, Error *reterr);

/* Starts a deployment: sets phase and pending (owned by the state afterwards). */
int state_begin(State *s, Phase phase, const char *revision, const char *ref, const char *source,
                const char *action);
/* Ends the pending deployment with a result, appends it to the history (dropping the oldest
 * past STATE_HISTORY_MAX) and returns to idle. On success it becomes the deployed one, and
 * the sequence of the bundle it came from (if any) becomes the last one applied. A success or
 * a successful rollback clears `unhealthy`; a failed rollback sets it, with running (what
 * current-system points to) as its generation. */
int state_finish(State *s, RunResult result, const char *error, const char *running);

/* Drops the pending deployment without a history entry (it had changed nothing: the build
 * is done, nothing activated) and returns to idle. */
void state_abandon(State *s);

/* The deployment of the history that is deployed now (revision and generation of
 * s->deployed_*), or NULL. */
const Deployment *state_deployed_entry(const State *s);

void deployment_done(Deployment *d);
int deployment_copy(const Deployment *src, Deployment *dst);

int last_run_load(const char *dir, LastRun *ret, Error *reterr);
int last_run_save(const char *dir, const char *command, RunResult result, const char *revision,
                  const char *error);
void last_run_done(LastRun *l);

const char *phase_to_string(Phase p);
int phase_from_string(const char *s, Phase *ret);
const char *run_result_to_string(RunResult r);
int run_result_from_string(const char *s, RunResult *ret);

/* A new revision that is not deployed yet, and why: {"revision", "reason" (WAIT_REASONS),
 * "detail", "first-seen" (when this host first saw it), "until" (when it may go on at the
 * earliest, or null), "system" (built already: its toplevel, rooted, or null), "containers"
 * (that system's, or null), "plan" (or null)}. first-seen is kept while the revision stays the
 * same. Returns whether the reason changed (a new journal event). Takes the references. */
#define WAIT_REASONS "rollout-percent", "rollout-paused", "rollout-delay", "rollout-file", "window", "switch-inhibited"
bool state_set_waiting(State *s, const char *revision, const char *reason, const char *detail, time_t now,
                       time_t until, const char *system, struct json_t *containers, struct json_t *plan);
/* When this host first saw revision (the waiting record's first-seen), or 0. */
time_t state_first_seen(const State *s, const char *revision);
void state_clear_waiting(State *s);

/* Raises the time floor to t (never lowers it). Returns whether it moved. */
bool state_raise_time_floor(State *s, int64_t t);
