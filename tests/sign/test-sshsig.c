/* SPDX-License-Identifier: MIT */
/* SSHSIG and allowed_signers. The fixtures in tests/data/sshsig/ come from the real
 * ssh-keygen and git (tools/make-sshsig-vectors), with OpenSSH's own verdict on each case in
 * `cases`: every case checks our exact error, and that we agree with OpenSSH, or that we
 * differ where this table says we mean to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "basic/fileio.h"
#include "sign/allowed-signers.h"
#include "sign/ssh-key.h"
#include "sign/sshsig.h"

#define DIR TEST_DATA_DIR "/sshsig/"
#define NOW ((time_t) 1748736000) /* 2025-06-01T00:00:00Z, the generator's verify-time */

typedef struct Expect {
        const char *name;
        int r;
        const char *detail;    /* failure: in the message; success: the key's fixture name */
        const char *deviation; /* why we differ from OpenSSH here; NULL: we agree */
} Expect;

static const Expect expectations[] = {
        /* Real commits signed by git, and ssh-keygen's and openssl's other variants. */
        { "ed25519", 0, "ed25519" },
        { "ecdsa256", 0, "ecdsa256" },
        { "ecdsa384", 0, "ecdsa384" },
        { "ecdsa521", 0, "ecdsa521" },
        { "rsa", 0, "rsa" },
        { "ed25519_sha256", 0, "ed25519" },
        { "ecdsa256_sha256", 0, "ecdsa256" },
        { "rsa_sha256", 0, "rsa" },
        { "reserved_nonempty", 0, "ed25519" },
        { "rsa1024", -EPROTONOSUPPORT, "1024-bit RSA", "RSA keys under 2048 bits are refused" },
        { "dsa", -EPROTONOSUPPORT, "'ssh-dss'", "DSA keys are not supported" },
        { "rsa_sha1", -EPROTONOSUPPORT, "SHA-1" },
        { "hash_sha384", -EPROTONOSUPPORT, "'sha384'" },
        /* Changed data or signature. */
        { "tampered_data_ed25519", -EPERM, "does not verify" },
        { "tampered_data_ecdsa384", -EPERM, "does not verify" },
        { "tampered_data_rsa", -EPERM, "does not verify" },
        { "tampered_sig_ed25519", -EPERM, "does not verify" },
        { "tampered_sig_ecdsa256", -EPERM, "does not verify" },
        { "tampered_sig_ecdsa521", -EPERM, "does not verify" },
        { "tampered_sig_rsa", -EPERM, "does not verify" },
        { "key_swapped", -EPERM, "does not verify" },
        { "wrong_namespace", -EPERM, "namespace 'file', not 'git'" },
        /* Malformed signatures. */
        { "truncated_armor", -EBADMSG, "truncated" },
        { "bad_base64", -EBADMSG, "base64" },
        { "armor_leading_text", -EBADMSG, "does not start with" },
        { "armor_trailing_text", -EBADMSG, "text after the line", "nothing may follow the END line" },
        { "truncated_blob", -EBADMSG, "truncated" },
        { "trailing_garbage", -EBADMSG, "4 bytes of trailing data" },
        { "wrong_magic", -EBADMSG, "wrong magic" },
        { "version2", -EBADMSG, "version 2" },
        { "version0", -EBADMSG, "version 0", "only version 1 exists; OpenSSH takes 0 too" },
        { "huge_key_length", -EBADMSG, "past its end" },
        { "huge_sig_length", -EBADMSG, "malformed signature field" },
        { "key_sig_type_mismatch", -EBADMSG, "ssh-ed25519 key with a signature of type 'ecdsa-sha2-nistp256'" },
        { "ecdsa_curve_mismatch", -EBADMSG, "of type 'ecdsa-sha2-nistp384'" },
        /* The allowed_signers file. */
        { "stranger", -EKEYREJECTED, ": not in '" },
        { "ns_file", -EKEYREJECTED, "signers_ns_file:1: the key may not sign in namespace 'git'" },
        { "ns_pattern", 0, "ed25519" },
        { "ns_negated", -EKEYREJECTED, "may not sign in namespace 'git'" },
        { "ns_upper", 0, "ed25519" },
        { "expired", -EKEYREJECTED, "signers_expired:1: the key expired at 2020-01-01 00:00:00 UTC" },
        { "future", -EKEYREJECTED, "not valid before 2030-01-01 00:00:00 UTC" },
        { "window", 0, "ed25519" },
        { "ca", -EKEYREJECTED, "only as a cert-authority (line 1)" },
        { "malformed", -EINVAL, "signers_malformed:2: no key after", "a malformed line is an error wherever it is" },
        { "empty", -EKEYREJECTED, "not in '" },
        { "comments", -EKEYREJECTED, "not in '" },
        { "quoted", 0, "ed25519" },
        { "type_lie", -EINVAL, "signers_type_lie:1: the key is not of type 'ssh-rsa'" },
};

