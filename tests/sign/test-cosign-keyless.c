/* SPDX-License-Identifier: MIT */
/* Keyless Cosign signatures of images (sign/cosign-keyless.c) against real ones, offline, with
 * Sigstore's public-good trusted root (shared/vectors/sigstore-conformance):
 *   - a classic `.sig` layer signed keyless with cosign and Rekor in January 2023
 *     (containers/image's dir-img-cosign-fulcio-rekor-valid): certificate for mitr@redhat.com
 *     from https://github.com/login/oauth (the older issuer extension .1.1), Rekor SET;
 *   - a cosign 3 Sigstore bundle v0.3 (cosign's oci-attestation.sigstore.json, February 2025):
 *     certificate for cody@soyland.com, a DSSE statement naming an image digest.
 * Accepted for the right identity; refused for another identity, another issuer, a trusted
 * root without the CA, a changed SET, signature or payload, another image. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "basic/fileio.h"
#include "basic/whole-match.h"
#include "sign/cosign-keyless.h"
#include "sign/cosign.h"
#include "sign/sigstore-root.h"

#define SHARED SHARED_VECTORS_DIR "/"
#define CLASSIC SHARED "cimage-dir-img-cosign-fulcio-rekor-valid/"
#define BUNDLE SHARED "cosign-oci-attestation-bundle-v03/oci-attestation.sigstore.json"
#define PRODUCTION_ROOT SHARED_VECTORS_DIR "/../sigstore-conformance/production_trusted_root.json"
#define CONFORMANCE SHARED_VECTORS_DIR "/../sigstore-conformance/cases/"

#define CLASSIC_IDENTITY "mitr@redhat.com"
#define CLASSIC_ISSUER "https://github.com/login/oauth"
#define CLASSIC_DIGEST "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a"
#define BUNDLE_IDENTITY "cody@soyland.com"
#define BUNDLE_ISSUER "https://github.com/login/oauth"
#define BUNDLE_DIGEST "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
#define BUNDLE_PREDICATE "https://cosign.sigstore.dev/attestation/v1"
#define OTHER_DIGEST "sha256:1111111111111111111111111111111111111111111111111111111111111111"

static SigstoreTrustedRoot *root_from_file(const char *path) {
        SigstoreTrustedRoot *r = NULL;
        Error e = {};

        if (sigstore_root_load(path, &r, &e) < 0)
                fail_msg("%s", e.message);
        return r;
}

/* The production root with its certificateAuthorities emptied: no Fulcio CA is trusted. */
static SigstoreTrustedRoot *root_without_cas(void) {
        json_t *j = json_load_file(PRODUCTION_ROOT, 0, NULL);
        SigstoreTrustedRoot *r = NULL;
        char *text;
        Error e = {};

        assert_non_null(j);
        assert_int_equal(json_object_set_new(j, "certificateAuthorities", json_array()), 0);
        text = json_dumps(j, JSON_COMPACT);
        assert_non_null(text);
        if (sigstore_root_parse(text, strlen(text), &r, &e) < 0)
                fail_msg("%s", e.message);
        free(text);
        json_decref(j);
        return r;
}

/* The classic layer: payload, and the annotations that cosign put on it. */
typedef struct Classic {
        uint8_t *payload;
        size_t payload_size;
        char *signature, *certificate, *rekor_bundle;
} Classic;

static void classic_done(Classic *c) {
        free(c->payload);
        free(c->signature);
        free(c->certificate);
        free(c->rekor_bundle);
}

static char *annotation(json_t *ann, const char *key) {
        const char *s = json_string_value(json_object_get(ann, key));

        assert_non_null(s);
        return strdup(s);
}

