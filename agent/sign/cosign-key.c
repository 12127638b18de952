/* SPDX-License-Identifier: MIT */
/* The Cosign keyring: trusted public keys from PEM files, and the one place where a signature
 * meets OpenSSL. Only a "PUBLIC KEY" block is taken, as cosign's cryptoutils does; anything
 * else in a keyring file (a private key given by mistake, a certificate) is an error that says
 * what was found, because a keyring that silently loads nothing verifies nothing. */

#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "basic/openssl-util.h"
#include "sign/cosign-key.h"
#include "basic/fileio.h"
#include "basic/strutil.h"

#define RSA_BITS_MIN 2048
#define RSA_BITS_MAX 16384

typedef struct KeyType {
        const char *name;      /* as cosign_keyring_key_type() says it; RSA: "rsa" */
        int base_id;           /* EVP_PKEY_EC, EVP_PKEY_ED25519, EVP_PKEY_RSA */
        const char *group;     /* EC: the curve as OpenSSL names it */
        const char *hashes[3]; /* tried in this order; NULL-terminated; none for Ed25519 */
} KeyType;

/* SHA-256 first everywhere: it is what cosign uses with every key unless told otherwise. */
static const KeyType key_types[] = {
        { "ecdsa-p256", EVP_PKEY_EC, "prime256v1", { "SHA256" } },
        { "ecdsa-p384", EVP_PKEY_EC, "secp384r1", { "SHA256", "SHA384" } },
        { "ecdsa-p521", EVP_PKEY_EC, "secp521r1", { "SHA256", "SHA512" } },
        { "ed25519", EVP_PKEY_ED25519 },
        { "rsa", EVP_PKEY_RSA, NULL, { "SHA256", "SHA384", "SHA512" } },
};

typedef struct CosignKey {
        EVP_PKEY *pkey;
        const KeyType *type;
        char *path;
        uint8_t spki_sha256[32]; /* of the DER SubjectPublicKeyInfo */
        char fingerprint[COSIGN_FINGERPRINT_SIZE];
        char type_name[16];
} CosignKey;

struct CosignKeyring {
        CosignKey *keys;
        size_t n;
};


CosignKeyring *cosign_keyring_free(CosignKeyring *k) {
        if (!k)
                return NULL;
        for (size_t i = 0; i < k->n; i++) {
                EVP_PKEY_free(k->keys[i].pkey);
                free(k->keys[i].path);
        }
        free(k->keys);
        free(k);
        return NULL;
}

size_t cosign_keyring_size(const CosignKeyring *k) {
        return k ? k->n : 0;
}

const char *cosign_keyring_fingerprint(const CosignKeyring *k, size_t i) {
        return k && i < k->n ? k->keys[i].fingerprint : NULL;
}

const char *cosign_keyring_path(const CosignKeyring *k, size_t i) {
        return k && i < k->n ? k->keys[i].path : NULL;
}

const char *cosign_keyring_key_type(const CosignKeyring *k, size_t i) {
        return k && i < k->n ? k->keys[i].type_name : NULL;
}

static int key_type_of(EVP_PKEY *pkey, const char *path, const KeyType **ret, Error *e) {
        int id = EVP_PKEY_get_base_id(pkey);
        char group[64] = "";

        if (id == EVP_PKEY_EC && EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1) {
                ERR_clear_error();
                return error_set(e, -EPROTONOSUPPORT, "'%s': an EC key without a named curve is not supported", path);
        }
        for (size_t i = 0; i < ELEMENTSOF(key_types); i++) {
                if (key_types[i].base_id != id || (key_types[i].group && !streq(key_types[i].group, group)))
                        continue;
                if (id == EVP_PKEY_RSA && (EVP_PKEY_get_bits(pkey) < RSA_BITS_MIN || EVP_PKEY_get_bits(pkey) > RSA_BITS_MAX))
                        return error_set(e, -EPROTONOSUPPORT, "'%s': %d-bit RSA keys are not accepted (%d to %d bits)", path,
                                         EVP_PKEY_get_bits(pkey), RSA_BITS_MIN, RSA_BITS_MAX);
                *ret = &key_types[i];
                return 0;
        }
        return error_set(e, -EPROTONOSUPPORT,
                         "'%s': keys of type %s%s%s are not supported (ECDSA P-256, P-384, P-521, Ed25519, RSA)", path,
                         strna(EVP_PKEY_get0_type_name(pkey)), group[0] ? " on curve " : "", group);
}

