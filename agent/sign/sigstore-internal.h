/* SPDX-License-Identifier: MIT */
#pragma once

/* What sigstore.c, sigstore-cert.c and sigstore-body.c share: one verification in progress. */

#include <stdint.h>

#include "sign/sigstore.h"

#define SIGSTORE_TIMES_MAX (SIGSTORE_TIMESTAMPS_MAX + SIGSTORE_TLOG_ENTRIES_MAX)
#define SIGSTORE_DIGEST_MAX 64 /* SHA-512 */

typedef struct SigstoreContext {
        const SigstoreTrustedRoot *root;
        const SigstoreBundle *b;
        const SigstorePolicy *policy;
        EVP_PKEY *key; /* the signing key: the leaf's, or policy->key (borrowed) */
        const void *artifact; /* NULL: only its SHA-256 is known (sigstore_verify_digest(), DSSE only) */
        size_t artifact_size;
        uint8_t artifact_sha256[32];
        time_t times[SIGSTORE_TIMES_MAX]; /* the verified signing times */
        size_t n_times;
} SigstoreContext;

/* Steps 2-4 (sigstore-cert.c): chain at every time, code signing, SCT, identity. */
int sigstore_check_certificate(const SigstoreContext *c, Error *reterr);

/* Step 5's body check (sigstore-body.c): the entry's canonicalized body is about this
 * signature, key and artifact. -EPERM when it is about something else, -EBADMSG when it is
 * malformed. `what` names the entry. */
int sigstore_check_body(const SigstoreContext *c, const SigstoreTlogEntry *t, const char *what, Error *reterr);

/* The digest of data with the hash named as Rekor or protobuf-specs name it ("sha256",
 * "SHA2_256", ...): its size, or -EPROTONOSUPPORT for another name. */
int sigstore_digest(const char *algorithm, const void *data, size_t size, uint8_t ret[static SIGSTORE_DIGEST_MAX]);

/* Whether pem (a PEM certificate or public key, as Rekor v1 bodies hold them) is the leaf, or
 * for a managed key the key: 0, -EPERM, or -EBADMSG when it does not parse. */
int sigstore_pem_is_signer(const SigstoreContext *c, const void *pem, size_t size);
