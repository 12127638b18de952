/* SPDX-License-Identifier: MIT */
/* The Cosign verifier against real cosign output (shared/vectors/cosign, from cosign,
 * containers/image and sigstore-rs) and against fixtures made with the openssl CLI
 * (tests/data/cosign, by tools/make-cosign-vectors). Every refusal is checked for its code and
 * for the reason in its message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "sign/cosign.h"
#include "basic/fileio.h"

#define DATA TEST_DATA_DIR "/cosign/"
#define KEYS DATA "keys/"
#define SHARED SHARED_VECTORS_DIR "/"
#define NEG SHARED "cimage-negative/"
#define SIGSTORE_JSON_PREFIX "\0sigstore-json\n"
#define SIGSTORE_JSON_PREFIX_SIZE 15

static char *read_text(const char *path, size_t *ret_size) {
        char *buf = NULL;
        size_t size = 0;
        int r = read_full_file(path, 64u * 1024u * 1024u, &buf, &size);

        if (r < 0)
                fail_msg("cannot read '%s': %s", path, strerror(-r));
        if (ret_size)
                *ret_size = size;
        return buf;
}

static char *file_trimmed(const char *path) {
        char *s = read_text(path, NULL);

        s[strcspn(s, "\n")] = 0;
        return s;
}

/* "sha256:<hex>" of a file: what a manifest's digest is. */
static void digest_of(const char *path, char ret[static 72]) {
        _cleanup_free_ char *data = NULL;
        unsigned char md[32];
        size_t size;

        data = read_text(path, &size);
        assert_true(EVP_Digest(data, size, md, NULL, EVP_sha256(), NULL));
        memcpy(ret, "sha256:", 7);
        for (size_t i = 0; i < 32; i++)
                (void) snprintf(ret + 7 + 2 * i, 3, "%02x", md[i]);
}

/* A keyring from paths; NULL-terminated. */
static CosignKeyring *keyring(const char *first, ...) {
        const char *paths[16] = { first };
        CosignKeyring *k = NULL;
        Error e = {};
        size_t n = 1;
        va_list ap;
        int r;

        va_start(ap, first);
        while (n < ELEMENTSOF(paths) - 1 && (paths[n] = va_arg(ap, const char *)))
                n++;
        va_end(ap);
        r = cosign_keyring_load((char *const *) paths, &k, &e);
        if (r < 0)
                fail_msg("keyring: %s", e.message);
        return k;
}

/* A containers/image `dir:` signature: "\0sigstore-json\n" + {mimeType, payload, annotations}. */
typedef struct CimageSig {
        char *mime_type;
        uint8_t *payload;
        size_t payload_size;
        char *signature;
} CimageSig;

static void cimage_sig_done(CimageSig *s) {
        free(s->mime_type);
        free(s->payload);
        free(s->signature);
}

static CimageSig cimage_sig_read(const char *path) {
        _cleanup_free_ char *raw = NULL;
        json_t *j, *sig;
        json_error_t jerr;
        CimageSig s = {};
        const char *payload;
        size_t size;
        int n;

        raw = read_text(path, &size);
        assert_true(size > SIGSTORE_JSON_PREFIX_SIZE);
        assert_memory_equal(raw, SIGSTORE_JSON_PREFIX, SIGSTORE_JSON_PREFIX_SIZE);
        j = json_loadb(raw + SIGSTORE_JSON_PREFIX_SIZE, size - SIGSTORE_JSON_PREFIX_SIZE, 0, &jerr);
        if (!j)
                fail_msg("%s: %s", path, jerr.text);
        s.mime_type = strdup(json_string_value(json_object_get(j, "mimeType")));
        payload = json_string_value(json_object_get(j, "payload"));
        assert_non_null(payload);
        /* OpenSSL's decoder, not the module's: the fixture must not depend on the code under test. */
        s.payload = malloc(strlen(payload) / 4 * 3 + 3);
        n = EVP_DecodeBlock(s.payload, (const unsigned char *) payload, (int) strlen(payload));
        assert_true(n >= 0);
        s.payload_size = (size_t) n - (strlen(payload) >= 2 && payload[strlen(payload) - 2] == '=' ? 2
                                       : strlen(payload) >= 1 && payload[strlen(payload) - 1] == '=' ? 1 : 0);
        sig = json_object_get(json_object_get(j, "annotations"), COSIGN_ANNOTATION_SIGNATURE);
        s.signature = json_is_string(sig) ? strdup(json_string_value(sig)) : NULL;
        json_decref(j);
        return s;
}

/* Verifies the `dir:` signature sig_path for the image whose manifest is manifest_path. */
static int verify_cimage(const CosignKeyring *k, const char *manifest_path, const char *sig_path, size_t *ret_index,
                         Error *e) {
        CimageSig s = cimage_sig_read(sig_path);
        char digest[72];
        int r;

        digest_of(manifest_path, digest);
        r = cosign_verify_simplesigning(k, digest, s.mime_type, s.payload, s.payload_size, s.signature, ret_index, e);
        cimage_sig_done(&s);
        return r;
}

static void expect(int r, const Error *e, int expected, const char *detail) {
        if (r != expected)
                fail_msg("got %d (%s), expected %d (%s)", r, strna(error_message(e)), expected, strna(detail));
        if (detail && !strstr(strempty(error_message(e)), detail))
                fail_msg("message '%s' does not say '%s'", strna(error_message(e)), detail);
}

/* ---- The keyring ---- */

