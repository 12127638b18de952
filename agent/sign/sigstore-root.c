/* SPDX-License-Identifier: MIT */
/* trusted_root.json, read with jansson into the TrustedLog and TrustedAuthority arrays that the
 * verifiers take (sigstore-trust.h). The order: media type, then each list, each entry checked
 * completely (keys, key type, window) before the next. */

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "basic/fileio.h"
#include "basic/openssl-util.h"
#include "sign/cosign.h"
#include "sign/sigstore-json.h"
#include "sign/sigstore-root.h"

#define JSON_DEPTH_MAX 16u
#define JSON_TOKENS_MAX 16384u

static const char *const media_types[] = {
        "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "application/vnd.dev.sigstore.trustedroot+json;version=0.2",
        "application/vnd.dev.sigstore.trustedroot.v0.2+json",
};

/* The key types a log may have, as keyDetails names them (protobuf-specs PublicKeyDetails). */
typedef struct KeyDetails {
        const char *name;
        int base_id;       /* EVP_PKEY_EC, EVP_PKEY_ED25519, EVP_PKEY_RSA */
        const char *group; /* EC: the curve */
        int bits;          /* RSA: the size; 0: any of 2048 to 4096 */
        bool pkcs1;        /* rawBytes is a PKCS#1 RSAPublicKey, not a SubjectPublicKeyInfo */
} KeyDetails;

static const KeyDetails key_details[] = {
        { "PKIX_ECDSA_P256_SHA_256", EVP_PKEY_EC, "prime256v1" },
        { "PKIX_ECDSA_P384_SHA_384", EVP_PKEY_EC, "secp384r1" },
        { "PKIX_ECDSA_P521_SHA_512", EVP_PKEY_EC, "secp521r1" },
        { "PKIX_ED25519", EVP_PKEY_ED25519 },
        { "PKIX_RSA_PKCS1V15_2048_SHA256", EVP_PKEY_RSA, NULL, 2048 },
        { "PKIX_RSA_PKCS1V15_3072_SHA256", EVP_PKEY_RSA, NULL, 3072 },
        { "PKIX_RSA_PKCS1V15_4096_SHA256", EVP_PKEY_RSA, NULL, 4096 },
        { "PKIX_RSA_PKCS1V5", EVP_PKEY_RSA },
        { "PKCS1_RSA_PKCS1V5", EVP_PKEY_RSA, NULL, 0, true },
};

static const char *const log_keys[] = { "baseUrl", "hashAlgorithm", "publicKey", "logId", "checkpointKeyId",
                                        "operator", NULL };
static const char *const public_key_keys[] = { "rawBytes", "keyDetails", "validFor", NULL };
static const char *const time_range_keys[] = { "start", "end", NULL };
static const char *const log_id_keys[] = { "keyId", NULL };
static const char *const authority_keys[] = { "subject", "uri", "certChain", "validFor", "operator", NULL };
static const char *const subject_keys[] = { "organization", "commonName", NULL };
static const char *const chain_keys[] = { "certificates", NULL };
static const char *const certificate_keys[] = { "rawBytes", NULL };
static const char *const root_keys[] = { "mediaType", "tlogs", "certificateAuthorities", "ctlogs",
                                         "timestampAuthorities", NULL };

static void trusted_log_done(TrustedLog *l) {
        EVP_PKEY_free(l->key);
        free(l->unsupported);
        free(l->base_url);
}

static void trusted_authority_done(TrustedAuthority *a) {
        x509_stack_free(a->chain);
        free(a->uri);
}

SigstoreTrustedRoot *sigstore_root_free(SigstoreTrustedRoot *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_tlogs; i++)
                trusted_log_done(&r->tlogs[i]);
        for (size_t i = 0; i < r->n_ctlogs; i++)
                trusted_log_done(&r->ctlogs[i]);
        for (size_t i = 0; i < r->n_cas; i++)
                trusted_authority_done(&r->cas[i]);
        for (size_t i = 0; i < r->n_tsas; i++)
                trusted_authority_done(&r->tsas[i]);
        free(r->tlogs);
        free(r->ctlogs);
        free(r->cas);
        free(r->tsas);
        free(r);
        return NULL;
}

const TrustedLog *sigstore_root_find_log(const TrustedLog *logs, size_t n, const uint8_t *key_id, size_t size) {
        const TrustedLog *found = NULL;

        if (size != sizeof(logs->key_id))
                return NULL;
        /* One with a key first: a log listed twice, once with a key type not supported. */
        for (size_t i = 0; i < n && !(found && found->key); i++)
                if (memcmp(logs[i].key_id, key_id, size) == 0 && (!found || logs[i].key))
                        found = &logs[i];
        return found;
}

