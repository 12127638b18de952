/* SPDX-License-Identifier: MIT */
/* RFC 3161 timestamps (agent/sign/rfc3161.c): the tokens of the Sigstore conformance vectors
 * (Sigstore's production and staging TSAs, a local TSA whose chain has since expired, a custom
 * one), good and tampered; and tokens made here by a TSA of our own (OpenSSL's TS_RESP_CTX),
 * for what the vectors do not show: other imprint hashes, a refusal, a genTime after the TSA
 * certificate expired. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <openssl/ts.h>
#include <openssl/x509v3.h>

#include "sign/rfc3161.h"
#include "sigstore-vectors.h"

typedef struct Stamp {
        json_t *bundle;
        uint8_t *token, *data;
        size_t size, data_size;
        VecRoot trust;
} Stamp;

static void stamp_load(const char *name, Stamp *ret) {
        *ret = (Stamp) { .bundle = vec_case_bundle(name) };
        ret->token = vec_get_b64(ret->bundle,
                                 "verificationMaterial.timestampVerificationData.rfc3161Timestamps.0.signedTimestamp",
                                 &ret->size);
        ret->data = vec_bundle_signature(ret->bundle, &ret->data_size);
        vec_case_root(name, &ret->trust);
}

static void stamp_done(Stamp *s) {
        json_decref(s->bundle);
        free(s->token);
        free(s->data);
        vec_root_done(&s->trust);
}

static int verify(const Stamp *s, const TrustedAuthority *tsas, size_t n, time_t *ret_time, Error *e) {
        return rfc3161_verify(s->token, s->size, s->data, s->data_size, tsas, n, ret_time, e);
}

static void test_vectors(void **state) {
        static const struct {
                const char *name, *gen_time;
        } cases[] = {
                { "rekor2-timestamp-without-embedded-cert", "2025-08-06T19:03:51Z" },  /* signer from the trusted root */
                { "rekor2-timestamp-with-expired-cert-chain", "2025-08-07T15:32:26Z" }, /* valid then, not now */
                { "rekor2-checkpoint-origin-not-first", "2025-06-12T12:02:20Z" },     /* signer embedded */
                { "rekor2-dsse-invalid-sig_fail", "2026-05-13T19:23:43Z" },           /* over a DSSE signature */
                { "intoto-with-custom-trust-root", "2023-02-01T00:00:00Z" },          /* a custom TSA */
                { "managed-key-no-key_fail", "2025-12-18T17:04:39Z" },                /* production */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                time_t t = 0;
                Error e = {};
                Stamp s;

                stamp_load(cases[i].name, &s);
                if (verify(&s, s.trust.tsas, s.trust.n_tsas, &t, &e) != 0)
                        fail_msg("%s: %s", cases[i].name, e.message);
                assert_int_equal(t, vec_time(cases[i].gen_time));
                stamp_done(&s);
        }
}

static void expect_case(const char *name, const char *message) {
        Error e = {};
        Stamp s;

        stamp_load(name, &s);
        assert_int_equal(verify(&s, s.trust.tsas, s.trust.n_tsas, NULL, &e), -EPERM);
        if (!strstr(e.message, message))
                fail_msg("%s: '%s' does not say '%s'", name, e.message, message);
        stamp_done(&s);
}

static void test_fail_cases(void **state) {
        expect_case("rekor2-timestamp-outside-trust-root-tsa-validity_fail", "outside the window");
        expect_case("rekor2-timestamp-payload-mismatch_fail", "over other data");
        expect_case("rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail", "not by a trusted timestamp authority");
}

