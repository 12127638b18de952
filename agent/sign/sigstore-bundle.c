/* SPDX-License-Identifier: MIT */
/* The Sigstore bundle, read with jansson: the media type, the verification material (the
 * certificate or key hint, the log entries, the timestamps), then the content. Each field is
 * checked for its form as it is read; nothing is verified here (sigstore.c does). */

#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "basic/fileio.h"
#include "basic/openssl-util.h"
#include "sign/cosign.h"
#include "sign/sigstore-bundle.h"
#include "sign/sigstore-json.h"

#define JSON_DEPTH_MAX 16u
#define JSON_TOKENS_MAX 4096u
#define NAME_MAX_ 64u

static const struct {
        const char *media_type;
        SigstoreBundleVersion version;
} media_types[] = {
        { "application/vnd.dev.sigstore.bundle+json;version=0.1", SIGSTORE_BUNDLE_V0_1 },
        { "application/vnd.dev.sigstore.bundle+json;version=0.2", SIGSTORE_BUNDLE_V0_2 },
        { "application/vnd.dev.sigstore.bundle+json;version=0.3", SIGSTORE_BUNDLE_V0_3 },
        { "application/vnd.dev.sigstore.bundle.v0.3+json", SIGSTORE_BUNDLE_V0_3 },
};

static const char *const bundle_keys[] = { "mediaType", "verificationMaterial", "messageSignature", "dsseEnvelope",
                                           NULL };
static const char *const material_keys[] = { "publicKey", "x509CertificateChain", "certificate", "tlogEntries",
                                             "timestampVerificationData", NULL };
static const char *const public_key_keys[] = { "hint", NULL };
static const char *const chain_keys[] = { "certificates", NULL };
static const char *const certificate_keys[] = { "rawBytes", NULL };
static const char *const entry_keys[] = { "logIndex", "logId", "kindVersion", "integratedTime", "inclusionPromise",
                                          "inclusionProof", "canonicalizedBody", NULL };
static const char *const log_id_keys[] = { "keyId", NULL };
static const char *const kind_version_keys[] = { "kind", "version", NULL };
static const char *const promise_keys[] = { "signedEntryTimestamp", NULL };
static const char *const proof_keys[] = { "logIndex", "rootHash", "treeSize", "hashes", "checkpoint", NULL };
static const char *const checkpoint_keys[] = { "envelope", NULL };
static const char *const timestamp_data_keys[] = { "rfc3161Timestamps", NULL };
static const char *const timestamp_keys[] = { "signedTimestamp", NULL };
static const char *const message_signature_keys[] = { "messageDigest", "signature", NULL };
static const char *const digest_keys[] = { "algorithm", "digest", NULL };
static const char *const envelope_keys[] = { "payload", "payloadType", "signatures", NULL };
static const char *const dsse_signature_keys[] = { "sig", "keyid", NULL };

const char *sigstore_bundle_version_to_string(SigstoreBundleVersion v) {
        return v == SIGSTORE_BUNDLE_V0_1 ? "v0.1" : v == SIGSTORE_BUNDLE_V0_2 ? "v0.2" : "v0.3";
}

static void entry_done(SigstoreTlogEntry *t) {
        free(t->log_id);
        free(t->kind);
        free(t->version);
        free(t->set);
        free(t->proof.hashes);
        free(t->proof.checkpoint);
        free(t->body);
}

SigstoreBundle *sigstore_bundle_free(SigstoreBundle *b) {
        if (!b)
                return NULL;
        X509_free(b->leaf);
        free(b->key_hint);
        for (size_t i = 0; i < b->n_entries; i++)
                entry_done(&b->entries[i]);
        free(b->entries);
        for (size_t i = 0; i < b->n_timestamps; i++)
                free(b->timestamps[i].data);
        free(b->timestamps);
        free(b->signature);
        free(b->digest_algorithm);
        free(b->message_digest);
        free(b->payload_type);
        free(b->payload);
        free(b);
        return NULL;
}