static Classic classic_read(void) {
        json_t *j = json_load_file(CLASSIC "signature-1.json", 0, NULL), *ann;
        Classic c = {};
        char *payload = NULL;
        size_t size;

        assert_non_null(j);
        ann = json_object_get(j, "annotations");
        c.signature = annotation(ann, COSIGN_ANNOTATION_SIGNATURE);
        c.certificate = annotation(ann, COSIGN_ANNOTATION_CERTIFICATE);
        c.rekor_bundle = annotation(ann, COSIGN_ANNOTATION_REKOR_BUNDLE);
        json_decref(j);
        /* The payload as the vector gives it decoded (payload.json), not by the code under test. */
        assert_int_equal(read_full_file(CLASSIC "payload.json", 1024 * 1024, &payload, &size), 0);
        c.payload = (uint8_t *) payload;
        c.payload_size = size;
        return c;
}

/* The annotations of a classic layer (no timestamp). */
#define LAYER(cert, rekor) (&(CosignKeylessLayer) { .certificate = (cert), .rekor_bundle = (rekor) })

static int verify_classic(const SigstoreTrustedRoot *root, const char *identity, const char *issuer,
                          const char *digest, const Classic *c, size_t *ret_index, Error *e) {
        SigstorePolicy ids[] = {
                { .identity = "someone@example.org", .issuer = CLASSIC_ISSUER },
                { .identity = identity, .issuer = issuer },
        };
        CosignKeyless k = { .root = root, .identities = ids, .n_identities = ELEMENTSOF(ids) };

        return cosign_keyless_verify_simplesigning(&k, digest, COSIGN_MEDIA_TYPE_SIMPLESIGNING, c->payload,
                                                   c->payload_size, c->signature,
                                                   LAYER(c->certificate, c->rekor_bundle),
                                                   
                                                   ret_index, NULL, e);
}

static void expect_refused(int r, const Error *e, int code, const char *detail) {
        if (r != code)
                fail_msg("expected %d, got %d: %s", code, r, e->message);
        if (!strstr(e->message, detail))
                fail_msg("'%s' does not say '%s'", e->message, detail);
}

static void test_classic_valid(_unused_ void **state) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *root = root_from_file(PRODUCTION_ROOT);
        Classic c = classic_read();
        size_t index = 99;
        Error e = {};
        int r;

        r = verify_classic(root, CLASSIC_IDENTITY, CLASSIC_ISSUER, CLASSIC_DIGEST, &c, &index, &e);
        if (r < 0)
                fail_msg("refused: %s", e.message);
        assert_int_equal(index, 1); /* the second identity: the first is someone else */
        classic_done(&c);
}

static void test_classic_wrong_identity(_unused_ void **state) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *root = root_from_file(PRODUCTION_ROOT);
        Classic c = classic_read();
        Error e = {};

        expect_refused(verify_classic(root, "mitr@example.org", CLASSIC_ISSUER, CLASSIC_DIGEST, &c, NULL, &e), &e,
                       -EPERM, "identity is 'mitr@redhat.com'");
        e = (Error) {};
        expect_refused(verify_classic(root, CLASSIC_IDENTITY, "https://accounts.google.com", CLASSIC_DIGEST, &c, NULL, &e),
                       &e, -EPERM, "none of the 2 trusted identities");
        classic_done(&c);
}

static void test_classic_other_issuer(_unused_ void **state) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *root = root_from_file(PRODUCTION_ROOT);
        Classic c = classic_read();
        SigstorePolicy ids[] = { { .identity = CLASSIC_IDENTITY, .issuer = "https://accounts.google.com" } };
        CosignKeyless k = { .root = root, .identities = ids, .n_identities = 1 };
        Error e = {};

        expect_refused(cosign_keyless_verify_simplesigning(&k, CLASSIC_DIGEST, COSIGN_MEDIA_TYPE_SIMPLESIGNING,
                                                           c.payload, c.payload_size, c.signature,
                                                           LAYER(c.certificate, c.rekor_bundle),
                                                           NULL, NULL, &e),
                       &e, -EPERM, "OIDC issuer is 'https://github.com/login/oauth'");
        classic_done(&c);
}