/* The single "PUBLIC KEY" block of a PEM file, decoded. */
static int pem_public_key(const char *path, const char *text, size_t size, EVP_PKEY **ret, Error *e) {
        _cleanup_(openssl_freep) char *name = NULL, *header = NULL, *name2 = NULL, *header2 = NULL;
        _cleanup_(openssl_freep) unsigned char *der = NULL, *der2 = NULL;
        _cleanup_(bio_freep) BIO *bio = NULL;
        const unsigned char *p;
        EVP_PKEY *pkey;
        long len, len2;

        bio = BIO_new_mem_buf(text, (int) size);
        if (!bio)
                return error_set(e, -ENOMEM, "out of memory");
        if (PEM_read_bio(bio, &name, &header, &der, &len) != 1) {
                ERR_clear_error();
                return error_set(e, -EINVAL, "'%s' is not a PEM public key (no valid '-----BEGIN PUBLIC KEY-----' block)",
                                 path);
        }
        if (strstr(name, "PRIVATE KEY"))
                return error_set(e, -EINVAL, "'%s' holds a private key (%s), not a public key: give the .pub file", path,
                                 name);
        if (strstr(name, "CERTIFICATE"))
                return error_set(e, -EINVAL, "'%s' holds a certificate, not a public key", path);
        if (!streq(name, "PUBLIC KEY"))
                return error_set(e, -EINVAL, "'%s' holds a PEM block of type '%s', not 'PUBLIC KEY'", path, name);
        if (header && header[0])
                return error_set(e, -EINVAL, "'%s': a PUBLIC KEY block with PEM headers", path);
        if (PEM_read_bio(bio, &name2, &header2, &der2, &len2) == 1)
                return error_set(e, -EINVAL, "'%s' holds more than one PEM block: one key per file", path);
        ERR_clear_error();

        p = der;
        pkey = d2i_PUBKEY(NULL, &p, len);
        if (!pkey) {
                ERR_clear_error();
                return error_set(e, -EINVAL, "'%s': the PUBLIC KEY block does not decode", path);
        }
        if (p != der + len) {
                EVP_PKEY_free(pkey);
                return error_set(e, -EINVAL, "'%s': %ld bytes after the key in the PUBLIC KEY block", path,
                                 (long) (der + len - p));
        }
        *ret = pkey;
        return 0;
}

static int key_load(const char *path, CosignKey *ret, Error *e) {
        _cleanup_(evp_pkey_freep) EVP_PKEY *pkey = NULL;
        _cleanup_free_ char *text = NULL, *copy = NULL;
        _cleanup_free_ uint8_t *spki = NULL;
        CosignKey key = {};
        unsigned char *p;
        size_t size;
        int r, n;

        r = read_full_file(path, COSIGN_KEY_FILE_MAX, &text, &size);
        if (r == -EFBIG)
                return error_set(e, r, "'%s' is larger than %u bytes: not a public key", path, COSIGN_KEY_FILE_MAX);
        if (r < 0)
                return error_set(e, r, "cannot read the public key '%s': %s", path, strerror(-r));
        r = pem_public_key(path, text, size, &pkey, e);
        if (r < 0)
                return r;
        r = key_type_of(pkey, path, &key.type, e);
        if (r < 0)
                return r;

        n = i2d_PUBKEY(pkey, NULL);
        if (n <= 0 || !(spki = malloc((size_t) n)))
                return error_set(e, -ENOMEM, "out of memory");
        p = spki;
        if (i2d_PUBKEY(pkey, &p) != n || !EVP_Digest(spki, (size_t) n, key.spki_sha256, NULL, EVP_sha256(), NULL)) {
                ERR_clear_error();
                return error_set(e, -EIO, "'%s': cannot encode the key", path);
        }
        copy = strdup(path);
        if (!copy)
                return error_set(e, -ENOMEM, "out of memory");

        memcpy(key.fingerprint, "SHA256:", 7);
        hex_encode(key.spki_sha256, sizeof(key.spki_sha256), key.fingerprint + 7);
        if (key.type->base_id == EVP_PKEY_RSA)
                (void) snprintf(key.type_name, sizeof(key.type_name), "rsa-%d", EVP_PKEY_get_bits(pkey));
        else
                (void) snprintf(key.type_name, sizeof(key.type_name), "%s", key.type->name);
        key.pkey = TAKE_PTR(pkey);
        key.path = TAKE_PTR(copy);
        *ret = key;
        return 0;
}

/* EVP_PKEY_eq() rather than DER bytes: one EC key can be written with a compressed or an
 * uncompressed point. */
