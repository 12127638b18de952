/* SPDX-License-Identifier: MIT */
/* Embedded SCTs (RFC 6962 3.2 and 3.3). OpenSSL parses the SCT list (X509_get_ext_d2i) and
 * each SCT (the SCT_get0_* accessors), re-encodes the certificate's TBSCertificate without the
 * list (i2d_re_X509_tbs) and checks the signature; what is written here is the log's signed
 * input, the TLS-encoded struct of RFC 6962 3.2, because OpenSSL's own SCT_validate() takes its
 * logs from a CTLOG_STORE, and a CTLOG_STORE can only be filled from a configuration file on
 * disk (CTLOG_STORE_load_file): there is no call that adds a CTLOG to one. */

#include <inttypes.h>
#include <openssl/ct.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "basic/openssl-util.h"
#include "basic/strutil.h"
#include "sign/sct.h"

#define SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP 0
#define ENTRY_TYPE_PRECERT 1

static void sct_list_freep(STACK_OF(SCT) **p) {
        SCT_LIST_free(*p);
}

/* What every SCT of a certificate signs but its own fields: the precertificate's TBS and the
 * issuer's key hash. */
typedef struct Precert {
        unsigned char *tbs;
        size_t tbs_size;
        uint8_t issuer_key_hash[32];
} Precert;

static void precert_done(Precert *p) {
        OPENSSL_free(p->tbs);
}

/* The precertificate's TBSCertificate as the log signed it: the leaf's, without the SCT list
 * extension (the precertificate had the poison extension instead, which the signed TBS lacks
 * as well: RFC 6962 3.2), re-encoded; and SHA-256 of the issuer's SubjectPublicKeyInfo. ret
 * starts zeroed; on failure the caller still frees it. */
static int precert_make(X509 *leaf, X509 *issuer, Precert *ret) {
        _cleanup_(x509_freep) X509 *copy = X509_dup(leaf);
        _cleanup_(openssl_freep) unsigned char *spki = NULL;
        int idx, n;

        if (!copy)
                return -ENOMEM;
        idx = X509_get_ext_by_NID(copy, NID_ct_precert_scts, -1);
        if (idx < 0)
                return -EBADMSG;
        X509_EXTENSION_free(X509_delete_ext(copy, idx));
        n = i2d_re_X509_tbs(copy, &ret->tbs);
        if (n <= 0)
                return -ENOMEM;
        ret->tbs_size = (size_t) n;
        n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(issuer), &spki);
        if (n <= 0 || !EVP_Digest(spki, (size_t) n, ret->issuer_key_hash, NULL, EVP_sha256(), NULL))
                return -ENOMEM; /* the caller frees ret->tbs */
        return 0;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, unsigned bytes) {
        for (unsigned i = 0; i < bytes; i++)
                p[i] = (uint8_t) (v >> (8 * (bytes - 1 - i)));
        return p + bytes;
}

/* RFC 6962 3.2's digitally-signed struct for a precert_entry: sct_version, signature_type,
 * timestamp, entry_type, issuer_key_hash, tbs_certificate<1..2^24-1>, extensions<0..2^16-1>. */
static int signed_input(const SCT *sct, const Precert *pc, uint8_t **ret, size_t *ret_size) {
        unsigned char *ext = NULL;
        size_t ext_size = SCT_get0_extensions(sct, &ext), size;
        uint8_t *buf, *p;

        if (pc->tbs_size == 0 || pc->tbs_size > 0xffffff || ext_size > 0xffff)
                return -EBADMSG;
        size = 1 + 1 + 8 + 2 + sizeof(pc->issuer_key_hash) + 3 + pc->tbs_size + 2 + ext_size;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        p = put_be(buf, SCT_VERSION_V1, 1);
        p = put_be(p, SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP, 1);
        p = put_be(p, SCT_get_timestamp(sct), 8);
        p = put_be(p, ENTRY_TYPE_PRECERT, 2);
        memcpy(p, pc->issuer_key_hash, sizeof(pc->issuer_key_hash));
        p = put_be(p + sizeof(pc->issuer_key_hash), pc->tbs_size, 3);
        memcpy(p, pc->tbs, pc->tbs_size);
        p = put_be(p + pc->tbs_size, ext_size, 2);
        if (ext_size > 0)
                memcpy(p, ext, ext_size);
        *ret = buf;
        *ret_size = size;
        return 0;
}

/* The SCT's signature by key: ECDSA or RSA PKCS#1 v1.5, with SHA-256 (RFC 6962 2.1.4), of the
 * key's type. */