/* validFor: {start, end}; start required when the range is there (or always, when required). */
static int parse_window(json_t *obj, const char *what, bool required, time_t *ret_from, time_t *ret_until,
                        Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        json_t *range;
        int r;

        *ret_from = *ret_until = 0;
        r = sigstore_json_child(obj, what, "validFor", required, time_range_keys, &range, e);
        if (r < 0 || !range)
                return r;
        sigstore_json_path(path, what, "validFor", 0);
        r = sigstore_json_time(range, path, "start", true, ret_from, e);
        if (r < 0)
                return r;
        if (sigstore_json_get(range, "end")) {
                r = sigstore_json_time(range, path, "end", false, ret_until, e);
                if (r < 0)
                        return r;
                if (*ret_until < *ret_from)
                        return error_set(e, -EBADMSG, "%s ends before it starts", path);
        }
        return 0;
}

static int key_decode(const KeyDetails *d, const uint8_t *der, size_t size, EVP_PKEY **ret) {
        const unsigned char *p = der;
        EVP_PKEY *pkey;
        char group[64] = "";

        pkey = d->pkcs1 ? d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long) size) : d2i_PUBKEY(NULL, &p, (long) size);
        if (!pkey || p != der + size || EVP_PKEY_get_base_id(pkey) != d->base_id)
                goto bad;
        if (d->group && (EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1 || !streq(group, d->group)))
                goto bad;
        if (d->base_id == EVP_PKEY_RSA &&
            (d->bits ? EVP_PKEY_get_bits(pkey) != d->bits
                     : EVP_PKEY_get_bits(pkey) < 2048 || EVP_PKEY_get_bits(pkey) > 4096))
                goto bad;
        *ret = pkey;
        return 0;
bad:
        ERR_clear_error();
        EVP_PKEY_free(pkey);
        return -EBADMSG;
}

/* publicKey: {rawBytes, keyDetails, validFor}. A key of a type not in key_details is not
 * decoded: the log is kept without a key, and its type in ret->unsupported (sigstore-trust.h). */
static int parse_log_key(json_t *log, const char *what, TrustedLog *ret, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX], buf[COSIGN_PRINTABLE_SIZE];
        _cleanup_free_ uint8_t *der = NULL;
        const KeyDetails *d = NULL;
        const char *details;
        json_t *key;
        size_t size;
        int r;

        r = sigstore_json_child(log, what, "publicKey", true, public_key_keys, &key, e);
        if (r < 0)
                return r;
        sigstore_json_path(path, what, "publicKey", 0);
        r = sigstore_json_string(key, path, "keyDetails", true, 64, &details, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(key_details) && !d; i++)
                if (streq(key_details[i].name, details))
                        d = &key_details[i];
        if (details[0] == 0)
                return error_set(e, -EBADMSG, "%s.keyDetails is empty", path);
        r = sigstore_json_bytes(key, path, "rawBytes", true, SIGSTORE_KEY_MAX, &der, &size, e);
        if (r < 0)
                return r;
        if (!d) {
                /* Printable: it goes into messages. */
                ret->unsupported = strdup(cosign_printable(details, buf));
                if (!ret->unsupported)
                        return error_set(e, -ENOMEM, "out of memory");
        } else if (key_decode(d, der, size, &ret->key) < 0)
                return error_set(e, -EBADMSG, "%s.rawBytes is not a %s key", path, d->name);
        /* A log without a start would be trusted for anything it ever signed. */
        return parse_window(key, path, true, &ret->valid_from, &ret->valid_until, e);
}

/* logId or checkpointKeyId: {keyId} */
static int parse_key_id(json_t *log, const char *what, const char *key, bool required, uint8_t **ret,
                        size_t *ret_size, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        json_t *id;
        int r;

        r = sigstore_json_child(log, what, key, required, log_id_keys, &id, e);
        if (r < 0 || !id)
                return r;
        return sigstore_json_bytes(id, sigstore_json_path(path, what, key, 0), "keyId", true, 32, ret, ret_size, e);
}