static bool find_pkey(const CosignKey *keys, size_t n, const EVP_PKEY *pkey, size_t *ret_index) {
        for (size_t i = 0; i < n; i++)
                if (EVP_PKEY_eq(keys[i].pkey, pkey) == 1) {
                        *ret_index = i;
                        return true;
                }
        ERR_clear_error();
        return false;
}

int cosign_keyring_load(char *const *pem_paths, CosignKeyring **ret, Error *e) {
        CosignKeyring *k;
        size_t n = strv_length(pem_paths);
        int r;

        if (n == 0)
                return error_set(e, -EINVAL, "no public keys given: a keyring without keys verifies nothing");
        if (n > COSIGN_KEYRING_MAX)
                return error_set(e, -E2BIG, "%zu public keys given, at most %u are supported", n, COSIGN_KEYRING_MAX);

        k = calloc(1, sizeof(CosignKeyring));
        if (!k || !(k->keys = calloc(n, sizeof(CosignKey)))) {
                free(k);
                return error_set(e, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
                size_t dup;

                r = key_load(pem_paths[i], &k->keys[i], e);
                if (r < 0) {
                        cosign_keyring_free(k);
                        return r;
                }
                k->n = i + 1;
                /* Distinct indexes must be distinct keys, or a threshold would count one key twice. */
                if (find_pkey(k->keys, i, k->keys[i].pkey, &dup)) {
                        r = error_set(e, -EINVAL, "'%s' holds the same key as '%s' (%s)", pem_paths[i], pem_paths[dup],
                                      k->keys[i].fingerprint);
                        cosign_keyring_free(k);
                        return r;
                }
        }
        *ret = k;
        return 0;
}

static bool verify_with(EVP_PKEY *pkey, const char *md, const void *data, size_t size, const void *sig,
                        size_t sig_size) {
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok;

        ok = ctx && EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, NULL, pkey, NULL) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_size, data, size) == 1;
        ERR_clear_error();
        return ok;
}

static int verify_type(EVP_PKEY *pkey, const KeyType *type, const void *data, size_t size, const void *sig,
                       size_t sig_size) {
        if (!sig || sig_size == 0)
                return -EPERM;
        if (!type->hashes[0])
                return verify_with(pkey, NULL, data, size, sig, sig_size) ? 0 : -EPERM;
        for (size_t h = 0; h < ELEMENTSOF(type->hashes) && type->hashes[h]; h++)
                if (verify_with(pkey, type->hashes[h], data, size, sig, sig_size))
                        return 0;
        return -EPERM;
}

int cosign_key_verify(const CosignKeyring *k, size_t i, const void *data, size_t size, const void *sig,
                      size_t sig_size) {
        if (!k || i >= k->n)
                return -EPERM;
        return verify_type(k->keys[i].pkey, k->keys[i].type, data, size, sig, sig_size);
}

int cosign_pkey_verify(EVP_PKEY *pkey, const void *data, size_t size, const void *sig, size_t sig_size) {
        const KeyType *type;

        if (!pkey || key_type_of(pkey, "key", &type, NULL) < 0)
                return -EPROTONOSUPPORT;
        return verify_type(pkey, type, data, size, sig, sig_size);
}

EVP_PKEY *cosign_keyring_get0_pkey(const CosignKeyring *k, size_t i) {
        return k && i < k->n ? k->keys[i].pkey : NULL;
}

int cosign_keyring_verify(const CosignKeyring *k, const void *data, size_t size, const void *sig, size_t sig_size,
                          size_t *ret_index) {
        for (size_t i = 0; i < cosign_keyring_size(k); i++)
                if (cosign_key_verify(k, i, data, size, sig, sig_size) == 0) {
                        *ret_index = i;
                        return 0;
                }
        return -EPERM;
}

int cosign_keyring_find_spki(const CosignKeyring *k, const void *spki, size_t size, size_t *ret_index) {
        _cleanup_(evp_pkey_freep) EVP_PKEY *pkey = NULL;
        const unsigned char *p = spki;

        if (!k || size > LONG_MAX)
                return -ENOKEY;
        pkey = d2i_PUBKEY(NULL, &p, (long) size);
        if (!pkey) {
                ERR_clear_error();
                return -ENOKEY;
        }
        return find_pkey(k->keys, k->n, pkey, ret_index) ? 0 : -ENOKEY;
}

int cosign_keyring_find_hint(const CosignKeyring *k, const uint8_t hint[static 32], size_t *ret_index) {
        for (size_t i = 0; i < cosign_keyring_size(k); i++)
                if (memcmp(k->keys[i].spki_sha256, hint, 32) == 0) {
                        *ret_index = i;
                        return 0;
                }
        return -ENOKEY;
}
