/* SPDX-License-Identifier: MIT */
#pragma once

/* The service manager: STATUS= per phase, so that `systemctl status` shows what the agent is
 * doing, and the watchdog when the unit sets WatchdogSec=. Without NOTIFY_SOCKET (a shell,
 * the tests that do not set one) these do nothing. */

#include "basic/macro.h"
#include "basic/timeutil.h"

void notify_status(const char *fmt, ...) _printf_(1, 2);

/* Sends WATCHDOG=1 when half the watchdog interval has passed since the last one; cheap to
 * call often. Long waits (children, health rounds) call it from their loops. */
void notify_watchdog(void);

/* How long a loop may sleep and still keep the watchdog fed: USEC_INFINITY without one. */
usec_t notify_watchdog_interval(void);
