/* SPDX-License-Identifier: MIT */
#pragma once

/* Test helpers: the pieces of the Sigstore conformance vectors (shared/vectors/sigstore-conformance:
 * bundles and trusted roots) as the primitives of agent/sign/ take them. Independent of the code
 * under test: base64 by OpenSSL's decoder, the trusted root read here with jansson. Include
 * after <cmocka.h>. Every helper fails the test when a vector is not as expected. */

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "basic/macro.h"
#include "sign/sigstore-trust.h"

#define VECTORS SHARED_VECTORS_DIR "/../sigstore-conformance/"
#define CASES VECTORS "cases/"
#define PRODUCTION_ROOT VECTORS "production_trusted_root.json"
#define VEC_MAX 8

static inline json_t *vec_json(const char *path) {
        json_error_t err;
        json_t *j = json_load_file(path, 0, &err);

        if (!j)
                fail_msg("cannot load '%s': %s", path, err.text);
        return j;
}

/* The bytes of a base64 string (standard alphabet, padded), malloc'ed. */
static inline uint8_t *vec_b64(const char *s, size_t *ret_size) {
        size_t n;
        uint8_t *out;
        int m;

        assert_non_null(s);
        n = strlen(s);
        out = malloc(n / 4 * 3 + 4);
        assert_non_null(out);
        m = EVP_DecodeBlock(out, (const unsigned char *) s, (int) n);
        assert_true(m >= 0);
        m -= n >= 1 && s[n - 1] == '=' ? (n >= 2 && s[n - 2] == '=' ? 2 : 1) : 0;
        *ret_size = (size_t) m;
        return out;
}

/* A JSON value by a path of object keys, "a.b.c"; arrays by index ("tlogEntries.0"). */
static inline json_t *vec_get(json_t *j, const char *path) {
        char buf[256], *p = buf, *dot;

        assert_true(strlen(path) < sizeof(buf));
        memcpy(buf, path, strlen(path) + 1);
        while (j && p) {
                char *end;
                unsigned long i;

                dot = strchr(p, '.');
                if (dot)
                        *dot = 0;
                i = strtoul(p, &end, 10);
                j = json_is_array(j) && *end == 0 && end != p ? json_array_get(j, i) : json_object_get(j, p);
                p = dot ? dot + 1 : NULL;
        }
        return j;
}

static inline const char *vec_str(json_t *j, const char *path) {
        const char *s = json_string_value(vec_get(j, path));

        if (!s)
                fail_msg("no string at '%s'", path);
        return s;
}

static inline uint8_t *vec_get_b64(json_t *j, const char *path, size_t *ret_size) {
        return vec_b64(vec_str(j, path), ret_size);
}

/* protobuf-JSON int64s are strings. */
static inline int64_t vec_int(json_t *j, const char *path) {
        json_t *v = vec_get(j, path);

        if (json_is_integer(v))
                return (int64_t) json_integer_value(v);
        return strtoll(vec_str(j, path), NULL, 10);
}

/* RFC 3339 to seconds (fractions dropped). */
static inline time_t vec_time(const char *s) {
        struct tm tm = {};
        const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

        assert_non_null(end);
        return timegm(&tm);
}

static inline X509 *vec_x509(const uint8_t *der, size_t size) {
        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, (long) size);

        assert_non_null(x);
        return x;
}

typedef struct VecRoot {
        TrustedLog tlogs[VEC_MAX], ctlogs[VEC_MAX];
        TrustedAuthority cas[VEC_MAX], tsas[VEC_MAX];
        size_t n_tlogs, n_ctlogs, n_cas, n_tsas;
} VecRoot;

static inline void vec_window(json_t *valid_for, time_t *from, time_t *until) {
        json_t *s = json_object_get(valid_for, "start"), *e = json_object_get(valid_for, "end");

        *from = json_is_string(s) ? vec_time(json_string_value(s)) : 0;
        *until = json_is_string(e) ? vec_time(json_string_value(e)) : 0;
}

static inline void vec_log(json_t *j, TrustedLog *ret) {
        _cleanup_free_ uint8_t *raw = NULL, *id = NULL;
        const unsigned char *p;
        size_t size, id_size;

        raw = vec_get_b64(j, "publicKey.rawBytes", &size);
        p = raw;
        ret->key = d2i_PUBKEY(NULL, &p, (long) size);
        if (!ret->key) { /* PKCS1_RSA_PKCS1V5: a bare RSAPublicKey */
                p = raw;
                ret->key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long) size);
        }
        assert_non_null(ret->key);
        id = vec_get_b64(j, "logId.keyId", &id_size);
        assert_int_equal(id_size, sizeof(ret->key_id));
        memcpy(ret->key_id, id, id_size);
        if (vec_get(j, "checkpointKeyId.keyId")) {
                _cleanup_free_ uint8_t *hint = vec_get_b64(j, "checkpointKeyId.keyId", &id_size);

                assert_true(id_size >= sizeof(ret->checkpoint_key_hint));
                memcpy(ret->checkpoint_key_hint, hint, sizeof(ret->checkpoint_key_hint));
        } else
                memcpy(ret->checkpoint_key_hint, ret->key_id, sizeof(ret->checkpoint_key_hint));
        vec_window(vec_get(j, "publicKey.validFor"), &ret->valid_from, &ret->valid_until);
        ret->base_url = strdup(vec_str(j, "baseUrl"));
}

