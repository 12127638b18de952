/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared between bundle-create.c (bundle create) and bundle-delta.c (what a delta made with
 * --base leaves out); nothing outside these two files includes this. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle/bundle.h"
#include "config/config.h"

/* The members' names in the work directory and in the bundle. */
#define PACK_NAME "repository.pack"
#define CACHE_NAME "nix"
#define IMAGES_NAME "images"

/* A member of the bundle being made, hashed: its path below the work directory. */
typedef struct Member {
        char *path;
        uint64_t size;
        char sha256[65];
} Member;

typedef struct Members {
        Member *list;
        size_t n, allocated;
} Members;

/* --base: the manifest of the bundle at o->base and its id, read without verifying its
 * signature; -EINVAL when it is a bundle for another host or its sequence is not below
 * o->sequence (when set). */
int bundle_delta_read_base(const BundleCreateOptions *o, BundleManifest *base, char base_id[static BUNDLE_ID_LEN + 1],
                           Error *reterr);

/* Drops from m what the machine has since it applied base (the closure's NARs that base
 * carried, with closure; the image blobs that base carried or left out) and logs how much;
 * *ret_blobs is the list of the image blobs left out, for the manifest's base.blobs. */
int bundle_delta_leave_out(const Config *c, const char *work, json_t *closure, Members *m, const BundleManifest *base,
                           const char *base_id, json_t **ret_blobs, Error *reterr);
