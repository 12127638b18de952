/* SPDX-License-Identifier: MIT */
/* Sigstore verification in the order of the client specification (sigstore.h): the policy
 * against the bundle, the signing times, the certificate (sigstore-cert.c), the log entries
 * (their bodies in sigstore-body.c), the signature. */

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "basic/strutil.h"
#include "basic/timeutil.h"
#include "sign/cosign.h"
#include "sign/rfc3161.h"
#include "sign/sigstore-internal.h"
#include "sign/sigstore-json.h"
#include "sign/tlog.h"

void sigstore_verified_done(SigstoreVerified *v) {
        if (!v)
                return;
        free(v->predicate_type);
        v->predicate_type = NULL;
}

int sigstore_digest(const char *algorithm, const void *data, size_t size, uint8_t ret[static SIGSTORE_DIGEST_MAX]) {
        static const struct {
                const char *rekor, *proto, *md;
        } hashes[] = {
                { "sha256", "SHA2_256", "SHA256" },
                { "sha384", "SHA2_384", "SHA384" },
                { "sha512", "SHA2_512", "SHA512" },
        };
        unsigned n = 0;

        for (size_t i = 0; algorithm && i < ELEMENTSOF(hashes); i++) {
                if (!streq(hashes[i].rekor, algorithm) && !streq(hashes[i].proto, algorithm))
                        continue;
                if (!EVP_Digest(data, size, ret, &n, EVP_get_digestbyname(hashes[i].md), NULL)) {
                        ERR_clear_error();
                        return -ENOMEM;
                }
                return (int) n;
        }
        return -EPROTONOSUPPORT;
}

/* The entry's log among the trusted root's Rekor logs, or a refusal naming its logId: a log not
 * listed, or one listed with a key type not supported. */
static int find_log(const SigstoreContext *c, const SigstoreTlogEntry *t, const char *what, const TrustedLog **ret,
                    Error *e) {
        const TrustedLog *log;
        char hex[2 * 64 + 1];

        log = sigstore_root_find_log(c->root->tlogs, c->root->n_tlogs, t->log_id, t->log_id_size);
        hex_encode(t->log_id, MIN(t->log_id_size, (size_t) 64), hex);
        if (!log)
                return error_set(e, -EPERM, "%s is from a log that the trusted root does not list (logId %s)", what, hex);
        if (!log->key)
                return error_set(e, -EPERM, "%s: log %s uses a key type this verifier does not support (%s)", what, hex,
                                 strna(log->unsupported));
        *ret = log;
        return 0;
}

static const char *log_name(const TrustedLog *log) {
        return log->base_url ?: "the log";
}

/* The policy fits the bundle: an identity for a certificate, a key for a key hint. */
static int check_policy(SigstoreContext *c, Error *e) {
        const SigstorePolicy *p = c->policy;

        if (c->b->leaf) {
                if (!p->identity || !p->issuer)
                        return error_set(e, -EINVAL,
                                         "the bundle is signed keyless (with a certificate): an expected identity and "
                                         "issuer are needed, not a key");
                c->key = X509_get0_pubkey(c->b->leaf);
                if (!c->key) {
                        ERR_clear_error();
                        return error_set(e, -EBADMSG, "the bundle's certificate has no usable public key");
                }
                return 0;
        }
        if (!p->key)
                return error_set(e, -EINVAL, "the bundle is signed with a key (its hint: %s), but no key was given",
                                 c->b->key_hint && c->b->key_hint[0] ? c->b->key_hint : "none");
        c->key = p->key;
        return 0;
}

static void add_time(SigstoreContext *c, time_t t) {
        if (c->n_times < ELEMENTSOF(c->times))
                c->times[c->n_times++] = t;
}

/* Each RFC 3161 timestamp over the signature that verifies with a trusted timestamp authority.
 * One that does not is not counted (as sigstore-go and sigstore-python do); first_error keeps
 * why the first one did not. */
static int timestamp_times(SigstoreContext *c, SigstoreVerified *v, Error *first_error, Error *e) {
        const SigstoreBundle *b = c->b;

        for (size_t i = 0; i < b->n_timestamps; i++) {
                Error te = {};
                time_t t;
                int r;

                r = rfc3161_verify(b->timestamps[i].data, b->timestamps[i].size, b->signature, b->signature_size,
                                   c->root->tsas, c->root->n_tsas, &t, &te);
                if (r == -ENOMEM)
                        return error_set(e, r, "out of memory");
                if (r < 0) {
                        if (!error_message(first_error))
                                (void) error_set(first_error, r, "timestamp %zu: %s", i,
                                                 error_message(&te) ?: strerror(-r));
                        continue;
                }
                add_time(c, t);
                v->n_timestamps++;
        }
        return 0;
}

/* Rekor v1 kinds, whose entries may carry an integrated time and a SET. */
static bool is_rekor_v1(const SigstoreTlogEntry *t) {
        return (streq(t->kind, "hashedrekord") && streq(t->version, "0.0.1")) ||
               (streq(t->kind, "dsse") && streq(t->version, "0.0.1")) ||
               (streq(t->kind, "intoto") && streq(t->version, "0.0.2"));
}

