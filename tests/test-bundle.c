/* SPDX-License-Identifier: MIT */
/* The bundle manifest parser and the member name rules (docs/bundle-format.md, sections 2
 * and 3). The reader over real tar files is tested end to end in
 * tests/integration/test_bundle*.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>

#include "bundle.h"

#define REV "0123456789abcdef0123456789abcdef01234567"
#define SHA "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define DIGEST "sha256:" SHA

/* A valid manifest, with one part replaceable: each test swaps in a broken piece. */
static char *manifest(const char *host, const char *extra, const char *closure, const char *images,
                      const char *members) {
        char *s;
        assert_true(asprintf(&s,
                             "{\"format\": \"atticd-agent-bundle\", \"version\": 1, \"host\": \"%s\", "
                             "\"revision\": \"" REV "\", \"sequence\": 5, \"created\": 100, \"expires\": 200, "
                             "\"repository\": \"repository.pack\", \"closure\": %s, \"images\": %s, "
                             "\"members\": %s%s}",
                             host, closure, images, members, extra) > 0);
        return s;
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
        const char *host, *extra, *closure, *images, *members;
        const char *message;
} Case;

static void test_refused(void **state) {
        static const Case cases[] = {
                { "not json", "{\"format\": ", .message = "not valid JSON" },
                { "not an object", "[1]", .message = "not a JSON object" },
                { "empty", "", .message = "not valid JSON" },
                { "duplicate key", "{\"format\": \"atticd-agent-bundle\", \"format\": \"x\"}", .message = "not valid JSON" },
                { "other format", "{\"format\": \"rauc\", \"version\": 1}", .message = "not an atticd-agent-bundle" },
                { "version 2", "{\"format\": \"atticd-agent-bundle\", \"version\": 2}", .message = "unsupported format version 2" },
                { "version string", "{\"format\": \"atticd-agent-bundle\", \"version\": \"1\"}", .message = "unsupported format version" },
                { "unknown key", .extra = ", \"signer\": \"me\"", .message = "signer" },
                { "missing members", "{\"format\": \"atticd-agent-bundle\", \"version\": 1, \"host\": \"h\"}", .message = "manifest:" },
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
                { "expires before created", .text = "{\"format\": \"atticd-agent-bundle\", \"version\": 1, \"host\": \"h\", \"revision\": \"" REV "\", \"sequence\": 5, \"created\": 200, \"expires\": 200, \"repository\": \"repository.pack\", \"closure\": null, \"images\": null, \"members\": " MEMBERS "}", .message = "'expires' is not after 'created'" },
                { "sequence zero", .text = "{\"format\": \"atticd-agent-bundle\", \"version\": 1, \"host\": \"h\", \"revision\": \"" REV "\", \"sequence\": 0, \"created\": 100, \"expires\": 200, \"repository\": \"repository.pack\", \"closure\": null, \"images\": null, \"members\": " MEMBERS "}", .message = "'sequence' is out of range" },
                { "short revision", .text = "{\"format\": \"atticd-agent-bundle\", \"version\": 1, \"host\": \"h\", \"revision\": \"0123\", \"sequence\": 1, \"created\": 100, \"expires\": 200, \"repository\": \"repository.pack\", \"closure\": null, \"images\": null, \"members\": " MEMBERS "}", .message = "commit id" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const Case *c = &cases[i];
                _cleanup_free_ char *m = c->text ? strdup(c->text) :
                        manifest(c->host ?: "h", c->extra ?: "", c->closure ?: CLOSURE, c->images ?: IMAGES,
                                 c->members ?: MEMBERS);
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


int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_oversized),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
