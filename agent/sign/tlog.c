/* SPDX-License-Identifier: MIT */
/* Transparency-log proofs: the Merkle inclusion proof of RFC 9162 2.1.3.2, the checkpoint (a
 * signed note, C2SP signed-note and tlog-checkpoint) it leads to, and Rekor v1's signed entry
 * timestamp. Nothing here knows what an entry's body means: the caller compares it with the
 * bundle; these functions only prove that the log holds it, and with which key. */

#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "basic/base64.h"
#include "basic/openssl-util.h"
#include "basic/strutil.h"
#include "sign/tlog.h"

#define EM_DASH_SPACE "\xe2\x80\x94 " /* "— ", which opens a signature line */
#define KEY_HINT_SIZE 4 /* TrustedLog.checkpoint_key_hint */

/* ---- Merkle trees (RFC 9162 2.1) ---- */

static bool hash_node(uint8_t prefix, const void *a, size_t a_size, const void *b, size_t b_size,
                      uint8_t ret[static TLOG_HASH_SIZE]) {
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok;

        ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, &prefix, 1) == 1 &&
             EVP_DigestUpdate(ctx, a, a_size) == 1 && (b_size == 0 || EVP_DigestUpdate(ctx, b, b_size) == 1) &&
             EVP_DigestFinal_ex(ctx, ret, NULL) == 1;
        ERR_clear_error();
        return ok;
}

/* The number of hashes in the audit path of leaf index in a tree of size leaves (index <
 * size): the levels below the point where the paths to index and to the last leaf part, and
 * one for each full subtree left of index above it. */
static size_t path_length(uint64_t index, uint64_t size) {
        uint64_t differ = index ^ (size - 1);
        unsigned inner = differ == 0 ? 0 : 64 - (unsigned) __builtin_clzll(differ);

        return inner + (size_t) __builtin_popcountll(inner >= 64 ? 0 : index >> inner);
}

int tlog_verify_inclusion(const void *body, size_t body_size, uint64_t index, uint64_t tree_size,
                          const uint8_t (*hashes)[TLOG_HASH_SIZE], size_t n_hashes, const uint8_t root[TLOG_HASH_SIZE],
                          Error *reterr) {
        uint8_t r[TLOG_HASH_SIZE];
        uint64_t fn = index, sn;
        size_t expected;
        char hex[2 * TLOG_HASH_SIZE + 1];

        if ((!body && body_size > 0) || (!hashes && n_hashes > 0) || !root)
                return error_set(reterr, -EINVAL, "inclusion proof: missing argument");
        if (body_size > TLOG_BODY_MAX)
                return error_set(reterr, -EINVAL, "inclusion proof: the entry is %zu bytes, more than %u", body_size,
                                 TLOG_BODY_MAX);
        if (index >= tree_size)
                return error_set(reterr, -EINVAL, "inclusion proof: leaf index %" PRIu64 " lies outside a tree of %" PRIu64
                                 " leaves", index, tree_size);
        expected = path_length(index, tree_size);
        if (n_hashes != expected)
                return error_set(reterr, -EINVAL, "inclusion proof: %zu hashes, but leaf %" PRIu64 " of a tree of %" PRIu64
                                 " leaves has a path of %zu", n_hashes, index, tree_size, expected);
        if (!hash_node(0x00, body, body_size, NULL, 0, r))
                return error_set(reterr, -ENOMEM, "inclusion proof: cannot compute SHA-256");

        /* RFC 9162 2.1.3.2, step by step. */
        sn = tree_size - 1;
        for (size_t i = 0; i < n_hashes; i++) {
                bool ok;

                if (sn == 0)
                        return error_set(reterr, -EINVAL, "inclusion proof: the path is longer than the tree is high");
                if ((fn & 1) || fn == sn) {
                        ok = hash_node(0x01, hashes[i], TLOG_HASH_SIZE, r, TLOG_HASH_SIZE, r);
                        while (!(fn & 1) && fn != 0) {
                                fn >>= 1;
                                sn >>= 1;
                        }
                } else
                        ok = hash_node(0x01, r, TLOG_HASH_SIZE, hashes[i], TLOG_HASH_SIZE, r);
                if (!ok)
                        return error_set(reterr, -ENOMEM, "inclusion proof: cannot compute SHA-256");
                fn >>= 1;
                sn >>= 1;
        }
        if (sn != 0)
                return error_set(reterr, -EINVAL, "inclusion proof: the path is shorter than the tree is high");
        if (memcmp(r, root, TLOG_HASH_SIZE) != 0)
                return error_set(reterr, -EPERM,
                                 "inclusion proof: the path from leaf %" PRIu64 " leads to root %s, not to the proof's root",
                                 index, hex_encode(r, TLOG_HASH_SIZE, hex));
        return 0;
}