/* The integrated time of each entry whose SET verifies with its log's key, inside the log's
 * window. A SET that does not verify refuses: the entry was changed. */
static int log_times(SigstoreContext *c, SigstoreVerified *v, Error *e) {
        char what[SIGSTORE_JSON_PATH_MAX];

        for (size_t i = 0; i < c->b->n_entries; i++) {
                const SigstoreTlogEntry *t = &c->b->entries[i];
                const TrustedLog *log;
                char when[TIMESTAMP_MAX];
                Error le = {};
                int r;

                sigstore_json_path(what, "tlogEntries", NULL, i);
                if (!t->set)
                        continue;
                if (t->integrated_time == 0 || !is_rekor_v1(t))
                        return error_set(e, -EBADMSG, "%s (%s %s) has an inclusion promise but no integrated time of "
                                         "Rekor v1", what, t->kind, t->version);
                r = find_log(c, t, what, &log, e);
                if (r < 0)
                        return r;
                r = tlog_verify_set(log, t->body, t->body_size, t->integrated_time, t->log_index, t->set, t->set_size,
                                    &le);
                if (r < 0)
                        return error_set(e, -EPERM, "%s: the signed entry timestamp (integrated time %s) does not verify "
                                         "with the key of %s: %s", what,
                                         format_timestamp(when, (time_t) t->integrated_time), log_name(log),
                                         error_message(&le) ?: strerror(-r));
                add_time(c, (time_t) t->integrated_time);
                v->n_log_times++;
        }
        return 0;
}

/* Step 1: at least one verified time. */
static int establish_time(SigstoreContext *c, SigstoreVerified *v, Error *e) {
        Error first_error = {};
        bool rekor_v2 = false;
        int r;

        r = timestamp_times(c, v, &first_error, e);
        if (r >= 0)
                r = log_times(c, v, e);
        if (r < 0 || c->n_times > 0)
                return r;
        for (size_t i = 0; i < c->b->n_entries; i++)
                rekor_v2 = rekor_v2 || !is_rekor_v1(&c->b->entries[i]);
        if (error_message(&first_error))
                return error_set(e, -EPERM, "no verified signing time: no timestamp verifies with a trusted timestamp "
                                 "authority (%s)", first_error.message);
        if (rekor_v2)
                return error_set(e, -EPERM, "no verified signing time: a Rekor v2 entry has no integrated time, and the "
                                 "bundle no timestamp");
        return error_set(e, -EPERM, "no verified signing time: the bundle has neither a timestamp nor an entry with "
                         "a signed entry timestamp");
}

/* An entry without a verified integrated time is trusted by its log's window at the times
 * that the timestamps proved. */
static int check_log_window(const SigstoreContext *c, const SigstoreTlogEntry *t, const TrustedLog *log,
                            const char *what, Error *e) {
        char when[TIMESTAMP_MAX];

        if (t->set)
                return 0; /* tlog_verify_set() checked it at the integrated time */
        for (size_t i = 0; i < c->n_times; i++)
                if (!trusted_window_contains(log->valid_from, log->valid_until, c->times[i]))
                        return error_set(e, -EPERM, "%s: the trusted root does not trust %s at %s", what, log_name(log),
                                         format_timestamp(when, c->times[i]));
        return 0;
}

static int check_proof(const SigstoreTlogEntry *t, const TrustedLog *log, const char *what, Error *e) {
        const SigstoreInclusionProof *p = &t->proof;
        Error le = {};
        int r;

        r = tlog_verify_inclusion(t->body, t->body_size, (uint64_t) p->log_index, (uint64_t) p->tree_size, p->hashes,
                                  p->n_hashes, p->root_hash, &le);
        if (r < 0)
                return error_set(e, -EPERM, "%s: the inclusion proof does not verify: %s", what,
                                 error_message(&le) ?: strerror(-r));
        r = tlog_verify_checkpoint(p->checkpoint, p->checkpoint_size, log, (uint64_t) p->tree_size, p->root_hash, &le);
        if (r < 0)
                return error_set(e, -EPERM, "%s: the checkpoint does not verify with the key of %s: %s", what,
                                 log_name(log), error_message(&le) ?: strerror(-r));
        return 0;
}