static void test_keyring_load(void **state) {
        static const char *const names[] = { "p256", "p384", "p521", "ed25519", "rsa2048" };
        static const char *const types[] = { "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519", "rsa-2048" };
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = NULL;

        k = keyring(KEYS "p256.pub", KEYS "p384.pub", KEYS "p521.pub", KEYS "ed25519.pub", KEYS "rsa2048.pub", NULL);
        assert_int_equal(cosign_keyring_size(k), 5);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char path[256];
                _cleanup_free_ char *fp = NULL;

                (void) snprintf(path, sizeof(path), KEYS "%s.fp", names[i]);
                fp = file_trimmed(path);
                assert_string_equal(cosign_keyring_fingerprint(k, i), fp);
                assert_string_equal(cosign_keyring_key_type(k, i), types[i]);
                (void) snprintf(path, sizeof(path), KEYS "%s.pub", names[i]);
                assert_string_equal(cosign_keyring_path(k, i), path);
        }
        assert_null(cosign_keyring_fingerprint(k, 5));
        assert_null(cosign_keyring_path(k, 5));
}

static void test_keyring_refusals(void **state) {
        static const struct {
                const char *path, *second;
                int r;
                const char *detail;
        } cases[] = {
                { KEYS "missing.pub", NULL, -ENOENT, "'" KEYS "missing.pub'" },
                { KEYS, NULL, -EISDIR, "'" KEYS "'" },
                { KEYS "not-pem.pub", NULL, -EINVAL, "'" KEYS "not-pem.pub' is not a PEM public key" },
                { KEYS "private.pem", NULL, -EINVAL, "'" KEYS "private.pem' holds a private key (PRIVATE KEY)" },
                { KEYS "certificate.pem", NULL, -EINVAL, "holds a certificate, not a public key" },
                { KEYS "two-keys.pub", NULL, -EINVAL, "more than one PEM block" },
                { KEYS "trailing-der.pub", NULL, -EINVAL, "1 bytes after the key" },
                { KEYS "rsa1024.pub", NULL, -EPROTONOSUPPORT, "'" KEYS "rsa1024.pub': 1024-bit RSA keys are not accepted" },
                { KEYS "secp256k1.pub", NULL, -EPROTONOSUPPORT, "on curve secp256k1 are not supported" },
                { KEYS "p256.pub", KEYS "p256.pub", -EINVAL, "holds the same key as" },
                { KEYS "p256.pub", KEYS "private.pem", -EINVAL, "private key" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *paths[] = { cases[i].path, cases[i].second, NULL };
                CosignKeyring *k = NULL;
                Error e = {};
                int r;

                r = cosign_keyring_load((char *const *) paths, &k, &e);
                expect(r, &e, cases[i].r, cases[i].detail);
                assert_null(k);
        }
}

static void test_keyring_count(void **state) {
        const char *paths[COSIGN_KEYRING_MAX + 2] = {};
        CosignKeyring *k = NULL;
        Error e = {};

        expect(cosign_keyring_load((char *const *) paths, &k, &e), &e, -EINVAL, "no public keys");
        for (size_t i = 0; i < COSIGN_KEYRING_MAX + 1; i++)
                paths[i] = KEYS "p256.pub";
        expect(cosign_keyring_load((char *const *) paths, &k, &e), &e, -E2BIG, "65 public keys");
        assert_null(k);
}

/* ---- Real cosign output: classic signatures ---- */

static void test_cimage_valid(void **state) {
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = keyring(SHARED "cimage-dir-img-cosign-valid/cosign.pub", NULL);
        size_t index = 99;
        Error e = {};

        expect(verify_cimage(k, SHARED "cimage-dir-img-cosign-valid/manifest.json",
                             SHARED "cimage-dir-img-cosign-valid/signature-1", &index, &e),
               &e, 0, NULL);
        assert_int_equal(index, 0);
        /* Both of valid-2's signatures, and the good one of mixed. */
        expect(verify_cimage(k, NEG "dir-img-cosign-valid-2/manifest.json", NEG "dir-img-cosign-valid-2/signature-1", NULL,
                             &e),
               &e, 0, NULL);
        expect(verify_cimage(k, NEG "dir-img-cosign-valid-2/manifest.json", NEG "dir-img-cosign-valid-2/signature-2", NULL,
                             &e),
               &e, 0, NULL);
        expect(verify_cimage(k, NEG "dir-img-cosign-mixed/manifest.json", NEG "dir-img-cosign-mixed/signature-2", NULL, &e),
               &e, 0, NULL);
}

static void test_cimage_key_rekor(void **state) {
        const char *dir = SHARED "cimage-dir-img-cosign-key-rekor-valid/";
        _cleanup_(cosign_keyring_freep) CosignKeyring *k2 = NULL, *k1 = NULL, *both = NULL;
        char manifest[256], sig[256];
        size_t index = 99;
        Error e = {};

        (void) snprintf(manifest, sizeof(manifest), "%smanifest.json", dir);
        (void) snprintf(sig, sizeof(sig), "%ssignature-1", dir);
        k2 = keyring(SHARED "cimage-dir-img-cosign-key-rekor-valid/cosign2.pub", NULL);
        k1 = keyring(SHARED "cimage-dir-img-cosign-key-rekor-valid/cosign.pub", NULL);
        both = keyring(SHARED "cimage-dir-img-cosign-key-rekor-valid/cosign.pub",
                       SHARED "cimage-dir-img-cosign-key-rekor-valid/cosign2.pub", NULL);
        expect(verify_cimage(k2, manifest, sig, NULL, &e), &e, 0, NULL);
        expect(verify_cimage(k1, manifest, sig, NULL, &e), &e, -EPERM, "does not verify with any of the 1 trusted keys");
        expect(verify_cimage(both, manifest, sig, &index, &e), &e, 0, NULL);
        assert_int_equal(index, 1);
}

/* Keyless, classic: the signature verifies with the Fulcio certificate's key when that key is trusted. */
static void test_cimage_fulcio_certificate_key(void **state) {
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = NULL, *other = NULL;
        Error e = {};

        k = keyring(SHARED "cimage-dir-img-cosign-fulcio-rekor-valid/cert-pub.pem", NULL);
        other = keyring(SHARED "cimage-dir-img-cosign-valid/cosign.pub", NULL);
        expect(verify_cimage(k, SHARED "cimage-dir-img-cosign-fulcio-rekor-valid/manifest.json",
                             SHARED "cimage-dir-img-cosign-fulcio-rekor-valid/signature-1", NULL, &e),
               &e, 0, NULL);
        expect(verify_cimage(other, SHARED "cimage-dir-img-cosign-fulcio-rekor-valid/manifest.json",
                             SHARED "cimage-dir-img-cosign-fulcio-rekor-valid/signature-1", NULL, &e),
               &e, -EPERM, "does not verify");
}

static void test_cimage_negative(void **state) {
        static const struct {
                const char *manifest, *sig;
                int r;
                const char *detail;
        } cases[] = {
                { NEG "dir-img-cosign-modified-manifest/manifest.json", NEG "dir-img-cosign-modified-manifest/signature-1",
                  -EPERM, "the payload names digest sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00, not the image's sha256:" },
                { NEG "dir-img-cosign-manifest-digest-error/manifest.json",
                  NEG "dir-img-cosign-manifest-digest-error/signature-1", -EPERM, "not the image's" },
                { NEG "dir-img-cosign-mixed/manifest.json", NEG "dir-img-cosign-mixed/signature-1", -EPERM,
                  "does not verify with any of the 1 trusted keys" },
                { NEG "dir-img-cosign-other-attachment/manifest.json", NEG "dir-img-cosign-other-attachment/signature-1",
                  -EMEDIUMTYPE, "the layer's media type is 'text/plain'" },
                { SHARED "cimage-dir-img-cosign-valid/manifest.json", NEG "unknown-cosign-key.signature", -EPERM,
                  "not signed by a trusted key" },
                { NEG "unknown-key/manifest.json", NEG "unknown-key/signature-1", -EPERM, "not signed by a trusted key" },
        };
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = keyring(SHARED "cimage-dir-img-cosign-valid/cosign.pub", NULL);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t index = 99;
                Error e = {};

                expect(verify_cimage(k, cases[i].manifest, cases[i].sig, &index, &e), &e, cases[i].r, cases[i].detail);
                assert_int_equal(index, 99);
        }
}

