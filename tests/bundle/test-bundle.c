/* SPDX-License-Identifier: MIT */
/* The bundle manifest parser, the member name rules and the tar reader (docs/bundle-format.md,
 * sections 1 to 3): the reader over tar streams written here header by header, signed with a
 * key made for the run. End to end, with independent writers: tests/integration/test_bundle*.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <sys/stat.h>

#include <jansson.h>

#include "bundle/bundle.h"
#include "basic/fileio.h"

#define REV "0123456789abcdef0123456789abcdef01234567"
#define SHA "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define DIGEST "sha256:" SHA

/* A valid manifest, with one part replaceable: each test swaps in a broken piece. */
static char *manifest_with(const char *host, const char *extra, const char *closure, const char *images,
                           const char *members, const char *system, const char *containers) {
        char *s;
        assert_true(asprintf(&s,
                             "{\"format\": \"atticd-agent-bundle\", \"version\": 2, \"host\": \"%s\", "
                             "\"revision\": \"" REV "\", \"system\": %s, \"containers\": %s, \"sequence\": 5, "
                             "\"created\": 100, \"expires\": 200, "
                             "\"repository\": \"repository.pack\", \"closure\": %s, \"images\": %s, "
                             "\"members\": %s%s}",
                             host, system, containers, closure, images, members, extra) > 0);
        return s;
}

#define SYSTEM "\"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h\""
#define CONTAINERS "{\"web\": \"r.example/a:1\", \"worker\": \"r.example/a:1\"}"

static char *manifest(const char *host, const char *extra, const char *closure, const char *images,
                      const char *members) {
        return manifest_with(host, extra, closure, images, members, SYSTEM, CONTAINERS);
}

#define MEMBERS                                                                        \
        "[{\"path\": \"repository.pack\", \"size\": 10, \"sha256\": \"" SHA "\"},"     \
        " {\"path\": \"nix/nix-cache-info\", \"size\": 0, \"sha256\": \"" SHA "\"},"   \
        " {\"path\": \"images/0/index.json\", \"size\": 3, \"sha256\": \"" SHA "\"}]"
#define CLOSURE "{\"store-dir\": \"/nix/store\", \"cache\": \"nix\", \"paths\": " \
        "[\"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h\"]}"
#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define C192 A64 A64 A64
#define LONG_NAME C192 "/" C192 "/" C192 "/" C192 "/" C192 "/" C192 /* 1157 bytes */
#define IMAGES "[{\"reference\": \"r.example/a:1\", \"digest\": \"" DIGEST "\", \"layout\": \"images/0\"}]"

static void test_valid(void **state) {
        _cleanup_free_ char *m = manifest("h", "", CLOSURE, IMAGES, MEMBERS);
        BundleManifest b = {};
        Error e = {};

        assert_int_equal(bundle_manifest_parse(m, strlen(m), &b, &e), 0);
        assert_string_equal(b.host, "h");
        assert_string_equal(b.revision, REV);
        assert_int_equal(b.sequence, 5);
        assert_int_equal(b.created, 100);
        assert_int_equal(b.expires, 200);
        assert_true(b.has_closure);
        assert_string_equal(b.paths[0], "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h");
        assert_true(b.has_images);
        assert_int_equal(b.n_images, 1);
        assert_int_equal(b.n_members, 3);
        assert_string_equal(b.system, "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h");
        assert_int_equal(json_object_size(b.containers), 2);
        assert_string_equal(json_string_value(json_object_get(b.containers, "web")), "r.example/a:1");
        /* Sorted, found by name. */
        assert_non_null(bundle_manifest_find(&b, "repository.pack"));
        assert_non_null(bundle_manifest_find(&b, "nix/nix-cache-info"));
        assert_null(bundle_manifest_find(&b, "nix"));
        assert_int_equal(bundle_manifest_find(&b, "images/0/index.json")->size, 3);
        assert_int_equal(bundle_manifest_find(&b, "repository.pack")->sha256[0], 0xa1);
        bundle_manifest_done(&b);

        /* closure and images may be null. */
        free(m);
        m = manifest("h", "", "null", "null", MEMBERS);
        assert_int_equal(bundle_manifest_parse(m, strlen(m), &b, &e), 0);
        assert_false(b.has_closure);
        assert_false(b.has_images);
        bundle_manifest_done(&b);
}

typedef struct Case {
        const char *name;
        const char *text; /* a whole manifest, or NULL to build one from the parts */
        const char *host, *extra, *closure, *images, *members, *system, *containers;
        const char *message;
} Case;