static int oom(Error *e) {
        return error_set(e, -ENOMEM, "out of memory");
}

/* A copy of obj[key], a string of at most max bytes. */
static int dup_string(json_t *obj, const char *what, const char *key, bool required, size_t max, char **ret,
                      Error *e) {
        const char *s;
        int r;

        r = sigstore_json_string(obj, what, key, required, max, &s, e);
        if (r < 0 || !s)
                return r;
        if (required && !s[0])
                return error_set(e, -EBADMSG, "%s.%s is empty", what, key);
        *ret = strdup(s);
        return *ret ? 0 : oom(e);
}

static int int64_nonnegative(json_t *obj, const char *what, const char *key, bool required, int64_t *ret, Error *e) {
        int r;

        r = sigstore_json_int64(obj, what, key, required, ret, e);
        if (r < 0)
                return r;
        if (*ret < 0)
                return error_set(e, -EBADMSG, "%s.%s is negative (%" PRId64 ")", what, key, *ret);
        return 0;
}

static int parse_certificate(json_t *cert, const char *what, X509 **ret, Error *e) {
        _cleanup_free_ uint8_t *der = NULL;
        const unsigned char *p;
        X509 *x;
        size_t size;
        int r;

        r = sigstore_json_object(cert, what, certificate_keys, e);
        if (r >= 0)
                r = sigstore_json_bytes(cert, what, "rawBytes", true, 32u * 1024u, &der, &size, e);
        if (r < 0)
                return r;
        p = der;
        x = d2i_X509(NULL, &p, (long) size);
        if (!x || p != der + size) {
                ERR_clear_error();
                X509_free(x);
                return error_set(e, -EBADMSG, "%s.rawBytes is not a DER X.509 certificate", what);
        }
        *ret = x;
        return 0;
}

/* x509CertificateChain: the leaf, then intermediates only; a root in it is refused, as the
 * protobuf-specs client rules say (a chain to be trusted comes from the trusted root). */
static int parse_chain(json_t *material, SigstoreBundle *b, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        json_t *chain, *certs, *cert;
        size_t i;
        int r;

        r = sigstore_json_child(material, "verificationMaterial", "x509CertificateChain", true, chain_keys, &chain, e);
        if (r >= 0)
                r = sigstore_json_array(chain, "verificationMaterial.x509CertificateChain", "certificates", false,
                                        SIGSTORE_CHAIN_MAX, &certs, e);
        if (r < 0)
                return r;
        if (json_array_size(certs) == 0)
                return error_set(e, -EBADMSG, "verificationMaterial.x509CertificateChain is empty");
        json_array_foreach(certs, i, cert) {
                _cleanup_(x509_freep) X509 *x = NULL;

                sigstore_json_path(path, "verificationMaterial.x509CertificateChain.certificates", NULL, i);
                r = parse_certificate(cert, path, &x, e);
                if (r < 0)
                        return r;
                if (i == 0 && X509_check_ca(x) != 0)
                        return error_set(e, -EBADMSG, "%s is a CA certificate, not the signing (leaf) certificate", path);
                if (i > 0 && X509_self_signed(x, 0) == 1)
                        return error_set(e, -EBADMSG,
                                         "%s is a root (self-signed) certificate: a bundle's chain may not carry one", path);
                ERR_clear_error();
                if (i == 0)
                        b->leaf = TAKE_PTR(x);
        }
        return 0;
}

