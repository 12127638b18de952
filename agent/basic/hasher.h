/* SPDX-License-Identifier: MIT */
#pragma once

/* SHA-256 in a second thread: the bundle reader hands it the blocks of a large member while it
 * reads (and writes out) the next ones. The blocks stay in the reader's ring of HASHER_SLOTS
 * buffers; the hasher counts its jobs per slot, so that the reader refills a slot only once
 * the hasher is done with it. The hasher owns the digest context while it has jobs; between
 * members (after hasher_wait(h, UINT_MAX)) the reader holds it.
 *
 * Errors: a failed digest update is reported by hasher_wait(); nothing else fails once the
 * thread runs. */

#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HASHER_SLOTS 4 /* the reader's blocks: it reads one while the hasher has the others */

typedef struct Hasher Hasher;

/* Starts the thread, with a digest context. NULL when no thread can be started (or out of
 * memory): then the reader hashes everything itself. */
Hasher *hasher_start(void);

/* Ends the thread (after its last job) and frees everything. h must not be NULL. */
void hasher_stop(Hasher *h);

/* The digest context: the reader initialises it before a member's first job and finalises it
 * after hasher_wait(h, UINT_MAX). */
EVP_MD_CTX *hasher_ctx(Hasher *h);

/* Queues n bytes at p, which lie in slot (< HASHER_SLOTS) and must not change until
 * hasher_wait() says the hasher is done with that slot. Waits while the queue is full. */
void hasher_submit(Hasher *h, const uint8_t *p, size_t n, unsigned slot);

/* Waits until the hasher is done with a slot (UINT_MAX: with every job); false when a digest
 * update failed. */
bool hasher_wait(Hasher *h, unsigned slot);
