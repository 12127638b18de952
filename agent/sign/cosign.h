/* SPDX-License-Identifier: MIT */
#pragma once

/* The Cosign verifier: decides whether bytes that claim to sign a container image were signed,
 * for that image, by a trusted key. It knows no transport: the OCI registry client hands it
 * the layers of an image's signature artifacts, and the offline bundle reader will hand it the
 * same bytes read from a tar file. The formats (shared/reference/cosign-format.md):
 *
 *   1. the classic `sha256-<hex>.sig` manifest: one layer per signature, whose blob is a
 *      simple-signing payload and whose dev.cosignproject.cosign/signature annotation is the
 *      signature over it              -> cosign_verify_simplesigning()
 *   2. cosign 3's Sigstore bundle v0.3 (an OCI referrer, or the `sha256-<hex>` fallback index):
 *      a DSSE envelope over an in-toto statement naming the image
 *                                      -> cosign_verify_bundle()
 *   3. the classic `sha256-<hex>.att` manifest: one layer per attestation, a bare DSSE envelope
 *                                      -> cosign_verify_dsse_envelope()
 *
 * The caller picks the function by the layer's media type (COSIGN_MEDIA_TYPE_*), checks every
 * blob's sha256 against its descriptor before calling, and counts the keys that signed with a
 * CosignTally.
 *
 * Trust here is in keys only. Rekor entries, SETs, inclusion proofs and RFC 3161 timestamps are
 * not checked, and a certificate is not trusted for its chain or identity: a bundle signed with
 * a certificate verifies here only when the certificate's public key is itself a trusted key.
 * Keyless signatures, trusted for a Fulcio certificate's identity at a verified time, are
 * cosign-keyless.h's. The identity (docker-reference) a payload names is not checked either, as cosign
 * does not: images move between registries; the digest is what is signed.
 *
 * Every function returns 0, or a negative errno with a message in reterr that says why:
 *   -EINVAL       image_digest is not "sha256:" and 64 lowercase hex digits, or keys is NULL
 *   -EMEDIUMTYPE  the wrong kind of document: a layer media type that is not simple signing, a
 *                 bundle media type other than v0.3, a DSSE payloadType other than in-toto
 *   -EFBIG        input larger than its cap (COSIGN_*_MAX)
 *   -EBADMSG      malformed: not JSON, JSON too deep or too big, bad base64, a field missing or
 *                 of the wrong type, a payload of the wrong type or not a statement, a bundle
 *                 without a DSSE envelope
 *   -EPERM        refused: no signature verifies with a trusted key (the data or signature was
 *                 changed, or another key signed), a certificate whose key is not trusted, or a
 *                 valid signature for another image (the payload or statement names another
 *                 digest)
 *   -ENOMEM */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sign/cosign-key.h"
#include "basic/error.h"

#define COSIGN_MEDIA_TYPE_SIMPLESIGNING "application/vnd.dev.cosign.simplesigning.v1+json"
#define COSIGN_MEDIA_TYPE_DSSE "application/vnd.dsse.envelope.v1+json"
#define COSIGN_MEDIA_TYPE_BUNDLE "application/vnd.dev.sigstore.bundle.v0.3+json"
#define COSIGN_ANNOTATION_SIGNATURE "dev.cosignproject.cosign/signature"
#define COSIGN_PAYLOAD_TYPE_INTOTO "application/vnd.in-toto+json"
#define COSIGN_PREDICATE_SIGN "https://sigstore.dev/cosign/sign/v1"
#define COSIGN_SIMPLESIGNING_TYPE "cosign container image signature"

#define COSIGN_PAYLOAD_MAX (1024u * 1024u)       /* a simple-signing payload */
#define COSIGN_DOCUMENT_MAX (8u * 1024u * 1024u) /* a bundle or envelope: it may carry an SBOM */
#define COSIGN_SIGNATURE_B64_MAX (16u * 1024u)   /* one base64 signature */
#define COSIGN_DSSE_SIGNATURES_MAX 16u
/* JSON nobody has signed yet (a bundle, an envelope) is small and shallow; what a trusted key
 * signed (a payload, a statement with its predicate) may be larger. Counted before jansson
 * allocates anything, so that no input makes it build a huge tree. */
#define COSIGN_UNSIGNED_JSON_DEPTH_MAX 16u
#define COSIGN_UNSIGNED_JSON_TOKENS_MAX 4096u
#define COSIGN_SIGNED_JSON_DEPTH_MAX 64u
#define COSIGN_SIGNED_JSON_TOKENS_MAX (1024u * 1024u)

/* 1. One layer of the `.sig` manifest. layer_media_type must be
 * COSIGN_MEDIA_TYPE_SIMPLESIGNING; payload is the layer blob (at most COSIGN_PAYLOAD_MAX);
 * signature_b64 is the COSIGN_ANNOTATION_SIGNATURE annotation: standard base64 of the
 * signature (DER for ECDSA), CR and LF skipped. The signature is verified over the exact
 * payload bytes first; only then is the payload read as JSON: critical.type must be
 * COSIGN_SIMPLESIGNING_TYPE and critical.image.docker-manifest-digest must be image_digest.
 * On success *ret_key_index (when not NULL) is the index in keys of the key that verified. */
int cosign_verify_simplesigning(const CosignKeyring *keys, const char *image_digest, const char *layer_media_type,
                                const void *payload, size_t payload_size, const char *signature_b64,
                                size_t *ret_key_index, Error *reterr);

