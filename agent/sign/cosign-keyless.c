/* SPDX-License-Identifier: MIT */
/* Keyless Cosign signatures of an image (cosign-keyless.h): a classic `.sig` layer is turned
 * into the Sigstore bundle v0.1 it amounts to, a cosign 3 bundle is parsed as one, and both
 * are verified by sigstore.c for each listed identity. */

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "basic/openssl-util.h"
#include "basic/strutil.h"
#include "sign/cosign-keyless.h"
#include "sign/cosign.h"
#include "sign/rfc3161.h"
#include "sign/sigstore-json.h"
#include "sign/tlog.h"

#define REKOR_BUNDLE_DEPTH_MAX 4u
#define REKOR_BUNDLE_TOKENS_MAX 32u
#define BODY_DEPTH_MAX 16u
#define BODY_TOKENS_MAX 4096u
#define LOG_ID_SIZE 32u

static const char *const rekor_bundle_keys[] = { "SignedEntryTimestamp", "Payload", NULL };
static const char *const rekor_payload_keys[] = { "body", "integratedTime", "logIndex", "logID", NULL };
static const char *const rfc3161_keys[] = { "SignedRFC3161Timestamp", NULL };

static int check_arguments(const CosignKeyless *k, const char *image_digest, Error *e) {
        char buf[COSIGN_PRINTABLE_SIZE];

        if (!cosign_image_digest_is_valid(image_digest))
                return error_set(e, -EINVAL, "'%s' is not an image digest (sha256: and 64 lowercase hex digits)",
                                 cosign_printable(image_digest, buf));
        if (!k || !k->root || k->n_identities == 0 || !k->identities)
                return error_set(e, -EINVAL, "no trusted root or identity for keyless signatures");
        return 0;
}

/* The signature verifies for one of the identities: the index of the one it names. Only an
 * identity the certificate names is verified (the whole verification, once); when it names
 * none, the first identity's verification says why it is refused (a chain, a log entry or a
 * signature that does not verify, before the identity). */
static int verify_identities(const CosignKeyless *k, const SigstoreBundle *b, const void *data, size_t size,
                             const uint8_t *sha256, size_t *ret_index, char **ret_signer, SigstoreVerified *ret,
                             Error *e) {
        size_t n = MIN(k->n_identities, (size_t) COSIGN_IDENTITIES_MAX), i;
        SigstorePolicy p;
        int r;

        for (i = 0; i < n; i++)
                if (sigstore_certificate_names(b->leaf, &k->identities[i]))
                        break;
        p = k->identities[i < n ? i : 0];
        p.key = NULL;
        r = sha256 ? sigstore_verify_digest(k->root, b, &p, sha256, ret, e)
                   : sigstore_verify(k->root, b, &p, data, size, ret, e);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return error_prefix(e, r == -EINVAL ? -EPERM : r, "keyless signature, for none of the %zu trusted "
                                    "identities", k->n_identities);
        if (i >= n) { /* cannot be: sigstore_verify() checked that identity */
                sigstore_verified_done(ret);
                return error_set(e, -EPERM, "keyless signature for no trusted identity");
        }
        if (ret_signer && sigstore_certificate_signer(b->leaf, &p, ret_signer) < 0) {
                sigstore_verified_done(ret);
                return error_set(e, -ENOMEM, "out of memory");
        }
        *ret_index = i;
        return 0;
}

static int parse_certificate(const char *pem, X509 **ret, Error *e) {
        size_t n = strnlen(pem, COSIGN_CERTIFICATE_PEM_MAX + 1);
        _cleanup_(bio_freep) BIO *bio = NULL;
        X509 *x;

        if (n > COSIGN_CERTIFICATE_PEM_MAX)
                return error_set(e, -EFBIG, "the " COSIGN_ANNOTATION_CERTIFICATE " annotation is larger than %u bytes",
                                 COSIGN_CERTIFICATE_PEM_MAX);
        bio = BIO_new_mem_buf(pem, (int) n);
        if (!bio)
                return error_set(e, -ENOMEM, "out of memory");
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        ERR_clear_error();
        if (!x)
                return error_set(e, -EBADMSG, "the " COSIGN_ANNOTATION_CERTIFICATE " annotation is not a PEM certificate");
        if (X509_check_ca(x) != 0) {
                X509_free(x);
                return error_set(e, -EBADMSG, "the " COSIGN_ANNOTATION_CERTIFICATE " annotation is a CA certificate, "
                                 "not the signing (leaf) certificate");
        }
        *ret = x;
        return 0;
}

