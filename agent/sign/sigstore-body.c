/* SPDX-License-Identifier: MIT */
/* A transparency-log entry's body against the bundle (sigstore.h, step 5): the log signed the
 * body, so the body must be about this signature, this certificate or key and this artifact,
 * or a valid entry for something else would vouch for it (CVE-2022-36056). The kinds, as
 * sigstore-python and sigstore-go match them:
 *
 *   hashedrekord 0.0.1  {spec: {data: {hash: {algorithm, value}}, signature: {content,
 *                       publicKey: {content}}}}: the artifact's digest (hex), the signature,
 *                       the certificate or key (base64 PEM)
 *   hashedrekord 0.0.2  {spec: {hashedRekordV002: {data: {algorithm, digest}, signature:
 *                       {content, verifier: {keyDetails, x509Certificate | publicKey}}}}}:
 *                       the artifact's digest (or, for a DSSE envelope, the digest of its PAE),
 *                       the signature, the certificate (DER) or key (SPKI)
 *   dsse 0.0.1          {spec: {envelopeHash, payloadHash, signatures: [{signature,
 *                       verifier}]}}: the payload's SHA-256, the signatures and their
 *                       verifiers (the envelope hash is not reproducible: not checked)
 *   intoto 0.0.2        {spec: {content: {envelope: {payload, payloadType, signatures:
 *                       [{sig, publicKey}]}, hash, payloadHash}}}: the payload's SHA-256, the
 *                       envelope's payload, type and signatures (base64 twice over, as Rekor
 *                       stores them) */

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "basic/openssl-util.h"
#include "basic/strutil.h"
#include "sign/cosign.h"
#include "sign/sigstore-internal.h"
#include "sign/sigstore-json.h"

#define BODY_DEPTH_MAX 16u
#define BODY_TOKENS_MAX 4096u
#define PEM_MAX (32u * 1024u)

static const char *const body_keys[] = { "apiVersion", "kind", "spec", NULL };
/* hashedrekord 0.0.1 */
static const char *const hr1_spec_keys[] = { "data", "signature", NULL };
static const char *const hr1_data_keys[] = { "hash", NULL };
static const char *const hash_keys[] = { "algorithm", "value", NULL };
static const char *const hr1_signature_keys[] = { "content", "publicKey", NULL };
static const char *const content_keys[] = { "content", NULL };
/* hashedrekord 0.0.2 */
static const char *const hr2_spec_keys[] = { "hashedRekordV002", NULL };
static const char *const hr2_keys[] = { "data", "signature", NULL };
static const char *const hr2_data_keys[] = { "algorithm", "digest", NULL };
static const char *const hr2_signature_keys[] = { "content", "verifier", NULL };
static const char *const hr2_verifier_keys[] = { "keyDetails", "x509Certificate", "publicKey", NULL };
static const char *const raw_bytes_keys[] = { "rawBytes", NULL };
/* dsse 0.0.1 */
static const char *const dsse_spec_keys[] = { "envelopeHash", "payloadHash", "signatures", NULL };
static const char *const dsse_signature_keys[] = { "signature", "verifier", NULL };
/* intoto 0.0.2 */
static const char *const intoto_spec_keys[] = { "content", NULL };
static const char *const intoto_content_keys[] = { "envelope", "hash", "payloadHash", NULL };
static const char *const intoto_envelope_keys[] = { "payload", "payloadType", "signatures", NULL };
static const char *const intoto_signature_keys[] = { "sig", "publicKey", "keyid", NULL };

/* The key types of hashedrekord 0.0.2's keyDetails and the hash each pairs with. */
static const struct {
        const char *name;
        int base_id;
        const char *group;
        const char *hash;
} key_details[] = {
        { "PKIX_ECDSA_P256_SHA_256", EVP_PKEY_EC, "prime256v1", "SHA2_256" },
        { "PKIX_ECDSA_P384_SHA_384", EVP_PKEY_EC, "secp384r1", "SHA2_384" },
        { "PKIX_ECDSA_P521_SHA_512", EVP_PKEY_EC, "secp521r1", "SHA2_512" },
        { "PKIX_ED25519", EVP_PKEY_ED25519, NULL, "SHA2_512" },
        { "PKIX_ED25519_PH", EVP_PKEY_ED25519, NULL, "SHA2_512" },
        { "PKIX_RSA_PKCS1V15_2048_SHA256", EVP_PKEY_RSA, NULL, "SHA2_256" },
        { "PKIX_RSA_PKCS1V15_3072_SHA256", EVP_PKEY_RSA, NULL, "SHA2_256" },
        { "PKIX_RSA_PKCS1V15_4096_SHA256", EVP_PKEY_RSA, NULL, "SHA2_256" },
};

