/* SPDX-License-Identifier: MIT */
#pragma once

/* Keyless Cosign signatures of a container image: signed with a short-lived Fulcio certificate
 * issued to an OIDC identity, the signing time proven by a Rekor entry (or an RFC 3161
 * timestamp), all verified offline against a pinned trusted root by sigstore_verify() (see
 * sigstore.h for the steps). What is trusted is a list of identities, each an exact SAN and an
 * exact OIDC issuer; the first one the signature verifies for is the one it counts for (in a
 * CosignTally), and *ret_signer (when not NULL) is what the certificate names for it,
 * "SAN (ISSUER)" (sigstore_certificate_signer()), to be freed. The two formats (shared/reference/cosign-format.md):
 *
 *   1. a classic `.sig` layer (cosign_verify_simplesigning()'s) whose annotations carry the
 *      certificate (COSIGN_ANNOTATION_CERTIFICATE, PEM) and the Rekor bundle
 *      (COSIGN_ANNOTATION_REKOR_BUNDLE: {SignedEntryTimestamp, Payload: {body, integratedTime,
 *      logIndex, logID}}): verified as the Sigstore bundle v0.1 it amounts to (the certificate,
 *      one entry with its SET, a message signature over the payload), then the payload must
 *      name the image's digest. The chain annotation is not used: the intermediates come from
 *      the trusted root, as for a bundle      -> cosign_keyless_verify_simplesigning()
 *   2. a Sigstore bundle (an OCI referrer, or the fallback index) whose verification material
 *      is a certificate, with a DSSE envelope whose in-toto statement names the image's digest
 *                                             -> cosign_keyless_verify_bundle()
 *
 * Returns 0, or a negative errno with a message in reterr:
 *   -EINVAL       image_digest is not "sha256:<64 hex>", or no trusted root or identity
 *   -EMEDIUMTYPE  a layer media type other than simple signing, a bundle of another media type
 *   -ENOKEY       no certificate: a key-based signature (cosign.h verifies those)
 *   -EFBIG        over a cap
 *   -EBADMSG      malformed (the certificate, the Rekor bundle, its body, the bundle, ...)
 *   -EPERM        refused: no listed identity verifies (the message says why for the first)
 *   -ENOMEM */

#include <stddef.h>

#include "basic/error.h"
#include "sign/sigstore.h"

#define COSIGN_ANNOTATION_CERTIFICATE "dev.sigstore.cosign/certificate"
#define COSIGN_ANNOTATION_REKOR_BUNDLE "dev.sigstore.cosign/bundle"
#define COSIGN_ANNOTATION_RFC3161_TIMESTAMP "dev.sigstore.cosign/rfc3161timestamp"
#define COSIGN_CERTIFICATE_PEM_MAX (32u * 1024u)
#define COSIGN_REKOR_BUNDLE_MAX (256u * 1024u)
#define COSIGN_RFC3161_ANNOTATION_MAX (128u * 1024u)
#define COSIGN_IDENTITIES_MAX 64u /* CosignTally counts them in 64 bits */

/* What keyless signatures are checked against. Borrowed: the caller keeps them alive. Only
 * identity and issuer of each policy (and their expressions, identity_re and issuer_re) are
 * used. */
typedef struct CosignKeyless {
        const SigstoreTrustedRoot *root;
        const SigstorePolicy *identities;
        size_t n_identities;
} CosignKeyless;

/* The annotations of a classic keyless layer (NULL: absent). */
typedef struct CosignKeylessLayer {
        const char *certificate;       /* COSIGN_ANNOTATION_CERTIFICATE (PEM); NULL: -ENOKEY */
        const char *rekor_bundle;      /* COSIGN_ANNOTATION_REKOR_BUNDLE; NULL: refused, no log entry */
        const char *rfc3161_timestamp; /* COSIGN_ANNOTATION_RFC3161_TIMESTAMP ({"SignedRFC3161Timestamp":
                                        * base64 DER}): one more signing time, over the raw signature */
} CosignKeylessLayer;

/* 1. payload is the layer blob; signature_b64 (as for cosign_verify_simplesigning()) and
 * layer are its annotations. A Rekor bundle is required even with a timestamp: the log entry
 * is what makes a signature with a stolen identity visible to its owner. */
int cosign_keyless_verify_simplesigning(const CosignKeyless *k, const char *image_digest, const char *layer_media_type,
                                        const void *payload, size_t payload_size, const char *signature_b64,
                                        const CosignKeylessLayer *layer, size_t *ret_identity_index, char **ret_signer,
                                        Error *reterr);

/* 3. A classic attestation (`cosign attest`, the .att tag): envelope_json is the layer blob, a
 * DSSE envelope whose in-toto statement names the image's digest, with the certificate and
 * Rekor bundle annotations of layer as for 1 (the entry's body an intoto 0.0.2 or dsse 0.0.1
 * record of the envelope). Its rfc3161_timestamp is not used: cosign stamps the envelope's
 * bytes, not its signature, which no Sigstore bundle does. *ret_predicate_type as for 2. */
int cosign_keyless_verify_attestation(const CosignKeyless *k, const char *image_digest, const void *envelope_json,
                                      size_t size, const CosignKeylessLayer *layer, size_t *ret_identity_index,
                                      char **ret_signer, char **ret_predicate_type, Error *reterr);

/* 2. bundle_json is the layer blob (at most SIGSTORE_BUNDLE_MAX). On success
 * *ret_predicate_type (when not NULL) is the statement's predicateType, to be freed. */
int cosign_keyless_verify_bundle(const CosignKeyless *k, const char *image_digest, const void *bundle_json,
                                 size_t size, size_t *ret_identity_index, char **ret_signer,
                                 char **ret_predicate_type, Error *reterr);
