/* SPDX-License-Identifier: MIT */
/* Transparency-log proofs (agent/sign/tlog.c) against the Sigstore conformance vectors: real
 * Rekor v1 and v2 inclusion proofs, checkpoints (ECDSA and Ed25519, with witness cosignatures)
 * and signed entry timestamps; then each of them tampered with, which must fail; a checkpoint
 * key (checkpointKeyId) other than the log id picks the signature line. Inclusion
 * proofs also against every leaf of small trees built here from RFC 9162's definitions. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "sign/sigstore-root.h"
#include "sign/tlog.h"
#include "sigstore-vectors.h"

typedef struct Entry {
        json_t *bundle;
        uint8_t *body, *set;
        size_t body_size, set_size, n_hashes;
        int64_t log_index, integrated_time;
        uint64_t proof_index, tree_size;
        uint8_t (*hashes)[TLOG_HASH_SIZE];
        uint8_t root[TLOG_HASH_SIZE];
        char *envelope, *key_id;
        VecRoot trust;
        const TrustedLog *log;
} Entry;

static void entry_load(const char *name, Entry *ret) {
        json_t *e, *proof, *h;
        _cleanup_free_ uint8_t *root = NULL;
        size_t i, size;

        *ret = (Entry) { .bundle = vec_case_bundle(name) };
        e = vec_get(ret->bundle, "verificationMaterial.tlogEntries.0");
        assert_non_null(e);
        ret->body = vec_get_b64(e, "canonicalizedBody", &ret->body_size);
        ret->log_index = vec_int(e, "logIndex");
        if (vec_get(e, "integratedTime"))
                ret->integrated_time = vec_int(e, "integratedTime");
        if (vec_get(e, "inclusionPromise.signedEntryTimestamp"))
                ret->set = vec_get_b64(e, "inclusionPromise.signedEntryTimestamp", &ret->set_size);
        ret->key_id = strdup(vec_str(e, "logId.keyId"));
        vec_case_root(name, &ret->trust);
        ret->log = vec_find_log(&ret->trust, ret->key_id);

        proof = json_object_get(e, "inclusionProof");
        if (!proof)
                return;
        ret->proof_index = (uint64_t) vec_int(proof, "logIndex");
        ret->tree_size = (uint64_t) vec_int(proof, "treeSize");
        root = vec_get_b64(proof, "rootHash", &size);
        assert_int_equal(size, TLOG_HASH_SIZE);
        memcpy(ret->root, root, TLOG_HASH_SIZE);
        ret->n_hashes = json_array_size(json_object_get(proof, "hashes"));
        ret->hashes = calloc(ret->n_hashes + 1, TLOG_HASH_SIZE);
        json_array_foreach(json_object_get(proof, "hashes"), i, h) {
                _cleanup_free_ uint8_t *raw = vec_b64(json_string_value(h), &size);

                assert_int_equal(size, TLOG_HASH_SIZE);
                memcpy(ret->hashes[i], raw, TLOG_HASH_SIZE);
        }
        ret->envelope = strdup(vec_str(proof, "checkpoint.envelope"));
}

static void entry_done(Entry *e) {
        json_decref(e->bundle);
        free(e->body);
        free(e->set);
        free(e->hashes);
        free(e->envelope);
        free(e->key_id);
        vec_root_done(&e->trust);
}

static int inclusion(const Entry *e, Error *err) {
        return tlog_verify_inclusion(e->body, e->body_size, e->proof_index, e->tree_size,
                                     (const uint8_t(*)[TLOG_HASH_SIZE]) e->hashes, e->n_hashes, e->root, err);
}

static int checkpoint(const Entry *e, const char *envelope, size_t size, const TrustedLog *log, Error *err) {
        return tlog_verify_checkpoint(envelope, size, log, e->tree_size, e->root, err);
}

static int set(const Entry *e, const TrustedLog *log, Error *err) {
        return tlog_verify_set(log, e->body, e->body_size, e->integrated_time, e->log_index, e->set, e->set_size, err);
}

/* Rekor v1 (production, a shard's proof; a custom log of one leaf) and Rekor v2 (staging). */
static const char *const good_cases[] = {
        "happy-path-v0.1",
        "happy-path-v0.3",
        "intoto-with-custom-trust-root",
        "managed-key-and-trusted-root",
        "rekor2-checkpoint-origin-not-first",
        "rekor2-timestamp-without-embedded-cert",
        "rekor2-timestamp-with-expired-cert-chain",
};