/* Step 5. */
static int check_entries(const SigstoreContext *c, Error *e) {
        char what[SIGSTORE_JSON_PATH_MAX];
        int r;

        if (c->b->n_entries == 0)
                return error_set(e, -EPERM, "the bundle has no transparency-log entry");
        for (size_t i = 0; i < c->b->n_entries; i++) {
                const SigstoreTlogEntry *t = &c->b->entries[i];
                const TrustedLog *log;

                sigstore_json_path(what, "tlogEntries", NULL, i);
                r = find_log(c, t, what, &log, e);
                if (r >= 0)
                        r = check_log_window(c, t, log, what, e);
                if (r >= 0)
                        r = sigstore_check_body(c, t, what, e);
                if (r >= 0 && t->has_proof)
                        r = check_proof(t, log, what, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const char *signer_name(const SigstoreContext *c) {
        return c->b->leaf ? "the certificate's key" : "the given key";
}

static int check_message_signature(const SigstoreContext *c, Error *e) {
        const SigstoreBundle *b = c->b;
        uint8_t digest[SIGSTORE_DIGEST_MAX];
        int n;

        if (b->digest_algorithm) {
                n = sigstore_digest(b->digest_algorithm, c->artifact, c->artifact_size, digest);
                if (n == -ENOMEM)
                        return error_set(e, n, "out of memory");
                if (n < 0)
                        return error_set(e, -EPERM, "the bundle's messageDigest is of algorithm %s, not supported",
                                         b->digest_algorithm);
                if ((size_t) n != b->message_digest_size || memcmp(digest, b->message_digest, (size_t) n) != 0)
                        return error_set(e, -EPERM, "the bundle's messageDigest is not the artifact's %s digest",
                                         b->digest_algorithm);
        }
        if (cosign_pkey_verify(c->key, c->artifact, c->artifact_size, b->signature, b->signature_size) < 0)
                return error_set(e, -EPERM, "the signature does not verify over the artifact with %s: another file, "
                                 "or a changed signature", signer_name(c));
        return 0;
}

static int check_envelope(const SigstoreContext *c, SigstoreVerified *v, Error *e) {
        const SigstoreBundle *b = c->b;
        _cleanup_free_ uint8_t *pae = NULL;
        char digest[7 + 64 + 1] = "sha256:";
        size_t pae_size;

        if (!streq(b->payload_type, COSIGN_PAYLOAD_TYPE_INTOTO))
                return error_set(e, -EPERM, "the DSSE envelope's payloadType is '%s', not " COSIGN_PAYLOAD_TYPE_INTOTO,
                                 b->payload_type);
        if (cosign_dsse_pae(b->payload_type, b->payload, b->payload_size, &pae, &pae_size) < 0)
                return error_set(e, -ENOMEM, "out of memory");
        if (cosign_pkey_verify(c->key, pae, pae_size, b->signature, b->signature_size) < 0)
                return error_set(e, -EPERM, "the DSSE envelope's signature does not verify with %s", signer_name(c));
        hex_encode(c->artifact_sha256, sizeof(c->artifact_sha256), digest + 7);
        return cosign_check_statement(digest, "the artifact's", b->payload, b->payload_size, &v->predicate_type, e);
}

/* Steps 1-6 on a context whose artifact (or, for a DSSE bundle, only its SHA-256) is set. */
static int verify(SigstoreContext *c, SigstoreVerified *ret, Error *e) {
        const SigstoreBundle *b = c->b;
        SigstoreVerified v = {};
        int r;

        r = check_policy(c, e);
        if (r >= 0)
                r = establish_time(c, &v, e);
        if (r >= 0 && b->leaf)
                r = sigstore_check_certificate(c, e);
        if (r >= 0)
                r = check_entries(c, e);
        if (r >= 0)
                r = b->dsse ? check_envelope(c, &v, e) : check_message_signature(c, e);
        if (r < 0) {
                sigstore_verified_done(&v);
                return r;
        }
        v.n_entries = (unsigned) b->n_entries;
        v.signed_at = c->times[0];
        for (size_t i = 1; i < c->n_times; i++)
                v.signed_at = MIN(v.signed_at, c->times[i]);
        if (ret)
                *ret = v;
        else
                sigstore_verified_done(&v);
        return 0;
}

int sigstore_verify(const SigstoreTrustedRoot *root, const SigstoreBundle *b, const SigstorePolicy *policy,
                    const void *data, size_t size, SigstoreVerified *ret, Error *e) {
        SigstoreContext c = { .root = root, .b = b, .policy = policy, .artifact = data ?: "", .artifact_size = size };

        if (!root || !b || !policy)
                return error_set(e, -EINVAL, "no trusted root, bundle or policy");
        if (!EVP_Digest(c.artifact, size, c.artifact_sha256, NULL, EVP_sha256(), NULL))
                return error_set(e, -ENOMEM, "out of memory");
        return verify(&c, ret, e);
}

int sigstore_verify_digest(const SigstoreTrustedRoot *root, const SigstoreBundle *b, const SigstorePolicy *policy,
                           const uint8_t sha256[static 32], SigstoreVerified *ret, Error *e) {
        SigstoreContext c = { .root = root, .b = b, .policy = policy };

        if (!root || !b || !policy || !sha256)
                return error_set(e, -EINVAL, "no trusted root, bundle, policy or digest");
        /* A message signature signs the artifact itself, and a hashedrekord entry records its
         * digest by the signature's algorithm: neither can be checked from a SHA-256 alone. */
        if (!b->dsse)
                return error_set(e, -EPERM, "the bundle holds a message signature, not a DSSE envelope: it signs the "
                                 "artifact's bytes, which are not at hand");
        c.artifact = NULL;
        memcpy(c.artifact_sha256, sha256, sizeof(c.artifact_sha256));
        return verify(&c, ret, e);
}