static int mismatch(const char *what, const char *field, Error *e) {
        return error_set(e, -EPERM, "%s does not match the bundle: its %s differs", what, field);
}

static bool bytes_equal(const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size) {
        return a_size == b_size && memcmp(a, b, a_size) == 0;
}

int sigstore_pem_is_signer(const SigstoreContext *c, const void *pem, size_t size) {
        _cleanup_(openssl_freep) char *name = NULL, *header = NULL;
        _cleanup_(openssl_freep) unsigned char *der = NULL;
        _cleanup_(bio_freep) BIO *bio = BIO_new_mem_buf(pem, (int) MIN(size, (size_t) PEM_MAX));
        const unsigned char *p;
        long len;
        int r = -EBADMSG;

        if (!bio || PEM_read_bio(bio, &name, &header, &der, &len) != 1) {
                ERR_clear_error();
                return -EBADMSG;
        }
        p = der;
        if (streq(name, "CERTIFICATE")) {
                X509 *x = d2i_X509(NULL, &p, len);

                if (x && p == der + len)
                        r = c->b->leaf && X509_cmp(x, c->b->leaf) == 0 ? 0 : -EPERM;
                X509_free(x);
        } else if (streq(name, "PUBLIC KEY")) {
                EVP_PKEY *k = d2i_PUBKEY(NULL, &p, len);

                if (k && p == der + len)
                        r = !c->b->leaf && EVP_PKEY_eq(k, c->key) == 1 ? 0 : -EPERM;
                EVP_PKEY_free(k);
        }
        ERR_clear_error();
        return r;
}

/* A base64 field holding the signer's PEM. */
static int check_pem_field(const SigstoreContext *c, json_t *obj, const char *what, const char *key, Error *e) {
        _cleanup_free_ uint8_t *pem = NULL;
        size_t size;
        int r;

        r = sigstore_json_bytes(obj, what, key, true, PEM_MAX, &pem, &size, e);
        if (r < 0)
                return r;
        r = sigstore_pem_is_signer(c, pem, size);
        if (r == -EBADMSG)
                return error_set(e, r, "%s.%s is not a PEM certificate or public key", what, key);
        if (r < 0)
                return error_set(e, -EPERM, "%s.%s names another %s than the bundle's", what, key,
                                 c->b->leaf ? "certificate" : "key");
        return 0;
}

/* A base64 field equal to the bundle's signature; twice base64 when twice. */
static int check_signature_field(const SigstoreContext *c, json_t *obj, const char *what, const char *key,
                                 bool twice, Error *e) {
        _cleanup_free_ uint8_t *sig = NULL, *inner = NULL;
        size_t size, inner_size;
        int r;

        r = sigstore_json_bytes(obj, what, key, true, SIGSTORE_SIGNATURE_MAX * 2, &sig, &size, e);
        if (r < 0)
                return r;
        if (twice && cosign_base64_decode((const char *) sig, size, &inner, &inner_size) < 0)
                return error_set(e, -EPERM, "%s.%s is not the bundle's signature (not base64 twice over)", what, key);
        if (!bytes_equal(twice ? inner : sig, twice ? inner_size : size, c->b->signature, c->b->signature_size))
                return error_set(e, -EPERM, "%s.%s is not the bundle's signature", what, key);
        return 0;
}

/* An entry's signatures: exactly one, as the bundle's envelope has (sigstore-bundle.h), an object
 * of the given keys whose sig_key is the bundle's signature (twice base64 when twice) and whose
 * pem_key names the bundle's certificate or key. */
static int check_one_signature(const SigstoreContext *c, json_t *parent, const char *what,
                               const char *const *keys, const char *sig_key, bool twice, const char *pem_key,
                               Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        json_t *sigs, *sig;
        int r;

        r = sigstore_json_array(parent, what, "signatures", true, 16, &sigs, e);
        if (r < 0)
                return r;
        if (json_array_size(sigs) != 1)
                return mismatch(what, "number of signatures", e);
        sig = json_array_get(sigs, 0);
        sigstore_json_path(path, what, "signatures[0]", 0);
        r = sigstore_json_object(sig, path, keys, e);
        if (r >= 0)
                r = check_signature_field(c, sig, path, sig_key, twice, e);
        if (r >= 0)
                r = check_pem_field(c, sig, path, pem_key, e);
        return r;
}