static void test_classic_no_ca(_unused_ void **state) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *root = root_without_cas();
        Classic c = classic_read();
        Error e = {};

        expect_refused(verify_classic(root, CLASSIC_IDENTITY, CLASSIC_ISSUER, CLASSIC_DIGEST, &c, NULL, &e), &e, -EPERM,
                       "does not chain to a trusted Fulcio CA");
        classic_done(&c);
}

/* One base64 character changed, in the middle of a field: still base64, other bytes. */
static void flip(char *s, const char *field) {
        char *p = field ? strstr(s, field) : s;

        assert_non_null(p);
        p += field ? strlen(field) + 20 : 20;
        *p = *p == 'A' ? 'B' : 'A';
}

static void test_classic_tampered(_unused_ void **state) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *root = root_from_file(PRODUCTION_ROOT);
        Classic c = classic_read();
        Error e = {};

        /* The SET. */
        flip(c.rekor_bundle, "\"SignedEntryTimestamp\":\"");
        expect_refused(verify_classic(root, CLASSIC_IDENTITY, CLASSIC_ISSUER, CLASSIC_DIGEST, &c, NULL, &e), &e, -EPERM,
                       "signed entry timestamp");
        classic_done(&c);

        /* The signature: the log entry names another one, or it does not verify. */
        c = classic_read();
        e = (Error) {};
        flip(c.signature, NULL);
        expect_refused(verify_classic(root, CLASSIC_IDENTITY, CLASSIC_ISSUER, CLASSIC_DIGEST, &c, NULL, &e), &e, -EPERM,
                       "keyless signature");
        classic_done(&c);

        /* The integrated time the SET signs. */
        c = classic_read();
        e = (Error) {};
        {
                char *t = strstr(c.rekor_bundle, "1674247893");

                assert_non_null(t);
                t[9] = '4';
        }
        expect_refused(verify_classic(root, CLASSIC_IDENTITY, CLASSIC_ISSUER, CLASSIC_DIGEST, &c, NULL, &e), &e, -EPERM,
                       "signed entry timestamp");
        classic_done(&c);

        /* Another image: the signature is fine, the payload names another digest. */
        c = classic_read();
        e = (Error) {};
        expect_refused(verify_classic(root, CLASSIC_IDENTITY, CLASSIC_ISSUER, OTHER_DIGEST, &c, NULL, &e), &e, -EPERM,
                       "not the image's");
        classic_done(&c);
}

