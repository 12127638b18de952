/* SPDX-License-Identifier: MIT */
/* The WWW-Authenticate parser of the registry client: auth_challenge_parse()
 * (agent/oci/registry-auth.c). The input is the header's value (up to its first NUL byte, as the
 * client hands it over), as a registry or anything pretending to be one sends it.
 *
 * What must hold: a parsed challenge has a scheme of 1 to 15 bytes without a space, and every
 * parameter it keeps is no longer than the header. */

#include "fuzz-common.h"
#include "basic/macro.h"
#include "oci/registry-auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *header = fuzz_strndup(data, size);
        AuthChallenge c = {};
        size_t n = strlen(header);
        int r;

        r = auth_challenge_parse(header, &c);
        if (r == 0) {
                size_t l = strnlen(c.scheme, sizeof(c.scheme));

                if (l == 0 || l >= sizeof(c.scheme) || strchr(c.scheme, ' '))
                        fuzz_fail("scheme '%.*s' parsed", (int) l, c.scheme);
                if ((c.realm && strlen(c.realm) > n) || (c.service && strlen(c.service) > n) ||
                    (c.scope && strlen(c.scope) > n))
                        fuzz_fail("a parameter longer than the header");
        } else if (r != -EBADMSG && r != -ENOMEM)
                fuzz_fail("auth_challenge_parse() failed with %d", r);
        auth_challenge_done(&c);
        auth_challenge_done(&c); /* twice: it must leave a done challenge empty */
        return 0;
}
