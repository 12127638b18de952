/* SPDX-License-Identifier: MIT */
/* The protobuf JSON mapping as Sigstore's files use it, read strictly with jansson. */

#include <inttypes.h>
#include <limits.h>

#include "sign/cosign.h"
#include "sign/sigstore-json.h"

const char *sigstore_json_path(char buf[static SIGSTORE_JSON_PATH_MAX], const char *what, const char *key, size_t i) {
        char path[SIGSTORE_JSON_PATH_MAX]; /* what may be buf itself */

        if (key)
                (void) snprintf(path, sizeof(path), "%s%s%s", what, what[0] ? "." : "", key);
        else
                (void) snprintf(path, sizeof(path), "%s[%zu]", what, i);
        memcpy(buf, path, sizeof(path));
        return buf;
}

json_t *sigstore_json_get(json_t *obj, const char *key) {
        json_t *v = json_object_get(obj, key);

        return json_is_null(v) ? NULL : v;
}

/* The top level has no path. */
static const char *name(const char *what) {
        return what[0] ? what : "the top level";
}

int sigstore_json_object(json_t *v, const char *what, const char *const *keys, Error *e) {
        char buf[COSIGN_PRINTABLE_SIZE];
        const char *key;
        json_t *value;

        if (!json_is_object(v))
                return error_set(e, -EBADMSG, "%s is not a JSON object", name(what));
        json_object_foreach(v, key, value) {
                bool known = false;

                for (const char *const *k = keys; *k && !known; k++)
                        known = streq(*k, key);
                if (!known)
                        return error_set(e, -EBADMSG, "%s has an unknown key \"%s\"", name(what),
                                         cosign_printable(key, buf));
        }
        return 0;
}

static int missing(const char *what, const char *key, Error *e) {
        return error_set(e, -EBADMSG, "%s has no \"%s\"", name(what), key);
}

int sigstore_json_string(json_t *obj, const char *what, const char *key, bool required, size_t max,
                         const char **ret, Error *e) {
        json_t *v = sigstore_json_get(obj, key);
        char path[SIGSTORE_JSON_PATH_MAX];

        *ret = NULL;
        if (!v)
                return required ? missing(what, key, e) : 0;
        sigstore_json_path(path, what, key, 0);
        if (!json_is_string(v))
                return error_set(e, -EBADMSG, "%s is not a string", path);
        if (json_string_length(v) > max)
                return error_set(e, -EBADMSG, "%s is longer than %zu bytes", path, max);
        if (strlen(json_string_value(v)) != json_string_length(v))
                return error_set(e, -EBADMSG, "%s contains a NUL character", path);
        *ret = json_string_value(v);
        return 0;
}

int sigstore_json_decode(json_t *v, const char *path, size_t max, uint8_t **ret, size_t *ret_size, Error *e) {
        const char *s;
        int r;

        *ret = NULL;
        *ret_size = 0;
        if (!json_is_string(v))
                return error_set(e, -EBADMSG, "%s is not a string", path);
        /* Base64 is 4/3 of what it encodes; a little slack for padding and folded lines. */
        if (json_string_length(v) > max / 3 * 4 + 8 + max / 32)
                return error_set(e, -EBADMSG, "%s is larger than %zu bytes", path, max);
        s = json_string_value(v);
        if (strlen(s) != json_string_length(v))
                return error_set(e, -EBADMSG, "%s contains a NUL character", path);
        r = cosign_base64_decode(s, strlen(s), ret, ret_size);
        if (r == -ENOMEM)
                return error_set(e, r, "out of memory");
        if (r < 0)
                return error_set(e, -EBADMSG, "%s is not valid base64", path);
        if (*ret_size == 0 || *ret_size > max) {
                free(*ret);
                *ret = NULL;
                return error_set(e, -EBADMSG, *ret_size == 0 ? "%s is empty" : "%s is larger than %zu bytes", path,
                                 max);
        }
        return 0;
}

int sigstore_json_bytes(json_t *obj, const char *what, const char *key, bool required, size_t max, uint8_t **ret,
                        size_t *ret_size, Error *e) {
        json_t *v = sigstore_json_get(obj, key);
        char path[SIGSTORE_JSON_PATH_MAX];

        *ret = NULL;
        *ret_size = 0;
        if (!v)
                return required ? missing(what, key, e) : 0;
        return sigstore_json_decode(v, sigstore_json_path(path, what, key, 0), max, ret, ret_size, e);
}

