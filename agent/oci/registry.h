/* SPDX-License-Identifier: MIT */
#pragma once

/* An OCI distribution client on libcurl: manifests and blobs, the Bearer token flow and
 * basic auth with credentials from a docker config.json, plain http for configured insecure
 * registries, TLS with the system's or a configured CA, connect, stall and total timeouts, a
 * size cap on every body and every digest checked against what was asked for. One client
 * reuses its connections; it is not shared between threads.
 *
 * Errors: -EHOSTUNREACH (unreachable, DNS, 5xx, a connection closed before the end of the
 * body), -ETIMEDOUT (no connection, no answer, stalled, or a request that took too long),
 * -EACCES (credentials refused), -ENOENT (404), -EFBIG (over the cap), -EBADMSG (a digest or
 * media type that is not what was asked for, or a malformed answer). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/error.h"
#include "oci/image-ref.h"
#include "oci/image-source.h"
#include "oci/registry-sink.h"

#define MANIFEST_MAX (4 * 1024 * 1024)
#define REFERRERS_MAX 64 /* manifests of a referrers index that are looked at */

typedef struct RegistryOptions {
        char **insecure_registries; /* host:port spoken to over plain http */
        char **token_hosts;         /* token services that may get credentials besides the registry's host */
        const char *auth_file;      /* docker config.json */
        const char *ca_file;
        unsigned connect_timeout;   /* seconds */
        unsigned stall_timeout;     /* seconds without a byte */
        unsigned request_timeout;   /* seconds one request may take in all; 0: no limit */
} RegistryOptions;

/* A registry that drips its answer just fast enough never stalls; request_timeout ends it.
 * A request may take request_timeout for each started REGISTRY_TIMEOUT_BLOCK of the most it
 * may bring (its cap): request_timeout for a manifest, a signature or an attestation (at most
 * 8 MiB), a multiple for a layer streamed to a file (its cap is its descriptor's size), so
 * that a layer of 1 GiB may take 16 times as long at the least average rate, 64 MiB per
 * request_timeout (218 KiB/s at the default of 300 s). At most REGISTRY_TIMEOUT_MAX. */
#define REGISTRY_TIMEOUT_BLOCK (UINT64_C(64) * 1024 * 1024)
#define REGISTRY_TIMEOUT_MAX 2147483u /* seconds (24 days): what libcurl takes (INT_MAX ms) */

/* The seconds a request with a body of at most max bytes may take (0: no limit). */
unsigned registry_request_timeout(unsigned request_timeout, uint64_t max);

/* The media type a manifest names for itself (mediaType, "" when absent: OCI allows that).
 * -EBADMSG when the body is not a JSON object. */
int manifest_media_type(const Buffer *body, char **ret);

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

/* The same into fd, in constant memory, for layers: *ret_size (may be NULL) is how many bytes
 * were written. On failure fd holds part of the blob, or anything: the caller throws it away. */
int registry_get_blob_to_fd(RegistryClient *c, const char *registry, const char *repository, const char *digest,
                            uint64_t max, int fd, uint64_t *ret_size, Error *reterr);

/* GET /v2/<repository>/referrers/<digest> (an OCI index). -ENOENT when the registry has no
 * Referrers API (then the `sha256-<hex>` fallback tag holds the index). */
int registry_get_referrers(RegistryClient *c, const char *registry, const char *repository, const char *digest,
                           Buffer *ret, Error *reterr);

/* The image ref at its registry, through c (which must outlive the source). */
int registry_source_new(RegistryClient *c, const ImageRef *ref, ImageSource **ret);