static void test_classic_malformed(_unused_ void **state) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *root = root_from_file(PRODUCTION_ROOT);
        Classic c = classic_read();
        SigstorePolicy ids[] = { { .identity = CLASSIC_IDENTITY, .issuer = CLASSIC_ISSUER } };
        CosignKeyless k = { .root = root, .identities = ids, .n_identities = 1 };
        Error e = {};

        /* No certificate: a key-based signature, not for this verifier. */
        expect_refused(cosign_keyless_verify_simplesigning(&k, CLASSIC_DIGEST, COSIGN_MEDIA_TYPE_SIMPLESIGNING, c.payload,
                                                           c.payload_size, c.signature,
                                                           LAYER(NULL, c.rekor_bundle),
                                                           NULL, NULL, &e),
                       &e, -ENOKEY, COSIGN_ANNOTATION_CERTIFICATE);
        /* No Rekor bundle: no verified time. */
        expect_refused(cosign_keyless_verify_simplesigning(&k, CLASSIC_DIGEST, COSIGN_MEDIA_TYPE_SIMPLESIGNING, c.payload,
                                                           c.payload_size, c.signature,
                                                           LAYER(c.certificate, NULL),
                                                           NULL, NULL, &e),
                       &e, -EPERM, "cannot be verified offline");
        expect_refused(cosign_keyless_verify_simplesigning(&k, CLASSIC_DIGEST, COSIGN_MEDIA_TYPE_SIMPLESIGNING, c.payload,
                                                           c.payload_size, c.signature,
                                                           LAYER("not PEM", c.rekor_bundle),
                                                           NULL, NULL,
                                                           &e),
                       &e, -EBADMSG, "not a PEM certificate");
        expect_refused(cosign_keyless_verify_simplesigning(&k, CLASSIC_DIGEST, COSIGN_MEDIA_TYPE_SIMPLESIGNING, c.payload,
                                                           c.payload_size, c.signature,
                                                           LAYER(c.certificate, "{\"SignedEntryTimestamp\":\"AAAA\"}"),
                                                           NULL, NULL, &e),
                       &e, -EBADMSG, "Payload");
        expect_refused(cosign_keyless_verify_simplesigning(&k, CLASSIC_DIGEST, COSIGN_MEDIA_TYPE_SIMPLESIGNING, c.payload,
                                                           c.payload_size, c.signature,
                                                           LAYER(c.certificate, "{\"SignedEntryTimestamp\":\"AAAA\",\"x\":1}"),
                                                           NULL, NULL, &e),
                       &e, -EBADMSG, "x");
        expect_refused(cosign_keyless_verify_simplesigning(&k, CLASSIC_DIGEST, COSIGN_MEDIA_TYPE_DSSE, c.payload,
                                                           c.payload_size, c.signature,
                                                           LAYER(c.certificate, c.rekor_bundle),
                                                           
                                                           NULL, NULL, &e),
                       &e, -EMEDIUMTYPE, "not a simple-signing");
        k.n_identities = 0;
        expect_refused(cosign_keyless_verify_simplesigning(&k, CLASSIC_DIGEST, COSIGN_MEDIA_TYPE_SIMPLESIGNING, c.payload,
                                                           c.payload_size, c.signature,
                                                           LAYER(c.certificate, c.rekor_bundle),
                                                           
                                                           NULL, NULL, &e),
                       &e, -EINVAL, "no trusted root or identity");
        classic_done(&c);
}

/* ---- the cosign 3 bundle ---- */

static char *bundle_read(size_t *ret_size) {
        char *data = NULL;

        assert_int_equal(read_full_file(BUNDLE, SIGSTORE_BUNDLE_MAX, &data, ret_size), 0);
        return data;
}

static int verify_bundle(const SigstoreTrustedRoot *root, const char *identity, const char *issuer,
                         const char *digest, const char *data, size_t size, char **ret_predicate, Error *e) {
        SigstorePolicy ids[] = { { .identity = identity, .issuer = issuer } };
        CosignKeyless k = { .root = root, .identities = ids, .n_identities = 1 };
        size_t index = 99;
        int r;

        r = cosign_keyless_verify_bundle(&k, digest, data, size, &index, NULL, ret_predicate, e);
        if (r >= 0)
                assert_int_equal(index, 0);
        return r;
}

static void test_bundle_valid(_unused_ void **state) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *root = root_from_file(PRODUCTION_ROOT);
        _cleanup_free_ char *data = NULL, *predicate = NULL;
        size_t size;
        Error e = {};

        data = bundle_read(&size);
        if (verify_bundle(root, BUNDLE_IDENTITY, BUNDLE_ISSUER, BUNDLE_DIGEST, data, size, &predicate, &e) < 0)
                fail_msg("refused: %s", e.message);
        assert_string_equal(predicate, BUNDLE_PREDICATE);
}