/* {algorithm, value}: the hex digest of data with algorithm (only sha256 when sha256_only). */
static int check_hex_hash(json_t *obj, const char *what, const void *data, size_t size, bool sha256_only,
                          const char *field, Error *e) {
        uint8_t digest[SIGSTORE_DIGEST_MAX];
        char hex[2 * SIGSTORE_DIGEST_MAX + 1];
        const char *algorithm, *value;
        int r, n;

        r = sigstore_json_object(obj, what, hash_keys, e);
        if (r >= 0)
                r = sigstore_json_string(obj, what, "algorithm", true, 16, &algorithm, e);
        if (r >= 0)
                r = sigstore_json_string(obj, what, "value", true, sizeof(hex) - 1, &value, e);
        if (r < 0)
                return r;
        n = sha256_only && !streq(algorithm, "sha256") ? -EPROTONOSUPPORT : sigstore_digest(algorithm, data, size, digest);
        if (n == -ENOMEM)
                return error_set(e, n, "out of memory");
        if (n < 0)
                return error_set(e, -EPERM, "%s.algorithm is '%s', not supported", what, algorithm);
        hex_encode(digest, (size_t) n, hex);
        if (strcasecmp(hex, value) != 0)
                return error_set(e, -EPERM, "%s is not the %s's %s digest", what, field, algorithm);
        return 0;
}

static int check_hashedrekord_v1(const SigstoreContext *c, json_t *spec, const char *what, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        json_t *data, *hash, *sig, *key;
        int r;

        if (c->b->dsse)
                return error_set(e, -EPERM, "%s is a hashedrekord 0.0.1 entry, which records no DSSE envelope", what);
        r = sigstore_json_child(spec, what, "data", true, hr1_data_keys, &data, e);
        if (r >= 0)
                r = sigstore_json_child(data, sigstore_json_path(path, what, "data", 0), "hash", true, hash_keys, &hash, e);
        if (r >= 0)
                r = check_hex_hash(hash, sigstore_json_path(path, path, "hash", 0), c->artifact, c->artifact_size,
                                   false, "artifact", e);
        if (r >= 0)
                r = sigstore_json_child(spec, what, "signature", true, hr1_signature_keys, &sig, e);
        sigstore_json_path(path, what, "signature", 0);
        if (r >= 0)
                r = check_signature_field(c, sig, path, "content", false, e);
        if (r >= 0)
                r = sigstore_json_child(sig, path, "publicKey", true, content_keys, &key, e);
        if (r >= 0)
                r = check_pem_field(c, key, sigstore_json_path(path, path, "publicKey", 0), "content", e);
        return r;
}

/* verifier: {keyDetails, x509Certificate: {rawBytes} | publicKey: {rawBytes}}; the hash that
 * keyDetails pairs with into *ret_hash. */
static int check_hr2_verifier(const SigstoreContext *c, json_t *verifier, const char *what, const char **ret_hash,
                              Error *e) {
        _cleanup_(openssl_freep) unsigned char *own = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        char path[SIGSTORE_JSON_PATH_MAX], group[64] = "";
        const char *details, *field = c->b->leaf ? "x509Certificate" : "publicKey",
                             *other = c->b->leaf ? "publicKey" : "x509Certificate";
        json_t *holder;
        size_t size;
        int r, n;

        if (sigstore_json_get(verifier, other))
                return error_set(e, -EPERM, "%s names a %s, but the bundle is signed with a %s", what, other,
                                 c->b->leaf ? "certificate" : "key");
        r = sigstore_json_string(verifier, what, "keyDetails", true, 64, &details, e);
        if (r >= 0)
                r = sigstore_json_child(verifier, what, field, true, raw_bytes_keys, &holder, e);
        if (r >= 0)
                r = sigstore_json_bytes(holder, sigstore_json_path(path, what, field, 0), "rawBytes", true,
                                        SIGSTORE_CERT_MAX, &der, &size, e);
        if (r < 0)
                return r;
        n = c->b->leaf ? i2d_X509(c->b->leaf, &own) : i2d_PUBKEY(c->key, &own);
        ERR_clear_error();
        if (n <= 0 || !bytes_equal(der, size, own, (size_t) n))
                return error_set(e, -EPERM, "%s.%s is not the bundle's %s", what, field, c->b->leaf ? "certificate" : "key");
        (void) EVP_PKEY_get_group_name(c->key, group, sizeof(group), NULL);
        ERR_clear_error();
        for (size_t i = 0; i < ELEMENTSOF(key_details); i++)
                if (streq(key_details[i].name, details) && key_details[i].base_id == EVP_PKEY_get_base_id(c->key) &&
                    (!key_details[i].group || streq(key_details[i].group, group))) {
                        *ret_hash = key_details[i].hash;
                        return 0;
                }
        return error_set(e, -EPERM, "%s.keyDetails (%s) does not fit the signing key", what, details);
}

