/* SPDX-License-Identifier: MIT */
#pragma once

/* What a Sigstore trusted root (trusted_root.json, pinned in the configuration, never fetched)
 * trusts, in the form the verifiers take it: certificate authorities (Fulcio; timestamp
 * authorities) as certificate chains, and logs (Rekor transparency logs; certificate
 * transparency logs) as public keys, each with the window in which the root trusts it. An
 * authority or a log whose window has ended still verifies what was signed inside it. */

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <time.h>

/* A certificate authority or a timestamp authority: its chain as the trusted root lists it, the
 * authority's own certificate first and the root last. */
typedef struct TrustedAuthority {
        STACK_OF(X509) *chain;
        time_t valid_from;  /* validFor.start; 0: none given */
        time_t valid_until; /* validFor.end; 0: open-ended */
        char *uri;          /* for messages */
} TrustedAuthority;

/* A transparency log (Rekor) or a certificate transparency log. A log whose key is of a type
 * this verifier does not support is listed all the same, with no key: key is NULL and
 * unsupported names the type (its keyDetails), so that an entry or an SCT of that log is
 * refused for that reason rather than as one of a log the root does not list. */
typedef struct TrustedLog {
        EVP_PKEY *key;     /* NULL exactly when unsupported is set */
        char *unsupported; /* keyDetails of a key type not supported ("PKIX_RSA_PSS_2048_SHA256"), or NULL */
        /* logId.keyId: SHA-256 of the DER SubjectPublicKeyInfo (RFC 6962), or for a Rekor v2
         * log's Ed25519 key its signed-note key id, SHA-256(name || "\n" || 0x01 || key). SCTs
         * and entries are matched by all 32 bytes. */
        uint8_t key_id[32];
        /* The signed-note key hint that picks a checkpoint's signature line: the first 4 bytes
         * of checkpointKeyId.keyId, or of logId.keyId when the root gives no checkpointKeyId. */
        uint8_t checkpoint_key_hint[4];
        time_t valid_from;  /* publicKey.validFor.start; 0: none given */
        time_t valid_until; /* publicKey.validFor.end; 0: open-ended */
        char *base_url;     /* for messages, and the checkpoint origin of a Rekor v2 log */
} TrustedLog;

/* Whether t lies in [from, until] (0 meaning unbounded on that side); the end is inclusive. */
static inline int trusted_window_contains(time_t from, time_t until, time_t t) {
        return (from == 0 || t >= from) && (until == 0 || t <= until);
}
