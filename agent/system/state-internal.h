/* SPDX-License-Identifier: MIT */
#pragma once

/* What the files of the state share: state.c (the records, state.json on disk, the moves of a
 * deployment), state-json.c (the JSON form), state-waiting.c (the waiting record) and
 * state-last-run.c (last-run.json). Nothing outside these files includes this. */

#include <jansson.h>
#include <time.h>

#include "basic/error.h"
#include "system/state.h"

/* A copy of s into *ret, NULL for NULL; 0 or -ENOMEM. */
int state_strdup_null(const char *s, char **ret);
void state_unhealthy_free(Unhealthy *u);

/* JSON values of the state files: a string or null, a timestamp (YYYY-MM-DDTHH:MM:SSZ) or null
 * for 0. */
json_t *state_json_string_or_null(const char *s);
json_t *state_json_time_or_null(time_t t);
/* The reverse, strictly: an error naming what when v is neither null nor of the type. */
int state_opt_string(json_t *v, const char *what, char **ret, Error *e);
int state_opt_time(json_t *v, const char *what, time_t *ret, Error *e);

/* Checks the waiting record of a state file (null or absent: none); 0 or -EINVAL. */
int state_waiting_check(json_t *w, Error *e);
