/* SPDX-License-Identifier: MIT */
#pragma once

/* A Sigstore trusted root (trusted_root.json, media type
 * application/vnd.dev.sigstore.trustedroot+json;version=0.1 or 0.2): the transparency logs
 * (Rekor), the certificate transparency logs, the certificate authorities (Fulcio) and the
 * timestamp authorities a verification trusts, each with the window in which it is trusted.
 * The file is pinned by the operator and never fetched; what it lists is all the trust there
 * is, so it is read strictly:
 *
 *   - every object's keys are those of the protobuf-specs message (TrustedRoot,
 *     TransparencyLogInstance, CertificateAuthority, PublicKey, TimeRange, ...); anything else
 *     is an error, as is a value of the wrong type;
 *   - a log's key is decoded as its keyDetails says (PKIX ECDSA P-256/P-384/P-521, Ed25519,
 *     RSA PKCS#1 v1.5; the deprecated PKCS1_RSA_PKCS1V5 as a PKCS#1 RSAPublicKey), and must be
 *     of that type. A log with another keyDetails (RSA-PSS, LMS, ML-DSA, a name not known
 *     here) is skipped, as sigstore-python does (sigstore-go refuses the root), so that a
 *     root that adds such a log still loads: it is listed with no key and its keyDetails in
 *     TrustedLog.unsupported (sigstore-trust.h), and what names it is refused for that
 *     reason. The rest of such a log is read as strictly (keys, logId, rawBytes as base64,
 *     validFor); a missing or empty keyDetails is malformed. A root may so be left without a
 *     usable log (or list none): it loads, and every verification that needs a log refuses;
 *   - a log's checkpointKeyId, when given (4 to 32 bytes), is the signed-note key id its
 *     checkpoints are signed under: its first 4 bytes are the log's checkpoint key hint
 *     (TrustedLog.checkpoint_key_hint; without it, logId's first 4). The signature is still
 *     verified with publicKey;
 *   - an authority's certificates are parsed whatever their key type (one that OpenSSL cannot
 *     use fails the chain verification, not the load);
 *   - a log must say from when it is trusted (publicKey.validFor.start): a missing bound is
 *     not taken as unbounded. An authority's validFor may be absent (always trusted), but when
 *     present it has a start;
 *   - a log's logId.keyId is 32 bytes; its hash algorithm is SHA2_256;
 *   - certificate chains hold 1 to SIGSTORE_ROOT_CHAIN_MAX DER certificates, the authority's
 *     own first and the root last.
 *
 * Errors: -EMEDIUMTYPE (another media type), -EFBIG (over a cap), -EBADMSG (malformed),
 * -EPROTONOSUPPORT (a log's hashAlgorithm other than SHA2_256), -ENOMEM; sigstore_root_load()
 * also the -errno of reading the file. reterr says what and where. */

#include <stddef.h>
#include <stdint.h>

#include "basic/error.h"
#include "basic/macro.h"
#include "sign/sigstore-trust.h"

/* Where verify-blob looks without --trusted-root (the path images.keyless.trusted-root is
 * given in the examples). */
#define SIGSTORE_TRUSTED_ROOT_DEFAULT "/etc/atticd-agent/trusted_root.json"

#define SIGSTORE_ROOT_MAX (1024u * 1024u)  /* bytes of trusted_root.json */
#define SIGSTORE_ROOT_ENTRIES_MAX 64u     /* logs, or authorities, of one kind */
#define SIGSTORE_ROOT_CHAIN_MAX 10u       /* certificates in one authority's chain */
#define SIGSTORE_CERT_MAX (32u * 1024u)   /* bytes of one DER certificate */
#define SIGSTORE_KEY_MAX (16u * 1024u)    /* bytes of one DER public key */
#define SIGSTORE_URL_MAX 1024u

typedef struct SigstoreTrustedRoot {
        TrustedLog *tlogs; /* Rekor */
        size_t n_tlogs;
        TrustedLog *ctlogs; /* certificate transparency */
        size_t n_ctlogs;
        TrustedAuthority *cas; /* Fulcio */
        size_t n_cas;
        TrustedAuthority *tsas; /* RFC 3161 timestamp authorities */
        size_t n_tsas;
} SigstoreTrustedRoot;

int sigstore_root_parse(const void *json, size_t size, SigstoreTrustedRoot **ret, Error *reterr);
int sigstore_root_load(const char *path, SigstoreTrustedRoot **ret, Error *reterr);

SigstoreTrustedRoot *sigstore_root_free(SigstoreTrustedRoot *r);
static inline void sigstore_root_freep(SigstoreTrustedRoot **r) {
        sigstore_root_free(*r);
}

/* The log of the n whose logId.keyId is key_id, or NULL; one with a key before one without
 * (TrustedLog.unsupported), which the caller must refuse with its reason. */
const TrustedLog *sigstore_root_find_log(const TrustedLog *logs, size_t n, const uint8_t *key_id, size_t size);
