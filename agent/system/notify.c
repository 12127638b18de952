/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "system/notify.h"

static usec_t watchdog_usec;     /* 0: not checked yet; USEC_INFINITY: none */
static usec_t last_ping;

void notify_status(const char *fmt, ...) {
        char status[512];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(status, sizeof(status), fmt, ap);
        va_end(ap);
        (void) sd_notifyf(0, "STATUS=%s", status);
        notify_watchdog();
}

usec_t notify_watchdog_interval(void) {
        uint64_t usec = 0;

        if (watchdog_usec == 0)
                watchdog_usec = sd_watchdog_enabled(0, &usec) > 0 && usec > 0 ? usec : USEC_INFINITY;
        return watchdog_usec == USEC_INFINITY ? USEC_INFINITY : watchdog_usec / 2;
}

void notify_watchdog(void) {
        usec_t interval = notify_watchdog_interval(), now;

        if (interval == USEC_INFINITY)
                return;
        now = now_usec(CLOCK_MONOTONIC);
        if (last_ping != 0 && now - last_ping < interval)
                return;
        last_ping = now;
        (void) sd_notify(0, "WATCHDOG=1");
}
