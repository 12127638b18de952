/* SPDX-License-Identifier: MIT */
/* The Fulcio certificate (sigstore.h, steps 2-4): its chain to a trusted CA at each verified
 * signing time, its purpose, its embedded SCT and the identity it names. */

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "basic/log.h"
#include "basic/openssl-util.h"
#include "basic/timeutil.h"
#include "basic/whole-match.h"
#include "sign/cosign.h"
#include "sign/sct.h"
#include "sign/sigstore-internal.h"

#define NAME_MAX_ 4096 /* a SAN or an issuer: URLs */

/* leaf's chain to ca's root (the last certificate of its chain, a trust anchor even when not
 * self-signed, as sigstore-go takes it) through ca's intermediates, at time t. On success
 * *ret_issuer is leaf's issuer, with a reference of its own; else *ret_reason is OpenSSL's. */
static int verify_with_ca(const TrustedAuthority *ca, X509 *leaf, time_t t, X509 **ret_issuer,
                          const char **ret_reason) {
        _cleanup_(x509_store_freep) X509_STORE *store = X509_STORE_new();
        _cleanup_(x509_store_ctx_freep) X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        _cleanup_(x509_stack_shallow_freep) STACK_OF(X509) *untrusted = sk_X509_new_null();
        int n = sk_X509_num(ca->chain);
        STACK_OF(X509) *chain;
        X509_VERIFY_PARAM *param;

        if (!store || !ctx || !untrusted || n < 1)
                return -ENOMEM;
        for (int i = 0; i < n - 1; i++)
                if (!sk_X509_push(untrusted, sk_X509_value(ca->chain, i)))
                        return -ENOMEM;
        if (X509_STORE_add_cert(store, sk_X509_value(ca->chain, n - 1)) != 1 ||
            X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
                ERR_clear_error();
                return -ENOMEM;
        }
        param = X509_STORE_CTX_get0_param(ctx);
        X509_VERIFY_PARAM_set_time(param, t);
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
        if (X509_verify_cert(ctx) != 1) {
                *ret_reason = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
                ERR_clear_error();
                return -EPERM;
        }
        chain = X509_STORE_CTX_get0_chain(ctx);
        if (sk_X509_num(chain) < 2 || X509_up_ref(sk_X509_value(chain, 1)) != 1)
                return -EPERM;
        *ret_issuer = sk_X509_value(chain, 1);
        return 0;
}

/* Some CA whose window contains t issued the leaf, valid at t. */
static int chain_at(const SigstoreContext *c, time_t t, X509 **ret_issuer, Error *e) {
        const char *reason = "no certificate authority of the trusted root was trusted then";
        char when[TIMESTAMP_MAX];
        int r;

        for (size_t i = 0; i < c->root->n_cas; i++) {
                const TrustedAuthority *ca = &c->root->cas[i];

                if (!trusted_window_contains(ca->valid_from, ca->valid_until, t))
                        continue;
                r = verify_with_ca(ca, c->b->leaf, t, ret_issuer, &reason);
                if (r == -ENOMEM)
                        return error_set(e, r, "out of memory");
                if (r >= 0)
                        return 0;
        }
        return error_set(e, -EPERM, "the certificate does not chain to a trusted Fulcio CA at the signing time %s: %s",
                         format_timestamp(when, t), reason);
}

