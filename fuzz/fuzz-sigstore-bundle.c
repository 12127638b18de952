/* SPDX-License-Identifier: MIT */
/* Sigstore bundles v0.1-v0.3: sigstore_bundle_parse() (agent/sign/sigstore-bundle.c), then,
 * when the input carries a trusted root that parses, sigstore_verify() (agent/sign/sigstore.c,
 * with sigstore-cert.c and sigstore-body.c: certificates, log entry bodies, statements) with
 * the conformance vectors' identity and issuer, or with the bundle's own key hint refused.
 * Chunked input (fuzz-common.h):
 *
 *   head     the bundle JSON
 *   1        a trusted root (trusted_root.json); absent: the bundle is only parsed
 *   2        the artifact; absent: empty
 *
 * What must hold for a bundle that parses (sigstore-bundle.h): it is keyless (a leaf that is no
 * CA) or names a key, not both; it has a signature, and a DSSE one its payload type; no list is
 * over its cap; every entry has a kind, a version, a body and no negative index, carries a SET
 * in a v0.1 bundle and an inclusion proof with a checkpoint from v0.2 on. A verification that
 * succeeds has a signing time. Anything refused says why. The head is also parsed as a DSSE
 * envelope on its own (sigstore_bundle_parse_envelope(), a classic attestation layer's blob):
 * one that parses has a signature, a payload and its type. */

#include <openssl/x509v3.h>

#include "basic/macro.h"
#include "fuzz-common.h"
#include "sign/sigstore.h"

#define IDENTITY                                                                                                \
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/" \
        "extremely-dangerous-oidc-beacon.yml@refs/heads/main"
#define ISSUER "https://token.actions.githubusercontent.com"

static void check_entry(const SigstoreBundle *b, const SigstoreTlogEntry *t, size_t i) {
        if (!t->kind || !t->kind[0] || !t->version || !t->version[0] || !t->body || t->body_size == 0)
                fuzz_fail("entry %zu: no kind, version or body", i);
        if (t->log_index < 0 || t->integrated_time < 0 || !t->log_id)
                fuzz_fail("entry %zu: a negative index or time, or no logId", i);
        if (b->version == SIGSTORE_BUNDLE_V0_1 && !t->set)
                fuzz_fail("entry %zu of a v0.1 bundle without a SET", i);
        if (b->version != SIGSTORE_BUNDLE_V0_1 && !t->has_proof)
                fuzz_fail("entry %zu of a %s bundle without an inclusion proof", i,
                          sigstore_bundle_version_to_string(b->version));
        if (t->has_proof && (!t->proof.checkpoint || t->proof.tree_size < 0 || t->proof.log_index < 0 ||
                             t->proof.n_hashes > SIGSTORE_PROOF_HASHES_MAX))
                fuzz_fail("entry %zu: a proof without a checkpoint, or out of bounds", i);
}

static void check_bundle(const SigstoreBundle *b) {
        if (b->leaf && (b->key_hint || X509_check_ca(b->leaf) != 0))
                fuzz_fail("a leaf and a key hint, or a CA as the leaf");
        if (!b->signature || b->signature_size == 0)
                fuzz_fail("no signature");
        if (b->dsse && (!b->payload_type || !b->payload))
                fuzz_fail("a DSSE envelope without its payload or type");
        if (b->n_entries > SIGSTORE_TLOG_ENTRIES_MAX || b->n_timestamps > SIGSTORE_TIMESTAMPS_MAX)
                fuzz_fail("%zu entries, %zu timestamps", b->n_entries, b->n_timestamps);
        for (size_t i = 0; i < b->n_entries; i++)
                check_entry(b, &b->entries[i], i);
}

static void verify(const SigstoreBundle *b, const FuzzChunks *c) {
        SigstoreTrustedRoot *root = NULL;
        SigstorePolicy policy = { .identity = IDENTITY, .issuer = ISSUER };
        SigstoreVerified v = {};
        Error e = {};
        int r;

        if (c->n < 2 || sigstore_root_parse(c->data[1], c->size[1], &root, &e) < 0)
                return;
        r = sigstore_verify(root, b, &policy, c->n > 2 ? c->data[2] : NULL, c->n > 2 ? c->size[2] : 0, &v, &e);
        fuzz_report("sigstore_verify", r, &e);
        if (r == 0 && (v.signed_at <= 0 || v.n_timestamps + v.n_log_times == 0))
                fuzz_fail("verified without a signing time");
        if (r < 0 && !e.message[0])
                fuzz_fail("sigstore_verify() failed with %d and no message", r);
        if (r == 0 && !b->leaf)
                fuzz_fail("a managed-key bundle verified without a key");
        sigstore_verified_done(&v);
        sigstore_root_free(root);
}

static void envelope(const FuzzChunks *c) {
        SigstoreBundle *b = calloc(1, sizeof(SigstoreBundle));
        Error e = {};
        int r;

        if (!b)
                return;
        r = sigstore_bundle_parse_envelope(c->data[0], c->size[0], b, &e);
        fuzz_report("sigstore_bundle_parse_envelope", r, &e);
        if (r < 0 && !e.message[0])
                fuzz_fail("sigstore_bundle_parse_envelope() failed with %d and no message", r);
        if (r == 0 && (!b->dsse || !b->signature || !b->payload || !b->payload_type))
                fuzz_fail("an envelope without its signature, payload or type");
        sigstore_bundle_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SigstoreBundle *b = NULL;
        FuzzChunks c;
        Error e = {};
        int r;

        fuzz_chunks_parse(data, size, &c);
        envelope(&c);
        r = sigstore_bundle_parse(c.data[0], c.size[0], &b, &e);
        fuzz_report("sigstore_bundle_parse", r, &e);
        if (r < 0) {
                if (!e.message[0])
                        fuzz_fail("sigstore_bundle_parse() failed with %d and no message", r);
        } else {
                check_bundle(b);
                verify(b, &c);
        }
        sigstore_bundle_free(b);
        fuzz_chunks_done(&c);
        return 0;
}
