/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "basic/base64.h"
#include "basic/macro.h"

static void expect(const char *in, unsigned flags, const char *out) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = 0;
        int r = base64_decode(in, strlen(in), flags, &buf, &n);

        if (!out) {
                if (r != -EBADMSG)
                        fail_msg("'%s' (flags %u): accepted, expected -EBADMSG", in, flags);
                return;
        }
        if (r < 0 || n != strlen(out) || memcmp(buf, out, n) != 0)
                fail_msg("'%s' (flags %u): got %d '%.*s', expected '%s'", in, flags, r, (int) n, buf ? (char *) buf : "", out);
}

static void test_valid(void **state) {
        expect("", 0, "");
        expect("Zg==", 0, "f");
        expect("Zm8=", 0, "fo");
        expect("Zm9v", 0, "foo");
        expect("Zm9v\r\nYmFy", 0, "foobar");
        expect("Zm9v YmFy", BASE64_SKIP_SPACE, "foobar");
        expect("Zg", BASE64_PADDING_OPTIONAL, "f");
        expect("Zm8", BASE64_PADDING_OPTIONAL, "fo");
        expect("-_8=", BASE64_URL_ALPHABET, "\xfb\xff");
        expect("+/8=", BASE64_URL_ALPHABET, "\xfb\xff");
}

static void test_invalid(void **state) {
        expect("Zg", 0, NULL);              /* padding missing */
        expect("Zg=", 0, NULL);             /* padding short */
        expect("Zg===", 0, NULL);           /* too much */
        expect("Zg==Zg==", 0, NULL);        /* data after padding */
        expect("Zh==", 0, NULL);            /* stray bits */
        expect("Zm9", 0, NULL);
        expect("Z", BASE64_PADDING_OPTIONAL, NULL);
        expect("Zm9v YmFy", 0, NULL);       /* spaces only when allowed */
        expect("Zm9*", 0, NULL);
        expect("-_8=", 0, NULL);            /* URL alphabet only when allowed */
        expect("+_8=", BASE64_URL_ALPHABET, NULL); /* one alphabet per input */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_invalid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