int sigstore_json_int64(json_t *obj, const char *what, const char *key, bool required, int64_t *ret, Error *e) {
        json_t *v = sigstore_json_get(obj, key);
        char path[SIGSTORE_JSON_PATH_MAX], *end;
        const char *s, *digits;
        long long n;

        *ret = 0;
        if (!v)
                return required ? missing(what, key, e) : 0;
        sigstore_json_path(path, what, key, 0);
        if (json_is_integer(v)) {
                *ret = json_integer_value(v);
                return 0;
        }
        if (!json_is_string(v))
                return error_set(e, -EBADMSG, "%s is neither an integer nor a string of digits", path);
        s = json_string_value(v);
        digits = s[0] == '-' ? s + 1 : s;
        /* Digits only: strtoll() would take spaces, a '+' and other bases' prefixes. */
        if (!digits[0] || strspn(digits, "0123456789") != strlen(digits))
                return error_set(e, -EBADMSG, "%s is not an integer", path);
        errno = 0;
        n = strtoll(s, &end, 10);
        if (errno != 0 || *end != 0 || strlen(s) != json_string_length(v))
                return error_set(e, -EBADMSG, "%s is not a 64-bit integer", path);
        *ret = n;
        return 0;
}

int sigstore_json_array(json_t *obj, const char *what, const char *key, bool required, size_t max, json_t **ret,
                        Error *e) {
        json_t *v = sigstore_json_get(obj, key);
        char path[SIGSTORE_JSON_PATH_MAX];

        *ret = NULL;
        if (!v)
                return required ? missing(what, key, e) : 0;
        sigstore_json_path(path, what, key, 0);
        if (!json_is_array(v))
                return error_set(e, -EBADMSG, "%s is not an array", path);
        if (json_array_size(v) > max)
                return error_set(e, -EBADMSG, "%s has %zu elements, more than %zu", path, json_array_size(v), max);
        *ret = v;
        return 0;
}

int sigstore_json_child(json_t *obj, const char *what, const char *key, bool required, const char *const *keys,
                        json_t **ret, Error *e) {
        json_t *v = sigstore_json_get(obj, key);
        char path[SIGSTORE_JSON_PATH_MAX];
        int r;

        *ret = NULL;
        if (!v)
                return required ? missing(what, key, e) : 0;
        r = sigstore_json_object(v, sigstore_json_path(path, what, key, 0), keys, e);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

/* After the seconds: an optional fraction, then "Z" or "+hh:mm" / "-hh:mm". */
static int time_suffix(const char *p, bool round_up, long *ret_adjust) {
        long adjust = 0;
        int hh, mm, n = 0;

        if (*p == '.') {
                bool nonzero = false;
                size_t digits = 0;

                for (p++; *p >= '0' && *p <= '9'; p++, digits++)
                        nonzero = nonzero || *p != '0';
                if (digits == 0 || digits > 9)
                        return -EBADMSG;
                adjust = round_up && nonzero ? 1 : 0;
        }
        if (streq(p, "Z")) {
                *ret_adjust = adjust;
                return 0;
        }
        if ((*p != '+' && *p != '-') || sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5 || p[6] != 0 ||
            hh > 23 || mm > 59)
                return -EBADMSG;
        /* 10:00+01:00 is 09:00Z. */
        *ret_adjust = adjust + (*p == '+' ? -1 : 1) * (hh * 3600L + mm * 60L);
        return 0;
}

int sigstore_json_time(json_t *obj, const char *what, const char *key, bool round_up, time_t *ret, Error *e) {
        char path[SIGSTORE_JSON_PATH_MAX];
        struct tm tm = {};
        const char *s, *p;
        long adjust = 0;
        time_t t;
        int r;

        r = sigstore_json_string(obj, what, key, true, 64, &s, e);
        if (r < 0)
                return r;
        sigstore_json_path(path, what, key, 0);
        p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        /* strptime() takes "2021-1-2T3:4:5": the form is fixed-width, so check the length. */
        if (!p || p - s != 19 || time_suffix(p, round_up, &adjust) < 0)
                return error_set(e, -EBADMSG, "%s is not an RFC 3339 time (such as 2021-01-12T11:53:27Z)", path);
        t = timegm(&tm);
        if (t == (time_t) -1 || t <= 0)
                return error_set(e, -EBADMSG, "%s is not a time after 1970", path);
        *ret = t + adjust;
        return 0;
}