static int parse_inclusion_proof(json_t *proof, const char *what, SigstoreBundleVersion version,
                                 SigstoreTlogEntry *t, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        _cleanup_free_ uint8_t *root = NULL;
        json_t *hashes, *h, *checkpoint;
        size_t size, i;
        int r;

        r = sigstore_json_child(proof, what, "checkpoint", false, checkpoint_keys, &checkpoint, e);
        if (r < 0)
                return r;
        if (!checkpoint && version == SIGSTORE_BUNDLE_V0_1)
                return 0; /* useless without one; a v0.1 bundle is verified by its SET */
        if (!checkpoint)
                return error_set(e, -EBADMSG, "%s has no checkpoint", what);
        r = int64_nonnegative(proof, what, "logIndex", true, &t->proof.log_index, e);
        if (r >= 0)
                r = int64_nonnegative(proof, what, "treeSize", true, &t->proof.tree_size, e);
        if (r >= 0)
                r = sigstore_json_bytes(proof, what, "rootHash", true, TLOG_HASH_SIZE, &root, &size, e);
        if (r >= 0 && size != TLOG_HASH_SIZE)
                r = error_set(e, -EBADMSG, "%s.rootHash is %zu bytes, not %u", what, size, TLOG_HASH_SIZE);
        if (r >= 0)
                r = sigstore_json_array(proof, what, "hashes", false, SIGSTORE_PROOF_HASHES_MAX, &hashes, e);
        if (r >= 0)
                r = dup_string(checkpoint, sigstore_json_path(path, what, "checkpoint", 0), "envelope", true,
                               SIGSTORE_CHECKPOINT_MAX, &t->proof.checkpoint, e);
        if (r < 0)
                return r;
        memcpy(t->proof.root_hash, root, TLOG_HASH_SIZE);
        t->proof.checkpoint_size = strlen(t->proof.checkpoint);
        t->proof.hashes = calloc(MAX(json_array_size(hashes), 1u), TLOG_HASH_SIZE);
        if (!t->proof.hashes)
                return oom(e);
        json_array_foreach(hashes, i, h) {
                _cleanup_free_ uint8_t *hash = NULL;

                sigstore_json_path(path, what, "hashes", 0);
                sigstore_json_path(path, path, NULL, i);
                r = sigstore_json_decode(h, path, TLOG_HASH_SIZE, &hash, &size, e);
                if (r >= 0 && size != TLOG_HASH_SIZE)
                        r = error_set(e, -EBADMSG, "%s is %zu bytes, not %u", path, size, TLOG_HASH_SIZE);
                if (r < 0)
                        return r;
                memcpy(t->proof.hashes[i], hash, TLOG_HASH_SIZE);
                t->proof.n_hashes = i + 1;
        }
        t->has_proof = true;
        return 0;
}

static int parse_entry_id(json_t *entry, const char *what, SigstoreTlogEntry *t, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        json_t *id, *kv;
        int r;

        r = int64_nonnegative(entry, what, "logIndex", true, &t->log_index, e);
        if (r >= 0)
                r = sigstore_json_child(entry, what, "logId", true, log_id_keys, &id, e);
        if (r >= 0)
                r = sigstore_json_bytes(id, sigstore_json_path(path, what, "logId", 0), "keyId", true, 64, &t->log_id,
                                        &t->log_id_size, e);
        if (r >= 0)
                r = sigstore_json_child(entry, what, "kindVersion", true, kind_version_keys, &kv, e);
        sigstore_json_path(path, what, "kindVersion", 0);
        if (r >= 0)
                r = dup_string(kv, path, "kind", true, NAME_MAX_, &t->kind, e);
        if (r >= 0)
                r = dup_string(kv, path, "version", true, NAME_MAX_, &t->version, e);
        return r;
}