static int parse_log(json_t *log, const char *what, TrustedLog *ret, Error *e) {
        _cleanup_free_ uint8_t *id = NULL, *checkpoint_id = NULL;
        size_t id_size, checkpoint_id_size;
        const char *hash, *url, *operator;
        int r;

        r = sigstore_json_object(log, what, log_keys, e);
        if (r < 0)
                return r;
        r = sigstore_json_string(log, what, "hashAlgorithm", true, 32, &hash, e);
        if (r < 0)
                return r;
        if (!streq(hash, "SHA2_256"))
                return error_set(e, -EPROTONOSUPPORT, "%s.hashAlgorithm is not SHA2_256", what);
        r = sigstore_json_string(log, what, "baseUrl", false, SIGSTORE_URL_MAX, &url, e);
        if (r >= 0)
                r = sigstore_json_string(log, what, "operator", false, SIGSTORE_URL_MAX, &operator, e);
        if (r >= 0)
                r = parse_key_id(log, what, "logId", true, &id, &id_size, e);
        if (r >= 0)
                r = parse_key_id(log, what, "checkpointKeyId", false, &checkpoint_id, &checkpoint_id_size, e);
        if (r < 0)
                return r;
        if (id_size != sizeof(ret->key_id))
                return error_set(e, -EBADMSG, "%s.logId.keyId is %zu bytes, not 32 (a SHA-256)", what, id_size);
        memcpy(ret->key_id, id, sizeof(ret->key_id));
        if (checkpoint_id && checkpoint_id_size < sizeof(ret->checkpoint_key_hint))
                return error_set(e, -EBADMSG, "%s.checkpointKeyId.keyId is %zu bytes, fewer than a key hint's %zu", what,
                                 checkpoint_id_size, sizeof(ret->checkpoint_key_hint));
        memcpy(ret->checkpoint_key_hint, checkpoint_id ?: id, sizeof(ret->checkpoint_key_hint));
        if (url && !(ret->base_url = strdup(url)))
                return error_set(e, -ENOMEM, "out of memory");
        return parse_log_key(log, what, ret, e);
}

static int parse_chain(json_t *authority, const char *what, STACK_OF(X509) **ret, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX], item[SIGSTORE_JSON_PATH_MAX];
        STACK_OF(X509) *chain;
        json_t *c, *certs, *cert;
        size_t i;
        int r;

        r = sigstore_json_child(authority, what, "certChain", true, chain_keys, &c, e);
        if (r < 0)
                return r;
        sigstore_json_path(path, what, "certChain", 0);
        r = sigstore_json_array(c, path, "certificates", true, SIGSTORE_ROOT_CHAIN_MAX, &certs, e);
        if (r < 0)
                return r;
        if (json_array_size(certs) == 0)
                return error_set(e, -EBADMSG, "%s.certificates is empty", path);
        chain = sk_X509_new_null();
        if (!chain)
                return error_set(e, -ENOMEM, "out of memory");
        json_array_foreach(certs, i, cert) {
                _cleanup_free_ uint8_t *der = NULL;
                const unsigned char *p;
                X509 *x = NULL;
                size_t size;

                sigstore_json_path(item, path, "certificates", 0);
                sigstore_json_path(item, item, NULL, i);
                r = sigstore_json_object(cert, item, certificate_keys, e);
                if (r >= 0)
                        r = sigstore_json_bytes(cert, item, "rawBytes", true, SIGSTORE_CERT_MAX, &der, &size, e);
                if (r >= 0) {
                        p = der;
                        x = d2i_X509(NULL, &p, (long) size);
                        if (!x || p != der + size)
                                r = error_set(e, -EBADMSG, "%s.rawBytes is not a DER X.509 certificate", item);
                }
                if (r >= 0 && !sk_X509_push(chain, x))
                        r = error_set(e, -ENOMEM, "out of memory");
                if (r < 0) {
                        ERR_clear_error();
                        X509_free(x);
                        x509_stack_free(chain);
                        return r;
                }
        }
        *ret = chain;
        return 0;
}

static int parse_authority(json_t *authority, const char *what, TrustedAuthority *ret, Error *e) {
        const char *uri, *operator;
        json_t *subject;
        int r;

        r = sigstore_json_object(authority, what, authority_keys, e);
        if (r >= 0)
                r = sigstore_json_child(authority, what, "subject", false, subject_keys, &subject, e);
        if (r >= 0)
                r = sigstore_json_string(authority, what, "uri", false, SIGSTORE_URL_MAX, &uri, e);
        if (r >= 0)
                r = sigstore_json_string(authority, what, "operator", false, SIGSTORE_URL_MAX, &operator, e);
        if (r >= 0)
                r = parse_window(authority, what, false, &ret->valid_from, &ret->valid_until, e);
        if (r < 0)
                return r;
        if (uri && !(ret->uri = strdup(uri)))
                return error_set(e, -ENOMEM, "out of memory");
        return parse_chain(authority, what, &ret->chain, e);
}