static void test_tampered(void **state) {
        _cleanup_free_ uint8_t *longer = NULL;
        uint8_t *serial;
        VecRoot production;
        Error e = {};
        Stamp s;

        stamp_load("rekor2-timestamp-without-embedded-cert", &s);
        s.data[3] ^= 1;
        assert_int_equal(verify(&s, s.trust.tsas, s.trust.n_tsas, NULL, &e), -EPERM);
        assert_non_null(strstr(e.message, "over other data"));
        s.data[3] ^= 1;

        /* The signature's last byte; the TSTInfo's serial number. */
        s.token[s.size - 1] ^= 1;
        assert_int_equal(verify(&s, s.trust.tsas, s.trust.n_tsas, NULL, &e), -EPERM);
        s.token[s.size - 1] ^= 1;
        serial = memmem(s.token, s.size, "\x99\x71\x77\x05\x52\xef", 6);
        assert_non_null(serial);
        serial[2] ^= 1;
        assert_int_equal(verify(&s, s.trust.tsas, s.trust.n_tsas, NULL, &e), -EPERM);
        serial[2] ^= 1;

        /* Every truncation, bytes after the end, too large. */
        for (size_t n = 0; n < s.size; n++)
                assert_int_equal(rfc3161_verify(s.token, n, s.data, s.data_size, s.trust.tsas, s.trust.n_tsas, NULL, NULL),
                                 -EBADMSG);
        longer = malloc(s.size + 1);
        memcpy(longer, s.token, s.size);
        longer[s.size] = 0;
        assert_int_equal(rfc3161_verify(longer, s.size + 1, s.data, s.data_size, s.trust.tsas, s.trust.n_tsas, NULL, &e),
                         -EBADMSG);
        assert_int_equal(rfc3161_verify(s.token, RFC3161_TOKEN_MAX + 1u, s.data, s.data_size, s.trust.tsas,
                                        s.trust.n_tsas, NULL, NULL),
                         -EBADMSG);

        /* Other authorities: production's, none. */
        vec_root_load(PRODUCTION_ROOT, &production);
        assert_int_equal(verify(&s, production.tsas, production.n_tsas, NULL, &e), -EPERM);
        assert_non_null(strstr(e.message, "'https://timestamp.sigstore.dev/api/v1/timestamp': "));
        assert_int_equal(verify(&s, NULL, 0, NULL, &e), -EPERM);
        assert_non_null(strstr(e.message, "no timestamp authority"));
        vec_root_done(&production);
        assert_int_equal(verify(&s, s.trust.tsas, s.trust.n_tsas, NULL, NULL), 0);
        stamp_done(&s);
}

static void test_window(void **state) {
        time_t gen_time = vec_time("2025-06-12T12:02:20Z");
        TrustedAuthority tsa;
        Error e = {};
        Stamp s;

        stamp_load("rekor2-checkpoint-origin-not-first", &s);
        tsa = s.trust.tsas[0];
        tsa.valid_until = gen_time;
        assert_int_equal(verify(&s, &tsa, 1, NULL, &e), 0);
        tsa.valid_until--;
        assert_int_equal(verify(&s, &tsa, 1, NULL, &e), -EPERM);
        assert_non_null(strstr(e.message, "genTime lies outside the window"));
        assert_non_null(strstr(e.message, "of 2025-06-12T12:02:20Z"));
        tsa.valid_until = 0;
        tsa.valid_from = gen_time;
        assert_int_equal(verify(&s, &tsa, 1, NULL, &e), 0);
        tsa.valid_from++;
        assert_int_equal(verify(&s, &tsa, 1, NULL, &e), -EPERM);
        stamp_done(&s);
}

/* The authority's chain, replaced: another leaf; another root. */
static void test_chain(void **state) {
        STACK_OF(X509) *chain;
        VecRoot production;
        TrustedAuthority tsa;
        Error e = {};
        Stamp s;

        vec_root_load(PRODUCTION_ROOT, &production);
        for (int embedded = 0; embedded < 2; embedded++) {
                stamp_load(embedded ? "rekor2-checkpoint-origin-not-first" : "rekor2-timestamp-without-embedded-cert", &s);
                assert_int_equal(sk_X509_num(s.trust.tsas[0].chain), 2);
                tsa = s.trust.tsas[0];

                /* The production TSA's leaf in place of the staging one. */
                chain = sk_X509_new_null();
                assert_true(sk_X509_push(chain, sk_X509_value(production.tsas[0].chain, 0)) > 0);
                assert_true(sk_X509_push(chain, sk_X509_value(s.trust.tsas[0].chain, 1)) > 0);
                tsa.chain = chain;
                assert_int_equal(verify(&s, &tsa, 1, NULL, &e), -EPERM);
                assert_non_null(strstr(e.message, embedded ? "signed by another certificate" : "neither in the token"));

                /* The staging leaf under production's root. */
                assert_non_null(sk_X509_set(chain, 0, sk_X509_value(s.trust.tsas[0].chain, 0)));
                assert_non_null(sk_X509_set(chain, 1, sk_X509_value(production.tsas[0].chain, 1)));
                assert_int_equal(verify(&s, &tsa, 1, NULL, &e), -EPERM);
                assert_non_null(strstr(e.message, "certificate verify error"));
                sk_X509_free(chain);

                /* Both authorities: the second one verifies. */
                {
                        TrustedAuthority both[2] = { production.tsas[0], s.trust.tsas[0] };

                        assert_int_equal(verify(&s, both, 2, NULL, &e), 0);
                }
                stamp_done(&s);
        }
        vec_root_done(&production);
}

