/* SPDX-License-Identifier: MIT */
/* Cosign's classic signatures (the simple-signing layers of a `.sig` manifest), the tally of
 * keys for a threshold, and what cosign-dsse.c shares: base64, capped JSON, PAE. The order of
 * the checks on a signature: the caller's arguments, the media type, the sizes, the form of
 * the signature, the signature itself, and only then the content of the payload it covers. */

#include "basic/base64.h"
#include "sign/cosign.h"

#define SHA256_PREFIX "sha256:"

bool cosign_image_digest_is_valid(const char *s) {
        if (!s || strncmp(s, SHA256_PREFIX, strlen(SHA256_PREFIX)) != 0)
                return false;
        s += strlen(SHA256_PREFIX);
        if (strlen(s) != 64)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

const char *cosign_printable(const char *s, char buf[static COSIGN_PRINTABLE_SIZE]) {
        size_t i;

        if (!s)
                return "(null)";
        for (i = 0; s[i] && i < COSIGN_PRINTABLE_SIZE - 1; i++)
                buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
        buf[i] = 0;
        return buf;
}

/* ---- Base64 ---- */

/* Standard or URL-safe alphabet, padding optional, folded lines allowed (Go's decoders
 * accept what cosign's producers write). */
int cosign_base64_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_size) {
        return base64_decode(s, n, BASE64_PADDING_OPTIONAL | BASE64_URL_ALPHABET, ret, ret_size);
}

/* ---- JSON ---- */

/* Nesting and tokens, counted on the text: every value or key but the first follows one of
 * '[', '{', ',' or ':', so their number bounds what jansson would allocate. Strings are
 * skipped with their escapes; whether the text is JSON at all is jansson's to say. */
static int json_shape_check(const char *p, size_t n, unsigned max_depth, size_t max_tokens, const char *what,
                            Error *e) {
        size_t depth = 0, tokens = 1;
        bool in_string = false;

        for (size_t i = 0; i < n; i++) {
                char c = p[i];

                if (in_string) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_string = false;
                        continue;
                }
                switch (c) {
                case '"':
                        in_string = true;
                        break;
                case '[':
                case '{':
                        if (++depth > max_depth)
                                return error_set(e, -EBADMSG, "%s: JSON nested deeper than %u levels", what, max_depth);
                        tokens++;
                        break;
                case ']':
                case '}':
                        if (depth > 0)
                                depth--;
                        break;
                case ',':
                case ':':
                        tokens++;
                        break;
                }
                if (tokens > max_tokens)
                        return error_set(e, -EBADMSG, "%s: JSON with more than %zu values", what, max_tokens);
        }
        return 0;
}