static void test_bundle_refused(_unused_ void **state) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *root = root_from_file(PRODUCTION_ROOT);
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *no_ca = root_without_cas();
        _cleanup_free_ char *data = NULL;
        size_t size;
        Error e = {};

        data = bundle_read(&size);
        expect_refused(verify_bundle(root, "mitr@redhat.com", BUNDLE_ISSUER, BUNDLE_DIGEST, data, size, NULL, &e), &e,
                       -EPERM, "identity is 'cody@soyland.com'");
        expect_refused(verify_bundle(root, BUNDLE_IDENTITY, "https://accounts.google.com", BUNDLE_DIGEST, data, size,
                                     NULL, &e),
                       &e, -EPERM, "OIDC issuer");
        expect_refused(verify_bundle(no_ca, BUNDLE_IDENTITY, BUNDLE_ISSUER, BUNDLE_DIGEST, data, size, NULL, &e), &e,
                       -EPERM, "does not chain to a trusted Fulcio CA");
        expect_refused(verify_bundle(root, BUNDLE_IDENTITY, BUNDLE_ISSUER, OTHER_DIGEST, data, size, NULL, &e), &e,
                       -EPERM, "not the artifact's " OTHER_DIGEST);
        /* The SET, then the DSSE signature. */
        flip(data, "\"signedEntryTimestamp\":\"");
        expect_refused(verify_bundle(root, BUNDLE_IDENTITY, BUNDLE_ISSUER, BUNDLE_DIGEST, data, size, NULL, &e), &e,
                       -EPERM, "signed entry timestamp");
        free(data);
        data = bundle_read(&size);
        flip(data, "\"sig\":\"");
        expect_refused(verify_bundle(root, BUNDLE_IDENTITY, BUNDLE_ISSUER, BUNDLE_DIGEST, data, size, NULL, &e), &e,
                       -EPERM, "keyless signature");
}

/* sigstore_verify_digest() takes DSSE bundles only: a message signature signs the artifact's
 * bytes (a conformance case's happy path, otherwise valid). */
static void test_digest_needs_dsse(_unused_ void **state) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *root = root_from_file(PRODUCTION_ROOT);
        _cleanup_(sigstore_bundle_freep) SigstoreBundle *b = NULL;
        SigstorePolicy p = { .identity = "x", .issuer = "y" };
        uint8_t sha256[32] = {};
        Error e = {};

        if (sigstore_bundle_load(CONFORMANCE "happy-path-v0.3/bundle.sigstore.json", &b, &e) < 0)
                fail_msg("%s", e.message);
        expect_refused(sigstore_verify_digest(root, b, &p, sha256, NULL, &e), &e, -EPERM,
                       "a message signature, not a DSSE envelope");
}

static bool names(X509 *leaf, const char *identity, const char *issuer) {
        return sigstore_certificate_names(leaf, &(SigstorePolicy) { .identity = identity, .issuer = issuer });
}

/* identity or issuer as a regular expression (NULL: the exact one of the vector). */
static bool names_re(X509 *leaf, const char *identity_re, const char *issuer_re) {
        regex_t a, b;
        SigstorePolicy p = { .identity = CLASSIC_IDENTITY, .issuer = CLASSIC_ISSUER };
        bool ok;

        if (identity_re) {
                assert_int_equal(whole_match_compile(identity_re, &a, NULL), 0);
                p.identity = identity_re;
                p.identity_re = &a;
        }
        if (issuer_re) {
                assert_int_equal(whole_match_compile(issuer_re, &b, NULL), 0);
                p.issuer = issuer_re;
                p.issuer_re = &b;
        }
        ok = sigstore_certificate_names(leaf, &p);
        if (identity_re)
                regfree(&a);
        if (issuer_re)
                regfree(&b);
        return ok;
}

/* Picking the identity: the SAN (email here) and the older issuer extension, exactly or by a
 * regular expression over the whole string; and the signer recorded for it. */
