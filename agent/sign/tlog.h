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

/* The leaf SHA-256(0x00 || body) at index of a tree of tree_size leaves, with the audit path
 * hashes[0..n_hashes), leads to root. Returns 0; -EINVAL for an index outside the tree or a
 * path of the wrong length; -EPERM when the computed root differs. */
int tlog_verify_inclusion(const void *body, size_t body_size, uint64_t index, uint64_t tree_size,
                          const uint8_t (*hashes)[TLOG_HASH_SIZE], size_t n_hashes, const uint8_t root[TLOG_HASH_SIZE],
                          Error *reterr);

/* The checkpoint envelope (origin line, tree size, base64 root hash, optional extension lines,
 * a blank line, then signature lines "— <name> <base64(4-byte key hint || signature)>") names
 * tree_size and root, and one of its signature lines whose key hint is log->key_id's first 4
 * bytes verifies with log->key over the note text (ECDSA with SHA-256, or Ed25519). Lines of
 * other signers (witnesses' cosignatures) are ignored. Returns 0; -EBADMSG when it does not
 * parse; -EPERM when no line verifies or it names another tree. */
int tlog_verify_checkpoint(const char *envelope, size_t size, const TrustedLog *log, uint64_t tree_size,
                           const uint8_t root[TLOG_HASH_SIZE], Error *reterr);

/* Rekor v1's signed entry timestamp: set is log->key's signature over the canonical JSON
 * {"body":"<base64 body>","integratedTime":N,"logID":"<hex key id>","logIndex":N} (keys sorted,
 * no spaces). Returns 0; -EPERM when it does not verify. */
int tlog_verify_set(const TrustedLog *log, const void *body, size_t body_size, int64_t integrated_time,
                    int64_t log_index, const void *set, size_t set_size, Error *reterr);
