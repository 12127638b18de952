/* SPDX-License-Identifier: MIT */
/* One line of an OpenSSH allowed_signers file (ssh-keygen(1), ALLOWED SIGNERS):
 *
 *   principals [options] keytype base64-key [comment]
 *
 * options: cert-authority, namespaces="list", valid-after="time", valid-before="time".
 * There is no library for this format; it is small, and every field is checked. */

#include <openssl/evp.h>

#include "sshsig.h"

#define LINE_MAX_FIELDS 4096

void allowed_signer_done(AllowedSigner *a) {
        if (!a)
                return;
        free(a->principals);
        free(a->namespaces);
        free(a->key_type);
        free(a->key);
        *a = (AllowedSigner) {};
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r';
}

/* The next whitespace-separated token; double quotes protect whitespace. NULL at the end,
 * and *ret_error set for an unterminated quote. */
static char *next_token(const char **p, bool *ret_error) {
        const char *s = *p, *start;
        bool quoted = false;

        while (is_space(*s))
                s++;
        if (!*s)
                return NULL;
        start = s;
        for (; *s && (quoted || !is_space(*s)); s++)
                if (*s == '"')
                        quoted = !quoted;
        if (quoted) {
                *ret_error = true;
                return NULL;
        }
        *p = s;
        return strndup(start, (size_t) (s - start));
}

static char *unquote(const char *v) {
        size_t n = strlen(v);

        if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
                return strndup(v + 1, n - 2);
        return strdup(v);
}

/* YYYYMMDD[HHMM[SS]][Z]; without Z the local time, as ssh-keygen reads it. */
static int parse_time(const char *v, time_t *ret) {
        struct tm tm = {};
        size_t n = strlen(v), digits = strspn(v, "0123456789");
        bool utc = n > 0 && v[n - 1] == 'Z';
        char buf[16] = {};
        time_t t;

        if (digits != n - utc || (digits != 8 && digits != 12 && digits != 14))
                return -EINVAL;
        memcpy(buf, v, digits);
        if (!strptime(buf, digits == 8 ? "%Y%m%d" : digits == 12 ? "%Y%m%d%H%M" : "%Y%m%d%H%M%S", &tm))
                return -EINVAL;
        tm.tm_isdst = -1;
        t = utc ? timegm(&tm) : mktime(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret = t;
        return 0;
}

static int parse_options(const char *opts, AllowedSigner *a, Error *e) {
        const char *p = opts;

        while (*p) {
                const char *start = p;
                _cleanup_free_ char *opt = NULL, *value = NULL;
                bool quoted = false;
                char *eq;

                for (; *p && (quoted || *p != ','); p++)
                        if (*p == '"')
                                quoted = !quoted;
                opt = strndup(start, (size_t) (p - start));
                if (!opt)
                        return -ENOMEM;
                if (*p == ',')
                        p++;

                if (streq(opt, "cert-authority")) {
                        a->cert_authority = 1;
                        continue;
                }
                eq = strchr(opt, '=');
                if (!eq)
                        return error_set(e, -EINVAL, "unknown option '%.64s'", opt);
                *eq = 0;
                value = unquote(eq + 1);
                if (!value)
                        return -ENOMEM;
                if (streq(opt, "namespaces")) {
                        if (!value[0])
                                return error_set(e, -EINVAL, "empty namespaces option");
                        free(a->namespaces);
                        a->namespaces = TAKE_PTR(value);
                } else if (streq(opt, "valid-after")) {
                        if (parse_time(value, &a->valid_after) < 0)
                                return error_set(e, -EINVAL, "invalid valid-after time '%.32s'", value);
                } else if (streq(opt, "valid-before")) {
                        if (parse_time(value, &a->valid_before) < 0)
                                return error_set(e, -EINVAL, "invalid valid-before time '%.32s'", value);
                } else
                        return error_set(e, -EINVAL, "unknown option '%.64s'", opt);
        }
        return 0;
}

static bool is_key_type(const char *s) {
        return strncmp(s, "ssh-", 4) == 0 || strncmp(s, "ecdsa-sha2-", 11) == 0 ||
               strncmp(s, "sk-", 3) == 0;
}

static int decode_key(const char *b64, uint8_t **ret, size_t *ret_size) {
        size_t n = strlen(b64), pad = 0;
        _cleanup_free_ uint8_t *out = NULL;
        int k;

        if (n == 0 || n % 4 != 0 || n > LINE_MAX_FIELDS)
                return -EINVAL;
        if (b64[n - 1] == '=')
                pad++;
        if (n > 1 && b64[n - 2] == '=')
                pad++;
        if (strspn(b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") != n - pad)
                return -EINVAL;
        out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        k = EVP_DecodeBlock(out, (const unsigned char *) b64, (int) n);
        if (k < 0)
                return -EINVAL;
        *ret_size = (size_t) k - pad;
        *ret = TAKE_PTR(out);
        return 0;
}

int allowed_signer_parse_line(const char *line, AllowedSigner *ret, Error *e) {
        _cleanup_free_ char *principals = NULL, *second = NULL, *type = NULL, *key = NULL;
        AllowedSigner a = {};
        const char *p = line;
        bool bad_quote = false;
        uint32_t l;
        int r;

        while (is_space(*p))
                p++;
        if (!*p || *p == '#')
                return 0;
        if (strlen(p) > LINE_MAX_FIELDS)
                return error_set(e, -EINVAL, "line longer than %d bytes", LINE_MAX_FIELDS);

        principals = next_token(&p, &bad_quote);
        second = next_token(&p, &bad_quote);
        if (bad_quote)
                return error_set(e, -EINVAL, "unterminated quote");
        if (!principals || !second)
                return error_set(e, -EINVAL, "expected 'principals [options] keytype key'");

        if (is_key_type(second))
                type = TAKE_PTR(second);
        else {
                type = next_token(&p, &bad_quote);
                if (bad_quote || !type)
                        return error_set(e, -EINVAL, "expected 'principals [options] keytype key'");
                r = parse_options(second, &a, e);
                if (r < 0) {
                        allowed_signer_done(&a);
                        return r;
                }
        }
        key = next_token(&p, &bad_quote);
        if (!key || bad_quote) {
                allowed_signer_done(&a);
                return error_set(e, -EINVAL, "no key after key type '%.32s'", type);
        }

        a.principals = unquote(principals);
        if (!a.principals) {
                allowed_signer_done(&a);
                return -ENOMEM;
        }
        r = decode_key(key, &a.key, &a.key_size);
        if (r < 0) {
                allowed_signer_done(&a);
                return error_set(e, r == -ENOMEM ? r : -EINVAL, "the key is not valid base64");
        }
        /* The blob names its own type: it must be the one the line says. */
        if (a.key_size < 4 || (l = (uint32_t) a.key[0] << 24 | (uint32_t) a.key[1] << 16 | (uint32_t) a.key[2] << 8 |
                                   a.key[3]) != strlen(type) ||
            a.key_size - 4 < l || memcmp(a.key + 4, type, l) != 0) {
                allowed_signer_done(&a);
                return error_set(e, -EINVAL, "the key is not of type '%.32s'", type);
        }
        a.key_type = TAKE_PTR(type);
        *ret = a;
        return 1;
}
