/* SPDX-License-Identifier: MIT */
/* The Sigstore parsers (agent/sign/sigstore-root.c, sigstore-bundle.c, sigstore-json.c): every
 * trusted root and bundle of the conformance vectors parses (or is refused by the parser, for
 * the cases that the parser must refuse), and hostile edits of them are refused with the
 * right code and a message that names the field: unknown media types and keys, truncation,
 * oversize, bad base64, wrong types, negative numbers, the client rules. A root with logs of
 * key types not supported loads, and conformance bundles verify with it unless they need such
 * a log. The verification itself is tested end to end by tests/integration/test_verify_blob.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "basic/fileio.h"
#include "sign/sigstore-bundle.h"
#include "sign/sigstore-json.h"
#include "sign/sigstore-root.h"
#include "sign/sigstore.h"

#define VECTORS SHARED_VECTORS_DIR "/../sigstore-conformance/"
#define CASES VECTORS "cases/"
#define PRODUCTION_ROOT VECTORS "production_trusted_root.json"
#define HAPPY_V01 CASES "happy-path-v0.1/bundle.sigstore.json"
#define HAPPY_V03 CASES "happy-path-v0.3/bundle.sigstore.json"
#define DSSE_V03 CASES "dsse-invalid-sig_fail/bundle.sigstore.json"
#define REKOR2 CASES "rekor2-timestamp-without-embedded-cert/bundle.sigstore.json"
#define REKOR2_ROOT CASES "rekor2-timestamp-without-embedded-cert/trusted_root.json"
#define ARTIFACT VECTORS "a.txt"
#define IDENTITY "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/" \
                 "extremely-dangerous-oidc-beacon.yml@refs/heads/main"
#define ISSUER "https://token.actions.githubusercontent.com"
#define REKOR_LOG_ID "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d" /* production's v1 log */
#define NOT_SUPPORTED "uses a key type this verifier does not support"

static json_t *load(const char *path) {
        json_error_t jerr;
        json_t *j = json_load_file(path, 0, &jerr);

        if (!j)
                fail_msg("cannot read '%s': %s", path, jerr.text);
        return j;
}

/* json_object_get() along a path of keys ("verificationMaterial", "tlogEntries", "0", ...). */
static json_t *at(json_t *j, ...) {
        va_list ap;
        const char *k;

        va_start(ap, j);
        while (j && (k = va_arg(ap, const char *)))
                j = json_is_array(j) ? json_array_get(j, strtoul(k, NULL, 10)) : json_object_get(j, k);
        va_end(ap);
        assert_non_null(j);
        return j;
}

static int parse_bundle_text(const char *text, size_t size, Error *e) {
        SigstoreBundle *b = NULL;
        int r = sigstore_bundle_parse(text, size, &b, e);

        if (r >= 0)
                assert_non_null(b);
        sigstore_bundle_free(b);
        return r;
}

static int parse_root_text(const char *text, size_t size, Error *e) {
        SigstoreTrustedRoot *t = NULL;
        int r = sigstore_root_parse(text, size, &t, e);

        sigstore_root_free(t);
        return r;
}

static void expect(bool bundle, json_t *j, int code, const char *message) {
        _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
        Error e = {};
        int r;

        assert_non_null(text);
        r = bundle ? parse_bundle_text(text, strlen(text), &e) : parse_root_text(text, strlen(text), &e);
        if (r != code || (message && !strstr(e.message, message)))
                fail_msg("expected %d '%s', got %d '%s'", code, message ? message : "", r, e.message);
        json_decref(j);
}

#define expect_bundle(j, code, message) expect(true, (j), (code), (message))
#define expect_root(j, code, message) expect(false, (j), (code), (message))

/* ---- What the vectors hold ---- */