static void test_inclusion_vectors(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(good_cases); i++) {
                Error err = {};
                Entry e;

                entry_load(good_cases[i], &e);
                if (inclusion(&e, &err) != 0)
                        fail_msg("%s: %s", good_cases[i], err.message);
                entry_done(&e);
        }
}

static void test_inclusion_corrupted_case(void **state) {
        Error err = {};
        Entry e;

        entry_load("inclusion-proof-corrupted-hash_fail", &e);
        assert_int_equal(inclusion(&e, &err), -EPERM);
        assert_non_null(strstr(err.message, "leads to root"));
        entry_done(&e);
}

static void test_inclusion_tampered(void **state) {
        uint8_t saved[TLOG_HASH_SIZE];
        Error err = {};
        Entry e;

        entry_load("happy-path-v0.3", &e);
        assert_true(e.n_hashes > 2);
        /* Each bit of each hash matters. */
        for (size_t i = 0; i < e.n_hashes; i++)
                for (size_t b = 0; b < TLOG_HASH_SIZE * 8; b += 37) {
                        e.hashes[i][b / 8] ^= (uint8_t) (1u << (b % 8));
                        assert_int_equal(inclusion(&e, NULL), -EPERM);
                        e.hashes[i][b / 8] ^= (uint8_t) (1u << (b % 8));
                }
        e.root[31] ^= 1;
        assert_int_equal(inclusion(&e, NULL), -EPERM);
        e.root[31] ^= 1;
        e.body[e.body_size / 2] ^= 0x20;
        assert_int_equal(inclusion(&e, NULL), -EPERM);
        e.body[e.body_size / 2] ^= 0x20;
        memcpy(saved, e.hashes[0], TLOG_HASH_SIZE);
        memcpy(e.hashes[0], e.hashes[1], TLOG_HASH_SIZE);
        memcpy(e.hashes[1], saved, TLOG_HASH_SIZE);
        assert_int_equal(inclusion(&e, NULL), -EPERM);
        memcpy(e.hashes[1], e.hashes[0], TLOG_HASH_SIZE);
        memcpy(e.hashes[0], saved, TLOG_HASH_SIZE);
        assert_int_equal(inclusion(&e, &err), 0);

        /* Another leaf, another tree, a path too short or too long. */
        e.proof_index--;
        assert_true(inclusion(&e, NULL) < 0);
        e.proof_index += 2;
        assert_int_equal(inclusion(&e, &err), -EINVAL);
        assert_non_null(strstr(err.message, "outside a tree"));
        e.proof_index--;
        e.tree_size++;
        assert_true(inclusion(&e, NULL) < 0);
        e.tree_size--;
        e.n_hashes--;
        assert_int_equal(inclusion(&e, &err), -EINVAL);
        assert_non_null(strstr(err.message, "has a path of"));
        e.n_hashes += 2;
        assert_int_equal(inclusion(&e, NULL), -EINVAL);
        e.n_hashes--;
        assert_int_equal(tlog_verify_inclusion(e.body, e.body_size, 0, 0, NULL, 0, e.root, NULL), -EINVAL);
        assert_int_equal(tlog_verify_inclusion(e.body, TLOG_BODY_MAX + 1u, e.proof_index, e.tree_size,
                                               (const uint8_t(*)[TLOG_HASH_SIZE]) e.hashes, e.n_hashes, e.root, NULL),
                         -EINVAL);
        assert_int_equal(inclusion(&e, NULL), 0);
        entry_done(&e);
}

/* RFC 9162 2.1.1 and 2.1.3.1, by their recursive definitions. */
static void sha(const void *a, size_t an, const void *b, size_t bn, const void *c, size_t cn, uint8_t ret[32]) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();

        assert_true(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, a, an) &&
                    EVP_DigestUpdate(ctx, b, bn) && EVP_DigestUpdate(ctx, c, cn) && EVP_DigestFinal_ex(ctx, ret, NULL));
        EVP_MD_CTX_free(ctx);
}

static uint64_t split_point(uint64_t n) {
        uint64_t k = 1;

        while (k * 2 < n)
                k *= 2;
        return k;
}

