/* SPDX-License-Identifier: MIT */
#pragma once

/* Transparency-log proofs of a Sigstore bundle's tlogEntries[]: the Merkle inclusion proof
 * (RFC 6962/9162), the checkpoint it leads to (a signed note, C2SP tlog-checkpoint and
 * signed-note), and the signed entry timestamp (SET) of Rekor v1. */

#include <stddef.h>
#include <stdint.h>

#include "basic/error.h"
#include "sign/sigstore-trust.h"

#define TLOG_HASH_SIZE 32
#define TLOG_BODY_MAX (8u * 1024u * 1024u)  /* an entry's body (it comes from a bundle of at most as much) */
#define TLOG_CHECKPOINT_MAX (64u * 1024u)   /* a checkpoint envelope */
#define TLOG_CHECKPOINT_SIGNATURES_MAX 100u /* its signature lines (as golang.org/x/mod/sumdb/note) */
#define TLOG_SET_MAX 1024u                  /* a signed entry timestamp (a DER ECDSA signature) */

/* The leaf SHA-256(0x00 || body) at index of a tree of tree_size leaves, with the audit path
 * hashes[0..n_hashes), leads to root (interior nodes SHA-256(0x01 || left || right); the
 * algorithm of RFC 9162 2.1.3.2). Returns 0; -EINVAL for an index outside the tree, a path of
 * the wrong length or a body over TLOG_BODY_MAX; -EPERM when the computed root differs. */
int tlog_verify_inclusion(const void *body, size_t body_size, uint64_t index, uint64_t tree_size,
                          const uint8_t (*hashes)[TLOG_HASH_SIZE], size_t n_hashes, const uint8_t root[TLOG_HASH_SIZE],
                          Error *reterr);

/* The checkpoint envelope (origin line, tree size, base64 root hash, optional extension lines,
 * a blank line, then signature lines "— <name> <base64(4-byte key hint || signature)>") names
 * tree_size and root, and one of its signature lines whose key hint is log->checkpoint_key_hint
 * (from the trusted root's checkpointKeyId, else its logId: sigstore-root.h) verifies with
 * log->key over the note text, which is the envelope up to and including
 * the newline before the blank line (ECDSA with SHA-256 — or the curve's own hash for P-384
 * and P-521 —, RSA PKCS#1 v1.5 with SHA-256, or Ed25519). Lines of other signers (witnesses'
 * cosignatures, or another key of the same name) are ignored, wherever they stand; neither the
 * origin line nor a line's key name is compared with anything: the key hint picks the line,
 * the signature binds the whole note to the key. Every signature line must be well formed.
 * Returns 0; -EBADMSG when it does not parse (over TLOG_CHECKPOINT_MAX bytes, a control
 * character, no root hash, no signature line, ...); -EPERM when no line verifies or it names
 * another tree; -EINVAL for a missing argument (a log without a key among them: one of a key
 * type not supported, TrustedLog.unsupported). */
int tlog_verify_checkpoint(const char *envelope, size_t size, const TrustedLog *log, uint64_t tree_size,
                           const uint8_t root[TLOG_HASH_SIZE], Error *reterr);

/* Rekor v1's signed entry timestamp: set is log->key's signature over the canonical JSON
 * {"body":"<base64 body>","integratedTime":N,"logID":"<hex key id>","logIndex":N} (keys sorted,
 * no spaces; RFC 8785, as sigstore-go and cosign build it), where logIndex is the entry's
 * global index (tlogEntries[].logIndex, not inclusionProof.logIndex), and integrated_time lies
 * in the log's window (trusted_window_contains()). Returns 0; -EPERM when it does not verify
 * or the time is outside the window; -EINVAL for a negative time or index, a body over
 * TLOG_BODY_MAX or a missing argument (as for tlog_verify_checkpoint()). */
int tlog_verify_set(const TrustedLog *log, const void *body, size_t body_size, int64_t integrated_time,
                    int64_t log_index, const void *set, size_t set_size, Error *reterr);