static void test_vectors_parse(void **state) {
        /* Refused by the parser already (the rest are refused by the verification). */
        static const char *const parser_refuses[] = {
                "bundle-empty-certificate-chain_fail", "bundle-invalid-base64-signature_fail",
                "bundle-negative-log-index_fail", "bundle-with-root-cert_fail", "rekor2-no-inclusion-proof_fail",
        };
        _cleanup_(closedirp) DIR *d = opendir(CASES);
        struct dirent *de;
        unsigned n = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                char path[1024];
                bool refused = false;
                SigstoreBundle *b = NULL;
                SigstoreTrustedRoot *t = NULL;
                Error e = {};
                int r;

                if (de->d_name[0] == '.')
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(parser_refuses); i++)
                        refused = refused || streq(parser_refuses[i], de->d_name);
                (void) snprintf(path, sizeof(path), CASES "%s/bundle.sigstore.json", de->d_name);
                r = sigstore_bundle_load(path, &b, &e);
                if (refused ? r != -EBADMSG : r < 0)
                        fail_msg("%s: %d %s", de->d_name, r, e.message);
                sigstore_bundle_free(b);
                (void) snprintf(path, sizeof(path), CASES "%s/trusted_root.json", de->d_name);
                if (access(path, F_OK) == 0) {
                        r = sigstore_root_load(path, &t, &e);
                        if (r < 0)
                                fail_msg("%s: %d %s", path, r, e.message);
                        sigstore_root_free(t);
                }
                n++;
        }
        assert_true(n >= 30);
}

static void test_production_root(void **state) {
        SigstoreTrustedRoot *t = NULL;
        Error e = {};

        assert_int_equal(sigstore_root_load(PRODUCTION_ROOT, &t, &e), 0);
        assert_int_equal(t->n_tlogs, 2);
        assert_int_equal(t->n_ctlogs, 2);
        assert_int_equal(t->n_cas, 2);
        assert_int_equal(t->n_tsas, 1);
        assert_string_equal(t->tlogs[0].base_url, "https://rekor.sigstore.dev");
        assert_int_equal(t->tlogs[0].valid_from, 1610452407); /* 2021-01-12T11:53:27Z */
        assert_int_equal(t->tlogs[0].valid_until, 0);
        /* 2022-12-31T23:59:59.999Z: the fraction rounds down at an end */
        assert_int_equal(t->cas[0].valid_until, 1672531199);
        assert_int_equal(sk_X509_num(t->cas[1].chain), 2);
        assert_ptr_equal(sigstore_root_find_log(t->tlogs, t->n_tlogs, t->tlogs[1].key_id, 32), &t->tlogs[1]);
        assert_null(sigstore_root_find_log(t->tlogs, t->n_tlogs, t->tlogs[1].key_id, 31));
        sigstore_root_free(t);
}

static void test_bundles(void **state) {
        SigstoreBundle *b = NULL;
        Error e = {};

        assert_int_equal(sigstore_bundle_load(HAPPY_V01, &b, &e), 0);
        assert_int_equal(b->version, SIGSTORE_BUNDLE_V0_1);
        assert_non_null(b->leaf);
        assert_false(b->dsse);
        assert_int_equal(b->n_entries, 1);
        assert_int_equal(b->entries[0].log_index, 27246492);
        assert_int_equal(b->entries[0].integrated_time, 1689177396);
        assert_true(b->entries[0].has_proof);
        assert_int_equal(b->entries[0].proof.tree_size, 23083062);
        assert_int_equal(b->entries[0].proof.n_hashes, 10);
        assert_string_equal(b->entries[0].kind, "hashedrekord");
        assert_string_equal(b->digest_algorithm, "SHA2_256");
        assert_int_equal(b->message_digest_size, 32);
        sigstore_bundle_free(b);

        assert_int_equal(sigstore_bundle_load(REKOR2, &b, &e), 0);
        assert_int_equal(b->version, SIGSTORE_BUNDLE_V0_3);
        assert_int_equal(b->entries[0].integrated_time, 0);
        assert_null(b->entries[0].set);
        assert_int_equal(b->n_timestamps, 1);
        sigstore_bundle_free(b);

        assert_int_equal(sigstore_bundle_load(DSSE_V03, &b, &e), 0);
        assert_true(b->dsse);
        assert_string_equal(b->payload_type, "application/vnd.in-toto+json");
        sigstore_bundle_free(b);
}

/* ---- The bundle, hostile ---- */

static void test_bundle_media_type(void **state) {
        json_t *j = load(HAPPY_V03);

        json_object_set_new(j, "mediaType", json_string("application/vnd.dev.sigstore.bundle+json;version=0.4"));
        expect_bundle(j, -EMEDIUMTYPE, "not a bundle of version 0.1, 0.2 or 0.3");
        j = load(HAPPY_V03);
        json_object_set_new(j, "mediaType", json_integer(3));
        expect_bundle(j, -EBADMSG, "mediaType is not a string");
        j = load(HAPPY_V03);
        json_object_del(j, "mediaType");
        expect_bundle(j, -EBADMSG, "has no \"mediaType\"");
}