static void mth(const uint8_t leaves[][1], uint64_t n, uint8_t ret[32]) {
        uint8_t l[32], r[32];
        uint64_t k;

        if (n == 1) {
                sha("\0", 1, leaves[0], 1, "", 0, ret);
                return;
        }
        k = split_point(n);
        mth(leaves, k, l);
        mth(leaves + k, n - k, r);
        sha("\1", 1, l, 32, r, 32, ret);
}

static size_t path(const uint8_t leaves[][1], uint64_t m, uint64_t n, uint8_t ret[][32]) {
        uint64_t k;
        size_t len;

        if (n == 1)
                return 0;
        k = split_point(n);
        if (m < k) {
                len = path(leaves, m, k, ret);
                mth(leaves + k, n - k, ret[len]);
        } else {
                len = path(leaves + k, m - k, n - k, ret);
                mth(leaves, k, ret[len]);
        }
        return len + 1;
}

static void test_inclusion_small_trees(void **state) {
        uint8_t leaves[70][1], root[32], hashes[16][32];

        for (size_t i = 0; i < ELEMENTSOF(leaves); i++)
                leaves[i][0] = (uint8_t) i;
        for (uint64_t n = 1; n <= ELEMENTSOF(leaves); n++) {
                mth(leaves, n, root);
                for (uint64_t m = 0; m < n; m++) {
                        size_t len = path(leaves, m, n, hashes);
                        Error err = {};

                        if (tlog_verify_inclusion(leaves[m], 1, m, n, (const uint8_t(*)[32]) hashes, len, root, &err) != 0)
                                fail_msg("leaf %" PRIu64 " of %" PRIu64 ": %s", m, n, err.message);
                        /* The same path for the leaf beside it, or for another leaf's data. */
                        if (m + 1 < n)
                                assert_true(tlog_verify_inclusion(leaves[m], 1, m + 1, n, (const uint8_t(*)[32]) hashes,
                                                                  len, root, NULL) < 0);
                        assert_int_equal(tlog_verify_inclusion(leaves[(m + 1) % ELEMENTSOF(leaves)], 1, m, n,
                                                               (const uint8_t(*)[32]) hashes, len, root, NULL),
                                         -EPERM);
                }
        }
}

static void test_checkpoint_vectors(void **state) {
        static const char *const cosigned[] = {
                "rekor2-checkpoint-multiple-cosigs",
                "rekor2-checkpoint-origin-not-first",
                "rekor2-checkpoint-two-sigs-from-origin",
        };

        for (size_t i = 0; i < ELEMENTSOF(good_cases) + ELEMENTSOF(cosigned); i++) {
                const char *name = i < ELEMENTSOF(good_cases) ? good_cases[i] : cosigned[i - ELEMENTSOF(good_cases)];
                Error err = {};
                Entry e;

                entry_load(name, &e);
                if (checkpoint(&e, e.envelope, strlen(e.envelope), e.log, &err) != 0)
                        fail_msg("%s: %s", name, err.message);
                entry_done(&e);
        }
}

static void expect_case(const char *name, int expected, const char *message) {
        Error err = {};
        Entry e;

        entry_load(name, &e);
        assert_int_equal(checkpoint(&e, e.envelope, strlen(e.envelope), e.log, &err), expected);
        if (!strstr(err.message, message))
                fail_msg("%s: '%s' does not say '%s'", name, err.message, message);
        entry_done(&e);
}

static void test_checkpoint_fail_cases(void **state) {
        expect_case("checkpoint-bad-keyhint_fail", -EPERM, "none of its 1 signature lines is by the key");
        expect_case("rekor2-checkpoint-missing-log-signature_fail", -EBADMSG, "no signature line");
        expect_case("rekor2-checkpoint-missing-root-hash_fail", -EBADMSG, "root hash");
}

/* The envelope with s replaced by with (same length), which must occur in it. */
static char *replaced(const char *envelope, const char *s, const char *with) {
        char *copy = strdup(envelope), *at = strstr(copy, s);

        assert_non_null(at);
        assert_int_equal(strlen(s), strlen(with));
        memcpy(at, with, strlen(with));
        return copy;
}

/* A character of the signature line of log (after its key hint), changed. */
static char *signature_flipped(const char *envelope, const char *name, size_t offset) {
        char *copy = strdup(envelope), line[128], *at;

        (void) snprintf(line, sizeof(line), "\n\xe2\x80\x94 %s ", name);
        at = strstr(copy, line);
        assert_non_null(at);
        at += strlen(line) + 8 + offset; /* past the key hint's 6 characters, and some */
        *at = *at == 'A' ? 'B' : 'A';
        return copy;
}

