/* SPDX-License-Identifier: MIT */
#pragma once

/* An OCI distribution client on libcurl: manifests and blobs, the Bearer token flow and
 * basic auth with credentials from a docker config.json, plain http for configured insecure
 * registries, TLS with the system's or a configured CA, connect and stall timeouts, a size
 * cap on every body and every digest checked against what was asked for. One client reuses
 * its connections; it is not shared between threads.
 *
 * Errors: -EHOSTUNREACH (unreachable, DNS, 5xx), -ETIMEDOUT (no answer, stalled),
 * -EACCES (credentials refused), -ENOENT (404), -EFBIG (over the cap), -EBADMSG (a digest or
 * media type that is not what was asked for, or a malformed answer). */

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define MANIFEST_MAX (4 * 1024 * 1024)
#define SIGNATURE_BLOB_MAX (1024 * 1024)

typedef struct RegistryOptions {
        char **insecure_registries; /* host:port spoken to over plain http */
        const char *auth_file;      /* docker config.json */
        const char *ca_file;
        unsigned connect_timeout;   /* seconds */
        unsigned stall_timeout;     /* seconds without a byte */
} RegistryOptions;

typedef struct Buffer {
        uint8_t *data;
        size_t size;
} Buffer;

void buffer_done(Buffer *b);

typedef struct RegistryClient RegistryClient;

int registry_client_new(const RegistryOptions *o, RegistryClient **ret, Error *reterr);
RegistryClient *registry_client_free(RegistryClient *c);
static inline void registry_client_freep(RegistryClient **c) {
        registry_client_free(*c);
}

/* GET /v2/<repository>/manifests/<reference> with every OCI and Docker manifest and index
 * type in Accept. *ret_digest is sha256 of the body; when reference is a digest it must be
 * equal, and a Docker-Content-Digest header must agree. */
int registry_get_manifest(RegistryClient *c, const char *registry, const char *repository, const char *reference,
                          Buffer *ret_body, char **ret_media_type, char **ret_digest, Error *reterr);

/* GET /v2/<repository>/blobs/<digest>, following redirects; the content must hash to
 * digest and be at most max bytes. */
int registry_get_blob(RegistryClient *c, const char *registry, const char *repository, const char *digest,
                      size_t max, Buffer *ret, Error *reterr);

/* GET /v2/<repository>/referrers/<digest> (an OCI index). -ENOENT when the registry has no
 * Referrers API (then the `sha256-<hex>` fallback tag holds the index). */
int registry_get_referrers(RegistryClient *c, const char *registry, const char *repository, const char *digest,
                           Buffer *ret, Error *reterr);

/* The parsed WWW-Authenticate challenge (exposed for tests and fuzzing). */
typedef struct AuthChallenge {
        char scheme[16]; /* "Bearer" or "Basic" */
        char *realm;
        char *service;
        char *scope;
} AuthChallenge;

int auth_challenge_parse(const char *header, AuthChallenge *ret);
void auth_challenge_done(AuthChallenge *c);
