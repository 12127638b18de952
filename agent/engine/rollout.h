/* SPDX-License-Identifier: MIT */
#pragma once

/* Staged rollout (repository.rollout-file): the platform team commits
 * {"percent": 0-100, "paused": false, "delay": SECONDS} into the client repository; a host
 * takes a revision when its bucket (0-99) is below percent, the rollout is not paused and
 * delay seconds have passed since the host first saw the revision. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-id128.h>

#include "config/config.h"
#include "basic/error.h"

#define ROLLOUT_FILE_MAX (64 * 1024)
#define ROLLOUT_DELAY_MAX (365ULL * 24 * 3600)

typedef struct Rollout {
        bool present; /* the revision has the file; without it: everyone, now */
        unsigned percent;
        bool paused;
        uint64_t delay; /* seconds */
} Rollout;

/* Parses the file strictly (unknown keys, wrong types, out of range: -EINVAL with the reason). */
int rollout_parse(const char *data, size_t size, Rollout *ret, Error *reterr);

/* The agent's application id: its machine-specific ids are not the machine id itself, nor any
 * other application's. */
#define ROLLOUT_APP_ID SD_ID128_MAKE(0f, a9, c7, c3, be, 49, 4e, d4, b1, 9a, 2b, 99, 33, b6, 3d, 12)

/* sd_id128_get_machine_app_specific(ROLLOUT_APP_ID) for the machine id machine_id. */
void rollout_app_specific_id(const uint8_t machine_id[16], uint8_t ret[16]);

/* The bucket 0-99 of a machine for a revision: the machine's application-specific id (as
 * sd_id128_get_machine_app_specific() derives it with the agent's application id) hashed with
 * the revision, so that each revision picks other early hosts. */
unsigned rollout_bucket_of(const uint8_t machine_id[16], const char *revision);

/* This host's bucket for revision: rollout.bucket, else from /etc/machine-id. */
int rollout_bucket(const Config *c, const char *revision, unsigned *ret, Error *reterr);
