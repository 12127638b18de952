/* SPDX-License-Identifier: MIT */
/* Embedded SCTs (agent/sign/sct.c): the Fulcio certificates of the Sigstore conformance
 * vectors (production, staging, a custom CA and CT log) against their trusted roots' CT logs;
 * then certificates, issuers, logs and windows changed, which must fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <openssl/ct.h>
#include <openssl/x509v3.h>

#include "sign/sct.h"
#include "sigstore-vectors.h"

typedef struct Cert {
        json_t *bundle;
        X509 *leaf, *issuer; /* issuer: borrowed from trust */
        VecRoot trust;
} Cert;

/* The certificate of the trusted root's CAs that issued x. */
static X509 *find_issuer(const VecRoot *r, X509 *x) {
        for (size_t i = 0; i < r->n_cas; i++)
                for (int k = 0; k < sk_X509_num(r->cas[i].chain); k++)
                        if (X509_check_issued(sk_X509_value(r->cas[i].chain, k), x) == X509_V_OK)
                                return sk_X509_value(r->cas[i].chain, k);
        fail_msg("no issuer in the trusted root");
        return NULL;
}

static void cert_load(const char *name, Cert *ret) {
        *ret = (Cert) { .bundle = vec_case_bundle(name) };
        ret->leaf = vec_bundle_leaf(ret->bundle);
        vec_case_root(name, &ret->trust);
        ret->issuer = find_issuer(&ret->trust, ret->leaf);
}

static void cert_done(Cert *c) {
        json_decref(c->bundle);
        X509_free(c->leaf);
        vec_root_done(&c->trust);
}

static int verify(const Cert *c, X509 *leaf, const TrustedLog *logs, size_t n, Error *e) {
        return sct_verify_embedded(leaf, c->issuer, logs, n, e);
}

/* The SCT's timestamp, in seconds; the first SCT's. */
static time_t sct_time(X509 *leaf) {
        STACK_OF(SCT) *scts = X509_get_ext_d2i(leaf, NID_ct_precert_scts, NULL, NULL);
        time_t t;

        assert_non_null(scts);
        t = (time_t) (SCT_get_timestamp(sk_SCT_value(scts, 0)) / 1000);
        SCT_LIST_free(scts);
        return t;
}

/* The leaf with one byte changed: at offset into its SCT list's TLS bytes (negative: from their
 * end), or at the first occurrence of s in its DER. */
static X509 *leaf_changed(X509 *leaf, long offset, const char *s) {
        X509_EXTENSION *ext = X509_get_ext(leaf, X509_get_ext_by_NID(leaf, NID_ct_precert_scts, -1));
        const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
        unsigned char *der = NULL, *at;
        const unsigned char *p;
        X509 *x;
        int n = i2d_X509(leaf, &der);

        assert_true(n > 0);
        if (s)
                at = memmem(der, (size_t) n, s, strlen(s));
        else {
                /* The extension's value is the DER of an OCTET STRING holding the TLS-encoded list. */
                const unsigned char *q = ASN1_STRING_get0_data(v);
                ASN1_OCTET_STRING *inner = d2i_ASN1_OCTET_STRING(NULL, &q, ASN1_STRING_length(v));
                int list_size;

                assert_non_null(inner);
                list_size = ASN1_STRING_length(inner);
                at = memmem(der, (size_t) n, ASN1_STRING_get0_data(inner), (size_t) list_size);
                assert_non_null(at);
                at += offset < 0 ? list_size + offset : offset;
                ASN1_OCTET_STRING_free(inner);
        }
        assert_non_null(at);
        *at ^= 0x01;
        p = der;
        x = d2i_X509(NULL, &p, n);
        assert_non_null(x);
        OPENSSL_free(der);
        return x;
}

static void test_vectors(void **state) {
        static const char *const cases[] = {
                "happy-path-v0.1",
                "happy-path-v0.3",
                "rekor2-checkpoint-origin-not-first",
                "rekor2-timestamp-with-expired-cert-chain",
                "intoto-with-custom-trust-root",
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Error e = {};
                Cert c;

                cert_load(cases[i], &c);
                if (verify(&c, c.leaf, c.trust.ctlogs, c.trust.n_ctlogs, &e) != 0)
                        fail_msg("%s: %s", cases[i], e.message);
                cert_done(&c);
        }
}

static void test_invalid_ct_key_case(void **state) {
        Error e = {};
        Cert c;

        cert_load("invalid-ct-key_fail", &c);
        assert_int_equal(verify(&c, c.leaf, c.trust.ctlogs, c.trust.n_ctlogs, &e), -EPERM);
        assert_non_null(strstr(e.message, "SCT 0: log dd3d306ac6c7113263191e1c99673702a24a5eb8de3cadff878a72802f29ee8e "
                                          "is not a trusted certificate transparency log"));
        cert_done(&c);
}

