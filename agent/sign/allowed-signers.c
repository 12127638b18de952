/* SPDX-License-Identifier: MIT */
/* The OpenSSH allowed_signers file (ssh-keygen(1), ALLOWED SIGNERS), one entry a line:
 *
 *   principals [options] keytype base64-key [comment]
 *
 * options: cert-authority, namespaces="patterns", valid-after="time", valid-before="time".
 * Read as OpenSSH reads it, but stricter: any malformed line is an error naming the file and
 * the line, wherever it is (OpenSSH logs it and reads on), so that a typo never silently
 * drops a restriction. */

#include <strings.h>

#include "basic/fileio.h"
#include "sign/allowed-signers.h"
#include "sign/ssh-key.h"

static int oom(Error *e) {
        return error_set(e, -ENOMEM, "out of memory");
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static const char *skip_space(const char *p) {
        while (is_space(*p))
                p++;
        return p;
}

static const char *word_end(const char *p) {
        while (*p && !is_space(*p))
                p++;
        return p;
}

void allowed_signer_done(AllowedSigner *a) {
        if (!a)
                return;
        free(a->principals);
        free(a->namespaces);
        free(a->key_type);
        free(a->key);
        *a = (AllowedSigner) {};
}

/* YYYYMMDD[HHMM[SS]], then Z or UTC for UTC, else the local time, as ssh-keygen reads it.
 * Unlike strptime, a day the month does not have is an error. */
static int parse_time(const char *s, time_t *ret) {
        static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        size_t digits = strspn(s, "0123456789");
        bool utc = strcasecmp(s + digits, "Z") == 0 || strcasecmp(s + digits, "UTC") == 0;
        int f[6] = {}; /* year, month, day, hour, minute, second */
        struct tm tm;
        time_t t;

        if ((s[digits] && !utc) || (digits != 8 && digits != 12 && digits != 14))
                return -EINVAL;
        for (size_t i = 0; i < digits; i++) {
                int *v = &f[i < 4 ? 0 : (i - 4) / 2 + 1];
                *v = *v * 10 + (s[i] - '0');
        }
        if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > mdays[f[1] - 1] ||
            (f[1] == 2 && f[2] == 29 && (f[0] % 4 != 0 || (f[0] % 100 == 0 && f[0] % 400 != 0))) || f[3] > 23 ||
            f[4] > 59 || f[5] > 59)
                return -EINVAL;
        tm = (struct tm) { .tm_year = f[0] - 1900, .tm_mon = f[1] - 1, .tm_mday = f[2],
                           .tm_hour = f[3], .tm_min = f[4], .tm_sec = f[5], .tm_isdst = -1 };
        t = utc ? timegm(&tm) : mktime(&tm);
        if (t <= 0) /* OpenSSH refuses the epoch and before */
                return -EINVAL;
        *ret = t;
        return 0;
}

/* A double-quoted option value ending before end; \" is a quote. */
static int dequote(const char **p, const char *end, char **ret) {
        const char *s = *p;
        char *out, *o;

        if (s >= end || *s != '"')
                return -EINVAL;
        out = o = malloc((size_t) (end - s));
        if (!out)
                return -ENOMEM;
        for (s++; s < end && *s != '"'; s++) {
                if (*s == '\\' && s + 1 < end && s[1] == '"')
                        s++;
                *o++ = *s;
        }
        if (s >= end) {
                free(out);
                return -EINVAL;
        }
        *o = 0;
        *p = s + 1;
        *ret = out;
        return 0;
}

/* cert-authority, namespaces="...", valid-after="...", valid-before="...", comma-separated;
 * names in any case, each at most once, anything else an error (as OpenSSH). */
