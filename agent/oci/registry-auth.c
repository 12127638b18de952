/* SPDX-License-Identifier: MIT */
#include <jansson.h>

#include "basic/base64.h"
#include "basic/fileio.h"
#include "oci/registry-auth.h"

int auth_challenge_parse(const char *h, AuthChallenge *ret) {
        AuthChallenge c = {};
        const char *p = h;
        size_t n;

        while (*p == ' ')
                p++;
        n = strcspn(p, " ");
        if (n == 0 || n >= sizeof(c.scheme))
                return -EBADMSG;
        memcpy(c.scheme, p, n);
        p += n;

        /* auth-param = token "=" ( token / quoted-string ), separated by commas */
        while (*p) {
                const char *key;
                size_t key_n;
                char *value, **slot;

                while (*p == ' ' || *p == ',')
                        p++;
                if (!*p)
                        break;
                key = p;
                key_n = strcspn(p, "=, ");
                p += key_n;
                if (*p != '=') {
                        auth_challenge_done(&c);
                        return -EBADMSG;
                }
                p++;
                if (*p == '"') {
                        const char *start = ++p;
                        size_t len = 0;
                        char *w;

                        value = malloc(strlen(start) + 1);
                        if (!value) {
                                auth_challenge_done(&c);
                                return -ENOMEM;
                        }
                        w = value;
                        for (; *p && *p != '"'; p++) {
                                if (*p == '\\' && p[1])
                                        p++;
                                w[len++] = *p;
                        }
                        w[len] = 0;
                        if (*p != '"') {
                                free(value);
                                auth_challenge_done(&c);
                                return -EBADMSG;
                        }
                        p++;
                } else {
                        size_t vn = strcspn(p, ", ");
                        value = strndup(p, vn);
                        p += vn;
                        if (!value) {
                                auth_challenge_done(&c);
                                return -ENOMEM;
                        }
                }

                if (key_n == 5 && strncasecmp(key, "realm", 5) == 0)
                        slot = &c.realm;
                else if (key_n == 7 && strncasecmp(key, "service", 7) == 0)
                        slot = &c.service;
                else if (key_n == 5 && strncasecmp(key, "scope", 5) == 0)
                        slot = &c.scope;
                else
                        slot = NULL;
                if (slot) {
                        free(*slot);
                        *slot = value;
                } else
                        free(value);
        }
        *ret = c;
        return 0;
}

void auth_challenge_done(AuthChallenge *c) {
        if (!c)
                return;
        free(c->realm);
        free(c->service);
        free(c->scope);
        *c = (AuthChallenge) {};
}

static int decode_auth(const char *b64, char **ret_user, char **ret_password) {
        _cleanup_free_ uint8_t *out = NULL;
        size_t n;
        char *colon;
        int k;

        if (strlen(b64) > 8192)
                return -EBADMSG;
        k = base64_decode(b64, strlen(b64), 0, &out, &n);
        if (k < 0)
                return k;
        if (memchr(out, 0, n))
                return -EBADMSG;
        colon = strchr((char *) out, ':');
        if (!colon)
                return -EBADMSG;
        *colon = 0;
        *ret_user = strdup((char *) out);
        *ret_password = strdup(colon + 1);
        if (!*ret_user || !*ret_password) {
                free(*ret_user);
                free(*ret_password);
                return -ENOMEM;
        }
        return 0;
}

int registry_auth_lookup(const char *auth_file, const char *registry, char **ret_user, char **ret_password, Error *e) {
        _cleanup_free_ char *data = NULL;
        const char *variants[3] = { registry, NULL, NULL };
        _cleanup_free_ char *https = NULL, *http = NULL;
        json_t *j, *auths, *entry = NULL;
        json_error_t jerr;
        size_t size;
        int r;

        r = read_full_file(auth_file, AUTH_FILE_MAX, &data, &size);
        if (r < 0)
                return error_set(e, r, "cannot read registry-auth-file '%s': %s", auth_file, strerror(-r));
        j = json_loadb(data, size, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return error_set(e, -EINVAL, "%s:%d: not valid JSON: %s", auth_file, jerr.line, jerr.text);

        if (asprintf(&https, "https://%s", registry) < 0 || asprintf(&http, "http://%s", registry) < 0) {
                json_decref(j);
                return -ENOMEM;
        }
        variants[1] = https;
        variants[2] = http;

        auths = json_object_get(j, "auths");
        if (!json_is_object(auths)) {
                json_decref(j);
                return error_set(e, -EINVAL, "%s: no \"auths\" object", auth_file);
        }
        for (size_t i = 0; i < ELEMENTSOF(variants) && !entry; i++)
                entry = json_object_get(auths, variants[i]);
        if (!entry) {
                json_decref(j);
                return -ENOENT;
        }

        if (json_is_string(json_object_get(entry, "auth")))
                r = decode_auth(json_string_value(json_object_get(entry, "auth")), ret_user, ret_password);
        else if (json_is_string(json_object_get(entry, "username")) && json_is_string(json_object_get(entry, "password"))) {
                *ret_user = strdup(json_string_value(json_object_get(entry, "username")));
                *ret_password = strdup(json_string_value(json_object_get(entry, "password")));
                r = *ret_user && *ret_password ? 0 : -ENOMEM;
        } else
                r = -EBADMSG;
        json_decref(j);
        if (r == -EBADMSG)
                return error_set(e, -EINVAL, "%s: the entry for %s has neither a valid \"auth\" nor username and password",
                                 auth_file, registry);
        return r;
}
