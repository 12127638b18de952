/* SPDX-License-Identifier: MIT */
/* RFC 3161 timestamps with OpenSSL's TS API. The token is parsed once; its message imprint is
 * checked here (only SHA-2 is accepted, with absent or NULL parameters); then each trusted
 * authority is tried: genTime in its window, the signer pinned to its leaf when it lists one
 * (as sigstore-go does), and TS_RESP_verify_token() for the CMS signature, the ESS
 * signing-certificate attribute and the chain to the authority's root at genTime (purpose
 * timestampSign: the leaf's ExtendedKeyUsage must be timeStamping only, and critical). */

#include <openssl/err.h>
#include <openssl/ts.h>
#include <openssl/x509v3.h>

#include "basic/openssl-util.h"
#include "sign/rfc3161.h"

static void ts_resp_freep(TS_RESP **p) {
        TS_RESP_free(*p);
}
static void ts_tst_info_freep(TS_TST_INFO **p) {
        TS_TST_INFO_free(*p);
}
static void ts_verify_ctx_freep(TS_VERIFY_CTX **p) {
        TS_VERIFY_CTX_free(*p);
}
static void pkcs7_freep(PKCS7 **p) {
        PKCS7_free(*p);
}

/* The token (a TimeStampToken: CMS SignedData over a TSTInfo), from a TimeStampResp or bare. */
static int token_parse(const void *token, size_t size, PKCS7 **ret_token, TS_TST_INFO **ret_info, Error *e) {
        _cleanup_(ts_resp_freep) TS_RESP *resp = NULL;
        _cleanup_(pkcs7_freep) PKCS7 *p7 = NULL;
        const unsigned char *p = token;
        TS_TST_INFO *info;
        long status;

        resp = d2i_TS_RESP(NULL, &p, (long) size);
        if (resp && p == (const unsigned char *) token + size) {
                /* d2i_TS_RESP() has already refused a grant without a token and a token without a grant. */
                status = ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(TS_RESP_get_status_info(resp)));
                if (status != 0 && status != 1)
                        return error_set(e, -EBADMSG, "RFC 3161 timestamp: a response without a timestamp (status %ld)",
                                         status);
                p7 = PKCS7_dup(TS_RESP_get_token(resp));
        } else {
                ERR_clear_error();
                p = token;
                p7 = d2i_PKCS7(NULL, &p, (long) size);
                if (!p7 || p != (const unsigned char *) token + size) {
                        ERR_clear_error();
                        return error_set(e, -EBADMSG, "RFC 3161 timestamp: neither a DER TimeStampResp nor a "
                                         "TimeStampToken");
                }
        }
        if (!p7)
                return error_set(e, -ENOMEM, "out of memory");
        info = PKCS7_to_TS_TST_INFO(p7);
        if (!info) {
                ERR_clear_error();
                return error_set(e, -EBADMSG, "RFC 3161 timestamp: the token is not signed data over a TSTInfo");
        }
        *ret_token = TAKE_PTR(p7);
        *ret_info = info;
        return 0;
}

/* The imprint is the hash of data, with the token's algorithm: SHA-256, SHA-384 or SHA-512. */
static int check_imprint(TS_TST_INFO *info, const void *data, size_t size, Error *e) {
        TS_MSG_IMPRINT *imprint = TS_TST_INFO_get_msg_imprint(info);
        const ASN1_OBJECT *oid;
        const ASN1_OCTET_STRING *digest;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_size = 0;
        const EVP_MD *type;
        const void *param;
        char name[64];
        int ptype;

        X509_ALGOR_get0(&oid, &ptype, &param, TS_MSG_IMPRINT_get_algo(imprint));
        switch (OBJ_obj2nid(oid)) {
        case NID_sha256:
                type = EVP_sha256();
                break;
        case NID_sha384:
                type = EVP_sha384();
                break;
        case NID_sha512:
                type = EVP_sha512();
                break;
        default:
                (void) OBJ_obj2txt(name, sizeof(name), oid, 0);
                return error_set(e, -EPERM, "RFC 3161 timestamp: its message imprint is a %s hash, not SHA-256, "
                                 "SHA-384 or SHA-512", name);
        }
        if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL)
                return error_set(e, -EPERM, "RFC 3161 timestamp: its imprint's hash algorithm has parameters");
        if (!EVP_Digest(data, size, md, &md_size, type, NULL)) {
                ERR_clear_error();
                return error_set(e, -ENOMEM, "RFC 3161 timestamp: cannot compute %s", EVP_MD_get0_name(type));
        }
        digest = TS_MSG_IMPRINT_get_msg(imprint);
        if ((unsigned) ASN1_STRING_length(digest) != md_size || memcmp(ASN1_STRING_get0_data(digest), md, md_size) != 0)
                return error_set(e, -EPERM, "RFC 3161 timestamp: it is over other data (its message imprint is not "
                                 "the %s of the signature)", EVP_MD_get0_name(type));
        return 0;
}