/* ---- Signatures by a log's key ---- */

/* ECDSA with SHA-256 (and, for P-384 and P-521 keys, the curve's own hash: keys of those sizes
 * may be declared PKIX_ECDSA_P384_SHA_384), RSA PKCS#1 v1.5 with SHA-256, or pure Ed25519. */
static bool log_key_verify(EVP_PKEY *key, const void *data, size_t size, const void *sig, size_t sig_size) {
        const char *mds[2] = { "SHA256" };
        char group[32] = "";
        bool ok = false;

        switch (EVP_PKEY_get_base_id(key)) {
        case EVP_PKEY_EC:
                if (EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) == 1)
                        mds[1] = streq(group, "secp384r1") ? "SHA384" : streq(group, "secp521r1") ? "SHA512" : NULL;
                break;
        case EVP_PKEY_RSA:
                break;
        case EVP_PKEY_ED25519:
                mds[0] = NULL;
                break;
        default:
                return false;
        }
        for (size_t i = 0; i < ELEMENTSOF(mds) && !ok; i++) {
                _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = NULL;

                if (i > 0 && !mds[i])
                        break;
                ctx = EVP_MD_CTX_new();
                ok = ctx && EVP_DigestVerifyInit_ex(ctx, NULL, mds[i], NULL, NULL, key, NULL) == 1 &&
                     EVP_DigestVerify(ctx, sig, sig_size, data, size) == 1;
        }
        ERR_clear_error();
        return ok;
}

/* ---- Checkpoints ---- */

typedef struct Checkpoint {
        const char *text; /* the signed note text: up to and including the newline before the blank line */
        size_t text_size;
        const char *sigs; /* the signature lines */
        size_t sigs_size;
        uint64_t tree_size;
        uint8_t root[TLOG_HASH_SIZE];
} Checkpoint;

/* The line at *p (before end), without its newline; *p moves past it. false: no newline. */
static bool next_line(const char **p, const char *end, const char **ret, size_t *ret_size) {
        const char *nl = memchr(*p, '\n', (size_t) (end - *p));

        if (!nl)
                return false;
        *ret = *p;
        *ret_size = (size_t) (nl - *p);
        *p = nl + 1;
        return true;
}

/* A decimal without sign, spaces or leading zeros, as the checkpoint format writes it. */
static bool parse_u64(const char *s, size_t n, uint64_t *ret) {
        uint64_t v = 0;

        if (n == 0 || n > 20 || (s[0] == '0' && n > 1))
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (uint64_t) (s[i] - '0')) / 10)
                        return false;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        *ret = v;
        return true;
}

/* The body: origin, tree size, root hash, then extension lines; each is non-empty (a blank
 * line ends the body). */
static int checkpoint_parse_body(Checkpoint *c, Error *e) {
        const char *p = c->text, *end = c->text + c->text_size, *line;
        _cleanup_free_ uint8_t *root = NULL;
        size_t n, root_size = 0;

        if (!next_line(&p, end, &line, &n) || n == 0)
                return error_set(e, -EBADMSG, "checkpoint: no origin line");
        if (!next_line(&p, end, &line, &n))
                return error_set(e, -EBADMSG, "checkpoint: no tree size line");
        if (!parse_u64(line, n, &c->tree_size))
                return error_set(e, -EBADMSG, "checkpoint: the tree size line is not a decimal number");
        if (!next_line(&p, end, &line, &n))
                return error_set(e, -EBADMSG, "checkpoint: no root hash line");
        if (base64_decode(line, n, 0, &root, &root_size) < 0 || root_size != TLOG_HASH_SIZE)
                return error_set(e, -EBADMSG, "checkpoint: the root hash line is not the base64 of %d bytes",
                                 TLOG_HASH_SIZE);
        memcpy(c->root, root, TLOG_HASH_SIZE);
        return 0;
}

