/* SPDX-License-Identifier: MIT */
#pragma once

/* Lifecycle events: one MESSAGE_ID each (catalog/atticd-agent.catalog explains them), with
 * fields an operator can filter on (`journalctl MESSAGE_ID=... REVISION=...`).
 *
 * Where the journal is: when stderr is the journal stream systemd gave the unit
 * (JOURNAL_STREAM names stderr's device and inode), events go to the journal natively, with
 * their fields; everywhere else (a terminal, a pipe, the tests) the same line goes to stderr
 * with the fields appended as [MESSAGE_ID=... KEY=value ...]. Either way exactly one line. */

#include "basic/macro.h"

typedef enum Event {
        EVENT_UPDATE_FOUND,
        EVENT_REPOSITORY_VERIFIED,
        EVENT_IMAGES_VERIFIED,
        EVENT_REFUSED,
        EVENT_BUILD_FAILED,
        EVENT_ACTIVATED,
        EVENT_HEALTHY,
        EVENT_UNHEALTHY,
        EVENT_ROLLED_BACK,
        EVENT_ROLLBACK_FAILED,
        EVENT_BUNDLE_APPLIED,
        EVENT_DRIFT,
        EVENT_WAITING,
        EVENT_PLAN,
        EVENT_CONTAINER_DRIFT,
        _EVENT_MAX,
} Event;

typedef struct EventField {
        const char *key;   /* upper case, as journal fields are */
        const char *value; /* NULL: the field is left out */
} EventField;

/* EVENT_FIELDS({"REVISION", rev}, {"GENERATION", gen}) */
#define EVENT_FIELDS(...) ((const EventField[]) { __VA_ARGS__, {} })
#define EVENT_NO_FIELDS ((const EventField[]) { {} })

const char *event_to_string(Event e);  /* "activated", ... */
const char *event_message_id(Event e); /* 32 hex digits */

void log_event(Event e, int level, const EventField *fields, const char *fmt, ...) _printf_(4, 5);
