/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "fileio.h"
#include "sshsig.h"

#define DIR TEST_DATA_DIR "/sshsig/"
#define NOW ((time_t) 1790000000) /* 2026-09 */

static char *load(const char *name, size_t *size) {
        _cleanup_free_ char *path = NULL;
        char *buf = NULL;

        assert_true(asprintf(&path, DIR "%s", name) > 0);
        assert_int_equal(read_full_file(path, 1 << 20, &buf, size), 0);
        return buf;
}

static int verify(const char *signers, const char *armored, SshsigSigner *signer, Error *e) {
        _cleanup_free_ char *data = NULL, *path = NULL;
        size_t size;

        data = load("data", &size);
        assert_true(asprintf(&path, DIR "%s", signers) > 0);
        return sshsig_verify(path, armored, data, size, "git", NOW, signer, e);
}

static int verify_file(const char *signers, const char *sig_name, Error *e) {
        _cleanup_free_ char *sig = load(sig_name, NULL);
        return verify(signers, sig, NULL, e);
}

/* Our verdict on every case equals OpenSSH's (ssh-keygen -Y verify, recorded by
 * tools/make-sshsig-vectors). */
static void test_reference(void **state) {
        _cleanup_free_ char *ref = load("reference.txt", NULL);
        unsigned n = 0, ok = 0;

        char *save = NULL;
        for (char *line = strtok_r(ref, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char sig[64], signers[64], verdict[16], sigfile[80];
                Error e = {};
                int r;

                assert_int_equal(sscanf(line, "%63s %63s %15s", sig, signers, verdict), 3);
                (void) snprintf(sigfile, sizeof(sigfile), "%s.sig", sig);
                r = verify_file(signers, sigfile, &e);
                if ((r == 0) != streq(verdict, "ok"))
                        fail_msg("%s with %s: OpenSSH says %s, we say %d (%s)", sig, signers, verdict, r, e.message);
                n++;
                ok += r == 0;
        }
        assert_int_equal(n, 40);
        assert_int_equal(ok, 6);
}

static void test_signer_and_fingerprint(void **state) {
        static const char *const keys[] = { "ed25519", "ecdsa256", "ecdsa384", "ecdsa521", "rsa" };
        static const char *const types[] = { "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                                             "ecdsa-sha2-nistp521", "ssh-rsa" };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *sig = NULL, *fp = NULL, *sigfile = NULL, *fpfile = NULL, *principal = NULL;
                SshsigSigner s = {};
                Error e = {};

                assert_true(asprintf(&sigfile, "%s.sig", keys[i]) > 0);
                assert_true(asprintf(&fpfile, "%s.fp", keys[i]) > 0);
                assert_true(asprintf(&principal, "%s@example.org", keys[i]) > 0);
                sig = load(sigfile, NULL);
                fp = load(fpfile, NULL);
                fp[strcspn(fp, "\n")] = 0;
                assert_int_equal(verify("allowed_signers", sig, &s, &e), 0);
                assert_string_equal(s.principal, principal);
                assert_string_equal(s.key_type, types[i]);
                assert_string_equal(s.fingerprint, fp);
                sshsig_signer_done(&s);
        }
}

static void expect(const char *signers, const char *sig_name, int code, const char *needle) {
        Error e = {};
        int r = verify_file(signers, sig_name, &e);

        if (r != code || !strstr(e.message, needle))
                fail_msg("%s/%s: got %d '%s', expected %d with '%s'", signers, sig_name, r, e.message, code, needle);
}

static void test_refusals_from_files(void **state) {
        expect("allowed_signers", "stranger.sig", -EKEYREJECTED, "not in");
        expect("allowed_signers", "ed25519-file.sig", -EKEYREJECTED, "namespace 'file'");
        expect("allowed_signers.ns-file", "ed25519.sig", -EKEYREJECTED, "not for namespace 'git'");
        expect("allowed_signers.expired", "ed25519.sig", -EKEYREJECTED, "at this time");
        expect("allowed_signers.future", "ed25519.sig", -EKEYREJECTED, "at this time");
        expect("allowed_signers.ca", "ed25519.sig", -EKEYREJECTED, "not in");
        expect("allowed_signers.empty", "ed25519.sig", -EKEYREJECTED, "not in");
        expect("allowed_signers.malformed", "ed25519.sig", -EINVAL, "allowed_signers.malformed:1");
        expect("allowed_signers.ns-pattern", "ed25519.sig", 0, "");
        expect("no-such-file", "ed25519.sig", -ENOENT, "no-such-file");
}

static void test_tampered_data(void **state) {
        _cleanup_free_ char *sig = load("ed25519.sig", NULL), *data = NULL, *path = NULL;
        size_t size;
        Error e = {};

        data = load("data", &size);
        data[size - 2] ^= 1;
        assert_true(asprintf(&path, DIR "allowed_signers") > 0);
        assert_int_equal(sshsig_verify(path, sig, data, size, "git", NOW, NULL, &e), -EPERM);
        assert_non_null(strstr(e.message, "does not match"));
}

/* Re-armors a (modified) blob. */
static char *armor(const uint8_t *blob, size_t n) {
        _cleanup_free_ unsigned char *b64 = malloc(n / 3 * 4 + 8);
        char *out;

        assert_non_null(b64);
        EVP_EncodeBlock(b64, blob, (int) n);
        assert_true(asprintf(&out, "-----BEGIN SSH SIGNATURE-----\n%s\n-----END SSH SIGNATURE-----\n", b64) > 0);
        return out;
}

static void load_blob(const char *name, uint8_t **blob, size_t *n) {
        _cleanup_free_ char *sig = load(name, NULL);
        assert_int_equal(sshsig_dearmor(sig, blob, n, NULL), 0);
}

static void expect_blob(const uint8_t *blob, size_t n, int code, const char *needle) {
        _cleanup_free_ char *armored = armor(blob, n);
        Error e = {};
        int r = verify("allowed_signers", armored, NULL, &e);

        if (r != code || !strstr(e.message, needle))
                fail_msg("got %d '%s', expected %d with '%s'", r, e.message, code, needle);
}

static void test_mutated_blobs(void **state) {
        static const char *const keys[] = { "ed25519.sig", "ecdsa256.sig", "rsa.sig" };

        for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                _cleanup_free_ uint8_t *blob = NULL, *copy = NULL;
                size_t n;

                load_blob(keys[k], &blob, &n);
                copy = malloc(n + 16);
                assert_non_null(copy);

                /* the unmodified blob, re-armored, still verifies */
                expect_blob(blob, n, 0, "");

                /* the last byte of the signature */
                memcpy(copy, blob, n);
                copy[n - 1] ^= 0x01;
                expect_blob(copy, n, -EPERM, "does not match");

                /* truncated */
                expect_blob(blob, n - 7, -EBADMSG, "");

                /* trailing garbage */
                memcpy(copy, blob, n);
                memcpy(copy + n, "garbage!", 8);
                expect_blob(copy, n + 8, -EBADMSG, "garbage");

                /* wrong magic, another version */
                memcpy(copy, blob, n);
                copy[0] = 'X';
                expect_blob(copy, n, -EBADMSG, "magic");
                memcpy(copy, blob, n);
                copy[9] = 2;
                expect_blob(copy, n, -EBADMSG, "version 2");

                /* a length field far beyond the blob */
                memcpy(copy, blob, n);
                copy[10] = 0x7f;
                expect_blob(copy, n, -EBADMSG, "truncated");
        }
}