static void test_refused(void **state) {
        static const Case cases[] = {
                { "not json", "{\"format\": ", .message = "not valid JSON" },
                { "not an object", "[1]", .message = "not a JSON object" },
                { "empty", "", .message = "not valid JSON" },
                { "duplicate key", "{\"format\": \"atticd-agent-bundle\", \"format\": \"x\"}", .message = "not valid JSON" },
                { "other format", "{\"format\": \"rauc\", \"version\": 1}", .message = "not an atticd-agent-bundle" },
                { "version 1", "{\"format\": \"atticd-agent-bundle\", \"version\": 1}", .message = "unsupported format version 1" },
                { "version 3", "{\"format\": \"atticd-agent-bundle\", \"version\": 3}", .message = "unsupported format version 3" },
                { "system missing", .extra = "", .system = "null", .message = "'system' must be a store path" },
                { "system not a string", .system = "[]", .message = "'system' must be a store path" },
                { "system relative", .system = "\"nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h\"", .message = "'system' must be a store path" },
                { "system outside the closure", .system = "\"/nix/store/11111111111111111111111111111111-nixos-system-h\"", .message = "'system' is not one of closure.paths" },
                { "system of another store", .system = "\"/other/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h\"", .message = "'system' is not one of closure.paths" },
                { "system traversal", .closure = "null", .system = "\"/nix/store/../0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h\"", .message = "'system' must be a store path" },
                { "system short name", .closure = "null", .system = "\"/nix/store/abc\"", .message = "'system' must be a store path" },
                { "system bad character", .closure = "null", .system = "\"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-a b\"", .message = "'system' must be a store path" },
                { "containers not an object", .containers = "[]", .message = "'containers' must be an object" },
                { "container image not a string", .containers = "{\"web\": 1}", .message = "containers.web" },
                { "container image empty", .containers = "{\"web\": \"\"}", .message = "containers.web" },
                { "container name empty", .containers = "{\"\": \"r.example/a:1\"}", .message = "a name is empty" },
                { "container name control", .containers = "{\"w\\u001beb\": \"r.example/a:1\"}", .message = "printable ASCII" },
                { "container image not in the bundle", .containers = "{\"web\": \"r.example/b:1\"}", .message = "its image 'r.example/b:1' is not in 'images'" },
                { "version string", "{\"format\": \"atticd-agent-bundle\", \"version\": \"1\"}", .message = "unsupported format version" },
                { "unknown key", .extra = ", \"signer\": \"me\"", .message = "signer" },
                { "missing members", "{\"format\": \"atticd-agent-bundle\", \"version\": 2, \"host\": \"h\"}", .message = "manifest:" },
                { "host not a string", .host = "\", \"x\": \"", .message = "manifest:" },
                { "members not an array", .members = "{}", .message = "'members' must be an array" },
                { "member unknown key", .members = "[{\"path\": \"repository.pack\", \"size\": 1, \"sha256\": \"" SHA "\", \"mode\": 1}]", .message = "members[0]" },
                { "member negative size", .members = "[{\"path\": \"repository.pack\", \"size\": -1, \"sha256\": \"" SHA "\"}]", .message = "size out of range" },
                { "member huge size", .members = "[{\"path\": \"repository.pack\", \"size\": 9007199254740992, \"sha256\": \"" SHA "\"}]", .message = "size out of range" },
                { "member real size", .members = "[{\"path\": \"repository.pack\", \"size\": 1.5, \"sha256\": \"" SHA "\"}]", .message = "members[0]" },
                { "member uppercase hash", .members = "[{\"path\": \"repository.pack\", \"size\": 1, \"sha256\": \"A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90\"}]", .message = "64 lowercase hex" },
                { "member short hash", .members = "[{\"path\": \"repository.pack\", \"size\": 1, \"sha256\": \"abc\"}]", .message = "64 lowercase hex" },
                { "member absolute", .members = "[{\"path\": \"/etc/passwd\", \"size\": 1, \"sha256\": \"" SHA "\"}]", .message = "invalid member name" },
                { "member dotdot", .members = "[{\"path\": \"a/../../x\", \"size\": 1, \"sha256\": \"" SHA "\"}]", .message = "invalid member name" },
                { "member reserved", .members = "[{\"path\": \"manifest.sig\", \"size\": 1, \"sha256\": \"" SHA "\"}]", .message = "reserved" },
                { "member twice", .members = "[{\"path\": \"repository.pack\", \"size\": 1, \"sha256\": \"" SHA "\"}, {\"path\": \"repository.pack\", \"size\": 2, \"sha256\": \"" SHA "\"}]", .message = "listed twice" },
                { "member is a directory", .closure = "null", .images = "null", .members = "[{\"path\": \"repository.pack\", \"size\": 1, \"sha256\": \"" SHA "\"}, {\"path\": \"a\", \"size\": 1, \"sha256\": \"" SHA "\"}, {\"path\": \"a+x\", \"size\": 1, \"sha256\": \"" SHA "\"}, {\"path\": \"a-b/c\", \"size\": 1, \"sha256\": \"" SHA "\"}, {\"path\": \"a/b/c\", \"size\": 1, \"sha256\": \"" SHA "\"}]", .message = "a member is also the directory of another: 'a' and 'a/b/c'" },
                { "member is a deeper directory", .closure = "null", .images = "null", .members = "[{\"path\": \"repository.pack\", \"size\": 1, \"sha256\": \"" SHA "\"}, {\"path\": \"a/b/c\", \"size\": 1, \"sha256\": \"" SHA "\"}, {\"path\": \"a/b\", \"size\": 1, \"sha256\": \"" SHA "\"}]", .message = "'a/b' and 'a/b/c'" },
                { "member name too long", .closure = "null", .images = "null", .members = "[{\"path\": \"repository.pack\", \"size\": 1, \"sha256\": \"" SHA "\"}, {\"path\": \"" LONG_NAME "\", \"size\": 1, \"sha256\": \"" SHA "\"}]", .message = "invalid member name (more than 1024 bytes)" },
                { "repository not listed", .members = "[{\"path\": \"other\", \"size\": 1, \"sha256\": \"" SHA "\"}]", .message = "repository 'repository.pack' is not a listed member" },
                { "closure relative store", .closure = "{\"store-dir\": \"nix/store\", \"cache\": \"nix\", \"paths\": [\"/nix/store/x\"]}", .message = "not an absolute path" },
                { "closure no paths", .closure = "{\"store-dir\": \"/nix/store\", \"cache\": \"nix\", \"paths\": []}", .message = "paths must be" },
                { "closure foreign path", .closure = "{\"store-dir\": \"/nix/store\", \"cache\": \"nix\", \"paths\": [\"/etc/0123456789abcdfghijklmnpqrsvwxyz-x\"]}", .message = "not a store path" },
                { "closure nested path", .closure = "{\"store-dir\": \"/nix/store\", \"cache\": \"nix\", \"paths\": [\"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-x/bin\"]}", .message = "not a store path" },
                { "closure unknown key", .closure = "{\"store-dir\": \"/nix/store\", \"cache\": \"nix\", \"paths\": [\"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-x\"], \"sign\": 1}", .message = "closure" },
                { "closure cache empty", .closure = "{\"store-dir\": \"/nix/store\", \"cache\": \"cache\", \"paths\": [\"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-x\"]}", .message = "no member lies below 'cache'" },
                { "closure cache traversal", .closure = "{\"store-dir\": \"/nix/store\", \"cache\": \"../nix\", \"paths\": [\"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-x\"]}", .message = "invalid directory name" },
                { "images not an array", .images = "{}", .message = "images must be" },
                { "image bad digest", .images = "[{\"reference\": \"r/a:1\", \"digest\": \"sha256:abc\", \"layout\": \"images/0\"}]", .message = "not a sha256 digest" },
                { "image twice", .images = "[" "{\"reference\": \"r/a:1\", \"digest\": \"" DIGEST "\", \"layout\": \"images/0\"}," "{\"reference\": \"r/a:1\", \"digest\": \"" DIGEST "\", \"layout\": \"images/0\"}]", .message = "listed twice" },
                { "image layout missing", .images = "[{\"reference\": \"r/a:1\", \"digest\": \"" DIGEST "\", \"layout\": \"images/9\"}]", .message = "no member lies below" },
                { "image unknown key", .images = "[{\"reference\": \"r/a:1\", \"digest\": \"" DIGEST "\", \"layout\": \"images/0\", \"x\": 1}]", .message = "images[0]" },
                { "expires before created", .text = "{\"format\": \"atticd-agent-bundle\", \"version\": 2, \"host\": \"h\", \"system\": \"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h\", \"containers\": {}, \"revision\": \"" REV "\", \"sequence\": 5, \"created\": 200, \"expires\": 200, \"repository\": \"repository.pack\", \"closure\": null, \"images\": null, \"members\": " MEMBERS "}", .message = "'expires' is not after 'created'" },
                { "sequence zero", .text = "{\"format\": \"atticd-agent-bundle\", \"version\": 2, \"host\": \"h\", \"system\": \"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h\", \"containers\": {}, \"revision\": \"" REV "\", \"sequence\": 0, \"created\": 100, \"expires\": 200, \"repository\": \"repository.pack\", \"closure\": null, \"images\": null, \"members\": " MEMBERS "}", .message = "'sequence' is out of range" },
                { "short revision", .text = "{\"format\": \"atticd-agent-bundle\", \"version\": 2, \"host\": \"h\", \"system\": \"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h\", \"containers\": {}, \"revision\": \"0123\", \"sequence\": 1, \"created\": 100, \"expires\": 200, \"repository\": \"repository.pack\", \"closure\": null, \"images\": null, \"members\": " MEMBERS "}", .message = "commit id" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const Case *c = &cases[i];
                _cleanup_free_ char *m = c->text ? strdup(c->text) :
                        manifest_with(c->host ?: "h", c->extra ?: "", c->closure ?: CLOSURE, c->images ?: IMAGES,
                                      c->members ?: MEMBERS, c->system ?: SYSTEM, c->containers ?: CONTAINERS);
                BundleManifest b = {};
                Error e = {};
                int r;

                r = bundle_manifest_parse(m, strlen(m), &b, &e);
                if (r != -EPERM || !strstr(e.message, c->message))
                        fail_msg("%s: r=%d, message '%s', expected '%s'", c->name, r, e.message, c->message);
                assert_int_equal(b.n_members, 0); /* nothing left allocated */
        }
}

static void test_oversized(void **state) {
        size_t n = BUNDLE_MANIFEST_MAX + 1;
        _cleanup_free_ char *m = malloc(n);
        BundleManifest b = {};
        Error e = {};

        memset(m, ' ', n);
        assert_int_equal(bundle_manifest_parse(m, n, &b, &e), -EPERM);
        assert_non_null(strstr(e.message, "larger than"));
}

static void test_names(void **state) {
        static const char *valid[] = { "a", "repository.pack", "nix/nar/abc.nar", "images/0/blobs/sha256/ff",
                                       "a+b=c@d-e_f", "x.y", NULL };
        static const char *invalid[] = { "", "/a", "a/", "a//b", ".", "..", "../a", "a/../b", "a/./b", ".hidden",
                                         "a/.git/config", "a b", "a\\b", "a:b", "a\nb", "ä", "a*", NULL };
        char long_component[300], deep[200];

        for (const char **s = valid; *s; s++)
                if (!bundle_member_name_valid(*s))
                        fail_msg("'%s' must be valid", *s);
        for (const char **s = invalid; *s; s++)
                if (bundle_member_name_valid(*s))
                        fail_msg("'%s' must be invalid", *s);
        assert_false(bundle_member_name_valid(NULL));

        memset(long_component, 'a', 255);
        long_component[255] = 0;
        assert_true(bundle_member_name_valid(long_component));
        long_component[255] = 'a';
        long_component[256] = 0;
        assert_false(bundle_member_name_valid(long_component));

        deep[0] = 0;
        for (int i = 0; i < 32; i++)
                strcat(deep, i ? "/a" : "a");
        assert_true(bundle_member_name_valid(deep));
        strcat(deep, "/a");
        assert_false(bundle_member_name_valid(deep));
}


/* ---- The reader over tar streams written here ---- */

static void EVP_MD_CTX_freep(EVP_MD_CTX **c) {
        EVP_MD_CTX_free(*c);
}

#define USTAR "ustar\0" "00"
#define GNU_MAGIC "ustar  \0"

static char tmp[] = "/tmp/test-bundle-XXXXXX";
static EVP_PKEY *key;
static CosignKeyring *keys;

static int setup(void **state) {
        _cleanup_free_ char *pub = NULL;
        char *paths[2] = {};
        FILE *f;
        Error e = {};

        assert_non_null(mkdtemp(tmp));
        key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert_non_null(key);
        assert_true(asprintf(&pub, "%s/bundle.pub", tmp) > 0);
        f = fopen(pub, "we");
        assert_non_null(f);
        assert_int_equal(PEM_write_PUBKEY(f, key), 1);
        fclose(f);
        paths[0] = pub;
        if (bundle_keyring_load(paths, &keys, &e) < 0)
                fail_msg("%s", e.message);
        return 0;
}

static int teardown(void **state) {
        cosign_keyring_free(keys);
        EVP_PKEY_free(key);
        (void) rm_rf(tmp);
        return 0;
}

/* A ustar header; size_field replaces the octal size when not NULL. */
static void header(FILE *f, const char *name, const char *prefix, char type, uint64_t size, const char *magic,
                   const char *size_field) {
        uint8_t h[512] = {};
        unsigned sum = 0;
        char field[16];

        memcpy(h, name, MIN(strlen(name), 100u));
        memcpy(h + 100, "0000644", 8);
        memcpy(h + 108, "0000000", 8);
        memcpy(h + 116, "0000000", 8);
        (void) snprintf(field, sizeof(field), "%011" PRIo64, size);
        memcpy(h + 124, size_field ?: field, 12);
        memcpy(h + 136, "14000000000", 12);
        h[156] = (uint8_t) type;
        memcpy(h + 257, magic, 8);
        if (prefix)
                memcpy(h + 345, prefix, strlen(prefix));
        memset(h + 148, ' ', 8);
        for (size_t i = 0; i < sizeof(h); i++)
                sum += h[i];
        (void) snprintf(field, sizeof(field), "%06o", sum);
        memcpy(h + 148, field, 7);
        assert_int_equal(fwrite(h, 1, sizeof(h), f), sizeof(h));
}

static void data(FILE *f, const void *d, size_t n) {
        static const uint8_t zero[512];

        assert_int_equal(fwrite(d, 1, n, f), n);
        assert_int_equal(fwrite(zero, 1, (512 - n % 512) % 512, f), (512 - n % 512) % 512);
}

static void file(FILE *f, const char *name, const char *content) {
        header(f, name, NULL, '0', strlen(content), USTAR, NULL);
        data(f, content, strlen(content));
}

static void end(FILE *f) {
        static const uint8_t zero[1024];

        assert_int_equal(fwrite(zero, 1, sizeof(zero), f), sizeof(zero));
}

/* A pax record "LEN k=v\n" appended to buf. */
static void record(char *buf, size_t bufsize, const char *k, const char *v) {
        size_t n = strlen(k) + strlen(v) + 3, len = n + 1;

        while (len != n + (size_t) snprintf(NULL, 0, "%zu", len))
                len++;
        (void) snprintf(buf + strlen(buf), bufsize - strlen(buf), "%zu %s=%s\n", len, k, v);
}

static void pax(FILE *f, const char *records, size_t size) {
        header(f, "PaxHeaders/x", NULL, 'x', size, USTAR, NULL);
        data(f, records, size);
}

#define PACK "PACK not really"
#define OTHER_PREFIX "d/" A64 A64
#define OTHER_NAME OTHER_PREFIX "/" A64 "/other" /* needs the ustar prefix field or a pax path */

/* manifest.json and manifest.sig for repository.pack (PACK) and OTHER_NAME ("other"). */
static void head(FILE *f) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        const char *contents[] = { PACK, "other" };
        char hex[2][65], manifest[2048];
        uint8_t sig[64], md[32];
        size_t sig_len = sizeof(sig);

        for (size_t i = 0; i < 2; i++) {
                assert_int_equal(EVP_Digest(contents[i], strlen(contents[i]), md, NULL, EVP_sha256(), NULL), 1);
                for (size_t k = 0; k < 32; k++)
                        (void) snprintf(hex[i] + 2 * k, 3, "%02x", md[k]);
        }
        (void) snprintf(manifest, sizeof(manifest),
                        "{\"format\": \"atticd-agent-bundle\", \"version\": 2, \"host\": \"h\", \"revision\": \"" REV "\", "
                        "\"system\": \"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h\", \"containers\": {}, \"sequence\": 5, \"created\": 100, \"expires\": 200, \"repository\": \"repository.pack\", "
                        "\"closure\": null, \"images\": null, \"members\": [{\"path\": \"repository.pack\", \"size\": %zu, "
                        "\"sha256\": \"%s\"}, {\"path\": \"" OTHER_NAME "\", \"size\": 5, \"sha256\": \"%s\"}]}",
                        strlen(PACK), hex[0], hex[1]);
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, key), 1);
        assert_int_equal(EVP_DigestSign(ctx, sig, &sig_len, (const uint8_t *) manifest, strlen(manifest)), 1);
        file(f, "manifest.json", manifest);
        header(f, "manifest.sig", NULL, '0', sig_len, USTAR, NULL);
        data(f, sig, sig_len);
}