static int checkpoint_parse(const char *envelope, size_t size, Checkpoint *ret, Error *e) {
        const char *blank;
        Checkpoint c = {};
        int r;

        if (!envelope || size == 0)
                return error_set(e, -EBADMSG, "checkpoint: empty");
        if (size > TLOG_CHECKPOINT_MAX)
                return error_set(e, -EBADMSG, "checkpoint: %zu bytes, more than %u", size, TLOG_CHECKPOINT_MAX);
        /* Signed notes are text: no control character but the newline (the em dash is UTF-8). */
        for (size_t i = 0; i < size; i++)
                if (((unsigned char) envelope[i] < 0x20 && envelope[i] != '\n') || envelope[i] == 0x7f)
                        return error_set(e, -EBADMSG, "checkpoint: a control character at byte %zu", i);
        blank = memmem(envelope, size, "\n\n", 2);
        if (!blank)
                return error_set(e, -EBADMSG, "checkpoint: no blank line between the note and its signatures");
        c.text = envelope;
        c.text_size = (size_t) (blank - envelope) + 1;
        c.sigs = blank + 2;
        c.sigs_size = size - c.text_size - 1;
        if (c.sigs_size == 0)
                return error_set(e, -EBADMSG, "checkpoint: no signature line");
        if (c.sigs[c.sigs_size - 1] != '\n')
                return error_set(e, -EBADMSG, "checkpoint: the last signature line does not end with a newline");
        r = checkpoint_parse_body(&c, e);
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}

/* One signature line, "— <name> <base64(key hint || signature)>", without its newline: the
 * decoded bytes. */
static int signature_line_parse(const char *line, size_t n, uint8_t **ret, size_t *ret_size, Error *e) {
        const size_t dash = strlen(EM_DASH_SPACE);
        const char *name, *space;
        int r;

        if (n < dash || memcmp(line, EM_DASH_SPACE, dash) != 0)
                return error_set(e, -EBADMSG, "checkpoint: a signature line does not begin with an em dash and a space");
        name = line + dash;
        space = memchr(name, ' ', n - dash);
        if (!space || space == name)
                return error_set(e, -EBADMSG, "checkpoint: a signature line without a key name");
        if ((size_t) (space + 1 - line) >= n || memchr(space + 1, ' ', n - (size_t) (space + 1 - line)))
                return error_set(e, -EBADMSG, "checkpoint: a signature line is not '— <name> <signature>'");
        r = base64_decode(space + 1, n - (size_t) (space + 1 - line), 0, ret, ret_size);
        if (r == -ENOMEM)
                return error_set(e, r, "out of memory");
        if (r < 0 || *ret_size <= KEY_HINT_SIZE) {
                free(*ret);
                *ret = NULL;
                return error_set(e, -EBADMSG, "checkpoint: a signature line's signature is not base64 of a key hint "
                                 "and a signature");
        }
        return 0;
}

/* Whether a signature line with log's key hint verifies; every line is parsed, so that a
 * malformed note is refused whatever its order. */
static int checkpoint_find_signature(const Checkpoint *c, const TrustedLog *log, Error *e) {
        const char *p = c->sigs, *end = c->sigs + c->sigs_size, *line;
        size_t n, lines = 0, hinted = 0;
        char hint[2 * KEY_HINT_SIZE + 1];
        bool verified = false;
        int r;

        while (next_line(&p, end, &line, &n)) {
                _cleanup_free_ uint8_t *raw = NULL;
                size_t raw_size = 0;

                if (++lines > TLOG_CHECKPOINT_SIGNATURES_MAX)
                        return error_set(e, -EBADMSG, "checkpoint: more than %u signature lines",
                                         TLOG_CHECKPOINT_SIGNATURES_MAX);
                r = signature_line_parse(line, n, &raw, &raw_size, e);
                if (r < 0)
                        return r;
                if (verified || memcmp(raw, log->checkpoint_key_hint, KEY_HINT_SIZE) != 0)
                        continue; /* another signer's (a witness's cosignature) */
                hinted++;
                verified = log_key_verify(log->key, c->text, c->text_size, raw + KEY_HINT_SIZE, raw_size - KEY_HINT_SIZE);
        }
        if (verified)
                return 0;
        if (hinted == 0)
                return error_set(e, -EPERM, "checkpoint: none of its %zu signature lines is by the key of log '%s' "
                                 "(key hint %s)", lines, strna(log->base_url),
                                 hex_encode(log->checkpoint_key_hint, KEY_HINT_SIZE, hint));
        return error_set(e, -EPERM, "checkpoint: its signature by the key of log '%s' does not verify", strna(log->base_url));
}