static void test_sigstore_rs(void **state) {
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = keyring(SHARED "sigstore-rs-signature-layer-key/pub.pem", NULL);
        _cleanup_free_ char *payload = NULL, *sig = NULL;
        const char *digest = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b";
        size_t size;
        Error e = {};

        payload = read_text(SHARED "sigstore-rs-signature-layer-key/payload.json", &size);
        sig = file_trimmed(SHARED "sigstore-rs-signature-layer-key/sig.b64");
        expect(cosign_verify_simplesigning(k, digest, COSIGN_MEDIA_TYPE_SIMPLESIGNING, payload, size, sig, NULL, &e), &e,
               0, NULL);
        expect(cosign_verify_simplesigning(k, "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06c",
                                           COSIGN_MEDIA_TYPE_SIMPLESIGNING, payload, size, sig, NULL, &e),
               &e, -EPERM, "the payload names digest sha256:f3cfc9d0");
}

/* ---- Real cosign output: a keyless Sigstore bundle v0.3 ---- */

static void test_bundle_v03_keyless(void **state) {
        const char *digest = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
        _cleanup_(cosign_keyring_freep) CosignKeyring *cert = NULL, *stranger = NULL, *both = NULL;
        _cleanup_free_ char *bundle = NULL, *predicate = NULL;
        size_t size, index = 99;
        Error e = {};

        bundle = read_text(SHARED "cosign-oci-attestation-bundle-v03/oci-attestation.sigstore.json", &size);
        cert = keyring(KEYS "bundle-v03-cert.pub", NULL);
        stranger = keyring(KEYS "stranger.pub", NULL);
        both = keyring(KEYS "stranger.pub", KEYS "bundle-v03-cert.pub", NULL);

        expect(cosign_verify_bundle(cert, digest, bundle, size, &index, &predicate, &e), &e, 0, NULL);
        assert_int_equal(index, 0);
        assert_string_equal(predicate, "https://cosign.sigstore.dev/attestation/v1");
        assert_false(cosign_predicate_is_sbom(predicate));
        expect(cosign_verify_bundle(both, digest, bundle, size, &index, NULL, &e), &e, 0, NULL);
        assert_int_equal(index, 1);
        expect(cosign_verify_bundle(stranger, digest, bundle, size, NULL, NULL, &e), &e, -EPERM,
               "not signed by a trusted key: the bundle is signed keyless, with a certificate for key SHA256:");
        expect(cosign_verify_bundle(cert, "sha256:0000000000000000000000000000000000000000000000000000000000000000", bundle,
                                    size, NULL, NULL, &e),
               &e, -EPERM, "the statement's subject names sha256:732112270d7e");
}

