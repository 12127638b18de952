/* SPDX-License-Identifier: MIT */
/* DSSE envelopes over in-toto statements, bare (a classic `.att` layer) or inside a Sigstore
 * bundle v0.3 (cosign 3). The signature is checked over the PAE before the statement is read;
 * then a subject must name the image. Fields these formats may grow (tlogEntries,
 * timestampVerificationData, a DSSE signature's keyid) are not read, and so cannot matter. */

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "basic/openssl-util.h"
#include "sign/cosign.h"
#include "basic/strutil.h"

#define STATEMENT_V1 "https://in-toto.io/Statement/v1"
#define STATEMENT_V01 "https://in-toto.io/Statement/v0.1"

static int oom(Error *e) {
        return error_set(e, -ENOMEM, "out of memory");
}

static int check_arguments(const CosignKeyring *keys, const char *image_digest, const void *json, size_t size,
                           const char *what, Error *e) {
        char buf[COSIGN_PRINTABLE_SIZE];

        if (!cosign_image_digest_is_valid(image_digest))
                return error_set(e, -EINVAL, "'%s' is not an image digest (sha256: and 64 lowercase hex digits)",
                                 cosign_printable(image_digest, buf));
        if (!keys)
                return error_set(e, -EINVAL, "no keyring");
        if (!json || size == 0)
                return error_set(e, -EBADMSG, "the %s is empty", what);
        if (size > COSIGN_DOCUMENT_MAX)
                return error_set(e, -EFBIG, "the %s is %zu bytes, more than %u", what, size, COSIGN_DOCUMENT_MAX);
        return 0;
}

static void sha256_hex(const void *data, size_t size, char ret[static 65]) {
        unsigned char md[32];

        if (!EVP_Digest(data, size, md, NULL, EVP_sha256(), NULL)) {
                ERR_clear_error();
                (void) snprintf(ret, 65, "?");
                return;
        }
        hex_encode(md, sizeof(md), ret);
}

/* A base64 field of at most max encoded bytes, decoded, not empty. */
static int decode_field(json_t *parent, const char *key, size_t max, const char *what, uint8_t **ret,
                        size_t *ret_size, Error *e) {
        json_t *v = json_object_get(parent, key);
        int r;

        if (!json_is_string(v))
                return error_set(e, -EBADMSG, "%s has no \"%s\" string", what, key);
        if (json_string_length(v) > max)
                return error_set(e, -EBADMSG, "%s: \"%s\" is longer than %zu bytes", what, key, max);
        r = cosign_base64_decode(json_string_value(v), json_string_length(v), ret, ret_size);
        if (r == -ENOMEM)
                return oom(e);
        if (r < 0)
                return error_set(e, r, "%s: \"%s\" is not valid base64", what, key);
        if (*ret_size == 0)
                return error_set(e, -EBADMSG, "%s: \"%s\" is empty", what, key);
        return 0;
}