static void test_bundle_truncated_and_oversize(void **state) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        Error e = {};

        assert_int_equal(read_full_file(HAPPY_V03, SIGSTORE_BUNDLE_MAX, &text, &size), 0);
        for (size_t cut = 0; cut < size; cut += size / 37 + 1)
                assert_int_equal(parse_bundle_text(text, cut, &e), -EBADMSG);
        assert_int_equal(parse_bundle_text(text, size - 2, &e), -EBADMSG);
        assert_non_null(strstr(e.message, "not valid JSON"));
        assert_int_equal(parse_bundle_text(text, SIGSTORE_BUNDLE_MAX + 1, &e), -EFBIG);
        /* Nesting and the number of values are capped before jansson builds anything. */
        {
                char deep[200];

                memset(deep, '[', sizeof(deep));
                assert_int_equal(parse_bundle_text(deep, sizeof(deep), &e), -EBADMSG);
                assert_non_null(strstr(e.message, "nested deeper"));
        }
}

static void test_bundle_bad_base64(void **state) {
        json_t *j = load(HAPPY_V03);

        json_object_set_new(at(j, "messageSignature", NULL), "signature", json_string("MEUC!!=="));
        expect_bundle(j, -EBADMSG, "messageSignature.signature is not valid base64");
        j = load(HAPPY_V03);
        json_object_set_new(at(j, "verificationMaterial", "tlogEntries", "0", NULL), "canonicalizedBody",
                            json_string("e30=x"));
        expect_bundle(j, -EBADMSG, "tlogEntries[0].canonicalizedBody is not valid base64");
        j = load(HAPPY_V03);
        json_array_set_new(at(j, "verificationMaterial", "tlogEntries", "0", "inclusionProof", "hashes", NULL), 2,
                           json_string("AAAA"));
        expect_bundle(j, -EBADMSG, "tlogEntries[0].inclusionProof.hashes[2] is 3 bytes, not 32");
        j = load(HAPPY_V03);
        json_object_set_new(at(j, "verificationMaterial", "certificate", NULL), "rawBytes", json_string("AAAA"));
        expect_bundle(j, -EBADMSG, "verificationMaterial.certificate.rawBytes is not a DER X.509 certificate");
        j = load(HAPPY_V03);
        json_object_set_new(at(j, "messageSignature", NULL), "signature", json_string(""));
        expect_bundle(j, -EBADMSG, "messageSignature.signature is empty");
}

static void test_bundle_unknown_keys_and_types(void **state) {
        json_t *j = load(HAPPY_V03);

        json_object_set_new(j, "extra", json_true());
        expect_bundle(j, -EBADMSG, "the top level has an unknown key \"extra\"");
        j = load(HAPPY_V03);
        json_object_set_new(at(j, "verificationMaterial", "tlogEntries", "0", NULL), "logIdx", json_string("1"));
        expect_bundle(j, -EBADMSG, "tlogEntries[0] has an unknown key \"logIdx\"");
        j = load(HAPPY_V03);
        json_object_set_new(at(j, "verificationMaterial", "tlogEntries", "0", NULL), "logIndex", json_string("+1"));
        expect_bundle(j, -EBADMSG, "tlogEntries[0].logIndex is not an integer");
        j = load(HAPPY_V03);
        json_object_set_new(at(j, "verificationMaterial", "tlogEntries", "0", NULL), "logIndex",
                            json_string("99999999999999999999"));
        expect_bundle(j, -EBADMSG, "not a 64-bit integer");
        j = load(HAPPY_V03);
        json_object_set_new(at(j, "verificationMaterial", NULL), "tlogEntries", json_object());
        expect_bundle(j, -EBADMSG, "verificationMaterial.tlogEntries is not an array");
        /* protobuf JSON: a number for an int64, and null for absent, are fine */
        j = load(HAPPY_V03);
        json_object_set_new(at(j, "verificationMaterial", "tlogEntries", "0", NULL), "logIndex", json_integer(5));
        json_object_set_new(at(j, "verificationMaterial", NULL), "timestampVerificationData", json_null());
        expect_bundle(j, 0, NULL);
}