static int check_hashedrekord_v2(const SigstoreContext *c, json_t *spec, const char *what, Error *e) {
        _cleanup_free_ uint8_t *digest = NULL, *pae = NULL;
        char path[SIGSTORE_JSON_PATH_MAX], sig_path[SIGSTORE_JSON_PATH_MAX];
        uint8_t own[SIGSTORE_DIGEST_MAX];
        json_t *hr, *data, *sig, *verifier;
        const char *algorithm, *hash = NULL;
        size_t size, pae_size = 0;
        int r, n;

        r = sigstore_json_child(spec, what, "hashedRekordV002", true, hr2_keys, &hr, e);
        sigstore_json_path(path, what, "hashedRekordV002", 0);
        if (r >= 0)
                r = sigstore_json_child(hr, path, "signature", true, hr2_signature_keys, &sig, e);
        sigstore_json_path(sig_path, path, "signature", 0);
        if (r >= 0)
                r = check_signature_field(c, sig, sig_path, "content", false, e);
        if (r >= 0)
                r = sigstore_json_child(sig, sig_path, "verifier", true, hr2_verifier_keys, &verifier, e);
        if (r >= 0)
                r = check_hr2_verifier(c, verifier, sigstore_json_path(sig_path, sig_path, "verifier", 0), &hash, e);
        if (r >= 0)
                r = sigstore_json_child(hr, path, "data", true, hr2_data_keys, &data, e);
        sigstore_json_path(path, path, "data", 0);
        if (r >= 0)
                r = sigstore_json_string(data, path, "algorithm", true, 16, &algorithm, e);
        if (r >= 0)
                r = sigstore_json_bytes(data, path, "digest", true, SIGSTORE_DIGEST_MAX, &digest, &size, e);
        if (r < 0)
                return r;
        /* A DSSE envelope is logged as the digest of its PAE (rekor-v2-spec 6.1.4). */
        if (c->b->dsse && cosign_dsse_pae(c->b->payload_type, c->b->payload, c->b->payload_size, &pae, &pae_size) < 0)
                return error_set(e, -ENOMEM, "out of memory");
        if (!streq(algorithm, hash))
                return error_set(e, -EPERM, "%s.algorithm is %s, not the %s of the signing key", path, algorithm, hash);
        n = c->b->dsse ? sigstore_digest(algorithm, pae, pae_size, own)
                       : sigstore_digest(algorithm, c->artifact, c->artifact_size, own);
        if (n < 0)
                return error_set(e, n == -ENOMEM ? n : -EPERM, "%s.algorithm %s is not supported", path, algorithm);
        if (!bytes_equal(digest, size, own, (size_t) n))
                return mismatch(what, c->b->dsse ? "digest of the DSSE envelope" : "digest of the artifact", e);
        return 0;
}

static int check_dsse(const SigstoreContext *c, json_t *spec, const char *what, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        json_t *hash;
        int r;

        if (!c->b->dsse)
                return error_set(e, -EPERM, "%s is a dsse entry, but the bundle holds a message signature", what);
        r = sigstore_json_child(spec, what, "payloadHash", true, hash_keys, &hash, e);
        if (r >= 0)
                r = check_hex_hash(hash, sigstore_json_path(path, what, "payloadHash", 0), c->b->payload,
                                   c->b->payload_size, true, "envelope's payload", e);
        if (r < 0)
                return r;
        return check_one_signature(c, spec, what, dsse_signature_keys, "signature", false, "verifier", e);
}