int tlog_verify_checkpoint(const char *envelope, size_t size, const TrustedLog *log, uint64_t tree_size,
                           const uint8_t root[TLOG_HASH_SIZE], Error *reterr) {
        char hex[2 * TLOG_HASH_SIZE + 1];
        Checkpoint c;
        int r;

        if (!log || !log->key || !root)
                return error_set(reterr, -EINVAL, "checkpoint: missing argument");
        r = checkpoint_parse(envelope, size, &c, reterr);
        if (r < 0)
                return r;
        r = checkpoint_find_signature(&c, log, reterr);
        if (r < 0)
                return r;
        if (c.tree_size != tree_size)
                return error_set(reterr, -EPERM, "checkpoint: names a tree of %" PRIu64 " leaves, the proof one of %" PRIu64,
                                 c.tree_size, tree_size);
        if (memcmp(c.root, root, TLOG_HASH_SIZE) != 0)
                return error_set(reterr, -EPERM, "checkpoint: names root %s, not the proof's root",
                                 hex_encode(c.root, TLOG_HASH_SIZE, hex));
        return 0;
}

/* ---- Rekor v1's signed entry timestamp ---- */

/* {"body":"<base64>","integratedTime":N,"logID":"<hex>","logIndex":N}: keys in RFC 8785
 * order, no spaces; base64 and hex need no escaping. */
static int set_payload(const TrustedLog *log, const void *body, size_t body_size, int64_t integrated_time,
                       int64_t log_index, char **ret, size_t *ret_size) {
        size_t b64_size = 4 * ((body_size + 2) / 3), size = b64_size + 2 * sizeof(log->key_id) + 128;
        _cleanup_free_ char *s = malloc(size);
        char hex[2 * sizeof(log->key_id) + 1];
        int n;

        if (!s)
                return -ENOMEM;
        n = snprintf(s, size, "{\"body\":\"");
        if (EVP_EncodeBlock((unsigned char *) s + n, body, (int) body_size) != (int) b64_size)
                return -ENOMEM;
        n += (int) b64_size;
        n += snprintf(s + n, size - (size_t) n, "\",\"integratedTime\":%" PRId64 ",\"logID\":\"%s\",\"logIndex\":%" PRId64 "}",
                      integrated_time, hex_encode(log->key_id, sizeof(log->key_id), hex), log_index);
        if (n < 0 || (size_t) n >= size)
                return -ENOMEM;
        *ret_size = (size_t) n;
        *ret = TAKE_PTR(s);
        return 0;
}

int tlog_verify_set(const TrustedLog *log, const void *body, size_t body_size, int64_t integrated_time,
                    int64_t log_index, const void *set, size_t set_size, Error *reterr) {
        _cleanup_free_ char *payload = NULL;
        size_t payload_size = 0;

        if (!log || !log->key || (!body && body_size > 0))
                return error_set(reterr, -EINVAL, "signed entry timestamp: missing argument");
        if (body_size > TLOG_BODY_MAX)
                return error_set(reterr, -EINVAL, "signed entry timestamp: the entry is %zu bytes, more than %u",
                                 body_size, TLOG_BODY_MAX);
        if (integrated_time < 0 || log_index < 0)
                return error_set(reterr, -EINVAL, "signed entry timestamp: a negative integrated time or log index");
        if (!set || set_size == 0 || set_size > TLOG_SET_MAX)
                return error_set(reterr, -EPERM, "signed entry timestamp: empty or longer than %u bytes", TLOG_SET_MAX);
        if (!trusted_window_contains(log->valid_from, log->valid_until, (time_t) integrated_time))
                return error_set(reterr, -EPERM, "signed entry timestamp: integrated time %" PRId64
                                 " lies outside the window in which the trusted root trusts log '%s'",
                                 integrated_time, strna(log->base_url));
        if (set_payload(log, body, body_size, integrated_time, log_index, &payload, &payload_size) < 0)
                return error_set(reterr, -ENOMEM, "out of memory");
        if (!log_key_verify(log->key, payload, payload_size, set, set_size))
                return error_set(reterr, -EPERM, "signed entry timestamp: does not verify with the key of log '%s'",
                                 strna(log->base_url));
        return 0;
}
