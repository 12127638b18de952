/* SPDX-License-Identifier: MIT */
/* The one base64 decoder of the agent: base64_decode() (agent/basic/base64.c), with each of its 8
 * combinations of flags (the Cosign, SSH and registry callers use three of them).
 *
 * What must hold, for each combination:
 *   - what decodes is the one canonical encoding of what it decodes to, once the characters
 *     the flags allow to skip are skipped, the URL alphabet mapped to the standard one and
 *     missing padding added (strictness: no second encoding of the same bytes is accepted);
 *   - the input bytes, encoded by OpenSSL (standard, with padding, folded at 64 columns as
 *     PEM does; URL alphabet and unpadded where the flags allow), decode to themselves. */

#include <openssl/evp.h>

#include "basic/base64.h"
#include "fuzz-common.h"
#include "basic/macro.h"

static char *encode(const uint8_t *data, size_t size, size_t *ret_size) {
        char *out = malloc(4 * ((size + 2) / 3) + 1);
        int n;

        if (!out)
                abort();
        n = EVP_EncodeBlock((unsigned char *) out, data, (int) size);
        *ret_size = (size_t) n;
        return out;
}

static void check_canonical(const uint8_t *in, size_t size, unsigned flags) {
        _cleanup_free_ uint8_t *out = NULL;
        _cleanup_free_ char *norm = NULL, *again = NULL;
        size_t out_size = 0, n = 0, again_size;
        bool std = false, url = false;
        int r;

        r = base64_decode((const char *) in, size, flags, &out, &out_size);
        if (r == -ENOMEM)
                return;
        norm = malloc(size + 4);
        if (!norm)
                abort();
        for (size_t i = 0; i < size; i++) {
                char ch = (char) in[i];

                if (ch == '\r' || ch == '\n' || ((flags & BASE64_SKIP_SPACE) && (ch == ' ' || ch == '\t')))
                        continue;
                std = std || ch == '+' || ch == '/';
                url = url || ch == '-' || ch == '_';
                norm[n++] = ch == '-' ? '+' : ch == '_' ? '/' : ch;
        }
        if (r < 0) {
                if (r != -EBADMSG)
                        fuzz_fail("base64_decode() failed with %d", r);
                return;
        }
        if (url && (!(flags & BASE64_URL_ALPHABET) || std))
                fuzz_fail("flags %u: decoded input with the URL alphabet (mixed: %d)", flags, std);
        if ((flags & BASE64_PADDING_OPTIONAL) && n % 4 != 0)
                while (n % 4 != 0)
                        norm[n++] = '=';
        again = encode(out, out_size, &again_size);
        if (again_size != n || memcmp(again, norm, n) != 0)
                fuzz_fail("flags %u: '%.*s' decoded to %zu bytes that encode as '%s'", flags, (int) MIN(n, (size_t) 200),
                          norm, out_size, again);
        if (out[out_size] != 0)
                fuzz_fail("the decoded buffer is not NUL-terminated");
}

static void check_round_trip(const uint8_t *data, size_t size, unsigned flags) {
        _cleanup_free_ char *enc = NULL, *folded = NULL;
        size_t enc_size, n = 0;

        enc = encode(data, size, &enc_size);
        /* Folded as PEM folds it, at 64 columns, CRLF every other line. */
        folded = malloc(enc_size + 2 * (enc_size / 64 + 1) + 1);
        if (!folded)
                abort();
        for (size_t i = 0; i < enc_size; i++) {
                char ch = enc[i];

                if (i > 0 && i % 64 == 0) {
                        if ((i / 64) % 2 == 0)
                                folded[n++] = '\r';
                        folded[n++] = '\n';
                }
                if (flags & BASE64_URL_ALPHABET)
                        ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
                folded[n++] = ch;
        }
        if (flags & BASE64_PADDING_OPTIONAL)
                while (n > 0 && folded[n - 1] == '=')
                        n--;

        for (int pass = 0; pass < 2; pass++) {
                _cleanup_free_ uint8_t *out = NULL;
                size_t out_size;
                int r = pass == 0 ? base64_decode(enc, enc_size, flags & ~(unsigned) BASE64_URL_ALPHABET, &out, &out_size)
                                  : base64_decode(folded, n, flags, &out, &out_size);

                if (r == -ENOMEM)
                        continue;
                if (r < 0 || out_size != size || memcmp(out, data, size) != 0)
                        fuzz_fail("flags %u: the encoding of %zu bytes does not decode to them (pass %d, %d)", flags, size,
                                  pass, r);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 64 * 1024)
                return 0;
        for (unsigned flags = 0; flags < 8; flags++) {
                check_canonical(data, size, flags);
                check_round_trip(data, size, flags);
        }
        return 0;
}
