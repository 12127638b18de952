/* SPDX-License-Identifier: MIT */
/* The reference grammar of distribution/reference (reference.go), checked piece by piece. */

#include <ctype.h>

#include "oci/image-ref.h"

#define REFERENCE_MAX 512
#define TAG_MAX 128

void image_ref_done(ImageRef *r) {
        if (!r)
                return;
        free(r->registry);
        free(r->repository);
        free(r->tag);
        free(r->digest);
        *r = (ImageRef) {};
}

bool image_digest_is_valid(const char *s) {
        if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != IMAGE_DIGEST_LEN)
                return false;
        for (const char *p = s + 7; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static bool lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component = [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )* */
static bool path_component_valid(const char *s, size_t n) {
        size_t i = 0;

        for (;;) {
                size_t start = i;

                while (i < n && lower_alnum(s[i]))
                        i++;
                if (i == start)
                        return false; /* empty, or a separator not between two alphanumeric runs */
                if (i == n)
                        return true;
                if (s[i] == '.')
                        i++;
                else if (s[i] == '_')
                        i += i + 1 < n && s[i + 1] == '_' ? 2 : 1;
                else if (s[i] == '-')
                        while (i < n && s[i] == '-')
                                i++;
                else
                        return false;
        }
}

/* domain-component = [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9] */
static bool domain_component_valid(const char *s, size_t n) {
        if (n == 0 || !isalnum((unsigned char) s[0]) || !isalnum((unsigned char) s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) s[i]) && s[i] != '-')
                        return false;
        return true;
}

/* domain = domain-component ( "." domain-component )* [ ":" port ], the port 1 to 65535 (the
 * grammar takes any digits; no TCP port is above 65535). IPv6 literals are not accepted. */
static bool registry_valid(const char *s, size_t n) {
        const char *colon = memchr(s, ':', n);
        size_t host_len = colon ? (size_t) (colon - s) : n;

        for (size_t i = 0;;) {
                const char *dot = memchr(s + i, '.', host_len - i);
                size_t end = dot ? (size_t) (dot - s) : host_len;

                if (!domain_component_valid(s + i, end - i))
                        return false;
                if (!dot)
                        break;
                i = end + 1;
        }
        if (colon) {
                size_t digits = n - host_len - 1;
                unsigned long port = 0;

                if (digits == 0 || digits > 5)
                        return false;
                for (size_t i = host_len + 1; i < n; i++) {
                        if (!isdigit((unsigned char) s[i]))
                                return false;
                        port = port * 10 + (unsigned long) (s[i] - '0');
                }
                if (port == 0 || port > 65535)
                        return false;
        }
        return true;
}

static bool tag_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > TAG_MAX || !(isalnum((unsigned char) s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char) s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
                        return false;
        return true;
}

int image_ref_parse(const char *s, ImageRef *ret, Error *e) {
        _cleanup_free_ char *copy = NULL;
        ImageRef r = {};
        char *name, *at, *slash, *last_slash, *colon;

        if (!s || !s[0])
                return error_set(e, -EINVAL, "empty image reference");
        if (strlen(s) > REFERENCE_MAX)
                return error_set(e, -EINVAL, "image reference longer than %d characters", REFERENCE_MAX);
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        name = copy;

        at = strchr(name, '@');
        if (at) {
                *at = 0;
                if (!image_digest_is_valid(at + 1))
                        return error_set(e, -EINVAL, "'%s': the digest must be sha256: and 64 lowercase hex digits", s);
                r.digest = strdup(at + 1);
                if (!r.digest)
                        goto oom;
        }

        /* A tag is after the last ':' that follows the last '/'. */
        last_slash = strrchr(name, '/');
        colon = strrchr(last_slash ? last_slash : name, ':');
        if (colon) {
                *colon = 0;
                if (!tag_valid(colon + 1)) {
                        image_ref_done(&r);
                        return error_set(e, -EINVAL, "'%s': invalid tag '%s'", s, colon + 1);
                }
                r.tag = strdup(colon + 1);
                if (!r.tag)
                        goto oom;
        }

        slash = strchr(name, '/');
        if (slash && (memchr(name, '.', (size_t) (slash - name)) || memchr(name, ':', (size_t) (slash - name)) ||
                      (slash - name == 9 && strncmp(name, "localhost", 9) == 0))) {
                if (!registry_valid(name, (size_t) (slash - name))) {
                        image_ref_done(&r);
                        return error_set(e, -EINVAL, "'%s': invalid registry", s);
                }
                r.registry = strndup(name, (size_t) (slash - name));
                name = slash + 1;
        } else {
                r.registry = strdup("registry-1.docker.io");
                if (!slash) {
                        char *repo;
                        if (asprintf(&repo, "library/%s", name) < 0)
                                goto oom;
                        r.repository = repo;
                }
        }
        if (!r.registry)
                goto oom;
        if (!r.repository) {
                r.repository = strdup(name);
                if (!r.repository)
                        goto oom;
        }

        for (const char *p = r.repository;;) {
                const char *end = strchrnul(p, '/');

                if (!path_component_valid(p, (size_t) (end - p))) {
                        image_ref_done(&r);
                        return error_set(e, -EINVAL, "'%s': invalid repository name", s);
                }
                if (!*end)
                        break;
                p = end + 1;
        }

        if (!r.tag && !r.digest) {
                r.tag = strdup("latest");
                if (!r.tag)
                        goto oom;
        }
        *ret = r;
        return 0;
oom:
        image_ref_done(&r);
        return -ENOMEM;
}