/* The entry's kind and version, from the body the log signed ({apiVersion, kind, spec}):
 * sigstore.c reads the rest strictly. */
static int body_kind(SigstoreTlogEntry *t, Error *e) {
        json_auto_t *body = NULL;
        const char *kind, *version;
        int r;

        r = cosign_json_parse(t->body, t->body_size, BODY_DEPTH_MAX, BODY_TOKENS_MAX, "the Rekor entry's body", &body,
                              e);
        if (r < 0)
                return r;
        kind = json_string_value(json_object_get(body, "kind"));
        version = json_string_value(json_object_get(body, "apiVersion"));
        if (!kind || !version)
                return error_set(e, -EBADMSG, "the Rekor entry's body has no kind or apiVersion");
        t->kind = strdup(kind);
        t->version = strdup(version);
        return t->kind && t->version ? 0 : error_set(e, -ENOMEM, "out of memory");
}

/* The COSIGN_ANNOTATION_REKOR_BUNDLE annotation as the one entry of a v0.1 bundle. */
/* A JSON annotation of at most max bytes: an object of these keys only. */
static int parse_annotation(const char *annotation, const char *what, size_t max, const char *const *keys,
                            json_t **ret, Error *e) {
        size_t n = strnlen(annotation, max + 1);
        int r;

        if (n > max)
                return error_set(e, -EFBIG, "%s is larger than %zu bytes", what, max);
        r = cosign_json_parse(annotation, n, REKOR_BUNDLE_DEPTH_MAX, REKOR_BUNDLE_TOKENS_MAX, what, ret, e);
        if (r >= 0)
                r = sigstore_json_object(*ret, what, keys, e);
        return r;
}

static int parse_rekor_bundle(const char *annotation, SigstoreTlogEntry *t, Error *e) {
        static const char what[] = "the " COSIGN_ANNOTATION_REKOR_BUNDLE " annotation";
        json_auto_t *root = NULL;
        json_t *payload = NULL;
        const char *log_id = NULL;
        int r;

        r = parse_annotation(annotation, what, COSIGN_REKOR_BUNDLE_MAX, rekor_bundle_keys, &root, e);
        if (r >= 0)
                r = sigstore_json_bytes(root, what, "SignedEntryTimestamp", true, TLOG_SET_MAX, &t->set, &t->set_size, e);
        if (r >= 0)
                r = sigstore_json_child(root, what, "Payload", true, rekor_payload_keys, &payload, e);
        if (r >= 0)
                r = sigstore_json_bytes(payload, "Payload", "body", true, TLOG_BODY_MAX, &t->body, &t->body_size, e);
        if (r >= 0)
                r = sigstore_json_int64(payload, "Payload", "integratedTime", true, &t->integrated_time, e);
        if (r >= 0)
                r = sigstore_json_int64(payload, "Payload", "logIndex", true, &t->log_index, e);
        if (r >= 0)
                r = sigstore_json_string(payload, "Payload", "logID", true, 2 * LOG_ID_SIZE, &log_id, e);
        if (r < 0)
                return r;
        if (t->integrated_time <= 0 || t->log_index < 0 || !is_hex(log_id, 2 * LOG_ID_SIZE))
                return error_set(e, -EBADMSG, "%s: a negative time or index, or a logID that is not 64 hex digits",
                                 what);
        t->log_id = malloc(LOG_ID_SIZE);
        if (!t->log_id)
                return error_set(e, -ENOMEM, "out of memory");
        if (!OPENSSL_hexstr2buf_ex(t->log_id, LOG_ID_SIZE, &t->log_id_size, log_id, '\0')) {
                ERR_clear_error();
                return error_set(e, -EBADMSG, "%s: the logID does not decode", what);
        }
        return body_kind(t, e);
}