static void test_bundle_numbers(void **state) {
        json_t *j = load(HAPPY_V03);

        json_object_set_new(at(j, "verificationMaterial", "tlogEntries", "0", NULL), "logIndex", json_string("-1"));
        expect_bundle(j, -EBADMSG, "tlogEntries[0].logIndex is negative");
        j = load(HAPPY_V03);
        json_object_set_new(at(j, "verificationMaterial", "tlogEntries", "0", "inclusionProof", NULL), "treeSize",
                            json_integer(-5));
        expect_bundle(j, -EBADMSG, "inclusionProof.treeSize is negative");
        j = load(HAPPY_V03);
        json_object_set_new(at(j, "verificationMaterial", "tlogEntries", "0", NULL), "integratedTime",
                            json_string("-1689177396"));
        expect_bundle(j, -EBADMSG, "integratedTime is negative");
}

static void test_bundle_material_rules(void **state) {
        json_t *j = load(HAPPY_V01), *certs;

        json_array_clear(at(j, "verificationMaterial", "x509CertificateChain", "certificates", NULL));
        expect_bundle(j, -EBADMSG, "x509CertificateChain is empty");
        /* a v0.3 bundle with a chain, a v0.1 bundle with a certificate */
        j = load(HAPPY_V01);
        json_object_set_new(j, "mediaType", json_string("application/vnd.dev.sigstore.bundle.v0.3+json"));
        expect_bundle(j, -EBADMSG, "a v0.3 bundle carries a certificate");
        j = load(HAPPY_V03);
        json_object_set_new(j, "mediaType", json_string("application/vnd.dev.sigstore.bundle+json;version=0.2"));
        expect_bundle(j, -EBADMSG, "a v0.2 bundle carries an x509CertificateChain");
        /* both, or none */
        j = load(HAPPY_V03);
        json_object_set_new(at(j, "verificationMaterial", NULL), "publicKey", json_pack("{s:s}", "hint", "x"));
        expect_bundle(j, -EBADMSG, "more than one");
        j = load(HAPPY_V03);
        json_object_del(at(j, "verificationMaterial", NULL), "certificate");
        expect_bundle(j, -EBADMSG, "none of publicKey");
        /* the leaf twice: the second is no CA, but a chain of leaves is still only its leaf */
        j = load(HAPPY_V01);
        certs = at(j, "verificationMaterial", "x509CertificateChain", "certificates", NULL);
        json_array_insert_new(certs, 0, json_deep_copy(json_array_get(certs, 0)));
        expect_bundle(j, 0, NULL);
}

static void test_bundle_log_entry_rules(void **state) {
        json_t *j = load(HAPPY_V01);

        json_object_del(at(j, "verificationMaterial", "tlogEntries", "0", NULL), "inclusionPromise");
        expect_bundle(j, -EBADMSG, "no inclusion promise, which a v0.1 bundle must carry");
        /* v0.1: a proof without a checkpoint is ignored */
        j = load(HAPPY_V01);
        json_object_del(at(j, "verificationMaterial", "tlogEntries", "0", "inclusionProof", NULL), "checkpoint");
        expect_bundle(j, 0, NULL);
        j = load(HAPPY_V03);
        json_object_del(at(j, "verificationMaterial", "tlogEntries", "0", "inclusionProof", NULL), "checkpoint");
        expect_bundle(j, -EBADMSG, "inclusionProof has no checkpoint");
        j = load(HAPPY_V03);
        json_object_del(at(j, "verificationMaterial", "tlogEntries", "0", NULL), "inclusionPromise");
        expect_bundle(j, -EBADMSG, "no inclusion promise and the bundle no timestamp");
        j = load(REKOR2);
        json_object_del(at(j, "verificationMaterial", NULL), "timestampVerificationData");
        expect_bundle(j, -EBADMSG, "no inclusion promise and the bundle no timestamp");
        j = load(HAPPY_V03);
        json_object_del(at(j, "verificationMaterial", "tlogEntries", "0", NULL), "canonicalizedBody");
        expect_bundle(j, -EBADMSG, "tlogEntries[0] has no \"canonicalizedBody\"");
        j = load(HAPPY_V03);
        json_object_set_new(at(j, "verificationMaterial", "tlogEntries", "0", "kindVersion", NULL), "kind",
                            json_string(""));
        expect_bundle(j, -EBADMSG, "kindVersion.kind is empty");
}

static void test_bundle_content_rules(void **state) {
        json_t *j = load(HAPPY_V03), *dsse = load(DSSE_V03), *sigs;

        json_object_set(j, "dsseEnvelope", at(dsse, "dsseEnvelope", NULL));
        expect_bundle(j, -EBADMSG, "both of messageSignature and dsseEnvelope");
        j = load(HAPPY_V03);
        json_object_del(j, "messageSignature");
        expect_bundle(j, -EBADMSG, "neither of messageSignature and dsseEnvelope");
        sigs = at(dsse, "dsseEnvelope", "signatures", NULL);
        json_array_append(sigs, json_array_get(sigs, 0));
        expect_bundle(json_incref(dsse), -EBADMSG, "dsseEnvelope.signatures has 2 signatures, not one");
        json_array_clear(sigs);
        expect_bundle(dsse, -EBADMSG, "has 0 signatures");
}