static void test_tampered(void **state) {
        static const char bad_signature[] = "its signature does not verify with the log's key";
        static const struct {
                long offset;
                const char *s, *message;
        } changes[] = {
                { -1, NULL, bad_signature },                             /* the signature's last byte */
                { 2 + 2 + 1 + 32 + 7, NULL, bad_signature },             /* the timestamp's last byte */
                { 2 + 2 + 1, NULL, "is not a trusted certificate transparency log" }, /* the log id */
                { 0, "sigstore-intermediate", bad_signature },           /* the TBS: the issuer's name */
                { 0, "extremely-dangerous", bad_signature },             /* the TBS: the identity */
        };
        X509 *x;
        Error e = {};
        Cert c;

        cert_load("happy-path-v0.1", &c);
        for (size_t i = 0; i < ELEMENTSOF(changes); i++) {
                x = leaf_changed(c.leaf, changes[i].offset, changes[i].s);
                if (verify(&c, x, c.trust.ctlogs, c.trust.n_ctlogs, &e) != -EPERM || !strstr(e.message, changes[i].message))
                        fail_msg("change %zu: %s", i, e.message);
                X509_free(x);
        }
        /* The list's length: it does not parse. */
        x = leaf_changed(c.leaf, 1, NULL);
        assert_int_equal(verify(&c, x, c.trust.ctlogs, c.trust.n_ctlogs, &e), -EBADMSG);
        assert_non_null(strstr(e.message, "does not parse"));
        X509_free(x);

        /* Another issuer: its key hash is not the one the log signed. */
        assert_int_equal(sct_verify_embedded(c.leaf, sk_X509_value(c.trust.cas[1].chain, 1), c.trust.ctlogs,
                                             c.trust.n_ctlogs, &e),
                         -EPERM);
        assert_non_null(strstr(e.message, "its signature does not verify"));
        assert_int_equal(sct_verify_embedded(c.leaf, NULL, c.trust.ctlogs, c.trust.n_ctlogs, &e), -EINVAL);

        /* A certificate without SCTs; no logs. */
        assert_int_equal(verify(&c, c.issuer, c.trust.ctlogs, c.trust.n_ctlogs, &e), -EBADMSG);
        assert_non_null(strstr(e.message, "embeds no SCT list"));
        assert_int_equal(verify(&c, c.leaf, NULL, 0, &e), -EPERM);
        assert_int_equal(verify(&c, c.leaf, c.trust.ctlogs, c.trust.n_ctlogs, &e), 0);
        cert_done(&c);
}

static void test_log(void **state) {
        TrustedLog log, *right = NULL;
        Error e = {};
        time_t t;
        Cert c;

        cert_load("happy-path-v0.3", &c);
        t = sct_time(c.leaf);
        for (size_t i = 0; i < c.trust.n_ctlogs; i++)
                if (verify(&c, c.leaf, &c.trust.ctlogs[i], 1, NULL) == 0)
                        right = &c.trust.ctlogs[i];
        assert_non_null(right);

        /* The window, inclusive at both ends (in seconds). */
        log = *right;
        log.valid_until = t;
        assert_int_equal(verify(&c, c.leaf, &log, 1, &e), 0);
        log.valid_until = t - 1;
        assert_int_equal(verify(&c, c.leaf, &log, 1, &e), -EPERM);
        assert_non_null(strstr(e.message, "lies outside the window"));
        log.valid_until = 0;
        log.valid_from = t;
        assert_int_equal(verify(&c, c.leaf, &log, 1, &e), 0);
        log.valid_from = t + 1;
        assert_int_equal(verify(&c, c.leaf, &log, 1, &e), -EPERM);

        /* The right log id with another log's key; then with the right one after it. */
        log = *right;
        log.key = c.trust.ctlogs[right == &c.trust.ctlogs[0] ? 1 : 0].key;
        assert_int_equal(verify(&c, c.leaf, &log, 1, &e), -EPERM);
        assert_non_null(strstr(e.message, "its signature does not verify with the log's key"));
        {
                TrustedLog two[2] = { log, *right };

                assert_int_equal(verify(&c, c.leaf, two, 2, &e), 0);
        }

        /* An Ed25519 key (a Rekor v2 log's) under the right id. */
        log.key = c.trust.tlogs[1].key;
        assert_int_equal(EVP_PKEY_get_base_id(log.key), EVP_PKEY_ED25519);
        assert_int_equal(verify(&c, c.leaf, &log, 1, &e), -EPERM);

        /* The right id, listed with a key type not supported: skipped, and said so. */
        log = *right;
        log.key = NULL;
        log.unsupported = (char *) "PKIX_RSA_PSS_2048_SHA256";
        assert_int_equal(verify(&c, c.leaf, &log, 1, &e), -EPERM);
        assert_non_null(strstr(e.message, "uses a key type this verifier does not support (PKIX_RSA_PSS_2048_SHA256)"));
        {
                TrustedLog two[2] = { log, *right };

                assert_int_equal(verify(&c, c.leaf, two, 2, &e), 0);
        }
        cert_done(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vectors),
                cmocka_unit_test(test_invalid_ct_key_case),
                cmocka_unit_test(test_tampered),
                cmocka_unit_test(test_log),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