static void other(FILE *f) {
        header(f, A64 "/other", OTHER_PREFIX, '0', 5, USTAR, NULL);
        data(f, "other", 5);
}

/* The tar of case i, or NULL after the last. Every case but the last few is a whole bundle. */
static const char *build(size_t i, FILE *f) {
        char rec[70000] = "";
        uint8_t junk[700];

        switch (i) {
        case 0: /* plain ustar, the prefix field */
                head(f), file(f, "repository.pack", PACK), other(f), end(f);
                return NULL;
        case 1: /* pax path and size; the ignored keywords and vendor keywords */
                head(f), file(f, "repository.pack", PACK);
                record(rec, sizeof(rec), "path", OTHER_NAME), record(rec, sizeof(rec), "size", "5");
                record(rec, sizeof(rec), "mtime", "1700000000.5"), record(rec, sizeof(rec), "uid", "4242");
                record(rec, sizeof(rec), "comment", "x"), record(rec, sizeof(rec), "ATTICD.note", "x");
                record(rec, sizeof(rec), "GNU.sparse.name", "repository.pack");
                record(rec, sizeof(rec), "GNU.sparse.size", "99999"), record(rec, sizeof(rec), "SCHILY.xattr.user.a", "b");
                pax(f, rec, strlen(rec));
                header(f, "harmless", NULL, '0', 0, USTAR, NULL), data(f, "other", 5), end(f);
                return NULL;
        case 2: /* no end blocks: the end of the data at a header */
                head(f), file(f, "repository.pack", PACK), other(f);
                return NULL;
        case 3: /* the first zero block ends the archive; what follows is ignored */
                head(f), file(f, "repository.pack", PACK), other(f);
                memset(junk, 0x5a, sizeof(junk));
                data(f, (uint8_t[512]) {}, 512), data(f, junk, sizeof(junk));
                return NULL;
        case 4:
                head(f), record(rec, sizeof(rec), "linkpath", "/etc/passwd"), pax(f, rec, strlen(rec));
                file(f, "repository.pack", PACK), other(f), end(f);
                return "the pax keyword 'linkpath' (header at byte";
        case 5:
                head(f), record(rec, sizeof(rec), "hdrcharset", "BINARY"), pax(f, rec, strlen(rec));
                file(f, "repository.pack", PACK), end(f);
                return "the pax keyword 'hdrcharset'";
        case 6: /* lowercase with a dot: reserved for POSIX, not a vendor's */
                head(f), record(rec, sizeof(rec), "realtime.x", "1"), pax(f, rec, strlen(rec));
                file(f, "repository.pack", PACK), end(f);
                return "the pax keyword 'realtime.x'";
        case 7:
                head(f), record(rec, sizeof(rec), "path", "a"), record(rec, sizeof(rec), "path", "repository.pack");
                pax(f, rec, strlen(rec)), file(f, "x", PACK), end(f);
                return "names its member twice";
        case 8:
                head(f), record(rec, sizeof(rec), "size", "15"), record(rec, sizeof(rec), "size", "15");
                pax(f, rec, strlen(rec)), file(f, "repository.pack", PACK), end(f);
                return "has two sizes";
        case 9:
                head(f), record(rec, sizeof(rec), "size", "+15"), pax(f, rec, strlen(rec));
                file(f, "repository.pack", PACK), end(f);
                return "a size that is not a number";
        case 10:
                head(f), pax(f, "99 path=repository.pack\n", 24), file(f, "repository.pack", PACK), end(f);
                return "has a malformed record";
        case 11:
                head(f), pax(f, "9 pathxx\n", 9), file(f, "repository.pack", PACK), end(f);
                return "a record without a keyword";
        case 12:
                head(f), record(rec, sizeof(rec), "path", "repository.pack"), pax(f, rec, strlen(rec));
                pax(f, rec, strlen(rec)), file(f, "x", PACK), end(f);
                return "two pax headers in a row at byte";
        case 13:
                head(f), file(f, "repository.pack", PACK), other(f);
                record(rec, sizeof(rec), "path", "late"), pax(f, rec, strlen(rec)), end(f);
                return "describes no member";
        case 14:
                head(f), memset(rec, 'x', 65537), header(f, "PaxHeaders/x", NULL, 'x', 65537, USTAR, NULL);
                data(f, rec, 65537), file(f, "repository.pack", PACK), end(f);
                return "is larger than 65536 bytes";
        case 15:
                header(f, "manifest.json", NULL, '0', 2, GNU_MAGIC, NULL), data(f, "{}", 2), end(f);
                return "not a tar archive in the ustar or pax format: the first block is a GNU tar header";
        case 16:
                head(f), header(f, "repository.pack", NULL, '0', strlen(PACK), GNU_MAGIC, NULL), data(f, PACK, 15);
                end(f);
                return "is a GNU tar header, not ustar or pax";
        case 17:
                head(f), record(rec, sizeof(rec), "comment", "g"), header(f, "pax_global_header", NULL, 'g', strlen(rec),
                                                                          USTAR, NULL);
                data(f, rec, strlen(rec)), file(f, "repository.pack", PACK), end(f);
                return "a global pax header (typeflag 'g') at byte";
        case 18:
                head(f), pax(f, "29 path=repository.pack\0junk\n", 29), file(f, "x", PACK), end(f);
                return "a member has an invalid name (a NUL byte in its pax path): 'repository.pack'";
        case 19:
                head(f), record(rec, sizeof(rec), "path", LONG_NAME), pax(f, rec, strlen(rec)), file(f, "x", PACK), end(f);
                return "a member has an invalid name (more than 1024 bytes): 'aaaa";
        case 20:
                head(f), header(f, "repository.pack", NULL, '0', 0, USTAR, "\x80\0\0\0\0\0\0\0\0\0\0\x0f");
                data(f, PACK, 15), end(f);
                return "invalid size field (base-256, a GNU extension)";
        case 21:
                head(f), record(rec, sizeof(rec), "size", "16"), pax(f, rec, strlen(rec));
                file(f, "repository.pack", PACK), end(f);
                return "member 'repository.pack' has 16 bytes, 15 listed";
        case 22:
                head(f), header(f, "repository.pack", NULL, '7', 15, USTAR, NULL), data(f, PACK, 15), end(f);
                return "member 'repository.pack' is not a regular file (a contiguous file, typeflag '7')";
        case 23:
                head(f), header(f, "repository.pack", NULL, 'S', 15, USTAR, NULL), data(f, PACK, 15), end(f);
                return "(a GNU sparse file, typeflag 'S')";
        case 24:
                head(f), header(f, "repository.pack", NULL, 'L', 15, USTAR, NULL), data(f, PACK, 15), end(f);
                return "(a GNU long name header, typeflag 'L')";
        case 25: /* the archive ends in a member's padding */
                head(f), header(f, "repository.pack", NULL, '0', 15, USTAR, NULL);
                assert_int_equal(fwrite(PACK, 1, 15, f), 15);
                return "the archive is truncated";
        case 26:
                head(f), header(f, "repository.pack", NULL, '0', 15, USTAR, NULL);
                assert_int_equal(fwrite(PACK, 1, 10, f), 10);
                return "member 'repository.pack' is truncated";
        case 27:
                memset(junk, 0x5a, sizeof(junk)), data(f, junk, sizeof(junk));
                return "not a tar archive in the ustar or pax format: the first block is not a ustar header";
        case 28:
                header(f, "manifest.json", NULL, '0', 2, USTAR, "00000000002x");
                return "not a readable tar archive: the header at byte 0 has an invalid size field (not octal)";
        case 29: /* a member that the first zero block hides is missing */
                head(f), file(f, "repository.pack", PACK), end(f), other(f), end(f);
                return "member 'd/aaaa";
        }
        return "-";
}