/* ---- A TSA of our own ---- */

typedef struct Tsa {
        EVP_PKEY *key;
        X509 *root, *leaf;
        TrustedAuthority authority;
} Tsa;

static X509 *make_cert(EVP_PKEY *key, EVP_PKEY *issuer_key, X509 *issuer, const char *cn, time_t from, time_t until,
                       bool ca) {
        X509 *x = X509_new();
        X509V3_CTX ctx;
        X509_EXTENSION *ext;

        assert_non_null(x);
        assert_true(X509_set_version(x, 2));
        assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2));
        assert_true(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *) cn,
                                               -1, -1, 0));
        assert_true(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x)));
        assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &from));
        assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &until));
        assert_true(X509_set_pubkey(x, key));
        X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, ca ? NID_basic_constraints : NID_ext_key_usage,
                                  ca ? "critical,CA:TRUE" : "critical,timeStamping");
        assert_non_null(ext);
        assert_true(X509_add_ext(x, ext, -1));
        X509_EXTENSION_free(ext);
        assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
        return x;
}

/* A root and a TSA leaf, valid from 'from' for a day; the leaf signs with the root's key (one key
 * is enough here). */
static void tsa_make(Tsa *t, time_t from) {
        t->key = EVP_EC_gen("P-256");
        assert_non_null(t->key);
        t->root = make_cert(t->key, t->key, NULL, "test TSA root", from, from + 86400, true);
        t->leaf = make_cert(t->key, t->key, t->root, "test TSA", from, from + 86400, false);
        t->authority.chain = sk_X509_new_null();
        assert_true(X509_up_ref(t->leaf) && sk_X509_push(t->authority.chain, t->leaf) > 0);
        assert_true(X509_up_ref(t->root) && sk_X509_push(t->authority.chain, t->root) > 0);
        t->authority.uri = (char *) "test TSA";
}

static void tsa_done(Tsa *t) {
        sk_X509_pop_free(t->authority.chain, X509_free);
        X509_free(t->root);
        X509_free(t->leaf);
        EVP_PKEY_free(t->key);
}

static time_t stamp_time;

static int time_cb(TS_RESP_CTX *ctx, void *data, long *sec, long *usec) {
        *sec = (long) stamp_time;
        *usec = 0;
        return 1;
}

/* A TimeStampResp over data's hash with md, at stamp_time; DER, malloc'ed. */
static uint8_t *tsa_stamp(Tsa *t, const EVP_MD *md, bool accept_md, const void *data, size_t size, size_t *ret_size) {
        unsigned char digest[EVP_MAX_MD_SIZE], *der = NULL, *out;
        unsigned digest_size;
        TS_REQ *req = TS_REQ_new();
        TS_MSG_IMPRINT *imprint = TS_MSG_IMPRINT_new();
        X509_ALGOR *alg = X509_ALGOR_new();
        TS_RESP_CTX *ctx = TS_RESP_CTX_new();
        ASN1_OBJECT *policy = OBJ_txt2obj("1.2.3.4", 1);
        TS_RESP *resp;
        BIO *bio;
        int n;

        assert_true(EVP_Digest(data, size, digest, &digest_size, md, NULL));
        assert_true(X509_ALGOR_set0(alg, OBJ_nid2obj(EVP_MD_get_type(md)), V_ASN1_NULL, NULL));
        assert_true(TS_MSG_IMPRINT_set_algo(imprint, alg) && TS_MSG_IMPRINT_set_msg(imprint, digest, (int) digest_size));
        assert_true(TS_REQ_set_version(req, 1) && TS_REQ_set_msg_imprint(req, imprint) && TS_REQ_set_cert_req(req, 1));
        n = i2d_TS_REQ(req, &der);
        assert_true(n > 0);
        bio = BIO_new_mem_buf(der, n);

        assert_true(TS_RESP_CTX_set_signer_cert(ctx, t->leaf) && TS_RESP_CTX_set_signer_key(ctx, t->key));
        assert_true(TS_RESP_CTX_set_signer_digest(ctx, EVP_sha256()));
        assert_true(TS_RESP_CTX_set_def_policy(ctx, policy));
        if (accept_md)
                assert_true(TS_RESP_CTX_add_md(ctx, md));
        TS_RESP_CTX_set_time_cb(ctx, time_cb, NULL);
        resp = TS_RESP_create_response(ctx, bio);
        assert_non_null(resp);
        out = NULL;
        n = i2d_TS_RESP(resp, &out);
        assert_true(n > 0);
        *ret_size = (size_t) n;

        TS_RESP_free(resp);
        BIO_free(bio);
        OPENSSL_free(der);
        TS_RESP_CTX_free(ctx);
        ASN1_OBJECT_free(policy);
        X509_ALGOR_free(alg);
        TS_MSG_IMPRINT_free(imprint);
        TS_REQ_free(req);
        return out;
}

