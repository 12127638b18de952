/* SPDX-License-Identifier: MIT */
#pragma once

/* A request to stop: SIGTERM (`systemctl stop`, a shutdown), SIGINT (Ctrl-C) or SIGHUP. The
 * agent does not die of it: the handler only records the request, and the run ends at its
 * next safe point (docs/architecture.md, "Stopping") with EXIT_STOPPED. Commands the agent runs are stopped on
 * a request (process.c), except an activation it started itself, which runs to its end. */

#include <stdbool.h>

/* Installs the handlers (once, at start). */
int stop_install(void);

/* Whether a stop was requested, and by which signal (0: none). */
bool stop_requested(void);
int stop_signal(void);

/* A descriptor that becomes readable once a stop is requested (for poll()); -1 before
 * stop_install(). Never read it. */
int stop_fd(void);

/* Asks for a stop as the signal would (tests; a watchdog). */
void stop_request(int sig);