static int verify_signature(const SCT *sct, const Precert *pc, EVP_PKEY *key) {
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *input = NULL;
        unsigned char *sig = NULL;
        size_t input_size = 0, sig_size = SCT_get0_signature(sct, &sig);
        int type = EVP_PKEY_get_base_id(key), r;
        bool ok;

        switch (SCT_get_signature_nid(sct)) {
        case NID_ecdsa_with_SHA256:
                if (type != EVP_PKEY_EC)
                        return -EPERM;
                break;
        case NID_sha256WithRSAEncryption:
                if (type != EVP_PKEY_RSA)
                        return -EPERM;
                break;
        default:
                return -EPERM;
        }
        r = signed_input(sct, pc, &input, &input_size);
        if (r < 0)
                return r;
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        ok = sig_size > 0 && EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, key, NULL) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_size, input, input_size) == 1;
        ERR_clear_error();
        return ok ? 0 : -EPERM;
}

/* One SCT against the logs of its log id: 0, or -EPERM with the reason in e. */
static int sct_check(const SCT *sct, const Precert *pc, const TrustedLog *logs, size_t n, Error *e) {
        unsigned char *id = NULL;
        char hex[2 * 32 + 1];
        uint64_t ms = SCT_get_timestamp(sct);
        bool known = false;
        int r;

        if (SCT_get_version(sct) != SCT_VERSION_V1)
                return error_set(e, -EPERM, "not a version 1 SCT");
        if (SCT_get0_log_id(sct, &id) != 32)
                return error_set(e, -EPERM, "a log id that is not 32 bytes");
        hex_encode(id, 32, hex);
        for (size_t i = 0; i < n; i++) {
                if (memcmp(logs[i].key_id, id, 32) != 0)
                        continue;
                known = true;
                if (!logs[i].key) {
                        (void) error_set(e, -EPERM, "log %s uses a key type this verifier does not support (%s)", hex,
                                         strna(logs[i].unsupported));
                        continue;
                }
                if (!trusted_window_contains(logs[i].valid_from, logs[i].valid_until, (time_t) (ms / 1000))) {
                        (void) error_set(e, -EPERM, "log %s ('%s'): its timestamp (%" PRIu64 " ms) lies outside the window in "
                                  "which the trusted root trusts the log", hex, strna(logs[i].base_url), ms);
                        continue;
                }
                r = verify_signature(sct, pc, logs[i].key);
                if (r == -ENOMEM)
                        return error_set(e, r, "out of memory");
                if (r == 0)
                        return 0;
                (void) error_set(e, -EPERM, "log %s ('%s'): its signature does not verify with the log's key", hex,
                          strna(logs[i].base_url));
        }
        if (!known)
                return error_set(e, -EPERM, "log %s is not a trusted certificate transparency log", hex);
        return -EPERM;
}

int sct_verify_embedded(X509 *leaf, X509 *issuer, const TrustedLog *logs, size_t n, Error *reterr) {
        _cleanup_(sct_list_freep) STACK_OF(SCT) *scts = NULL;
        _cleanup_(precert_done) Precert pc = {};
        char why[ERROR_MESSAGE_MAX] = "";
        size_t k = 0;
        int crit = -1, count, r;

        if (!leaf || !issuer || (!logs && n > 0))
                return error_set(reterr, -EINVAL, "SCT: no certificate or no issuer");
        scts = X509_get_ext_d2i(leaf, NID_ct_precert_scts, &crit, NULL);
        if (!scts) {
                ERR_clear_error();
                return error_set(reterr, -EBADMSG, "SCT: the certificate %s", crit == -1 ? "embeds no SCT list"
                                 : crit == -2 ? "has more than one SCT list" : "has an SCT list that does not parse");
        }
        count = sk_SCT_num(scts);
        if (count <= 0 || count > (int) SCT_LIST_MAX)
                return error_set(reterr, -EBADMSG, "SCT: the certificate embeds %d SCTs (1 to %u are accepted)", count,
                                 SCT_LIST_MAX);
        r = precert_make(leaf, issuer, &pc);
        if (r < 0)
                return error_set(reterr, r, r == -ENOMEM ? "out of memory" : "SCT: cannot rebuild the precertificate");

        for (int i = 0; i < count; i++) {
                Error e = {};

                r = sct_check(sk_SCT_value(scts, i), &pc, logs, n, &e);
                if (r == 0)
                        return 0;
                if (r == -ENOMEM)
                        return error_set(reterr, r, "out of memory");
                if (k < sizeof(why))
                        k += (size_t) snprintf(why + k, sizeof(why) - k, "%sSCT %d: %s", k ? "; " : "", i, e.message);
        }
        return error_set(reterr, -EPERM, "SCT: none of the certificate's %d SCTs verifies with one of the %zu trusted "
                         "certificate transparency logs (%s)", count, n, why);
}