/* One of the four lists, into a new array of n elements of size elem; parse() fills each. */
static int parse_list(json_t *root, const char *key, size_t elem, void **ret, size_t *ret_n,
                      int (*parse)(json_t *v, const char *what, void *ret, Error *e), Error *e) {
        char what[SIGSTORE_JSON_PATH_MAX];
        json_t *list, *v;
        size_t i;
        int r;

        r = sigstore_json_array(root, "", key, false, SIGSTORE_ROOT_ENTRIES_MAX, &list, e);
        if (r < 0 || !list || json_array_size(list) == 0)
                return r;
        *ret = calloc(json_array_size(list), elem);
        if (!*ret)
                return error_set(e, -ENOMEM, "out of memory");
        json_array_foreach(list, i, v) {
                /* Counted first: the caller frees what was filled, also on failure. */
                *ret_n = i + 1;
                r = parse(v, sigstore_json_path(what, key, NULL, i), (uint8_t *) *ret + i * elem, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_log_cb(json_t *v, const char *what, void *ret, Error *e) {
        return parse_log(v, what, ret, e);
}

static int parse_authority_cb(json_t *v, const char *what, void *ret, Error *e) {
        return parse_authority(v, what, ret, e);
}

static int parse_root(json_t *root, SigstoreTrustedRoot *t, Error *e) {
        char buf[COSIGN_PRINTABLE_SIZE];
        const char *media_type;
        bool known = false;
        int r;

        r = sigstore_json_object(root, "", root_keys, e);
        if (r >= 0)
                r = sigstore_json_string(root, "", "mediaType", true, 128, &media_type, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(media_types); i++)
                known = known || streq(media_types[i], media_type);
        if (!known)
                return error_set(e, -EMEDIUMTYPE,
                                 "the mediaType is '%s', not a trusted root of version 0.1 or 0.2 (%s)",
                                 cosign_printable(media_type, buf), media_types[0]);
        r = parse_list(root, "tlogs", sizeof(TrustedLog), (void **) &t->tlogs, &t->n_tlogs, parse_log_cb, e);
        if (r >= 0)
                r = parse_list(root, "ctlogs", sizeof(TrustedLog), (void **) &t->ctlogs, &t->n_ctlogs, parse_log_cb, e);
        if (r >= 0)
                r = parse_list(root, "certificateAuthorities", sizeof(TrustedAuthority), (void **) &t->cas, &t->n_cas,
                               parse_authority_cb, e);
        if (r >= 0)
                r = parse_list(root, "timestampAuthorities", sizeof(TrustedAuthority), (void **) &t->tsas,
                               &t->n_tsas, parse_authority_cb, e);
        return r;
}

int sigstore_root_parse(const void *json, size_t size, SigstoreTrustedRoot **ret, Error *e) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *t = NULL;
        json_auto_t *root = NULL;
        int r;

        if (!json || size == 0)
                return error_set(e, -EBADMSG, "the trusted root is empty");
        if (size > SIGSTORE_ROOT_MAX)
                return error_set(e, -EFBIG, "the trusted root is %zu bytes, more than %u", size, SIGSTORE_ROOT_MAX);
        r = cosign_json_parse(json, size, JSON_DEPTH_MAX, JSON_TOKENS_MAX, "the trusted root", &root, e);
        if (r < 0)
                return r;
        t = calloc(1, sizeof(SigstoreTrustedRoot));
        if (!t)
                return error_set(e, -ENOMEM, "out of memory");
        r = parse_root(root, t, e);
        if (r < 0)
                return error_prefix(e, r, "the trusted root");
        *ret = TAKE_PTR(t);
        return 0;
}

int sigstore_root_load(const char *path, SigstoreTrustedRoot **ret, Error *e) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_full_file(path, SIGSTORE_ROOT_MAX, &data, &size);
        if (r == -EFBIG)
                return error_set(e, r, "the trusted root '%s' is larger than %u bytes", path, SIGSTORE_ROOT_MAX);
        if (r < 0)
                return error_set(e, r, "cannot read the trusted root '%s': %s", path, strerror(-r));
        r = sigstore_root_parse(data, size, ret, e);
        if (r < 0)
                return error_prefix(e, r, "'%s'", path);
        return 0;
}
