/* SPDX-License-Identifier: MIT */
#pragma once

/* Runtime trust: the image each container of the deployed revision actually runs, compared with
 * the digest that was verified (and recorded) when the revision was deployed. The digest is
 * asked of the container engine with images.inspect-command (podman by default), per
 * container: its output holds the image's digest (the last sha256:<hex> in it), optionally
 * after the word true or false (running or not: "{{.State.Running}} {{.ImageDigest}}"); a
 * command that fails means the engine has no such container. */

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

struct json_t;

typedef enum ContainerState {
        CONTAINER_OK,          /* runs the verified image */
        CONTAINER_OTHER_IMAGE, /* runs another image: drift */
        CONTAINER_NOT_RUNNING, /* the engine has no such container (the health checks judge that) */
        CONTAINER_UNKNOWN,     /* the engine could not be asked, or said no digest */
        _CONTAINER_STATE_MAX,
} ContainerState;

typedef struct ContainerCheck {
        char *name;
        char *reference;
        char *expected; /* the verified digest */
        char *running;  /* what the engine says, NULL when it said none */
        ContainerState state;
        char *detail;
} ContainerCheck;

typedef struct ContainerReport {
        ContainerCheck *checks;
        size_t n;
        size_t drifted; /* CONTAINER_OTHER_IMAGE */
} ContainerReport;

/* Checks every container of images (a deployment's record: [{name, reference, digest, ...}]).
 * Nothing to do when images.inspect-command is empty or the record has no digests. */
int containers_check(const Config *c, struct json_t *images, ContainerReport *ret);
void container_report_done(ContainerReport *r);
struct json_t *container_report_to_json(const ContainerReport *r);
const char *container_state_to_string(ContainerState s);