/* ---- The trusted root, hostile ---- */

static void test_root_media_type_and_size(void **state) {
        _cleanup_free_ char *text = NULL;
        json_t *j = load(PRODUCTION_ROOT);
        size_t size;
        Error e = {};

        json_object_set_new(j, "mediaType", json_string("application/vnd.dev.sigstore.trustedroot+json;version=0.3"));
        expect_root(j, -EMEDIUMTYPE, "not a trusted root of version 0.1 or 0.2");
        j = load(PRODUCTION_ROOT);
        json_object_set_new(j, "mediaType", json_string("application/vnd.dev.sigstore.trustedroot.v0.2+json"));
        expect_root(j, 0, NULL);
        assert_int_equal(read_full_file(PRODUCTION_ROOT, SIGSTORE_ROOT_MAX, &text, &size), 0);
        for (size_t cut = 0; cut < size; cut += size / 29 + 1)
                assert_int_equal(parse_root_text(text, cut, &e), -EBADMSG);
        assert_int_equal(parse_root_text(text, SIGSTORE_ROOT_MAX + 1, &e), -EFBIG);
        assert_int_equal(sigstore_root_load(TEST_DATA_DIR "/nonexistent.json", &(SigstoreTrustedRoot *) { NULL }, &e),
                         -ENOENT);
}

static void test_root_logs(void **state) {
        json_t *j = load(PRODUCTION_ROOT);

        json_object_del(at(j, "tlogs", "0", "publicKey", "validFor", NULL), "start");
        expect_root(j, -EBADMSG, "tlogs[0].publicKey.validFor has no \"start\"");
        j = load(PRODUCTION_ROOT);
        json_object_del(at(j, "tlogs", "0", "publicKey", NULL), "validFor");
        expect_root(j, -EBADMSG, "tlogs[0].publicKey has no \"validFor\"");
        j = load(PRODUCTION_ROOT);
        json_object_set_new(at(j, "tlogs", "1", "publicKey", NULL), "keyDetails", json_string("PKIX_ECDSA_P256_SHA_256"));
        expect_root(j, -EBADMSG, "tlogs[1].publicKey.rawBytes is not a PKIX_ECDSA_P256_SHA_256 key");
        j = load(PRODUCTION_ROOT);
        json_object_set_new(at(j, "tlogs", "0", "publicKey", NULL), "rawBytes", json_string("MFkw!"));
        expect_root(j, -EBADMSG, "tlogs[0].publicKey.rawBytes is not valid base64");
        j = load(PRODUCTION_ROOT);
        json_object_set_new(at(j, "tlogs", "0", "logId", NULL), "keyId", json_string("AAAA"));
        expect_root(j, -EBADMSG, "tlogs[0].logId.keyId is 3 bytes, not 32");
        j = load(PRODUCTION_ROOT);
        json_object_set_new(at(j, "tlogs", "0", NULL), "hashAlgorithm", json_string("SHA2_384"));
        expect_root(j, -EPROTONOSUPPORT, "hashAlgorithm is not SHA2_256");
        j = load(PRODUCTION_ROOT);
        json_object_set_new(at(j, "tlogs", "0", "publicKey", "validFor", NULL), "end", json_string("2020-01-01T00:00:00Z"));
        expect_root(j, -EBADMSG, "ends before it starts");
        j = load(PRODUCTION_ROOT);
        json_object_set_new(at(j, "tlogs", "0", NULL), "checkpointKeyId", json_pack("{s:s}", "keyId", "AAAA"));
        expect_root(j, -EBADMSG, "tlogs[0].checkpointKeyId.keyId is 3 bytes, fewer than a key hint's 4");
        j = load(PRODUCTION_ROOT);
        json_object_set_new(at(j, "tlogs", "0", NULL), "baseURL", json_string("x"));
        expect_root(j, -EBADMSG, "tlogs[0] has an unknown key \"baseURL\"");
}

