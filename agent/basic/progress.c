/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "basic/log.h"
#include "basic/macro.h"
#include "basic/progress.h"

#define PROGRESS_INTERVAL_USEC (250 * 1000)
#define RATE_AFTER_USEC (500 * 1000)
#define MIB(x) ((double) (x) / (1024 * 1024))

void progress_update(Progress *p, bool force) {
        char line[256], imported[64] = "", eta[64] = "";
        uint64_t total = p->read_total + p->import_total, done = MIN(p->read_done, p->read_total) +
                                                                 MIN(p->import_done, p->import_total);
        usec_t now = now_usec(CLOCK_MONOTONIC), elapsed;
        double rate;

        if (total == 0 || (!force && now - p->last < PROGRESS_INTERVAL_USEC))
                return;
        if (p->started == 0)
                p->started = now;
        p->last = now;
        elapsed = MAX(now - p->started, (usec_t) 1);
        rate = (double) done / ((double) elapsed / USEC_PER_SEC);
        if (p->import_total > 0)
                (void) snprintf(imported, sizeof(imported), ", imported %.1f of %.1f MiB", MIB(p->import_done),
                                MIB(p->import_total));
        /* A rate (and the time left) once there is something to go by. */
        if (elapsed >= RATE_AFTER_USEC && done > 0)
                (void) snprintf(eta, sizeof(eta), done < total ? ", %.1f MiB/s, %.0f s left" : ", %.1f MiB/s", MIB(rate),
                                (double) (total - done) / rate);
        (void) snprintf(line, sizeof(line), "%s: %3u%% (read %.1f of %.1f MiB%s%s)", p->label ?: "Bundle",
                        (unsigned) (done * 100 / total), MIB(MIN(p->read_done, p->read_total)), MIB(p->read_total),
                        imported, eta);
        log_status(line);
        p->shown = true;
}

void progress_end(Progress *p) {
        if (!p || !p->shown)
                return;
        progress_update(p, true);
        log_status_end();
        p->shown = false;
}