/* The PAE of the real bundle is what cosign signed (pae.bin was cut from the same bytes). */
static void test_pae(void **state) {
        _cleanup_free_ uint8_t *pae = NULL;
        _cleanup_free_ char *expected = NULL, *bundle = NULL;
        size_t size, expected_size, bundle_size;
        json_t *j;

        assert_int_equal(cosign_dsse_pae("http://example.com/HelloWorld", "hello world", 11, &pae, &size), 0);
        assert_int_equal(size, strlen("DSSEv1 29 http://example.com/HelloWorld 11 hello world"));
        assert_memory_equal(pae, "DSSEv1 29 http://example.com/HelloWorld 11 hello world", size);
        free(TAKE_PTR(pae));

        bundle = read_text(SHARED "cosign-oci-attestation-bundle-v03/oci-attestation.sigstore.json", &bundle_size);
        expected = read_text(SHARED "cosign-oci-attestation-bundle-v03/pae.bin", &expected_size);
        j = json_loadb(bundle, bundle_size, 0, NULL);
        assert_non_null(j);
        {
                const char *b64 = json_string_value(json_object_get(json_object_get(j, "dsseEnvelope"), "payload"));
                _cleanup_free_ uint8_t *payload = NULL;
                size_t payload_size;

                assert_int_equal(cosign_base64_decode(b64, strlen(b64), &payload, &payload_size), 0);
                assert_int_equal(cosign_dsse_pae(COSIGN_PAYLOAD_TYPE_INTOTO, payload, payload_size, &pae, &size), 0);
        }
        json_decref(j);
        assert_int_equal(size, expected_size);
        assert_memory_equal(pae, expected, size);
}


/* ---- Generated fixtures: simple signing ---- */

typedef struct Fixture {
        char digest[72];
        char other[72];
} Fixture;

static Fixture fixture(void) {
        _cleanup_free_ char *other = file_trimmed(DATA "other.digest");
        Fixture f = {};

        digest_of(DATA "manifest.json", f.digest);
        (void) snprintf(f.other, sizeof(f.other), "%s", other);
        return f;
}

static int verify_ss(const CosignKeyring *k, const char *digest, const char *payload_name, const char *sig_name,
                     size_t *ret_index, Error *e) {
        _cleanup_free_ char *payload = NULL, *sig = NULL;
        char path[256];
        size_t size;

        (void) snprintf(path, sizeof(path), DATA "%s", payload_name);
        payload = read_text(path, &size);
        (void) snprintf(path, sizeof(path), DATA "%s", sig_name);
        sig = read_text(path, NULL);
        return cosign_verify_simplesigning(k, digest, COSIGN_MEDIA_TYPE_SIMPLESIGNING, payload, size, sig, ret_index, e);
}

static void test_ss_key_types(void **state) {
        static const struct {
                const char *sig;
                size_t index;
        } cases[] = {
                { "ss-p256.sig", 0 },    { "ss-p384.sig", 1 },        { "ss-p384-sha384.sig", 1 },
                { "ss-p521.sig", 2 },    { "ss-p521-sha512.sig", 2 }, { "ss-ed25519.sig", 3 },
                { "ss-rsa2048.sig", 4 }, { "ss-rsa2048-sha512.sig", 4 },
        };
        static const char *const own[] = { KEYS "p256.pub", KEYS "p384.pub", KEYS "p521.pub", KEYS "ed25519.pub",
                                           KEYS "rsa2048.pub" };
        _cleanup_(cosign_keyring_freep) CosignKeyring *all = NULL, *stranger = NULL;
        Fixture f = fixture();

        all = keyring(own[0], own[1], own[2], own[3], own[4], NULL);
        stranger = keyring(KEYS "stranger.pub", NULL);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(cosign_keyring_freep) CosignKeyring *one = keyring(own[cases[i].index], NULL);
                size_t index = 99;
                Error e = {};

                expect(verify_ss(all, f.digest, "ss-payload.json", cases[i].sig, &index, &e), &e, 0, NULL);
                assert_int_equal(index, cases[i].index);
                expect(verify_ss(one, f.digest, "ss-payload.json", cases[i].sig, &index, &e), &e, 0, NULL);
                assert_int_equal(index, 0);
                expect(verify_ss(stranger, f.digest, "ss-payload.json", cases[i].sig, NULL, &e), &e, -EPERM,
                       "not signed by a trusted key");
        }
}

static void test_ss_negative(void **state) {
        static const struct {
                const char *payload, *sig;
                int r;
                const char *detail;
        } cases[] = {
                { "ss-payload.json", "ss-p256-newlines.sig", 0, NULL },
                { "ss-tampered-payload.json", "ss-p256.sig", -EPERM, "the payload or signature was changed" },
                { "ss-payload.json", "ss-p256-tampered.sig", -EPERM, "the payload or signature was changed" },
                { "ss-payload.json", "ss-p256-bad-base64.sig", -EBADMSG, "annotation is not valid base64" },
                { "ss-payload.json", "ss-stranger.sig", -EPERM, "not signed by a trusted key" },
                { "ss-other-digest.json", "ss-other-digest.sig", -EPERM, "the payload names digest sha256:" },
                { "ss-wrong-type.json", "ss-wrong-type.sig", -EBADMSG,
                  "of type 'cosign container image attestation', not 'cosign container image signature'" },
                { "ss-not-json.json", "ss-not-json.sig", -EBADMSG, "the signed payload is not valid JSON" },
                /* A signature for one payload does not verify another. */
                { "ss-other-digest.json", "ss-p256.sig", -EPERM, "does not verify" },
        };
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = keyring(KEYS "p256.pub", NULL);
        Fixture f = fixture();

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Error e = {};

                expect(verify_ss(k, f.digest, cases[i].payload, cases[i].sig, NULL, &e), &e, cases[i].r, cases[i].detail);
        }
        {
                Error e = {};
                expect(verify_ss(k, f.other, "ss-other-digest.json", "ss-other-digest.sig", NULL, &e), &e, 0, NULL);
        }
}