static int check_intoto_envelope(const SigstoreContext *c, json_t *env, const char *what, Error *e) {
        _cleanup_free_ uint8_t *payload = NULL, *inner = NULL;
        const char *type;
        size_t size, inner_size;
        int r;

        r = sigstore_json_string(env, what, "payloadType", true, 256, &type, e);
        if (r >= 0 && !streq(type, c->b->payload_type))
                r = mismatch(what, "payloadType", e);
        if (r >= 0)
                r = sigstore_json_bytes(env, what, "payload", false, SIGSTORE_BUNDLE_MAX, &payload, &size, e);
        if (r >= 0 && payload &&
            (cosign_base64_decode((const char *) payload, size, &inner, &inner_size) < 0 ||
             !bytes_equal(inner, inner_size, c->b->payload, c->b->payload_size)))
                r = mismatch(what, "payload", e);
        if (r < 0)
                return r;
        return check_one_signature(c, env, what, intoto_signature_keys, "sig", true, "publicKey", e);
}

static int check_intoto(const SigstoreContext *c, json_t *spec, const char *what, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        json_t *content, *hash, *env;
        int r;

        if (!c->b->dsse)
                return error_set(e, -EPERM, "%s is an intoto entry, but the bundle holds a message signature", what);
        r = sigstore_json_child(spec, what, "content", true, intoto_content_keys, &content, e);
        sigstore_json_path(path, what, "content", 0);
        if (r >= 0)
                r = sigstore_json_child(content, path, "payloadHash", true, hash_keys, &hash, e);
        if (r >= 0)
                r = check_hex_hash(hash, sigstore_json_path(path, path, "payloadHash", 0), c->b->payload,
                                   c->b->payload_size, true, "envelope's payload", e);
        sigstore_json_path(path, what, "content", 0);
        if (r >= 0)
                r = sigstore_json_child(content, path, "envelope", true, intoto_envelope_keys, &env, e);
        if (r >= 0)
                r = check_intoto_envelope(c, env, sigstore_json_path(path, path, "envelope", 0), e);
        return r;
}

int sigstore_check_body(const SigstoreContext *c, const SigstoreTlogEntry *t, const char *what, Error *e) {
        static const char *const *spec_keys[] = { hr1_spec_keys, hr2_spec_keys, dsse_spec_keys, intoto_spec_keys };
        json_auto_t *body = NULL;
        char path[SIGSTORE_JSON_PATH_MAX], name[SIGSTORE_JSON_PATH_MAX];
        const char *kind, *version;
        json_t *spec;
        int r, k;

        (void) snprintf(name, sizeof(name), "%s's body", what);
        k = streq(t->kind, "hashedrekord") && streq(t->version, "0.0.1")   ? 0
            : streq(t->kind, "hashedrekord") && streq(t->version, "0.0.2") ? 1
            : streq(t->kind, "dsse") && streq(t->version, "0.0.1")         ? 2
            : streq(t->kind, "intoto") && streq(t->version, "0.0.2")       ? 3
                                                                           : -1;
        if (k < 0)
                return error_set(e, -EPERM, "%s is a %s %s entry, a kind this verifier does not know", what, t->kind,
                                 t->version);
        r = cosign_json_parse(t->body, t->body_size, BODY_DEPTH_MAX, BODY_TOKENS_MAX, name, &body, e);
        if (r >= 0)
                r = sigstore_json_object(body, name, body_keys, e);
        if (r >= 0)
                r = sigstore_json_string(body, name, "kind", true, 64, &kind, e);
        if (r >= 0)
                r = sigstore_json_string(body, name, "apiVersion", true, 64, &version, e);
        if (r >= 0 && (!streq(kind, t->kind) || !streq(version, t->version)))
                r = error_set(e, -EPERM, "%s is of kind %s %s, not the %s %s its kindVersion says", name, kind, version,
                              t->kind, t->version);
        if (r >= 0)
                r = sigstore_json_child(body, name, "spec", true, spec_keys[k], &spec, e);
        if (r < 0)
                return r;
        sigstore_json_path(path, name, "spec", 0);
        switch (k) {
        case 0:
                return check_hashedrekord_v1(c, spec, path, e);
        case 1:
                return check_hashedrekord_v2(c, spec, path, e);
        case 2:
                return check_dsse(c, spec, path, e);
        default:
                return check_intoto(c, spec, path, e);
        }
}