static void test_certificate_names(_unused_ void **state) {
        Classic c = classic_read();
        BIO *bio = BIO_new_mem_buf(c.certificate, -1);
        X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        _cleanup_free_ char *signer = NULL;
        regex_t re;

        assert_non_null(leaf);
        assert_true(names(leaf, CLASSIC_IDENTITY, CLASSIC_ISSUER));
        assert_false(names(leaf, "mitr@redhat.co", CLASSIC_ISSUER));
        assert_false(names(leaf, "mitr@redhat.com.", CLASSIC_ISSUER));
        assert_false(names(leaf, CLASSIC_IDENTITY, CLASSIC_ISSUER "/"));
        assert_false(names(leaf, CLASSIC_IDENTITY, NULL));
        assert_false(names(NULL, CLASSIC_IDENTITY, CLASSIC_ISSUER));

        assert_true(names_re(leaf, ".*@redhat[.]com", NULL));
        assert_true(names_re(leaf, "mitr@(redhat|example)[.]com", "https://github[.]com/login/.*"));
        assert_true(names_re(leaf, "mitr|mitr@redhat.com", NULL)); /* the longest match is the whole */
        assert_false(names_re(leaf, "mitr", NULL));                /* a part is not enough */
        assert_false(names_re(leaf, "redhat[.]com", NULL));
        assert_false(names_re(leaf, ".*@example[.]com", NULL));
        assert_false(names_re(leaf, "mitr@redhat[.]co", NULL));
        assert_false(names_re(leaf, NULL, "https://github[.]com"));
        assert_false(names_re(leaf, NULL, "https://accounts[.]google[.]com"));

        assert_int_equal(sigstore_certificate_signer(leaf, &(SigstorePolicy) { .identity = CLASSIC_IDENTITY,
                                                                               .issuer = CLASSIC_ISSUER }, &signer), 0);
        assert_string_equal(signer, CLASSIC_IDENTITY " (" CLASSIC_ISSUER ")");
        free(TAKE_PTR(signer));
        assert_int_equal(whole_match_compile("[a-z]+@redhat[.]com", &re, NULL), 0);
        assert_int_equal(sigstore_certificate_signer(leaf, &(SigstorePolicy) { .identity = "[a-z]+@redhat[.]com",
                                                                               .identity_re = &re,
                                                                               .issuer = CLASSIC_ISSUER }, &signer), 0);
        assert_string_equal(signer, CLASSIC_IDENTITY " (" CLASSIC_ISSUER ")");
        assert_int_equal(sigstore_certificate_signer(leaf, &(SigstorePolicy) { .identity = "x@redhat.com",
                                                                               .issuer = CLASSIC_ISSUER }, &signer), -ENOENT);
        regfree(&re);
        X509_free(leaf);
        BIO_free(bio);
        classic_done(&c);
}

/* The regular expression of an identity policy: the whole string, never a part; NUL bytes
 * never match; an expression that does not compile is said so. */
static void test_whole_match(_unused_ void **state) {
        regex_t re;
        Error e = {};

        assert_int_equal(whole_match_compile("https://github[.]com/org/.*", &re, NULL), 0);
        assert_true(whole_match(&re, "https://github.com/org/repo", 27));
        assert_false(whole_match(&re, "https://evil.example/?https://github.com/org/x", 46));
        assert_false(whole_match(&re, "https://github.com/org/repo\0x", 29));
        assert_false(whole_match(&re, "https://github.com/org", 22));
        regfree(&re);
        assert_int_equal(whole_match_compile("a|ab", &re, NULL), 0);
        assert_true(whole_match(&re, "ab", 2));
        assert_true(whole_match(&re, "a", 1));
        assert_false(whole_match(&re, "abc", 3));
        regfree(&re);
        /* Unbalanced: refused, with regerror()'s words. */
        assert_int_equal(whole_match_compile("a)|(b", &re, &e), -EINVAL);
        assert_non_null(strstr(e.message, "not a POSIX extended regular expression"));
        assert_int_equal(whole_match_compile("(a", &re, &e), -EINVAL);
        assert_int_equal(whole_match_compile(NULL, &re, &e), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_classic_valid),
                cmocka_unit_test(test_classic_wrong_identity),
                cmocka_unit_test(test_classic_other_issuer),
                cmocka_unit_test(test_classic_no_ca),
                cmocka_unit_test(test_classic_tampered),
                cmocka_unit_test(test_classic_malformed),
                cmocka_unit_test(test_bundle_valid),
                cmocka_unit_test(test_bundle_refused),
                cmocka_unit_test(test_digest_needs_dsse),
                cmocka_unit_test(test_certificate_names),
                cmocka_unit_test(test_whole_match),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