int cosign_json_parse(const void *data, size_t size, unsigned max_depth, size_t max_tokens, const char *what,
                      json_t **ret, Error *e) {
        json_error_t jerr;
        json_t *j;
        int r;

        r = json_shape_check(data, size, max_depth, max_tokens, what, e);
        if (r < 0)
                return r;
        j = json_loadb(data, size, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return error_set(e, -EBADMSG, "%s is not valid JSON: %s (line %d, column %d)", what, jerr.text, jerr.line,
                                 jerr.column);
        *ret = j;
        return 0;
}

int cosign_dsse_pae(const char *type, const void *payload, size_t size, uint8_t **ret, size_t *ret_size) {
        char head[64];
        size_t type_size = strlen(type), head_size, total;
        int n;
        uint8_t *p;

        /* "DSSEv1 <len(type)> " + type + " <len(payload)> " + payload */
        n = snprintf(head, sizeof(head), "DSSEv1 %zu ", type_size);
        if (n < 0 || (size_t) n >= sizeof(head))
                return -ENOMEM;
        head_size = (size_t) n;
        total = head_size + type_size + 1 + 20 + 1 + size;
        p = malloc(total);
        if (!p)
                return -ENOMEM;
        memcpy(p, head, head_size);
        memcpy(p + head_size, type, type_size);
        n = snprintf(head, sizeof(head), " %zu ", size);
        if (n < 0 || (size_t) n >= sizeof(head)) {
                free(p);
                return -ENOMEM;
        }
        memcpy(p + head_size + type_size, head, (size_t) n);
        memcpy(p + head_size + type_size + (size_t) n, payload, size);
        *ret = p;
        *ret_size = head_size + type_size + (size_t) n + size;
        return 0;
}

/* ---- Simple signing ---- */

/* The payload, once its signature has verified: {"critical": {"identity": {...}, "image":
 * {"docker-manifest-digest": D}, "type": T}, "optional": ...}. */
int cosign_check_simplesigning_payload(const char *image_digest, const void *payload, size_t size, Error *e) {
        json_auto_t *root = NULL;
        json_t *critical, *image;
        const char *type, *digest;
        char buf[COSIGN_PRINTABLE_SIZE];
        int r;

        r = cosign_json_parse(payload, size, COSIGN_SIGNED_JSON_DEPTH_MAX, COSIGN_SIGNED_JSON_TOKENS_MAX,
                              "the signed payload", &root, e);
        if (r < 0)
                return r;
        critical = json_object_get(root, "critical");
        if (!json_is_object(critical))
                return error_set(e, -EBADMSG, "the signed payload has no \"critical\" object");
        type = json_string_value(json_object_get(critical, "type"));
        if (!type)
                return error_set(e, -EBADMSG, "the signed payload has no critical.type");
        if (!streq(type, COSIGN_SIMPLESIGNING_TYPE))
                return error_set(e, -EBADMSG, "the signed payload is of type '%s', not '" COSIGN_SIMPLESIGNING_TYPE "'",
                                 cosign_printable(type, buf));
        image = json_object_get(critical, "image");
        digest = json_string_value(json_object_get(image, "docker-manifest-digest"));
        if (!digest)
                return error_set(e, -EBADMSG, "the signed payload has no critical.image.docker-manifest-digest");
        if (!streq(digest, image_digest))
                return error_set(e, -EPERM, "the payload names digest %s, not the image's %s", cosign_printable(digest, buf),
                                 image_digest);
        return 0;
}

int cosign_verify_simplesigning(const CosignKeyring *keys, const char *image_digest, const char *layer_media_type,
                                const void *payload, size_t payload_size, const char *signature_b64,
                                size_t *ret_key_index, Error *e) {
        _cleanup_free_ uint8_t *sig = NULL;
        char buf[COSIGN_PRINTABLE_SIZE];
        size_t sig_size = 0, n, index;
        int r;

        if (!cosign_image_digest_is_valid(image_digest))
                return error_set(e, -EINVAL, "'%s' is not an image digest (sha256: and 64 lowercase hex digits)",
                                 cosign_printable(image_digest, buf));
        if (!keys)
                return error_set(e, -EINVAL, "no keyring");
        if (!layer_media_type || !streq(layer_media_type, COSIGN_MEDIA_TYPE_SIMPLESIGNING))
                return error_set(e, -EMEDIUMTYPE,
                                 "the layer's media type is '%s', not a simple-signing signature (" COSIGN_MEDIA_TYPE_SIMPLESIGNING ")",
                                 cosign_printable(layer_media_type, buf));
        if (!payload || payload_size == 0)
                return error_set(e, -EBADMSG, "the signature layer's payload is empty");
        if (payload_size > COSIGN_PAYLOAD_MAX)
                return error_set(e, -EFBIG, "the signature layer's payload is %zu bytes, more than %u", payload_size,
                                 COSIGN_PAYLOAD_MAX);
        if (!signature_b64)
                return error_set(e, -EBADMSG, "the layer has no " COSIGN_ANNOTATION_SIGNATURE " annotation");
        n = strnlen(signature_b64, COSIGN_SIGNATURE_B64_MAX + 1);
        if (n > COSIGN_SIGNATURE_B64_MAX)
                return error_set(e, -EFBIG, "the " COSIGN_ANNOTATION_SIGNATURE " annotation is larger than %u bytes",
                                 COSIGN_SIGNATURE_B64_MAX);
        r = cosign_base64_decode(signature_b64, n, &sig, &sig_size);
        if (r == -ENOMEM)
                return error_set(e, r, "out of memory");
        if (r < 0)
                return error_set(e, r, "the " COSIGN_ANNOTATION_SIGNATURE " annotation is not valid base64");
        if (sig_size == 0)
                return error_set(e, -EBADMSG, "the " COSIGN_ANNOTATION_SIGNATURE " annotation is empty");

        if (cosign_keyring_verify(keys, payload, payload_size, sig, sig_size, &index) < 0)
                return error_set(e, -EPERM,
                                 "the signature does not verify with any of the %zu trusted keys: not signed by a trusted "
                                 "key, or the payload or signature was changed",
                                 cosign_keyring_size(keys));
        r = cosign_check_simplesigning_payload(image_digest, payload, payload_size, e);
        if (r < 0)
                return r;
        if (ret_key_index)
                *ret_key_index = index;
        return 0;
}

/* ---- Predicates and the tally ---- */

static bool is_versioned(const char *s, const char *base) {
        size_t n = strlen(base);

        if (strncmp(s, base, n) != 0)
                return false;
        s += n;
        if (*s == 0)
                return true;
        if (strncmp(s, "/v", 2) != 0)
                return false;
        /* One or more numbers separated by single dots. */
        for (s += 2;;) {
                if (*s < '0' || *s > '9')
                        return false;
                while (*s >= '0' && *s <= '9')
                        s++;
                if (*s == 0)
                        return true;
                if (*s != '.')
                        return false;
                s++;
        }
}

bool cosign_predicate_is_sbom(const char *predicate_type) {
        return predicate_type &&
               (is_versioned(predicate_type, "https://spdx.dev/Document") ||
                is_versioned(predicate_type, "https://cyclonedx.org/bom"));
}

void cosign_tally_init(CosignTally *t, const CosignKeyring *k, size_t n_identities) {
        *t = (CosignTally) { .keys = MIN(cosign_keyring_size(k), (size_t) COSIGN_KEYRING_MAX),
                             .identities = MIN(n_identities, (size_t) 64) };
}

void cosign_tally_add_identity(CosignTally *t, size_t identity_index) {
        if (identity_index < t->identities)
                t->seen_identities |= UINT64_C(1) << identity_index;
}

bool cosign_tally_has_identity(const CosignTally *t, size_t identity_index) {
        return identity_index < t->identities && (t->seen_identities >> identity_index & 1);
}

void cosign_tally_add(CosignTally *t, size_t key_index) {
        if (key_index < t->keys)
                t->seen |= UINT64_C(1) << key_index;
}

bool cosign_tally_has(const CosignTally *t, size_t key_index) {
        return key_index < t->keys && (t->seen >> key_index & 1);
}

size_t cosign_tally_count(const CosignTally *t) {
        return (size_t) __builtin_popcountll(t->seen) + (size_t) __builtin_popcountll(t->seen_identities);
}