static char *load(const char *name, size_t *size) {
        _cleanup_free_ char *path = NULL;
        char *buf = NULL;

        assert_true(asprintf(&path, DIR "%s", name) > 0);
        if (read_full_file(path, 1 << 20, &buf, size) < 0)
                fail_msg("cannot read %s", path);
        return buf;
}

/* The line of `cases` for name: signature data signers namespace principal exit-status. */
typedef struct Case {
        char sig[64], data[64], signers[64], ns[32], principal[64];
        int ref;
} Case;

static void load_case(const char *name, Case *c) {
        _cleanup_free_ char *text = load("cases", NULL);
        char n[64];

        for (char *line = text; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                if (sscanf(line, "%63s %63s %63s %63s %31s %63s %d", n, c->sig, c->data, c->signers, c->ns,
                           c->principal, &c->ref) == 7 &&
                    streq(n, name))
                        return;
        fail_msg("no case '%s' in cases", name);
}

/* The word-th word of a fixture's first line: the type of a .pub, the fingerprint of a .fp. */
static char *word(const char *file, int word) {
        _cleanup_free_ char *text = load(file, NULL);
        char *p = text;

        for (int i = 0; i < word; i++)
                p += strcspn(p, " ") + 1;
        return strndup(p, strcspn(p, " \n"));
}

static int verify_with(const char *signers, const char *armored, const char *data_name, SshsigSigner *signer,
                       Error *e) {
        _cleanup_free_ char *data = NULL, *path = NULL;
        size_t size;

        data = load(data_name, &size);
        assert_true(asprintf(&path, DIR "%s", signers) > 0);
        return sshsig_verify(path, armored, data, size, "git", NOW, signer, e);
}

static void test_case(void **state) {
        const Expect *x = *state;
        _cleanup_(sshsig_signer_done) SshsigSigner signer = {};
        _cleanup_free_ char *sig = NULL, *data = NULL, *path = NULL;
        Error e = {};
        size_t size;
        Case c;
        int r;

        load_case(x->name, &c);
        sig = load(c.sig, NULL);
        data = load(c.data, &size);
        assert_true(asprintf(&path, DIR "%s", c.signers) > 0);
        r = sshsig_verify(path, sig, data, size, c.ns, NOW, &signer, &e);
        if (r != x->r)
                fail_msg("%s: got %d (%s), expected %d", x->name, r, e.message, x->r);
        if (x->deviation ? (r == 0) == (c.ref == 0) : (r == 0) != (c.ref == 0))
                fail_msg("%s: ssh-keygen exits %d and we return %d (%s); expected %s", x->name, c.ref, r, e.message,
                         x->deviation ? x->deviation : "the same verdict");

        if (r < 0) {
                if (!strstr(e.message, x->detail))
                        fail_msg("%s: message '%s' lacks '%s'", x->name, e.message, x->detail);
                assert_null(signer.principal);
        } else {
                _cleanup_free_ char *pub = NULL, *fp = NULL, *type = NULL, *fingerprint = NULL;

                assert_true(asprintf(&pub, "%s.pub", x->detail) > 0);
                assert_true(asprintf(&fp, "%s.fp", x->detail) > 0);
                type = word(pub, 0);
                fingerprint = word(fp, 1);
                assert_string_equal(signer.key_type, type);
                assert_string_equal(signer.fingerprint, fingerprint);
                assert_string_equal(signer.principal,
                                    streq(x->name, "quoted") ? "alice@example.com,bob@example.com" : c.principal);
        }
}

/* ---- Every change to a real signature or its data is refused ---- */

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
        Error e = {};

        assert_int_equal(sshsig_dearmor(sig, blob, n, &e), 0);
}