static void test_own_tsa(void **state) {
        static const char data[] = "a signature";
        time_t from = 1700000000, t = 0;
        uint8_t *token;
        size_t size;
        Error e = {};
        Tsa tsa = {};

        tsa_make(&tsa, from);
        stamp_time = from + 3600;
        /* SHA-2 imprints; SHA-1 refused. */
        for (int i = 0; i < 4; i++) {
                const EVP_MD *md = i == 0 ? EVP_sha256() : i == 1 ? EVP_sha384() : i == 2 ? EVP_sha512() : EVP_sha1();

                token = tsa_stamp(&tsa, md, true, data, sizeof(data), &size);
                e = (Error) {};
                assert_int_equal(rfc3161_verify(token, size, data, sizeof(data), &tsa.authority, 1, &t, &e), i < 3 ? 0 : -EPERM);
                assert_true(i < 3 ? t == stamp_time : strstr(e.message, "sha1 hash") != NULL);
                OPENSSL_free(token);
        }

        /* A refusal: the TSA does not take the hash. */
        token = tsa_stamp(&tsa, EVP_sha256(), false, data, sizeof(data), &size);
        assert_int_equal(rfc3161_verify(token, size, data, sizeof(data), &tsa.authority, 1, &t, &e), -EBADMSG);
        assert_non_null(strstr(e.message, "without a timestamp (status 2)"));
        OPENSSL_free(token);

        /* A genTime after the certificates expired: the chain does not verify then. */
        stamp_time = from + 2 * 86400;
        token = tsa_stamp(&tsa, EVP_sha256(), true, data, sizeof(data), &size);
        assert_int_equal(rfc3161_verify(token, size, data, sizeof(data), &tsa.authority, 1, &t, &e), -EPERM);
        assert_non_null(strstr(e.message, "certificate has expired"));
        OPENSSL_free(token);
        tsa_done(&tsa);
}

/* A bare TimeStampToken (ContentInfo), as some producers hand it out. */
static void test_bare_token(void **state) {
        const unsigned char *p;
        unsigned char *der = NULL;
        TS_RESP *resp;
        time_t t = 0;
        Error e = {};
        Stamp s;
        int n;

        stamp_load("rekor2-checkpoint-origin-not-first", &s);
        p = s.token;
        resp = d2i_TS_RESP(NULL, &p, (long) s.size);
        assert_non_null(resp);
        n = i2d_PKCS7(TS_RESP_get_token(resp), &der);
        assert_true(n > 0);
        assert_int_equal(rfc3161_verify(der, (size_t) n, s.data, s.data_size, s.trust.tsas, s.trust.n_tsas, &t, &e), 0);
        assert_int_equal(t, vec_time("2025-06-12T12:02:20Z"));
        der[n - 1] ^= 1;
        assert_int_equal(rfc3161_verify(der, (size_t) n, s.data, s.data_size, s.trust.tsas, s.trust.n_tsas, &t, &e), -EPERM);
        OPENSSL_free(der);
        TS_RESP_free(resp);
        stamp_done(&s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vectors),    cmocka_unit_test(test_fail_cases), cmocka_unit_test(test_tampered),
                cmocka_unit_test(test_window),     cmocka_unit_test(test_chain),      cmocka_unit_test(test_own_tsa),
                cmocka_unit_test(test_bare_token),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