static inline void vec_authority(json_t *j, TrustedAuthority *ret) {
        json_t *certs = vec_get(j, "certChain.certificates"), *c;
        size_t i;

        ret->chain = sk_X509_new_null();
        assert_non_null(ret->chain);
        json_array_foreach(certs, i, c) {
                _cleanup_free_ uint8_t *der = NULL;
                size_t size;

                der = vec_get_b64(c, "rawBytes", &size);
                assert_true(sk_X509_push(ret->chain, vec_x509(der, size)) > 0);
        }
        vec_window(json_object_get(j, "validFor"), &ret->valid_from, &ret->valid_until);
        ret->uri = strdup(json_is_string(json_object_get(j, "uri")) ? vec_str(j, "uri") : "(no uri)");
}

static inline void vec_root_load(const char *path, VecRoot *ret) {
        json_t *root = vec_json(path), *v;
        size_t i;

        *ret = (VecRoot) {};
        json_array_foreach(json_object_get(root, "tlogs"), i, v)
                if (ret->n_tlogs < VEC_MAX)
                        vec_log(v, &ret->tlogs[ret->n_tlogs++]);
        json_array_foreach(json_object_get(root, "ctlogs"), i, v)
                if (ret->n_ctlogs < VEC_MAX)
                        vec_log(v, &ret->ctlogs[ret->n_ctlogs++]);
        json_array_foreach(json_object_get(root, "certificateAuthorities"), i, v)
                if (ret->n_cas < VEC_MAX)
                        vec_authority(v, &ret->cas[ret->n_cas++]);
        json_array_foreach(json_object_get(root, "timestampAuthorities"), i, v)
                if (ret->n_tsas < VEC_MAX)
                        vec_authority(v, &ret->tsas[ret->n_tsas++]);
        json_decref(root);
}

static inline void vec_root_done(VecRoot *r) {
        for (size_t i = 0; i < r->n_tlogs; i++) {
                EVP_PKEY_free(r->tlogs[i].key);
                free(r->tlogs[i].base_url);
        }
        for (size_t i = 0; i < r->n_ctlogs; i++) {
                EVP_PKEY_free(r->ctlogs[i].key);
                free(r->ctlogs[i].base_url);
        }
        for (size_t i = 0; i < r->n_cas; i++) {
                sk_X509_pop_free(r->cas[i].chain, X509_free);
                free(r->cas[i].uri);
        }
        for (size_t i = 0; i < r->n_tsas; i++) {
                sk_X509_pop_free(r->tsas[i].chain, X509_free);
                free(r->tsas[i].uri);
        }
}

/* The transparency log whose key id is the base64 id. */
static inline const TrustedLog *vec_find_log(const VecRoot *r, const char *key_id_b64) {
        _cleanup_free_ uint8_t *id = NULL;
        size_t size;

        id = vec_b64(key_id_b64, &size);
        for (size_t i = 0; i < r->n_tlogs; i++)
                if (size == sizeof(r->tlogs[i].key_id) && memcmp(r->tlogs[i].key_id, id, size) == 0)
                        return &r->tlogs[i];
        fail_msg("no transparency log with key id %s", key_id_b64);
        return NULL;
}

/* A case's trusted root: its own, or the production one. */
static inline void vec_case_root(const char *name, VecRoot *ret) {
        char path[512];

        (void) snprintf(path, sizeof(path), CASES "%s/trusted_root.json", name);
        vec_root_load(access(path, F_OK) == 0 ? path : PRODUCTION_ROOT, ret);
}

static inline json_t *vec_case_bundle(const char *name) {
        char path[512];

        (void) snprintf(path, sizeof(path), CASES "%s/bundle.sigstore.json", name);
        return vec_json(path);
}

/* The bundle's leaf certificate (v0.3 certificate, or v0.1/v0.2 chain's first). */
static inline X509 *vec_bundle_leaf(json_t *bundle) {
        json_t *m = json_object_get(bundle, "verificationMaterial");
        _cleanup_free_ uint8_t *der = NULL;
        size_t size;

        der = vec_get_b64(m, json_object_get(m, "certificate") ? "certificate.rawBytes"
                                                               : "x509CertificateChain.certificates.0.rawBytes",
                          &size);
        return vec_x509(der, size);
}

/* The signature that timestamps are over: messageSignature's, or the DSSE envelope's first. */
static inline uint8_t *vec_bundle_signature(json_t *bundle, size_t *ret_size) {
        return vec_get_b64(bundle, json_object_get(bundle, "messageSignature") ? "messageSignature.signature"
                                                                              : "dsseEnvelope.signatures.0.sig",
                           ret_size);
}