static const char *const real_keys[] = { "ed25519", "ecdsa256", "ecdsa384", "ecdsa521", "rsa" };

static void test_every_byte_of_blob(void **state) {
        for (size_t k = 0; k < ELEMENTSOF(real_keys); k++) {
                _cleanup_free_ char *name = NULL, *data = NULL, *same = NULL;
                _cleanup_free_ uint8_t *blob = NULL;
                size_t n;

                assert_true(asprintf(&name, "%s.sig", real_keys[k]) > 0);
                assert_true(asprintf(&data, "%s.commit", real_keys[k]) > 0);
                load_blob(name, &blob, &n);
                same = armor(blob, n);
                assert_int_equal(verify_with("allowed_signers", same, data, NULL, NULL), 0);

                for (size_t i = 0; i < n; i++)
                        for (unsigned bit = 0x01; bit <= 0x80; bit <<= 7) {
                                _cleanup_free_ char *armored = NULL;
                                Error e = {};
                                int r;

                                blob[i] ^= (uint8_t) bit;
                                armored = armor(blob, n);
                                blob[i] ^= (uint8_t) bit;
                                r = verify_with("allowed_signers", armored, data, NULL, &e);
                                if (r >= 0 || !e.message[0])
                                        fail_msg("%s: byte %zu ^ 0x%x: got %d '%s'", name, i, bit, r, e.message);
                        }
                /* Every truncation, parsed directly. */
                for (size_t i = 0; i < n; i++) {
                        Sshsig s;
                        Error e = {};

                        assert_int_equal(sshsig_parse(blob, i, &s, &e), -EBADMSG);
                        assert_true(e.message[0]);
                }
        }
}

static void test_every_byte_of_data(void **state) {
        for (size_t k = 0; k < ELEMENTSOF(real_keys); k++) {
                _cleanup_free_ char *name = NULL, *sig = NULL, *data = NULL, *path = NULL;
                size_t size;

                assert_true(asprintf(&name, "%s.commit", real_keys[k]) > 0);
                assert_true(asprintf(&path, "%s.sig", real_keys[k]) > 0);
                sig = load(path, NULL);
                data = load(name, &size);
                free(path);
                assert_true(asprintf(&path, DIR "allowed_signers") > 0);

                for (size_t i = 0; i < size; i++) {
                        data[i] ^= 1;
                        assert_int_equal(sshsig_verify(path, sig, data, size, "git", NOW, NULL, NULL), -EPERM);
                        data[i] ^= 1;
                }
                assert_int_equal(sshsig_verify(path, sig, data, size - 1, "git", NOW, NULL, NULL), -EPERM);
                assert_int_equal(sshsig_verify(path, sig, data, size + 1, "git", NOW, NULL, NULL), -EPERM); /* the NUL */
                assert_int_equal(sshsig_verify(path, sig, data, size, "file", NOW, NULL, NULL), -EPERM);
                assert_int_equal(sshsig_verify(path, sig, data, size, "git", NOW, NULL, NULL), 0);
        }
}

/* ---- The layers ---- */

static void test_parse_fields(void **state) {
        _cleanup_free_ uint8_t *blob = NULL;
        size_t n;
        Sshsig s;

        load_blob("ed25519.sig", &blob, &n);
        assert_int_equal(sshsig_parse(blob, n, &s, NULL), 0);
        assert_int_equal(s.version, 1);
        assert_int_equal(s.sig_namespace.size, 3);
        assert_memory_equal(s.sig_namespace.data, "git", 3);
        assert_int_equal(s.reserved.size, 0);
        assert_int_equal(s.hash_algorithm.size, 6);
        assert_memory_equal(s.hash_algorithm.data, "sha512", 6);
        assert_int_equal(s.signature_type.size, 11);
        assert_memory_equal(s.signature_type.data, "ssh-ed25519", 11);
        assert_int_equal(s.signature.size, 64);
        assert_int_equal(s.public_key.size, 51);
        assert_int_equal(ssh_key_check(s.public_key.data, s.public_key.size, NULL), 0);
        assert_int_equal(ssh_key_check(s.public_key.data, s.public_key.size - 1, NULL), -EBADMSG);
        assert_int_equal(ssh_key_check("\0\0\0\x07ssh-dss", 11, NULL), -EPROTONOSUPPORT);
        assert_int_equal(ssh_key_check("\0\0\0", 3, NULL), -EBADMSG);
}