static void test_root_authorities(void **state) {
        json_t *j = load(PRODUCTION_ROOT);

        json_array_clear(at(j, "certificateAuthorities", "1", "certChain", "certificates", NULL));
        expect_root(j, -EBADMSG, "certificateAuthorities[1].certChain.certificates is empty");
        j = load(PRODUCTION_ROOT);
        json_object_set_new(at(j, "timestampAuthorities", "0", "certChain", "certificates", "0", NULL), "rawBytes",
                            json_string("MIIB"));
        expect_root(j, -EBADMSG, "timestampAuthorities[0].certChain.certificates[0].rawBytes is not a DER X.509");
        j = load(PRODUCTION_ROOT);
        json_object_set_new(at(j, "certificateAuthorities", "0", "validFor", NULL), "start", json_string("2021-03-07"));
        expect_root(j, -EBADMSG, "certificateAuthorities[0].validFor.start is not an RFC 3339 time");
        /* An authority's validFor may be absent: always trusted. */
        j = load(PRODUCTION_ROOT);
        json_object_del(at(j, "certificateAuthorities", "0", NULL), "validFor");
        expect_root(j, 0, NULL);
}

/* ---- Logs of key types not supported ---- */

/* A copy of j's list[index] with keyDetails details and a logId of 32 bytes id, appended. */
static void add_log(json_t *j, const char *list, const char *index, const char *details, uint8_t id) {
        json_t *log = json_deep_copy(at(j, list, index, NULL));
        uint8_t raw[32];
        char b64[64];

        assert_non_null(log);
        memset(raw, id, sizeof(raw));
        assert_int_equal(EVP_EncodeBlock((unsigned char *) b64, raw, sizeof(raw)), 44);
        json_object_set_new(at(log, "publicKey", NULL), "keyDetails", json_string(details));
        json_object_set_new(at(log, "logId", NULL), "keyId", json_string(b64));
        assert_int_equal(json_array_append_new(at(j, list, NULL), log), 0);
}

static void set_details(json_t *j, const char *list, const char *index, const char *details) {
        json_object_set_new(at(j, list, index, "publicKey", NULL), "keyDetails", json_string(details));
}

static SigstoreTrustedRoot *root_from_json(json_t *j) {
        _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
        SigstoreTrustedRoot *t = NULL;
        Error e = {};

        assert_non_null(text);
        if (sigstore_root_parse(text, strlen(text), &t, &e) < 0)
                fail_msg("%s", e.message);
        json_decref(j);
        return t;
}

/* The production root, its Rekor v1 log (the conformance bundles') of a key type not supported. */
static json_t *root_rekor_unsupported(void) {
        json_t *j = load(PRODUCTION_ROOT);

        set_details(j, "tlogs", "0", "PKIX_RSA_PSS_2048_SHA256");
        return j;
}

