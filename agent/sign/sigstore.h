/* SPDX-License-Identifier: MIT */
#pragma once

/* Sigstore verification, offline: whether a bundle (sigstore-bundle.h) proves that an artifact
 * was signed by an expected identity (keyless: a Fulcio certificate) or by a given key (a
 * managed key), with nothing but the bundle and a pinned trusted root (sigstore-root.h). The
 * steps, in the order of the Sigstore client specification, each refusing with a message that
 * says which step failed and why:
 *
 *   1. the signing time(s), from verified sources only: each RFC 3161 timestamp that verifies
 *      with a trusted timestamp authority (one that does not is not counted), and the
 *      integrated time of each Rekor v1 entry whose signed entry timestamp (SET) verifies with
 *      the log's key, inside the log's window. A Rekor v2 entry has no integrated time: its
 *      bundle needs a timestamp. At least one time is required; a SET that does not verify
 *      refuses;
 *   2. keyless: the leaf certificate chains to a trusted Fulcio CA at every one of those times
 *      (OpenSSL's X509_verify_cert() with X509_VERIFY_PARAM_set_time(): the leaf was valid
 *      then), the CA's window in the trusted root contains the time, and the leaf is a
 *      code-signing certificate (EKU codeSigning, key usage digitalSignature);
 *   3. keyless: an SCT embedded in the leaf verifies with a trusted CT log (sct.h);
 *   4. keyless: the identity: a SAN of the leaf (URI or email) is exactly policy->identity, and
 *      the issuer extension (1.3.6.1.4.1.57264.1.8, else the older .1.1) exactly
 *      policy->issuer; or, for either with a compiled expression (identity_re, issuer_re), the
 *      whole string matches it (basic/whole-match.h);
 *   5. every transparency-log entry: its log is one of the trusted root's tlogs (by logId), its
 *      body is about this signature, this certificate or key and this artifact (hashedrekord
 *      0.0.1 and 0.0.2, dsse 0.0.1, intoto 0.0.2), and its inclusion proof leads to the root
 *      hash of a checkpoint signed by the log (a v0.1 bundle may carry its SET only);
 *   6. the signature: a messageSignature over the artifact (whose messageDigest, when given,
 *      must be the artifact's digest), or the DSSE envelope's signature over its PAE, whose
 *      in-toto statement must name the artifact's SHA-256 as a subject.
 *
 * A managed key (a bundle whose verification material is a public-key hint) goes through the
 * same steps, less 2-4: the key is policy->key, and the hint is not trusted.
 *
 * Returns 0 when the bundle proves it; -EPERM refused (reterr says which step and why);
 * -EBADMSG when a part the bundle carries (a log entry's body, a statement) is malformed, which
 * refuses as well; -EINVAL when the policy does not fit the bundle (no identity for a keyless
 * bundle, no key for a managed-key one); -ENOMEM. */

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "basic/error.h"
#include "sign/sigstore-bundle.h"
#include "sign/sigstore-root.h"

#define SIGSTORE_OID_ISSUER_V2 "1.3.6.1.4.1.57264.1.8" /* DER UTF8String */
#define SIGSTORE_OID_ISSUER_V1 "1.3.6.1.4.1.57264.1.1" /* the raw string */

typedef struct SigstorePolicy {
        const char *identity;       /* keyless: the certificate's SAN, exactly; or identity_re's text */
        const char *issuer;         /* keyless: the OIDC issuer, exactly; or issuer_re's text */
        const regex_t *identity_re; /* when not NULL: the whole SAN matches it (borrowed) */
        const regex_t *issuer_re;   /* when not NULL: the whole issuer matches it (borrowed) */
        EVP_PKEY *key;        /* managed key: the key that must have signed (borrowed) */
} SigstorePolicy;

typedef struct SigstoreVerified {
        time_t signed_at;      /* the earliest verified time */
        unsigned n_timestamps; /* RFC 3161 timestamps that verified */
        unsigned n_log_times;  /* integrated times of Rekor v1 entries that verified */
        unsigned n_entries;    /* transparency-log entries verified */
        char *predicate_type;  /* DSSE: the statement's predicateType; NULL for a message signature */
} SigstoreVerified;

void sigstore_verified_done(SigstoreVerified *v);

/* The artifact is data[0..size): what the message signature signs, or the file whose SHA-256 a
 * DSSE statement names. On success *ret (when not NULL) says what was proven. */
int sigstore_verify(const SigstoreTrustedRoot *root, const SigstoreBundle *bundle, const SigstorePolicy *policy,
                    const void *data, size_t size, SigstoreVerified *ret, Error *reterr);

/* Whether leaf names the policy's identity and issuer as step 4 requires; nothing is verified
 * (a choice among several policies, before sigstore_verify() decides). */
bool sigstore_certificate_names(X509 *leaf, const SigstorePolicy *policy);

/* "SAN (ISSUER)" of leaf for the policy it names: the SAN that matched and the issuer, as the
 * certificate has them, escaped for a terminal (cosign_printable()); what a deployment records
 * as its signer. 0, -ENOENT when leaf does not name the policy, -ENOMEM. */
int sigstore_certificate_signer(X509 *leaf, const SigstorePolicy *policy, char **ret);

/* The same for an artifact known by its SHA-256 only (a container image: its manifest's
 * digest), which the bundle's DSSE statement must name as a subject. A bundle with a message
 * signature is refused (-EPERM): it signs the artifact's bytes. */
int sigstore_verify_digest(const SigstoreTrustedRoot *root, const SigstoreBundle *bundle, const SigstorePolicy *policy,
                           const uint8_t sha256[static 32], SigstoreVerified *ret, Error *reterr);