static void test_armor(void **state) {
        static const struct {
                const char *text;
                int r;
                size_t size;
        } cases[] = {
                { "", -EBADMSG },
                { "-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n", 0, 0 },
                { "-----BEGIN SSH SIGNATURE-----\nQQ==\n-----END SSH SIGNATURE-----", 0, 1 },
                { "-----BEGIN SSH SIGNATURE-----\n Q Q\t=\n= \n-----END SSH SIGNATURE-----\n\n", 0, 1 },
                { "-----BEGIN SSH SIGNATURE-----\nQUI=\n-----END SSH SIGNATURE-----\n", 0, 2 },
                { "-----BEGIN SSH SIGNATURE-----\nQUJD\n-----END SSH SIGNATURE-----\n", 0, 3 },
                { "-----BEGIN SSH SIGNATURE-----\r\nQUJD\r\n-----END SSH SIGNATURE-----\r\n", -EBADMSG },
                { "-----BEGIN SSH SIGNATURE----- QUJD\n-----END SSH SIGNATURE-----\n", -EBADMSG },
                { "-----BEGIN PGP SIGNATURE-----\nQUJD\n-----END PGP SIGNATURE-----\n", -EBADMSG },
                { "-----BEGIN SSH SIGNATURE-----\nQUJD\n", -EBADMSG },
                { "-----BEGIN SSH SIGNATURE-----\nQUJD-----END SSH SIGNATURE-----\n", -EBADMSG },
                { "-----BEGIN SSH SIGNATURE-----\nQR==\n-----END SSH SIGNATURE-----\n", -EBADMSG }, /* stray bits */
                { "-----BEGIN SSH SIGNATURE-----\nQUK=\n-----END SSH SIGNATURE-----\n", -EBADMSG },
                { "-----BEGIN SSH SIGNATURE-----\nQQ\n-----END SSH SIGNATURE-----\n", -EBADMSG },   /* no padding */
                { "-----BEGIN SSH SIGNATURE-----\nQQ=\n-----END SSH SIGNATURE-----\n", -EBADMSG },
                { "-----BEGIN SSH SIGNATURE-----\nQ===\n-----END SSH SIGNATURE-----\n", -EBADMSG },
                { "-----BEGIN SSH SIGNATURE-----\nQQ==QUJD\n-----END SSH SIGNATURE-----\n", -EBADMSG },
                { "-----BEGIN SSH SIGNATURE-----\nQU-D\n-----END SSH SIGNATURE-----\n", -EBADMSG },
        };
        _cleanup_free_ char *big = NULL;
        _cleanup_free_ uint8_t *blob = NULL;
        size_t n;
        Error e = {};

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ uint8_t *out = NULL;
                size_t size = SIZE_MAX;
                int r = sshsig_dearmor(cases[i].text, &out, &size, &e);

                if (r != cases[i].r || (r == 0 && size != cases[i].size) || (r < 0 && !e.message[0]))
                        fail_msg("case %zu: got %d, size %zu (%s)", i, r, size, e.message);
        }

        /* The size cap, counted on the input. */
        big = malloc(SSHSIG_ARMOR_MAX + 2);
        assert_non_null(big);
        memset(big, 'A', SSHSIG_ARMOR_MAX + 1);
        big[SSHSIG_ARMOR_MAX + 1] = 0;
        memcpy(big, "-----BEGIN SSH SIGNATURE-----\n", 30);
        assert_int_equal(sshsig_dearmor(big, &blob, &n, &e), -EBADMSG);
        assert_non_null(strstr(e.message, "larger than 65536"));
}

/* The line with its "%s" replaced by the key. */
static char *with_key(const char *line, const char *key) {
        const char *k = strstr(line, "%s");
        char *s;

        if (!k)
                return strdup(line);
        assert_true(asprintf(&s, "%.*s%s%s", (int) (k - line), line, key, k + 2) > 0);
        return s;
}