static void test_root_unsupported_logs(void **state) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *t = NULL;
        uint8_t id[32];
        json_t *j = load(PRODUCTION_ROOT);

        add_log(j, "tlogs", "0", "PKIX_RSA_PSS_2048_SHA256", 0x11);
        add_log(j, "tlogs", "1", "PKIX_SOMETHING_NEW", 0x22);
        set_details(j, "ctlogs", "1", "ML_DSA_65");
        t = root_from_json(j);
        assert_int_equal(t->n_tlogs, 4);
        assert_int_equal(t->n_ctlogs, 2);
        for (size_t i = 0; i < 2; i++) {
                assert_non_null(t->tlogs[i].key);
                assert_null(t->tlogs[i].unsupported);
        }
        assert_null(t->tlogs[2].key);
        assert_string_equal(t->tlogs[2].unsupported, "PKIX_RSA_PSS_2048_SHA256");
        assert_int_equal(t->tlogs[2].valid_from, 1610452407);
        assert_string_equal(t->tlogs[2].base_url, "https://rekor.sigstore.dev");
        assert_null(t->tlogs[3].key);
        assert_string_equal(t->tlogs[3].unsupported, "PKIX_SOMETHING_NEW");
        memset(id, 0x11, sizeof(id));
        assert_ptr_equal(sigstore_root_find_log(t->tlogs, t->n_tlogs, id, sizeof(id)), &t->tlogs[2]);
        assert_non_null(t->ctlogs[0].key);
        assert_null(t->ctlogs[1].key);
        assert_string_equal(t->ctlogs[1].unsupported, "ML_DSA_65");
        t = sigstore_root_free(t);

        /* A log listed twice, first with a key type not supported: the one with a key is found. */
        j = load(PRODUCTION_ROOT);
        assert_int_equal(json_array_insert_new(at(j, "tlogs", NULL), 0, json_deep_copy(at(j, "tlogs", "0", NULL))), 0);
        set_details(j, "tlogs", "0", "LMS_SHA256");
        t = root_from_json(j);
        assert_null(t->tlogs[0].key);
        assert_ptr_equal(sigstore_root_find_log(t->tlogs, t->n_tlogs, t->tlogs[0].key_id, 32), &t->tlogs[1]);

        /* Not one usable log: it loads (what needs a log is refused, test_verify_unsupported_logs). */
        j = root_rekor_unsupported();
        set_details(j, "tlogs", "1", "ML_DSA_87");
        set_details(j, "ctlogs", "0", "ML_DSA_87");
        set_details(j, "ctlogs", "1", "ML_DSA_87");
        expect_root(j, 0, NULL);

        /* The rest of such a log is read as strictly as any. */
        j = root_rekor_unsupported();
        json_object_del(at(j, "tlogs", "0", "publicKey", NULL), "keyDetails");
        expect_root(j, -EBADMSG, "tlogs[0].publicKey has no \"keyDetails\"");
        j = root_rekor_unsupported();
        set_details(j, "tlogs", "0", "");
        expect_root(j, -EBADMSG, "tlogs[0].publicKey.keyDetails is empty");
        j = root_rekor_unsupported();
        json_object_set_new(at(j, "tlogs", "0", "publicKey", NULL), "keyDetails", json_integer(7));
        expect_root(j, -EBADMSG, "tlogs[0].publicKey.keyDetails is not a string");
        j = root_rekor_unsupported();
        json_object_set_new(at(j, "tlogs", "0", "publicKey", NULL), "rawBytes", json_string("MFkw!"));
        expect_root(j, -EBADMSG, "tlogs[0].publicKey.rawBytes is not valid base64");
        j = root_rekor_unsupported();
        json_object_del(at(j, "tlogs", "0", "publicKey", NULL), "rawBytes");
        expect_root(j, -EBADMSG, "tlogs[0].publicKey has no \"rawBytes\"");
        j = root_rekor_unsupported();
        json_object_del(at(j, "tlogs", "0", "publicKey", NULL), "validFor");
        expect_root(j, -EBADMSG, "tlogs[0].publicKey has no \"validFor\"");
        j = root_rekor_unsupported();
        json_object_set_new(at(j, "tlogs", "0", "logId", NULL), "keyId", json_string("AAAA"));
        expect_root(j, -EBADMSG, "tlogs[0].logId.keyId is 3 bytes, not 32");
        j = root_rekor_unsupported();
        json_object_set_new(at(j, "tlogs", "0", "publicKey", NULL), "keyDetail", json_string("x"));
        expect_root(j, -EBADMSG, "tlogs[0].publicKey has an unknown key \"keyDetail\"");
}

/* A conformance case's bundle, verified with the root j (consumed) against a.txt. */
static int verify_case(const char *name, json_t *j, Error *e) {
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *t = root_from_json(j);
        _cleanup_(sigstore_bundle_freep) SigstoreBundle *b = NULL;
        _cleanup_free_ char *data = NULL;
        SigstorePolicy p = { .identity = IDENTITY, .issuer = ISSUER };
        char path[512];
        size_t size;

        (void) snprintf(path, sizeof(path), CASES "%s/bundle.sigstore.json", name);
        if (sigstore_bundle_load(path, &b, e) < 0)
                fail_msg("%s: %s", path, e->message);
        assert_int_equal(read_full_file(ARTIFACT, 1024 * 1024, &data, &size), 0);
        return sigstore_verify(t, b, &p, data, size, NULL, e);
}

static void expect_verify(const char *name, json_t *j, int code, const char *message) {
        Error e = {};
        int r = verify_case(name, j, &e);

        if (r != code || (message && !strstr(e.message, message)))
                fail_msg("%s: expected %d '%s', got %d '%s'", name, code, message ? message : "", r, e.message);
}