static void test_checkpoint_tampered(void **state) {
        _cleanup_free_ char *sig = NULL, *origin = NULL, *size = NULL, *zero = NULL, *cr = NULL, *dash = NULL;
        TrustedLog other;
        Error err = {};
        Entry e;

        entry_load("happy-path-v0.1", &e);
        sig = signature_flipped(e.envelope, "rekor.sigstore.dev", 10);
        assert_int_equal(checkpoint(&e, sig, strlen(sig), e.log, &err), -EPERM);
        assert_non_null(strstr(err.message, "does not verify"));
        origin = replaced(e.envelope, "rekor.sigstore.dev - ", "rekor.sigstore.dev + ");
        assert_int_equal(checkpoint(&e, origin, strlen(origin), e.log, NULL), -EPERM);
        size = replaced(e.envelope, "\n23083062\n", "\n23083063\n");
        assert_int_equal(checkpoint(&e, size, strlen(size), e.log, NULL), -EPERM);

        /* The checkpoint verifies, but names another tree than the proof. */
        assert_int_equal(tlog_verify_checkpoint(e.envelope, strlen(e.envelope), e.log, e.tree_size + 1, e.root, &err),
                         -EPERM);
        assert_non_null(strstr(err.message, "names a tree of 23083062 leaves"));
        e.root[0] ^= 1;
        assert_int_equal(checkpoint(&e, e.envelope, strlen(e.envelope), e.log, &err), -EPERM);
        assert_non_null(strstr(err.message, "names root 75ab"));
        e.root[0] ^= 1;

        /* Another log's key: its hint is on no line; the right hint with another key. */
        assert_int_equal(checkpoint(&e, e.envelope, strlen(e.envelope), &e.trust.tlogs[1], &err), -EPERM);
        assert_non_null(strstr(err.message, "none of its"));
        other = *e.log;
        other.key = e.trust.tlogs[1].key;
        assert_int_equal(checkpoint(&e, e.envelope, strlen(e.envelope), &other, &err), -EPERM);
        assert_non_null(strstr(err.message, "does not verify"));

        /* Malformed: every truncation; a leading zero; a control character; no em dash. */
        for (size_t n = 0; n < strlen(e.envelope); n++)
                assert_true(checkpoint(&e, e.envelope, n, e.log, NULL) < 0);
        zero = replaced(e.envelope, "\n23083062\n", "\n02308306\n");
        assert_int_equal(checkpoint(&e, zero, strlen(zero), e.log, NULL), -EBADMSG);
        cr = replaced(e.envelope, "\nTimestamp", "\rTimestamp");
        assert_int_equal(checkpoint(&e, cr, strlen(cr), e.log, NULL), -EBADMSG);
        dash = replaced(e.envelope, "\xe2\x80\x94 rekor", "--- rekor");
        assert_int_equal(checkpoint(&e, dash, strlen(dash), e.log, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "em dash"));
        assert_int_equal(checkpoint(&e, e.envelope, TLOG_CHECKPOINT_MAX + 1u, e.log, NULL), -EBADMSG);
        assert_int_equal(checkpoint(&e, e.envelope, strlen(e.envelope), e.log, NULL), 0);
        entry_done(&e);
}

static void test_checkpoint_tampered_ed25519(void **state) {
        _cleanup_free_ char *sig = NULL, *witness = NULL, *extra = NULL;
        Error err = {};
        Entry e;

        /* The witness's line first, the log's second: the log's, changed, fails; the witness's, changed,
         * does not matter. */
        entry_load("rekor2-checkpoint-origin-not-first", &e);
        assert_int_equal(EVP_PKEY_get_base_id(e.log->key), EVP_PKEY_ED25519);
        sig = signature_flipped(e.envelope, "log2025-alpha1.rekor.sigstage.dev", 20);
        assert_int_equal(checkpoint(&e, sig, strlen(sig), e.log, &err), -EPERM);
        witness = signature_flipped(e.envelope, "witness.example", 20);
        assert_int_equal(checkpoint(&e, witness, strlen(witness), e.log, &err), 0);

        /* Every line must be well formed, even one of no interest. */
        extra = malloc(strlen(e.envelope) + 32);
        (void) snprintf(extra, strlen(e.envelope) + 32, "%sgarbage\n", e.envelope);
        assert_int_equal(checkpoint(&e, extra, strlen(extra), e.log, NULL), -EBADMSG);
        (void) snprintf(extra, strlen(e.envelope) + 32, "%s\xe2\x80\x94 x AAAA\n", e.envelope);
        assert_int_equal(checkpoint(&e, extra, strlen(extra), e.log, NULL), -EBADMSG);
        (void) snprintf(extra, strlen(e.envelope) + 32, "%s\xe2\x80\x94 x AAAAAAAA\n", e.envelope);
        assert_int_equal(checkpoint(&e, extra, strlen(extra), e.log, &err), 0);
        entry_done(&e);
}