/* A Fulcio leaf signs code: EKU codeSigning and key usage digitalSignature, both present. */
static int check_usage(X509 *leaf, Error *e) {
        if (X509_get_ext_by_NID(leaf, NID_ext_key_usage, -1) < 0 ||
            !(X509_get_extended_key_usage(leaf) & XKU_CODE_SIGN))
                return error_set(e, -EPERM, "the certificate is not for code signing (no codeSigning extended key usage)");
        if (X509_get_ext_by_NID(leaf, NID_key_usage, -1) < 0 || !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
                return error_set(e, -EPERM, "the certificate's key usage does not include digitalSignature");
        return 0;
}

/* The n bytes at p are the policy's name: exactly text, or, with re, matched whole. */
static bool name_is(const unsigned char *p, int n, const char *text, const regex_t *re) {
        if (!p || n < 0)
                return false;
        if (re)
                return whole_match(re, p, (size_t) n);
        return text && (size_t) n == strlen(text) && memcmp(p, text, (size_t) n) == 0;
}

/* For a message: the string, printable, at most COSIGN_PRINTABLE_SIZE. */
static const char *printable(const unsigned char *p, int n, char buf[static COSIGN_PRINTABLE_SIZE]) {
        char copy[COSIGN_PRINTABLE_SIZE];

        n = MAX(0, MIN(n, COSIGN_PRINTABLE_SIZE - 1));
        memcpy(copy, p, (size_t) n);
        copy[n] = 0;
        return cosign_printable(copy, buf);
}

/* For the record: the whole string, control characters escaped (log_escape()). */
static char *recordable(const unsigned char *p, int n) {
        _cleanup_free_ char *copy = strndup((const char *) p, (size_t) MAX(0, MIN(n, NAME_MAX_)));
        char *buf = malloc(4 * NAME_MAX_ + 1);

        if (!copy || !buf) {
                free(buf);
                return NULL;
        }
        log_escape(buf, 4 * NAME_MAX_ + 1, copy);
        return buf;
}

static const char *expected(const regex_t *re) {
        return re ? "matching the expected regular expression" : "the expected";
}

/* A SAN of the leaf, URI or email, is the policy's identity; *ret_name (when not NULL) the
 * one that is, recordable(). */
static int check_san(X509 *leaf, const SigstorePolicy *p, char **ret_name, Error *e) {
        GENERAL_NAMES *names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
        char buf[COSIGN_PRINTABLE_SIZE] = "", want[COSIGN_PRINTABLE_SIZE];
        const ASN1_IA5STRING *found = NULL;
        int r = 0;

        for (int i = 0; i < sk_GENERAL_NAME_num(names) && !found; i++) {
                const GENERAL_NAME *n = sk_GENERAL_NAME_value(names, i);
                const ASN1_IA5STRING *s = n->type == GEN_URI     ? n->d.uniformResourceIdentifier
                                          : n->type == GEN_EMAIL ? n->d.rfc822Name
                                                                 : NULL;

                if (s && name_is(ASN1_STRING_get0_data(s), ASN1_STRING_length(s), p->identity, p->identity_re))
                        found = s;
                if (s && !buf[0])
                        printable(ASN1_STRING_get0_data(s), ASN1_STRING_length(s), buf);
        }
        if (found && ret_name && !(*ret_name = recordable(ASN1_STRING_get0_data(found), ASN1_STRING_length(found))))
                r = -ENOMEM;
        GENERAL_NAMES_free(names);
        ERR_clear_error();
        if (found || r < 0)
                return r;
        if (!buf[0])
                return error_set(e, -EPERM, "the certificate names no identity (no URI or email subject alternative name)");
        return error_set(e, -EPERM, "the certificate's identity is '%s', not %s '%s'", buf,
                         expected(p->identity_re), cosign_printable(p->identity, want));
}

/* The OIDC issuer: extension 1.3.6.1.4.1.57264.1.8 (a DER UTF8String), else the older .1.1
 * (the bare string). *ret points into the certificate or into *ret_owned. */
static int issuer_of(X509 *leaf, ASN1_UTF8STRING **ret_owned, const unsigned char **ret, int *ret_size) {
        ASN1_OBJECT *v2 = OBJ_txt2obj(SIGSTORE_OID_ISSUER_V2, 1), *v1 = OBJ_txt2obj(SIGSTORE_OID_ISSUER_V1, 1);
        int i2 = v2 ? X509_get_ext_by_OBJ(leaf, v2, -1) : -1, i1 = v1 ? X509_get_ext_by_OBJ(leaf, v1, -1) : -1;
        const ASN1_OCTET_STRING *data;
        const unsigned char *p;
        int r = 0;

        ASN1_OBJECT_free(v2);
        ASN1_OBJECT_free(v1);
        if (i2 >= 0) {
                data = X509_EXTENSION_get_data(X509_get_ext(leaf, i2));
                p = ASN1_STRING_get0_data(data);
                *ret_owned = d2i_ASN1_UTF8STRING(NULL, &p, ASN1_STRING_length(data));
                if (!*ret_owned || p != ASN1_STRING_get0_data(data) + ASN1_STRING_length(data))
                        r = -EBADMSG;
                else {
                        *ret = ASN1_STRING_get0_data(*ret_owned);
                        *ret_size = ASN1_STRING_length(*ret_owned);
                }
        } else if (i1 >= 0) {
                data = X509_EXTENSION_get_data(X509_get_ext(leaf, i1));
                *ret = ASN1_STRING_get0_data(data);
                *ret_size = ASN1_STRING_length(data);
        } else
                r = -ENOENT;
        ERR_clear_error();
        return r;
}

/* The issuer is the policy's; *ret_name (when not NULL) it, recordable(). */
static int check_issuer(X509 *leaf, const SigstorePolicy *policy, char **ret_name, Error *e) {
        ASN1_UTF8STRING *owned = NULL;
        char buf[COSIGN_PRINTABLE_SIZE], want[COSIGN_PRINTABLE_SIZE];
        const unsigned char *p = NULL;
        int n = 0, r;

        r = issuer_of(leaf, &owned, &p, &n);
        if (r == -ENOENT)
                return error_set(e, -EPERM, "the certificate names no OIDC issuer (extension " SIGSTORE_OID_ISSUER_V2 ")");
        if (r >= 0 && !name_is(p, n, policy->issuer, policy->issuer_re))
                r = error_set(e, -EPERM, "the certificate's OIDC issuer is '%s', not %s '%s'", printable(p, n, buf),
                              expected(policy->issuer_re), cosign_printable(policy->issuer, want));
        else if (r < 0)
                r = error_set(e, -EPERM, "the certificate's OIDC issuer extension is not a UTF8String");
        else if (ret_name && !(*ret_name = recordable(p, n)))
                r = -ENOMEM;
        ASN1_UTF8STRING_free(owned);
        return r;
}

bool sigstore_certificate_names(X509 *leaf, const SigstorePolicy *p) {
        return leaf && p && p->identity && p->issuer && check_san(leaf, p, NULL, NULL) >= 0 &&
               check_issuer(leaf, p, NULL, NULL) >= 0;
}

int sigstore_certificate_signer(X509 *leaf, const SigstorePolicy *p, char **ret) {
        _cleanup_free_ char *san = NULL, *issuer = NULL;
        int r;

        if (!sigstore_certificate_names(leaf, p))
                return -ENOENT;
        r = check_san(leaf, p, &san, NULL);
        if (r >= 0)
                r = check_issuer(leaf, p, &issuer, NULL);
        if (r < 0)
                return r;
        return asprintf(ret, "%s (%s)", san, issuer) < 0 ? -ENOMEM : 0;
}

int sigstore_check_certificate(const SigstoreContext *c, Error *e) {
        _cleanup_(x509_freep) X509 *issuer = NULL;
        X509 *leaf = c->b->leaf;
        Error se = {};
        int r;

        /* Step 2, at every verified time: the hybrid model of the client specification. */
        for (size_t i = 0; i < c->n_times; i++) {
                X509 *x = NULL;

                r = chain_at(c, c->times[i], &x, e);
                if (r < 0)
                        return r;
                if (issuer)
                        X509_free(x);
                else
                        issuer = x;
        }
        r = check_usage(leaf, e);
        if (r < 0)
                return r;
        /* Step 3. */
        r = sct_verify_embedded(leaf, issuer, c->root->ctlogs, c->root->n_ctlogs, &se);
        if (r == -ENOMEM)
                return error_set(e, r, "out of memory");
        if (r < 0)
                return error_set(e, -EPERM, "the certificate's signed certificate timestamp does not verify: %s",
                                 error_message(&se) ?: strerror(-r));
        /* Step 4. */
        r = check_san(leaf, c->policy, NULL, e);
        if (r >= 0)
                r = check_issuer(leaf, c->policy, NULL, e);
        return r;
}