static int token_time(TS_TST_INFO *info, time_t *ret, Error *e) {
        const ASN1_GENERALIZEDTIME *t = TS_TST_INFO_get_time(info);
        struct tm tm = {};
        time_t s;

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
                ERR_clear_error();
                return error_set(e, -EBADMSG, "RFC 3161 timestamp: its genTime does not parse");
        }
        s = timegm(&tm);
        if (s == (time_t) -1)
                return error_set(e, -EBADMSG, "RFC 3161 timestamp: its genTime is out of range");
        *ret = s;
        return 0;
}

/* The last OpenSSL error, with its data (the X.509 verify error, for one), then cleared. */
static const char *openssl_reason(char *buf, size_t size) {
        const char *data = NULL;
        unsigned long code;
        int flags = 0;

        code = ERR_peek_last_error_data(&data, &flags);
        (void) snprintf(buf, size, "%s%s%s", code ? strna(ERR_reason_error_string(code)) : "unknown error",
                        data && (flags & ERR_TXT_STRING) && data[0] ? ": " : "",
                        data && (flags & ERR_TXT_STRING) ? data : "");
        ERR_clear_error();
        return buf;
}

/* Where a Sigstore trusted root lists the authority's leaf (a first certificate that is no CA),
 * the token must be signed by exactly that certificate. */
static int check_pinned_signer(PKCS7 *token, STACK_OF(X509) *untrusted, const TrustedAuthority *tsa, Error *e) {
        _cleanup_(x509_stack_shallow_freep) STACK_OF(X509) *signers = NULL;
        X509 *leaf = sk_X509_value(tsa->chain, 0);

        if (sk_X509_num(tsa->chain) < 2 || X509_check_ca(leaf) != 0)
                return 0;
        signers = PKCS7_get0_signers(token, untrusted, 0);
        if (!signers || sk_X509_num(signers) != 1) {
                ERR_clear_error();
                return error_set(e, -EPERM, "its signing certificate is neither in the token nor the authority's");
        }
        if (X509_cmp(sk_X509_value(signers, 0), leaf) != 0)
                return error_set(e, -EPERM, "signed by another certificate than the authority's timestamping "
                                 "certificate");
        return 0;
}

/* The store of the authority's root (the last of its chain, trusted as it is, self-signed or
 * not), checking at genTime; the rest of the chain as the untrusted certificates. */
static int authority_store(const TrustedAuthority *tsa, time_t gen_time, X509_STORE **ret_store,
                           STACK_OF(X509) **ret_untrusted) {
        _cleanup_(x509_store_freep) X509_STORE *store = X509_STORE_new();
        _cleanup_(x509_stack_freep) STACK_OF(X509) *untrusted = sk_X509_new_null();
        int n = sk_X509_num(tsa->chain);
        X509_VERIFY_PARAM *param;

        if (!store || !untrusted || X509_STORE_add_cert(store, sk_X509_value(tsa->chain, n - 1)) != 1)
                return -ENOMEM;
        for (int i = 0; i < n - 1; i++) {
                X509 *c = sk_X509_value(tsa->chain, i);

                if (X509_up_ref(c) != 1)
                        return -ENOMEM;
                if (sk_X509_push(untrusted, c) <= 0) {
                        X509_free(c);
                        return -ENOMEM;
                }
        }
        param = X509_STORE_get0_param(store);
        X509_VERIFY_PARAM_set_time(param, gen_time);
        if (X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN) != 1)
                return -ENOMEM;
        *ret_store = TAKE_PTR(store);
        *ret_untrusted = TAKE_PTR(untrusted);
        return 0;
}