/* The envelope with the key hint of name's signature line set to hint (the signature is over
 * the note text, not the hint: it still verifies). */
static char *rehinted(const char *envelope, const char *name, const uint8_t hint[static 4]) {
        _cleanup_free_ uint8_t *raw = NULL;
        _cleanup_free_ char *b64 = NULL, *encoded = NULL;
        char line[128], *copy = strdup(envelope), *at, *end;
        size_t size;

        assert_non_null(copy);
        (void) snprintf(line, sizeof(line), "\n\xe2\x80\x94 %s ", name);
        at = strstr(copy, line);
        assert_non_null(at);
        at += strlen(line);
        end = strchr(at, '\n');
        assert_non_null(end);
        b64 = strndup(at, (size_t) (end - at));
        raw = vec_b64(b64, &size);
        assert_true(size > 4);
        memcpy(raw, hint, 4);
        encoded = malloc(strlen(b64) + 1);
        assert_int_equal(EVP_EncodeBlock((unsigned char *) encoded, raw, (int) size), (int) strlen(b64));
        memcpy(at, encoded, strlen(b64));
        return copy;
}

/* A log whose checkpoints are signed under checkpointKeyId's hint, not logId's. */
static void test_checkpoint_key_id(void **state) {
        static const uint8_t hint[4] = { 0xab, 0xcd, 0xef, 0x01 };
        _cleanup_(sigstore_root_freep) SigstoreTrustedRoot *t = NULL;
        _cleanup_free_ char *moved = NULL, *text = NULL;
        json_t *j = vec_json(PRODUCTION_ROOT);
        uint8_t id[32] = { 0xab, 0xcd, 0xef, 0x01, 0x02 };
        char b64[64];
        TrustedLog log;
        Error err = {};
        Entry e;

        entry_load("happy-path-v0.3", &e);
        moved = rehinted(e.envelope, "rekor.sigstore.dev", hint);

        /* tlog_verify_checkpoint() matches the lines against checkpoint_key_hint alone. */
        log = *e.log;
        memcpy(log.checkpoint_key_hint, hint, sizeof(hint));
        assert_int_equal(checkpoint(&e, moved, strlen(moved), &log, &err), 0);
        assert_int_equal(checkpoint(&e, e.envelope, strlen(e.envelope), &log, &err), -EPERM);
        assert_non_null(strstr(err.message, "(key hint abcdef01)"));
        assert_int_equal(checkpoint(&e, moved, strlen(moved), e.log, &err), -EPERM);
        assert_non_null(strstr(err.message, "(key hint c0d23d6a)"));

        /* The trusted root gives it from checkpointKeyId, else from logId. */
        assert_int_equal(EVP_EncodeBlock((unsigned char *) b64, id, sizeof(id)), 44);
        json_object_set_new(vec_get(j, "tlogs.0"), "checkpointKeyId", json_pack("{s:s}", "keyId", b64));
        text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (sigstore_root_parse(text, strlen(text), &t, &err) < 0)
                fail_msg("%s", err.message);
        assert_memory_equal(t->tlogs[0].key_id, e.log->key_id, sizeof(e.log->key_id));
        assert_memory_equal(t->tlogs[0].checkpoint_key_hint, hint, sizeof(hint));
        assert_memory_equal(t->tlogs[1].checkpoint_key_hint, t->tlogs[1].key_id, 4);
        assert_memory_equal(t->ctlogs[0].checkpoint_key_hint, t->ctlogs[0].key_id, 4);
        assert_int_equal(checkpoint(&e, moved, strlen(moved), &t->tlogs[0], &err), 0);
        assert_int_equal(checkpoint(&e, e.envelope, strlen(e.envelope), &t->tlogs[0], &err), -EPERM);
        assert_non_null(strstr(err.message, "none of its 1 signature lines"));
        entry_done(&e);
}