int cosign_check_statement(const char *image_digest, const char *whose, const void *payload, size_t size,
                           char **ret_predicate_type, Error *e) {
        json_auto_t *root = NULL;
        const char *type, *predicate, *first = NULL, *hex = image_digest + strlen("sha256:");
        char buf[COSIGN_PRINTABLE_SIZE];
        json_t *subjects, *subject;
        size_t i;
        int r;

        r = cosign_json_parse(payload, size, COSIGN_SIGNED_JSON_DEPTH_MAX, COSIGN_SIGNED_JSON_TOKENS_MAX,
                              "the signed statement", &root, e);
        if (r < 0)
                return r;
        type = json_string_value(json_object_get(root, "_type"));
        if (!type)
                return error_set(e, -EBADMSG, "the signed payload is not an in-toto statement (no \"_type\")");
        if (!streq(type, STATEMENT_V1) && !streq(type, STATEMENT_V01))
                return error_set(e, -EBADMSG, "the signed payload is of type '%s', not an in-toto statement (" STATEMENT_V1 ")",
                                 cosign_printable(type, buf));
        predicate = json_string_value(json_object_get(root, "predicateType"));
        if (!predicate || !predicate[0])
                return error_set(e, -EBADMSG, "the signed statement has no predicateType");
        subjects = json_object_get(root, "subject");
        if (!json_is_array(subjects) || json_array_size(subjects) == 0)
                return error_set(e, -EBADMSG, "the signed statement has no subject");

        json_array_foreach(subjects, i, subject) {
                json_t *digest = json_object_get(subject, "digest");
                const char *sha256;

                if (!json_is_object(digest))
                        return error_set(e, -EBADMSG, "subject %zu of the signed statement has no digest", i);
                sha256 = json_string_value(json_object_get(digest, "sha256"));
                if (!sha256)
                        continue;
                if (streq(sha256, hex)) {
                        if (ret_predicate_type) {
                                *ret_predicate_type = strdup(predicate);
                                if (!*ret_predicate_type)
                                        return oom(e);
                        }
                        return 0;
                }
                if (!first)
                        first = sha256;
        }
        if (!first)
                return error_set(e, -EPERM, "the statement's subjects name no sha256 digest, not %s %s", whose,
                                 image_digest);
        return error_set(e, -EPERM, "the statement's subject names sha256:%s, not %s %s", cosign_printable(first, buf),
                         whose, image_digest);
}

/* The envelope's signature over the PAE, by a trusted key (by key *only_key when given). On
 * success, *ret_payload is the statement, still unread. */
static int verify_envelope_signature(const CosignKeyring *keys, json_t *env, const char *what, const size_t *only_key,
                                     uint8_t **ret_payload, size_t *ret_payload_size, size_t *ret_key_index, Error *e) {
        _cleanup_free_ uint8_t *payload = NULL, *pae = NULL;
        char buf[COSIGN_PRINTABLE_SIZE];
        size_t payload_size = 0, pae_size = 0, index = 0, i;
        const char *payload_type;
        json_t *sigs, *sig;
        int r;

        if (!json_is_object(env))
                return error_set(e, -EBADMSG, "%s is not a JSON object", what);
        payload_type = json_string_value(json_object_get(env, "payloadType"));
        if (!payload_type)
                return error_set(e, -EBADMSG, "%s has no payloadType", what);
        if (!streq(payload_type, COSIGN_PAYLOAD_TYPE_INTOTO))
                return error_set(e, -EMEDIUMTYPE, "%s has payloadType '%s', not " COSIGN_PAYLOAD_TYPE_INTOTO, what,
                                 cosign_printable(payload_type, buf));
        r = decode_field(env, "payload", COSIGN_DOCUMENT_MAX, what, &payload, &payload_size, e);
        if (r < 0)
                return r;
        sigs = json_object_get(env, "signatures");
        if (!json_is_array(sigs) || json_array_size(sigs) == 0)
                return error_set(e, -EBADMSG, "%s has no signatures", what);
        if (json_array_size(sigs) > COSIGN_DSSE_SIGNATURES_MAX)
                return error_set(e, -EBADMSG, "%s has %zu signatures, more than %u", what, json_array_size(sigs),
                                 COSIGN_DSSE_SIGNATURES_MAX);
        r = cosign_dsse_pae(payload_type, payload, payload_size, &pae, &pae_size);
        if (r < 0)
                return oom(e);

        json_array_foreach(sigs, i, sig) {
                _cleanup_free_ uint8_t *raw = NULL;
                size_t raw_size = 0;
                char name[96];

                (void) snprintf(name, sizeof(name), "signature %zu of %s", i, what);
                if (!json_is_object(sig))
                        return error_set(e, -EBADMSG, "%s is not a JSON object", name);
                r = decode_field(sig, "sig", COSIGN_SIGNATURE_B64_MAX, name, &raw, &raw_size, e);
                if (r < 0)
                        return r;
                if (only_key ? cosign_key_verify(keys, *only_key, pae, pae_size, raw, raw_size) == 0
                             : cosign_keyring_verify(keys, pae, pae_size, raw, raw_size, &index) == 0) {
                        *ret_key_index = only_key ? *only_key : index;
                        *ret_payload = TAKE_PTR(payload);
                        *ret_payload_size = payload_size;
                        return 0;
                }
        }
        if (only_key)
                return error_set(e, -EPERM, "%s does not verify with the certificate's key (%s)", what,
                                 cosign_keyring_fingerprint(keys, *only_key));
        return error_set(e, -EPERM,
                         "%s does not verify with any of the %zu trusted keys: not signed by a trusted key, or the "
                         "payload or signature was changed",
                         what, cosign_keyring_size(keys));
}