static int parse_options(const char *p, const char *end, AllowedSigner *a, Error *e) {
        static const char *const names[] = { "namespaces", "valid-after", "valid-before" };

        while (p < end) {
                const char *opt = p;

                if ((size_t) (end - p) >= 14 && strncasecmp(p, "cert-authority", 14) == 0) {
                        a->cert_authority = true;
                        p += 14;
                } else {
                        _cleanup_free_ char *value = NULL;
                        size_t i, l = 0;
                        time_t *t;
                        int r;

                        for (i = 0; i < ELEMENTSOF(names); i++) {
                                l = strlen(names[i]);
                                if ((size_t) (end - p) > l && strncasecmp(p, names[i], l) == 0 && p[l] == '=')
                                        break;
                        }
                        if (i == ELEMENTSOF(names))
                                return error_set(e, -EINVAL, "unknown option '%.*s'",
                                                 (int) MIN(strcspn(p, ",= \t"), (size_t) 40), p);
                        p += l + 1;
                        r = dequote(&p, end, &value);
                        if (r == -ENOMEM)
                                return oom(e);
                        if (r < 0)
                                return error_set(e, -EINVAL, "option %s: the value must be in double quotes", names[i]);
                        if (i == 0) {
                                if (a->namespaces)
                                        return error_set(e, -EINVAL, "option namespaces given twice");
                                a->namespaces = TAKE_PTR(value);
                        } else {
                                t = i == 1 ? &a->valid_after : &a->valid_before;
                                if (*t != 0)
                                        return error_set(e, -EINVAL, "option %s given twice", names[i]);
                                if (parse_time(value, t) < 0)
                                        return error_set(e, -EINVAL, "option %s: invalid time '%.32s' (YYYYMMDD[HHMM[SS]][Z])",
                                                         names[i], value);
                        }
                }
                if (p < end && *p != ',')
                        return error_set(e, -EINVAL, "unknown option '%.*s'", (int) MIN((size_t) (end - opt), (size_t) 40),
                                         opt);
                if (p < end && ++p == end)
                        return error_set(e, -EINVAL, "the options end with ','");
        }
        if (a->valid_after != 0 && a->valid_before != 0 && a->valid_before <= a->valid_after)
                return error_set(e, -EINVAL, "valid-before is not later than valid-after");
        return 0;
}

/* The options field, when there is one, holds a '=' or a '"' (no key type does), or is
 * cert-authority. Returns its end, or NULL for an unterminated quote. */
static const char *options_end(const char *p) {
        bool quoted = false;

        for (; *p && (quoted || !is_space(*p)); p++) {
                if (*p == '\\' && p[1] == '"')
                        p++;
                else if (*p == '"')
                        quoted = !quoted;
        }
        return quoted ? NULL : p;
}

static bool has_options(const char *p) {
        const char *end = word_end(p);

        return memchr(p, '=', (size_t) (end - p)) || memchr(p, '"', (size_t) (end - p)) ||
               strncasecmp(p, "cert-authority", 14) == 0;
}

int allowed_signer_parse_line(const char *line, AllowedSigner *ret, Error *e) {
        _cleanup_(allowed_signer_done) AllowedSigner a = {};
        const char *p = skip_space(line), *end;
        size_t type_size;
        int q;

        if (!*p || *p == '#')
                return 0;

        /* The principals: one word, or one double-quoted string. */
        if (*p == '"') {
                end = strchr(p + 1, '"');
                if (!end)
                        return error_set(e, -EINVAL, "unterminated quote in the principals");
                a.principals = strndup(p + 1, (size_t) (end - p - 1));
                if (*++end && !is_space(*end))
                        return error_set(e, -EINVAL, "text right after the quoted principals");
        } else {
                end = word_end(p);
                if (memchr(p, '"', (size_t) (end - p)))
                        return error_set(e, -EINVAL, "a quote inside the principals");
                a.principals = strndup(p, (size_t) (end - p));
        }
        if (!a.principals)
                return oom(e);
        if (!a.principals[0])
                return error_set(e, -EINVAL, "empty principals");
        p = skip_space(end);

        if (*p && has_options(p)) {
                end = options_end(p);
                if (!end)
                        return error_set(e, -EINVAL, "unterminated quote in the options");
                q = parse_options(p, end, &a, e);
                if (q < 0)
                        return q;
                p = skip_space(end);
        }

        if (!*p)
                return error_set(e, -EINVAL, "no key (expected: principals [options] keytype base64-key [comment])");
        end = word_end(p);
        a.key_type = strndup(p, (size_t) (end - p));
        if (!a.key_type)
                return oom(e);
        p = skip_space(end);
        if (!*p)
                return error_set(e, -EINVAL, "no key after the key type '%.40s'", a.key_type);
        q = ssh_base64_decode(p, (size_t) (word_end(p) - p), &a.key, &a.key_size);
        if (q == -ENOMEM)
                return oom(e);
        if (q < 0)
                return error_set(e, -EINVAL, "the %.40s key is not valid base64", a.key_type);

        /* The blob names its type: it must be the line's. Supported types are checked whole now,
         * not when a signature first needs them; others (sk-*, certificates, ssh-dss) are kept,
         * and a signature by them is refused as unsupported. */
        type_size = strlen(a.key_type);
        if (a.key_size < 4 + type_size ||
            ((size_t) a.key[0] << 24 | (size_t) a.key[1] << 16 | (size_t) a.key[2] << 8 | a.key[3]) != type_size ||
            memcmp(a.key + 4, a.key_type, type_size) != 0)
                return error_set(e, -EINVAL, "the key is not of type '%.40s'", a.key_type);
        if (ssh_key_check(a.key, a.key_size, NULL) == -EBADMSG)
                return error_set(e, -EINVAL, "malformed %.40s key", a.key_type);

        *ret = a;
        a = (AllowedSigner) {};
        return 1;
}