static void test_ss_arguments(void **state) {
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = keyring(KEYS "p256.pub", NULL);
        _cleanup_free_ char *payload = NULL, *sig = NULL, *huge = NULL, *long_sig = NULL;
        Fixture f = fixture();
        char upper[72];
        size_t size;
        Error e = {};

        payload = read_text(DATA "ss-payload.json", &size);
        sig = read_text(DATA "ss-p256.sig", NULL);
        expect(cosign_verify_simplesigning(k, f.digest, "text/plain", payload, size, sig, NULL, &e), &e, -EMEDIUMTYPE,
               "'text/plain', not a simple-signing signature");
        expect(cosign_verify_simplesigning(k, f.digest, NULL, payload, size, sig, NULL, &e), &e, -EMEDIUMTYPE, "(null)");
        expect(cosign_verify_simplesigning(k, f.digest, COSIGN_MEDIA_TYPE_DSSE, payload, size, sig, NULL, &e), &e,
               -EMEDIUMTYPE, COSIGN_MEDIA_TYPE_DSSE);
        expect(cosign_verify_simplesigning(k, f.digest, COSIGN_MEDIA_TYPE_SIMPLESIGNING, payload, size, NULL, NULL, &e),
               &e, -EBADMSG, "no dev.cosignproject.cosign/signature annotation");
        expect(cosign_verify_simplesigning(k, f.digest, COSIGN_MEDIA_TYPE_SIMPLESIGNING, payload, size, "\n", NULL, &e),
               &e, -EBADMSG, "annotation is empty");
        expect(cosign_verify_simplesigning(k, f.digest, COSIGN_MEDIA_TYPE_SIMPLESIGNING, payload, 0, sig, NULL, &e), &e,
               -EBADMSG, "payload is empty");

        huge = calloc(1, COSIGN_PAYLOAD_MAX + 1);
        assert_non_null(huge);
        expect(cosign_verify_simplesigning(k, f.digest, COSIGN_MEDIA_TYPE_SIMPLESIGNING, huge, COSIGN_PAYLOAD_MAX + 1, sig,
                                           NULL, &e),
               &e, -EFBIG, "more than 1048576");
        long_sig = malloc(COSIGN_SIGNATURE_B64_MAX + 2);
        assert_non_null(long_sig);
        memset(long_sig, 'A', COSIGN_SIGNATURE_B64_MAX + 1);
        long_sig[COSIGN_SIGNATURE_B64_MAX + 1] = 0;
        expect(cosign_verify_simplesigning(k, f.digest, COSIGN_MEDIA_TYPE_SIMPLESIGNING, payload, size, long_sig, NULL, &e),
               &e, -EFBIG, "larger than 16384 bytes");

        /* The image digest is the caller's: a malformed one is a bug, not a bad signature. */
        memcpy(upper, f.digest, sizeof(upper));
        upper[10] = upper[10] >= 'a' ? (char) (upper[10] - 'a' + 'A') : 'A';
        expect(cosign_verify_simplesigning(k, upper, COSIGN_MEDIA_TYPE_SIMPLESIGNING, payload, size, sig, NULL, &e), &e,
               -EINVAL, "is not an image digest");
        expect(cosign_verify_simplesigning(k, "sha512:abc", COSIGN_MEDIA_TYPE_SIMPLESIGNING, payload, size, sig, NULL, &e),
               &e, -EINVAL, "'sha512:abc' is not an image digest");
        expect(cosign_verify_simplesigning(k, NULL, COSIGN_MEDIA_TYPE_SIMPLESIGNING, payload, size, sig, NULL, &e), &e,
               -EINVAL, "is not an image digest");
        expect(cosign_verify_simplesigning(NULL, f.digest, COSIGN_MEDIA_TYPE_SIMPLESIGNING, payload, size, sig, NULL, &e),
               &e, -EINVAL, "no keyring");
}

/* ---- Generated fixtures: bundles and envelopes ---- */

typedef int (*verify_doc_t)(const CosignKeyring *, const char *, const void *, size_t, size_t *, char **, Error *);

static int verify_doc(verify_doc_t fn, const CosignKeyring *k, const char *digest, const char *name, size_t *ret_index,
                      char **ret_predicate, Error *e) {
        _cleanup_free_ char *doc = NULL;
        char path[256];
        size_t size;

        (void) snprintf(path, sizeof(path), DATA "%s", name);
        doc = read_text(path, &size);
        return fn(k, digest, doc, size, ret_index, ret_predicate, e);
}

static void test_bundle_generated(void **state) {
        static const struct {
                const char *name;
                size_t index;
        } cases[] = {
                { "bundle-p256.json", 0 },
                { "bundle-ed25519.json", 1 },
                { "bundle-rsa2048.json", 2 },
                { "bundle-newlines.json", 0 },
                { "bundle-keyless-p256.json", 0 },
        };
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = NULL;
        Fixture f = fixture();

        k = keyring(KEYS "p256.pub", KEYS "ed25519.pub", KEYS "rsa2048.pub", NULL);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *predicate = NULL;
                size_t index = 99;
                Error e = {};

                expect(verify_doc(cosign_verify_bundle, k, f.digest, cases[i].name, &index, &predicate, &e), &e, 0, NULL);
                assert_int_equal(index, cases[i].index);
                assert_string_equal(predicate, COSIGN_PREDICATE_SIGN);
        }
}

