/* SPDX-License-Identifier: MIT */
/* Bundle member names (docs/bundle-format.md section 2): bundle_member_name_valid()
 * (agent/bundle/bundle-manifest.c) against the rules of the specification, written out again here
 * from its text. The input is the name (up to its first NUL byte, as a C string).
 *
 * "A member name MUST be at most 1024 bytes, with at most 32 components separated by single
 * `/`; not start with `/` and not end with `/`; contain no empty component (`//`); consist of
 * components of 1 to 255 characters from `A-Z a-z 0-9 . _ + = @ -`, none of which starts with
 * `.`." */

#include "bundle/bundle.h"
#include "fuzz-common.h"
#include "basic/macro.h"

static bool spec_valid(const char *name) {
        size_t len = strlen(name), components = 0;
        const char *p = name;

        if (len == 0 || len > 1024)
                return false;
        for (;;) {
                size_t l = strcspn(p, "/");

                components++;
                if (l < 1 || l > 255 || p[0] == '.')
                        return false;
                for (size_t i = 0; i < l; i++)
                        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+=@-", p[i]))
                                return false;
                if (p[l] == 0)
                        break;
                p += l + 1; /* a trailing '/' leaves an empty last component */
        }
        return components <= 32;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *name = fuzz_strndup(data, size);
        bool got = bundle_member_name_valid(name), want = spec_valid(name);

        if (got != want)
                fuzz_fail("bundle_member_name_valid(\"%.80s\"%s) is %s, the specification says %s", name,
                          strlen(name) > 80 ? "..." : "", got ? "true" : "false", want ? "true" : "false");
        return 0;
}