static void test_reader(void **state) {
        for (size_t i = 0;; i++) {
                _cleanup_free_ char *path = NULL, *staging = NULL;
                _cleanup_close_ int staging_fd = -EBADF;
                BundleExpect x = { .host = "h", .store_dir = "/nix/store", .now = 150 };
                const char *want;
                BundleInfo info = {};
                Error e = {};
                FILE *f;
                int r;

                assert_true(asprintf(&path, "%s/%zu.tar", tmp, i) > 0);
                assert_true(asprintf(&staging, "%s/staging-%zu", tmp, i) > 0);
                f = fopen(path, "we");
                assert_non_null(f);
                want = build(i, f);
                assert_int_equal(fclose(f), 0);
                if (want && streq(want, "-"))
                        break;
                assert_int_equal(mkdir(staging, 0700), 0);
                staging_fd = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                assert_true(staging_fd >= 0);

                /* Verifying and extracting agree. */
                for (int extract = 0; extract < 2; extract++) {
                        BundleReadOptions o = { .keys = keys, .expect = &x, .staging_fd = extract ? staging_fd : -1 };

                        r = bundle_read(path, &o, &info, &e);
                        if (!want && r != 0)
                                fail_msg("case %zu: refused (%d): %s", i, r, e.message);
                        if (want && (r != -EPERM || !strstr(e.message, want) || !streq_ptr(e.reason, "bundle-integrity")))
                                fail_msg("case %zu: r=%d, reason %s, message '%s', expected '%s'", i, r, strna(e.reason),
                                         e.message, want);
                        if (!want) {
                                assert_int_equal(info.bytes, strlen(PACK) + 5);
                                assert_true(info.manifest.members[0].seen && info.manifest.members[1].seen);
                        }
                        bundle_info_done(&info);
                }
                if (!want) {
                        _cleanup_free_ char *content = NULL, *member = NULL;
                        size_t size;

                        assert_true(asprintf(&member, "%s/" OTHER_NAME, staging) > 0);
                        assert_int_equal(read_full_file(member, 1024, &content, &size), 0);
                        assert_int_equal(size, 5);
                        assert_memory_equal(content, "other", 5);
                }
        }
}