/* OpenSSH's match_pattern(): '*' any run, '?' any one character, nothing else special. */
static bool pattern_match(const char *s, const char *p, size_t n) {
        const char *star_s = NULL;
        size_t i = 0, star = SIZE_MAX;

        while (*s) {
                if (i < n && p[i] == '*') {
                        star = i++;
                        star_s = s;
                } else if (i < n && (p[i] == '?' || p[i] == *s)) {
                        i++;
                        s++;
                } else if (star != SIZE_MAX) {
                        i = star + 1;
                        s = ++star_s;
                } else
                        return false;
        }
        while (i < n && p[i] == '*')
                i++;
        return i == n;
}

/* OpenSSH's match_pattern_list(): a comma-separated list; a matching "!pattern" refuses. */
static bool pattern_list_match(const char *s, const char *list) {
        bool positive = false;

        for (const char *p = list; *p;) {
                size_t l = strcspn(p, ",");
                bool negated = *p == '!';

                if (pattern_match(s, p + negated, l - negated)) {
                        if (negated)
                                return false;
                        positive = true;
                }
                p += l + (p[l] == ',');
        }
        return positive;
}

static const char *format_time(time_t t, char buf[static 32]) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                (void) snprintf(buf, 32, "@%jd", (intmax_t) t);
        return buf;
}

/* Both limits are inclusive, as in OpenSSH. */
int allowed_signer_check(const AllowedSigner *a, const char *namespace_, time_t now, Error *e) {
        char b1[32], b2[32];

        if (a->namespaces && !pattern_list_match(namespace_, a->namespaces))
                return error_set(e, -EKEYREJECTED, "the key may not sign in namespace '%s' (namespaces=\"%.200s\")",
                                 namespace_, a->namespaces);
        if (a->valid_after != 0 && now < a->valid_after)
                return error_set(e, -EKEYREJECTED, "the key is not valid before %s (it is %s)",
                                 format_time(a->valid_after, b1), format_time(now, b2));
        if (a->valid_before != 0 && now > a->valid_before)
                return error_set(e, -EKEYREJECTED, "the key expired at %s (it is %s)", format_time(a->valid_before, b1),
                                 format_time(now, b2));
        return 0;
}

/* The first line that lists the key and lets it sign here. Every line is parsed, before and
 * after it. */
int allowed_signers_find(const char *path, const void *key, size_t key_size, const char *namespace_, time_t now,
                         AllowedSigner *ret, Error *e) {
        _cleanup_(allowed_signer_done) AllowedSigner found = {};
        _cleanup_free_ char *text = NULL;
        unsigned line_no = 0, refused_line = 0, ca_line = 0;
        Error refused = {};
        char *line, *next;
        size_t size;
        int r;

        r = read_full_file(path, ALLOWED_SIGNERS_MAX, &text, &size);
        if (r == -EFBIG)
                return error_set(e, r, "allowed signers file '%s' is larger than %u bytes", path, ALLOWED_SIGNERS_MAX);
        if (r < 0)
                return error_set(e, r, "cannot read allowed signers file '%s': %s", path, strerror(-r));
        if (memchr(text, 0, size))
                return error_set(e, -EINVAL, "%s: contains a NUL byte", path);

        for (line = text; line; line = next) {
                _cleanup_(allowed_signer_done) AllowedSigner a = {};

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                line_no++;
                r = allowed_signer_parse_line(line, &a, e);
                if (r < 0)
                        return error_prefix(e, r, "%s:%u", path, line_no);
                if (r == 0 || found.key || a.key_size != key_size || memcmp(a.key, key, key_size) != 0)
                        continue;
                /* cert-authority vouches for certificates signed by the key, not for the key's own
                 * signatures; certificates are not supported, so such a line never matches. */
                if (a.cert_authority) {
                        ca_line = ca_line ?: line_no;
                        continue;
                }
                if (allowed_signer_check(&a, namespace_, now, refused_line ? NULL : &refused) < 0) {
                        refused_line = refused_line ?: line_no;
                        continue;
                }
                found = a;
                a = (AllowedSigner) {};
        }

        if (found.key) {
                *ret = found;
                found = (AllowedSigner) {};
                return 0;
        }
        if (refused_line)
                return error_set(e, -EKEYREJECTED, "%s:%u: %s", path, refused_line, refused.message);
        if (ca_line)
                return error_set(e, -EKEYREJECTED,
                                 "in '%s' only as a cert-authority (line %u), and certificates are not supported", path,
                                 ca_line);
        return error_set(e, -EKEYREJECTED, "not in '%s'", path);
}
