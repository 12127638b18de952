/* SPDX-License-Identifier: MIT */
#pragma once

/* Container image references as they appear in
 * virtualisation.oci-containers.containers.<name>.image:
 *   [registry/]repository[:tag][@sha256:<64 hex>]
 * with Docker's rules: the first component is a registry when it contains '.' or ':' or is
 * "localhost"; otherwise the registry is docker.io and a one-component repository is
 * library/<name>. A reference without tag and digest means :latest. */

#include "basic/error.h"

#define IMAGE_DIGEST_LEN (7 + 64) /* "sha256:" + hex */

typedef struct ImageRef {
        char *registry;   /* host[:port], as used in URLs ("registry-1.docker.io" for docker.io) */
        char *repository; /* path below the registry */
        char *tag;        /* NULL when only a digest is given */
        char *digest;     /* "sha256:<hex>" or NULL */
} ImageRef;

int image_ref_parse(const char *s, ImageRef *ret, Error *reterr);
void image_ref_done(ImageRef *r);

/* "sha256:" followed by exactly 64 lowercase hex digits. */
bool image_digest_is_valid(const char *s);
