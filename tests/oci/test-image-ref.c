/* SPDX-License-Identifier: MIT */
/* image_ref_parse() against distribution/reference's grammar (reference.go). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "oci/image-ref.h"
#include "basic/macro.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void expect(const char *in, const char *registry, const char *repository, const char *tag, const char *digest) {
        ImageRef r = {};
        Error e = {};
        int k = image_ref_parse(in, &r, &e);

        if (k < 0)
                fail_msg("'%s': refused (%s), expected accepted", in, e.message);
        assert_string_equal(r.registry, registry);
        assert_string_equal(r.repository, repository);
        if (tag)
                assert_string_equal(r.tag, tag);
        else
                assert_null(r.tag);
        if (digest)
                assert_string_equal(r.digest, digest);
        else
                assert_null(r.digest);
        image_ref_done(&r);
}

static void refuse(const char *in, const char *why) {
        ImageRef r = {};
        Error e = {};
        int k = image_ref_parse(in, &r, &e);

        if (k != -EINVAL)
                fail_msg("'%s': got %d, expected refused (%s)", in, k, why);
        assert_non_null(strstr(e.message, why));
}

static void test_valid(void **state) {
        expect("nginx", "registry-1.docker.io", "library/nginx", "latest", NULL);
        expect("app/web:1.0", "registry-1.docker.io", "app/web", "1.0", NULL);
        expect("127.0.0.1:5000/app/web@" DIGEST, "127.0.0.1:5000", "app/web", NULL, DIGEST);
        expect("localhost/a:t@" DIGEST, "localhost", "a", "t", DIGEST);
        expect("reg.example.com:65535/a-b/c.d/e_f/g__h/i---j", "reg.example.com:65535", "a-b/c.d/e_f/g__h/i---j", "latest", NULL);
        expect("Reg-1.Example.COM/x", "Reg-1.Example.COM", "x", "latest", NULL);
        expect("a.b/x:_tag.-", "a.b", "x", "_tag.-", NULL);
}

static void test_registry(void **state) {
        refuse("-a.b/c", "invalid registry");
        refuse("a-.b/c", "invalid registry");
        refuse("a..b/c", "invalid registry");
        refuse(".a/c", "invalid registry");
        refuse("a./c", "invalid registry");
        refuse("a_b.c/c", "invalid registry");
        refuse("a.b:/c", "invalid registry");
        refuse("a.b:0/c", "invalid registry");
        refuse("a.b:65536/c", "invalid registry");
        refuse("a.b:123456/c", "invalid registry");
        refuse("a.b:1x/c", "invalid registry");
        refuse(":5000/c", "invalid registry");
}

static void test_repository(void **state) {
        refuse("c-.e", "invalid repository");
        refuse("a.b/c-.e", "invalid repository");
        refuse("a.b/c-_e", "invalid repository");
        refuse("a.b/c___e", "invalid repository");
        refuse("a.b/c..e", "invalid repository");
        refuse("a.b/c._e", "invalid repository");
        refuse("a.b/-c", "invalid repository");
        refuse("a.b/c-", "invalid repository");
        refuse("a.b/C", "invalid repository");
        refuse("a.b/c//d", "invalid repository");
        refuse("a.b/c/", "invalid repository");
}

static void test_tag_digest(void **state) {
        refuse("a.b/c:", "invalid tag");
        refuse("a.b/c:-x", "invalid tag");
        refuse("a.b/c:x y", "invalid tag");
        refuse("a.b/c@sha256:0123", "digest");
        refuse("a.b/c@sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "digest");
        refuse("a.b/c@" "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "digest");
        refuse("", "empty");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_registry),
                cmocka_unit_test(test_repository),
                cmocka_unit_test(test_tag_digest),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
