/* SPDX-License-Identifier: MIT */
#pragma once

/* A Sigstore bundle (v0.1, v0.2, v0.3: media types
 * application/vnd.dev.sigstore.bundle+json;version=0.1 / 0.2 / 0.3 and
 * application/vnd.dev.sigstore.bundle.v0.3+json), parsed with jansson into what sigstore.c
 * verifies. Nothing here is trusted yet: parsing checks the form only, strictly (every object's
 * keys are those of the protobuf-specs message; a wrong type, bad base64, a negative log index
 * or tree size are errors), and the client rules of protobuf-specs and sigstore-python that
 * need no key:
 *
 *   - verificationMaterial holds exactly one of publicKey (a managed key: only its hint),
 *     x509CertificateChain (v0.1, v0.2) or certificate (v0.3);
 *   - a chain is not empty, starts with a leaf certificate (not a CA) and holds no root
 *     (self-signed) certificate; only its leaf is used: the intermediates come from the
 *     trusted root;
 *   - a v0.1 bundle's entries carry an inclusion promise (SET); an inclusion proof without a
 *     checkpoint is ignored there. From v0.2 on, every entry carries an inclusion proof with a
 *     checkpoint, and an inclusion promise or the bundle a timestamp;
 *   - the content is exactly one of messageSignature and dsseEnvelope, and an envelope has
 *     exactly one signature.
 *
 * Errors: -EMEDIUMTYPE (an unknown media type), -EFBIG (over a cap), -EBADMSG (malformed, with
 * the field's path), -ENOMEM. */

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "basic/error.h"
#include "sign/tlog.h"

#define SIGSTORE_BUNDLE_MAX (8u * 1024u * 1024u) /* bytes of a bundle: a DSSE payload may be an SBOM */
#define SIGSTORE_TLOG_ENTRIES_MAX 8u
#define SIGSTORE_PROOF_HASHES_MAX 64u /* a path through a tree of 2^64 leaves */
#define SIGSTORE_CHECKPOINT_MAX (64u * 1024u)
#define SIGSTORE_TIMESTAMPS_MAX 32u /* as sigstore-go and sigstore-python */
#define SIGSTORE_TIMESTAMP_MAX (64u * 1024u)
#define SIGSTORE_SIGNATURE_MAX (8u * 1024u)
#define SIGSTORE_CHAIN_MAX 10u

typedef enum SigstoreBundleVersion {
        SIGSTORE_BUNDLE_V0_1,
        SIGSTORE_BUNDLE_V0_2,
        SIGSTORE_BUNDLE_V0_3,
} SigstoreBundleVersion;

typedef struct SigstoreInclusionProof {
        int64_t log_index; /* in the tree of the checkpoint (Rekor v1: the shard's) */
        int64_t tree_size;
        uint8_t root_hash[TLOG_HASH_SIZE];
        uint8_t (*hashes)[TLOG_HASH_SIZE];
        size_t n_hashes;
        char *checkpoint; /* checkpoint.envelope: the signed note */
        size_t checkpoint_size;
} SigstoreInclusionProof;

typedef struct SigstoreTlogEntry {
        int64_t log_index; /* the log's global index, which the SET signs */
        uint8_t *log_id;   /* logId.keyId */
        size_t log_id_size;
        char *kind, *version; /* kindVersion: "hashedrekord" "0.0.1", "dsse" "0.0.1", ... */
        int64_t integrated_time; /* 0: none (Rekor v2) */
        uint8_t *set;            /* inclusionPromise.signedEntryTimestamp; NULL: none */
        size_t set_size;
        bool has_proof;
        SigstoreInclusionProof proof;
        uint8_t *body; /* canonicalizedBody, decoded: the JSON the log holds */
        size_t body_size;
} SigstoreTlogEntry;

typedef struct SigstoreBlob {
        uint8_t *data;
        size_t size;
} SigstoreBlob;

typedef struct SigstoreBundle {
        SigstoreBundleVersion version;
        X509 *leaf;     /* the signing certificate; NULL: a managed key (publicKey) */
        char *key_hint; /* publicKey.hint (unauthenticated, for messages); may be NULL */

        SigstoreTlogEntry *entries;
        size_t n_entries;
        SigstoreBlob *timestamps; /* timestampVerificationData.rfc3161Timestamps[].signedTimestamp */
        size_t n_timestamps;

        bool dsse;                /* dsseEnvelope, else messageSignature */
        uint8_t *signature;       /* messageSignature.signature, or the envelope's signature */
        size_t signature_size;
        char *digest_algorithm;   /* messageDigest.algorithm ("SHA2_256", ...); NULL: no digest */
        uint8_t *message_digest;  /* messageDigest.digest */
        size_t message_digest_size;
        char *payload_type;       /* the envelope's */
        uint8_t *payload;
        size_t payload_size;
} SigstoreBundle;

int sigstore_bundle_parse(const void *json, size_t size, SigstoreBundle **ret, Error *reterr);
int sigstore_bundle_load(const char *path, SigstoreBundle **ret, Error *reterr);

/* A DSSE envelope on its own ({payload, payloadType, signatures: [one {sig, keyid}]}, as a
 * classic cosign attestation layer holds it) into b's dsse, payload_type, payload and
 * signature, which must be unset. 0, -EBADMSG, -EFBIG, -ENOMEM. */
int sigstore_bundle_parse_envelope(const void *json, size_t size, SigstoreBundle *b, Error *reterr);

SigstoreBundle *sigstore_bundle_free(SigstoreBundle *b);
static inline void sigstore_bundle_freep(SigstoreBundle **b) {
        sigstore_bundle_free(*b);
}

const char *sigstore_bundle_version_to_string(SigstoreBundleVersion v);