static void test_bad_armor(void **state) {
        _cleanup_free_ char *sig = load("ed25519.sig", NULL);
        Error e = {};

        assert_int_equal(verify("allowed_signers", "", NULL, &e), -EBADMSG);
        assert_int_equal(verify("allowed_signers", "-----BEGIN PGP SIGNATURE-----\nxx\n", NULL, &e), -EBADMSG);

        /* truncated: no END line */
        sig[strlen(sig) / 2] = 0;
        assert_int_equal(verify("allowed_signers", sig, NULL, &e), -EBADMSG);
        assert_non_null(strstr(e.message, "truncated"));

        assert_int_equal(verify("allowed_signers",
                                "-----BEGIN SSH SIGNATURE-----\nU1NI*0lH\n-----END SSH SIGNATURE-----\n", NULL, &e),
                         -EBADMSG);
        assert_non_null(strstr(e.message, "base64"));
}

static void test_allowed_signer_lines(void **state) {
        static const struct {
                const char *line;
                int r;
        } cases[] = {
                { "", 0 },
                { "   # comment", 0 },
                { "a@b ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEEdtqKZOb31vt6uhXKsQ9ooZ6/7pYMmnjJ9x/7ucnsS", 1 },
                { "\"a b\" namespaces=\"git\",valid-after=\"20200101\" ssh-ed25519 "
                  "AAAAC3NzaC1lZDI1NTE5AAAAIEEdtqKZOb31vt6uhXKsQ9ooZ6/7pYMmnjJ9x/7ucnsS comment here", 1 },
                { "a@b", -EINVAL },
                { "a@b ssh-ed25519", -EINVAL },
                { "a@b ssh-ed25519 !!!notbase64", -EINVAL },
                { "a@b ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIEEdtqKZOb31vt6uhXKsQ9ooZ6/7pYMmnjJ9x/7ucnsS", -EINVAL },
                { "a@b frobnicate ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEEdtqKZOb31vt6uhXKsQ9ooZ6/7pYMmnjJ9x/7ucnsS", -EINVAL },
                { "a@b valid-after=\"2020\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEEdtqKZOb31vt6uhXKsQ9ooZ6/7pYMmnjJ9x/7ucnsS", -EINVAL },
                { "\"unterminated ssh-ed25519 AAAA", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AllowedSigner a = {};
                Error e = {};
                int r = allowed_signer_parse_line(cases[i].line, &a, &e);

                if (r != cases[i].r)
                        fail_msg("'%s': got %d (%s), expected %d", cases[i].line, r, e.message, cases[i].r);
                if (r == 1) {
                        assert_string_equal(a.key_type, "ssh-ed25519");
                        assert_int_equal(a.key_size, 51);
                }
                if (i == 3) {
                        assert_string_equal(a.principals, "a b");
                        assert_string_equal(a.namespaces, "git");
                        assert_true(a.valid_after > 0);
                }
                allowed_signer_done(&a);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reference),
                cmocka_unit_test(test_signer_and_fingerprint),
                cmocka_unit_test(test_refusals_from_files),
                cmocka_unit_test(test_tampered_data),
                cmocka_unit_test(test_mutated_blobs),
                cmocka_unit_test(test_bad_armor),
                cmocka_unit_test(test_allowed_signer_lines),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
