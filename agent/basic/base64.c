/* SPDX-License-Identifier: MIT */
#include "basic/base64.h"
#include "basic/macro.h"

enum { ALPHABET_ANY, ALPHABET_STD, ALPHABET_URL };

static int value_of(char c, unsigned flags, int *alphabet) {
        int a = c == '+' || c == '/' ? ALPHABET_STD : c == '-' || c == '_' ? ALPHABET_URL : ALPHABET_ANY;

        if (a == ALPHABET_URL && !(flags & BASE64_URL_ALPHABET))
                return -1;
        if (a != ALPHABET_ANY) {
                if (*alphabet != ALPHABET_ANY && *alphabet != a)
                        return -1;
                *alphabet = a;
        }
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        return c == '+' || c == '-' ? 62 : c == '/' || c == '_' ? 63 : -1;
}

int base64_decode(const char *s, size_t n, unsigned flags, uint8_t **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *out = malloc(n / 4 * 3 + 4);
        int alphabet = ALPHABET_ANY;
        size_t m = 0, k = 0, pad = 0;
        uint32_t acc = 0;
        bool pad_ok;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int v;

                if (s[i] == '\r' || s[i] == '\n')
                        continue;
                if ((s[i] == ' ' || s[i] == '\t') && (flags & BASE64_SKIP_SPACE))
                        continue;
                if (s[i] == '=') {
                        if (++pad > 2)
                                return -EBADMSG;
                        continue;
                }
                v = value_of(s[i], flags, &alphabet);
                if (v < 0 || pad > 0)
                        return -EBADMSG;
                acc = acc << 6 | (uint32_t) v;
                if (++k == 4) {
                        out[m++] = (uint8_t) (acc >> 16);
                        out[m++] = (uint8_t) (acc >> 8);
                        out[m++] = (uint8_t) acc;
                        k = acc = 0;
                }
        }
        /* The last quantum: two or three characters, with their padding (or none when it is
         * optional), and no stray bits. */
        pad_ok = pad == 4 - k || (pad == 0 && (flags & BASE64_PADDING_OPTIONAL));
        if (k == 2 && pad_ok && (acc & 0xf) == 0)
                out[m++] = (uint8_t) (acc >> 4);
        else if (k == 3 && pad_ok && (acc & 0x3) == 0) {
                out[m++] = (uint8_t) (acc >> 10);
                out[m++] = (uint8_t) (acc >> 2);
        } else if (k != 0 || pad != 0)
                return -EBADMSG;
        out[m] = 0;
        *ret = TAKE_PTR(out);
        *ret_size = m;
        return 0;
}