static void test_verify_unsupported_logs(void **state) {
        json_t *j = load(PRODUCTION_ROOT);

        /* Logs the bundle does not need, of key types not supported: it verifies. */
        add_log(j, "tlogs", "0", "PKIX_RSA_PSS_2048_SHA256", 0x11);
        add_log(j, "tlogs", "1", "PKIX_SOMETHING_NEW", 0x22);
        add_log(j, "ctlogs", "1", "ML_DSA_44", 0x33);
        expect_verify("happy-path-v0.3", j, 0, NULL);
        j = load(REKOR2_ROOT);
        add_log(j, "tlogs", "1", "LMS_SHA256", 0x44);
        expect_verify("rekor2-timestamp-without-embedded-cert", j, 0, NULL);

        /* The entry's log: refused as such, not as a log the root does not list. */
        expect_verify("happy-path-v0.3", root_rekor_unsupported(), -EPERM,
                      "log " REKOR_LOG_ID " " NOT_SUPPORTED " (PKIX_RSA_PSS_2048_SHA256)");
        j = load(REKOR2_ROOT);
        set_details(j, "tlogs", "1", "PKIX_SOMETHING_NEW");
        expect_verify("rekor2-timestamp-without-embedded-cert", j, -EPERM, NOT_SUPPORTED " (PKIX_SOMETHING_NEW)");

        /* The SCT's log. */
        j = load(PRODUCTION_ROOT);
        set_details(j, "ctlogs", "0", "ML_DSA_65");
        set_details(j, "ctlogs", "1", "ML_DSA_65");
        expect_verify("happy-path-v0.3", j, -EPERM, NOT_SUPPORTED " (ML_DSA_65)");

        /* No usable log and no timestamp authority: no time can be proven, and that is said. */
        j = root_rekor_unsupported();
        set_details(j, "tlogs", "1", "ML_DSA_87");
        json_object_del(j, "timestampAuthorities");
        expect_verify("happy-path-v0.3", j, -EPERM, "log " REKOR_LOG_ID " " NOT_SUPPORTED);
        j = load(REKOR2_ROOT);
        set_details(j, "tlogs", "0", "ML_DSA_87");
        set_details(j, "tlogs", "1", "ML_DSA_87");
        json_object_del(j, "timestampAuthorities");
        expect_verify("rekor2-timestamp-without-embedded-cert", j, -EPERM, "no verified signing time");
}

/* ---- Times ---- */

static void test_times(void **state) {
        static const struct {
                const char *s;
                bool round_up;
                time_t t;
        } good[] = {
                { "2021-01-12T11:53:27Z", false, 1610452407 },
                { "2021-01-12T11:53:27.000Z", true, 1610452407 },
                { "2021-01-12T11:53:27.001Z", false, 1610452407 },
                { "2021-01-12T11:53:27.001Z", true, 1610452408 },
                { "2021-01-12T11:53:27.123456789Z", false, 1610452407 },
                { "2021-01-12T12:53:27+01:00", false, 1610452407 },
                { "2021-01-12T10:23:27-01:30", false, 1610452407 },
        };
        static const char *const bad[] = {
                "2021-01-12T11:53:27", "2021-01-12 11:53:27Z", "2021-1-12T11:53:27Z", "2021-01-12T11:53:27.Z",
                "2021-01-12T11:53:27.1234567890Z", "2021-01-12T11:53:27+0100", "2021-01-12T11:53:27ZZ",
                "1970-01-01T00:00:00Z", "", "x",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                json_t *j = json_pack("{s:s}", "t", good[i].s);
                time_t t = 0;

                assert_int_equal(sigstore_json_time(j, "x", "t", good[i].round_up, &t, NULL), 0);
                assert_int_equal(t, good[i].t);
                json_decref(j);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_t *j = json_pack("{s:s}", "t", bad[i]);
                Error e = {};
                time_t t;

                if (sigstore_json_time(j, "x", "t", false, &t, &e) != -EBADMSG)
                        fail_msg("'%s' was taken", bad[i]);
                json_decref(j);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vectors_parse),
                cmocka_unit_test(test_production_root),
                cmocka_unit_test(test_bundles),
                cmocka_unit_test(test_bundle_media_type),
                cmocka_unit_test(test_bundle_truncated_and_oversize),
                cmocka_unit_test(test_bundle_bad_base64),
                cmocka_unit_test(test_bundle_unknown_keys_and_types),
                cmocka_unit_test(test_bundle_numbers),
                cmocka_unit_test(test_bundle_material_rules),
                cmocka_unit_test(test_bundle_log_entry_rules),
                cmocka_unit_test(test_bundle_content_rules),
                cmocka_unit_test(test_root_media_type_and_size),
                cmocka_unit_test(test_root_logs),
                cmocka_unit_test(test_root_authorities),
                cmocka_unit_test(test_root_unsupported_logs),
                cmocka_unit_test(test_verify_unsupported_logs),
                cmocka_unit_test(test_times),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
