/* SPDX-License-Identifier: MIT */
#pragma once

/* Offline bundles (docs/bundle-format.md): a tar file whose first member is a manifest listing
 * every other member with its size and SHA-256, and whose second member is a signature of
 * the manifest by a bundle key.
 *
 * The reader streams the archive once (libarchive undoes the compression, the tar headers are
 * read by the format's rules alone): it verifies the signature and the manifest before it
 * looks at any other member, then hashes every member as it goes past (a second thread hashes
 * the larger ones while the next blocks are read), optionally writing it below a staging
 * directory: the very bytes it hashes. Memory does not grow with the bundle: four blocks of
 * 128 KiB, the manifest, and the member list.
 *
 * Errors: -EPERM for every refusal (the message names the member and the reason), -EINVAL
 * for a configuration that cannot verify anything (no keys, a key of the wrong type), the
 * -errno of the file otherwise. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "sign/cosign-key.h"
#include "basic/error.h"
#include "basic/progress.h"
#include "basic/strutil.h"

#define BUNDLE_FORMAT "atticd-agent-bundle"
#define BUNDLE_VERSION 2
#define BUNDLE_MANIFEST_NAME "manifest.json"
#define BUNDLE_SIGNATURE_NAME "manifest.sig"
#define BUNDLE_MANIFEST_MAX (4u * 1024u * 1024u)
#define BUNDLE_SIGNATURE_MAX 1024u
#define BUNDLE_MEMBERS_MAX 1000000u
#define BUNDLE_NAME_MAX 1024u
#define BUNDLE_COMPONENT_MAX 255u
#define BUNDLE_COMPONENTS_MAX 32u
#define BUNDLE_CLOSURE_PATHS_MAX 4096u
#define BUNDLE_IMAGES_MAX 1024u
#define BUNDLE_SIZE_MAX ((UINT64_C(1) << 53) - 1)
#define BUNDLE_ID_LEN 64

typedef struct BundleMember {
        char *path;
        uint64_t size;
        uint8_t sha256[32];
        bool seen;
} BundleMember;

typedef struct BundleImage {
        char *reference;
        char *digest;
        char *layout; /* member prefix of its OCI layout */
} BundleImage;

/* An image blob that a delta leaves out: its base carried it (base.blobs). */
typedef struct BundleBlob {
        char *path; /* where in the bundle's layout it belongs */
        uint64_t size;
        char sha256[65]; /* hex, from its name */
} BundleBlob;

typedef struct BundleManifest {
        char *host;
        char revision[COMMIT_ID_HEX + 1];
        char *system;                 /* the store path of the host's toplevel at revision */
        struct json_t *containers;    /* {name: image reference}: the revision's containers */
        uint64_t sequence;
        int64_t created;
        int64_t expires;
        char *repository; /* member holding the packfile */

        bool has_closure;
        char *store_dir;
        char *cache;  /* member prefix of the binary cache */
        char **paths; /* NULL-terminated */

        bool has_images;
        BundleImage *images;
        size_t n_images;

        BundleMember *members; /* sorted by path */
        size_t n_members;

        bool has_base;            /* a delta: it carries only what its base did not */
        char base_id[BUNDLE_ID_LEN + 1];
        uint64_t base_sequence;
        char base_revision[COMMIT_ID_HEX + 1]; /* "" or the commit whose history the pack leaves out */
        BundleBlob *base_blobs;  /* the image blobs left out */
        size_t n_base_blobs;
} BundleManifest;

void bundle_manifest_done(BundleManifest *m);

/* Whether name is a valid member name (section 2): relative, at most BUNDLE_NAME_MAX bytes,
 * components of [A-Za-z0-9._+=@-] that do not start with '.'. */
bool bundle_member_name_valid(const char *name);
/* NULL when name is valid, else what is wrong with it ("more than 1024 bytes", ...). */
const char *bundle_member_name_problem(const char *name);

/* Parses and validates a manifest strictly: -EPERM with the reason on anything malformed. */
int bundle_manifest_parse(const void *data, size_t size, BundleManifest *ret, Error *reterr);

/* The member called path, or NULL. */
BundleMember *bundle_manifest_find(const BundleManifest *m, const char *path);

/* The bundle keyring: bundle.keys, each ECDSA P-256 or Ed25519. */
int bundle_keyring_load(char *const *paths, CosignKeyring **ret, Error *reterr);

/* What the machine requires of a bundle. */
typedef struct BundleExpect {
        const char *host;
        const char *store_dir;     /* NULL: not checked (the bundle's closure is not used) */
        uint64_t last_sequence;    /* the sequence must be greater, unless allow_downgrade */
        bool allow_downgrade;
        time_t now;                /* the clock */
        int64_t time_floor;        /* the latest signed time seen here: now is at least that */
        uint64_t future_tolerance; /* created may be that far ahead of max(now, time_floor) */
} BundleExpect;

typedef struct BundleInfo {
        BundleManifest manifest;
        char id[BUNDLE_ID_LEN + 1];  /* hex sha256 of manifest.json */
        char signer[COSIGN_FINGERPRINT_SIZE];
        char *signer_path;           /* the key file that verified */
        uint64_t bytes;              /* of member content read */
} BundleInfo;

void bundle_info_done(BundleInfo *i);

typedef struct BundleReadOptions {
        const CosignKeyring *keys;
        const BundleExpect *expect;
        int staging_fd;   /* >= 0: write every member below this directory */
        Progress *progress; /* non-NULL: its line shows how much is read (a terminal); with a
                             * staging directory, the closure's NARs count as to be imported */

} BundleReadOptions;

/* Reads the bundle at path completely and verifies it (sections 6.1-6.8). 0 when everything
 * matched; -EPERM with the reason when refused. With staging_fd, the members are written
 * below it even when the bundle is refused later: the caller removes the directory. */
int bundle_read(const char *path, const BundleReadOptions *o, BundleInfo *ret, Error *reterr);

/* The manifest of the bundle at path and its id, read without verifying the signature (bundle
 * create --base: the base is the maker's own bundle; a wrong one only makes a delta that the
 * machine refuses). */
int bundle_read_manifest(const char *path, BundleManifest *ret, char ret_id[static BUNDLE_ID_LEN + 1],
                         Error *reterr);

/* ---- writing (bundle create) ---- */

typedef struct BundleCreateOptions {
        const char *output;
        const char *repo;     /* the client repository (a work tree or a bare repository) */
        const char *rev;
        const char *key;      /* PEM private key: ECDSA P-256 or Ed25519 */
        const char *host;
        uint64_t sequence;    /* 0: the creation time */
        uint64_t expires_in;  /* seconds */
        bool closure;
        bool images;
        bool with_sources;    /* the flake's and its inputs' sources too (apply --reevaluate) */
        const char *base;     /* a delta: leave out the closure's NARs that this bundle carried */
} BundleCreateOptions;

struct Config;
int bundle_create(const struct Config *c, const BundleCreateOptions *o, Error *reterr);