static int verify_statement_and_return(const char *image_digest, const uint8_t *payload, size_t payload_size,
                                       size_t index, size_t *ret_key_index, char **ret_predicate_type, Error *e) {
        int r;

        r = cosign_check_statement(image_digest, "the image's", payload, payload_size, ret_predicate_type, e);
        if (r < 0)
                return r;
        if (ret_key_index)
                *ret_key_index = index;
        return 0;
}

int cosign_verify_dsse_envelope(const CosignKeyring *keys, const char *image_digest, const void *envelope_json,
                                size_t size, size_t *ret_key_index, char **ret_predicate_type, Error *e) {
        json_auto_t *root = NULL;
        _cleanup_free_ uint8_t *payload = NULL;
        size_t payload_size = 0, index = 0;
        int r;

        r = check_arguments(keys, image_digest, envelope_json, size, "DSSE envelope", e);
        if (r < 0)
                return r;
        r = cosign_json_parse(envelope_json, size, COSIGN_UNSIGNED_JSON_DEPTH_MAX, COSIGN_UNSIGNED_JSON_TOKENS_MAX,
                              "the DSSE envelope", &root, e);
        if (r < 0)
                return r;
        r = verify_envelope_signature(keys, root, "the DSSE envelope", NULL, &payload, &payload_size, &index, e);
        if (r < 0)
                return r;
        return verify_statement_and_return(image_digest, payload, payload_size, index, ret_key_index, ret_predicate_type,
                                           e);
}

/* Keyless: the trusted key that the certificate certifies, or -EPERM. The certificate's chain,
 * validity and identity are not looked at: only its key can make it trusted. */
static int certificate_key(const CosignKeyring *keys, json_t *certificate, size_t *ret_index, Error *e) {
        _cleanup_(openssl_freep) unsigned char *spki = NULL;
        _cleanup_(x509_freep) X509 *x509 = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        const unsigned char *p;
        size_t der_size = 0;
        char fp[65];
        int r, n;

        if (!json_is_object(certificate))
                return error_set(e, -EBADMSG, "the bundle's verificationMaterial.certificate is not an object");
        r = decode_field(certificate, "rawBytes", COSIGN_DOCUMENT_MAX, "the bundle's certificate", &der, &der_size, e);
        if (r < 0)
                return r;
        p = der;
        x509 = d2i_X509(NULL, &p, (long) der_size);
        if (!x509 || p != der + der_size) {
                ERR_clear_error();
                return error_set(e, -EBADMSG, "the bundle's certificate is not a DER X.509 certificate");
        }
        n = i2d_PUBKEY(X509_get0_pubkey(x509), &spki);
        if (n <= 0) {
                ERR_clear_error();
                return error_set(e, -EBADMSG, "the bundle's certificate has no usable public key");
        }
        if (cosign_keyring_find_spki(keys, spki, (size_t) n, ret_index) < 0) {
                sha256_hex(spki, (size_t) n, fp);
                return error_set(e, -EPERM,
                                 "not signed by a trusted key: the bundle is signed keyless, with a certificate for key "
                                 "SHA256:%s, which is none of the %zu trusted keys (certificates are not trusted, only keys)",
                                 fp, cosign_keyring_size(keys));
        }
        return 0;
}