static void test_lines(void **state) {
        static const char key[] = "AAAAC3NzaC1lZDI1NTE5AAAAIEEdtqKZOb31vt6uhXKsQ9ooZ6/7pYMmnjJ9x/7ucnsS";
        static const struct {
                const char *line; /* %s: the key */
                int r;
                const char *detail; /* 1: principals|namespaces|after|before|ca; < 0: in the message */
        } cases[] = {
                { "", 0 },
                { " \t # comment", 0 },
                { "a@b ssh-ed25519 %s", 1, "a@b|-|0|0|0" },
                { "  a@b,c@d\tssh-ed25519   %s  a comment with \"quotes\"\r", 1, "a@b,c@d|-|0|0|0" },
                { "\"a b\" namespaces=\"git,fi\\\"le\",valid-after=\"20200101Z\" ssh-ed25519 %s", 1,
                  "a b|git,fi\"le|1577836800|0|0" },
                { "* Valid-Before=\"202001011230Z\",CERT-AUTHORITY ssh-ed25519 %s", 1, "*|-|0|1577881800|1" },
                { "a@b namespaces=\"a b\" ssh-ed25519 %s", 1, "a@b|a b|0|0|0" },
                { "a@b valid-after=\"20240229Z\",valid-before=\"20240301000001UTC\" ssh-ed25519 %s", 1,
                  "a@b|-|1709164800|1709251201|0" },
                { "a@b", -EINVAL, "no key (expected" },
                { "a@b ssh-ed25519", -EINVAL, "no key after the key type" },
                { "a@b ssh-ed25519 AAAA!AAA", -EINVAL, "not valid base64" },
                { "a@b ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", -EINVAL, "malformed ssh-ed25519 key" },
                { "a@b ssh-rsa %s", -EINVAL, "not of type 'ssh-rsa'" },
                { "a@b frobnicate=\"1\" ssh-ed25519 %s", -EINVAL, "unknown option 'frobnicate'" },
                { "a@b cert-authorityx ssh-ed25519 %s", -EINVAL, "unknown option 'cert-authorityx'" },
                { "a@b namespaces=\"git\"x ssh-ed25519 %s", -EINVAL, "unknown option 'namespaces=\"git\"x'" },
                { "a@b namespaces=git ssh-ed25519 %s", -EINVAL, "must be in double quotes" },
                { "a@b namespaces=\"git\",namespaces=\"x\" ssh-ed25519 %s", -EINVAL, "given twice" },
                { "a@b namespaces=\"git\", ssh-ed25519 %s", -EINVAL, "end with ','" },
                { "a@b namespaces=\"git ssh-ed25519 %s", -EINVAL, "unterminated quote in the options" },
                { "\"a@b ssh-ed25519 %s", -EINVAL, "unterminated quote in the principals" },
                { "\"a\"b ssh-ed25519 %s", -EINVAL, "after the quoted principals" },
                { "a\"b ssh-ed25519 %s", -EINVAL, "quote inside the principals" },
                { "\"\" ssh-ed25519 %s", -EINVAL, "empty principals" },
                { "a@b valid-after=\"2020\" ssh-ed25519 %s", -EINVAL, "invalid time '2020'" },
                { "a@b valid-after=\"20230229Z\" ssh-ed25519 %s", -EINVAL, "invalid time" },
                { "a@b valid-after=\"20231301Z\" ssh-ed25519 %s", -EINVAL, "invalid time" },
                { "a@b valid-after=\"20230431Z\" ssh-ed25519 %s", -EINVAL, "invalid time" },
                { "a@b valid-after=\"202301012400Z\" ssh-ed25519 %s", -EINVAL, "invalid time" },
                { "a@b valid-after=\"20230101Zx\" ssh-ed25519 %s", -EINVAL, "invalid time" },
                { "a@b valid-after=\"19700101Z\" ssh-ed25519 %s", -EINVAL, "invalid time" },
                { "a@b valid-after=\"20200101Z\",valid-before=\"20200101Z\" ssh-ed25519 %s", -EINVAL, "not later" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(allowed_signer_done) AllowedSigner a = {};
                _cleanup_free_ char *line = NULL, *got = NULL;
                Error e = {};
                int r;

                line = with_key(cases[i].line, key);
                r = allowed_signer_parse_line(line, &a, &e);
                if (r != cases[i].r)
                        fail_msg("'%s': got %d (%s), expected %d", line, r, e.message, cases[i].r);
                if (r < 0 && !strstr(e.message, cases[i].detail))
                        fail_msg("'%s': message '%s' lacks '%s'", line, e.message, cases[i].detail);
                if (r <= 0)
                        continue;
                assert_true(asprintf(&got, "%s|%s|%jd|%jd|%d", a.principals, a.namespaces ?: "-",
                                     (intmax_t) a.valid_after, (intmax_t) a.valid_before, a.cert_authority) > 0);
                assert_string_equal(got, cases[i].detail);
                assert_string_equal(a.key_type, "ssh-ed25519");
                assert_int_equal(a.key_size, 51);
        }

        /* Without Z, the local time, as ssh-keygen (a POSIX zone: no tzdata needed). */
        {
                _cleanup_(allowed_signer_done) AllowedSigner a = {};
                _cleanup_free_ char *line = NULL;

                assert_int_equal(setenv("TZ", "EST5", 1), 0);
                tzset();
                assert_true(asprintf(&line, "a valid-before=\"20230101\",valid-after=\"20221231Z\" ssh-ed25519 %s", key) > 0);
                assert_int_equal(allowed_signer_parse_line(line, &a, NULL), 1);
                assert_int_equal(a.valid_before, 1672531200 + 5 * 3600);
                assert_int_equal(a.valid_after, 1672531200 - 24 * 3600);
                assert_int_equal(unsetenv("TZ"), 0);
                tzset();
        }

        /* A type of the same length as the blob's, but not its. */
        {
                _cleanup_(allowed_signer_done) AllowedSigner a = {};
                _cleanup_free_ char *line = NULL, *pub = load("ecdsa256.pub", NULL);
                Error e = {};

                pub[strcspn(pub, "\n")] = 0;
                assert_true(asprintf(&line, "p ecdsa-sha2-nistp384 %s", strchr(pub, ' ') + 1) > 0);
                assert_int_equal(allowed_signer_parse_line(line, &a, &e), -EINVAL);
                assert_non_null(strstr(e.message, "not of type 'ecdsa-sha2-nistp384'"));
                line[18] = '2', line[19] = '5', line[20] = '6'; /* "p ecdsa-sha2-nistp" is 18 */
                assert_int_equal(allowed_signer_parse_line(line, &a, &e), 1);
        }
}

/* ECDSA keys: the curve named twice and the same, the point uncompressed and whole. */
static void test_ecdsa_key_form(void **state) {
        static const uint8_t prefix[] = "\0\0\0\x13" "ecdsa-sha2-nistp256" "\0\0\0\x08";
        uint8_t blob[128];
        size_t n;

        for (int c = 0; c < 5; c++) {
                const char *curve = c == 1 ? "nistp384" : "nistp256";
                size_t point = c == 2 ? 33 : c == 3 ? 64 : 65;

                n = sizeof(prefix) - 1;
                memcpy(blob, prefix, n);
                memcpy(blob + n, curve, 8);
                n += 8;
                blob[n++] = 0, blob[n++] = 0, blob[n++] = 0, blob[n++] = (uint8_t) point;
                memset(blob + n, 0x11, point);
                blob[n] = c == 2 ? 0x02 : c == 4 ? 0x03 : 0x04;
                n += point;
                /* 0: well formed (on the curve or not: OpenSSL decides when it is used) */
                assert_int_equal(ssh_key_check(blob, n, NULL), c == 0 ? 0 : -EBADMSG);
        }
}

static void test_check(void **state) {
        static const struct {
                const char *namespaces;
                bool ok;
        } patterns[] = {
                { "git", true },    { "*", true },      { "g*", true },      { "g*t", true },   { "?it", true },
                { "**", true },     { "g*i*t*", true }, { "a,b,git", true }, { "*,!file", true }, { "gi", false },
                { "gitt", false },  { "g?", false },    { "g*x", false },    { "", false },     { "!file", false },
                { "git,!git", false }, { "!g*,git", false }, { "GIT", false }, { "git ", false },
        };
        AllowedSigner a = { .valid_after = 1000, .valid_before = 2000 };
        Error e = {};

        for (size_t i = 0; i < ELEMENTSOF(patterns); i++) {
                a.namespaces = (char *) patterns[i].namespaces;
                if ((allowed_signer_check(&a, "git", 1500, &e) == 0) != patterns[i].ok)
                        fail_msg("namespaces=\"%s\": expected %s", patterns[i].namespaces, patterns[i].ok ? "ok" : "refused");
        }
        a.namespaces = NULL;
        /* Both ends are inclusive, as in OpenSSH. */
        assert_int_equal(allowed_signer_check(&a, "git", 1000, &e), 0);
        assert_int_equal(allowed_signer_check(&a, "git", 2000, &e), 0);
        assert_int_equal(allowed_signer_check(&a, "git", 999, &e), -EKEYREJECTED);
        assert_non_null(strstr(e.message, "not valid before 1970-01-01 00:16:40 UTC"));
        assert_int_equal(allowed_signer_check(&a, "git", 2001, &e), -EKEYREJECTED);
        assert_non_null(strstr(e.message, "expired at 1970-01-01 00:33:20 UTC"));
}

/* ---- Files ---- */

static char *write_signers(const char *dir, const char *name, const char *text, size_t size) {
        char *path = path_join(dir, name);

        assert_non_null(path);
        assert_int_equal(write_file_atomic(path, text, size, 0644), 0);
        return path;
}

static void test_files(void **state) {
        _cleanup_free_ char *dir = strdup("/tmp/test-sshsig-XXXXXX"), *sig = load("ed25519.sig", NULL);
        _cleanup_free_ char *data = NULL, *pub = load("ed25519.pub", NULL), *big = NULL;
        _cleanup_free_ char *several = NULL, *late = NULL, *twice = NULL, *p_big = NULL, *p_nul = NULL,
                            *p_several = NULL, *p_late = NULL, *p_twice = NULL;
        _cleanup_(sshsig_signer_done) SshsigSigner signer = {};
        size_t size;
        Error e = {};

        assert_non_null(mkdtemp(dir));
        data = load("ed25519.commit", &size);
        pub[strcspn(pub, "\n")] = 0;

        assert_int_equal(sshsig_verify("/nonexistent/signers", sig, data, size, "git", NOW, NULL, &e), -ENOENT);
        assert_non_null(strstr(e.message, "'/nonexistent/signers'"));
        assert_int_equal(sshsig_verify(dir, sig, data, size, "git", NOW, NULL, &e), -EISDIR);

        /* Larger than the cap: refused before anything is parsed. */
        big = malloc(ALLOWED_SIGNERS_MAX + 1);
        assert_non_null(big);
        memset(big, '#', ALLOWED_SIGNERS_MAX + 1);
        p_big = write_signers(dir, "big", big, ALLOWED_SIGNERS_MAX + 1);
        assert_int_equal(sshsig_verify(p_big, sig, data, size, "git", NOW, NULL, &e), -EFBIG);
        assert_non_null(strstr(e.message, "larger than"));

        p_nul = write_signers(dir, "nul", "# \0\n", 4);
        assert_int_equal(sshsig_verify(p_nul, sig, data, size, "git", NOW, NULL, &e), -EINVAL);
        assert_non_null(strstr(e.message, "NUL"));

        /* The first usable line wins; a refused or cert-authority line before it does not
         * count, and the lines after it are still checked. */
        assert_true(asprintf(&several, "old valid-before=\"20200101Z\" %s\nca cert-authority %s\nnew %s", pub, pub,
                             pub) > 0);
        p_several = write_signers(dir, "several", several, strlen(several));
        assert_int_equal(sshsig_verify(p_several, sig, data, size, "git", NOW, &signer, &e), 0);
        assert_string_equal(signer.principal, "new");
        assert_int_equal(sshsig_verify(p_several, sig, data, size, "git", NOW, NULL, NULL), 0);
        sshsig_signer_done(&signer);

        assert_true(asprintf(&twice, "first %s\nsecond %s\n", pub, pub) > 0);
        p_twice = write_signers(dir, "twice", twice, strlen(twice));
        assert_int_equal(sshsig_verify(p_twice, sig, data, size, "git", NOW, &signer, &e), 0);
        assert_string_equal(signer.principal, "first");

        assert_true(asprintf(&late, "new %s\n\n# fine\n  bad line", pub) > 0);
        p_late = write_signers(dir, "late", late, strlen(late));
        assert_int_equal(sshsig_verify(p_late, sig, data, size, "git", NOW, NULL, &e), -EINVAL);
        assert_non_null(strstr(e.message, "/late:4: "));
        assert_int_equal(sshsig_verify(p_late, sig, data, size, "git", NOW, NULL, NULL), -EINVAL);

        assert_int_equal(rm_rf(dir), 0);
}

/* A listed ECDSA key whose point is not on the curve never reaches a verdict. */
static void test_invalid_listed_key(void **state) {
        _cleanup_free_ char *dir = strdup("/tmp/test-sshsig-XXXXXX"), *data = NULL, *armored = NULL;
        _cleanup_free_ char *line = NULL, *path = NULL;
        _cleanup_free_ unsigned char *b64 = NULL;
        _cleanup_free_ uint8_t *blob = NULL;
        size_t n, size;
        Error e = {};
        Sshsig s;

        assert_non_null(mkdtemp(dir));
        data = load("ecdsa256.commit", &size);
        load_blob("ecdsa256.sig", &blob, &n);
        assert_int_equal(sshsig_parse(blob, n, &s, NULL), 0);
        ((uint8_t *) s.public_key.data)[s.public_key.size - 1] ^= 1; /* the point's last byte */
        b64 = malloc(s.public_key.size * 2);
        assert_non_null(b64);
        EVP_EncodeBlock(b64, s.public_key.data, (int) s.public_key.size);
        assert_true(asprintf(&line, "p256 ecdsa-sha2-nistp256 %s\n", b64) > 0);
        path = write_signers(dir, "signers", line, strlen(line));
        armored = armor(blob, n);
        assert_int_equal(sshsig_verify(path, armored, data, size, "git", NOW, NULL, &e), -EBADMSG);
        assert_non_null(strstr(e.message, "invalid ecdsa-sha2-nistp256 key"));
        assert_int_equal(rm_rf(dir), 0);
}

int main(void) {
        static const struct CMUnitTest others[] = {
                cmocka_unit_test(test_every_byte_of_blob),
                cmocka_unit_test(test_every_byte_of_data),
                cmocka_unit_test(test_parse_fields),
                cmocka_unit_test(test_armor),
                cmocka_unit_test(test_lines),
                cmocka_unit_test(test_check),
                cmocka_unit_test(test_ecdsa_key_form),
                cmocka_unit_test(test_files),
                cmocka_unit_test(test_invalid_listed_key),
        };
        struct CMUnitTest tests[ELEMENTSOF(expectations) + ELEMENTSOF(others)];
        _cleanup_free_ char *cases = load("cases", NULL);
        size_t n = 0;

        /* Every fixture case has an expectation, and every expectation a case. */
        for (char *l = cases; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                size_t len = strcspn(l, " \n"), i;

                if (*l == '#')
                        continue;
                for (i = 0; i < ELEMENTSOF(expectations); i++)
                        if (strlen(expectations[i].name) == len && strncmp(expectations[i].name, l, len) == 0)
                                break;
                if (i == ELEMENTSOF(expectations)) {
                        fprintf(stderr, "tests/data/sshsig/cases: '%.*s' has no expectation in test-sshsig.c\n",
                                (int) len, l);
                        return EXIT_FAILURE;
                }
                n++;
        }
        if (n != ELEMENTSOF(expectations)) {
                fprintf(stderr, "test-sshsig.c: %zu expectations, but %zu cases in the fixtures\n",
                        ELEMENTSOF(expectations), n);
                return EXIT_FAILURE;
        }

        n = 0;
        for (size_t i = 0; i < ELEMENTSOF(expectations); i++)
                tests[n++] = (struct CMUnitTest) { .name = expectations[i].name, .test_func = test_case,
                                                   .initial_state = (void *) &expectations[i] };
        for (size_t i = 0; i < ELEMENTSOF(others); i++)
                tests[n++] = others[i];
        return _cmocka_run_group_tests("sshsig", tests, n, NULL, NULL);
}
