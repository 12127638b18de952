/* SPDX-License-Identifier: MIT */
/* The reference grammar of distribution/reference (reference.go), checked piece by piece. */

#include <ctype.h>

#include "image-ref.h"

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

/* [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)* */
static bool path_component_valid(const char *s, size_t n) {
        if (n == 0 || !(islower((unsigned char) s[0]) || isdigit((unsigned char) s[0])))
                return false;
        if (!(islower((unsigned char) s[n - 1]) || isdigit((unsigned char) s[n - 1])))
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if (islower((unsigned char) c) || isdigit((unsigned char) c))
                        continue;
                if (c == '-')
                        continue;
                if ((c == '.' || c == '_') && i + 1 < n) {
                        /* one separator, or "__" */
                        if (c == '_' && s[i + 1] == '_' && i + 2 < n && s[i + 2] != '_' && s[i + 2] != '.' && s[i + 2] != '-') {
                                i++;
                                continue;
                        }
                        if (s[i + 1] == '.' || s[i + 1] == '_' || s[i + 1] == '-')
                                return false;
                        continue;
                }
                return false;
        }
        return true;
}

static bool registry_valid(const char *s, size_t n) {
        size_t colon = n;

        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if (c == ':') {
                        if (colon != n)
                                return false;
                        colon = i;
                } else if (colon != n) {
                        if (!isdigit((unsigned char) c))
                                return false;
                } else if (!(isalnum((unsigned char) c) || c == '.' || c == '-'))
                        return false;
        }
        return colon != 0 && colon + 1 != n && (colon == n || n - colon - 1 <= 5);
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