static void test_bundle_negative(void **state) {
        static const struct {
                const char *name;
                int r;
                const char *detail;
        } cases[] = {
                { "bundle-tampered-payload.json", -EPERM, "the payload or signature was changed" },
                { "bundle-tampered-sig.json", -EPERM, "the payload or signature was changed" },
                { "bundle-other-digest.json", -EPERM, "the statement's subject names sha256:" },
                { "bundle-wrong-payload-type.json", -EMEDIUMTYPE, "has payloadType 'application/json'" },
                { "bundle-wrong-media-type.json", -EMEDIUMTYPE,
                  "mediaType is 'application/vnd.dev.sigstore.bundle+json;version=0.1'" },
                { "bundle-truncated.json", -EBADMSG, "the bundle is not valid JSON" },
                { "bundle-stranger.json", -EPERM, "not signed by a trusted key" },
                { "bundle-bad-base64.json", -EBADMSG, "\"payload\" is not valid base64" },
                { "bundle-message-signature.json", -EBADMSG, "holds a messageSignature" },
                { "att-spdx.json", -EBADMSG, "the bundle has no mediaType" },
                { "bundle-keyless-mismatch.json", -EPERM,
                  "the bundle's DSSE envelope does not verify with the certificate's key (SHA256:" },
                { "bundle-keyless-trailing.json", -EBADMSG, "the bundle's certificate is not a DER X.509 certificate" },
                { "bundle-not-statement.json", -EBADMSG,
                  "of type 'https://example.org/NotAStatement/v1', not an in-toto statement" },
                { "bundle-no-predicate-type.json", -EBADMSG, "the signed statement has no predicateType" },
                { "bundle-sha512-subject.json", -EPERM, "the statement's subjects name no sha256 digest" },
        };
        /* P-384 is trusted too, so that a keyless bundle for the P-384 key but signed by P-256 is
         * refused for the right reason: only the certificate's key may have signed. */
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = keyring(KEYS "p256.pub", KEYS "p384.pub", NULL);
        _cleanup_free_ char *stranger_fp = file_trimmed(KEYS "stranger.fp");
        Fixture f = fixture();
        char detail[128];
        Error e = {};

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *predicate = NULL;
                size_t index = 99;

                expect(verify_doc(cosign_verify_bundle, k, f.digest, cases[i].name, &index, &predicate, &e), &e,
                       cases[i].r, cases[i].detail);
                assert_null(predicate);
                assert_int_equal(index, 99);
        }
        /* The stranger's bundle says which key signed it. */
        (void) snprintf(detail, sizeof(detail), "its hint names key %s, which is not trusted", stranger_fp);
        expect(verify_doc(cosign_verify_bundle, k, f.digest, "bundle-stranger.json", NULL, NULL, &e), &e, -EPERM, detail);
        /* The other image's bundle is valid for that image. */
        expect(verify_doc(cosign_verify_bundle, k, f.other, "bundle-other-digest.json", NULL, NULL, &e), &e, 0, NULL);

        /* Without verification material, or with material of neither kind. */
        {
                _cleanup_free_ char *text = read_text(DATA "bundle-p256.json", NULL), *none = NULL, *empty = NULL;
                json_t *j = json_loads(text, 0, NULL);

                assert_non_null(j);
                assert_int_equal(json_object_del(j, "verificationMaterial"), 0);
                none = json_dumps(j, JSON_COMPACT);
                assert_int_equal(json_object_set_new(j, "verificationMaterial", json_object()), 0);
                empty = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                expect(cosign_verify_bundle(k, f.digest, none, strlen(none), NULL, NULL, &e), &e, -EBADMSG,
                       "the bundle has no verificationMaterial");
                expect(cosign_verify_bundle(k, f.digest, empty, strlen(empty), NULL, NULL, &e), &e, -EBADMSG,
                       "has neither a publicKey nor a certificate");
        }
}

static void test_envelope(void **state) {
        static const struct {
                const char *name;
                int r;
                const char *detail;
        } cases[] = {
                { "att-wrong-payload-type.json", -EMEDIUMTYPE, "has payloadType 'application/vnd.cyclonedx+json'" },
                { "att-other-digest.json", -EPERM, "the statement's subject names sha256:" },
                { "att-stranger.json", -EPERM, "does not verify with any of the 2 trusted keys" },
                { "att-no-signatures.json", -EBADMSG, "the DSSE envelope has no signatures" },
                { "bundle-p256.json", -EBADMSG, "the DSSE envelope has no payloadType" },
        };
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = keyring(KEYS "p256.pub", KEYS "p384.pub", NULL);
        _cleanup_free_ char *predicate = NULL;
        Fixture f = fixture();
        size_t index = 99;
        Error e = {};

        expect(verify_doc(cosign_verify_dsse_envelope, k, f.digest, "att-spdx.json", &index, &predicate, &e), &e, 0, NULL);
        assert_int_equal(index, 0);
        assert_string_equal(predicate, "https://spdx.dev/Document");
        assert_true(cosign_predicate_is_sbom(predicate));
        /* The first signature is a stranger's, the second verifies with P-384. */
        expect(verify_doc(cosign_verify_dsse_envelope, k, f.digest, "att-two-signatures.json", &index, NULL, &e), &e, 0,
               NULL);
        assert_int_equal(index, 1);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *p = NULL;

                expect(verify_doc(cosign_verify_dsse_envelope, k, f.digest, cases[i].name, NULL, &p, &e), &e, cases[i].r,
                       cases[i].detail);
                assert_null(p);
        }

        /* The valid envelope with its signature 17 times: more signatures than are read. */
        {
                _cleanup_free_ char *text = read_text(DATA "att-spdx.json", NULL), *many = NULL;
                json_t *j = json_loads(text, 0, NULL), *sigs;

                assert_non_null(j);
                sigs = json_object_get(j, "signatures");
                for (size_t i = 1; i <= COSIGN_DSSE_SIGNATURES_MAX; i++)
                        assert_int_equal(json_array_append(sigs, json_array_get(sigs, 0)), 0);
                many = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                expect(cosign_verify_dsse_envelope(k, f.digest, many, strlen(many), NULL, NULL, &e), &e, -EBADMSG,
                       "has 17 signatures, more than 16");
        }
        /* A signature longer than any key makes. */
        {
                _cleanup_free_ char *text = read_text(DATA "att-spdx.json", NULL), *big = NULL, *doc = NULL;
                json_t *j = json_loads(text, 0, NULL);

                assert_non_null(j);
                big = malloc(COSIGN_SIGNATURE_B64_MAX + 5);
                memset(big, 'A', COSIGN_SIGNATURE_B64_MAX + 4);
                big[COSIGN_SIGNATURE_B64_MAX + 4] = 0;
                assert_int_equal(json_object_set_new(json_array_get(json_object_get(j, "signatures"), 0), "sig",
                                                     json_string(big)),
                                 0);
                doc = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                expect(cosign_verify_dsse_envelope(k, f.digest, doc, strlen(doc), NULL, NULL, &e), &e, -EBADMSG,
                       "signature 0 of the DSSE envelope: \"sig\" is longer than 16384 bytes");
        }
}

