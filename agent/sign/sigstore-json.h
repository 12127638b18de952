/* SPDX-License-Identifier: MIT */
#pragma once

/* Reading Sigstore's JSON (the protobuf JSON mapping of protobuf-specs: a trusted root, a
 * bundle, a Rekor entry body) with jansson, strictly: each object's keys come from a fixed
 * list and anything else is an error naming it; bytes are base64 (standard or URL-safe,
 * padded or not); 64-bit integers are decimal strings or JSON integers; timestamps are RFC
 * 3339. Every function fails with -EBADMSG and a message that names the field by its path
 * (`what`, e.g. "tlogEntries[0].inclusionProof"), or -ENOMEM. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "basic/error.h"

#define SIGSTORE_JSON_PATH_MAX 96

/* obj[key], NULL when absent or null (protobuf JSON's null is the default value). */
json_t *sigstore_json_get(json_t *obj, const char *key);

/* v is an object whose keys are all in the NULL-terminated keys. */
int sigstore_json_object(json_t *v, const char *what, const char *const *keys, Error *reterr);

/* obj[key] as a string of at most max bytes, without NUL; NULL when absent and not required.
 * The string belongs to obj. */
int sigstore_json_string(json_t *obj, const char *what, const char *key, bool required, size_t max,
                         const char **ret, Error *reterr);

/* obj[key] as base64-encoded bytes, at most max once decoded, not empty; *ret NULL when absent
 * and not required. *ret is malloc()ed. */
int sigstore_json_bytes(json_t *obj, const char *what, const char *key, bool required, size_t max, uint8_t **ret,
                        size_t *ret_size, Error *reterr);

/* The same for a value v (an array's element) whose path is path. */
int sigstore_json_decode(json_t *v, const char *path, size_t max, uint8_t **ret, size_t *ret_size, Error *reterr);

/* obj[key] as a protobuf int64: a JSON integer or a string of decimal digits with an optional
 * '-'. 0 when absent and not required (protobuf's default). */
int sigstore_json_int64(json_t *obj, const char *what, const char *key, bool required, int64_t *ret,
                        Error *reterr);

/* obj[key] as an array of at most max elements; NULL when absent and not required. */
int sigstore_json_array(json_t *obj, const char *what, const char *key, bool required, size_t max, json_t **ret,
                        Error *reterr);

/* obj[key] as an object with the given keys; NULL when absent and not required. */
int sigstore_json_child(json_t *obj, const char *what, const char *key, bool required, const char *const *keys,
                        json_t **ret, Error *reterr);

/* obj[key] as a protobuf Timestamp, "2021-01-12T11:53:27Z" or with fractional seconds and/or
 * an offset ("+01:00"), in seconds since the epoch. Fractions are rounded down, or up when
 * round_up (a window's start: what is not inside it stays outside). */
int sigstore_json_time(json_t *obj, const char *what, const char *key, bool round_up, time_t *ret, Error *reterr);

/* "what.key", or "what[i]" (key NULL), for messages, into buf (which may be what). */
const char *sigstore_json_path(char buf[static SIGSTORE_JSON_PATH_MAX], const char *what, const char *key, size_t i);