/* ---- Members large enough for the hasher thread ---- */

static void hex_sha256(const void *d, size_t n, char hex[static 65]) {
        uint8_t md[32];

        assert_int_equal(EVP_Digest(d, n, md, NULL, EVP_sha256(), NULL), 1);
        for (size_t k = 0; k < 32; k++)
                (void) snprintf(hex + 2 * k, 3, "%02x", md[k]);
}

static int read_path(const char *path, int staging_fd, Error *e) {
        BundleExpect x = { .host = "h", .store_dir = "/nix/store", .now = 150 };
        BundleReadOptions o = { .keys = keys, .expect = &x, .staging_fd = staging_fd };
        BundleInfo info = {};
        int r = bundle_read(path, &o, &info, e);

        bundle_info_done(&info);
        return r;
}

static void contents_free(uint8_t *(*c)[5]) {
        for (size_t i = 0; i < ELEMENTSOF(*c); i++)
                free((*c)[i]);
}

/* Members of 3 MiB and 2 MiB (hashed by the hasher thread) between small ones, verified
 * and extracted; then with one byte flipped, and cut short, in each large one. */
static void test_reader_large(void **state) {
        static const char *const names[] = { "repository.pack", "big/a", "small", "big/b", "tail" };
        size_t sizes[] = { strlen(PACK), 3 * 1024 * 1024 + 1000, 10, 2 * 1024 * 1024, 1 };
        _cleanup_(contents_free) uint8_t *content[ELEMENTSOF(names)] = {};
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        char manifest[4096] = "", hex[65];
        uint8_t sig[64];
        size_t sig_len = sizeof(sig);

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                content[i] = malloc(sizes[i]);
                assert_non_null(content[i]);
                for (size_t k = 0; k < sizes[i]; k++)
                        content[i][k] = (uint8_t) (k * 7 + i + k / 4099);
        }
        memcpy(content[0], PACK, sizes[0]);
        (void) snprintf(manifest, sizeof(manifest),
                        "{\"format\": \"atticd-agent-bundle\", \"version\": 2, \"host\": \"h\", \"revision\": \"" REV "\", "
                        "\"system\": \"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h\", \"containers\": {}, \"sequence\": 5, \"created\": 100, \"expires\": 200, \"repository\": \"repository.pack\", "
                        "\"closure\": null, \"images\": null, \"members\": [");
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                hex_sha256(content[i], sizes[i], hex);
                (void) snprintf(manifest + strlen(manifest), sizeof(manifest) - strlen(manifest),
                                "%s{\"path\": \"%s\", \"size\": %zu, \"sha256\": \"%s\"}", i ? ", " : "", names[i],
                                sizes[i], hex);
        }
        strcat(manifest, "]}");
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, key), 1);
        assert_int_equal(EVP_DigestSign(ctx, sig, &sig_len, (const uint8_t *) manifest, strlen(manifest)), 1);

        /* Case 0: whole; 1, 2: a byte flipped in big/a, big/b; 3: big/b cut short. */
        for (int c = 0; c < 4; c++) {
                static const char *const want[] = { NULL, "member 'big/a' does not match its sha256",
                                                    "member 'big/b' does not match its sha256", "member 'big/b' is truncated" };
                _cleanup_free_ char *path = NULL, *staging = NULL, *a = NULL, *got = NULL;
                _cleanup_close_ int staging_fd = -EBADF;
                size_t got_size;
                FILE *f;

                assert_true(asprintf(&path, "%s/large-%d.tar", tmp, c) > 0);
                assert_true(asprintf(&staging, "%s/large-staging-%d", tmp, c) > 0);
                f = fopen(path, "we");
                assert_non_null(f);
                file(f, "manifest.json", manifest);
                header(f, "manifest.sig", NULL, '0', sig_len, USTAR, NULL);
                data(f, sig, sig_len);
                for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                        header(f, names[i], NULL, '0', sizes[i], USTAR, NULL);
                        if (c == 3 && i == 3) {
                                assert_int_equal(fwrite(content[i], 1, sizes[i] - 4096, f), sizes[i] - 4096);
                                break;
                        }
                        bool flip = (c == 1 && i == 1) || (c == 2 && i == 3);

                        content[i][sizes[i] / 2] ^= flip;
                        data(f, content[i], sizes[i]);
                        content[i][sizes[i] / 2] ^= flip;
                }
                if (c != 3)
                        end(f);
                assert_int_equal(fclose(f), 0);
                assert_int_equal(mkdir(staging, 0700), 0);
                staging_fd = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                assert_true(staging_fd >= 0);

                for (int extract = 0; extract < 2; extract++) {
                        Error e = {};
                        int r = read_path(path, extract ? staging_fd : -1, &e);

                        if (!want[c] && r != 0)
                                fail_msg("large case %d: refused (%d): %s", c, r, e.message);
                        if (want[c] && (r != -EPERM || !strstr(e.message, want[c])))
                                fail_msg("large case %d: r=%d, message '%s', expected '%s'", c, r, e.message, want[c]);
                }
                if (want[c])
                        continue;
                assert_true(asprintf(&a, "%s/big/a", staging) > 0);
                assert_int_equal(read_full_file(a, 8 * 1024 * 1024, &got, &got_size), 0);
                assert_int_equal(got_size, sizes[1]);
                assert_memory_equal(got, content[1], sizes[1]);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_oversized),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_reader),
                cmocka_unit_test(test_reader_large),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
