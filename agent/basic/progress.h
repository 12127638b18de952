/* SPDX-License-Identifier: MIT */
#pragma once

/* One progress line for a whole bundle on a terminal (log_status): the bytes of the file read
 * and verified, and the bytes of the closure imported, of the total of both, with the rate and
 * the time left. */

#include <stdbool.h>
#include <stdint.h>

#include "basic/timeutil.h"

typedef struct Progress {
        const char *label; /* "Applying 'b.tar'" */
        uint64_t read_total, read_done;
        uint64_t import_total, import_done;
        usec_t started, last;
        bool shown;
} Progress;

/* Redraws the line, at most four times a second unless force. */
void progress_update(Progress *p, bool force);

/* Draws the line a last time and ends it (a no-op when it was never drawn). */
void progress_end(Progress *p);