/* Input over the caps, made here rather than stored. */
static void test_caps(void **state) {
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = keyring(KEYS "p256.pub", NULL);
        _cleanup_free_ char *huge = NULL, *deep = NULL, *wide = NULL;
        Fixture f = fixture();
        size_t n = 0;
        Error e = {};

        huge = malloc(COSIGN_DOCUMENT_MAX + 1);
        assert_non_null(huge);
        memset(huge, ' ', COSIGN_DOCUMENT_MAX + 1);
        huge[0] = '{';
        huge[COSIGN_DOCUMENT_MAX] = '}';
        expect(cosign_verify_bundle(k, f.digest, huge, COSIGN_DOCUMENT_MAX + 1, NULL, NULL, &e), &e, -EFBIG,
               "the bundle is 8388609 bytes, more than 8388608");
        expect(cosign_verify_dsse_envelope(k, f.digest, huge, COSIGN_DOCUMENT_MAX + 1, NULL, NULL, &e), &e, -EFBIG,
               "more than 8388608");
        expect(cosign_verify_bundle(k, f.digest, "", 0, NULL, NULL, &e), &e, -EBADMSG, "the bundle is empty");

        deep = malloc(2 * (COSIGN_UNSIGNED_JSON_DEPTH_MAX + 1) + 1);
        for (size_t i = 0; i <= COSIGN_UNSIGNED_JSON_DEPTH_MAX; i++)
                deep[n++] = '[';
        for (size_t i = 0; i <= COSIGN_UNSIGNED_JSON_DEPTH_MAX; i++)
                deep[n++] = ']';
        deep[n] = 0;
        expect(cosign_verify_bundle(k, f.digest, deep, n, NULL, NULL, &e), &e, -EBADMSG, "nested deeper than 16 levels");
        /* Brackets inside a string are not nesting. */
        {
                const char *brackets = "{\"mediaType\":\"\\\"[[[[[[[[[[[[[[[[[[[[\"}";

                expect(cosign_verify_bundle(k, f.digest, brackets, strlen(brackets), NULL, NULL, &e), &e, -EMEDIUMTYPE,
                       "mediaType is '\"[[[[[[[[[[[[[[[[[[[['");
        }

        wide = malloc(2 * COSIGN_UNSIGNED_JSON_TOKENS_MAX + 3);
        n = 0;
        wide[n++] = '[';
        for (size_t i = 0; i < COSIGN_UNSIGNED_JSON_TOKENS_MAX; i++) {
                wide[n++] = '0';
                wide[n++] = ',';
        }
        wide[n - 1] = ']';
        expect(cosign_verify_dsse_envelope(k, f.digest, wide, n, NULL, NULL, &e), &e, -EBADMSG,
               "JSON with more than 4096 values");
        /* Duplicate keys could be read differently by another parser: refused. */
        {
                const char *dup = "{\"mediaType\":\"a\",\"mediaType\":\"b\"}";

                expect(cosign_verify_bundle(k, f.digest, dup, strlen(dup), NULL, NULL, &e), &e, -EBADMSG,
                       "duplicate object key");
        }
}

/* ---- The small parts ---- */

static void test_base64(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "", "" },         { "TWFu", "Man" },   { "TWE=", "Ma" },     { "TWE", "Ma" },
                { "TQ==", "M" },    { "TQ", "M" },       { "TW\r\nFu\n", "Man" }, { "Pz8-", "\x3f\x3f>" },
                { "Pz8_", "\x3f\x3f\x3f" }, { "Pz8+", "\x3f\x3f>" },
                { "T", NULL },      { "TWE==", NULL },   { "TQ=", NULL },      { "TWF=u", NULL },
                { "TR==", NULL },   { "TWFu=", NULL },   { "TW Fu", NULL },    { "TW\tFu", NULL },
                { "Pz8+Pz8_", NULL }, { "TW!u", NULL },  { "====", NULL },     { "TQ=A", NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ uint8_t *out = NULL;
                size_t size = 99;
                int r = cosign_base64_decode(cases[i].in, strlen(cases[i].in), &out, &size);

                if (!cases[i].out) {
                        if (r != -EBADMSG)
                                fail_msg("'%s' decoded (%d)", cases[i].in, r);
                        continue;
                }
                if (r != 0)
                        fail_msg("'%s' did not decode (%d)", cases[i].in, r);
                assert_int_equal(size, strlen(cases[i].out));
                assert_memory_equal(out, cases[i].out, size);
        }
}