/* 2. A Sigstore bundle (the layer blob of a referrer whose artifactType is
 * COSIGN_MEDIA_TYPE_BUNDLE, at most COSIGN_DOCUMENT_MAX): its mediaType must be
 * COSIGN_MEDIA_TYPE_BUNDLE and it must hold a dsseEnvelope. Key-based bundles
 * (verificationMaterial.publicKey) verify with any trusted key; the hint only improves the
 * message. Keyless ones (verificationMaterial.certificate) verify only with the trusted key
 * equal to the certificate's. The envelope is checked as in cosign_verify_dsse_envelope(). On
 * success *ret_predicate_type (when not NULL) is the statement's predicateType, to be freed:
 * COSIGN_PREDICATE_SIGN for a signature, see cosign_predicate_is_sbom() for an SBOM. */
int cosign_verify_bundle(const CosignKeyring *keys, const char *image_digest, const void *bundle_json, size_t size,
                         size_t *ret_key_index, char **ret_predicate_type, Error *reterr);

/* 3. One layer of the `.att` manifest (media type COSIGN_MEDIA_TYPE_DSSE, at most
 * COSIGN_DOCUMENT_MAX): a DSSE envelope {payloadType, payload, signatures[{keyid, sig}]}. The
 * payloadType must be COSIGN_PAYLOAD_TYPE_INTOTO; the first of the (at most
 * COSIGN_DSSE_SIGNATURES_MAX) signatures that verifies over the PAE with a trusted key wins
 * (keyid is not trusted, so not read); then the payload must be an in-toto statement (v0.1 or
 * v1) with a predicateType and a subject whose digest.sha256 is image_digest's hex. An
 * envelope signed by several keys counts for one of them. */
int cosign_verify_dsse_envelope(const CosignKeyring *keys, const char *image_digest, const void *envelope_json,
                                size_t size, size_t *ret_key_index, char **ret_predicate_type, Error *reterr);

/* A signed in-toto statement (v0.1 or v1, as the envelope's signature covered it): it has a
 * predicateType and a subject whose digest.sha256 is digest's hex ("sha256:<hex>"). -EBADMSG
 * when it is no statement, -EPERM (naming `whose` digest, e.g. "the image's") when no subject
 * matches. On success *ret_predicate_type (when not NULL) is the predicateType, to be freed. */
int cosign_check_statement(const char *digest, const char *whose, const void *payload, size_t size,
                           char **ret_predicate_type, Error *reterr);

/* Whether a predicateType names an SBOM: SPDX (https://spdx.dev/Document) or CycloneDX
 * (https://cyclonedx.org/bom), bare or followed by "/v" and a version such as 2.3. */
bool cosign_predicate_is_sbom(const char *predicate_type);

/* The distinct signers that made valid signatures for one image: trusted keys, and keyless
 * identities (cosign-keyless.h: an identity and its issuer). A threshold counts signers, not
 * signatures, so the same key or identity signing twice (a .sig layer and a bundle, say)
 * counts once. One tally per image; keep the keyring alive and unchanged while it is used. */
typedef struct CosignTally {
        size_t keys;               /* the keyring's size (k may be NULL: none) */
        uint64_t seen;             /* bit i: key i signed */
        size_t identities;         /* the identities configured, at most 64 */
        uint64_t seen_identities;  /* bit i: identity i signed */
} CosignTally;

void cosign_tally_init(CosignTally *t, const CosignKeyring *k, size_t n_identities);
/* An index from a successful verification; anything out of range is ignored. */
void cosign_tally_add(CosignTally *t, size_t key_index);
void cosign_tally_add_identity(CosignTally *t, size_t identity_index);
/* Keys plus identities. */
size_t cosign_tally_count(const CosignTally *t);
bool cosign_tally_has(const CosignTally *t, size_t key_index);
bool cosign_tally_has_identity(const CosignTally *t, size_t identity_index);

/* ---- The lower layers, shared by cosign.c and cosign-dsse.c, for tests and fuzzing ---- */

#define COSIGN_PRINTABLE_SIZE 81

/* A simple-signing payload whose signature verified (cosign_verify_simplesigning(), and the
 * keyless one of cosign-keyless.h): critical.type is COSIGN_SIMPLESIGNING_TYPE and
 * critical.image.docker-manifest-digest is image_digest. 0; -EBADMSG; -EPERM for another
 * digest. */
int cosign_check_simplesigning_payload(const char *image_digest, const void *payload, size_t size, Error *reterr);

/* Whether s is "sha256:" followed by 64 lowercase hex digits. */
bool cosign_image_digest_is_valid(const char *s);

/* Base64 as Sigstore writes it: the standard or the URL-safe alphabet (one of them), padded
 * or not, CR and LF skipped (Go's decoder skips them, and some producers wrap lines); nothing
 * after '=', no stray bits. 0, -EBADMSG or -ENOMEM; *ret is malloc()ed (and not empty unless
 * the input was). */
int cosign_base64_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_size);

/* Parses JSON (duplicate keys and NUL refused) after checking, without allocating, that it
 * nests at most max_depth deep and has at most max_tokens values and keys. -EBADMSG with a
 * message starting with `what`. */
int cosign_json_parse(const void *data, size_t size, unsigned max_depth, size_t max_tokens, const char *what,
                      json_t **ret, Error *reterr);

/* DSSE's pre-authentication encoding: "DSSEv1 <len(type)> <type> <len(payload)> <payload>",
 * lengths in decimal. 0 or -ENOMEM; *ret is malloc()ed. */
int cosign_dsse_pae(const char *type, const void *payload, size_t size, uint8_t **ret, size_t *ret_size);

/* At most 80 bytes of a string from the input, with anything but printable ASCII as '?', fit
 * for a message and a log line. */
const char *cosign_printable(const char *s, char buf[static COSIGN_PRINTABLE_SIZE]);
