/* SPDX-License-Identifier: MIT */
#pragma once

/* One run at a time: an exclusive flock on <state-dir>/lock, held until the process exits
 * (the kernel drops it when the agent dies, so a crash never leaves a stale lock). */

#include "basic/error.h"

#define LOCK_FILE "lock"

/* Returns the open descriptor holding the lock, -EBUSY when another process holds it, or
 * another -errno with e set. The state directory is created 0700 if needed; one that others
 * may write to, or a symlink owned by someone else, is refused (-EPERM). */
int lock_acquire(const char *state_dir, Error *e);