static void test_predicate_is_sbom(void **state) {
        static const struct {
                const char *type;
                bool sbom;
        } cases[] = {
                { "https://spdx.dev/Document", true },        { "https://spdx.dev/Document/v2.3", true },
                { "https://spdx.dev/Document/v3", true },      { "https://cyclonedx.org/bom", true },
                { "https://cyclonedx.org/bom/v1.4", true },    { "https://cyclonedx.org/bom/v1.5.0", true },
                { "https://sigstore.dev/cosign/sign/v1", false }, { "https://cosign.sigstore.dev/attestation/v1", false },
                { "https://slsa.dev/provenance/v1", false },   { "https://spdx.dev/Documentation", false },
                { "https://spdx.dev/Document/", false },       { "https://spdx.dev/Document/v", false },
                { "https://spdx.dev/Document/v2.", false },    { "https://spdx.dev/Document/v2..3", false },
                { "https://cyclonedx.org/bom/1.4", false },    { "http://cyclonedx.org/bom", false },
                { "https://spdx.dev/Document/x2.3", false },   { "https://spdx.dev/Document/v2-3", false },
                { "", false },                                 { NULL, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (cosign_predicate_is_sbom(cases[i].type) != cases[i].sbom)
                        fail_msg("'%s': expected %s", strna(cases[i].type), cases[i].sbom ? "an SBOM" : "no SBOM");
}

static void test_image_digest(void **state) {
        assert_true(cosign_image_digest_is_valid("sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"));
        assert_false(cosign_image_digest_is_valid("sha256:634A8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"));
        assert_false(cosign_image_digest_is_valid("sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a0"));
        assert_false(cosign_image_digest_is_valid("sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a000"));
        assert_false(cosign_image_digest_is_valid("sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a0g"));
        assert_false(cosign_image_digest_is_valid("sha384:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"));
        assert_false(cosign_image_digest_is_valid("634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"));
        assert_false(cosign_image_digest_is_valid(NULL));
}

/* A threshold counts distinct keys: the same key's .sig layer and bundle count once. */
static void test_tally(void **state) {
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = keyring(KEYS "p256.pub", KEYS "p384.pub", KEYS "ed25519.pub", NULL);
        Fixture f = fixture();
        CosignTally t;
        size_t index = 99;
        Error e = {};

        cosign_tally_init(&t, k, 0);
        assert_int_equal(cosign_tally_count(&t), 0);
        expect(verify_ss(k, f.digest, "ss-payload.json", "ss-p256.sig", &index, &e), &e, 0, NULL);
        cosign_tally_add(&t, index);
        expect(verify_ss(k, f.digest, "ss-payload.json", "ss-p256-newlines.sig", &index, &e), &e, 0, NULL);
        cosign_tally_add(&t, index);
        expect(verify_doc(cosign_verify_bundle, k, f.digest, "bundle-p256.json", &index, NULL, &e), &e, 0, NULL);
        cosign_tally_add(&t, index);
        assert_int_equal(cosign_tally_count(&t), 1);
        assert_true(cosign_tally_has(&t, 0));
        assert_false(cosign_tally_has(&t, 1));

        expect(verify_ss(k, f.digest, "ss-payload.json", "ss-p384.sig", &index, &e), &e, 0, NULL);
        cosign_tally_add(&t, index);
        assert_int_equal(cosign_tally_count(&t), 2);
        assert_true(cosign_tally_has(&t, 1));
        assert_false(cosign_tally_has(&t, 2));

        /* An index from no verification of this keyring is ignored. */
        cosign_tally_add(&t, 3);
        cosign_tally_add(&t, 63);
        cosign_tally_add(&t, SIZE_MAX);
        assert_int_equal(cosign_tally_count(&t), 2);
}

/* Keyless identities count beside keys, each once; key i and identity i are different signers. */
static void test_tally_identities(_unused_ void **state) {
        _cleanup_(cosign_keyring_freep) CosignKeyring *k = keyring(KEYS "p256.pub", NULL);
        CosignTally t;

        cosign_tally_init(&t, k, 3);
        cosign_tally_add(&t, 0);
        cosign_tally_add_identity(&t, 0);
        cosign_tally_add_identity(&t, 0);
        assert_int_equal(cosign_tally_count(&t), 2);
        assert_true(cosign_tally_has(&t, 0));
        assert_true(cosign_tally_has_identity(&t, 0));
        assert_false(cosign_tally_has_identity(&t, 1));
        cosign_tally_add_identity(&t, 2);
        assert_int_equal(cosign_tally_count(&t), 3);
        /* Out of range: ignored. */
        cosign_tally_add_identity(&t, 3);
        cosign_tally_add_identity(&t, SIZE_MAX);
        assert_int_equal(cosign_tally_count(&t), 3);
        assert_false(cosign_tally_has_identity(&t, 3));

        /* No keyring: identities only. */
        cosign_tally_init(&t, NULL, 1);
        cosign_tally_add(&t, 0);
        cosign_tally_add_identity(&t, 0);
        assert_int_equal(cosign_tally_count(&t), 1);
        assert_false(cosign_tally_has(&t, 0));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keyring_load),
                cmocka_unit_test(test_tally_identities),
                cmocka_unit_test(test_keyring_refusals),
                cmocka_unit_test(test_keyring_count),
                cmocka_unit_test(test_cimage_valid),
                cmocka_unit_test(test_cimage_key_rekor),
                cmocka_unit_test(test_cimage_fulcio_certificate_key),
                cmocka_unit_test(test_cimage_negative),
                cmocka_unit_test(test_sigstore_rs),
                cmocka_unit_test(test_bundle_v03_keyless),
                cmocka_unit_test(test_pae),
                cmocka_unit_test(test_ss_key_types),
                cmocka_unit_test(test_ss_negative),
                cmocka_unit_test(test_ss_arguments),
                cmocka_unit_test(test_bundle_generated),
                cmocka_unit_test(test_bundle_negative),
                cmocka_unit_test(test_envelope),
                cmocka_unit_test(test_caps),
                cmocka_unit_test(test_base64),
                cmocka_unit_test(test_predicate_is_sbom),
                cmocka_unit_test(test_image_digest),
                cmocka_unit_test(test_tally),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
