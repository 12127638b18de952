/* SPDX-License-Identifier: MIT */
#pragma once

/* `status`: the deployment state and history, as a table or as one JSON object. Reads the
 * state without taking the lock (the state file is only ever replaced atomically). */

#include <stdbool.h>

#include "config/config.h"
#include "basic/exitcode.h"

ExitCode status_show(const Config *c, bool json);