/* When a key-based bundle does not verify: what its hint says, if it names an unknown key. */
static void explain_hint(const CosignKeyring *keys, json_t *public_key, Error *e) {
        _cleanup_free_ uint8_t *hint = NULL;
        const char *s = json_string_value(json_object_get(public_key, "hint"));
        char hex[65], old[ERROR_MESSAGE_MAX];
        size_t size = 0, index;

        if (!e || !s || cosign_base64_decode(s, strlen(s), &hint, &size) < 0 || size != 32 ||
            cosign_keyring_find_hint(keys, hint, &index) == 0)
                return;
        hex_encode(hint, 32, hex);
        memcpy(old, e->message, sizeof(old));
        (void) error_set(e, 0, "%s (its hint names key SHA256:%s, which is not trusted)", old, hex);
}

int cosign_verify_bundle(const CosignKeyring *keys, const char *image_digest, const void *bundle_json, size_t size,
                         size_t *ret_key_index, char **ret_predicate_type, Error *e) {
        json_auto_t *root = NULL;
        _cleanup_free_ uint8_t *payload = NULL;
        json_t *material, *certificate, *public_key, *env;
        size_t cert_key = 0, payload_size = 0, index = 0;
        char buf[COSIGN_PRINTABLE_SIZE];
        const char *media_type;
        int r;

        r = check_arguments(keys, image_digest, bundle_json, size, "bundle", e);
        if (r < 0)
                return r;
        r = cosign_json_parse(bundle_json, size, COSIGN_UNSIGNED_JSON_DEPTH_MAX, COSIGN_UNSIGNED_JSON_TOKENS_MAX,
                              "the bundle", &root, e);
        if (r < 0)
                return r;
        if (!json_is_object(root))
                return error_set(e, -EBADMSG, "the bundle is not a JSON object");
        media_type = json_string_value(json_object_get(root, "mediaType"));
        if (!media_type)
                return error_set(e, -EBADMSG, "the bundle has no mediaType");
        if (!streq(media_type, COSIGN_MEDIA_TYPE_BUNDLE))
                return error_set(e, -EMEDIUMTYPE, "the bundle's mediaType is '%s', not " COSIGN_MEDIA_TYPE_BUNDLE,
                                 cosign_printable(media_type, buf));
        env = json_object_get(root, "dsseEnvelope");
        if (!env) {
                if (json_object_get(root, "messageSignature"))
                        return error_set(e, -EBADMSG,
                                         "the bundle holds a messageSignature (a signed blob), not a DSSE envelope over a statement");
                return error_set(e, -EBADMSG, "the bundle has no dsseEnvelope");
        }
        material = json_object_get(root, "verificationMaterial");
        if (!json_is_object(material))
                return error_set(e, -EBADMSG, "the bundle has no verificationMaterial");
        certificate = json_object_get(material, "certificate");
        public_key = json_object_get(material, "publicKey");

        if (certificate) {
                r = certificate_key(keys, certificate, &cert_key, e);
                if (r < 0)
                        return r;
                r = verify_envelope_signature(keys, env, "the bundle's DSSE envelope", &cert_key, &payload,
                                              &payload_size, &index, e);
        } else if (json_is_object(public_key)) {
                r = verify_envelope_signature(keys, env, "the bundle's DSSE envelope", NULL, &payload, &payload_size,
                                              &index, e);
                if (r == -EPERM)
                        explain_hint(keys, public_key, e);
        } else
                return error_set(e, -EBADMSG, "the bundle's verificationMaterial has neither a publicKey nor a certificate");
        if (r < 0)
                return r;
        return verify_statement_and_return(image_digest, payload, payload_size, index, ret_key_index, ret_predicate_type,
                                           e);
}