static void test_set_vectors(void **state) {
        static const char *const cases[] = {
                "happy-path-v0.1",
                "happy-path-v0.3",
                "intoto-with-custom-trust-root",
                "managed-key-and-trusted-root",
                "trust-root-tlog-validity-end-inclusive", /* the time is the window's last second */
                /* Refused for other reasons (the certificate's validity, the entry's contents, the
                 * proof), but their SETs hold. */
                "integrated-time-in-future_fail",
                "wrong-hashedrekord-entry_fail",
                "inclusion-proof-corrupted-hash_fail",
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Error err = {};
                Entry e;

                entry_load(cases[i], &e);
                if (set(&e, e.log, &err) != 0)
                        fail_msg("%s: %s", cases[i], err.message);
                entry_done(&e);
        }
}

static void test_set_tampered(void **state) {
        TrustedLog windowed;
        Error err = {};
        Entry e;

        entry_load("happy-path-v0.3", &e);
        e.set[e.set_size - 1] ^= 1;
        assert_int_equal(set(&e, e.log, &err), -EPERM);
        assert_non_null(strstr(err.message, "does not verify with the key of log 'https://rekor.sigstore.dev'"));
        e.set[e.set_size - 1] ^= 1;
        e.integrated_time++;
        assert_int_equal(set(&e, e.log, NULL), -EPERM);
        e.integrated_time--;
        e.log_index++;
        assert_int_equal(set(&e, e.log, NULL), -EPERM);
        e.log_index--;
        assert_int_equal(tlog_verify_set(e.log, e.body, e.body_size, e.integrated_time, (int64_t) e.proof_index, e.set,
                                         e.set_size, NULL),
                         -EPERM);
        e.body[10] ^= 1;
        assert_int_equal(set(&e, e.log, NULL), -EPERM);
        e.body[10] ^= 1;
        windowed = *e.log;
        windowed.key = e.trust.tlogs[1].key; /* Ed25519 */
        assert_int_equal(set(&e, &windowed, NULL), -EPERM);
        assert_int_equal(set(&e, &e.trust.tlogs[1], NULL), -EPERM);
        assert_int_equal(tlog_verify_set(e.log, e.body, e.body_size, e.integrated_time, e.log_index, e.set,
                                         e.set_size - 1, NULL),
                         -EPERM);
        assert_int_equal(tlog_verify_set(e.log, e.body, e.body_size, e.integrated_time, e.log_index, e.set, 0, NULL),
                         -EPERM);
        assert_int_equal(tlog_verify_set(e.log, e.body, e.body_size, e.integrated_time, -1, e.set, e.set_size, NULL),
                         -EINVAL);

        /* The log's window, inclusive at both ends. */
        windowed = *e.log;
        windowed.valid_until = (time_t) e.integrated_time;
        assert_int_equal(set(&e, &windowed, NULL), 0);
        windowed.valid_until--;
        assert_int_equal(set(&e, &windowed, &err), -EPERM);
        assert_non_null(strstr(err.message, "outside the window"));
        windowed.valid_until = 0;
        windowed.valid_from = (time_t) e.integrated_time;
        assert_int_equal(set(&e, &windowed, NULL), 0);
        windowed.valid_from++;
        assert_int_equal(set(&e, &windowed, NULL), -EPERM);
        assert_int_equal(set(&e, e.log, NULL), 0);
        entry_done(&e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_inclusion_vectors),
                cmocka_unit_test(test_inclusion_corrupted_case),
                cmocka_unit_test(test_inclusion_tampered),
                cmocka_unit_test(test_inclusion_small_trees),
                cmocka_unit_test(test_checkpoint_vectors),
                cmocka_unit_test(test_checkpoint_fail_cases),
                cmocka_unit_test(test_checkpoint_tampered),
                cmocka_unit_test(test_checkpoint_tampered_ed25519),
                cmocka_unit_test(test_checkpoint_key_id),
                cmocka_unit_test(test_set_vectors),
                cmocka_unit_test(test_set_tampered),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
