/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* Logging to stderr. When stderr is not a terminal (a systemd unit, a pipe), each line
 * carries an sd-daemon level prefix such as "<6>" so that journald files it at the right
 * priority; on a terminal the prefix is left out. Lifecycle events (update found, activated,
 * rolled back, ...) are additionally sent to the journal with a fixed MESSAGE_ID by
 * log_event() in event.h. */

#include <syslog.h>

#include "basic/macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);
/* Force or forbid the "<N>" prefixes (tests); by default decided by isatty(stderr). */
void log_set_prefix(int enabled);

/* A status line (progress) below the messages on a terminal: each message clears it first and
 * draws it again after it. log_status() sets and draws it; log_status_end() ends it with a
 * newline and forgets it. Only for a terminal: the journal never sees it. */
void log_status(const char *line);
void log_status_end(void);

/* Logs and returns -abs(error) (or 0 when error is 0). With error != 0, "%m" in the format
 * expands to strerror(error). */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

/* s into buf (size bytes, NUL-terminated, cut to fit), every control character (C0 but tab,
 * DEL, C1 in UTF-8) written as \xNN and newlines as spaces: text from outside (a server's
 * error, a realm, a title) cannot drive a terminal or split a journal line. Returns buf.
 * Every log line goes through it. */
const char *log_escape(char *buf, size_t size, const char *s);

#define log_full_errno(level, error, ...) log_internal((level), (error), __VA_ARGS__)
#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(error, ...) log_internal(LOG_DEBUG, (error), __VA_ARGS__)
#define log_info_errno(error, ...) log_internal(LOG_INFO, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_internal(LOG_WARNING, (error), __VA_ARGS__)
#define log_error_errno(error, ...) log_internal(LOG_ERR, (error), __VA_ARGS__)