static int parse_entry(json_t *entry, const char *what, SigstoreBundleVersion version, bool has_timestamps,
                       SigstoreTlogEntry *t, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        json_t *promise, *proof;
        int r;

        r = sigstore_json_object(entry, what, entry_keys, e);
        if (r >= 0)
                r = parse_entry_id(entry, what, t, e);
        if (r >= 0)
                r = int64_nonnegative(entry, what, "integratedTime", false, &t->integrated_time, e);
        if (r >= 0)
                r = sigstore_json_bytes(entry, what, "canonicalizedBody", true, SIGSTORE_BUNDLE_MAX, &t->body,
                                        &t->body_size, e);
        if (r >= 0)
                r = sigstore_json_child(entry, what, "inclusionPromise", false, promise_keys, &promise, e);
        if (r >= 0 && promise)
                r = sigstore_json_bytes(promise, sigstore_json_path(path, what, "inclusionPromise", 0),
                                        "signedEntryTimestamp", true, SIGSTORE_SIGNATURE_MAX, &t->set, &t->set_size, e);
        if (r >= 0)
                r = sigstore_json_child(entry, what, "inclusionProof", false, proof_keys, &proof, e);
        if (r >= 0 && proof)
                r = parse_inclusion_proof(proof, sigstore_json_path(path, what, "inclusionProof", 0), version, t, e);
        if (r < 0)
                return r;
        if (version == SIGSTORE_BUNDLE_V0_1 && !t->set)
                return error_set(e, -EBADMSG, "%s has no inclusion promise, which a v0.1 bundle must carry", what);
        if (version != SIGSTORE_BUNDLE_V0_1 && !t->has_proof)
                return error_set(e, -EBADMSG, "%s has no inclusion proof, which a %s bundle must carry", what,
                                 sigstore_bundle_version_to_string(version));
        if (version != SIGSTORE_BUNDLE_V0_1 && !t->set && !has_timestamps)
                return error_set(e, -EBADMSG, "%s has no inclusion promise and the bundle no timestamp", what);
        return 0;
}

static int parse_timestamps(json_t *material, SigstoreBundle *b, Error *e) {
        const char *what = "verificationMaterial.timestampVerificationData";
        char path[SIGSTORE_JSON_PATH_MAX];
        json_t *data, *list, *ts;
        size_t i;
        int r;

        r = sigstore_json_child(material, "verificationMaterial", "timestampVerificationData", false,
                                timestamp_data_keys, &data, e);
        if (r < 0 || !data)
                return r;
        r = sigstore_json_array(data, what, "rfc3161Timestamps", false, SIGSTORE_TIMESTAMPS_MAX, &list, e);
        if (r < 0 || json_array_size(list) == 0)
                return r;
        b->timestamps = calloc(json_array_size(list), sizeof(SigstoreBlob));
        if (!b->timestamps)
                return oom(e);
        json_array_foreach(list, i, ts) {
                sigstore_json_path(path, what, "rfc3161Timestamps", 0);
                sigstore_json_path(path, path, NULL, i);
                r = sigstore_json_object(ts, path, timestamp_keys, e);
                if (r >= 0)
                        r = sigstore_json_bytes(ts, path, "signedTimestamp", true, SIGSTORE_TIMESTAMP_MAX,
                                                &b->timestamps[i].data, &b->timestamps[i].size, e);
                if (r < 0)
                        return r;
                b->n_timestamps = i + 1;
        }
        return 0;
}