/* The COSIGN_ANNOTATION_RFC3161_TIMESTAMP annotation as the one timestamp of a bundle. */
static int parse_rfc3161_annotation(const char *annotation, SigstoreBundle *b, Error *e) {
        static const char what[] = "the " COSIGN_ANNOTATION_RFC3161_TIMESTAMP " annotation";
        json_auto_t *root = NULL;
        int r;

        r = parse_annotation(annotation, what, COSIGN_RFC3161_ANNOTATION_MAX, rfc3161_keys, &root, e);
        if (r < 0)
                return r;
        b->timestamps = calloc(1, sizeof(SigstoreBlob));
        if (!b->timestamps)
                return error_set(e, -ENOMEM, "out of memory");
        b->n_timestamps = 1;
        return sigstore_json_bytes(root, what, "SignedRFC3161Timestamp", true, RFC3161_TOKEN_MAX,
                                   &b->timestamps[0].data, &b->timestamps[0].size, e);
}

/* The verification material of the Sigstore bundle v0.1 a classic keyless layer amounts to:
 * the certificate and the one entry of its Rekor bundle annotation. */
static int classic_material(const char *certificate_pem, const char *rekor_bundle, SigstoreBundle **ret, Error *e) {
        _cleanup_(sigstore_bundle_freep) SigstoreBundle *b = calloc(1, sizeof(SigstoreBundle));
        int r;

        if (!b)
                return error_set(e, -ENOMEM, "out of memory");
        b->version = SIGSTORE_BUNDLE_V0_1;
        r = parse_certificate(certificate_pem, &b->leaf, e);
        if (r < 0)
                return r;
        if (!rekor_bundle)
                return error_set(e, -EPERM, "a keyless signature without a " COSIGN_ANNOTATION_REKOR_BUNDLE
                                 " annotation: its signing time cannot be verified offline");
        b->entries = calloc(1, sizeof(SigstoreTlogEntry));
        if (!b->entries)
                return error_set(e, -ENOMEM, "out of memory");
        b->n_entries = 1;
        r = parse_rekor_bundle(rekor_bundle, &b->entries[0], e);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

/* The Sigstore bundle v0.1 a classic keyless signature amounts to. */
static int classic_bundle(const char *signature_b64, const CosignKeylessLayer *layer, SigstoreBundle **ret, Error *e) {
        _cleanup_(sigstore_bundle_freep) SigstoreBundle *b = NULL;
        size_t n;
        int r;

        r = classic_material(layer->certificate, layer->rekor_bundle, &b, e);
        if (r >= 0 && layer->rfc3161_timestamp)
                r = parse_rfc3161_annotation(layer->rfc3161_timestamp, b, e);
        if (r < 0)
                return r;
        n = strnlen(signature_b64, COSIGN_SIGNATURE_B64_MAX + 1);
        if (n > COSIGN_SIGNATURE_B64_MAX)
                return error_set(e, -EFBIG, "the " COSIGN_ANNOTATION_SIGNATURE " annotation is larger than %u bytes",
                                 COSIGN_SIGNATURE_B64_MAX);
        r = cosign_base64_decode(signature_b64, n, &b->signature, &b->signature_size);
        if (r == -ENOMEM)
                return error_set(e, r, "out of memory");
        if (r < 0 || b->signature_size == 0)
                return error_set(e, -EBADMSG, "the " COSIGN_ANNOTATION_SIGNATURE " annotation is not valid base64");
        *ret = TAKE_PTR(b);
        return 0;
}

int cosign_keyless_verify_simplesigning(const CosignKeyless *k, const char *image_digest, const char *layer_media_type,
                                        const void *payload, size_t payload_size, const char *signature_b64,
                                        const CosignKeylessLayer *layer, size_t *ret_identity_index, char **ret_signer,
                                        Error *e) {
        _cleanup_(sigstore_bundle_freep) SigstoreBundle *b = NULL;
        _cleanup_free_ char *signer = NULL;
        char buf[COSIGN_PRINTABLE_SIZE];
        size_t index;
        int r;

        r = check_arguments(k, image_digest, e);
        if (r < 0)
                return r;
        if (!layer_media_type || !streq(layer_media_type, COSIGN_MEDIA_TYPE_SIMPLESIGNING))
                return error_set(e, -EMEDIUMTYPE,
                                 "the layer's media type is '%s', not a simple-signing signature (" COSIGN_MEDIA_TYPE_SIMPLESIGNING ")",
                                 cosign_printable(layer_media_type, buf));
        if (!layer || !layer->certificate)
                return error_set(e, -ENOKEY, "the layer has no " COSIGN_ANNOTATION_CERTIFICATE " annotation");
        if (!payload || payload_size == 0 || !signature_b64)
                return error_set(e, -EBADMSG, "the signature layer's payload or " COSIGN_ANNOTATION_SIGNATURE
                                 " annotation is empty");
        if (payload_size > COSIGN_PAYLOAD_MAX)
                return error_set(e, -EFBIG, "the signature layer's payload is %zu bytes, more than %u", payload_size,
                                 COSIGN_PAYLOAD_MAX);
        r = classic_bundle(signature_b64, layer, &b, e);
        if (r >= 0)
                r = verify_identities(k, b, payload, payload_size, NULL, &index, &signer, NULL, e);
        if (r >= 0)
                r = cosign_check_simplesigning_payload(image_digest, payload, payload_size, e);
        if (r < 0)
                return r;
        if (ret_identity_index)
                *ret_identity_index = index;
        if (ret_signer)
                *ret_signer = TAKE_PTR(signer);
        return 0;
}

/* A DSSE bundle (b) whose statement names the image: verified for one of the identities, the
 * outputs as cosign_keyless_verify_bundle()'s. */
static int verify_statement(const CosignKeyless *k, const char *image_digest, const SigstoreBundle *b,
                            size_t *ret_identity_index, char **ret_signer, char **ret_predicate_type, Error *e) {
        SigstoreVerified v = {};
        uint8_t sha256[32];
        size_t index;
        int r;

        if (!OPENSSL_hexstr2buf_ex(sha256, sizeof(sha256), NULL, image_digest + 7, '\0')) {
                ERR_clear_error();
                return error_set(e, -EINVAL, "the image digest does not decode");
        }
        r = verify_identities(k, b, NULL, 0, sha256, &index, ret_signer, &v, e);
        if (r < 0)
                return r;
        if (ret_identity_index)
                *ret_identity_index = index;
        if (ret_predicate_type)
                *ret_predicate_type = TAKE_PTR(v.predicate_type);
        sigstore_verified_done(&v);
        return 0;
}

int cosign_keyless_verify_bundle(const CosignKeyless *k, const char *image_digest, const void *bundle_json,
                                 size_t size, size_t *ret_identity_index, char **ret_signer, char **ret_predicate_type,
                                 Error *e) {
        _cleanup_(sigstore_bundle_freep) SigstoreBundle *b = NULL;
        int r;

        r = check_arguments(k, image_digest, e);
        if (r < 0)
                return r;
        r = sigstore_bundle_parse(bundle_json, size, &b, e);
        if (r < 0)
                return r;
        if (!b->leaf)
                return error_set(e, -ENOKEY, "the bundle is signed with a key, not keyless");
        return verify_statement(k, image_digest, b, ret_identity_index, ret_signer, ret_predicate_type, e);
}

int cosign_keyless_verify_attestation(const CosignKeyless *k, const char *image_digest, const void *envelope_json,
                                      size_t size, const CosignKeylessLayer *layer, size_t *ret_identity_index,
                                      char **ret_signer, char **ret_predicate_type, Error *e) {
        _cleanup_(sigstore_bundle_freep) SigstoreBundle *b = NULL;
        int r;

        r = check_arguments(k, image_digest, e);
        if (r < 0)
                return r;
        if (!layer || !layer->certificate)
                return error_set(e, -ENOKEY, "the layer has no " COSIGN_ANNOTATION_CERTIFICATE " annotation");
        r = classic_material(layer->certificate, layer->rekor_bundle, &b, e);
        if (r >= 0)
                r = sigstore_bundle_parse_envelope(envelope_json, size, b, e);
        if (r < 0)
                return r;
        return verify_statement(k, image_digest, b, ret_identity_index, ret_signer, ret_predicate_type, e);
}