static int verify_with_authority(PKCS7 *token, time_t gen_time, const TrustedAuthority *tsa, Error *e) {
        _cleanup_(ts_verify_ctx_freep) TS_VERIFY_CTX *ctx = NULL;
        _cleanup_(x509_stack_freep) STACK_OF(X509) *untrusted = NULL;
        _cleanup_(x509_store_freep) X509_STORE *store = NULL;
        char reason[256];
        int r;

        if (!trusted_window_contains(tsa->valid_from, tsa->valid_until, gen_time))
                return error_set(e, -EPERM, "genTime lies outside the window in which the trusted root trusts it");
        if (!tsa->chain || sk_X509_num(tsa->chain) < 1)
                return error_set(e, -EPERM, "the trusted root lists no certificate for it");
        r = authority_store(tsa, gen_time, &store, &untrusted);
        if (r < 0)
                return error_set(e, r, "out of memory");
        r = check_pinned_signer(token, untrusted, tsa, e);
        if (r < 0)
                return r;

        ctx = TS_VERIFY_CTX_new();
        if (!ctx)
                return error_set(e, -ENOMEM, "out of memory");
        TS_VERIFY_CTX_set_flags(ctx, TS_VFY_SIGNATURE | TS_VFY_VERSION);
        /* The context owns them from here. */
#if OPENSSL_VERSION_NUMBER >= 0x30400000L
        TS_VERIFY_CTX_set0_store(ctx, TAKE_PTR(store));
        TS_VERIFY_CTX_set0_certs(ctx, TAKE_PTR(untrusted));
#else
        TS_VERIFY_CTX_set_store(ctx, TAKE_PTR(store));
        TS_VERIFY_CTX_set_certs(ctx, TAKE_PTR(untrusted));
#endif
        if (TS_RESP_verify_token(ctx, token) != 1)
                return error_set(e, -EPERM, "%s", openssl_reason(reason, sizeof(reason)));
        return 0;
}

int rfc3161_verify(const void *token, size_t size, const void *data, size_t data_size, const TrustedAuthority *tsas,
                   size_t n, time_t *ret_time, Error *reterr) {
        _cleanup_(ts_tst_info_freep) TS_TST_INFO *info = NULL;
        _cleanup_(pkcs7_freep) PKCS7 *p7 = NULL;
        char why[ERROR_MESSAGE_MAX] = "", stamp[32];
        time_t gen_time = 0;
        struct tm tm;
        size_t k = 0;
        int r;

        if (!token || size == 0)
                return error_set(reterr, -EBADMSG, "RFC 3161 timestamp: empty");
        if (size > RFC3161_TOKEN_MAX)
                return error_set(reterr, -EBADMSG, "RFC 3161 timestamp: %zu bytes, more than %u", size, RFC3161_TOKEN_MAX);
        if ((!data && data_size > 0) || data_size > RFC3161_DATA_MAX || (!tsas && n > 0))
                return error_set(reterr, -EINVAL, "RFC 3161 timestamp: no data, or more than %u bytes of it",
                                 RFC3161_DATA_MAX);
        r = token_parse(token, size, &p7, &info, reterr);
        if (r < 0)
                return r;
        r = token_time(info, &gen_time, reterr);
        if (r < 0)
                return r;
        r = check_imprint(info, data, data_size, reterr);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                Error e = {};

                r = verify_with_authority(p7, gen_time, &tsas[i], &e);
                if (r == -ENOMEM)
                        return error_set(reterr, r, "out of memory");
                if (r >= 0) {
                        if (ret_time)
                                *ret_time = gen_time;
                        return 0;
                }
                if (k < sizeof(why))
                        k += (size_t) snprintf(why + k, sizeof(why) - k, "%s'%s': %s", k ? "; " : "", strna(tsas[i].uri),
                                               e.message);
        }
        (void) strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&gen_time, &tm));
        if (n == 0)
                return error_set(reterr, -EPERM, "RFC 3161 timestamp of %s: the trusted root has no timestamp authority",
                                 stamp);
        return error_set(reterr, -EPERM, "RFC 3161 timestamp of %s: not by a trusted timestamp authority (%s)", stamp,
                         why);
}