static int parse_entries(json_t *material, SigstoreBundle *b, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        json_t *list, *entry;
        size_t i;
        int r;

        r = sigstore_json_array(material, "verificationMaterial", "tlogEntries", false, SIGSTORE_TLOG_ENTRIES_MAX,
                                &list, e);
        if (r < 0 || json_array_size(list) == 0)
                return r;
        b->entries = calloc(json_array_size(list), sizeof(SigstoreTlogEntry));
        if (!b->entries)
                return oom(e);
        json_array_foreach(list, i, entry) {
                b->n_entries = i + 1;
                r = parse_entry(entry, sigstore_json_path(path, "tlogEntries", NULL, i), b->version,
                                b->n_timestamps > 0, &b->entries[i], e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_material(json_t *root, SigstoreBundle *b, Error *e) {
        const char *what = "verificationMaterial";
        json_t *material, *public_key, *cert;
        int r, n;

        r = sigstore_json_child(root, "", what, true, material_keys, &material, e);
        if (r < 0)
                return r;
        n = !!sigstore_json_get(material, "publicKey") + !!sigstore_json_get(material, "x509CertificateChain") +
            !!sigstore_json_get(material, "certificate");
        if (n != 1)
                return error_set(e, -EBADMSG, "%s holds %s of publicKey, x509CertificateChain and certificate", what,
                                 n == 0 ? "none" : "more than one");
        if (sigstore_json_get(material, "publicKey")) {
                r = sigstore_json_child(material, what, "publicKey", true, public_key_keys, &public_key, e);
                if (r >= 0)
                        r = dup_string(public_key, "verificationMaterial.publicKey", "hint", false, 256, &b->key_hint, e);
        } else if (b->version == SIGSTORE_BUNDLE_V0_3) {
                if (!sigstore_json_get(material, "certificate"))
                        return error_set(e, -EBADMSG, "a v0.3 bundle carries a certificate, not an x509CertificateChain");
                cert = sigstore_json_get(material, "certificate");
                r = parse_certificate(cert, "verificationMaterial.certificate", &b->leaf, e);
                if (r >= 0 && X509_check_ca(b->leaf) != 0)
                        r = error_set(e, -EBADMSG, "verificationMaterial.certificate is a CA certificate, not a leaf");
        } else {
                if (!sigstore_json_get(material, "x509CertificateChain"))
                        return error_set(e, -EBADMSG, "a %s bundle carries an x509CertificateChain, not a certificate",
                                         sigstore_bundle_version_to_string(b->version));
                r = parse_chain(material, b, e);
        }
        if (r >= 0)
                r = parse_timestamps(material, b, e);
        if (r >= 0)
                r = parse_entries(material, b, e);
        return r;
}

static int parse_message_signature(json_t *root, SigstoreBundle *b, Error *e) {
        const char *what = "messageSignature";
        json_t *sig, *digest;
        int r;

        r = sigstore_json_child(root, "", what, true, message_signature_keys, &sig, e);
        if (r >= 0)
                r = sigstore_json_bytes(sig, what, "signature", true, SIGSTORE_SIGNATURE_MAX, &b->signature,
                                        &b->signature_size, e);
        if (r >= 0)
                r = sigstore_json_child(sig, what, "messageDigest", false, digest_keys, &digest, e);
        if (r < 0 || !digest)
                return r;
        r = dup_string(digest, "messageSignature.messageDigest", "algorithm", true, NAME_MAX_, &b->digest_algorithm, e);
        if (r >= 0)
                r = sigstore_json_bytes(digest, "messageSignature.messageDigest", "digest", true, 64, &b->message_digest,
                                        &b->message_digest_size, e);
        return r;
}

/* env: {payload, payloadType, signatures: [{sig, keyid}]}, checked to have these keys only. */
static int parse_envelope_object(json_t *env, const char *what, SigstoreBundle *b, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        json_t *sigs, *sig;
        int r;

        r = dup_string(env, what, "payloadType", true, 256, &b->payload_type, e);
        if (r >= 0)
                r = sigstore_json_bytes(env, what, "payload", true, SIGSTORE_BUNDLE_MAX, &b->payload, &b->payload_size, e);
        if (r >= 0)
                r = sigstore_json_array(env, what, "signatures", true, 16, &sigs, e);
        if (r < 0)
                return r;
        if (json_array_size(sigs) != 1)
                return error_set(e, -EBADMSG, "%s.signatures has %zu signatures, not one", what,
                                 json_array_size(sigs));
        sig = json_array_get(sigs, 0);
        sigstore_json_path(path, what, "signatures[0]", 0);
        r = sigstore_json_object(sig, path, dsse_signature_keys, e);
        if (r >= 0)
                r = sigstore_json_bytes(sig, path, "sig", true, SIGSTORE_SIGNATURE_MAX, &b->signature,
                                        &b->signature_size, e);
        b->dsse = true;
        return r;
}

static int parse_envelope(json_t *root, SigstoreBundle *b, Error *e) {
        json_t *env;
        int r;

        r = sigstore_json_child(root, "", "dsseEnvelope", true, envelope_keys, &env, e);
        return r < 0 ? r : parse_envelope_object(env, "dsseEnvelope", b, e);
}

static int parse_bundle(json_t *root, SigstoreBundle *b, Error *e) {
        char buf[COSIGN_PRINTABLE_SIZE];
        const char *media_type;
        bool known = false;
        int r;

        r = sigstore_json_object(root, "", bundle_keys, e);
        if (r >= 0)
                r = sigstore_json_string(root, "", "mediaType", true, 128, &media_type, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(media_types) && !known; i++)
                if (streq(media_types[i].media_type, media_type)) {
                        b->version = media_types[i].version;
                        known = true;
                }
        if (!known)
                return error_set(e, -EMEDIUMTYPE, "the mediaType is '%s', not a bundle of version 0.1, 0.2 or 0.3",
                                 cosign_printable(media_type, buf));
        if (!!sigstore_json_get(root, "messageSignature") == !!sigstore_json_get(root, "dsseEnvelope"))
                return error_set(e, -EBADMSG, "the bundle holds %s of messageSignature and dsseEnvelope",
                                 sigstore_json_get(root, "dsseEnvelope") ? "both" : "neither");
        r = parse_material(root, b, e);
        if (r < 0)
                return r;
        return sigstore_json_get(root, "dsseEnvelope") ? parse_envelope(root, b, e) : parse_message_signature(root, b, e);
}

int sigstore_bundle_parse(const void *json, size_t size, SigstoreBundle **ret, Error *e) {
        _cleanup_(sigstore_bundle_freep) SigstoreBundle *b = NULL;
        json_auto_t *root = NULL;
        int r;

        if (!json || size == 0)
                return error_set(e, -EBADMSG, "the bundle is empty");
        if (size > SIGSTORE_BUNDLE_MAX)
                return error_set(e, -EFBIG, "the bundle is %zu bytes, more than %u", size, SIGSTORE_BUNDLE_MAX);
        r = cosign_json_parse(json, size, JSON_DEPTH_MAX, JSON_TOKENS_MAX, "the bundle", &root, e);
        if (r < 0)
                return r;
        b = calloc(1, sizeof(SigstoreBundle));
        if (!b)
                return oom(e);
        r = parse_bundle(root, b, e);
        if (r < 0)
                return error_prefix(e, r, "the bundle");
        *ret = TAKE_PTR(b);
        return 0;
}

int sigstore_bundle_parse_envelope(const void *json, size_t size, SigstoreBundle *b, Error *e) {
        json_auto_t *root = NULL;
        int r;

        if (!json || size == 0)
                return error_set(e, -EBADMSG, "the DSSE envelope is empty");
        if (size > SIGSTORE_BUNDLE_MAX)
                return error_set(e, -EFBIG, "the DSSE envelope is %zu bytes, more than %u", size, SIGSTORE_BUNDLE_MAX);
        r = cosign_json_parse(json, size, JSON_DEPTH_MAX, JSON_TOKENS_MAX, "the DSSE envelope", &root, e);
        if (r >= 0)
                r = sigstore_json_object(root, "the DSSE envelope", envelope_keys, e);
        return r < 0 ? r : parse_envelope_object(root, "the DSSE envelope", b, e);
}

int sigstore_bundle_load(const char *path, SigstoreBundle **ret, Error *e) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_full_file(path, SIGSTORE_BUNDLE_MAX, &data, &size);
        if (r == -EFBIG)
                return error_set(e, r, "the bundle '%s' is larger than %u bytes", path, SIGSTORE_BUNDLE_MAX);
        if (r < 0)
                return error_set(e, r, "cannot read the bundle '%s': %s", path, strerror(-r));
        return sigstore_bundle_parse(data, size, ret, e);
}
